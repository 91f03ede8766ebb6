"""Request and response helpers every handler uses (Radicale's
``httputils``): the request, the response, JSON errors, streamed multipart
bodies, static files and pages, and who is asking.
"""

import contextlib
import http.client
import ipaddress
import json
import logging
import os
import re
import tempfile
from urllib.parse import parse_qs

from console.errors import AlreadyRetried, HTTPError, NotRetryable, TaskConflict
from console.framing import Buffered, IPFSError, chunked_body
from console.messages import LANGUAGES, NOT_FOUND, translate
from console.shipped import read_shipped_file


log = logging.getLogger("ipfsmaster")


class Redirect(Exception):
    """Raised to send the browser elsewhere (to the login form)."""

    def __init__(self, location):
        super().__init__(location)
        self.location = location


STATUS_LINES = {
    200: "200 OK", 202: "202 Accepted", 303: "303 See Other", 400: "400 Bad Request", 401: "401 Unauthorized",
    403: "403 Forbidden", 404: "404 Not Found", 405: "405 Method Not Allowed", 409: "409 Conflict",
    411: "411 Length Required", 413: "413 Payload Too Large", 415: "415 Unsupported Media Type",
    421: "421 Misdirected Request", 429: "429 Too Many Requests", 500: "500 Internal Server Error",
    502: "502 Bad Gateway", 503: "503 Service Unavailable",
}

STATUS_LINES[201] = "201 Created"

MAX_ID = 2 ** 63 - 1
MAX_FORM_BODY = 64 * 1024
# A body sent in chunks has no length to check first: it is decoded into a
# spool (in memory up to SPOOL_IN_MEMORY, then a file beside the tasks'),
# at most this much, the largest JSON body a route takes.
MAX_CHUNKED_BODY = 64 * 1024 * 1024
SPOOL_IN_MEMORY = 1024 * 1024
ID_PATTERN = re.compile(r"[0-9]{1,19}")


def pick_language(environ):
    """The language of the answer: the `lang` cookie, else Accept-Language."""
    chosen = cookie_value(environ, "lang")
    if chosen in LANGUAGES:
        return chosen
    best, best_q = "en", 0.0
    for item in environ.get("HTTP_ACCEPT_LANGUAGE", "").split(","):
        tag, _, q = item.strip().partition(";q=")
        primary = tag.strip().lower().split("-")[0]
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            continue
        if primary in LANGUAGES and weight > best_q:
            best, best_q = primary, weight
    return best


class Request:
    """One HTTP request: its method, path, query and language."""

    def __init__(self, environ, settings, auth, pool, cancels):
        self.environ = environ
        self.settings = settings
        self.auth = auth
        self.pool = pool
        self.cancels = cancels
        self.method = environ["REQUEST_METHOD"].upper()
        self.path = environ.get("PATH_INFO") or "/"
        self.query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.lang = pick_language(environ)
        # The pages ask for an error in every language, to say it again when the reader switches.
        self.all_languages = bool(environ.get("HTTP_X_IPFSMASTER_TRANSLATIONS"))
        self.client = client_address(environ, settings.trust_proxy)
        self._db = None
        self._spool = None
        self._chunked_length = None

    def arg(self, name, default=""):
        values = self.query.get(name)
        return values[-1] if values else default

    def task_id(self):
        """The ``id`` argument as a task id, or a 400."""
        raw = self.arg("id")
        if not raw:
            raise HTTPError(400, "The task id is missing.")
        if not ID_PATTERN.fullmatch(raw) or not 0 < int(raw) <= MAX_ID:
            raise HTTPError(400, "The task id must be a positive whole number.")
        return int(raw)

    def int_arg(self, name, default, low, high):
        raw = self.arg(name).strip()
        if not raw:
            return default
        if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
            raise HTTPError(400, "{name} must be a whole number from {low} to {high}.", name=name, low=low, high=high)
        return int(raw)

    def content_length(self, limit=None):
        """The body's size in bytes, from Content-Length; or, for a body sent
        in chunks (Transfer-Encoding: chunked), the size of what it decoded.

        Such a body is decoded first, with its framing checked, into a spool
        that takes the place of ``wsgi.input``: a 413 past ``limit`` (the
        caller's own), a 411 past MAX_CHUNKED_BODY when the caller gave none.
        """
        encoding = self.environ.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
        raw = self.environ.get("CONTENT_LENGTH") or ""
        if encoding:
            if raw:
                raise HTTPError(400, "A request cannot have both Content-Length and Transfer-Encoding.")
            if encoding != "chunked":
                raise HTTPError(400, "Send the body with Content-Length or Transfer-Encoding: chunked, not {encoding}.",
                                encoding=encoding[:40])
            if self._chunked_length is None:
                self._chunked_length = self._decode_chunked(limit)
            return self._chunked_length
        if not (raw or "0").isdigit() or len(raw) > 18:
            raise HTTPError(400, "The Content-Length header is not a valid size.")
        return int(raw or "0")

    def _decode_chunked(self, limit):
        most = MAX_CHUNKED_BODY if limit is None else min(limit, MAX_CHUNKED_BODY)
        self.settings.files.make_folder()
        self._spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, dir=self.settings.files.folder)
        stream = self.environ["wsgi.input"]
        # read1: a socket's read(n) would wait for all n bytes, past the body's end.
        source = Buffered(getattr(stream, "read1", stream.read))
        size = 0
        try:
            for piece in chunked_body(source):
                size += len(piece)
                if size > most:
                    if limit is not None and limit <= MAX_CHUNKED_BODY:
                        raise HTTPError(413, "The request body is too large.")
                    raise HTTPError(411, "A request body sent in chunks may be at most {limit} MiB;"
                                         " send a larger one with Content-Length.", limit=MAX_CHUNKED_BODY >> 20)
                self._spool.write(piece)
        except (http.client.HTTPException, IPFSError, OSError):
            raise HTTPError(400, "The request body is malformed or was cut short.")
        self._spool.seek(0)
        self.environ["wsgi.input"] = self._spool
        return size

    def read_body(self, limit):
        """The whole of a small body, or a 413 if it is larger than ``limit``."""
        length = self.content_length(limit)
        if length > limit:
            raise HTTPError(413, "The request body is too large.")
        return self.environ["wsgi.input"].read(length) if length else b""

    def discard_body(self, limit=MAX_FORM_BODY):
        """Read and drop a small body; 413 if it is larger than ``limit``."""
        self.read_body(limit)

    def form(self):
        """A small application/x-www-form-urlencoded body as a dict."""
        body = self.read_body(4096)
        fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[-1] for name, values in fields.items()}

    @property
    def https(self):
        """Whether the browser reached us over HTTPS: directly, or (with
        --trust-proxy) through a reverse proxy that says so in X-Forwarded-Proto."""
        if self.environ.get("wsgi.url_scheme") == "https":
            return True
        forwarded = self.environ.get("HTTP_X_FORWARDED_PROTO", "").split(",")[-1].strip().lower()
        return self.settings.trust_proxy and forwarded == "https"

    @property
    def db(self):
        """This request's database connection, taken from the pool on first use."""
        if self._db is None:
            self._db = self.pool.take()
        return self._db

    def close(self):
        if self._db is not None:
            self.pool.give_back(self._db)
            self._db = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None


class MultipartReader:
    """Streams a multipart/form-data body part by part, never holding more
    than a chunk of it in memory.

    ``parts()`` yields ``(name, filename, chunks)`` for each part, where
    ``chunks`` is an iterator of its bytes that must be consumed (or
    ``skip``-ped) before the next part. Malformed or truncated bodies raise
    HTTPError 400.
    """

    CHUNK = 64 * 1024
    MAX_HEADERS = 16 * 1024

    def __init__(self, stream, length, boundary):
        self.stream = stream
        self.remaining = length
        self.delimiter = b"\r\n--" + boundary
        self.buffer = b"\r\n"  # lets the first boundary match the delimiter

    def _fill(self):
        if self.remaining <= 0:
            raise HTTPError(400, "The upload is malformed or was cut short.")
        try:
            data = self.stream.read(min(self.CHUNK, self.remaining))
        except OSError:  # includes socket time-outs on a stalled client
            data = b""
        if not data:
            raise HTTPError(400, "The upload is malformed or was cut short.")
        self.remaining -= len(data)
        self.buffer += data

    def _skip_to_delimiter(self):
        while True:
            index = self.buffer.find(self.delimiter)
            if index >= 0:
                self.buffer = self.buffer[index + len(self.delimiter):]
                return
            self.buffer = self.buffer[-len(self.delimiter):]
            self._fill()

    def _body(self):
        while True:
            index = self.buffer.find(self.delimiter)
            if index >= 0:
                data, self.buffer = self.buffer[:index], self.buffer[index + len(self.delimiter):]
                if data:
                    yield data
                return
            keep = len(self.delimiter)
            if len(self.buffer) > keep:
                data, self.buffer = self.buffer[:-keep], self.buffer[-keep:]
                yield data
            self._fill()

    def parts(self):
        self._skip_to_delimiter()
        while True:
            while len(self.buffer) < 2:
                self._fill()
            if self.buffer.startswith(b"--"):
                return  # the closing delimiter; an epilogue is ignored
            while b"\r\n\r\n" not in self.buffer:
                if len(self.buffer) > self.MAX_HEADERS:
                    raise HTTPError(400, "The upload is malformed or was cut short.")
                self._fill()
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            name, filename = self._disposition(head)
            body = self._body()
            yield name, filename, body
            for _ in body:  # whatever the caller left unread
                pass

    @staticmethod
    def _disposition(head):
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                params = {}
                for k, quoted, plain in DISPOSITION_PARAMETER.findall(value):
                    params[k.lower()] = quoted.replace('\\"', '"') if quoted else plain.strip()
                if "name" in params:
                    return params["name"], params.get("filename")
        raise HTTPError(400, "The upload is malformed or was cut short.")


# One `; name=value` of a Content-Disposition, the value quoted (where a ";"
# is just a character) or not. Only \" is unescaped: old browsers send a
# Windows path's backslashes as they are.
DISPOSITION_PARAMETER = re.compile(r';\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


def multipart_boundary(environ):
    """The boundary of a multipart/form-data request, or a 400."""
    kind, _, rest = environ.get("CONTENT_TYPE", "").partition(";")
    if kind.strip().lower() == "multipart/form-data":
        for item in rest.split(";"):
            key, _, value = item.strip().partition("=")
            value = value.strip('"')
            if key.lower() == "boundary" and 0 < len(value) <= 200:
                return value.encode("latin-1", "replace")
    raise HTTPError(400, "Send the file as multipart/form-data in a field named file.")


def multipart_fields(environ, length, fields, on_file):
    """Read a multipart/form-data body part by part: each part named ``file``
    goes to ``on_file(filename, chunks)`` (chunks it leaves unread are
    skipped); each part named in ``fields`` (a dict of defaults) becomes its
    value as text (a 400 past 1024 bytes); the rest is skipped. Returns ``fields``."""
    reader = MultipartReader(environ["wsgi.input"], length, multipart_boundary(environ))
    for name, filename, chunks in reader.parts():
        if name == "file":
            on_file(filename, chunks)
        elif name in fields:
            value = b"".join(chunks)
            if len(value) > 1024:
                raise HTTPError(400, "The field {name} is too long.", name=name)
            fields[name] = value.decode("utf-8", "replace").strip()
    return fields


class Response:
    """What a handler returns: status, headers and a body: bytes, or an
    iterable of bytes (with a ``close()`` if it holds something open) that
    is streamed as it comes, without a length."""

    def __init__(self, body=b"", status=200, content_type="application/json; charset=utf-8", headers=None):
        self.status = status
        self.headers = [("Content-Type", content_type)] + list(headers or [])
        self.body = body


def download(pieces, content_type, filename):
    """A streamed answer that a browser saves as ``filename``."""
    return Response(pieces, content_type=content_type,
                    headers=[("Content-Disposition", 'attachment; filename="%s"' % filename),
                             ("Cache-Control", "no-store")])


# In a request's environ, from the server: the function to call when its
# streamed body broke off, which has the connection reset (see ``streamed``).
STREAM_BROKE = "ipfsmaster.stream_broke"


def streamed(environ, body):
    """A streamed body, passed on piece by piece, closed at the end.

    A body streamed without a length ends where the connection closes, so
    one that fails on the way would look complete if it were simply closed.
    Its failure is logged, the answer stops there, and the server is told
    (STREAM_BROKE) to reset the connection, which every client (a browser's
    download, curl) reports as an error.
    """
    try:
        for piece in body:
            if piece:
                yield piece
    except Exception as exc:
        if isinstance(exc, IPFSError):
            log.warning("%s %s: the answer broke off: %s", environ["REQUEST_METHOD"], environ.get("PATH_INFO"), exc)
        else:
            log.exception("%s %s: the answer broke off", environ["REQUEST_METHOD"], environ.get("PATH_INFO"))
        broke = environ.get(STREAM_BROKE)
        if broke is not None:
            broke()
    finally:
        close_body(body)


def close_body(body):
    """Close a streamed body that holds something open (a connection to the node)."""
    close = getattr(body, "close", None)
    if close is not None:
        close()


def json_response(data, status=200, headers=None):
    body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Response(body, status, headers=[("Cache-Control", "no-store")] + list(headers or []))


def error_response(error, lang, all_languages=False):
    """The error as JSON, in ``lang``; with ``all_languages`` also in each
    language as ``translations``."""
    data = {"success": False, "error": translate(error.template, lang, **error.values)}
    if all_languages:
        data["translations"] = {code: translate(error.template, code, **error.values) for code in LANGUAGES}
    data.update(error.extra)
    return json_response(data, error.status, error.headers)


@contextlib.contextmanager
def task_errors(task_id=None):
    """Turn the task store's refusals into the HTTP errors a caller reads."""
    try:
        yield
    except KeyError:
        raise HTTPError(404, "There is no task {id}.", id=task_id)
    except TaskConflict as conflict:
        template, values = conflict.message()
        raise HTTPError(409, template, extra={"taskId": conflict.active_id}, **values)
    except AlreadyRetried as exc:
        raise HTTPError(409, "Task {id} has already been retried: task {retry}.", extra={"taskId": exc.retry_id},
                        id=exc.task_id, retry=exc.retry_id)
    except NotRetryable as exc:
        if exc.args and exc.args[0] == "car_import":
            raise HTTPError(409, "A CAR import cannot be retried: its file is removed when the task ends."
                                 " Import it again.")
        raise HTTPError(409, "An upload cannot be retried: its file is removed when the task ends."
                             " Upload it again.")
    except OSError:
        log.exception("could not start a worker")
        raise HTTPError(500, "The worker could not be started.")


def redirect(location, headers=None):
    return Response(b"", 303, content_type="text/plain; charset=utf-8",
                    headers=[("Location", location)] + list(headers or []))


def read_json_body(req, limit):
    """A JSON object body, or a 400/413."""
    body = req.read_body(limit)
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):      # RecursionError: nested deeper than the parser goes
        raise HTTPError(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        raise HTTPError(400, "The request body is not valid JSON.")
    return data


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
    ".ico": "image/x-icon", ".json": "application/json; charset=utf-8",
}


def static_file(relative):
    """A file inside static/, or a 404 for anything that escapes it."""
    if not relative or "\\" in relative or "\0" in relative or any(
            part in ("", ".", "..") for part in relative.split("/")):
        raise HTTPError(404, NOT_FOUND)
    content_type = CONTENT_TYPES.get(os.path.splitext(relative)[1].lower())
    body = read_shipped_file("static", relative) if content_type else None
    if body is None:
        raise HTTPError(404, NOT_FOUND)
    return Response(body, content_type=content_type, headers=[("Cache-Control", "no-cache")])


def page(name, lang):
    """An HTML page from static/, marked with the reader's language."""
    response = static_file(name)
    if lang != "en":
        response.body = response.body.replace(b'<html lang="en">', b'<html lang="%s">' % lang.encode(), 1)
    response.headers.append(("Vary", "Accept-Language, Cookie"))
    return response


def wants_html(environ):
    """True for a browser opening an address (it asks for text/html), not a script or a fetch."""
    return "text/html" in environ.get("HTTP_ACCEPT", "")


def not_found_page(lang):
    """The page a browser gets for an address that leads nowhere: 404, with a link home."""
    response = page("notfound.html", lang)
    response.status = 404
    return response


def client_address(environ, trust_proxy):
    """Who is asking, as the login rate limit counts them.

    Behind a reverse proxy every request comes from the proxy; with
    ``trust_proxy`` the address the proxy appended to X-Forwarded-For (the
    last one: the client can write anything before it) is used instead. An
    IPv6 client is counted by its /64, the block one machine usually has.
    """
    address = environ.get("REMOTE_ADDR", "")
    if trust_proxy:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
        address = forwarded or address
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address[:100]
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network("%s/64" % ip, strict=False))
    return str(ip)


def cookie_value(environ, name):
    for part in environ.get("HTTP_COOKIE", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
