#!/usr/bin/env python3
"""IPFSMaster: a web console for the operator of an IPFS (Kubo) node.

It keeps a local catalogue of the node's pins in SQLite and runs long jobs,
above all syncing the pin list, as background tasks: each task is a row in
``background_tasks`` and a detached ``worker.py`` process that records its
progress there, while the browser (or the command line) watches, cancels,
retries and cleans up.

Run the console (standard library only, Python 3.9+):

    python3 ipfsmaster.py [serve] [--host 127.0.0.1] [--port 7789]
                          [--db ipfsmaster.db] [--ipfs-api http://127.0.0.1:5001]

Other commands: ``sync``, ``pin add``, ``pin rm``, ``gc``, ``node``, ``tasks``,
``show``, ``cancel``, ``retry``, ``cleanup``, ``reap``, ``bundle``; ``python3
ipfsmaster.py COMMAND --help`` explains each. ``bundle`` writes the whole
console into one zipapp, ``ipfsmaster.pyz``, which runs the same commands.

The module reads top to bottom: settings, database, tasks, errors and
messages, request helpers, handlers, the route table, the app, the server,
the command line. Nothing runs at import time.
"""

import argparse
import calendar
import contextlib
import functools
import hashlib
import heapq
import hmac
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import socketserver
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
import zipfile
from urllib.parse import parse_qs, quote, unquote, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

__version__ = "1.0"

HERE = os.path.dirname(os.path.abspath(__file__))
# Run as a zipapp (python3 ipfsmaster.pyz), HERE is the archive itself: the
# schema, static/ and the worker are then read from inside it.
ARCHIVE = HERE if os.path.isfile(HERE) else None
WORKER_PATH = os.path.join(HERE, "worker.py")
# The files of the checkout that make up the console (and the zipapp).
SHIPPED = [":(glob)*.py", "schema.sql", "static"]

log = logging.getLogger("ipfsmaster")


# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------

DEFAULTS = {
    "host": "127.0.0.1",
    "port": 7789,
    "db": "ipfsmaster.db",
    "ipfs_api": "http://127.0.0.1:5001",
    "stale_seconds": 30,
    "cancel_grace_seconds": 10,
    "retention_days": 30,
    "max_upload_bytes": 4 * 1024 ** 3,
    "request_timeout": 60,
    "password": None,
    "ipfs_auth": None,
    "cluster_api": None,
    "cluster_auth": None,
    "gateway": None,
    "trust_proxy": False,
}


def yes_or_no(raw):
    """An on/off setting from the environment: 1/yes/true/on or 0/no/false/off."""
    value = raw.strip().lower()
    if value in ("1", "yes", "true", "on"):
        return True
    if value in ("0", "no", "false", "off"):
        return False
    raise ValueError(raw)


# The least each number setting may be: a zero or negative interval would
# fail every task at once, or never let one be cancelled.
LOWEST = {"stale_seconds": 1, "cancel_grace_seconds": 1, "retention_days": 1, "max_upload_bytes": 1,
          "request_timeout": 1}

# What each kind of environment value must be, as an error message says it.
KIND_NAMES = {int: "a whole number", str: "text", yes_or_no: "yes or no"}

# Setting name -> (environment variable, type).
ENVIRONMENT = {
    "host": ("IPFSMASTER_HOST", str),
    "port": ("IPFSMASTER_PORT", int),
    "db": ("IPFSMASTER_DB", str),
    "ipfs_api": ("IPFSMASTER_IPFS_API", str),
    "stale_seconds": ("IPFSMASTER_STALE_SECONDS", int),
    "cancel_grace_seconds": ("IPFSMASTER_CANCEL_GRACE_SECONDS", int),
    "retention_days": ("IPFSMASTER_RETENTION_DAYS", int),
    "max_upload_bytes": ("IPFSMASTER_MAX_UPLOAD_BYTES", int),
    "request_timeout": ("IPFSMASTER_REQUEST_TIMEOUT", int),
    "password": ("IPFSMASTER_PASSWORD", str),
    "ipfs_auth": ("IPFSMASTER_IPFS_AUTH", str),
    "cluster_api": ("IPFSMASTER_CLUSTER_API", str),
    "cluster_auth": ("IPFSMASTER_CLUSTER_AUTH", str),
    "gateway": ("IPFSMASTER_GATEWAY", str),
    "trust_proxy": ("IPFSMASTER_TRUST_PROXY", yes_or_no),
}


SECRET_SETTINGS = ("password", "ipfs_auth", "cluster_auth")


class Settings:
    """The console's configuration: defaults, then the environment, then flags."""

    def __init__(self, **overrides):
        for name, value in DEFAULTS.items():
            setattr(self, name, value)
        for name, value in overrides.items():
            if name not in DEFAULTS:
                raise TypeError("unknown setting %r" % name)
            if value is not None:
                setattr(self, name, value)

    @classmethod
    def from_environment(cls, environ=None, **flags):
        """Settings from ``environ`` (default ``os.environ``), overridden by flags."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, (variable, kind) in ENVIRONMENT.items():
            raw = environ.get(variable, "").strip()
            if raw:
                try:
                    values[name] = kind(raw)
                except ValueError:
                    raise SystemExit("%s must be %s, not %r" % (variable, KIND_NAMES[kind], raw))
        values.update((name, value) for name, value in flags.items() if value is not None)
        for name, low in LOWEST.items():
            if name in values and values[name] < low:
                raise SystemExit("--%s (%s) must be at least %d, not %d"
                                 % (name.replace("_", "-"), ENVIRONMENT[name][0], low, values[name]))
        if not 0 <= values.get("port", 0) <= 65535:
            raise SystemExit("--port (IPFSMASTER_PORT) must be from 0 to 65535, not %d" % values["port"])
        return cls(**values)

    def __repr__(self):
        shown = {name: getattr(self, name) for name in DEFAULTS if name not in SECRET_SETTINGS}
        return "Settings(%s)" % ", ".join("%s=%r" % item for item in sorted(shown.items()))

    def sync_params(self):
        """A pin sync's parameters: where the node (and the cluster, if any) is."""
        params = {"ipfs_api": self.ipfs_api}
        if self.cluster_api:
            params["cluster_api"] = self.cluster_api
        return params

    @property
    def task_dir(self):
        """The folder beside the database that holds task logs and upload spools."""
        base, _ = os.path.splitext(os.path.abspath(self.db))
        return base + "-tasks"


def read_secret_file(path, what):
    """The first line of a file holding a secret (a password, API credentials)."""
    try:
        with open(path, encoding="utf-8") as f:
            secret = f.readline().strip()
    except OSError as exc:
        raise SystemExit("cannot read the %s file %s: %s" % (what, path, exc.strerror))
    if not secret:
        raise SystemExit("the %s file %s is empty" % (what, path))
    return secret


def split_api_credentials(api_url):
    """An API URL with ``user:password@`` moved out: (clean URL, 'basic:user:password' or None).

    Credentials must never reach task parameters, the browser or a log line.
    """
    parts = urlsplit(api_url)
    if parts.username is None:
        return api_url, None
    clean = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return clean, "basic:%s:%s" % (unquote(parts.username), unquote(parts.password or ""))


def task_log_path(settings, task_id):
    return os.path.join(settings.task_dir, "task-%d.log" % int(task_id))


def spool_path(settings, task_id):
    """Where an upload task's file waits for its worker."""
    return os.path.join(settings.task_dir, "task-%d.upload" % int(task_id))


def heartbeat_path(settings, task_id):
    """A file whose modification time a running worker renews: a sign of
    life that no lock on the database can hold up."""
    return os.path.join(settings.task_dir, "task-%d.alive" % int(task_id))


def heartbeat_fresh(settings, task_id):
    """Whether the task's worker renewed its heartbeat file within the stale limit."""
    try:
        age = time.time() - os.stat(heartbeat_path(settings, task_id)).st_mtime
    except OSError:
        return False
    return age < settings.stale_seconds


def discard_spool(settings, task_id):
    with contextlib.suppress(FileNotFoundError):
        os.remove(spool_path(settings, task_id))


# ---------------------------------------------------------------------------
# The console's own files: a checkout, or one zipapp
# ---------------------------------------------------------------------------

def read_shipped_file(folder, name):
    """The bytes of ``name`` inside ``folder`` ('' for the top) of the console's
    own files, from the checkout or from inside the zipapp; None when there is
    no such file or the name leads out of ``folder``."""
    if ARCHIVE:
        # Only the archive's members exist here: no symlinks, no folders, no "..".
        with zipfile.ZipFile(ARCHIVE) as archive:
            try:
                return archive.read("/".join(part for part in (folder, name) if part))
            except KeyError:
                return None
    root = os.path.realpath(os.path.join(HERE, folder))
    path = os.path.realpath(os.path.join(root, name))
    if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return f.read()


def source_version(folder):
    """__version__, plus the git commit when ``folder`` is the top of a git
    checkout (and ``.dirty`` when the console's files differ from it)."""
    def git(*args):
        return subprocess.run(["git", "--no-optional-locks", "-C", folder] + list(args), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True,
                              universal_newlines=True).stdout
    try:
        top, commit = git("rev-parse", "--show-toplevel", "--short=12", "HEAD").split()
        if os.path.realpath(top) != os.path.realpath(folder):
            return __version__
        dirty = git("status", "--porcelain", "--", *SHIPPED).strip()
    except (OSError, ValueError, subprocess.CalledProcessError):
        return __version__  # no git, or not a checkout of its own
    return "%s+g%s%s" % (__version__, commit, ".dirty" if dirty else "")


@functools.lru_cache(maxsize=None)
def version():
    """This console's version: the one the zipapp recorded, else the checkout's."""
    recorded = read_shipped_file("", "VERSION")
    if recorded is not None:
        return recorded.decode("utf-8").strip()
    return source_version(HERE)


# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------

SCHEMA_VERSION = 2
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


# ---------------------------------------------------------------------------
# Tasks: the store shared by the server, the command line and the worker
# ---------------------------------------------------------------------------

class TaskConflict(Exception):
    """A single-flight task type, or its exclusive group, already has an active task."""

    def __init__(self, task_type, active_id, active_type=None):
        super().__init__(task_type, active_id)
        self.task_type = task_type
        self.active_id = active_id
        self.active_type = active_type or task_type

    def message(self):
        """(template, values) of the sentence that explains the refusal."""
        labels = task_labels()
        if self.active_type == self.task_type:
            return "A {what} is already running (task {id}).", {"what": labels[self.task_type], "id": self.active_id}
        return ("A {what} cannot start while a {other} runs (task {id}); try again when it has ended.",
                {"what": labels[self.task_type], "other": labels[self.active_type], "id": self.active_id})


class TaskStateError(Exception):
    """The task is not in a status that allows the requested change."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class NotRetryable(Exception):
    """The task's type cannot be run again (its input is gone)."""


def task_types():
    """The registry of task types, which lives with the code that runs them."""
    import worker  # worker imports this module, so import it only when needed
    return worker.TASK_TYPES


def pin_tasks():
    """The module of the pin tasks (loaded with the registry, which names its functions)."""
    task_types()
    import tasks_pins
    return tasks_pins


def task_labels():
    """{type: {"en": "pin sync", "zh": "Pin 同步"}}: the names a sentence uses."""
    return {name: {"en": kind.label[0].lower() + kind.label[1:], "zh": kind.label_zh}
            for name, kind in task_types().items()}


def task_type_info():
    """The registry as the pages and scripts read it (GET /api/info)."""
    return {name: {"label": {"en": kind.label, "zh": kind.label_zh}, "unit": kind.unit,
                   "single_flight": kind.single_flight, "retryable": kind.retryable, "group": kind.group}
            for name, kind in task_types().items()}


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
    task_type = task_types().get(task["task_type"])
    task["retryable"] = task["status"] in ("failed", "cancelled") and bool(task_type and task_type.retryable)
    task["duration_s"] = task_duration(row)
    return task


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


def get_task(conn, task_id):
    return conn.execute("SELECT * FROM background_tasks WHERE id = ?", (task_id,)).fetchone()


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
    not a check-then-insert, decides who wins a race.
    """
    kind = task_types()[task_type]
    single_flight = 1 if kind.single_flight else 0
    for _ in range(3):
        try:
            with transaction(conn):
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


def list_tasks(conn, status=None, task_type=None, limit=50, offset=0):
    """Tasks, newest first, with the total that match the filters."""
    where, args = [], []
    if status:
        where.append("status = ?")
        args.append(status)
    if task_type:
        where.append("task_type = ?")
        args.append(task_type)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute("SELECT COUNT(*) FROM background_tasks" + clause, args).fetchone()[0]
    rows = conn.execute("SELECT * FROM background_tasks" + clause + " ORDER BY id DESC LIMIT ? OFFSET ?",
                        args + [limit, offset]).fetchall()
    return rows, total


def finish_task(conn, task_id, status, from_status, error_message=None, result=None):
    """Compare-and-set a task to a final status; True if this call did it."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE background_tasks SET status = ?, error_message = COALESCE(?, error_message),"
            " result = COALESCE(?, result), completed_at = datetime('now'), completed_at_precise = " + NOW_PRECISE +
            " WHERE id = ? AND status = ?",
            (status, error_message, None if result is None else json.dumps(result), task_id, from_status))
        return cur.rowcount == 1


def cancel_task(settings, conn, task_id):
    """Cancel a pending task at once, or ask a running one to stop.

    Returns "cancelled" or "cancelling"; TaskStateError if already final.
    """
    for _ in range(3):
        row = get_task(conn, task_id)
        if row is None:
            raise KeyError(task_id)
        if row["status"] == "pending":
            if finish_task(conn, task_id, "cancelled", "pending", error_message="Cancelled before it started"):
                discard_spool(settings, task_id)
                return "cancelled"
        elif row["status"] == "running":
            with transaction(conn):
                cur = conn.execute(
                    "UPDATE background_tasks SET cancel_requested_at = COALESCE(cancel_requested_at, datetime('now'))"
                    " WHERE id = ? AND status = 'running'", (task_id,))
            if cur.rowcount == 1:
                return "cancelling"
        else:
            raise TaskStateError(row["status"])
    raise TaskStateError(get_task(conn, task_id)["status"])


# Process handling: the server and the command line start workers detached,
# check that they live and, when a cancel is ignored, stop them.

# os.name as the process functions see it; the tests fake other systems here.
OS_NAME = os.name
# Where Linux shows its processes; macOS and the BSDs have no /proc.
PROC_DIR = "/proc"
# How long a worker that ignores SIGTERM has before SIGKILL.
KILL_AFTER_SECONDS = 3

# DETACHED_PROCESS already means no console, so no window either.
WINDOWS_DETACH_FLAGS = (getattr(subprocess, "DETACHED_PROCESS", 0x00000008)
                        | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x00000200))


def detach_options(os_name=None):
    """Popen options that detach a worker from the server and its terminal."""
    if (os_name or OS_NAME) == "nt":
        return {"creationflags": WINDOWS_DETACH_FLAGS}
    return {"start_new_session": True}


def spawn_worker(settings, task_id):
    """Start ``worker.py TASK_ID`` (in a zipapp: ``ARCHIVE worker TASK_ID``)
    detached, its output going to the task's log."""
    os.makedirs(settings.task_dir, mode=0o700, exist_ok=True)
    log_path = task_log_path(settings, task_id)
    # -S: the worker needs nothing but the standard library, and skipping
    # site-packages (and whatever their .pth files import) saves most of its start.
    script, folder = ([ARCHIVE, "worker"], os.path.dirname(ARCHIVE)) if ARCHIVE else ([WORKER_PATH], HERE)
    args = [sys.executable, "-S"] + script + [str(int(task_id)), "--db", os.path.abspath(settings.db)]
    env = dict(os.environ)
    env.pop("IPFSMASTER_PASSWORD", None)  # the worker has no use for it
    # Credentials go through the environment: never in argv or the task's parameters.
    for name in ("ipfs_auth", "cluster_auth"):
        if getattr(settings, name):
            env[ENVIRONMENT[name][0]] = getattr(settings, name)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT,
                                close_fds=True, cwd=folder, env=env, **detach_options())
    finally:
        os.close(fd)
    # Collect the exit status so a finished worker does not linger as a zombie
    # (a zombie still answers to its pid and would look alive).
    threading.Thread(target=proc.wait, name="reap-%d" % proc.pid, daemon=True).start()
    return proc.pid


def has_proc():
    return os.path.isdir(os.path.join(PROC_DIR, "self"))


def process_alive(pid):
    """True if a process with this pid exists and has not exited."""
    if not pid or pid <= 0:
        return False
    if OS_NAME == "nt":
        return _windows_process_alive(pid)
    if has_proc():
        try:
            with open(os.path.join(PROC_DIR, "%d" % pid, "stat"), "rb") as f:
                # The state follows the command name in parentheses; Z is a zombie.
                return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
        except FileNotFoundError:
            return False
        except (OSError, IndexError):
            pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_task_worker(pid, task_id, created_at=None, started_at=None):
    """True if ``pid`` is a live worker process for this task: pids are
    reused, and a forced cancel must never end someone else's process.

    On POSIX the process's command line is a worker's for the task (see
    is_worker_command); on Windows, which has no cheap way to read it, the process must have been
    created between the task's ``created_at`` and ``started_at`` (when its
    worker claimed it), which a process that took over the pid later was not.
    """
    if not process_alive(pid):
        return False
    if OS_NAME == "nt":
        return _windows_created_between(pid, created_at, started_at)
    return is_worker_command(command_line(pid), task_id)


def is_worker_command(argv, task_id):
    """True for a worker's command line (bytes): ``... worker.py ... TASK_ID ...``,
    or the zipapp's ``... ARCHIVE worker TASK_ID ...``."""
    task = str(int(task_id)).encode()
    if any(arg.endswith(b"worker.py") for arg in argv):
        return task in argv
    return any(arg == b"worker" and following == task for arg, following in zip(argv, argv[1:]))


def command_line(pid):
    """A process's arguments as bytes ([] if it cannot be read): from /proc,
    else from ``ps``."""
    if has_proc():
        try:
            with open(os.path.join(PROC_DIR, "%d" % pid, "cmdline"), "rb") as f:
                return f.read().split(b"\0")
        except FileNotFoundError:
            return []
        except OSError:
            pass
    try:
        out = subprocess.run(["ps", "-ww", "-o", "args=", "-p", str(int(pid))], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=False, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return out.split()


def terminate_process(pid, task_id):
    """End a task's worker that ignored its cancel: SIGTERM, then SIGKILL if
    it is still there KILL_AFTER_SECONDS later; TerminateProcess on Windows."""
    if OS_NAME == "nt":
        _windows_terminate(pid)
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    # Not a daemon: `ipfsmaster.py reap` waits for it before it exits.
    threading.Thread(target=kill_if_still_there, args=(pid, task_id), name="kill-%d" % pid).start()


def kill_if_still_there(pid, task_id):
    deadline = time.monotonic() + KILL_AFTER_SECONDS
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return
        time.sleep(0.05)
    if is_task_worker(pid, task_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def sqlite_time(text):
    """A timestamp as SQLite's datetime('now') writes it (UTC), in seconds since the epoch."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def _windows_created_between(pid, created_at, started_at):
    created = _windows_process_created(pid)
    try:
        low, high = sqlite_time(created_at), sqlite_time(started_at)
    except (TypeError, ValueError):  # not started, or a time written by hand
        return False
    # The timestamps are whole seconds, cut down: a second of slack each way.
    return created is not None and low - 1 <= created <= high + 1


def _windows_process_alive(pid):
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _windows_process_created(pid):
    """When a process was created, in seconds since the epoch, or None."""
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        # Each FILETIME counts 100 ns since 1601-01-01 UTC in 64 bits.
        created, exited, kernel, user = (ctypes.c_ulonglong() for _ in range(4))
        if not kernel32.GetProcessTimes(handle, ctypes.byref(created), ctypes.byref(exited),
                                        ctypes.byref(kernel), ctypes.byref(user)):
            return None
        return created.value / 10 ** 7 - 11644473600
    finally:
        kernel32.CloseHandle(handle)


def _windows_terminate(pid):
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x0001, False, pid)  # PROCESS_TERMINATE
    if handle:
        try:
            kernel32.TerminateProcess(handle, 1)
        finally:
            kernel32.CloseHandle(handle)


WORKER_DIED = "worker process exited unexpectedly"
WORKER_NEVER_STARTED = "worker process never started"
CANCEL_FORCED = "Cancelled: the worker did not stop in time and was terminated"


def mark_stale_tasks(conn, settings):
    """Fail tasks whose worker is gone, and force cancels the worker ignored.

    A worker is gone when its process is, or when neither its heartbeat in
    the table nor its heartbeat file was renewed within the stale limit: the
    file goes on while a long transaction holds up the table's.

    Runs whenever tasks are read or a task is requested, at server start and
    as ``ipfsmaster.py reap``: no cron needed. Returns the ids it changed.
    """
    changed = []
    stale = "-%d seconds" % settings.stale_seconds
    grace = "-%d seconds" % settings.cancel_grace_seconds
    rows = conn.execute(
        "SELECT id, status, pid, created_at, started_at,"
        " COALESCE(heartbeat_at, started_at, created_at) < datetime('now', ?) AS silent,"
        " cancel_requested_at IS NOT NULL AND cancel_requested_at < datetime('now', ?) AS overdue"
        " FROM background_tasks WHERE status IN ('pending', 'running')", (stale, grace)).fetchall()
    for row in rows:
        if row["status"] == "pending":
            if row["silent"] and finish_task(conn, row["id"], "failed", "pending", WORKER_NEVER_STARTED):
                changed.append(row["id"])
        elif row["overdue"]:
            if is_task_worker(row["pid"], row["id"], row["created_at"], row["started_at"]):
                terminate_process(row["pid"], row["id"])
            if finish_task(conn, row["id"], "cancelled", "running", CANCEL_FORCED):
                changed.append(row["id"])
        elif (row["silent"] and not heartbeat_fresh(settings, row["id"])) or not process_alive(row["pid"]):
            if finish_task(conn, row["id"], "failed", "running", WORKER_DIED):
                changed.append(row["id"])
    for task_id in changed:
        discard_spool(settings, task_id)
    return changed


def cleanup_tasks(conn, settings, days):
    """Delete finished tasks older than ``days`` and their files; returns the ids."""
    # The latest completed pin sync stays: the pins page says when the last sync was.
    rows = conn.execute(
        "SELECT id, CASE WHEN json_valid(params) THEN json_extract(params, '$.pin_list') END AS pin_list"
        " FROM background_tasks"
        " WHERE status IN ('completed', 'failed', 'cancelled') AND created_at < datetime('now', ?)"
        " AND id IS NOT (SELECT MAX(id) FROM background_tasks WHERE task_type = 'pin_sync'"
        " AND status = 'completed')", ("-%d days" % days,)).fetchall()
    ids = [row["id"] for row in rows]
    with transaction(conn):
        conn.executemany("DELETE FROM background_tasks WHERE id = ? AND status IN ('completed', 'failed', 'cancelled')",
                         [(task_id,) for task_id in ids])
    tasks_pins = pin_tasks()
    lists = tasks_pins.unreferenced_pin_lists(conn, settings, [row["pin_list"] for row in rows if row["pin_list"]])
    for path in [task_log_path(settings, task_id) for task_id in ids] + lists + [
            tasks_pins.undone_path(settings.db, task_id) for task_id in ids] + [
            heartbeat_path(settings, task_id) for task_id in ids]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    for task_id in ids:
        discard_spool(settings, task_id)
    return ids


def read_log_tail(settings, task_id, max_bytes=16384):
    """The last ``max_bytes`` of a task's worker output ('' if none)."""
    try:
        with open(task_log_path(settings, task_id), "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", "replace")
    if size > max_bytes and "\n" in text:
        text = text.split("\n", 1)[1]  # drop the partial first line
    return text


def start_task(settings, conn, task_type, params=None, retry_of=None, prepare=None):
    """Create a task and start its worker; returns the new id.

    ``prepare(task_id)``, if given, runs between the two (to put the task's
    input in place).
    """
    mark_stale_tasks(conn, settings)
    task_id = create_task(conn, task_type, params, retry_of=retry_of)
    try:
        if prepare is not None:
            prepare(task_id)
        spawn_worker(settings, task_id)
    except OSError as exc:
        finish_task(conn, task_id, "failed", "pending", "could not start the worker: %s" % exc.strerror)
        discard_spool(settings, task_id)
        raise
    return task_id


def retry_task(settings, conn, task_id, ipfs_api=None):
    """Start a new task like a failed or cancelled one, linked to it; returns the new id.

    ``ipfs_api``, if given, replaces the node's address the old task used.

    KeyError if there is no such task, TaskStateError if it is not failed or
    cancelled, NotRetryable for types whose input is gone, TaskConflict.
    """
    row = get_task(conn, task_id)
    if row is None:
        raise KeyError(task_id)
    if row["status"] not in ("failed", "cancelled"):
        raise TaskStateError(row["status"])
    task_type = task_types().get(row["task_type"])
    if task_type is None or not task_type.retryable:
        raise NotRetryable(row["task_type"])
    params = json.loads(row["params"] or "{}")
    if ipfs_api:
        params["ipfs_api"] = ipfs_api
    return start_task(settings, conn, row["task_type"], params, retry_of=task_id)


# ---------------------------------------------------------------------------
# Errors and messages
# ---------------------------------------------------------------------------

NO_CLUSTER = "No IPFS Cluster is set (--cluster-api or IPFSMASTER_CLUSTER_API)."

# Every sentence the server says to a person, in Simplified Chinese. The key
# is the English template; {name} fields are filled in after translation.
MESSAGES_ZH = {
    "Not found.": "未找到。",
    "This address does not accept {method}. Use {allowed}.": "此地址不接受 {method} 请求，请使用 {allowed}。",
    "The task id is missing.": "缺少任务编号。",
    "The task id must be a positive whole number.": "任务编号必须是正整数。",
    "There is no task {id}.": "不存在编号为 {id} 的任务。",
    "A {what} is already running (task {id}).": "已有一个{what}任务正在进行（任务 {id}）。",
    "A {what} cannot start while a {other} runs (task {id}); try again when it has ended.":
        "{other}任务正在进行（任务 {id}），{what}无法开始；请在它结束后重试。",
    "Send the CIDs as JSON (a list named cids), as text/plain with one CID a line, or as a multipart/form-data"
    " field named file.": "请以 JSON（名为 cids 的列表）、每行一个 CID 的 text/plain，或 multipart/form-data 的 file 字段发送 CID。",
    "The request body is not valid JSON.": "请求体不是有效的 JSON。",
    "Send the CIDs to unpin as JSON, in a list named cids.": "请以 JSON 格式在名为 cids 的列表中发送要取消固定的 CID。",
    "cids must be a list of CIDs, each as text.": "cids 必须是 CID 列表，每项为文本。",
    "name must be text of at most 255 characters.": "name 必须是不超过 255 个字符的文本。",
    "Too many CIDs at once: at most {limit}.": "一次提交的 CID 过多：最多 {limit} 个。",
    "The list holds no CID.": "列表中没有 CID。",
    "No line holds a valid CID: {invalid} lines are not CIDs (the first is line {line}).":
        "没有任何一行包含有效的 CID：{invalid} 行不是 CID（第一处在第 {line} 行）。",
    "The IPFS node cannot be reached: {reason}": "无法连接 IPFS 节点：{reason}",
    "Task {id} has already finished ({status}).": "任务 {id} 已经结束（{status}）。",
    "Only failed or cancelled tasks can be retried; task {id} is {status}.":
        "只有失败或已取消的任务可以重试；任务 {id} 当前为 {status}。",
    "{name} must be a whole number from {low} to {high}.": "{name} 必须是 {low} 到 {high} 之间的整数。",
    "Unknown status {value!r}.": "未知的状态 {value!r}。",
    "Unknown task type {value!r}.": "未知的任务类型 {value!r}。",
    "Unknown sort order {value!r}.": "未知的排序方式 {value!r}。",
    "The request body is too large.": "请求体过大。",
    "Cross-site requests are not allowed.": "不允许跨站请求。",
    "This console answers only at its own address, such as http://127.0.0.1, not at {host}.":
        "此控制台只在它自己的地址（例如 http://127.0.0.1）上应答，不在 {host} 上应答。",
    "The Content-Length header is not a valid size.": "Content-Length 请求头不是有效的大小。",
    "The request line is too long.": "请求行过长。",
    "The request headers are too large.": "请求头过大。",
    "The request is malformed.": "请求格式错误。",
    "Log in first: this console needs a password.": "请先登录：此控制台需要密码。",
    "Wrong password.": "密码错误。",
    "Too many failed logins. Try again in {seconds} seconds.": "登录失败次数过多，请在 {seconds} 秒后重试。",
    "The upload is malformed or was cut short.": "上传内容格式错误或不完整。",
    "Send the file as multipart/form-data in a field named file.": "请以 multipart/form-data 格式在 file 字段中发送文件。",
    "Say how large the upload is (Content-Length).": "请提供上传大小（Content-Length）。",
    "The file is larger than the limit of {limit} bytes.": "文件超过了 {limit} 字节的上限。",
    "The field {name} is too long.": "字段 {name} 过长。",
    "A folder upload holds at most {limit} files.": "一次文件夹上传最多包含 {limit} 个文件。",
    "An upload cannot be retried: its file is removed when the task ends. Upload it again.":
        "上传任务无法重试：任务结束时文件已被删除。请重新上传。",
    "The worker could not be started.": "无法启动后台进程。",
    "A replication factor needs an IPFS Cluster (--cluster-api).": "副本数需要 IPFS Cluster（--cluster-api）。",
    "{name} must be -1 (every peer) or a whole number from 1 to 1000.":
        "{name} 必须是 -1（所有节点）或 1 到 1000 之间的整数。",
    "replication_min cannot be more than replication_max.": "replication_min 不能大于 replication_max。",
    NO_CLUSTER: "未设置 IPFS Cluster（--cluster-api 或 IPFSMASTER_CLUSTER_API）。",
    "Something went wrong on the server; the details are in its log.": "服务器出错，详情见服务器日志。",
    "The database is busy with a long write (such as a sync saving the catalogue). Try again in a moment.":
        "数据库正忙于一次较长的写入（例如同步正在保存目录），请稍后重试。",
}

LANGUAGES = ("en", "zh")


def translate(template, lang, **values):
    """The sentence in ``lang``; a value may itself be {"en": ..., "zh": ...}."""
    if lang == "zh":
        template = MESSAGES_ZH.get(template, template)
    values = {name: value.get(lang, value["en"]) if isinstance(value, dict) else value
              for name, value in values.items()}
    return template.format(**values)


def database_busy(exc):
    """Whether an sqlite3.OperationalError means another connection held the lock too long."""
    return "locked" in str(exc) or "busy" in str(exc)


class Redirect(Exception):
    """Raised to send the browser elsewhere (to the login form)."""

    def __init__(self, location):
        super().__init__(location)
        self.location = location


class HTTPError(Exception):
    """Raised anywhere in a handler; ``app`` turns it into the JSON error."""

    def __init__(self, code, template, headers=None, extra=None, **values):
        super().__init__(code, template)
        self.status = code
        self.template = template
        self.values = values
        self.headers = headers or []
        self.extra = extra or {}


STATUS_LINES = {
    200: "200 OK", 202: "202 Accepted", 303: "303 See Other", 400: "400 Bad Request", 401: "401 Unauthorized",
    403: "403 Forbidden", 404: "404 Not Found", 405: "405 Method Not Allowed", 409: "409 Conflict",
    411: "411 Length Required", 413: "413 Payload Too Large", 415: "415 Unsupported Media Type",
    421: "421 Misdirected Request", 429: "429 Too Many Requests", 500: "500 Internal Server Error",
    502: "502 Bad Gateway", 503: "503 Service Unavailable",
}


# ---------------------------------------------------------------------------
# Request helpers
# ---------------------------------------------------------------------------

MAX_ID = 2 ** 63 - 1
MAX_FORM_BODY = 64 * 1024
ID_PATTERN = re.compile(r"[0-9]{1,19}")


def pick_language(environ):
    """The language of the answer: the `lang` cookie, else Accept-Language."""
    chosen = cookie_value(environ, "lang")
    if chosen in LANGUAGES:
        return chosen
    best, best_q = "en", 0.0
    for item in environ.get("HTTP_ACCEPT_LANGUAGE", "").split(","):
        tag, _, q = item.strip().partition(";q=")
        primary = tag.strip().lower().split("-")[0]
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if primary in LANGUAGES and weight > best_q:
            best, best_q = primary, weight
    return best


class Request:
    """One HTTP request: its method, path, query and language."""

    def __init__(self, environ, settings, auth, pool, cancels):
        self.environ = environ
        self.settings = settings
        self.auth = auth
        self.pool = pool
        self.cancels = cancels
        self.method = environ["REQUEST_METHOD"].upper()
        self.path = environ.get("PATH_INFO") or "/"
        self.query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.lang = pick_language(environ)
        self.client = client_address(environ, settings.trust_proxy)
        self._db = None

    def arg(self, name, default=""):
        values = self.query.get(name)
        return values[-1] if values else default

    def task_id(self):
        """The ``id`` argument as a task id, or a 400."""
        raw = self.arg("id")
        if not raw:
            raise HTTPError(400, "The task id is missing.")
        if not ID_PATTERN.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
            raise HTTPError(400, "The task id must be a positive whole number.")
        return int(raw)

    def int_arg(self, name, default, low, high):
        raw = self.arg(name).strip()
        if not raw:
            return default
        if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
            raise HTTPError(400, "{name} must be a whole number from {low} to {high}.", name=name, low=low, high=high)
        return int(raw)

    def content_length(self):
        raw = self.environ.get("CONTENT_LENGTH") or "0"
        if not raw.isdigit() or len(raw) > 18:
            raise HTTPError(400, "The Content-Length header is not a valid size.")
        return int(raw)

    def discard_body(self, limit=MAX_FORM_BODY):
        """Read and drop a small body; 413 if it is larger than ``limit``."""
        length = self.content_length()
        if length > limit:
            raise HTTPError(413, "The request body is too large.")
        if length:
            self.environ["wsgi.input"].read(length)

    def form(self):
        """A small application/x-www-form-urlencoded body as a dict."""
        length = self.content_length()
        if length > 4096:
            raise HTTPError(413, "The request body is too large.")
        body = self.environ["wsgi.input"].read(length) if length else b""
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}

    @property
    def db(self):
        """This request's database connection, taken from the pool on first use."""
        if self._db is None:
            self._db = self.pool.take()
        return self._db

    def close(self):
        if self._db is not None:
            self.pool.give_back(self._db)
            self._db = None


class MultipartReader:
    """Streams a multipart/form-data body part by part, never holding more
    than a chunk of it in memory.

    ``parts()`` yields ``(name, filename, chunks)`` for each part, where
    ``chunks`` is an iterator of its bytes that must be consumed (or
    ``skip``-ped) before the next part. Malformed or truncated bodies raise
    HTTPError 400.
    """

    CHUNK = 64 * 1024
    MAX_HEADERS = 16 * 1024

    def __init__(self, stream, length, boundary):
        self.stream = stream
        self.remaining = length
        self.delimiter = b"\r\n--" + boundary
        self.buffer = b"\r\n"  # lets the first boundary match the delimiter

    def _fill(self):
        if self.remaining <= 0:
            raise HTTPError(400, "The upload is malformed or was cut short.")
        try:
            data = self.stream.read(min(self.CHUNK, self.remaining))
        except OSError:  # includes socket time-outs on a stalled client
            data = b""
        if not data:
            raise HTTPError(400, "The upload is malformed or was cut short.")
        self.remaining -= len(data)
        self.buffer += data

    def _skip_to_delimiter(self):
        while True:
            index = self.buffer.find(self.delimiter)
            if index >= 0:
                self.buffer = self.buffer[index + len(self.delimiter):]
                return
            self.buffer = self.buffer[-len(self.delimiter):]
            self._fill()

    def _body(self):
        while True:
            index = self.buffer.find(self.delimiter)
            if index >= 0:
                data, self.buffer = self.buffer[:index], self.buffer[index + len(self.delimiter):]
                if data:
                    yield data
                return
            keep = len(self.delimiter)
            if len(self.buffer) > keep:
                data, self.buffer = self.buffer[:-keep], self.buffer[-keep:]
                yield data
            self._fill()

    def parts(self):
        self._skip_to_delimiter()
        while True:
            while len(self.buffer) < 2:
                self._fill()
            if self.buffer.startswith(b"--"):
                return  # the closing delimiter; an epilogue is ignored
            while b"\r\n\r\n" not in self.buffer:
                if len(self.buffer) > self.MAX_HEADERS:
                    raise HTTPError(400, "The upload is malformed or was cut short.")
                self._fill()
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            name, filename = self._disposition(head)
            body = self._body()
            yield name, filename, body
            for _ in body:  # whatever the caller left unread
                pass

    @staticmethod
    def _disposition(head):
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                params = {}
                for k, quoted, plain in DISPOSITION_PARAMETER.findall(value):
                    params[k.lower()] = quoted.replace('\\"', '"') if quoted else plain.strip()
                if "name" in params:
                    return params["name"], params.get("filename")
        raise HTTPError(400, "The upload is malformed or was cut short.")


# One `; name=value` of a Content-Disposition, the value quoted (where a ";"
# is just a character) or not. Only \" is unescaped: old browsers send a
# Windows path's backslashes as they are.
DISPOSITION_PARAMETER = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


def multipart_boundary(environ):
    """The boundary of a multipart/form-data request, or a 400."""
    kind, _, rest = environ.get("CONTENT_TYPE", "").partition(";")
    if kind.strip().lower() == "multipart/form-data":
        for item in rest.split(";"):
            key, _, value = item.strip().partition("=")
            value = value.strip('"')
            if key.lower() == "boundary" and 0 < len(value) <= 200:
                return value.encode("latin-1", "replace")
    raise HTTPError(400, "Send the file as multipart/form-data in a field named file.")


class Response:
    """What a handler returns: status, headers and a body (bytes or an iterable)."""

    def __init__(self, body=b"", status=200, content_type="application/json; charset=utf-8", headers=None):
        self.status = status
        self.headers = [("Content-Type", content_type)] + list(headers or [])
        self.body = body


def json_response(data, status=200, headers=None):
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Response(body, status, headers=[("Cache-Control", "no-store")] + list(headers or []))


def error_response(error, lang):
    data = {"success": False, "error": translate(error.template, lang, **error.values)}
    data.update(error.extra)
    return json_response(data, error.status, error.headers)


def host_name(host):
    """The name or address in a Host header, without its port or brackets, lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def check_host(environ, settings):
    """Without a password, answer only to a loopback name or the address we
    listen on: a page whose own name was rebound to 127.0.0.1 (DNS rebinding)
    reaches us with its name in Host, and must get nothing."""
    host = environ.get("HTTP_HOST")
    if host is None:
        return  # HTTP/1.0 without Host: not a browser, which always sends it
    name = host_name(host)
    if is_loopback(name) or name == host_name(settings.host):
        return
    raise HTTPError(421, "This console answers only at its own address, such as http://127.0.0.1, not at {host}.",
                    host=host[:100])


def check_same_origin(environ):
    """Refuse a state-changing request that a page on another site sent."""
    if environ.get("HTTP_SEC_FETCH_SITE", "").lower() == "cross-site":
        raise HTTPError(403, "Cross-site requests are not allowed.")
    origin = environ.get("HTTP_ORIGIN")
    if origin is None:
        return
    host = environ.get("HTTP_HOST") or "%s:%s" % (environ.get("SERVER_NAME", ""), environ.get("SERVER_PORT", ""))
    if urlsplit(origin).netloc.lower() != host.lower():
        raise HTTPError(403, "Cross-site requests are not allowed.")


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
    ".ico": "image/x-icon", ".json": "application/json; charset=utf-8",
}


def static_file(relative):
    """A file inside static/, or a 404 for anything that escapes it."""
    if not relative or "\\" in relative or "\0" in relative or any(
            part in ("", ".", "..") for part in relative.split("/")):
        raise HTTPError(404, "Not found.")
    content_type = CONTENT_TYPES.get(os.path.splitext(relative)[1].lower())
    body = read_shipped_file("static", relative) if content_type else None
    if body is None:
        raise HTTPError(404, "Not found.")
    return Response(body, content_type=content_type, headers=[("Cache-Control", "no-cache")])


def page(name, lang):
    """An HTML page from static/, marked with the reader's language."""
    response = static_file(name)
    if lang != "en":
        response.body = response.body.replace(b'<html lang="en">', b'<html lang="%s">' % lang.encode(), 1)
    response.headers.append(("Vary", "Accept-Language, Cookie"))
    return response


# ---------------------------------------------------------------------------
# Who may use the console
# ---------------------------------------------------------------------------

SESSION_COOKIE = "ipfsmaster_session"


class Authenticator:
    """Password login, sessions and the login rate limit.

    Without a password everyone on the (loopback-only) address may use the
    console. With one, a request needs a session cookie from the login form
    or ``Authorization: Bearer <password>``. The password is kept only as a
    keyed hash and compared in constant time; session tokens are random,
    kept server-side (as hashes) and expire; failed passwords, from the
    login form or a bearer header alike, are limited per client address.
    A lock-out ends FAILURE_WINDOW seconds after it began and never touches
    a valid session, so nobody can lock the owner out for good.
    """

    SESSION_SECONDS = 12 * 3600
    MAX_SESSIONS = 1000
    MAX_FAILURES = 5
    FAILURE_WINDOW = 300

    def __init__(self, password):
        self._key = secrets.token_bytes(32)
        self._password = self._hash(password) if password else None
        self._sessions = {}   # token hash -> expiry (monotonic)
        self._failures = {}   # client address -> recent failure times
        self._lock = threading.Lock()

    @property
    def enabled(self):
        return self._password is not None

    def _hash(self, secret):
        return hmac.new(self._key, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def check_password(self, given):
        return self.enabled and hmac.compare_digest(self._hash(given), self._password)

    def start_session(self):
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            if len(self._sessions) >= self.MAX_SESSIONS:
                self._sessions = {k: v for k, v in self._sessions.items() if v > now}
                while len(self._sessions) >= self.MAX_SESSIONS:
                    self._sessions.pop(min(self._sessions, key=self._sessions.get))
            self._sessions[self._hash(token)] = now + self.SESSION_SECONDS
        return token

    def end_session(self, token):
        with self._lock:
            self._sessions.pop(self._hash(token), None)

    def session_valid(self, token):
        key = self._hash(token)
        with self._lock:
            expiry = self._sessions.get(key)
            if expiry is not None and expiry < time.monotonic():
                del self._sessions[key]
                expiry = None
        return expiry is not None

    def allows(self, environ, address):
        """True if the request carries a valid session cookie or bearer password.

        A wrong bearer password counts as a failed login from ``address``,
        and while that address is locked out a bearer password is not even
        compared (429).
        """
        if not self.enabled:
            return True
        token = cookie_value(environ, SESSION_COOKIE)
        if token and self.session_valid(token):
            return True
        scheme, _, credential = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            return self.try_password(address, credential.strip())
        return False

    def try_password(self, address, given):
        """Check a password from ``address``: 429 while it is locked out; a
        failure counts towards the lock-out, a success forgets the failures."""
        wait = self.seconds_until_allowed(address)
        if wait:
            raise HTTPError(429, "Too many failed logins. Try again in {seconds} seconds.",
                            headers=[("Retry-After", str(wait))], seconds=wait)
        if not self.check_password(given):
            self.record_failure(address)
            return False
        with self._lock:
            self._failures.pop(address, None)
        return True

    def seconds_until_allowed(self, address):
        """0 if this address may try a password now, else how long to wait."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(address, []) if t > now - self.FAILURE_WINDOW]
            self._failures[address] = recent
            if len(recent) < self.MAX_FAILURES:
                return 0
            return int(recent[0] + self.FAILURE_WINDOW - now) + 1

    def record_failure(self, address):
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10000:
                self._failures = {key: times for key, times in self._failures.items()
                                  if times and times[-1] > now - self.FAILURE_WINDOW}
                if len(self._failures) > 10000:
                    self._failures.clear()
            self._failures.setdefault(address, []).append(now)


def client_address(environ, trust_proxy):
    """Who is asking, as the login rate limit counts them.

    Behind a reverse proxy every request comes from the proxy; with
    ``trust_proxy`` the address the proxy appended to X-Forwarded-For (the
    last one: the client can write anything before it) is used instead. An
    IPv6 client is counted by its /64, the block one machine usually has.
    """
    address = environ.get("REMOTE_ADDR", "")
    if trust_proxy:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        address = forwarded or address
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address[:100]
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network("%s/64" % ip, strict=False))
    return str(ip)


def cookie_value(environ, name):
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------

def task_or_404(req, task_id):
    row = get_task(req.db, task_id)
    if row is None:
        raise HTTPError(404, "There is no task {id}.", id=task_id)
    return row


@contextlib.contextmanager
def task_errors(task_id=None):
    """Turn the task store's refusals into the HTTP errors a caller reads."""
    try:
        yield
    except KeyError:
        raise HTTPError(404, "There is no task {id}.", id=task_id)
    except TaskConflict as conflict:
        template, values = conflict.message()
        raise HTTPError(409, template, extra={"taskId": conflict.active_id}, **values)
    except NotRetryable:
        raise HTTPError(409, "An upload cannot be retried: its file is removed when the task ends."
                             " Upload it again.")
    except OSError:
        log.exception("could not start a worker")
        raise HTTPError(500, "The worker could not be started.")


def redirect(location, headers=None):
    return Response(b"", 303, content_type="text/plain; charset=utf-8",
                    headers=[("Location", location)] + list(headers or []))


def handle_index(req):
    """Send the browser to the pins page."""
    return redirect("/pins")


def handle_pins_page(req):
    """The pins page."""
    return page("pins.html", req.lang)


def handle_tasks_page(req):
    """The task console."""
    return page("tasks.html", req.lang)


def handle_login_page(req):
    """The login form (only when a password is set)."""
    if not req.auth.enabled:
        return redirect("/pins")
    return page("login.html", req.lang)


def safe_next(target):
    """A local path to return to after login; never another site."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(c < " " for c in target):
        return "/pins"
    return target


def handle_login(req):
    """Check the password; on success set the session cookie and go on."""
    form = req.form()
    target = safe_next(form.get("next", "/pins"))
    wants_json = "application/json" in req.environ.get("HTTP_ACCEPT", "")
    if not req.auth.try_password(req.client, form.get("password", "")):
        if wants_json or not req.auth.enabled:
            raise HTTPError(401, "Wrong password.")
        return redirect("/login?error=1&next=" + quote(target, safe="/"))
    token = req.auth.start_session()
    secure = "; Secure" if req.environ.get("wsgi.url_scheme") == "https" else ""
    cookie = "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s" % (
        SESSION_COOKIE, token, Authenticator.SESSION_SECONDS, secure)
    if wants_json:
        return json_response({"success": True}, headers=[("Set-Cookie", cookie)])
    return redirect(target, [("Set-Cookie", cookie)])


def handle_logout(req):
    """End the session."""
    req.discard_body()
    token = cookie_value(req.environ, SESSION_COOKIE)
    if token:
        req.auth.end_session(token)
    return redirect("/login", [("Set-Cookie", "%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" % SESSION_COOKIE)])


def handle_static(req):
    """A file from static/."""
    return static_file(req.path[len("/static/"):])


def handle_pin_sync(req):
    """Start a pin sync, or say which one is already running."""
    req.discard_body()
    with task_errors():
        task_id = start_task(req.settings, req.db, "pin_sync", req.settings.sync_params())
    return json_response({"success": True, "taskId": task_id}, 202)


def handle_pin_recover(req):
    """Ask the IPFS Cluster to try again the pins a peer failed."""
    req.discard_body()
    if not req.settings.cluster_api:
        raise HTTPError(409, NO_CLUSTER)
    with task_errors():
        task_id = start_task(req.settings, req.db, "pin_recover", req.settings.sync_params())
    return json_response({"success": True, "taskId": task_id}, 202)


def handle_task_status(req):
    """One task, for the poller, with the id of its latest retry."""
    task_id = req.task_id()
    mark_stale_tasks(req.db, req.settings)
    task = task_as_json(task_or_404(req, task_id))
    retry = req.db.execute("SELECT MAX(id) FROM background_tasks WHERE retry_of = ?", (task_id,)).fetchone()[0]
    task["retried_by"] = retry
    return json_response(task)


def handle_info(req):
    """What the pages need to know about this console: its limits, version, task types and a set gateway."""
    return json_response({"max_upload_bytes": req.settings.max_upload_bytes, "password": req.auth.enabled,
                          "version": version(), "task_types": task_type_info(), "gateway": req.settings.gateway,
                          "cluster": bool(req.settings.cluster_api)})


PIN_SORTS = {
    "name": "name ASC, id ASC", "-name": "name DESC, id DESC",
    "size": "size ASC, id ASC", "-size": "size DESC, id DESC",
    "synced": "synced_at ASC, id ASC", "-synced": "synced_at DESC, id DESC",
    "cid": "cid ASC", "-cid": "cid DESC",
}


# The pins page's replication filters (IPFS Cluster): which pins each keeps.
PIN_FILTERS = {
    "error": " cid IN (SELECT cid FROM pin_replication WHERE in_error > 0)",
    "under-replicated": " cid IN (SELECT cid FROM pin_replication WHERE pinned < wanted)",
}

# IPFS Cluster's statuses, as the pins page counts them.
PEER_STATUS_GROUPS = {
    "pinned": "pinned", "pinning": "pinning", "pin_queued": "queued", "remote": "remote",
    "pin_error": "error", "unpin_error": "error", "cluster_error": "error", "error": "error",
    "unpinning": "unpinning", "unpin_queued": "unpinning", "unpinned": "unpinned",
}


def handle_pins_api(req):
    """The catalogue: search, filter, sort and page."""
    sort = req.arg("sort", "-synced") or "-synced"
    if sort not in PIN_SORTS:
        raise HTTPError(400, "Unknown sort order {value!r}.", value=sort[:40])
    status = req.arg("status").strip()
    if status and status not in PIN_FILTERS:
        raise HTTPError(400, "Unknown status {value!r}.", value=status[:40])
    limit = req.int_arg("limit", 50, 1, 1000)
    offset = req.int_arg("offset", 0, 0, 100000000)
    q = req.arg("q").strip()[:200]
    where, args = [], []
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(" (cid LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')")
        args = [pattern, pattern]
    if status:
        where.append(PIN_FILTERS[status])
    clause = " WHERE" + " AND".join(where) if where else ""
    conn = req.db
    summary = conn.execute("SELECT count, total_size, unsized FROM pin_stats").fetchone()
    total = conn.execute("SELECT COUNT(*) FROM pins" + clause, args).fetchone()[0] if where else summary["count"]
    rows = conn.execute("SELECT cid, type, name, size, first_seen_at, synced_at FROM pins" + clause
                        + " ORDER BY " + PIN_SORTS[sort] + " LIMIT ? OFFSET ?", args + [limit, offset]).fetchall()
    pins = [dict(row) for row in rows]
    cluster = cluster_summary(conn)
    if cluster:
        add_replication(conn, pins)
    last = conn.execute("SELECT id, completed_at FROM background_tasks WHERE task_type = 'pin_sync'"
                        " AND status = 'completed' ORDER BY id DESC LIMIT 1").fetchone()
    return json_response({
        "pins": pins,
        "total": total,
        "summary": dict(summary, last_sync=dict(last) if last else None, cluster=cluster),
    })


def cluster_summary(conn):
    """The cluster's peers and its pins in error or under-replicated, as the
    last sync found them; None when the catalogue is a node's alone."""
    peers = [dict(row) for row in conn.execute(
        "SELECT peer_id AS id, peername AS name, version, error FROM cluster_peers ORDER BY peername, peer_id")]
    if not peers and conn.execute("SELECT 1 FROM pin_replication LIMIT 1").fetchone() is None:
        return None
    return {
        "peers": peers,
        "pins_in_error": conn.execute("SELECT COUNT(*) FROM pin_replication WHERE in_error > 0").fetchone()[0],
        "under_replicated": conn.execute("SELECT COUNT(*) FROM pin_replication WHERE pinned < wanted").fetchone()[0],
    }


def add_replication(conn, pins):
    """Each pin's peers by status, the peers it should have, and the peers' error sentences."""
    by_cid = {pin["cid"]: pin for pin in pins}
    for pin in pins:
        pin.update(peers={}, replication_wanted=None, peer_errors=[])
    marks = ",".join("?" * len(by_cid))
    if not marks:
        return
    for row in conn.execute("SELECT cid, status, peername, error FROM pin_peers WHERE cid IN (%s)"
                            " ORDER BY cid, peername" % marks, list(by_cid)):
        pin = by_cid[row["cid"]]
        group = PEER_STATUS_GROUPS.get(row["status"], "other")
        pin["peers"][group] = pin["peers"].get(group, 0) + 1
        if row["error"]:
            pin["peer_errors"].append({"peer": row["peername"], "status": row["status"], "error": row["error"]})
    for row in conn.execute("SELECT cid, wanted FROM pin_replication WHERE cid IN (%s)" % marks, list(by_cid)):
        by_cid[row["cid"]]["replication_wanted"] = row["wanted"]


def handle_tasks_api(req):
    """Every task, newest first, filtered and paged."""
    status = req.arg("status").strip()
    if status and status not in ACTIVE_STATUSES + FINAL_STATUSES:
        raise HTTPError(400, "Unknown status {value!r}.", value=status[:40])
    task_type = req.arg("type").strip()
    if task_type and task_type not in task_types():
        raise HTTPError(400, "Unknown task type {value!r}.", value=task_type[:40])
    limit = req.int_arg("limit", 50, 1, 500)
    offset = req.int_arg("offset", 0, 0, 100000000)
    mark_stale_tasks(req.db, req.settings)
    rows, total = list_tasks(req.db, status or None, task_type or None, limit, offset)
    return json_response({"tasks": [task_as_json(row) for row in rows], "total": total})


def handle_task_cancel(req):
    """Cancel a pending task, or ask a running one to stop."""
    task_id = req.task_id()
    req.discard_body()
    task_or_404(req, task_id)
    try:
        status = cancel_task(req.settings, req.db, task_id)
    except TaskStateError as exc:
        raise HTTPError(409, "Task {id} has already finished ({status}).", id=task_id, status=exc.status)
    if status == "cancelling":
        req.cancels.check_in(req.settings.cancel_grace_seconds + 1)
    return json_response({"success": True, "status": status})


class CancelEnforcer:
    """Enforces cancels' grace periods even if nobody polls meanwhile: one
    thread, started at the first cancel, that runs ``mark_stale_tasks`` at
    each time it was asked to, however many cancels come in."""

    def __init__(self, settings):
        self.settings = settings
        self._due = []   # monotonic times to check at, a heap
        self._changed = threading.Condition()
        self._thread = None

    def check_in(self, seconds):
        with self._changed:
            heapq.heappush(self._due, time.monotonic() + seconds)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cancel-enforcer", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _run(self):
        while True:
            with self._changed:
                while not self._due or self._due[0] > time.monotonic():
                    self._changed.wait(self._due[0] - time.monotonic() if self._due else None)
                while self._due and self._due[0] <= time.monotonic():
                    heapq.heappop(self._due)
            try:
                conn = connect(self.settings.db)
                try:
                    mark_stale_tasks(conn, self.settings)
                finally:
                    conn.close()
            except Exception:
                log.exception("could not enforce a cancel")


def handle_task_retry(req):
    """Start a new task like a failed or cancelled one."""
    task_id = req.task_id()
    req.discard_body()
    try:
        with task_errors(task_id):
            new_id = retry_task(req.settings, req.db, task_id)
    except TaskStateError as exc:
        raise HTTPError(409, "Only failed or cancelled tasks can be retried; task {id} is {status}.",
                        id=task_id, status=exc.status)
    return json_response({"success": True, "taskId": new_id, "retryOf": task_id}, 202)


UPLOAD_FRAMING = 64 * 1024  # multipart overhead allowed beyond the file itself


def handle_upload(req):
    """Receive a file into the spool, then upload it to the node in the background."""
    boundary = multipart_boundary(req.environ)
    if not req.environ.get("CONTENT_LENGTH"):
        raise HTTPError(411, "Say how large the upload is (Content-Length).")
    length = req.content_length()
    limit = req.settings.max_upload_bytes
    if length > limit + UPLOAD_FRAMING:
        raise HTTPError(413, "The file is larger than the limit of {limit} bytes.", limit=limit)
    os.makedirs(req.settings.task_dir, mode=0o700, exist_ok=True)
    incoming = os.path.join(req.settings.task_dir, "incoming-%s.upload" % secrets.token_hex(8))
    fields = {"name": "", "pin": "1"}
    files, file_size = [], 0      # [path, size] of each file, in the order they are spooled
    try:
        fd = os.open(incoming, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            for name, filename, chunks in MultipartReader(req.environ["wsgi.input"], length, boundary).parts():
                if name == "file":
                    if len(files) >= MAX_UPLOAD_FILES:
                        raise HTTPError(400, "A folder upload holds at most {limit} files.", limit=MAX_UPLOAD_FILES)
                    files.append([upload_path(filename), 0])
                    for chunk in chunks:
                        file_size += len(chunk)
                        files[-1][1] += len(chunk)
                        if file_size > limit:
                            raise HTTPError(413, "The file is larger than the limit of {limit} bytes.", limit=limit)
                        out.write(chunk)
                elif name in fields:
                    value = b"".join(chunks)
                    if len(value) > 1024:
                        raise HTTPError(400, "The field {name} is too long.", name=name)
                    fields[name] = value.decode("utf-8", "replace").strip()
        if not files:
            raise HTTPError(400, "Send the file as multipart/form-data in a field named file.")
        pin = fields["pin"].lower() not in ("0", "false", "no", "off")
        params = {"ipfs_api": req.settings.ipfs_api, "file_name": fields["name"][:255] or files[0][0].split("/")[-1],
                  "size": file_size, "pin": pin}
        if len(files) > 1 or "/" in files[0][0]:
            # Several files, or a folder's: added as one directory.
            top = {path.split("/")[0] for path, _ in files}
            params["files"] = files
            params["file_name"] = fields["name"][:255] or (
                top.pop() if len(top) == 1 and "/" in files[0][0] else "%d files" % len(files))
        with task_errors():
            task_id = start_task(req.settings, req.db, "file_upload", params,
                                 prepare=lambda new_id: os.replace(incoming, spool_path(req.settings, new_id)))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(incoming)
    return json_response({"success": True, "taskId": task_id}, 202)


def upload_path(filename):
    """A file's path inside a folder upload ("photos/2024/a.jpg"), with
    nothing that could climb out of it; a single file's name."""
    parts = [part[:255] for part in (filename or "").replace("\\", "/").split("/")
             if part not in ("", ".", "..") and not any(ord(c) < 32 for c in part)]
    return "/".join(parts[-32:]) or "upload"


MAX_UPLOAD_FILES = 10000
MAX_PIN_JSON = 64 * 1024 * 1024
MAX_REMOVE_CIDS = 100000


def read_json_body(req, limit):
    """A JSON object body, or a 400/413."""
    length = req.content_length()
    if length > limit:
        raise HTTPError(413, "The request body is too large.")
    try:
        data = json.loads(req.environ["wsgi.input"].read(length).decode("utf-8"))
    except ValueError:
        raise HTTPError(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        raise HTTPError(400, "The request body is not valid JSON.")
    return data


def json_cids(data, limit):
    cids = data.get("cids")
    if not isinstance(cids, list) or not all(isinstance(cid, str) for cid in cids):
        raise HTTPError(400, "cids must be a list of CIDs, each as text.")
    if len(cids) > limit:
        raise HTTPError(413, "Too many CIDs at once: at most {limit}.", limit=limit)
    return cids


def pin_name(value):
    if value is None:
        return ""
    if not isinstance(value, str) or len(value.strip()) > 255 or any(
            ord(char) < 32 and not char.isspace() or ord(char) == 127 for char in value):
        raise HTTPError(400, "name must be text of at most 255 characters.")
    return " ".join(value.split())


def pin_timeout(value):
    tasks_pins = pin_tasks()
    high = tasks_pins.MAX_PIN_TIMEOUT_S
    if value in (None, ""):
        return tasks_pins.DEFAULT_PIN_TIMEOUT_S
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise HTTPError(400, "{name} must be a whole number from {low} to {high}.", name="timeout_s", low=1,
                        high=high)
    return value


def no_valid_cid(summary):
    if not summary["invalid"]:
        return HTTPError(400, "The list holds no CID.", extra=summary)
    return HTTPError(400, "No line holds a valid CID: {invalid} lines are not CIDs (the first is line {line}).",
                     extra=summary, invalid=summary["invalid"], line=summary["invalid_lines"][0])


# What a pin_add takes besides its CIDs (each may be None: not given).
PIN_OPTIONS = ("timeout_s", "replication_min", "replication_max")


def replication(settings, options):
    """The replication_min/max a pin_add was given, checked; {} if none."""
    given = {name: options.get(name) for name in ("replication_min", "replication_max")
             if options.get(name) not in (None, "")}
    if given and not settings.cluster_api:
        raise HTTPError(400, "A replication factor needs an IPFS Cluster (--cluster-api).")
    for name, value in given.items():
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,4}", value.strip()):
            value = given[name] = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not (value == -1 or 1 <= value <= 1000):
            raise HTTPError(400, "{name} must be -1 (every peer) or a whole number from 1 to 1000.", name=name)
    low, high = given.get("replication_min"), given.get("replication_max")
    if low is not None and high is not None and high != -1 and (low == -1 or low > high):
        raise HTTPError(400, "replication_min cannot be more than replication_max.")
    return given


def start_pin_add(settings, conn, fill):
    """Spool a pin list that ``fill(writer)`` writes (returning the options
    it was given, see PIN_OPTIONS, or None), then start its pin_add task.

    Returns (task id, {"valid", "invalid", "invalid_lines"}); HTTPError 400
    when no line holds a CID, before any task exists.
    """
    tasks_pins = pin_tasks()
    token, writer = tasks_pins.new_pin_list(settings)
    try:
        options = fill(writer) or {}
        timeout_s = pin_timeout(options.get("timeout_s"))
        factors = replication(settings, options)
        writer.close()
        summary = writer.summary()
        if not summary["valid"]:
            raise no_valid_cid(summary)
        params = dict(summary, pin_list=token, timeout_s=timeout_s, **settings.sync_params(), **factors)
        return start_task(settings, conn, "pin_add", params), summary
    except BaseException:
        writer.out.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(tasks_pins.pin_list_path(settings, token))
        raise


def handle_pins_add(req):
    """Check and spool a list of CIDs (JSON, text/plain or a multipart file),
    then pin them in the background (pin_add)."""
    kind = req.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if kind not in ("application/json", "text/plain", "multipart/form-data"):
        raise HTTPError(415, "Send the CIDs as JSON (a list named cids), as text/plain with one CID a line,"
                             " or as a multipart/form-data field named file.")
    length = req.content_length()
    if length > (MAX_PIN_JSON if kind == "application/json" else req.settings.max_upload_bytes + UPLOAD_FRAMING):
        raise HTTPError(413, "The request body is too large.")
    stream = req.environ["wsgi.input"]

    def from_json(writer):
        data = read_json_body(req, MAX_PIN_JSON)
        cids = json_cids(data, 10 ** 7)
        writer.name = pin_name(data.get("name"))
        for cid in cids:
            writer.add_line(cid)
        return {option: data.get(option) for option in PIN_OPTIONS}

    def from_text(writer):
        writer.name = pin_name(req.arg("name") or None)
        left = length
        while left > 0:
            data = stream.read(min(65536, left))
            if not data:
                raise HTTPError(400, "The upload is malformed or was cut short.")
            left -= len(data)
            writer.feed(data)
        return {option: req.arg(option) or None for option in PIN_OPTIONS}

    def from_multipart(writer):
        fields, seen_file = dict.fromkeys(("name",) + PIN_OPTIONS), False
        for name, _filename, chunks in MultipartReader(stream, length, multipart_boundary(req.environ)).parts():
            if name == "file" and not seen_file:
                seen_file = True
                writer.name = pin_name(fields["name"])
                for chunk in chunks:
                    writer.feed(chunk)
            elif name in fields:
                value = b"".join(chunks)
                if len(value) > 1024:
                    raise HTTPError(400, "The field {name} is too long.", name=name)
                fields[name] = value.decode("utf-8", "replace").strip() or None
        if not seen_file:
            raise HTTPError(400, "Send the file as multipart/form-data in a field named file.")
        return {option: fields[option] for option in PIN_OPTIONS}

    fill = {"application/json": from_json, "text/plain": from_text, "multipart/form-data": from_multipart}[kind]
    with task_errors():
        task_id, summary = start_pin_add(req.settings, req.db, fill)
    return json_response(dict(summary, success=True, taskId=task_id), 202)


def handle_pins_remove(req):
    """Unpin the CIDs given, in the background (pin_remove)."""
    if req.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
        raise HTTPError(415, "Send the CIDs to unpin as JSON, in a list named cids.")
    cids = json_cids(read_json_body(req, 16 * 1024 * 1024), MAX_REMOVE_CIDS)
    with task_errors():
        task_id, summary = start_pin_remove(req.settings, req.db, cids)
    return json_response(dict(summary, success=True, taskId=task_id), 202)


def start_pin_remove(settings, conn, cids):
    """Start a pin_remove task for the CIDs among ``cids``; returns (task id,
    summary); HTTPError 400 when none is a CID."""
    tasks_pins = pin_tasks()
    valid, invalid = [], []
    for number, cid in enumerate(cids, 1):
        if tasks_pins.is_cid(cid.strip()):
            valid.append(cid.strip())
        else:
            invalid.append(number)
    summary = {"valid": len(valid), "invalid": len(invalid), "invalid_lines": invalid[:tasks_pins.MAX_INVALID_LINES]}
    if not valid:
        raise no_valid_cid(summary)
    return start_task(settings, conn, "pin_remove", dict(summary, cids=valid, **settings.sync_params())), summary


def handle_node_gc(req):
    """Start the node's garbage collection (repo_gc), or say what keeps it from starting."""
    req.discard_body()
    with task_errors():
        task_id = start_task(req.settings, req.db, "repo_gc", {"ipfs_api": req.settings.ipfs_api})
    return json_response({"success": True, "taskId": task_id}, 202)


def handle_node(req):
    """The node's overview: identity, repository, peers, gateway; 502 when it cannot be reached."""
    tasks_pins = pin_tasks()
    import worker
    try:
        return json_response(tasks_pins.node_overview(req.settings))
    except worker.IPFSError as exc:
        raise HTTPError(502, "The IPFS node cannot be reached: {reason}", extra={"reason": str(exc)},
                        reason=str(exc))


def handle_task_log(req):
    """The tail of a task's worker output, as plain text."""
    task_id = req.task_id()
    task_or_404(req, task_id)
    text = read_log_tail(req.settings, task_id)
    return Response(text.encode("utf-8"), content_type="text/plain; charset=utf-8",
                    headers=[("Cache-Control", "no-store")])


# ---------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------

ROUTES = [
    ("GET", "/", handle_index),
    ("GET", "/pins", handle_pins_page),
    ("POST", "/pins/sync", handle_pin_sync),
    ("POST", "/pins/recover", handle_pin_recover),
    ("GET", "/pins/task-status", handle_task_status),
    ("GET", "/api/pins", handle_pins_api),
    ("GET", "/api/info", handle_info),
    ("GET", "/tasks", handle_tasks_page),
    ("GET", "/api/tasks", handle_tasks_api),
    ("POST", "/tasks/cancel", handle_task_cancel),
    ("POST", "/tasks/retry", handle_task_retry),
    ("GET", "/tasks/log", handle_task_log),
    ("POST", "/files/upload", handle_upload),
    ("POST", "/pins/add", handle_pins_add),
    ("POST", "/pins/remove", handle_pins_remove),
    ("POST", "/node/gc", handle_node_gc),
    ("GET", "/api/node", handle_node),
    ("GET", "/login", handle_login_page),
    ("POST", "/login", handle_login),
    ("POST", "/logout", handle_logout),
]
# Reachable without logging in.
PUBLIC_PATHS = ("/login",)
# Pages: without a login they lead to the login form, not a JSON 401.
PAGE_PATHS = ("/", "/pins", "/tasks")
PREFIX_ROUTES = [
    ("GET", "/static/", handle_static),
]


def route(method, path):
    """The handler for a request, or an HTTPError (404, or 405 with Allow)."""
    allowed = [m for m, p, _ in ROUTES if p == path]
    allowed += [m for m, prefix, _ in PREFIX_ROUTES if path.startswith(prefix)]
    if not allowed:
        raise HTTPError(404, "Not found.")
    if method == "HEAD" and "GET" in allowed:
        method = "GET"
    for m, p, handler in ROUTES:
        if m == method and p == path:
            return handler
    for m, prefix, handler in PREFIX_ROUTES:
        if m == method and path.startswith(prefix):
            return handler
    allow = ", ".join(sorted(set(allowed) | ({"HEAD"} if "GET" in allowed else set())))
    raise HTTPError(405, "This address does not accept {method}. Use {allowed}.",
                    headers=[("Allow", allow)], method=method[:20], allowed=allow)


# ---------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                                " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
                                " frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]


class App:
    """The WSGI application: routes a request, checks who sends it, turns
    errors into JSON."""

    def __init__(self, settings):
        self.settings = settings
        self.auth = Authenticator(settings.password)
        self.pool = ConnectionPool(settings.db)
        self.cancels = CancelEnforcer(settings)

    def __call__(self, environ, start_response):
        req = Request(environ, self.settings, self.auth, self.pool, self.cancels)
        try:
            if not self.auth.enabled:
                check_host(environ, self.settings)
            handler = route(req.method, req.path)
            if req.method == "POST":
                check_same_origin(environ)
            if not (req.path in PUBLIC_PATHS or req.path.startswith("/static/")
                    or self.auth.allows(environ, req.client)):
                if req.path in PAGE_PATHS:
                    raise Redirect("/login?next=" + quote(req.path, safe="/"))
                raise HTTPError(401, "Log in first: this console needs a password.",
                                headers=[("WWW-Authenticate", 'Bearer realm="IPFSMaster"')])
            try:
                response = handler(req)
            except sqlite3.OperationalError as exc:
                if not database_busy(exc):
                    raise
                raise HTTPError(503, "The database is busy with a long write (such as a sync saving the catalogue)."
                                     " Try again in a moment.", headers=[("Retry-After", "2")])
        except Redirect as exc:
            response = redirect(exc.location)
        except HTTPError as error:
            response = error_response(error, req.lang)
        except Exception:
            log.error("unexpected error for %s %s\n%s", req.method, req.path, traceback.format_exc())
            response = error_response(HTTPError(500, "Something went wrong on the server; the details are in its log."),
                                      req.lang)
        finally:
            req.close()
        body = response.body if isinstance(response.body, bytes) else b"".join(response.body)
        if req.method == "HEAD":
            body = b""
        headers = response.headers + SECURITY_HEADERS + [("Content-Length", str(len(body)))]
        start_response(STATUS_LINES.get(response.status, "%d Status" % response.status), headers)
        return [body]


# ---------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------

class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so a slow request never
    blocks a status poll."""

    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        """A client that vanished or stalled is routine; anything else is logged."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)):
            log.info("%s: %s: %s", client_address[0], type(exc).__name__, exc)
        else:
            log.error("error while serving %s\n%s", client_address[0], traceback.format_exc())


class RequestHandler(WSGIRequestHandler):
    """Logs through ``logging``, times out idle or slow clients, answers
    requests too broken to reach the app with the same JSON errors, and
    sends replies without Nagle's delay (headers and body leave in separate
    writes)."""

    timeout = DEFAULTS["request_timeout"]

    def setup(self):
        self.timeout = getattr(self.server, "request_timeout", self.timeout)
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a bad request line, huge headers) as JSON."""
        template = {414: "The request line is too long.", 431: "The request headers are too large."}.get(
            code, "The request is malformed.")
        body = json.dumps({"success": False, "error": template}).encode("utf-8")
        self.close_connection = True
        try:
            self.send_response(code if 400 <= code < 500 else 400)
            for name, value in [("Content-Type", "application/json; charset=utf-8"), ("Connection", "close"),
                                ("Content-Length", str(len(body)))] + SECURITY_HEADERS:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format, *args):
        log.info("%s %s", self.address_string(), format % args)


def make_server(settings):
    """A bound server (``port=0`` picks a free port), ready for serve_forever."""
    if not settings.password and not is_loopback(settings.host):
        raise SystemExit("Refusing to listen on %s without a password: anyone who can reach it could drive the"
                         " node. Set IPFSMASTER_PASSWORD (or --password-file), or keep --host 127.0.0.1."
                         % settings.host)
    init_db(settings.db)
    server_class = ThreadingWSGIServer
    if ":" in settings.host:
        server_class = type("ThreadingWSGIServer6", (ThreadingWSGIServer,), {"address_family": socket.AF_INET6})
    server = server_class((settings.host.strip("[]"), settings.port), RequestHandler)
    server.request_timeout = settings.request_timeout
    server.set_app(App(settings))
    return server


def housekeeping(settings, stop, interval=24 * 3600):
    """Once a day: delete finished tasks past the retention period."""
    while True:
        conn = connect(settings.db)
        try:
            removed = cleanup_tasks(conn, settings, settings.retention_days)
            if removed:
                log.info("cleanup: removed %d finished tasks older than %d days", len(removed), settings.retention_days)
        except sqlite3.Error:
            log.exception("cleanup failed")
        finally:
            conn.close()
        if stop.wait(interval):
            return


def serve(settings):
    server = make_server(settings)
    conn = connect(settings.db)
    try:
        for task_id in mark_stale_tasks(conn, settings):
            log.warning("task %d: its worker is gone; marked failed", task_id)
    finally:
        conn.close()
    stop = threading.Event()
    threading.Thread(target=housekeeping, args=(settings, stop), name="housekeeping", daemon=True).start()
    host, port = server.server_address[:2]
    print("IPFSMaster serving on http://%s:%d/ (IPFS API %s, database %s)"
          % (host, port, settings.ipfs_api, os.path.abspath(settings.db)), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def add_db_flag(parser):
    parser.add_argument("--db", help="SQLite database file (env IPFSMASTER_DB; default ipfsmaster.db)")


class PrintVersion(argparse.Action):
    """--version: asks git only when given (argparse's own action wants the text up front)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print("IPFSMaster", version())
        parser.exit()


def build_parser():
    parser = argparse.ArgumentParser(
        prog=os.path.basename(ARCHIVE) if ARCHIVE else "ipfsmaster.py",
        description="IPFSMaster: a web console for an IPFS (Kubo) node.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=PrintVersion)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve_parser = commands.add_parser("serve", help="run the web console (the default)",
                                       description="Run the web console.")
    add_serve_flags(serve_parser)
    serve_options = serve_parser.format_help().split("\n\n", 2)[-1]
    parser.epilog = ("Without a command, runs serve, which takes these options:\n\n" + serve_options
                     + "\nEach command has its own --help.")

    for name, text in (("sync", "start a pin sync"),
                       ("recover", "ask the IPFS Cluster to try again the pins a peer failed")):
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ", in the background.")
        add_task_flags(sub)
        add_cluster_flags(sub)

    peers = commands.add_parser("peers", help="list the IPFS Cluster's peers",
                                description="List the IPFS Cluster's peers and their state, as the cluster says now.")
    add_cluster_flags(peers)
    peers.add_argument("--json", action="store_true", help="print JSON instead of a table")

    pin = commands.add_parser("pin", help="pin or unpin CIDs", description="Pin or unpin CIDs in the background.")
    pin_commands = pin.add_subparsers(dest="pin_command", metavar="ACTION")
    pin_commands.required = True
    pin_add = pin_commands.add_parser("add", help="pin CIDs", description=(
        "Pin CIDs (a pin_add task): given as arguments, or one a line in a file (- for standard input),"
        " optionally followed by whitespace and a name. Lines that are not CIDs are counted and skipped."))
    pin_add.add_argument("cids", nargs="*", metavar="CID", help="CIDs to pin")
    pin_add.add_argument("-f", "--file", metavar="FILE", help="a list of CIDs, one a line")
    pin_add.add_argument("--name", help="the name of every CID whose line has none")
    pin_add.add_argument("--timeout", type=int, metavar="SECONDS", help="how long one CID may take (default 600)")
    for bound in ("min", "max"):
        pin_add.add_argument("--replication-" + bound, type=int, metavar="N",
                             help="through an IPFS Cluster: the %s peers to pin on (-1: every peer)"
                                  % {"min": "fewest", "max": "most"}[bound])
    add_task_flags(pin_add)
    add_cluster_flags(pin_add)
    pin_rm = pin_commands.add_parser("rm", help="unpin CIDs", description="Unpin CIDs (a pin_remove task).")
    pin_rm.add_argument("cids", nargs="+", metavar="CID", help="CIDs to unpin")
    add_task_flags(pin_rm)
    add_cluster_flags(pin_rm)

    gc = commands.add_parser("gc", help="collect the node's garbage",
                             description="Run the node's garbage collection (a repo_gc task); it cannot run"
                                         " while a pin sync does, nor the other way round.")
    add_task_flags(gc)

    node = commands.add_parser("node", help="show the node's overview",
                               description="Show the node's identity, repository, peers and gateway.")
    add_db_flag(node)
    add_node_flags(node)
    node.add_argument("--json", action="store_true", help="print JSON")

    tasks = commands.add_parser("tasks", help="list tasks, newest first", description="List tasks, newest first.")
    add_db_flag(tasks)
    tasks.add_argument("--status", choices=ACTIVE_STATUSES + FINAL_STATUSES, help="only tasks with this status")
    tasks.add_argument("--type", dest="task_type", choices=sorted(task_types()), metavar="TYPE",
                       help="only tasks of this type: %s" % ", ".join(sorted(task_types())))
    tasks.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    tasks.add_argument("--json", action="store_true", help="print JSON instead of a table")

    for name, text in (("show", "show one task"), ("cancel", "cancel a task"), ("retry", "retry a failed or cancelled task")):
        sub = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_db_flag(sub)
        sub.add_argument("id", type=int, help="the task id")
        if name == "show":
            sub.add_argument("--json", action="store_true", help="print JSON")
        if name == "retry":
            sub.add_argument("--ipfs-api", help="the node's RPC API to use instead of the one the task used")

    cleanup = commands.add_parser("cleanup", help="delete old finished tasks",
                                  description="Delete completed, failed and cancelled tasks older than N days,"
                                              " with their logs. Pending and running tasks are never touched.")
    add_db_flag(cleanup)
    cleanup.add_argument("--days", type=whole_number, help="age in days (env IPFSMASTER_RETENTION_DAYS; default 30)")

    reap = commands.add_parser("reap", help="mark tasks whose worker is gone as failed",
                               description="Mark running tasks whose worker died, and pending tasks whose"
                                           " worker never started, as failed.")
    add_db_flag(reap)
    reap.add_argument("--stale-seconds", type=int, help="heartbeat age that counts as dead (default 30)")

    bundle = commands.add_parser("bundle", help="write the whole console into one runnable file",
                                 description="Write the console (both programs, the schema and static/) into"
                                             " one zipapp that runs every command, copied anywhere alone:"
                                             " python3 ipfsmaster.pyz [COMMAND]. The same sources always give"
                                             " the same bytes.")
    bundle.add_argument("-o", "--output", default="ipfsmaster.pyz", help="the file to write (default ipfsmaster.pyz)")
    return parser


def add_cluster_flags(parser):
    parser.add_argument("--cluster-api", metavar="URL",
                        help="an IPFS Cluster's REST API (port 9094): pins are then the cluster's (env"
                             " IPFSMASTER_CLUSTER_API)")
    parser.add_argument("--cluster-auth-file", metavar="PATH",
                        help="credentials for the cluster's REST API: basic:USER:PASSWORD or bearer:TOKEN"
                             " (env IPFSMASTER_CLUSTER_AUTH)")


def whole_number(text):
    """argparse type: a whole number, 0 or more."""
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()):
        raise argparse.ArgumentTypeError("%r is not a whole number of 0 or more" % text)
    return int(text)


def add_node_flags(parser):
    parser.add_argument("--ipfs-api", help="the node's RPC API (env IPFSMASTER_IPFS_API; default http://127.0.0.1:5001)")
    parser.add_argument("--ipfs-auth-file", metavar="PATH", help="credentials for the RPC API (env IPFSMASTER_IPFS_AUTH)")


def add_task_flags(parser):
    """The flags of a command that starts a task."""
    add_db_flag(parser)
    add_node_flags(parser)
    parser.add_argument("--wait", action="store_true", help="draw a progress bar until it ends; exit 1 if it fails")
    parser.add_argument("--json", action="store_true", help="print the task as JSON (its end with --wait)")


def add_serve_flags(parser):
    parser.add_argument("--host", help="address to listen on (env IPFSMASTER_HOST; default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (env IPFSMASTER_PORT; default 7789)")
    add_db_flag(parser)
    parser.add_argument("--ipfs-api", help="the node's RPC API (env IPFSMASTER_IPFS_API;"
                                           " default http://127.0.0.1:5001)")
    parser.add_argument("--stale-seconds", type=int,
                        help="a running task silent this long is failed (env IPFSMASTER_STALE_SECONDS; default 30)")
    parser.add_argument("--retention-days", type=int,
                        help="finished tasks are deleted after this many days (env IPFSMASTER_RETENTION_DAYS;"
                             " default 30)")
    parser.add_argument("--password-file", metavar="PATH",
                        help="require this password (the file's first line) to use the console"
                             " (env IPFSMASTER_PASSWORD); needed to listen beyond loopback")
    parser.add_argument("--ipfs-auth-file", metavar="PATH",
                        help="credentials for the node's RPC API, as in Kubo's API.Authorizations:"
                             " basic:USER:PASSWORD or bearer:TOKEN (env IPFSMASTER_IPFS_AUTH)")
    add_cluster_flags(parser)
    parser.add_argument("--trust-proxy", action="store_true", default=None,
                        help="count failed logins by the address a reverse proxy puts in X-Forwarded-For"
                             " (env IPFSMASTER_TRUST_PROXY=1); only behind a proxy that sets it")
    parser.add_argument("--max-upload-bytes", type=int,
                        help="largest file accepted by /files/upload (env IPFSMASTER_MAX_UPLOAD_BYTES; default 4 GiB)")
    parser.add_argument("--gateway", metavar="URL",
                        help="the gateway that pin links open, as http://host:port (env IPFSMASTER_GATEWAY;"
                             " default the node's own Addresses.Gateway)")


TASK_LINE = "%6s  %-11s  %-9s  %4s  %-19s  %s"


def print_task_line(task):
    print(TASK_LINE % (task["id"], task["task_type"], task["status"], "%d%%" % task["percentage"],
                       task["created_at"], task["error_message"] or task["current_item"] or ""))


def wait_for_task(settings, conn, task_id, out=sys.stderr):
    """Draw a progress bar until the task ends; returns its final row."""
    while True:
        mark_stale_tasks(conn, settings)
        task = task_as_json(get_task(conn, task_id))
        width = 30
        filled = width * task["percentage"] // 100
        out.write("\r[%s%s] %3d%%  %d / %d  %-12s" % ("#" * filled, "." * (width - filled), task["percentage"],
                                                      task["progress"], task["total"], task["status"]))
        out.flush()
        if task["status"] in FINAL_STATUSES:
            out.write("\n")
            return task
        time.sleep(0.5)


def print_peers(settings, as_json):
    """The cluster's peers, as it lists them now; exit code 1 if it cannot be reached."""
    import worker
    if not settings.cluster_api:
        print(NO_CLUSTER, file=sys.stderr)
        return 2
    client = worker.ClusterClient(settings.cluster_api, settings.cluster_auth)
    try:
        peers = list(client.stream("peers", method="GET"))
    except worker.IPFSError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        client.close()
    if as_json:
        print(json.dumps({"peers": peers}, ensure_ascii=False, indent=2))
        return 0
    print("%-20s  %-52s  %-10s  %s" % ("NAME", "ID", "VERSION", "ERROR"))
    for peer in peers:
        ipfs = peer.get("ipfs") or {}
        print("%-20s  %-52s  %-10s  %s" % (peer.get("peername"), peer.get("id"), (peer.get("version") or "")[:10],
                                           peer.get("error") or ipfs.get("error") or ""))
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "serve")
    args = build_parser().parse_args(argv)
    if args.command == "bundle":
        import bundle  # only a checkout builds one
        return bundle.main(args.output)
    flags = {name: getattr(args, name, None) for name in DEFAULTS}
    if args.command == "cleanup":
        flags["retention_days"] = args.days
    if getattr(args, "password_file", None):
        flags["password"] = read_secret_file(args.password_file, "password")
    if getattr(args, "ipfs_auth_file", None):
        flags["ipfs_auth"] = read_secret_file(args.ipfs_auth_file, "IPFS API credentials")
    if getattr(args, "cluster_auth_file", None):
        flags["cluster_auth"] = read_secret_file(args.cluster_auth_file, "IPFS Cluster API credentials")
    settings = Settings.from_environment(**flags)
    settings.ipfs_api, credentials = split_api_credentials(settings.ipfs_api)
    settings.ipfs_auth = settings.ipfs_auth or credentials
    if settings.cluster_api:
        settings.cluster_api, credentials = split_api_credentials(settings.cluster_api)
        settings.cluster_auth = settings.cluster_auth or credentials
    os.umask(0o077)  # the database, its journal, logs and spool: owner only
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.command == "serve":
        serve(settings)
        return 0

    init_db(settings.db)
    conn = connect(settings.db)
    try:
        return run_command(args, settings, conn)
    finally:
        conn.close()


def run_command(args, settings, conn):
    """The commands other than serve; returns the exit code."""
    if args.command in ("sync", "recover"):
        if args.command == "recover" and not settings.cluster_api:
            print(NO_CLUSTER, file=sys.stderr)
            return 2
        task_type = {"sync": "pin_sync", "recover": "pin_recover"}[args.command]
        return run_task_command(args, settings, conn, lambda: (
            start_task(settings, conn, task_type, settings.sync_params()), {}))

    if args.command == "gc":
        return run_task_command(args, settings, conn, lambda: (
            start_task(settings, conn, "repo_gc", {"ipfs_api": settings.ipfs_api}), {}))

    if args.command == "pin":
        return run_pin_command(args, settings, conn)

    if args.command == "node":
        tasks_pins = pin_tasks()
        try:
            overview = tasks_pins.node_overview(settings)
        except tasks_pins.IPFSError as exc:
            print(translate("The IPFS node cannot be reached: {reason}", "en", reason=str(exc)), file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(overview, ensure_ascii=False, indent=2))
        else:
            for key, value in overview.items():
                print("%-14s %s" % (key, "" if value is None else value))
        return 0

    if args.command == "peers":
        return print_peers(settings, args.json)

    if args.command == "tasks":
        mark_stale_tasks(conn, settings)
        rows, total = list_tasks(conn, args.status, args.task_type, max(1, args.limit), 0)
        tasks = [task_as_json(row) for row in rows]
        if args.json:
            print(json.dumps({"tasks": tasks, "total": total}, ensure_ascii=False, indent=2))
        elif not tasks:
            print("No tasks%s." % (" match" if args.status or args.task_type else " yet"))
        else:
            print(TASK_LINE % ("ID", "TYPE", "STATUS", "DONE", "CREATED (UTC)", "MESSAGE"))
            for task in tasks:
                print_task_line(task)
        return 0

    if args.command in ("show", "cancel", "retry"):
        mark_stale_tasks(conn, settings)
        if get_task(conn, args.id) is None:
            print("There is no task %d." % args.id, file=sys.stderr)
            return 4
        try:
            if args.command == "cancel":
                print(cancel_task(settings, conn, args.id))
                return 0
            if args.command == "retry":
                print(retry_task(settings, conn, args.id, ipfs_api=args.ipfs_api and settings.ipfs_api))
                return 0
        except NotRetryable:
            print("Task %d cannot be retried: its input is gone." % args.id, file=sys.stderr)
            return 3
        except TaskStateError as exc:
            print("Task %d is %s; that is not possible now." % (args.id, exc.status), file=sys.stderr)
            return 3
        except TaskConflict as conflict:
            template, values = conflict.message()
            print(translate(template, "en", **values), file=sys.stderr)
            return 3
        task = task_as_json(get_task(conn, args.id))
        if args.json:
            print(json.dumps(task, ensure_ascii=False, indent=2))
        else:
            for key, value in task.items():
                print("%-20s %s" % (key, json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else value))
        return 0

    if args.command == "cleanup":
        removed = cleanup_tasks(conn, settings, settings.retention_days)
        print("Removed %d finished tasks older than %d days." % (len(removed), settings.retention_days))
        return 0

    if args.command == "reap":
        changed = mark_stale_tasks(conn, settings)
        print("Marked %d stale tasks failed." % len(changed))
        return 0
    raise AssertionError(args.command)


def run_task_command(args, settings, conn, start):
    """Start a task with ``start()`` -> (id, details), then print it or
    wait for it. Exit codes: 0 done (or started), 1 failed or cancelled,
    2 bad input, 3 refused while another task runs."""
    try:
        task_id, details = start()
    except TaskConflict as conflict:
        template, values = conflict.message()
        print(translate(template, "en", **values), file=sys.stderr)
        return 3
    except HTTPError as error:
        print(translate(error.template, "en", **error.values), file=sys.stderr)
        return 2
    if details.get("invalid"):
        print("%d lines are not CIDs (lines %s)." % (details["invalid"], ", ".join(map(str, details["invalid_lines"]))),
              file=sys.stderr)
    if not args.wait:
        print(json.dumps(dict(details, taskId=task_id)) if args.json else task_id)
        return 0
    if not args.json:
        print(task_id)
    task = wait_for_task(settings, conn, task_id)
    if args.json:
        print(json.dumps(task, ensure_ascii=False, indent=2))
    if task["status"] != "completed":
        print("Task %d %s: %s" % (task_id, task["status"], task["error_message"] or ""), file=sys.stderr)
        return 1
    if not args.json:
        print(json.dumps(task["result"], ensure_ascii=False), file=sys.stderr)
    return 0


def run_pin_command(args, settings, conn):
    """pin add CID... | -f FILE, and pin rm CID..."""
    if args.pin_command == "rm":
        return run_task_command(args, settings, conn, lambda: start_pin_remove(settings, conn, args.cids))

    if bool(args.cids) == bool(args.file):
        print("Give CIDs or -f FILE (one of the two).", file=sys.stderr)
        return 2

    def fill(writer):
        writer.name = pin_name(args.name)
        if args.file:
            with contextlib.ExitStack() as stack:
                source = sys.stdin.buffer if args.file == "-" else stack.enter_context(open(args.file, "rb"))
                for block in iter(lambda: source.read(65536), b""):
                    writer.feed(block)
        for cid in args.cids:
            writer.add_line(cid)
        return {"timeout_s": args.timeout, "replication_min": args.replication_min,
                "replication_max": args.replication_max}

    try:
        return run_task_command(args, settings, conn, lambda: start_pin_add(settings, conn, fill))
    except OSError as exc:
        print("Cannot read %s: %s" % (args.file, exc.strerror), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.modules.setdefault("ipfsmaster", sys.modules[__name__])
    sys.exit(main())
