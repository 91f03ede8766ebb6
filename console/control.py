"""Task control, as the server and the command line do it: start a task's
worker, cancel, retry, notice workers that died, clean up old tasks.
"""

import contextlib
import heapq
import json
import logging
import os
import threading
import time

from console import processes, registry
from console.errors import AlreadyRetried, NotRetryable, TaskStateError
from console.store import connect, create_task, finish_task, get_task, request_cancel, task_as_json, transaction

log = logging.getLogger("ipfsmaster")


def heartbeat_fresh(settings, task_id):
    """Whether the task's worker renewed its heartbeat file within the stale limit."""
    try:
        age = time.time() - os.stat(settings.files.heartbeat(task_id)).st_mtime
    except OSError:
        return False
    return age < settings.stale_seconds


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
                settings.files.discard_spool(task_id)
                return "cancelled"
        elif row["status"] == "running":
            if request_cancel(conn, task_id):
                return "cancelling"
        else:
            raise TaskStateError(row["status"])
    raise TaskStateError(get_task(conn, task_id)["status"])


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
            # Cancelled only once its worker is gone: until then it still
            # holds its place (its exclusive group), and a look after the
            # kill finds it gone.
            if processes.is_task_worker(row["pid"], row["id"], row["created_at"], row["started_at"]):
                processes.terminate_process(row["pid"], row["id"])
            elif finish_task(conn, row["id"], "cancelled", "running", CANCEL_FORCED):
                changed.append(row["id"])
        elif (row["silent"] and not heartbeat_fresh(settings, row["id"])) or not processes.process_alive(row["pid"]):
            if finish_task(conn, row["id"], "failed", "running", WORKER_DIED):
                changed.append(row["id"])
    for task_id in changed:
        settings.files.discard_spool(task_id)
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
    lists = unreferenced_pin_lists(conn, settings, [row["pin_list"] for row in rows if row["pin_list"]])
    for path in lists + [path for task_id in ids for path in settings.files.of_task(task_id)]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    return ids


def unreferenced_pin_lists(conn, settings, tokens):
    """The list files of ``tokens`` that no remaining task uses, for cleanup."""
    paths = []
    for token in set(tokens):
        used = conn.execute("SELECT 1 FROM background_tasks WHERE json_valid(params)"
                            " AND json_extract(params, '$.pin_list') = ? LIMIT 1", (token,)).fetchone()
        if not used:
            paths.append(settings.files.pin_list(token))
    return paths


def read_log_tail(settings, task_id, max_bytes=16384):
    """The last ``max_bytes`` of a task's worker output ('' if none)."""
    try:
        with open(settings.files.log(task_id), "rb") as f:
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
        processes.spawn_worker(settings, task_id)
    except OSError as exc:
        finish_task(conn, task_id, "failed", "pending", "could not start the worker: %s" % exc.strerror)
        settings.files.discard_spool(task_id)
        raise
    return task_id


def retry_task(settings, conn, task_id, ipfs_api=None, here=False):
    """Start a new task like a failed or cancelled one (or, for a completed
    one whose items partly failed, for those items), linked to it; returns
    the new id.

    ``here``: against the console's current node and cluster (a retry from
    the pages), rather than the ones the old task used; ``ipfs_api``, if
    given, replaces just the node's address (the command line's --ipfs-api).

    KeyError if there is no such task, TaskStateError if it is not failed,
    cancelled or partial, NotRetryable for types whose input is gone,
    AlreadyRetried, TaskConflict.
    """
    row = get_task(conn, task_id)
    if row is None:
        raise KeyError(task_id)
    task = task_as_json(row)
    if task["status"] not in ("failed", "cancelled") and not task["partial"]:
        raise TaskStateError(row["status"])
    task_type = registry.TASK_TYPES.get(row["task_type"])
    if task_type is None or not task_type.retryable:
        raise NotRetryable(row["task_type"])
    if task["retried_by"] is not None:
        raise AlreadyRetried(task_id, task["retried_by"])
    params = json.loads(row["params"] or "{}")
    if here:
        params.pop("cluster_api", None)
        params.update(settings.sync_params())
    if ipfs_api:
        params["ipfs_api"] = ipfs_api
    return start_task(settings, conn, row["task_type"], params, retry_of=task_id)


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
                    # A worker being ended: look again once it is gone.
                    if conn.execute("SELECT 1 FROM background_tasks WHERE status = 'running'"
                                    " AND cancel_requested_at IS NOT NULL LIMIT 1").fetchone():
                        self.check_in(1)
                finally:
                    conn.close()
            except Exception:
                log.exception("could not enforce a cancel")
