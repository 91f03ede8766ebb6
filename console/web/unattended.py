"""The server's own work while nobody watches: every
``schedule_tick_seconds`` it starts the schedules that are due and looks
at what alerts are open."""

import logging
import threading

from console import alerts, schedules, webhook
from console.store import connect

log = logging.getLogger("ipfsmaster")


def start(settings, stop):
    """Start the threads that run unattended, until ``stop`` is set."""
    threading.Thread(target=keep_watch, args=(settings, stop), name="schedules", daemon=True).start()
    if settings.webhook_url:
        threading.Thread(target=webhook.deliver_forever, args=(settings, stop), name="webhook", daemon=True).start()


def keep_watch(settings, stop):
    """Each tick: the schedules that are due, then the alerts."""
    while True:
        conn = connect(settings.db)
        try:
            for schedule_id, outcome, task_id in schedules.tick(settings, conn):
                log.info("schedule %d: %s%s", schedule_id, outcome, " (task %d)" % task_id if task_id else "")
        except Exception:
            log.exception("could not run the schedules")
        try:
            opened, closed = alerts.check(settings, conn)
            for alert_id in opened:
                log.warning("alert %d opened: %s", alert_id, alerts.alert_as_json(alerts.get_alert(conn, alert_id))["message"])
            for alert_id in closed:
                log.info("alert %d closed", alert_id)
        except Exception:
            log.exception("could not check the alerts")
        finally:
            conn.close()
        if stop.wait(settings.schedule_tick_seconds):
            return
