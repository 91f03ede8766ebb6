#!/usr/bin/env python3
"""IPFSMaster's background worker: runs one task, then exits.

    python3 worker.py TASK_ID [--db PATH] [--ipfs-api URL]

The server starts it detached, one process per task; run by hand it works in
the foreground. What it does around the task (claim, progress, cancel, the
end) is ``console/runner.py``; each task type's code is a module of
``console/tasks``.
"""

import argparse
import os
import sys

from console import tasks
from console.settings import DEFAULTS

WORKER_NICENESS = 10


def main(argv=None):
    parser = argparse.ArgumentParser(prog="worker.py", description="Run one IPFSMaster task in the foreground.")
    parser.add_argument("task_id", type=int, help="the task's id in background_tasks")
    parser.add_argument("--db", help="SQLite database (env IPFSMASTER_DB; default ipfsmaster.db)")
    parser.add_argument("--ipfs-api", help="the node's RPC API, when the task does not name one"
                                           " (env IPFSMASTER_IPFS_API; default %s)" % DEFAULTS["ipfs_api"])
    args = parser.parse_args(argv)
    os.umask(0o077)  # anything the worker creates is the owner's alone
    if hasattr(os, "nice"):
        # A background job: the console's own requests come first when the CPU is busy.
        os.nice(WORKER_NICENESS)
    db = args.db or os.environ.get("IPFSMASTER_DB") or DEFAULTS["db"]
    if not os.path.exists(db):
        parser.error("no database at %s" % db)
    return tasks.run_task(args.task_id, db, args.ipfs_api)


if __name__ == "__main__":
    sys.exit(main())
