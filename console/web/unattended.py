"""The server's own work while nobody watches: every
``schedule_tick_seconds`` it starts the schedules that are due, notices
workers that died, and opens or closes alerts; the webhook's posts leave
from a thread of their own."""

import logging
import threading

from console import alerts, schedules, webhook
from console.control import mark_stale_tasks
from console.store import connect

log = logging.getLogger("ipfsmaster")


def start(settings, stop):
    """Start the threads that run unattended, until ``stop`` is set."""
    threading.Thread(target=keep_watch, args=(settings, stop), name="schedules", daemon=True).start()
    if settings.webhook_url:
        threading.Thread(target=webhook.deliver_forever, args=(settings, stop), name="webhook", daemon=True).start()


def keep_watch(settings, stop):
    """A look every tick, until ``stop`` is set."""
    while True:
        look(settings)
        if stop.wait(settings.schedule_tick_seconds):
            return


def look(settings):
    """One tick: the schedules that are due, the workers that died, then the alerts.
    A failure of one part is logged, and the others still run."""
    conn = connect(settings.db)
    try:
        for part in (start_due, mark_stale_tasks, check_alerts):
            try:
                part(conn, settings)
            except Exception:
                log.exception("unattended: %s failed", part.__name__)
    finally:
        conn.close()


def start_due(conn, settings):
    for schedule_id, outcome, task_id in schedules.tick(settings, conn):
        log.info("schedule %d: %s%s", schedule_id, outcome, " (task %d)" % task_id if task_id else "")


def check_alerts(conn, settings):
    opened, closed = alerts.check(settings, conn)
    for alert_id in opened:
        log.warning("alert %d opened: %s", alert_id, alerts.alert_as_json(alerts.get_alert(conn, alert_id))["message"])
    for alert_id in closed:
        log.info("alert %d closed", alert_id)
