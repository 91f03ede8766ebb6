"""The server's own work while nobody watches: every
``schedule_tick_seconds`` it starts the schedules that are due and looks
at what alerts are open."""

import logging
import sqlite3
import threading

from console import schedules
from console.store import connect

log = logging.getLogger("ipfsmaster")


def start(settings, stop):
    """Start the threads that run unattended, until ``stop`` is set."""
    threading.Thread(target=keep_watch, args=(settings, stop), name="schedules", daemon=True).start()


def keep_watch(settings, stop):
    """Each tick: the schedules that are due."""
    while True:
        conn = connect(settings.db)
        try:
            for schedule_id, outcome, task_id in schedules.tick(settings, conn):
                log.info("schedule %d: %s%s", schedule_id, outcome, " (task %d)" % task_id if task_id else "")
        except (sqlite3.Error, OSError, ValueError):
            log.exception("could not run the schedules")
        finally:
            conn.close()
        if stop.wait(settings.schedule_tick_seconds):
            return
