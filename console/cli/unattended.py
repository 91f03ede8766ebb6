"""The command line for running unattended: ``schedule add/ls/rm/run/
disable/enable`` and ``alerts``."""

import json
import sys

from console import alerts, schedules
from console.cli.exits import ALERTS_OPEN, DONE, FAILED, NO_SUCH_TASK, REFUSED, USAGE
from console.errors import HTTPError
from console.messages import translate

SCHEDULE_LINE = "%4s  %-12s  %-18s  %-7s  %-19s  %-19s  %s"
ALERT_LINE = "%5s  %-17s  %-19s  %-19s  %s"


def said(error):
    """An HTTPError's sentence, in English."""
    return translate(error.template, "en", **error.values)


def schedule(args, settings, conn):
    """schedule add/ls/rm/run/disable/enable."""
    try:
        return SCHEDULE_ACTIONS[args.schedule_command](args, settings, conn)
    except HTTPError as error:
        print(said(error), file=sys.stderr)
        return NO_SUCH_TASK if error.status == 404 else USAGE


def add(args, settings, conn):
    spec = schedules.make_spec(args.every, args.daily, args.weekly)
    params = {"name": args.name, "keep": args.keep, "above_percent": args.above_percent, "days": args.days}
    options = schedules.UNATTENDED.get(args.task_type, {})
    given = [name for name, value in params.items() if value is not None]
    for name in given:
        if args.task_type in schedules.UNATTENDED and name not in options:
            print("--%s does not apply to %s." % (name.replace("_", "-"), args.task_type), file=sys.stderr)
            return USAGE
    print(schedules.add_schedule(settings, conn, args.task_type, spec, {name: params[name] for name in given}))
    return DONE


def listing(args, settings, conn):
    found = schedules.list_schedules(conn)
    if args.json:
        print(json.dumps({"schedules": found}, ensure_ascii=False, indent=2))
        return DONE
    if not found:
        print("No schedules yet.")
        return DONE
    print(SCHEDULE_LINE % ("ID", "TYPE", "WHEN", "ENABLED", "NEXT RUN (UTC)", "LAST RUN (UTC)", "LAST STATUS"))
    for item in found:
        last = item["last_status"] or ""
        if item["last_message"]:
            last += ": " + item["last_message"]
        print(SCHEDULE_LINE % (item["id"], item["task_type"], item["spec"], "yes" if item["enabled"] else "no",
                               item["next_run_at"], item["last_run_at"] or "", last))
    return DONE


def remove(args, settings, conn):
    schedules.remove_schedule(conn, args.id)
    print("Schedule %d deleted." % args.id)
    return DONE


def run(args, settings, conn):
    """Start the schedule's task now; exit 3 when another task keeps it from starting."""
    schedules.get_schedule(conn, args.id)
    outcome, task_id, template, values = schedules.run_now(settings, conn, args.id)
    if outcome != "started":
        print(translate(template, "en", **values), file=sys.stderr)
        return REFUSED if outcome == "skipped" else FAILED
    print(task_id)
    return DONE


def switch(args, settings, conn):
    schedules.change_schedule(settings, conn, args.id, enabled=args.schedule_command == "enable")
    print("Schedule %d %sd." % (args.id, args.schedule_command))
    return DONE


SCHEDULE_ACTIONS = {"add": add, "ls": listing, "rm": remove, "run": run, "disable": switch, "enable": switch}


def list_alerts(args, settings, conn):
    """alerts: the open ones, then the recent ones; exit 6 when one is open."""
    found = alerts.list_alerts(conn)
    still = [alert for alert in found if alert["closed_at"] is None]
    if args.json:
        print(json.dumps({"alerts": found}, ensure_ascii=False, indent=2))
    elif not found:
        print("No alerts.")
    else:
        print(ALERT_LINE % ("ID", "KIND", "OPENED (UTC)", "CLOSED (UTC)", "MESSAGE"))
        for alert in found:
            print(ALERT_LINE % (alert["id"], alert["kind"], alert["opened_at"], alert["closed_at"] or "open",
                                alert["message"]))
    return ALERTS_OPEN if still else DONE
