"""The car_import task: stream a spooled CAR to the node's ``dag/import``,
which stores its blocks and pins its roots, then put each root it pinned in
the catalogue with its size.

Kubo's import clears the name of a root that was already pinned under one,
so the task reads the roots from the CAR's header first and afterwards gives
each root its old name back, or the CAR's name if it had none.
"""

import os
import time

from console.car import NotACar, read_roots
from console.framing import IPFSError
from console.store import connect
from console.tasks.common import count_of, name_on_node, note_error, plain_error, spooled_multipart, store_console_pin
from console.tasks.sizes import pin_size

MAX_ROOTS_LISTED = 100      # roots named in a result; ``done`` counts them all


def run(ctx):
    """Import the task's spooled CAR, pinning its roots; progress/total count
    bytes sent to the node. The spool file is removed however the task ends."""
    path = ctx.files.spool(ctx.task_id)
    name = str(ctx.params.get("file_name") or "import.car")
    result = ctx.result = {"name": name, "roots": [], "done": 0, "failed": 0, "error_details": []}
    started = time.monotonic()
    try:
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                roots = read_roots(f)
        except FileNotFoundError:
            raise IPFSError("the CAR file is gone (%s)" % os.path.basename(path))
        except NotACar as exc:
            raise IPFSError("the file is not a CAR: %s" % exc)
        ctx.set_total(size)
        ctx.current_item = name
        ctx.log("Importing %s (%d bytes, %s) into IPFS..." % (name, size, count_of(len(roots), "root")))
        client = ctx.client()
        names = {}
        for root in roots:
            ctx.check()
            names[root] = name_on_node(client, root)
        body, length, content_type = spooled_multipart(ctx, path, [("import.car", size)])
        answers = []
        # A cancel shuts the connection, which ends the import with an error;
        # once the node has answered, the roots are pinned and are recorded.
        with ctx.interruptible(client):
            for obj in client.upload("dag/import", [("pin-roots", "true"), ("stats", "true")], body, length,
                                     content_type):
                if isinstance(obj, dict):
                    answers.append(obj)
        ctx.progress = size
        client.stopped = False
        conn = connect(ctx.db_path)
        try:
            for obj in answers:
                if isinstance(obj.get("Stats"), dict):
                    result["blocks"] = obj["Stats"].get("BlockCount")
                    result["block_bytes"] = obj["Stats"].get("BlockBytesCount")
                elif isinstance(obj.get("Root"), dict):
                    record_root(ctx, client, conn, obj["Root"], names, name)
        finally:
            conn.close()
        ctx.current_item = None
        ctx.log("Import completed: %s pinned, %d failed" % (count_of(result["done"], "root"), result["failed"]))
        return result
    finally:
        result["duration_s"] = round(time.monotonic() - started, 3)
        ctx.files.discard_spool(ctx.task_id)


def record_root(ctx, client, conn, root, names, default_name):
    """One root as ``dag/import`` answers it: pinned (named, sized, in the
    catalogue) or failed, with the node's sentence."""
    result = ctx.result
    cid = str((root.get("Cid") or {}).get("/") or "")
    if root.get("PinErrorMsg") or not cid:
        result["failed"] += 1
        note_error(result, {"cid": cid, "error": str(root.get("PinErrorMsg") or "the node named no CID")})
        ctx.log("Failed %s: %s" % (cid, root.get("PinErrorMsg")))
        return
    name = names.get(cid) or default_name
    try:
        client.call("pin/add", [("arg", cid), ("name", name), ("timeout", "60s")])
    except IPFSError as exc:
        if exc.transient:
            raise
        ctx.log("Could not name %s: %s" % (cid, exc))
        # Kubo drops a pin before pinning it again under the new name: a failure
        # may have left it unpinned, or pinned as the import left it (no name).
        name = name_on_node(client, cid)
        if name is None:
            result["failed"] += 1
            note_error(result, {"cid": cid, "error": plain_error(exc)})
            return
    size = pin_size(client, cid)
    size = size if isinstance(size, int) else None
    store_console_pin(conn, cid, name, size)
    result["done"] += 1
    if len(result["roots"]) < MAX_ROOTS_LISTED:
        result["roots"].append({"cid": cid, "name": name, "size": size})
    ctx.log("Pinned %s" % cid)
