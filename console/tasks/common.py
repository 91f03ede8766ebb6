"""What the task types share: a result's error details, a spooled upload
sent to the node, the pin tasks' items (each once, in order, with what a
retry takes up), a pin's name on the node, and following a pin that IPFS
Cluster is placing.
"""

import itertools
import json
import os
import re
import time
from urllib.parse import quote

from console import catalogue, psa
from console.catalogue import cluster_pin_rows
from console.framing import IPFSError
from console.store import connect, get_task, transaction
from console.tasks.in_flight import Step, run_in_flight

MAX_ERROR_DETAILS = 10       # error details kept in a task's result
CLUSTER_POLL_S = 0.5
SPOOL_CHUNK = 1024 * 1024    # bytes read from a spooled upload at a time


def note_error(result, detail):
    """Keep ``detail`` among the first MAX_ERROR_DETAILS of ``result["error_details"]``."""
    details = result.setdefault("error_details", [])
    if len(details) < MAX_ERROR_DETAILS:
        details.append(detail)


def spooled_multipart(ctx, path, parts):
    """A spooled upload as the multipart body the node reads (``add``,
    ``dag/import``): a part named ``file`` for each (file name, length) of
    ``parts``, read in order from the spool file ``path``, each byte counted
    in the task's progress once the node has taken it.

    Returns (the body's chunks, its length, its Content-Type). File names
    are sent as given: quote them first.
    """
    boundary = "ipfsmaster-" + os.urandom(12).hex()
    heads = [('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
              'Content-Type: application/octet-stream\r\n\r\n' % (boundary, file_name)).encode("utf-8")
             for file_name, _ in parts]
    tail = ("\r\n--%s--\r\n" % boundary).encode("ascii")

    def body():
        with open(path, "rb") as f:
            for number, ((_, length), head) in enumerate(zip(parts, heads)):
                yield (b"\r\n" if number else b"") + head
                left = length
                while left > 0:
                    chunk = f.read(min(SPOOL_CHUNK, left))
                    if not chunk:
                        raise IPFSError("the uploaded file is shorter than it was")
                    left -= len(chunk)
                    yield chunk
                    ctx.advance(len(chunk))  # resumed once the chunk is sent
        yield tail

    length = sum(len(head) for head in heads) + 2 * (len(parts) - 1) + sum(size for _, size in parts) + len(tail)
    return body(), length, "multipart/form-data; boundary=" + boundary


def count_of(number, noun):
    """'1 CID', '2 CIDs'."""
    return "%d %s%s" % (number, noun, "" if number == 1 else "s")


def read_items(path):
    """(cid, name) of each line of an item file (CID<TAB>NAME); nothing if there is no such file."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                cid, _, name = line.rstrip("\n").partition("\t")
                yield cid, name
    except FileNotFoundError:
        return


class PinItems:
    """The (cid, name) items of a pin task, each CID once, and the record of
    what it still owes, kept on disk so that a retry finds it however the
    task ended, a SIGKILL included.

    A task owes: the items it failed (its ``undone`` file, appended as each
    fails), the items it took over from the task it retries and has not
    finished (its ``inherited`` file, from ``inherited_next`` on), and its
    list's items from ``next_index`` on (both kept in the result). A retry
    writes all but the last into its own ``inherited`` file before it
    begins, then goes on with the list where its predecessor stood. What
    was done is not done again; what was in hand when a worker died is.
    """

    def __init__(self, ctx, conn, source):
        self.ctx, self.conn, self.source = ctx, conn, source
        self.result = ctx.result
        files = ctx.files
        files.make_folder()
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (cid TEXT PRIMARY KEY) WITHOUT ROWID")
        conn.execute("DELETE FROM seen")
        self.start, self.inherited = 0, 0
        if ctx.retry_of is not None:
            owed, self.start = self.owed_by(ctx.retry_of)
            partial = files.inherited(ctx.task_id) + ".partial"
            with open(partial, "w", encoding="utf-8") as out:
                for item in owed:
                    out.write("%s\t%s\n" % item)
                    self.inherited += 1
            os.replace(partial, files.inherited(ctx.task_id))
        self.result.update(next_index=self.start, inherited_next=0)
        self.undone = open(files.undone(ctx.task_id), "w", encoding="utf-8")

    def owed_by(self, task_id):
        """(the items ``task_id`` owes before the rest of its list, where it
        stood in its list). A task that died before it took over what its
        own predecessor owed, or before it said where it stood, owes what
        that predecessor owed."""
        row = get_task(self.conn, task_id)
        if row is None:
            return iter(()), 0
        try:
            old = json.loads(row["result"] or "{}")
        except ValueError:
            old = {}
        old = old if isinstance(old, dict) else {}
        earlier, start = iter(()), 0
        if row["retry_of"] is not None and not ("next_index" in old and os.path.exists(
                self.ctx.files.inherited(task_id))):
            earlier, start = self.owed_by(row["retry_of"])
        if os.path.exists(self.ctx.files.inherited(task_id)):
            done = int(old.get("inherited_next") or 0)
            earlier = (item for index, item in enumerate(read_items(self.ctx.files.inherited(task_id)))
                       if index >= done)
        if "next_index" in old:
            start = int(old["next_index"] or 0)
        return itertools.chain(read_items(self.ctx.files.undone(task_id)), earlier), start

    def __iter__(self):
        """(cid, name) of each item to do; counts and skips duplicates."""
        result = self.result
        for index, item in enumerate(read_items(self.ctx.files.inherited(self.ctx.task_id))):
            result["inherited_next"] = index
            yield from self._fresh(item)
            result["inherited_next"] = index + 1
        for index, item in enumerate(self.source(self.start), self.start):
            result["next_index"] = index
            yield from self._fresh(item)
            result["next_index"] = index + 1

    def positions(self):
        """(cid, name, kind, index, fresh) of every item, in order: ``kind``
        and ``index`` say where a retry would take up from it (see
        in_flight); a duplicate comes with ``fresh`` False, counted."""
        for index, item in enumerate(read_items(self.ctx.files.inherited(self.ctx.task_id))):
            yield item + ("inherited_next", index, self._first(item))
        for index, item in enumerate(self.source(self.start), self.start):
            yield item + ("next_index", index, self._first(item))

    def _first(self, item):
        if self.conn.execute("INSERT OR IGNORE INTO seen (cid) VALUES (?)", (item[0],)).rowcount:
            return True
        self.result["duplicates"] += 1
        self.ctx.advance(1)
        return False

    def owe(self, cid, name):
        """An item begun and not finished: on the undone file, for a retry."""
        self.undone.write("%s\t%s\n" % (cid, name))
        self.undone.flush()

    def remaining(self, total):
        """How many items this run has: all of them, or what a predecessor left."""
        return self.inherited + max(0, total - self.start)

    def _fresh(self, item):
        if self._first(item):
            yield item

    def done(self, cid):
        self.result["done"] += 1
        self.ctx.advance(1, cid)

    def failed(self, cid, name, error):
        self.result["failed"] += 1
        note_error(self.result, {"cid": cid, "error": error})
        self.undone.write("%s\t%s\n" % (cid, name))
        self.undone.flush()
        self.ctx.log("Failed %s: %s" % (cid, error))
        self.ctx.advance(1, cid)

    def close(self):
        self.undone.close()


def pin_counts():
    """What a pin task's result counts, before its first item."""
    return {"done": 0, "failed": 0, "duplicates": 0, "error_details": []}


def run_pin_task(ctx, source, total, act, verb, workers=1):
    """The loop pin_add and pin_remove share: each item through ``act``,
    which returns None when it is done, else the sentence that says why not;
    or, given an in_flight.Step as ``act``, ``workers`` items at once."""
    conn = connect(ctx.db_path)
    ctx.result = dict(pin_counts(), **ctx.result)
    items = PinItems(ctx, conn, source)
    ctx.set_total(items.remaining(total))
    started = time.monotonic()
    try:
        ctx.log("%s %s..." % (verb, count_of(ctx.total, "CID")))
        if isinstance(act, Step):
            run_in_flight(ctx, conn, items, act, workers)
        for cid, name in () if isinstance(act, Step) else items:
            ctx.check()
            ctx.current_item = cid
            error = act(conn, cid, name)
            # Counted before anything else: what the node did is recorded
            # even when a cancel came meanwhile (the next check stops).
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


def store_console_pin(conn, cid, name, size, since=None, on_node=None):
    """Record a pin the console made (a pin task, an upload, a CAR import) in
    the catalogue, named as asked; the pinning service's requests for the
    same CID then leave it pinned when they end. store_pin's answer."""
    stored = catalogue.store_pin(conn, cid, name, size, rename=True, since=since, on_node=on_node)
    psa.note_console_pin(conn, cid)
    return stored


def store_console_pins(conn, entries, on_node):
    """store_console_pin for several pins, ``(cid, name, size, since)`` each,
    in one transaction; a pin an unpin crossed is settled alone, asking
    ``on_node(cid)`` whether the node pins it."""
    with transaction(conn):
        crossed = catalogue.write_pins(conn, entries, rename=True)
        settled_later = {entry[0] for entry, _ in crossed}
        psa.note_console_pins(conn, [entry[0] for entry in entries if entry[0] not in settled_later])
    for (cid, name, size, since), _ in crossed:
        store_console_pin(conn, cid, name, size, since=since, on_node=lambda: on_node(cid))


def name_on_node(client, cid):
    """The name of ``cid``'s recursive pin on the node ('' for none), or None if it has none."""
    try:
        answer = client.call("pin/ls", [("arg", cid), ("type", "recursive"), ("names", "true")])
    except IPFSError as exc:
        if exc.transient:
            raise
        return None         # "not pinned"
    keys = answer.get("Keys") if isinstance(answer, dict) else None
    for entry in (keys or {}).values():
        return str(entry.get("Name") or "") if isinstance(entry, dict) else ""
    return None


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
