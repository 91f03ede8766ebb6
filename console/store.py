"""The database: connections, transactions, schema upgrades, and the task
rows with their compare-and-set state changes (huey's ``storage.py``).

The server, the command line and the worker all go through here; a status
is only ever changed from the one it was read in, so nobody overwrites a
status that someone else set.
"""

import calendar
import contextlib
import json
import os
import sqlite3
import threading
import time

from console import registry
from console.errors import AlreadyRetried, TaskConflict
from console.shipped import read_shipped_file

SCHEMA_VERSION = 5
BUSY_TIMEOUT_MS = 30000
# A request waits this long at most for the write lock, then answers 503:
# the lock may be a sync's catalogue update, which can take minutes.
REQUEST_BUSY_TIMEOUT_MS = 1000
ACTIVE_STATUSES = ("pending", "running")
# The time with milliseconds, in the form of datetime('now') otherwise.
NOW_PRECISE = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
FINAL_STATUSES = ("completed", "failed", "cancelled")


def connect(path, busy_timeout_ms=BUSY_TIMEOUT_MS):
    """Open the database the way every part of IPFSMaster uses it.

    WAL lets pollers read while a worker writes; the busy timeout makes a
    writer wait for the lock instead of failing with "database is locked".
    Transactions are explicit (see ``transaction``), so autocommit is on.
    """
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = %d" % busy_timeout_ms)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextlib.contextmanager
def transaction(conn):
    """A write transaction: BEGIN IMMEDIATE takes the write lock up front, so
    the busy timeout applies to it, instead of failing at the first write."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite may have rolled back already (a full disk, an I/O error):
        # then ROLLBACK fails, and must not hide the error that caused it.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class ConnectionPool:
    """Open connections kept for the next request: a poll then costs a query,
    not a connection with its pragmas and a fresh read of the schema."""

    def __init__(self, path, size=8):
        self.path = path
        self.size = size
        self._idle = []
        self._lock = threading.Lock()

    def take(self):
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return connect(self.path, REQUEST_BUSY_TIMEOUT_MS)

    def give_back(self, conn):
        if conn.in_transaction:
            conn.rollback()
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(conn)
                return
        conn.close()


def private_file(path):
    """Create ``path`` (if missing) readable by its owner only."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def add_columns(conn, table, columns):
    """Add the columns a table lacks (an older database); a new one gets them from schema.sql."""
    present = {row["name"] for row in conn.execute("PRAGMA table_info(%s)" % table)}
    if present:
        for name, definition in columns:
            if name not in present:
                conn.execute("ALTER TABLE %s ADD COLUMN %s %s" % (table, name, definition))


# Step N brings a database from user_version N-1 to N, before schema.sql runs.
UPGRADES = {
    1: lambda conn: None,
    2: lambda conn: add_columns(conn, "background_tasks", [
        ("exclusive_group", "TEXT"), ("started_at_precise", "TEXT"), ("completed_at_precise", "TEXT")]),
    3: lambda conn: None,     # pin_removals, created by schema.sql
    4: lambda conn: add_columns(conn, "background_tasks", [("partial", "INTEGER NOT NULL DEFAULT 0")]),
    5: lambda conn: (add_columns(conn, "pins", [("asked_at", "TEXT")]),
                     add_columns(conn, "pin_removals", [("asked_at", "TEXT")])),
}


# Upsert (INSERT ... ON CONFLICT DO UPDATE) came with SQLite 3.24.
OLDEST_SQLITE = (3, 24, 0)


def check_sqlite_version(version=None):
    """Stop with a clear message if Python's SQLite is too old for the schema."""
    version = version or sqlite3.sqlite_version_info
    if tuple(version) < OLDEST_SQLITE:
        raise SystemExit("IPFSMaster needs SQLite %s or newer, but this Python uses SQLite %s. Use a Python built"
                         " with a newer SQLite." % (".".join(map(str, OLDEST_SQLITE)), ".".join(map(str, version))))


def init_db(path):
    """Create the database from schema.sql if needed; never loses data."""
    check_sqlite_version()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if not os.path.exists(path):
        private_file(path)
    conn = connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SystemExit("%s was written by a newer IPFSMaster (schema %d; this one knows %d)"
                             % (path, version, SCHEMA_VERSION))
        for step in range(version + 1, SCHEMA_VERSION + 1):
            with transaction(conn):
                UPGRADES[step](conn)
        schema = read_shipped_file("", "schema.sql").decode("utf-8")
        # executescript commits on its own; the statements are idempotent.
        conn.executescript(schema)
        if version < SCHEMA_VERSION:
            conn.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)
    finally:
        conn.close()


def database_busy(exc):
    """Whether an sqlite3.OperationalError means another connection held the lock too long."""
    return "locked" in str(exc) or "busy" in str(exc)


# ---------------------------------------------------------------------------
# Task rows
# ---------------------------------------------------------------------------

def task_as_json(row):
    """A task row as the contract's JSON object."""
    task = {key: row[key] for key in row.keys()}
    total, progress = task["total"] or 0, task["progress"] or 0
    if task["status"] == "completed":
        task["percentage"] = 100
    elif total > 0:
        task["percentage"] = max(0, min(100, progress * 100 // total))
    else:
        task["percentage"] = 0
    for key in ("result", "params"):
        try:
            value = json.loads(task[key]) if task[key] else None
        except ValueError:
            value = {"unparsed": task[key]}
        task[key] = value if isinstance(value, dict) or value is None else {"value": value}
    task["params"] = task["params"] or {}
    task["single_flight"] = bool(task["single_flight"])
    task_type = registry.TASK_TYPES.get(task["task_type"])
    task["partial"] = bool(task_type and task_type.partial) and is_partial(task["status"], task["result"])
    task["retryable"] = (task["status"] in ("failed", "cancelled") or task["partial"]) and bool(
        task_type and task_type.retryable) and not task.get("retried_by")
    task["duration_s"] = task_duration(row)
    return task


def is_partial(status, result):
    """Whether a task completed with some of its items failed (``result`` parsed)."""
    if status != "completed" or not isinstance(result, dict):
        return False
    failed = result.get("failed")
    return isinstance(failed, int) and not isinstance(failed, bool) and failed > 0


def task_duration(row):
    """Seconds from start to end (to now while running), to the millisecond when known."""
    keys = row.keys()
    start = row["started_at_precise"] if "started_at_precise" in keys else None
    end = row["completed_at_precise"] if "completed_at_precise" in keys else None
    start, end = start or row["started_at"], end or row["completed_at"]
    if not start:
        return None
    try:
        begun = utc_seconds(start)
        ended = utc_seconds(end) if end else time.time()
    except ValueError:
        return None
    return round(max(0.0, ended - begun), 3)


def utc_seconds(text):
    """A stored timestamp ('YYYY-MM-DD HH:MM:SS[.fff]', UTC) as seconds since the epoch."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + text[19:23])


# Every column of a task, and the id of the task that retries it (if any).
TASK_COLUMNS = ("*, (SELECT MAX(r.id) FROM background_tasks r WHERE r.retry_of = background_tasks.id)"
                " AS retried_by")


def get_task(conn, task_id):
    return conn.execute("SELECT " + TASK_COLUMNS + " FROM background_tasks WHERE id = ?", (task_id,)).fetchone()


def find_active_task(conn, task_type, group=None):
    """(id, type) of the active task that keeps one of ``task_type`` from
    starting (single flight, or its exclusive group), or (None, None)."""
    row = conn.execute(
        "SELECT id, task_type FROM background_tasks WHERE status IN ('pending', 'running')"
        " AND ((task_type = ? AND single_flight = 1) OR exclusive_group = ?) ORDER BY id LIMIT 1",
        (task_type, group)).fetchone()
    return (row["id"], row["task_type"]) if row else (None, None)


def create_task(conn, task_type, params=None, retry_of=None):
    """Insert a pending task and return its id; TaskConflict if single flight forbids it.

    Single flight and exclusive groups are the partial unique indexes
    idx_tasks_one_active and idx_tasks_one_active_in_group: the database,
    not a check-then-insert, decides who wins a race. A task is retried at
    most once: AlreadyRetried names the retry that exists (checked inside
    the write transaction, which no other writer can interleave).
    """
    kind = registry.TASK_TYPES[task_type]
    single_flight = 1 if kind.single_flight else 0
    for _ in range(3):
        try:
            with transaction(conn):
                if retry_of is not None:
                    existing = latest_retry(conn, retry_of)
                    if existing is not None:
                        raise AlreadyRetried(retry_of, existing)
                cur = conn.execute(
                    "INSERT INTO background_tasks (task_type, status, params, retry_of, single_flight,"
                    " exclusive_group) VALUES (?, 'pending', ?, ?, ?, ?)",
                    (task_type, json.dumps(params or {}, sort_keys=True), retry_of, single_flight, kind.group))
                return cur.lastrowid
        except sqlite3.IntegrityError:
            active, active_type = find_active_task(conn, task_type, kind.group)
            if active is not None:
                raise TaskConflict(task_type, active, active_type)
            # The winner finished between our insert and the look-up: try again.
    raise TaskConflict(task_type, None)


def task_filter(status=None, task_type=None):
    """The WHERE clause (or '') and its arguments for the task list's filters."""
    where, args = [], []
    if status:
        where.append("status = ?")
        args.append(status)
    if task_type:
        where.append("task_type = ?")
        args.append(task_type)
    return ((" WHERE " + " AND ".join(where)) if where else ""), args


def list_tasks(conn, status=None, task_type=None, limit=50, offset=0):
    """Tasks, newest first, with the total that match the filters."""
    clause, args = task_filter(status, task_type)
    total = conn.execute("SELECT COUNT(*) FROM background_tasks" + clause, args).fetchone()[0]
    rows = conn.execute("SELECT " + TASK_COLUMNS + " FROM background_tasks" + clause
                        + " ORDER BY id DESC LIMIT ? OFFSET ?", args + [limit, offset]).fetchall()
    return rows, total


def stream_tasks(conn, status=None, task_type=None, batch=500):
    """Every task that matches the filters, newest first, read ``batch`` rows
    at a time from one statement (one snapshot) rather than all at once."""
    clause, args = task_filter(status, task_type)
    yield from rows_of(conn.execute("SELECT " + TASK_COLUMNS + " FROM background_tasks" + clause
                                    + " ORDER BY id DESC", args), batch)


def rows_of(cursor, batch):
    """The rows of an executed ``cursor``, read ``batch`` at a time; the cursor
    is closed at the end, or when the caller closes this generator."""
    try:
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                return
            yield from rows
    finally:
        cursor.close()


def finish_task(conn, task_id, status, from_status, error_message=None, result=None, counts=None):
    """Compare-and-set a task to a final status; True if this call did it.

    ``counts``: the (progress, total, current_item) its worker reached, which
    the worker records with its end.
    """
    row = conn.execute("SELECT task_type, result FROM background_tasks WHERE id = ?", (task_id,)).fetchone()
    kind = registry.TASK_TYPES.get(row["task_type"]) if row is not None else None
    if result is None and row is not None and row["result"]:
        try:
            final = json.loads(row["result"])
        except ValueError:
            final = None
    else:
        final = result
    partial = bool(kind and kind.partial) and is_partial(status, final)
    sets = ("status = ?, error_message = COALESCE(?, error_message), result = COALESCE(?, result),"
            " completed_at = datetime('now'), completed_at_precise = " + NOW_PRECISE + ", partial = ?")
    values = [status, error_message, None if result is None else json.dumps(result), 1 if partial else 0]
    if counts is not None:
        sets += ", progress = ?, total = ?, current_item = ?, heartbeat_at = datetime('now')"
        values += list(counts)
    with transaction(conn):
        cur = conn.execute("UPDATE background_tasks SET " + sets + " WHERE id = ? AND status = ?",
                           values + [task_id, from_status])
        return cur.rowcount == 1


def claim_task(conn, task_id, pid):
    """pending -> running, if nobody else did it first; returns the row or None.

    A task inserted by hand (the seed's SQL) gets its type's exclusive group
    here; TaskConflict if a task of that group is active.
    """
    row = get_task(conn, task_id)
    kind = registry.TASK_TYPES.get(row["task_type"]) if row is not None else None
    group = kind.group if kind is not None else None
    try:
        with transaction(conn):
            cur = conn.execute(
                "UPDATE background_tasks SET status = 'running', pid = ?, started_at = datetime('now'),"
                " started_at_precise = " + NOW_PRECISE + ", exclusive_group = COALESCE(exclusive_group, ?),"
                " heartbeat_at = datetime('now') WHERE id = ? AND status = 'pending'", (pid, group, task_id))
            if cur.rowcount != 1:
                return None
            return get_task(conn, task_id)
    except sqlite3.IntegrityError:
        active = conn.execute("SELECT id, task_type FROM background_tasks WHERE status IN ('pending', 'running')"
                              " AND exclusive_group = ? AND id <> ? ORDER BY id LIMIT 1", (group, task_id)).fetchone()
        raise TaskConflict(row["task_type"], active and active["id"], active and active["task_type"])


def request_cancel(conn, task_id):
    """Ask a running task to stop; True if it is running (its worker then stops)."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE background_tasks SET cancel_requested_at = COALESCE(cancel_requested_at, datetime('now'))"
            " WHERE id = ? AND status = 'running'", (task_id,))
        return cur.rowcount == 1


def record_progress(conn, task_id, progress, total, current_item, result):
    """A running task's progress and heartbeat, written by its worker."""
    with transaction(conn):
        conn.execute(
            "UPDATE background_tasks SET progress = ?, total = ?, current_item = ?,"
            " result = ?, heartbeat_at = datetime('now') WHERE id = ? AND status = 'running'",
            (progress, total, current_item, json.dumps(result), task_id))


def stop_signals(conn, task_id):
    """(status, cancel_requested_at) of a task, or None if it is gone: what its worker obeys."""
    return conn.execute("SELECT status, cancel_requested_at FROM background_tasks WHERE id = ?",
                        (task_id,)).fetchone()


def latest_retry(conn, task_id):
    """The id of the latest task that retries ``task_id``, or None."""
    return conn.execute("SELECT MAX(id) FROM background_tasks WHERE retry_of = ?", (task_id,)).fetchone()[0]
