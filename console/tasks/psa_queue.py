"""The psa_queue task: drains the pinning service API's queue (``psa_requests``)
with a few requests in hand at once, then ends when nothing is left.

For each queued request, oldest first: claim it (queued -> pinning, a
compare-and-set), dial its ``origins`` (best-effort: a peer that cannot be
reached is no failure), pin it on the node under its name, record it in the
catalogue, and end it pinned or failed with the node's sentence. Between
requests it unpins the CIDs whose last request ended (``psa_unpins``),
unless a request or the node's own earlier pin holds them.

Nothing is lost to a dead worker: a request it left pinning goes back to
the queue when the next task starts (the server's watch starts one), and a
cancelled task puts back what it had in hand.
"""

import json
import os
import threading
import traceback
import time

from console import catalogue, psa
from console.cids import DEFAULT_PIN_TIMEOUT_S
from console.framing import IPFSError
from console.runner import TaskStopped
from console.store import connect
from console.tasks.common import note_error, plain_error
from console.tasks.sizes import pin_size

CONCURRENCY = 8          # requests in hand at once (IPFSMASTER_PSA_CONCURRENCY)
# The task ends once the queue stayed empty this long: a client that sends
# its requests a second apart keeps one task (a new worker takes a moment).
IDLE_EXIT_S = 5.0
IDLE_POLL_S = (0.02, 0.5)   # an idle thread looks again after this long, from the first to the longest wait
ORIGIN_TIMEOUT_S = 5
TOTAL_EVERY_S = 0.5      # how often the task's total (done, in hand, and still queued) is counted again


def concurrency():
    raw = os.environ.get("IPFSMASTER_PSA_CONCURRENCY", "")
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 64 else CONCURRENCY


def pin_timeout():
    raw = os.environ.get("IPFSMASTER_PSA_PIN_TIMEOUT", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_PIN_TIMEOUT_S


class Drain:
    """The task's shared state: counts, who is busy, when work was last seen."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.lock = threading.Lock()
        # The threads' writes take turns here rather than in SQLite's busy
        # loop, whose sleeps (up to 100 ms each) would be most of a pin's time.
        self.writing = threading.Lock()
        self.busy = 0
        self.last_work = time.monotonic()
        self.timeout_s = pin_timeout()
        self.crash = None
        self.next_count = 0.0
        ctx.result = {"pinned": 0, "failed": 0, "unpinned": 0, "requeued": 0, "error_details": []}

    def count(self, key, detail=None):
        with self.lock:
            self.ctx.result[key] += 1
            if detail is not None:
                note_error(self.ctx.result, detail)
            self.ctx.total = max(self.ctx.total, self.ctx.progress + 1)
            self.ctx.advance(1)

    def run_worker(self):
        """One of the task's threads; an unexpected error stops the task (what
        it had in hand goes back to the queue when the next one starts)."""
        try:
            self.drain_queue()
        except Exception as exc:
            traceback.print_exc(file=self.ctx.out)
            self.crash = exc
            self.ctx.request_stop("crash")

    def drain_queue(self):
        conn = connect(self.ctx.db_path)
        client = self.ctx.client(timeout=self.timeout_s + 30.0)
        idle_wait = IDLE_POLL_S[0]
        try:
            while not self.ctx.stopping:
                with self.writing:
                    row = psa.claim_next(conn, self.ctx.task_id)
                    cid = None if row is not None else psa.take_unpin(conn)
                if row is None and cid is None:
                    with self.lock:
                        idle = self.busy == 0 and time.monotonic() - self.last_work > IDLE_EXIT_S
                    if idle:
                        return
                    time.sleep(idle_wait)
                    idle_wait = min(IDLE_POLL_S[1], idle_wait * 2)
                    continue
                idle_wait = IDLE_POLL_S[0]
                with self.lock:
                    self.busy += 1
                    count_now = time.monotonic() >= self.next_count
                    if count_now:
                        self.next_count = time.monotonic() + TOTAL_EVERY_S
                if count_now:       # counting the queue costs a scan of it: not for every request
                    self.ctx.total = self.ctx.progress + self.busy + psa.queued_count(conn)
                try:
                    if row is not None:
                        self.pin(conn, client, row)
                    else:
                        self.unpin(conn, client, cid)
                finally:
                    with self.lock:
                        self.busy -= 1
                        self.last_work = time.monotonic()
        finally:
            client.close()
            conn.close()

    def pin(self, conn, client, row):
        ctx = self.ctx
        ctx.current_item = row["cid"]
        try:
            with ctx.interruptible(client):
                dial_origins(client, json.loads(row["origins"]))
                on_node = pinned_on_node(client, row["cid"])
                with self.writing:
                    held = psa.note_held_before(conn, row, on_node)
                since = catalogue.now(conn)
                # A pin the node has is left as it is: pin/add again would clear its name.
                if not held:
                    args = [("arg", row["cid"]), ("timeout", "%ds" % self.timeout_s)]
                    client.call("pin/add", args + ([("name", row["name"])] if row["name"] else []))
        except IPFSError as exc:
            if ctx.stopping:
                with self.writing:
                    psa.requeue(conn, row, ctx.task_id)
                self.count("requeued")
                return
            error = plain_error(exc)
            if "deadline exceeded" in error:
                error = "timed out after %d s (%s)" % (self.timeout_s, error)
            with self.writing:
                psa.finish_request(conn, row, ctx.task_id, "failed", error)
            self.count("failed", {"cid": row["cid"], "error": error})
            return
        size = pin_size(client, row["cid"])
        with self.writing:
            catalogue.store_pin(conn, row["cid"], "" if held else row["name"] or "",
                                size if isinstance(size, int) else None, rename=not held, since=since)
            psa.finish_request(conn, row, ctx.task_id, "pinned")
        self.count("pinned")

    def unpin(self, conn, client, cid):
        since = catalogue.now(conn)
        try:
            with self.ctx.interruptible(client):
                client.call("pin/rm", [("arg", cid)])
        except IPFSError as exc:
            if "not pinned" not in str(exc):
                self.count("failed", {"cid": cid, "error": plain_error(exc)})
                return
        with self.writing:
            catalogue.remove_pin(conn, cid, since=since)
        self.count("unpinned")


def dial_origins(client, origins):
    """Connect to the peers that are said to have the data; their failures are no one's business."""
    for origin in origins[:psa.MAX_ORIGINS]:
        if "/p2p/" not in origin:
            continue
        try:
            client.call("swarm/connect", [("arg", origin), ("timeout", "%ds" % ORIGIN_TIMEOUT_S)])
        except IPFSError as exc:
            if exc.transient:
                raise


def pinned_on_node(client, cid):
    """Whether the node pins ``cid`` recursively already."""
    try:
        client.call("pin/ls", [("arg", cid), ("type", "recursive")])
        return True
    except IPFSError as exc:
        if exc.transient:
            raise
        return False


def run(ctx):
    """Drain the queue; end when it stayed empty for IDLE_EXIT_S."""
    conn = connect(ctx.db_path)
    try:
        requeued = psa.requeue_orphans(conn, ctx.task_id)
    finally:
        conn.close()
    drain = Drain(ctx)
    if requeued:
        ctx.log("Took back %d requests a stopped worker had in hand" % requeued)
    ctx.log("Draining the pinning service's queue, %d at a time..." % concurrency())
    threads = [threading.Thread(target=drain.run_worker, name="psa-%d" % n, daemon=True) for n in range(concurrency())]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                ctx.check()
                thread.join(0.1)
    except TaskStopped:
        for thread in threads:
            thread.join()
        if drain.crash is not None:
            raise IPFSError("the queue stopped on an unexpected error: %s: %s" % (type(drain.crash).__name__,
                                                                                  drain.crash))
        raise
    ctx.current_item = None
    result = ctx.result
    ctx.log("Queue drained: %d pinned, %d failed, %d unpinned"
            % (result["pinned"], result["failed"], result["unpinned"]))
    return result
