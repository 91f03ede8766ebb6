"""The console's figures over time (``GET /api/history``, the pages' charts).

The server's look at the node writes one sample every ``sample_seconds``
(``record_sample``). A sample costs the node nothing and the database a
read of three small tables: the catalogue's totals and the tasks' outcome
totals (both kept by triggers) and the node's last overview, which that
same look has just refreshed; never a pin listing, never a full
``repo/stat``.

``tasks_finished`` and ``tasks_failed`` are running totals, as Prometheus
counts (every task that ever ended, whatever its outcome; those of them
that failed): the tasks that ended between two samples are the difference
of their totals, however many samples lie between them, so thinning old
samples out loses nothing of the tasks per hour.

Samples are kept ``KEEP_DAYS``; past ``FULL_DAYS`` only the last one of each
hour is kept.
"""

import datetime
import re
import sqlite3
import time

from console import catalogue, node
from console.errors import HTTPError
from console.store import connect, database_busy, transaction

KEEP_DAYS = 30
FULL_DAYS = 2
FIELDS = ("at", "pins", "pins_size", "repo_size", "storage_max", "peers", "tasks_finished", "tasks_failed")

# A sample waits this long at most for the write lock (a sync may hold it
# for minutes while it saves the catalogue); then that one is skipped.
SAMPLE_BUSY_TIMEOUT_MS = 5000


def timestamp(seconds):
    """Seconds since the epoch as the database writes times: UTC 'YYYY-MM-DD HH:MM:SS'."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def take_sample(conn, settings):
    """The figures as the console knows them now, without asking the node:
    repository size, StorageMax and peers are None while the node's last
    look found it unreachable (or there was none yet)."""
    stats = catalogue.stats(conn)
    overview, _ = node.last_overview(settings)
    overview = overview or {}
    tasks = conn.execute("SELECT COALESCE(SUM(count), 0) AS finished,"
                         " COALESCE(SUM(CASE WHEN outcome = 'failed' THEN count END), 0) AS failed"
                         " FROM task_outcomes").fetchone()

    def number(key):
        value = overview.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    return {"pins": stats["count"], "pins_size": stats["total_size"], "repo_size": number("repo_size"),
            "storage_max": number("storage_max"), "peers": number("peers"),
            "tasks_finished": tasks["finished"], "tasks_failed": tasks["failed"]}


def record_sample(conn, settings, now=None):
    """Write a sample for ``now`` (seconds since the epoch; default the
    current time) and thin out the old ones; returns the sample."""
    now = time.time() if now is None else now
    sample = dict(take_sample(conn, settings), at=timestamp(now))
    with transaction(conn):
        # Two samples within one second (a short --sample-seconds): the later one stands.
        conn.execute("INSERT OR REPLACE INTO samples (%s) VALUES (%s)"
                     % (", ".join(FIELDS), ", ".join("?" * len(FIELDS))), [sample[key] for key in FIELDS])
        prune(conn, now)
    return sample


def prune(conn, now):
    """Delete samples past KEEP_DAYS, and past FULL_DAYS all but the last of each hour."""
    conn.execute("DELETE FROM samples WHERE at < ?", (timestamp(now - KEEP_DAYS * 86400),))
    thinned = timestamp(now - FULL_DAYS * 86400)
    conn.execute("DELETE FROM samples WHERE at < ? AND at NOT IN (SELECT MAX(at) FROM samples WHERE at < ?"
                 " GROUP BY substr(at, 1, 13))", (thinned, thinned))


def record_sample_on_own_connection(settings):
    """A sample written on a connection of its own (the server's look at the
    node); False if the database stayed busy past SAMPLE_BUSY_TIMEOUT_MS."""
    conn = connect(settings.db, SAMPLE_BUSY_TIMEOUT_MS)
    try:
        record_sample(conn, settings)
        return True
    except sqlite3.OperationalError as exc:
        if not database_busy(exc):
            raise
        return False
    finally:
        conn.close()


# An ISO 8601 time: a date, optionally a time (seconds and their fraction
# optional), optionally Z or an offset; without an offset it is UTC.
ISO_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?"
                      r"(Z|[+-]\d\d:?\d\d)?)?", re.IGNORECASE | re.ASCII)


def parse_since(text):
    """``since`` as the database writes times (UTC), or an HTTPError 400."""
    match = ISO_TIME.fullmatch(text.strip())
    try:
        if not match:
            raise ValueError(text)
        year, month, day, hour, minute, second, zone = match.groups()
        when = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
        if zone and zone.upper() != "Z":
            digits = zone[1:].replace(":", "")
            offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            when -= offset if zone[0] == "+" else -offset
        return "%04d-%02d-%02d %02d:%02d:%02d" % (when.year, when.month, when.day, when.hour, when.minute, when.second)
    except (ValueError, OverflowError):
        raise HTTPError(400, "since must be a time in ISO 8601 form, such as 2026-12-01T08:00:00Z (UTC unless it"
                             " says otherwise); {value!r} is not one.", value=text[:60]) from None


def samples_since(conn, since=None):
    """The samples from ``since`` (a time as the database writes them) on, oldest first."""
    rows = conn.execute("SELECT %s FROM samples WHERE at >= ? ORDER BY at" % ", ".join(FIELDS), (since or "",))
    return [dict(zip(FIELDS, row)) for row in rows]
