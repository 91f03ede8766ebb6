"""The file_upload task: stream a spooled upload (a file, or a folder's
files) to the node's ``add``, then record its pin."""

import os
from urllib.parse import quote

from console import catalogue
from console.framing import IPFSError
from console.store import connect
from console.tasks.common import spooled_multipart, store_console_pin


def run(ctx):
    """Stream a spooled upload to the node's add, then record its pin.

    progress/total count bytes sent to the node. The spool file is removed
    however the task ends.
    """
    path = ctx.files.spool(ctx.task_id)
    name = str(ctx.params.get("file_name") or "upload")
    pin = bool(ctx.params.get("pin", True))
    ctx.result = {"name": name, "pinned": False}
    try:
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:
            raise IPFSError("the uploaded file is gone (%s)" % os.path.basename(path))
        ctx.set_total(size)
        ctx.current_item = name
        # One file; a folder's files, added as that folder; or several
        # files, added as one directory that wraps them.
        files = ctx.params.get("files") or [[name, size]]
        several = "files" in ctx.params
        tops = {str(file_path).split("/")[0] for file_path, _ in files}
        wrap = several and not (len(tops) == 1 and all("/" in str(file_path) for file_path, _ in files))
        ctx.log("Uploading %s (%d bytes%s) to IPFS..." % (name, size, ", %d files" % len(files) if several else ""))
        if sum(int(length) for _, length in files) != size:
            raise IPFSError("the uploaded files do not add up to their size")
        parts = [(quote(str(file_path), safe=" ._-()[]/" if several else " ._-()[]"), int(length))
                 for file_path, length in files]
        body, length, content_type = spooled_multipart(ctx, path, parts)
        options = [("progress", "true"), ("pin", "true" if pin else "false")]
        if pin:
            options.append(("pin-name", name))     # the pin's name on the node, not just here
        if wrap:
            options.append(("wrap-with-directory", "true"))
        client = ctx.client()
        conn = connect(ctx.db_path)
        try:
            since = catalogue.now(conn)
        finally:
            conn.close()
        # The root, the last entry Kubo answers: the file, the folder, or the wrapping directory ("").
        root = "" if wrap else next(iter(tops)) if several else None
        added = None
        # A cancel shuts the connection (interruptible), which ends the loop
        # with an error. Once the node's answer has ended, the file is added
        # and pinned: it goes in the catalogue even if a cancel came then.
        with ctx.interruptible(client):
            for obj in client.upload("add", options, body, length, content_type):
                if isinstance(obj, dict) and obj.get("Hash") and (root is None or obj.get("Name") == root):
                    added = obj
        if added is None:
            raise IPFSError("IPFS add finished without giving the file's CID")
        cid, dag_size = added["Hash"], int(added.get("Size") or 0)
        ctx.progress = size
        ctx.result.update({"cid": cid, "size": size, "dag_size": dag_size, "pinned": pin})
        if several:
            ctx.result["files"] = len(files)
        if pin:
            conn = connect(ctx.db_path)
            try:
                store_console_pin(conn, cid, name, dag_size, since=since)
            finally:
                conn.close()
        ctx.log("Upload completed: %s" % cid)
        return ctx.result
    finally:
        ctx.files.discard_spool(ctx.task_id)
