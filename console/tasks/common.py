"""What the task types share: a result's error details, the pin tasks'
items (each once, in order, with what a retry takes up), and following a
pin that IPFS Cluster is placing.
"""

import json
import re
import time
from urllib.parse import quote

from console.catalogue import cluster_pin_rows
from console.store import connect, get_task

MAX_ERROR_DETAILS = 10       # error details kept in a task's result
CLUSTER_POLL_S = 0.5


def note_error(result, detail):
    """Keep ``detail`` among the first MAX_ERROR_DETAILS of ``result["error_details"]``."""
    details = result.setdefault("error_details", [])
    if len(details) < MAX_ERROR_DETAILS:
        details.append(detail)


class PinItems:
    """The (cid, name) items of a pin task, each CID once, and the record of
    what is left for a retry.

    Items are numbered in input order; ``next_index`` (kept in the result)
    is the first one not yet finished. Items that failed go to the task's
    ``undone`` file as they fail. A retry takes, in order, the items its
    predecessor left in its ``undone`` file and then those from its
    ``next_index`` on: what was done is not done again.
    """

    def __init__(self, ctx, conn, source):
        self.ctx, self.conn, self.source = ctx, conn, source
        self.result = ctx.result
        ctx.files.make_folder()
        self.undone = open(ctx.files.undone(ctx.task_id), "w", encoding="utf-8")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (cid TEXT PRIMARY KEY) WITHOUT ROWID")
        conn.execute("DELETE FROM seen")
        self.previous, self.start, self.old = ctx.retry_of, 0, None
        self.current_old, self.recorded = None, True
        if self.previous is not None:
            row = get_task(conn, self.previous)
            try:
                old = json.loads(row["result"] or "{}") if row is not None else {}
            except ValueError:
                old = {}
            self.start = int(old.get("next_index") or 0) if isinstance(old, dict) else 0
            self.old = self._undone_of(self.previous)

    def __iter__(self):
        """(cid, name) of each item to do; counts and skips duplicates."""
        result = self.result
        result["next_index"] = self.start
        if self.old is not None:
            for item in self.old:
                self.current_old, self.recorded = item, False
                yield from self._fresh(item)
            self.old = self.current_old = None
        for index, item in enumerate(self.source(self.start), self.start):
            result["next_index"] = index
            yield from self._fresh(item)
            result["next_index"] = index + 1

    def remaining(self, total):
        """How many items this run has: all of them, or what a predecessor left."""
        if self.previous is None:
            return total
        return sum(1 for _ in self._undone_of(self.previous)) + max(0, total - self.start)

    def _undone_of(self, task_id):
        try:
            with open(self.ctx.files.undone(task_id), encoding="utf-8") as f:
                for line in f:
                    cid, _, name = line.rstrip("\n").partition("\t")
                    yield cid, name
        except FileNotFoundError:
            return

    def _fresh(self, item):
        if self.conn.execute("INSERT OR IGNORE INTO seen (cid) VALUES (?)", (item[0],)).rowcount:
            yield item
        else:
            self.result["duplicates"] += 1
            self.ctx.advance(1)

    def done(self, cid):
        self.recorded = True
        self.result["done"] += 1
        self.ctx.advance(1, cid)

    def failed(self, cid, name, error):
        self.recorded = True
        self.result["failed"] += 1
        note_error(self.result, {"cid": cid, "error": error})
        self.undone.write("%s\t%s\n" % (cid, name))
        self.undone.flush()
        self.ctx.log("Failed %s: %s" % (cid, error))
        self.ctx.advance(1, cid)

    def close(self):
        """Keep for a retry what a stop left of the predecessor's undone items."""
        if self.old is not None:
            if self.current_old is not None and not self.recorded:
                self.undone.write("%s\t%s\n" % self.current_old)
            for item in self.old:
                self.undone.write("%s\t%s\n" % item)
        self.undone.close()


def run_pin_task(ctx, source, total, act, verb):
    """The loop pin_add and pin_remove share: each item through ``act``."""
    conn = connect(ctx.db_path)
    ctx.result = dict({"done": 0, "failed": 0, "duplicates": 0, "error_details": [], "next_index": 0},
                      **ctx.result)
    items = PinItems(ctx, conn, source)
    ctx.set_total(items.remaining(total))
    started = time.monotonic()
    try:
        ctx.log("%s %d CIDs..." % (verb, total))
        for cid, name in items:
            ctx.check()
            ctx.current_item = cid
            error = act(conn, cid, name)
            ctx.check()
            if error is None:
                items.done(cid)
            else:
                items.failed(cid, name, error)
        ctx.current_item = None
        ctx.result.pop("current", None)
        ctx.log("%s: %d done, %d failed" % (verb.split()[0] + " completed", ctx.result["done"], ctx.result["failed"]))
        return ctx.result
    finally:
        ctx.result["duration_s"] = round(time.monotonic() - started, 3)
        items.close()
        conn.close()


def plain_error(exc):
    """The node's own sentence: "IPFS pin/add failed: X" -> X."""
    return re.sub(r"^IPFS \S+ failed: |^the IPFS node reported an error mid-stream: ", "", str(exc))


def follow_cluster_pin(ctx, cluster, cid, info, deadline):
    """Follow a pin the cluster is placing (``info``: its GlobalPinInfo so
    far, or None) until every peer it is allocated to has pinned it, one
    has failed it, or ``deadline`` (monotonic) passes; returns the last
    GlobalPinInfo with its (wanted, pinned, in_error) counts."""
    while True:
        if info is None:
            info = cluster.call("pins/" + quote(cid, safe=""), method="GET")
        wanted, pinned, in_error = cluster_pin_rows(info)[2][1:]
        ctx.result["current"] = {"cid": cid, "pinned": pinned, "wanted": wanted}
        if pinned >= wanted or in_error or time.monotonic() > deadline:
            return info, (wanted, pinned, in_error)
        ctx.check()
        time.sleep(CLUSTER_POLL_S)
        info = None
