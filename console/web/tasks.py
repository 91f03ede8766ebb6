"""Handlers of the task console: one task, the list, cancel, retry, the log."""

from console import exports, registry
from console.control import cancel_task, mark_stale_tasks, read_log_tail, retry_task
from console.errors import HTTPError, TaskStateError
from console.store import ACTIVE_STATUSES, FINAL_STATUSES, get_task, list_tasks, task_as_json
from console.web.http import Response, download, json_response, task_errors


def task_or_404(req, task_id):
    row = get_task(req.db, task_id)
    if row is None:
        raise HTTPError(404, "There is no task {id}.", id=task_id)
    return row


def handle_task_status(req):
    """One task, for the poller, with the id of its latest retry."""
    task_id = req.task_id()
    mark_stale_tasks(req.db, req.settings)
    return json_response(task_as_json(task_or_404(req, task_id)))


def task_query(req):
    """(status, type) of a request for tasks (None for any), or a 400."""
    status = req.arg("status").strip()
    if status and status not in ACTIVE_STATUSES + FINAL_STATUSES:
        raise HTTPError(400, "Unknown status {value!r}.", value=status[:40])
    task_type = req.arg("type").strip()
    if task_type and task_type not in registry.TASK_TYPES:
        raise HTTPError(400, "Unknown task type {value!r}.", value=task_type[:40])
    return status or None, task_type or None


def handle_tasks_api(req):
    """Every task, newest first, filtered and paged."""
    status, task_type = task_query(req)
    limit = req.int_arg("limit", 50, 1, 500)
    offset = req.int_arg("offset", 0, 0, 100000000)
    mark_stale_tasks(req.db, req.settings)
    rows, total = list_tasks(req.db, status, task_type, limit, offset)
    return json_response({"tasks": [task_as_json(row) for row in rows], "total": total})


def handle_tasks_export(req):
    """Every task that matches the filters, newest first, as CSV, streamed."""
    fmt = req.arg("format", "csv").strip() or "csv"
    if fmt != "csv":
        raise HTTPError(400, "Unknown export format {value!r}: tasks export as csv.", value=fmt[:40])
    status, task_type = task_query(req)
    mark_stale_tasks(req.db, req.settings)
    return download(exports.on_own_connection(req.settings.db, exports.task_export, status, task_type),
                    "text/csv; charset=utf-8", "tasks.csv")


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


def handle_task_retry(req):
    """Start a new task like a failed or cancelled one (or for the failed
    items of a partial one), against the console's current node and cluster."""
    task_id = req.task_id()
    req.discard_body()
    try:
        with task_errors(task_id):
            new_id = retry_task(req.settings, req.db, task_id, here=True)
    except TaskStateError as exc:
        raise HTTPError(409, "Only failed or cancelled tasks, or tasks with failed items, can be retried;"
                             " task {id} is {status}.",
                        id=task_id, status=exc.status)
    return json_response({"success": True, "taskId": new_id, "retryOf": task_id}, 202)


def handle_task_log(req):
    """The tail of a task's worker output, as plain text."""
    task_id = req.task_id()
    task_or_404(req, task_id)
    text = read_log_tail(req.settings, task_id)
    return Response(text.encode("utf-8"), content_type="text/plain; charset=utf-8",
                    headers=[("Cache-Control", "no-store")])
