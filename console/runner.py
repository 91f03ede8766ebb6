"""The runner: what a worker does around a task (huey's ``consumer.py``).

It claims the task (pending -> running) with a compare-and-set, so two
workers can never run the same task; gives the task's function a
``TaskContext`` (its parameters, its RPC clients, progress and cancel);
reports progress and a heartbeat from a thread of its own; and records the
end without ever overwriting a status it did not set: a task cancelled or
failed by someone else (the console, or the seed's ``UPDATE ... SET
status='failed'``) makes it stop within seconds.

It knows no task type: ``run_task`` is given the function that finds a
type's code (``console.tasks.load``).
"""

import contextlib
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import traceback

from console.errors import TaskConflict
from console.messages import translate
from console.rpc import ClusterClient, IPFSClient, IPFSError
from console.settings import DEFAULTS, TaskFiles
from console.store import claim_task, connect, database_busy, finish_task, get_task, record_progress, stop_signals

DEFAULT_API = DEFAULTS["ipfs_api"]
# The reporter waits this long at most for the write lock, then lets the
# progress wait for its next round (the heartbeat file keeps the task alive).
REPORT_BUSY_TIMEOUT_MS = 250


class TaskStopped(Exception):
    """Raised inside a task when it must stop (cancel, signal, lost status)."""


class TaskContext:
    """A task's parameters, its IPFS client, and the progress/cancel helper.

    The task function updates ``progress``/``total``/``current_item`` in
    memory and ``result`` as it goes; a reporter thread writes them to the
    database at most every ``interval`` seconds, together with the heartbeat,
    renews the heartbeat file, and reads back whether the task must stop.
    ``check()`` raises TaskStopped once it must; between two reports it
    looks itself, at most every POLL_SECONDS, so that a task working
    through many quick items stops within a few of them.
    """

    POLL_SECONDS = 0.1

    def __init__(self, task, db_path, api_url, auth=None, interval=0.5, out=None):
        self.task_id = task["id"]
        self.task_type = task["task_type"]
        self.retry_of = task["retry_of"] if "retry_of" in task.keys() else None   # the task this one retries
        self.params = json.loads(task["params"] or "{}")
        self.db_path = db_path
        self.api_url = api_url
        self.auth = auth
        self.interval = interval
        self.out = out or sys.stdout
        self.progress = 0
        self.total = 0
        self.current_item = None
        self.result = {}
        self.stop_reason = None      # 'cancel', 'signal', 'lost' or 'reporter'
        self.signalled = False       # set by the signal handler, nothing more
        self._stop = threading.Event()
        self._interruptible = set()
        self._lock = threading.Lock()
        self._logged_at = 0
        self._poll_conn = None
        self._next_poll = 0.0
        self.files = TaskFiles(db_path)
        self.heartbeat_file = self.files.heartbeat(self.task_id)

    def client(self, **options):
        """A new IPFS client for this task (one per thread)."""
        return IPFSClient(self.api_url, self.auth, **options)

    @property
    def cluster_api(self):
        """The IPFS Cluster REST API the task works through, or None for the node alone."""
        return self.params.get("cluster_api")

    def cluster_client(self, **options):
        """A new client of the cluster's REST API (one per thread)."""
        return ClusterClient(self.cluster_api, os.environ.get("IPFSMASTER_CLUSTER_AUTH"), **options)

    def pins_client(self, **options):
        """A new client of whoever keeps the pins: the cluster, when the task
        works through one, else the node. Both list, pin and unpin alike."""
        return self.cluster_client(**options) if self.cluster_api else self.client(**options)

    # -- progress ------------------------------------------------------------

    def log(self, message):
        self.out.write("[Task %d] %s\n" % (self.task_id, message))
        self.out.flush()

    def set_total(self, total):
        self.total = total

    def advance(self, count=1, item=None):
        """Count ``count`` more items done; logs every 10 items and at the end,
        once the total is known."""
        self.progress += count
        if item is not None:
            self.current_item = item
        if not self.total:
            return
        if self.progress // 10 != self._logged_at // 10 or self.progress >= self.total:
            if self.progress != self._logged_at:
                self.log("Progress: %d / %d" % (self.progress, self.total))
                self._logged_at = self.progress

    # -- stopping ------------------------------------------------------------

    def request_stop(self, reason):
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        with self._lock:
            clients = list(self._interruptible)
        for client in clients:
            client.interrupt()

    @property
    def stopping(self):
        return self._stop.is_set()

    def check(self):
        if self.signalled and not self._stop.is_set():
            self.request_stop("signal")
        if not self._stop.is_set() and time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self.POLL_SECONDS
            self.poll()
        if self._stop.is_set():
            raise TaskStopped(self.stop_reason)

    def poll(self):
        """Learn whether the task must stop (a read: WAL needs no lock for it)."""
        if self._poll_conn is None:
            self._poll_conn = connect(self.db_path, REPORT_BUSY_TIMEOUT_MS)
        try:
            self.obey(stop_signals(self._poll_conn, self.task_id))
        except sqlite3.OperationalError:
            pass      # the reporter's next round will tell

    def obey(self, row):
        """Stop if the task's row says so (``row``: its status and cancel request, or None)."""
        if row is None or row["status"] != "running":
            self.request_stop("lost")
        elif self.signalled:
            self.request_stop("signal")
        elif row["cancel_requested_at"]:
            self.request_stop("cancel")

    def close(self):
        if self._poll_conn is not None:
            self._poll_conn.close()
            self._poll_conn = None

    @contextlib.contextmanager
    def interruptible(self, client):
        """While inside, a stop request shuts ``client``'s socket to end a blocked read."""
        with self._lock:
            self._interruptible.add(client)
        if self.stopping:
            client.interrupt()
        try:
            yield client
        finally:
            with self._lock:
                self._interruptible.discard(client)

    # -- the reporter thread -------------------------------------------------

    def beat(self):
        """Renew the heartbeat file (see TaskFiles.heartbeat)."""
        try:
            os.utime(self.heartbeat_file)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.heartbeat_file), mode=0o700, exist_ok=True)
            with open(self.heartbeat_file, "ab"):
                pass

    def report(self, conn):
        """Renew the heartbeat, write progress, learn whether to stop. One call.

        While another connection holds the write lock for long (the sync's
        own catalogue update), the progress waits for a later round; the
        heartbeat file and the status read (WAL: no lock needed) go on.
        """
        self.beat()
        # The stop signals first: a read needs no lock (WAL), so a cancel is
        # heard at once even while the progress below waits for the lock.
        self.obey(stop_signals(conn, self.task_id))
        try:
            record_progress(conn, self.task_id, self.progress, self.total, self.current_item, self.result)
        except sqlite3.OperationalError as exc:
            if not database_busy(exc):
                raise

    def run_reporter(self, done):
        """Report every ``interval`` until ``done``. If this thread fails, the
        task has no heartbeat and no way to hear a cancel: it is stopped."""
        try:
            conn = connect(self.db_path, REPORT_BUSY_TIMEOUT_MS)
            try:
                while True:
                    try:
                        self.report(conn)
                    except sqlite3.OperationalError as exc:  # a disk error, say: the next round may do better
                        self.log("could not record progress: %s" % exc)
                    if done.wait(self.interval):
                        return
            finally:
                conn.close()
        except Exception:
            traceback.print_exc(file=self.out)
            self.request_stop("reporter")


STOP_MESSAGES = {
    "cancel": ("cancelled", "Cancelled"),
    "signal": ("failed", "Worker terminated by a signal"),
    "reporter": ("failed", "The worker could no longer record its progress (the details are in its log)"),
}


def run_task(task_id, db_path, load, api_url=None, auth=None, interval=0.5):
    """Claim and run one task; returns the process exit code. ``load(task_type)``
    gives the function that runs a type (KeyError for an unknown type)."""
    conn = connect(db_path)
    try:
        try:
            task = claim_task(conn, task_id, os.getpid())
        except TaskConflict as conflict:
            template, values = conflict.message()
            refusal = translate(template, "en", **values)
            finish_task(conn, task_id, "failed", "pending", refusal)
            print("[Task %d] Not started: %s" % (task_id, refusal), flush=True)
            return 1
        if task is None:
            row = get_task(conn, task_id)
            print("[Task %d] Not started: %s" % (task_id, "no such task" if row is None
                                                  else "it is %s, not pending" % row["status"]), flush=True)
            return 1
        params = json.loads(task["params"] or "{}")
        api = params.get("ipfs_api") or api_url or os.environ.get("IPFSMASTER_IPFS_API") or DEFAULT_API
        ctx = TaskContext(task, db_path, api, auth if auth is not None else os.environ.get("IPFSMASTER_IPFS_AUTH"),
                          interval=interval)
        return execute(conn, ctx, load)
    finally:
        conn.close()


def execute(conn, ctx, load):
    """Run a claimed task to its end, with the reporter thread alongside."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: setattr(ctx, "signalled", True))
    done = threading.Event()
    reporter = threading.Thread(target=ctx.run_reporter, args=(done,), name="reporter", daemon=True)
    reporter.start()
    status, error = "failed", None
    try:
        try:
            run = load(ctx.task_type)
        except KeyError:
            raise IPFSError("unknown task type %r" % ctx.task_type)
        ctx.result = run(ctx) or ctx.result
        ctx.check()
        status = "completed"
    except TaskStopped:
        pass
    except IPFSError as exc:
        error = str(exc)
    except Exception as exc:
        traceback.print_exc(file=ctx.out)
        error = "internal error: %s: %s" % (type(exc).__name__, exc)
    finally:
        done.set()
        reporter.join()
        ctx.close()
    if status != "completed" and ctx.stop_reason in STOP_MESSAGES:
        status, error = STOP_MESSAGES[ctx.stop_reason]
    finished = ctx.stop_reason != "lost" and finish_task(
        conn, ctx.task_id, status, "running", error, ctx.result, (ctx.progress, ctx.total, ctx.current_item))
    with contextlib.suppress(FileNotFoundError):
        os.remove(ctx.heartbeat_file)
    if not finished:
        ctx.log("Stopped: its status was changed from outside")
        return 1
    if status == "completed":
        return 0
    ctx.log(error if status == "cancelled" else "Failed: %s" % error)
    return 1
