"""The upload handler: a file, or a folder's files, received into the
spool as it streams in, then added to the node in the background."""

import contextlib
import os
import secrets

from console.control import start_task
from console.errors import HTTPError
from console.web.http import json_response, multipart_boundary, multipart_fields, task_errors

MAX_UPLOAD_FILES = 10000

UPLOAD_FRAMING = 64 * 1024  # multipart overhead allowed beyond the file itself


def handle_upload(req):
    """Receive a file into the spool, then upload it to the node in the background."""
    multipart_boundary(req.environ)      # a body that is no upload is refused before anything else
    if not req.environ.get("CONTENT_LENGTH"):
        raise HTTPError(411, "Say how large the upload is (Content-Length).")
    length = req.content_length()
    limit = req.settings.max_upload_bytes
    if length > limit + UPLOAD_FRAMING:
        raise HTTPError(413, "The file is larger than the limit of {limit} bytes.", limit=limit)
    task_files = req.settings.files
    task_files.make_folder()
    incoming = task_files.incoming(secrets.token_hex(8))
    files = []      # [path, size] of each file, in the order they are spooled
    spooled = [0]   # bytes of every file so far
    try:
        fd = os.open(incoming, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            def on_file(filename, chunks):
                if len(files) >= MAX_UPLOAD_FILES:
                    raise HTTPError(400, "A folder upload holds at most {limit} files.", limit=MAX_UPLOAD_FILES)
                files.append([upload_path(filename), 0])
                for chunk in chunks:
                    files[-1][1] += len(chunk)
                    spooled[0] += len(chunk)
                    if spooled[0] > limit:
                        raise HTTPError(413, "The file is larger than the limit of {limit} bytes.", limit=limit)
                    out.write(chunk)
            fields = multipart_fields(req.environ, length, {"name": "", "pin": "1"}, on_file)
        file_size = spooled[0]
        if not files:
            raise HTTPError(400, "Send the file as multipart/form-data in a field named file.")
        pin = fields["pin"].lower() not in ("0", "false", "no", "off")
        params = {"ipfs_api": req.settings.ipfs_api, "file_name": fields["name"][:255] or files[0][0].split("/")[-1],
                  "size": file_size, "pin": pin}
        if len(files) > 1 or "/" in files[0][0]:
            # Several files, or a folder's: added as one directory.
            top = {path.split("/")[0] for path, _ in files}
            params["files"] = files
            params["file_name"] = fields["name"][:255] or (
                top.pop() if len(top) == 1 and "/" in files[0][0] else "%d files" % len(files))
        with task_errors():
            task_id = start_task(req.settings, req.db, "file_upload", params,
                                 prepare=lambda new_id: os.replace(incoming, task_files.spool(new_id)))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(incoming)
    return json_response({"success": True, "taskId": task_id}, 202)


def upload_path(filename):
    """A file's path inside a folder upload ("photos/2024/a.jpg"), with
    nothing that could climb out of it; a single file's name."""
    parts = [part[:255] for part in (filename or "").replace("\\", "/").split("/")
             if part not in ("", ".", "..") and not any(ord(c) < 32 for c in part)]
    return "/".join(parts[-32:]) or "upload"
