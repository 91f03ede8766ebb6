"""The repo_verify task: the node's ``repo/verify``, streamed, which reads
every block of the repository and checks it against its hash (progress
counts blocks), then, for the damaged blocks it found, which pins of the
catalogue they belong to.

Kubo names a damaged block by its key in the blockstore, as a raw CIDv1
(``bafkrei...``) even when it is a folder's node, so blocks are matched by
multihash. A pin holds a block if it is the pin's root or in the DAG below
it (its ``refs``, read offline; see ``walk`` for a node that cannot be
read). That walk reads each pin's blocks once more, so it runs only when
something is damaged; a cancel stops it, and each pin's walk has a time-out.
"""

import re
import time

from console.cids import multihash_of
from console.framing import IPFSError, StreamError
from console.store import connect
from console.tasks.common import count_of, note_error

MAX_DAMAGED_LISTED = 100      # damaged blocks named in the result (``failed`` counts them all)
MAX_PINS_LISTED = 100         # pins named for each damaged block (``more_pins`` counts the rest)
PIN_PAGE = 1000               # pins read from the catalogue at a time
WALK_TIMEOUT = "30m"          # one pin's refs, at most
MAX_DEPTH = 64                # links followed below a block that refs could not read
CORRUPT = re.compile(r"block (\S+) was corrupt \((.*)\)", re.S)


def run(ctx):
    """Verify every block of the node's repository, then name the pins of the damaged ones."""
    client = ctx.client(timeout=600.0)
    result = ctx.result = {"blocks": 0, "failed": 0, "damaged": [], "vanished": 0, "pins_walked": 0,
                           "walk_errors": 0, "error_details": []}
    started = time.monotonic()
    try:
        ctx.set_total(block_count(client))
        ctx.log("Verifying %s..." % (count_of(ctx.total, "block") if ctx.total else "every block"))
        ctx.current_item = "Verifying blocks..."
        damaged = verify_blocks(ctx, client)
        if damaged:
            ctx.log("%s damaged; looking for the pins that hold them..." % count_of(len(damaged), "block"))
            find_pins(ctx, client, damaged)
        for entry in damaged.values():
            pins = ", ".join(pin["name"] or pin["cid"] for pin in entry["pins"]) or "no pin in the catalogue"
            note_error(result, {"cid": entry["cid"], "error": "%s (pins: %s)" % (entry["error"], pins)})
        result["damaged"] = list(damaged.values())[:MAX_DAMAGED_LISTED]
        ctx.current_item = None
        ctx.log("Verification completed: %s verified, %d damaged" % (count_of(result["blocks"], "block"),
                                                                      result["failed"]))
        return result
    finally:
        result["duration_s"] = round(time.monotonic() - started, 3)


def block_count(client):
    """How many blocks the repository holds (Kubo counts its keys), or 0 if it cannot say."""
    try:
        return int(client.call("repo/stat", [("timeout", "5m")]).get("NumObjects") or 0)
    except IPFSError as exc:
        if exc.transient:
            raise
        return 0


def verify_blocks(ctx, client):
    """Stream repo/verify; returns {multihash: entry} of the damaged blocks,
    each entry {"cid", "error", "pins": [], "more_pins": 0}."""
    result = ctx.result
    damaged = {}
    with ctx.interruptible(client):
        try:
            for batch in client.stream_batches("repo/verify"):
                for obj in batch:
                    if not isinstance(obj, dict):
                        continue
                    progress = obj.get("Progress")
                    if isinstance(progress, int) and progress > result["blocks"]:
                        result["blocks"] = progress
                    message = str(obj.get("Msg") or "")
                    found = CORRUPT.fullmatch(message)
                    if found is None:
                        if message and not message.startswith("verify complete"):
                            ctx.log("The node says: %s" % message)
                    elif "could not find" in found.group(2) or "not found" in found.group(2):
                        # Listed, then gone before it was read: removed meanwhile (a
                        # garbage collection), not damaged.
                        result["vanished"] += 1
                    elif multihash_of(found.group(1)) not in damaged:
                        result["failed"] += 1
                        damaged[multihash_of(found.group(1))] = {"cid": found.group(1), "error": found.group(2),
                                                                 "pins": [], "more_pins": 0}
                        ctx.log("Damaged: %s (%s)" % (found.group(1), found.group(2)))
                ctx.progress = result["blocks"]
                ctx.total = max(ctx.total, ctx.progress)
                ctx.check()
        except StreamError as exc:
            # Kubo ends a verification that found damage with an error of its
            # own ("verify complete, 2 blocks corrupt"): the list is complete.
            if not (damaged and exc.reported.startswith(b"verify complete")):
                ctx.check()
                raise
        except IPFSError:
            ctx.check()
            raise
    client.stopped = False
    return damaged


def find_pins(ctx, client, damaged):
    """Add to each damaged block's entry the catalogued pins that hold it:
    the pin is the block, or (a recursive pin) the block is among its refs."""
    result = ctx.result
    conn = connect(ctx.db_path)
    try:
        total = conn.execute("SELECT COUNT(*) FROM pins").fetchone()[0]
        after = ""
        while True:
            page = conn.execute("SELECT cid, type, name FROM pins WHERE cid > ? ORDER BY cid LIMIT ?",
                                (after, PIN_PAGE)).fetchall()
            if not page:
                return
            for pin in page:
                ctx.check()
                ctx.current_item = "Looking for the damaged blocks in pin %d of %d" % (result["pins_walked"] + 1,
                                                                                      total)
                held = {multihash_of(pin["cid"])} & set(damaged)
                if pin["type"] == "recursive" and not walk(ctx, client, pin["cid"], damaged, held):
                    result["walk_errors"] += 1
                for key in held:
                    entry = damaged[key]
                    if len(entry["pins"]) < MAX_PINS_LISTED:
                        entry["pins"].append({"cid": pin["cid"], "name": pin["name"]})
                    else:
                        entry["more_pins"] += 1
                result["pins_walked"] += 1
            after = page[-1]["cid"]
    finally:
        conn.close()


def walk(ctx, client, cid, damaged, held, pin=None, depth=0):
    """Add to ``held`` the multihashes among ``damaged`` that the DAG under
    ``cid`` (in ``pin``, if it is not the pin's root) holds; False if some block of it that is not among them could
    not be read (a missing one), so the walk could not see all of it.

    Kubo's refs lists a block once it has read it, and stops at the first
    block it cannot read, which a damaged folder or file node is. Then the
    node's own links are read (dag/get reads the node alone) and each link
    is walked apart: a damaged one is found by its key without reading it.
    """
    broke = False
    try:
        with ctx.interruptible(client):
            for obj in client.stream("refs", [("arg", cid), ("recursive", "true"), ("unique", "true"),
                                              ("offline", "true"), ("timeout", WALK_TIMEOUT)]):
                if isinstance(obj, dict) and obj.get("Err"):
                    broke = True
                elif isinstance(obj, dict) and multihash_of(str(obj.get("Ref") or "")) in damaged:
                    held.add(multihash_of(obj["Ref"]))
    except IPFSError as exc:
        ctx.check()
        if exc.transient:
            raise
        broke = True
    client.stopped = False
    if not broke:
        return True
    links = node_links(client, cid)
    if links is None or depth >= MAX_DEPTH:
        ctx.log("Could not read %s%s" % (cid, " in pin %s" % pin if pin else ""))
        return False
    whole = True
    for link in links:
        ctx.check()
        key = multihash_of(link)
        if key in damaged:
            held.add(key)
        elif not walk(ctx, client, link, damaged, held, pin or cid, depth + 1):
            whole = False
    return whole


def node_links(client, cid):
    """The CIDs a node links to, read from the node alone; None if it cannot be read."""
    try:
        node = client.call("dag/get", [("arg", cid), ("output-codec", "dag-json"), ("offline", "true"),
                                       ("timeout", "60s")])
    except IPFSError as exc:
        if exc.transient:
            raise
        return None
    links, todo = [], [node]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            if len(value) == 1 and isinstance(value.get("/"), str):
                links.append(value["/"])        # dag-json's link; {"/": {"bytes": ...}} is bytes
            else:
                todo.extend(reversed(list(value.values())))
        elif isinstance(value, list):
            todo.extend(reversed(value))
    return links
