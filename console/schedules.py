"""Schedules: recurring tasks the server starts on its own.

A schedule says what to start (a task type that can run unattended, and
its options) and when, as people write it: ``every 6h``, ``daily 03:00``,
``weekly mon 03:00`` (times of day in the server's local time). The
server's tick (``tick``) starts each one that is due; a run that would
collide with a task already running (another of its type, or the
schedule's own last run) is skipped and says so; a run missed while the
server was down is due at once, and runs once, because the next time is
counted from the run, not from the slot it missed (a tick merely later than
the slot counts from the slot: ``every 1m`` stays every minute).
"""

import calendar
import json
import re
import threading
import time

from console import guardrails, node, registry
from console.control import mark_stale_tasks, start_task
from console.errors import HTTPError, TaskConflict
from console.framing import IPFSError
from console.messages import NO_CLUSTER, translate
from console.store import transaction

# The types a schedule may start, and the options each takes: option ->
# (lowest, highest) for a whole number, or str for text.
UNATTENDED = {
    "pin_sync": {},
    "repo_gc": {"above_percent": (1, 100)},
    "pin_recover": {},
    "repo_verify": {},
    "task_cleanup": {"days": (1, 36500)},
    "name_follow": {"name": str, "keep": (1, 100)},
}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
SHORTEST, LONGEST = 60, 365 * 86400
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# An IPNS name (a key's CID) or a DNSLink domain, as name/resolve takes it.
IPNS_NAME = re.compile(r"/ipns/[A-Za-z0-9][A-Za-z0-9.-]{0,252}")

BAD_DURATION = "{value!r} is not a duration: write a number and a unit, such as 90s, 15m, 6h or 1d."
BAD_TIME = "{value!r} is not a time of day: write HH:MM, from 00:00 to 23:59."
BAD_DAY = "{value!r} is not a day of the week: write mon, tue, wed, thu, fri, sat or sun."
NO_SCHEDULE = "There is no schedule {id}."


# ---------------------------------------------------------------------------
# When
# ---------------------------------------------------------------------------

def parse_duration(text):
    """'90s', '15m', '6h', '1d' -> seconds; HTTPError 400 for anything else."""
    text = str(text).strip().lower()
    match = re.fullmatch(r"([0-9]{1,9})\s*([smhd])", text)
    if not match:
        raise HTTPError(400, BAD_DURATION, value=text[:40])
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if not SHORTEST <= seconds <= LONGEST:
        raise HTTPError(400, "A schedule repeats at most once a minute and at least once a year, not every {value}.",
                        value=text)
    return seconds


def duration_text(seconds):
    """Seconds in the largest unit that divides them: 5400 -> '90m'."""
    for unit in ("d", "h", "m"):
        if seconds % UNITS[unit] == 0:
            return "%d%s" % (seconds // UNITS[unit], unit)
    return "%ds" % seconds


def parse_time(text):
    """'03:00' -> (3, 0); HTTPError 400 for '25:00', '3pm', ..."""
    text = str(text).strip()
    match = re.fullmatch(r"([0-9]{1,2}):([0-9]{2})", text)
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise HTTPError(400, BAD_TIME, value=text[:40])
    return int(match.group(1)), int(match.group(2))


def parse_day(text):
    """'mon', 'Monday' -> 0 ... 6; HTTPError 400 otherwise."""
    word = str(text).strip().lower()
    if word in DAYS:
        return DAYS.index(word)
    if word in FULL_DAYS:
        return FULL_DAYS.index(word)
    raise HTTPError(400, BAD_DAY, value=word[:40])


def make_spec(every=None, daily=None, weekly=None):
    """The stored form of when a schedule runs, from exactly one of the three;
    HTTPError 400 for a mistake. ``weekly``: 'DAY HH:MM' or (DAY, 'HH:MM')."""
    given = [(kind, value) for kind, value in (("every", every), ("daily", daily), ("weekly", weekly))
             if value is not None]
    if len(given) != 1:
        raise HTTPError(400, "Say when it runs with one of every (such as 6h), daily (03:00) or weekly (mon 03:00).")
    kind, value = given[0]
    if not isinstance(value, (str, list, tuple)):
        raise HTTPError(400, "Say when it runs with one of every (such as 6h), daily (03:00) or weekly (mon 03:00).")
    if kind == "every":
        return "every " + duration_text(parse_duration(value))
    if kind == "daily":
        return "daily %02d:%02d" % parse_time(value)
    parts = value.split() if isinstance(value, str) else list(value)
    if len(parts) != 2:
        raise HTTPError(400, "weekly takes a day and a time, such as mon 03:00.")
    day = parse_day(parts[0])
    return "weekly %s %02d:%02d" % ((DAYS[day],) + parse_time(parts[1]))


def next_run(spec, now, slot=None):
    """When a schedule of ``spec`` runs next after ``now`` (seconds since the
    epoch); a time of day is the server's local time. ``slot``: when the run
    at ``now`` was due; a repeat less than one interval late counts from it."""
    words = spec.split()
    if words[0] == "every":
        step = parse_duration(words[1])
        if slot is not None and slot <= now < slot + step:
            return slot + step
        return now + step
    hour, minute = parse_time(words[-1])
    day = parse_day(words[1]) if words[0] == "weekly" else None
    today = time.localtime(now)
    for ahead in range(0, 9):
        when = local_time(today.tm_year, today.tm_mon, today.tm_mday + ahead, hour, minute)
        if when > now and (day is None or time.localtime(when).tm_wday == day):
            return when
    raise ValueError(spec)


def local_time(year, month, day, hour, minute):
    """Seconds since the epoch of a local date and time of day. mktime
    carries a day past the month's end over, and finds the offset on either
    side of a change to or from summer time; a time the clocks pass twice
    (when they go back) is its first, so a daily run runs once that day; a
    time they skip is the same span after the change."""
    fields = (year, month, day, hour, minute, 0, 0, 0)
    chosen = time.mktime(fields + (-1,))
    date = time.localtime(chosen)[:3]
    for dst in (0, 1):
        when = time.mktime(fields + (dst,))
        if time.localtime(when)[:5] == date + (hour, minute) and when < chosen:
            chosen = when
    return chosen


def epoch_of(text):
    """The database's UTC time text as seconds since the epoch."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def utc_text(seconds):
    """Seconds since the epoch in the database's form (UTC, datetime('now'))."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


# ---------------------------------------------------------------------------
# What
# ---------------------------------------------------------------------------

def check_params(settings, task_type, params):
    """A schedule's own options, checked; HTTPError 400 for a mistake."""
    if not isinstance(task_type, str) or task_type not in UNATTENDED:
        raise HTTPError(400, "{value!r} cannot be scheduled: use one of {types}.",
                        value=str(task_type)[:40], types=", ".join(sorted(UNATTENDED)))
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise HTTPError(400, "params must be a JSON object.")
    options = UNATTENDED[task_type]
    checked = {}
    for name, value in params.items():
        if value is None:
            continue
        kind = options.get(name)
        if kind is None:
            raise HTTPError(400, "A {type} schedule takes no option {name!r}.", type=task_type, name=str(name)[:40])
        if kind is str:
            if not isinstance(value, str):
                raise HTTPError(400, "{name} must be text.", name=name)
            checked[name] = value.strip()
        else:
            if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not kind[0] <= value <= kind[1]:
                raise HTTPError(400, "{name} must be a whole number from {low} to {high}.",
                                name=name, low=kind[0], high=kind[1])
            checked[name] = value
    if task_type == "name_follow":
        name = checked.get("name", "")
        if not name.startswith("/"):
            name = "/ipns/" + name if name else name
        if not IPNS_NAME.fullmatch(name):
            raise HTTPError(400, "name must be an IPNS name or a DNSLink domain, such as /ipns/example.org.")
        checked["name"] = name
        checked.setdefault("keep", 1)
    if task_type == "pin_recover" and not settings.cluster_api:
        raise HTTPError(400, NO_CLUSTER)
    return checked


def task_params(settings, row):
    """The parameters of the task a schedule starts now."""
    params = json.loads(row["params"] or "{}")
    params.pop("above_percent", None)
    if row["task_type"] == "task_cleanup":
        params.setdefault("days", settings.retention_days)
    else:
        params.update(settings.sync_params() if row["task_type"] in ("pin_sync", "pin_recover", "name_follow")
                      else {"ipfs_api": settings.ipfs_api})
    params["schedule_id"] = row["id"]
    return params


# ---------------------------------------------------------------------------
# Stored schedules
# ---------------------------------------------------------------------------

def add_schedule(settings, conn, task_type, spec, params=None):
    """Store a new schedule (``spec`` from make_spec); returns its id."""
    params = check_params(settings, task_type, params)
    with transaction(conn):
        return conn.execute("INSERT INTO schedules (task_type, spec, params, next_run_at) VALUES (?, ?, ?, ?)",
                            (task_type, spec, json.dumps(params, sort_keys=True),
                             utc_text(next_run(spec, time.time())))).lastrowid


def get_schedule(conn, schedule_id):
    """A schedule's row, or HTTPError 404."""
    row = conn.execute("SELECT * FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
    if row is None:
        raise HTTPError(404, NO_SCHEDULE, id=schedule_id)
    return row


def change_schedule(settings, conn, schedule_id, spec=None, params=None, enabled=None):
    """Change when a schedule runs, its options, or whether it is enabled;
    a new time, or enabling it, counts its next run from now."""
    row = get_schedule(conn, schedule_id)
    sets, values = [], []
    if params is not None:
        sets.append("params = ?")
        values.append(json.dumps(check_params(settings, row["task_type"], params), sort_keys=True))
    if spec is not None:
        sets.append("spec = ?")
        values.append(spec)
    if enabled is not None:
        sets.append("enabled = ?")
        values.append(1 if enabled else 0)
    if spec is not None or (enabled and not row["enabled"]):
        sets.append("next_run_at = ?")
        values.append(utc_text(next_run(spec or row["spec"], time.time())))
    if sets:
        with transaction(conn):
            conn.execute("UPDATE schedules SET " + ", ".join(sets) + " WHERE id = ?", values + [schedule_id])


def remove_schedule(conn, schedule_id):
    """Delete a schedule (its tasks stay); HTTPError 404 if there is none."""
    with transaction(conn):
        if conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount != 1:
            raise HTTPError(404, NO_SCHEDULE, id=schedule_id)


def list_schedules(conn, lang="en", schedule_id=None):
    """Every schedule (or the one of ``schedule_id``) as JSON, by id, with
    the status of its last run: the status of the task it started, or
    skipped, or error; its message in ``lang``."""
    rows = conn.execute(
        "SELECT s.*, t.status AS task_status FROM schedules s LEFT JOIN background_tasks t ON t.id = s.last_task_id"
        " WHERE ? IS NULL OR s.id = ? ORDER BY s.id", (schedule_id, schedule_id)).fetchall()
    return [schedule_as_json(row, lang) for row in rows]


def schedule_as_json(row, lang="en"):
    """A schedule's row (with its last task's ``task_status``) as the API and ``schedule ls --json`` give it."""
    message = None
    if row["last_message"]:
        message = translate(row["last_message"], lang, **json.loads(row["last_message_values"] or "{}"))
    status = row["last_outcome"]
    if status == "started" and row["task_status"]:
        status = row["task_status"]
    return {"id": row["id"], "task_type": row["task_type"], "spec": row["spec"],
            "params": json.loads(row["params"] or "{}"), "enabled": bool(row["enabled"]),
            "next_run_at": row["next_run_at"], "last_run_at": row["last_run_at"],
            "last_task_id": row["last_task_id"], "last_status": status, "last_message": message,
            "created_at": row["created_at"]}


# ---------------------------------------------------------------------------
# Running them
# ---------------------------------------------------------------------------

def below_watermark(settings, row):
    """For a garbage collection that runs only above a watermark: the reason
    to skip it now (template, values), or None to run it."""
    above = json.loads(row["params"] or "{}").get("above_percent")
    if row["task_type"] != "repo_gc" or not above:
        return None
    overview = node.node_overview(settings, fresh=True)
    percent = guardrails.storage_percent(overview)
    if percent is not None and percent < above:
        return ("The repository is at {percent}% of its StorageMax, below {above}%: nothing to collect yet.",
                {"percent": percent, "above": above})
    return None


# One start at a time in this process: the tick and a "run now" of the same
# schedule see each other's task, not both an idle schedule.
_firing = threading.Lock()


def still_running(conn, row):
    """For a schedule whose last task is still pending or running: the
    reason to skip it now (template, values), or None."""
    task = conn.execute("SELECT t.id FROM schedules s JOIN background_tasks t ON t.id = s.last_task_id"
                        " WHERE s.id = ? AND t.status IN ('pending', 'running')", (row["id"],)).fetchone()
    if task is None:
        return None
    return "A {what} is already running (task {id}).", {"what": registry.labels()[row["task_type"]], "id": task["id"]}


def fire(settings, conn, row, by_hand=False):
    """Start a schedule's task now and record how that went; returns
    (outcome, task id or None, template or None, values). A run by hand
    ignores the watermark condition; no run starts while the schedule's
    last task is still going (a type that is not single flight, such as
    name_follow, would otherwise run twice at once)."""
    with _firing:
        return fire_once(settings, conn, row, by_hand)


def fire_once(settings, conn, row, by_hand):
    task_id, template, values = None, None, {}
    try:
        mark_stale_tasks(conn, settings)        # a last task whose worker died holds nothing up
        skip = still_running(conn, row) or (None if by_hand else below_watermark(settings, row))
        if skip:
            outcome, (template, values) = "skipped", skip
        else:
            task_id = start_task(settings, conn, row["task_type"], task_params(settings, row))
            outcome = "started"
    except TaskConflict as conflict:
        outcome = "skipped"
        template, values = conflict.message()
    except IPFSError as exc:
        outcome, template, values = "error", "The IPFS node cannot be reached: {reason}", {"reason": str(exc)}
    except OSError:
        outcome, template = "error", "The worker could not be started."
    with transaction(conn):
        conn.execute("UPDATE schedules SET last_run_at = datetime('now'), last_task_id = COALESCE(?, last_task_id),"
                     " last_outcome = ?, last_message = ?, last_message_values = ? WHERE id = ?",
                     (task_id, outcome, template, json.dumps(values, ensure_ascii=False), row["id"]))
    return outcome, task_id, template, values


def run_now(settings, conn, schedule_id):
    """Run a schedule by hand, whatever its next time; as ``fire``."""
    return fire(settings, conn, get_schedule(conn, schedule_id), by_hand=True)


def tick(settings, conn, now=None):
    """Start every enabled schedule that is due; returns [(schedule id,
    outcome, task id)]. Each is claimed by moving its next time on first
    (compare-and-set), so two ticks never start one twice."""
    now = time.time() if now is None else now
    done = []
    for row in conn.execute("SELECT * FROM schedules WHERE enabled = 1 AND next_run_at <= ? ORDER BY next_run_at",
                            (utc_text(now),)).fetchall():
        following = utc_text(next_run(row["spec"], now, epoch_of(row["next_run_at"])))
        with transaction(conn):
            claimed = conn.execute("UPDATE schedules SET next_run_at = ? WHERE id = ? AND next_run_at = ?"
                                   " AND enabled = 1", (following, row["id"], row["next_run_at"])).rowcount == 1
        if claimed:
            outcome, task_id, _, _ = fire(settings, conn, row)
            done.append((row["id"], outcome, task_id))
    return done


def failing_schedules(conn, runs=3):
    """{schedule id: (its row, the id of its latest task)} of the enabled
    schedules whose last ``runs`` tasks all failed."""
    found = {}
    for row in conn.execute("SELECT * FROM schedules WHERE enabled = 1").fetchall():
        statuses = conn.execute(
            "SELECT id, status FROM background_tasks WHERE params LIKE '%schedule_id%'"
            " AND (CASE WHEN json_valid(params) THEN json_extract(params, '$.schedule_id') END) = ?"
            " AND status IN ('completed', 'failed', 'cancelled') ORDER BY id DESC LIMIT ?", (row["id"], runs)).fetchall()
        if len(statuses) == runs and all(task["status"] == "failed" for task in statuses):
            found[row["id"]] = (row, statuses[0]["id"])
    return found

