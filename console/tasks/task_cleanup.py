"""The task_cleanup task: delete finished tasks older than ``days`` (the
retention period), with their files, as ``ipfsmaster.py cleanup`` does;
what a schedule runs to keep the task list short."""

from console.control import cleanup_tasks
from console.settings import DEFAULTS, Settings
from console.store import connect


def run(ctx):
    """Delete finished tasks past the retention period; the result counts them."""
    days = int(ctx.params.get("days") or DEFAULTS["retention_days"])
    conn = connect(ctx.db_path)
    try:
        ctx.log("Deleting finished tasks older than %d days..." % days)
        removed = cleanup_tasks(conn, Settings(db=ctx.db_path), days)
    finally:
        conn.close()
    ctx.set_total(len(removed))
    ctx.advance(len(removed))
    ctx.log("Cleanup completed: %d tasks removed" % len(removed))
    return {"removed": len(removed), "days": days}
