"""The handlers that receive files: an upload (a file, or a folder's
files) and a CAR to import, each received into the spool as it streams in,
then handed to a task that sends it to the node in the background."""

import contextlib
import os
import secrets

from console import guardrails
from console.car import NotACar, read_roots
from console.control import start_task
from console.errors import HTTPError
from console.messages import LANGUAGES, translate
from console.web.http import json_response, multipart_boundary, multipart_fields, task_errors

MAX_UPLOAD_FILES = 10000

UPLOAD_FRAMING = 64 * 1024  # multipart overhead allowed beyond the file itself


@contextlib.contextmanager
def spooled_files(req, fields, max_files, too_many):
    """Receive the ``file`` parts of a multipart body into one new file of
    the spool as they stream in, within --max-upload-bytes.

    Yields (that file's path, [[path, size] of each file, in order]);
    ``fields`` (a dict of defaults) gets the other fields' values. A body
    with more than ``max_files`` files is refused with ``too_many`` (a 400,
    its {limit} filled in). The file is removed on the way out, unless a
    task took it meanwhile (moved it into its own spool).
    """
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
                if len(files) >= max_files:
                    raise HTTPError(400, too_many, limit=max_files)
                files.append([upload_path(filename), 0])
                for chunk in chunks:
                    files[-1][1] += len(chunk)
                    spooled[0] += len(chunk)
                    if spooled[0] > limit:
                        raise HTTPError(413, "The file is larger than the limit of {limit} bytes.", limit=limit)
                    out.write(chunk)
            multipart_fields(req.environ, length, fields, on_file)
        if not files:
            raise HTTPError(400, "Send the file as multipart/form-data in a field named file.")
        yield incoming, files
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(incoming)


def start_with_spool(req, task_type, params, incoming):
    """Start a task whose input is the spooled file ``incoming``; returns its id."""
    with task_errors():
        return start_task(req.settings, req.db, task_type, params,
                          prepare=lambda new_id: os.replace(incoming, req.settings.files.spool(new_id)))


def handle_upload(req):
    """Receive a file into the spool, then upload it to the node in the background."""
    fields = {"name": "", "pin": "1"}
    with spooled_files(req, fields, MAX_UPLOAD_FILES, "A folder upload holds at most {limit} files.") as (
            incoming, files):
        file_size = sum(size for _, size in files)
        pin = fields["pin"].lower() not in ("0", "false", "no", "off")
        params = {"ipfs_api": req.settings.ipfs_api, "file_name": fields["name"][:255] or files[0][0].split("/")[-1],
                  "size": file_size, "pin": pin}
        if len(files) > 1 or "/" in files[0][0]:
            # Several files, or a folder's: added as one directory.
            top = {path.split("/")[0] for path, _ in files}
            params["files"] = files
            params["file_name"] = fields["name"][:255] or (
                top.pop() if len(top) == 1 and "/" in files[0][0] else "%d files" % len(files))
        task_id = start_with_spool(req, "file_upload", params, incoming)
    return accepted(req, task_id, file_size)


def accepted(req, task_id, size):
    """The 202 of a task that adds ``size`` bytes to the node, with a
    warning when they would take its repository past StorageMax."""
    answer = {"success": True, "taskId": task_id}
    warning = guardrails.crossing_warning(req.settings, size, req.lang)
    if warning:
        answer["storage_warning"] = warning
    return json_response(answer, 202)


def handle_car_import(req):
    """Receive a CAR into the spool, check its header, then import it into
    the node in the background (car_import), pinning its roots."""
    fields = {"name": ""}
    with spooled_files(req, fields, 1, "Send one CAR file at a time.") as (incoming, files):
        with open(incoming, "rb") as f:
            try:
                read_roots(f)
            except NotACar as exc:
                raise HTTPError(400, "This file is not a CAR: {reason}.",
                                reason={lang: translate(str(exc), lang) for lang in LANGUAGES})
        name = fields["name"][:255] or files[0][0].split("/")[-1]
        params = {"ipfs_api": req.settings.ipfs_api, "file_name": name, "size": files[0][1]}
        task_id = start_with_spool(req, "car_import", params, incoming)
    return accepted(req, task_id, files[0][1])


def upload_path(filename):
    """A file's path inside a folder upload ("photos/2024/a.jpg"), with
    nothing that could climb out of it; a single file's name."""
    parts = [part[:255] for part in (filename or "").replace("\\", "/").split("/")
             if part not in ("", ".", "..") and not any(ord(c) < 32 for c in part)]
    return "/".join(parts[-32:]) or "upload"
