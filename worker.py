#!/usr/bin/env python3
"""IPFSMaster's background worker: runs one task, then exits.

    python3 worker.py TASK_ID [--db PATH] [--ipfs-api URL]

The server starts it detached, one process per task; run by hand it works in
the foreground. It claims the task (pending -> running) with a compare-and-set,
so two workers can never run the same task, and it never overwrites a status
it did not set: a task cancelled or failed by someone else (the console, or
the seed's ``UPDATE ... SET status='failed'``) makes it stop within seconds.

Task types live in ``TASK_TYPES`` at the bottom: a name, one function that
receives a ``TaskContext``, and whether only one may be active at a time.
"""

import argparse
import base64
import collections
import contextlib
import http.client
import json
import os
import queue
import signal
import socket
import sqlite3
import sys
import threading
import time
import traceback
from urllib.parse import quote, urlencode, urlsplit

import ipfsmaster
from ipfsmaster import connect, transaction

DEFAULT_API = ipfsmaster.DEFAULTS["ipfs_api"]
WORKER_NICENESS = 10


# ---------------------------------------------------------------------------
# The IPFS RPC client
# ---------------------------------------------------------------------------

class IPFSError(Exception):
    """A call to the node failed; ``transient`` if trying again may help."""

    def __init__(self, message, transient=False):
        super().__init__(message)
        self.transient = transient


def describe_os_error(exc):
    """'connection refused', 'timed out', ...: the short reason a person reads."""
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, http.client.IncompleteRead):
        return "the answer was cut short"
    if isinstance(exc, http.client.HTTPException):
        return "a broken HTTP answer (%s)" % type(exc).__name__
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).lower()


def auth_header(secret):
    """The Authorization header for a Kubo API.Authorizations secret
    ('basic:user:password' or 'bearer:token'), or None."""
    if not secret:
        return None
    kind, _, value = secret.partition(":")
    if kind.lower() == "basic":
        return "Basic " + base64.b64encode(value.encode("utf-8")).decode("ascii")
    if kind.lower() == "bearer":
        return "Bearer " + value
    raise ValueError("IPFSMASTER_IPFS_AUTH must look like basic:USER:PASSWORD or bearer:TOKEN")


class IPFSClient:
    """The Kubo RPC API over one persistent HTTP connection (not thread-safe:
    use one client per thread).

    Every call is a POST with its arguments in the query string. Transient
    failures (connection refused or reset, time-outs, 502/503/504 and 500s
    that are not the node's own error answer) are retried with exponential
    backoff; the node's error answers are final.
    """

    def __init__(self, api_url, auth=None, timeout=60.0, attempts=3, backoff=0.5):
        parts = urlsplit(api_url if "://" in api_url else "http://" + api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise IPFSError("the IPFS API address %r is not an http:// URL" % api_url)
        self.api_url = "%s://%s" % (parts.scheme, parts.netloc.rpartition("@")[2])
        self.host, self.port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
        self.scheme = parts.scheme
        self.base_path = parts.path.rstrip("/")
        self.auth = auth_header(auth)
        self._headers = {"User-Agent": "ipfsmaster", "Accept": "application/json"}
        if self.auth:
            self._headers["Authorization"] = self.auth
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.stopped = False
        self._conn = self._sock = None

    # -- connection ----------------------------------------------------------

    def _connection(self):
        if self.stopped:
            raise IPFSError("stopped: the task was asked to end")
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            conn = cls(self.host, self.port, timeout=self.timeout)
            conn.connect()
            # Without this, a request whose headers and body leave in two
            # small writes can wait ~40 ms for a delayed ACK.
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn, self._sock = conn, conn.sock
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = self._sock = None

    def interrupt(self):
        """Stop: unblock a read in progress on another thread, retry no more."""
        self.stopped = True
        # The socket, not conn.sock: http.client drops that once a
        # "Connection: close" answer begins, while a read may still block on it.
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _url(self, command, params):
        query = urlencode([(k, v) for k, v in params if v is not None])
        return "%s/api/v0/%s%s" % (self.base_path, command, "?" + query if query else "")

    def _send(self, command, params, body=None, headers=None):
        """One attempt: send the request and return the response (status 200)."""
        all_headers = dict(self._headers, **headers) if headers else self._headers
        try:
            conn = self._connection()
            conn.request("POST", self._url(command, params), body=body, headers=all_headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise IPFSError("cannot reach the IPFS API at %s: %s" % (self.api_url, describe_os_error(exc)),
                            transient=True)
        if resp.status != 200:
            try:
                text = resp.read(MAX_LINE).decode("utf-8", "replace")
            except (OSError, http.client.HTTPException):
                text = ""
            if resp.will_close or not resp.isclosed():
                self.close()  # else the connection stays open for the next call
            raise self._error_for(command, resp.status, text)
        return resp

    def _error_for(self, command, status, text):
        try:
            message = json.loads(text).get("Message")
        except (ValueError, AttributeError):
            message = None
        if status == 403:
            return IPFSError("the IPFS API at %s refused %s: access denied (check IPFSMASTER_IPFS_AUTH)"
                             % (self.api_url, command))
        if status in (404, 405):
            return IPFSError("the IPFS API at %s does not know %s (HTTP %d): is it a Kubo RPC API?"
                             % (self.api_url, command, status))
        transient = status in (502, 503, 504) or (status >= 500 and not message)
        return IPFSError("IPFS %s failed: %s" % (command, message or text.strip()[:200] or "HTTP %d" % status),
                         transient=transient)

    def _retrying(self, attempt):
        """Run ``attempt()`` up to ``self.attempts`` times on transient errors."""
        for number in range(1, self.attempts + 1):
            try:
                return attempt()
            except IPFSError as exc:
                if not exc.transient or number == self.attempts or self.stopped:
                    raise
                time.sleep(self.backoff * 2 ** (number - 1))

    # -- calls ---------------------------------------------------------------

    def call(self, command, params=(), body=None, headers=None):
        """A command whose answer is one JSON value."""
        def attempt():
            resp = self._send(command, params, body, headers)
            try:
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise IPFSError("cannot reach the IPFS API at %s: %s" % (self.api_url, describe_os_error(exc)),
                                transient=True)
            try:
                return json.loads(data.decode("utf-8")) if data.strip() else {}
            except ValueError:
                raise IPFSError("IPFS %s answered something that is not JSON" % command)
        return self._retrying(attempt)

    def call_many(self, command, param_lists):
        """The same command with several argument lists, pipelined.

        Every request leaves in one write on the keep-alive connection and the
        answers are read back in order, which saves most of the per-call cost
        of thousands of small look-ups. Returns, in order, a parsed value or
        the node's IPFSError for each call it got an answer to; the list is
        shorter if the node closed the connection part-way. A broken
        connection raises a transient IPFSError: the caller then falls back
        to ``call``, which retries.
        """
        lines = "".join("%s: %s\r\n" % item for item in self._headers.items())
        host = self.host if self.port in (80, 443) else "%s:%d" % (self.host, self.port)
        requests = "".join("POST %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 0\r\n\r\n"
                           % (self._url(command, params), host, lines) for params in param_lists)
        answers = []
        try:
            self._connection()
            self._sock.sendall(requests.encode("latin-1"))
            with self._sock.makefile("rb") as fp:
                for _ in param_lists:
                    status, body, closing = _read_answer(fp)
                    if status == 200:
                        try:
                            answers.append(json.loads(body) if body.strip() else {})
                        except ValueError:
                            answers.append(IPFSError("IPFS %s answered something that is not JSON" % command))
                    else:
                        answers.append(self._error_for(command, status, body.decode("utf-8", "replace")))
                    if closing:
                        self.close()
                        break
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise IPFSError("cannot reach the IPFS API at %s: %s" % (self.api_url, describe_os_error(exc)),
                            transient=True)
        return answers

    def stream(self, command, params=(), body=None, headers=None):
        """A streaming command: yields each JSON object of the answer.

        The standard library drops HTTP trailers, where the node reports an
        error that happened after the 200 (X-Stream-Error), so the chunked
        encoding is read here: a stream ends cleanly only at its last chunk
        with no error trailer. Anything else raises IPFSError. Only the
        opening request is retried; a stream cut short is not resumed.
        """
        for batch in self.stream_batches(command, params, body, headers):
            yield from batch

    def stream_batches(self, command, params=(), body=None, headers=None):
        """Like ``stream``, but yields lists of objects as they arrive: much
        cheaper per object for listings of millions of pins."""
        resp = self._retrying(lambda: self._send(command, params, body, headers))
        return self._read_stream(command, resp)

    def upload(self, command, params, chunks, length, content_type):
        """Send a large body while reading the streamed answer; yields its objects.

        The body goes out on a thread of its own, because a node that reports
        progress while it reads (add?progress=true) would otherwise stall once
        its unread progress lines fill the socket buffers. Not retried: the
        body cannot be sent twice.
        """
        headers = dict(self._headers, **{"Content-Type": content_type, "Content-Length": str(length)})
        try:
            conn = self._connection()
            conn.putrequest("POST", self._url(command, params), skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.endheaders()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise IPFSError("cannot reach the IPFS API at %s: %s" % (self.api_url, describe_os_error(exc)),
                            transient=True)

        sock = self._sock  # conn.sock goes once the answer begins (see interrupt)

        def send():
            try:
                for chunk in chunks:
                    if self.stopped:
                        return
                    sock.sendall(chunk)
            except OSError:  # the node answered early (an error), or we were interrupted
                pass
        sender = threading.Thread(target=send, name="upload-body", daemon=True)
        sender.start()
        try:
            try:
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise IPFSError("the IPFS API at %s broke off %s: %s"
                                % (self.api_url, command, describe_os_error(exc)), transient=True)
            if resp.status != 200:
                raise self._error_for(command, resp.status, resp.read(65536).decode("utf-8", "replace"))
            for batch in self._read_stream(command, resp):
                yield from batch
        finally:
            self.interrupt()
            sender.join()
            self.close()

    def _read_stream(self, command, resp):
        """Lists of the JSON objects of a newline-delimited answer."""
        try:
            pieces = _chunks(resp) if resp.chunked else _plain(resp)
            pending = b""
            for piece in pieces:
                *lines, pending = (pending + piece).split(b"\n")
                if lines:
                    yield _parse_lines(command, lines)
                if len(pending) > MAX_LINE:
                    raise IPFSError("IPFS %s sent a line longer than %d bytes" % (command, MAX_LINE))
            yield _parse_lines(command, [pending])
        except (OSError, http.client.HTTPException) as exc:
            raise IPFSError("the IPFS API at %s broke off %s: %s"
                            % (self.api_url, command, describe_os_error(exc)), transient=True)
        finally:
            # The response was read past http.client's bookkeeping.
            self.close()


MAX_LINE = 1 << 20
MAX_CHUNK = 1 << 24


def _parse_lines(command, lines):
    """JSON lines to objects, parsed in one go; an error object raises IPFSError."""
    lines = [line for line in lines if line.strip()]
    if not lines:
        return []
    try:
        objects = json.loads(b"[" + b",".join(lines) + b"]")
    except ValueError:
        return [_parse_line(command, line) for line in lines]  # names the broken line
    for obj in objects:
        if isinstance(obj, dict) and obj.get("Type") == "error" and "Message" in obj:
            raise IPFSError("IPFS %s failed: %s" % (command, obj["Message"]))
    return objects


def _parse_line(command, line):
    try:
        obj = json.loads(line.decode("utf-8"))
    except ValueError:
        raise IPFSError("IPFS %s sent a line that is not JSON: %r" % (command, line[:80]))
    if isinstance(obj, dict) and obj.get("Type") == "error" and "Message" in obj:
        raise IPFSError("IPFS %s failed: %s" % (command, obj["Message"]))
    return obj


def _plain(resp):
    while True:
        piece = resp.read1(65536) if hasattr(resp, "read1") else resp.read(65536)
        if not piece:
            return
        yield piece


def _chunks(resp):
    """The body of a chunked response, checking its last chunk and trailers.

    Decoded from large reads, many chunks at a time: Kubo sends one chunk per
    pin, and a read per chunk would dominate a listing of millions of pins.
    """
    fp = resp.fp
    buf, pos = b"", 0
    while True:
        blocks = []
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                if len(buf) - pos > 1024:
                    raise http.client.HTTPException("bad chunk header")
                break
            try:
                size = int(buf[pos:eol].split(b";", 1)[0], 16)
            except ValueError:
                raise http.client.HTTPException("bad chunk header")
            if size == 0:
                if blocks:
                    yield b"".join(blocks)
                _check_trailers(fp, buf[eol + 2:])
                return
            if size > MAX_CHUNK:
                raise http.client.HTTPException("chunk too large")
            end = eol + 2 + size
            if end + 2 > len(buf):
                break
            if buf[end:end + 2] != b"\r\n":
                raise http.client.HTTPException("bad chunk")
            blocks.append(buf[eol + 2:end])
            pos = end + 2
        if blocks:
            yield b"".join(blocks)
        buf, pos = buf[pos:], 0
        data = fp.read1(1 << 16)
        if not data:
            raise http.client.IncompleteRead(buf)
        buf += data


def _read_answer(fp):
    """One HTTP answer from a pipelined connection: (status, body, closing).

    Reads exactly that answer, never into the next one. An error reported in
    a trailer (X-Stream-Error) turns the status into 500 with that message.
    """
    line = fp.readline(65537)
    if not line:
        raise http.client.RemoteDisconnected("the connection closed")
    version, _, rest = line.partition(b" ")
    if not version.startswith(b"HTTP/"):
        raise http.client.BadStatusLine(line.decode("latin-1", "replace"))
    status = int(rest[:3])
    headers = {}
    while True:
        line = fp.readline(65537)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    closing = headers.get(b"connection", b"").lower() == b"close"
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        blocks = []
        while True:
            size = int(fp.readline(1024).split(b";", 1)[0], 16)
            if size == 0:
                break
            blocks.append(fp.read(size))
            if len(blocks[-1]) < size or fp.read(2) != b"\r\n":
                raise http.client.IncompleteRead(b"".join(blocks))
        body = b"".join(blocks)
        while True:
            line = fp.readline(65537)
            if line in (b"\r\n", b"\n"):
                break
            if not line:
                raise http.client.IncompleteRead(body)
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-stream-error" and value.strip():
                status, body = 500, value.strip()
    elif b"content-length" in headers:
        length = int(headers[b"content-length"])
        body = fp.read(length)
        if len(body) < length:
            raise http.client.IncompleteRead(body)
    else:
        body, closing = fp.read(), True
    return status, body, closing


def _check_trailers(fp, rest):
    """Read the trailers after the last chunk; an X-Stream-Error raises IPFSError."""
    while not (rest.startswith(b"\r\n") or b"\r\n\r\n" in rest):
        if len(rest) > 65536:
            raise http.client.HTTPException("trailers too large")
        data = fp.read1(1 << 16)
        if not data:
            raise http.client.IncompleteRead(rest)
        rest += data
    for line in rest.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "x-stream-error" and value.strip():
            raise IPFSError("the IPFS node reported an error mid-stream: %s" % value.strip())


# ---------------------------------------------------------------------------
# The task context: what a task function gets
# ---------------------------------------------------------------------------

class TaskStopped(Exception):
    """Raised inside a task when it must stop (cancel, signal, lost status)."""


class TaskContext:
    """A task's parameters, its IPFS client, and the progress/cancel helper.

    The task function updates ``progress``/``total``/``current_item`` in
    memory and ``result`` as it goes; a reporter thread writes them to the
    database at most every ``interval`` seconds, together with the heartbeat,
    and reads back whether the task must stop. ``check()`` raises
    TaskStopped once it must.
    """

    def __init__(self, task, db_path, api_url, auth=None, interval=0.5, out=None):
        self.task_id = task["id"]
        self.task_type = task["task_type"]
        self.params = json.loads(task["params"] or "{}")
        self.db_path = db_path
        self.api_url = api_url
        self.auth = auth
        self.interval = interval
        self.out = out or sys.stdout
        self.progress = 0
        self.total = 0
        self.current_item = None
        self.result = {}
        self.stop_reason = None      # 'cancel', 'signal' or 'lost'
        self.signalled = False       # set by the signal handler, nothing more
        self._stop = threading.Event()
        self._interruptible = set()
        self._lock = threading.Lock()
        self._logged_at = 0

    def client(self, **options):
        """A new IPFS client for this task (one per thread)."""
        return IPFSClient(self.api_url, self.auth, **options)

    # -- progress ------------------------------------------------------------

    def log(self, message):
        self.out.write("[Task %d] %s\n" % (self.task_id, message))
        self.out.flush()

    def set_total(self, total):
        self.total = total

    def advance(self, count=1, item=None):
        """Count ``count`` more items done; logs every 10 items and at the end."""
        self.progress += count
        if item is not None:
            self.current_item = item
        if self.progress // 10 != self._logged_at // 10 or (self.total and self.progress >= self.total):
            if self.progress != self._logged_at:
                self.log("Progress: %d / %d" % (self.progress, self.total))
                self._logged_at = self.progress

    # -- stopping ------------------------------------------------------------

    def request_stop(self, reason):
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()
        with self._lock:
            clients = list(self._interruptible)
        for client in clients:
            client.interrupt()

    @property
    def stopping(self):
        return self._stop.is_set()

    def check(self):
        if self.signalled and not self._stop.is_set():
            self.request_stop("signal")
        if self._stop.is_set():
            raise TaskStopped(self.stop_reason)

    @contextlib.contextmanager
    def interruptible(self, client):
        """While inside, a stop request shuts ``client``'s socket to end a blocked read."""
        with self._lock:
            self._interruptible.add(client)
        if self.stopping:
            client.interrupt()
        try:
            yield client
        finally:
            with self._lock:
                self._interruptible.discard(client)

    # -- the reporter thread -------------------------------------------------

    def report(self, conn):
        """Write progress and the heartbeat; learn whether to stop. One call."""
        with transaction(conn):
            cur = conn.execute(
                "UPDATE background_tasks SET progress = ?, total = ?, current_item = ?,"
                " result = ?, heartbeat_at = datetime('now') WHERE id = ? AND status = 'running'",
                (self.progress, self.total, self.current_item, json.dumps(self.result), self.task_id))
            row = conn.execute("SELECT status, cancel_requested_at FROM background_tasks WHERE id = ?",
                               (self.task_id,)).fetchone()
        if cur.rowcount == 0 or row is None:
            self.request_stop("lost")
        elif self.signalled:
            self.request_stop("signal")
        elif row["cancel_requested_at"]:
            self.request_stop("cancel")

    def run_reporter(self, done):
        conn = connect(self.db_path)
        try:
            while True:
                try:
                    self.report(conn)
                except sqlite3.Error as exc:
                    self.log("could not record progress: %s" % exc)
                if done.wait(self.interval):
                    return
        finally:
            conn.close()


# ---------------------------------------------------------------------------
# Running a task
# ---------------------------------------------------------------------------

def claim_task(conn, task_id, pid):
    """pending -> running, if nobody else did it first; returns the row or None."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE background_tasks SET status = 'running', pid = ?, started_at = datetime('now'),"
            " heartbeat_at = datetime('now') WHERE id = ? AND status = 'pending'", (pid, task_id))
        if cur.rowcount != 1:
            return None
        return ipfsmaster.get_task(conn, task_id)


def finish(conn, ctx, status, error_message=None):
    """Record the end of a task this worker is running; False if its status
    was changed by someone else meanwhile (then it is left as they set it)."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE background_tasks SET status = ?, error_message = ?, result = ?, progress = ?, total = ?,"
            " current_item = ?, completed_at = datetime('now'), heartbeat_at = datetime('now')"
            " WHERE id = ? AND status = 'running'",
            (status, error_message, json.dumps(ctx.result), ctx.progress, ctx.total, ctx.current_item, ctx.task_id))
        return cur.rowcount == 1


STOP_MESSAGES = {
    "cancel": ("cancelled", "Cancelled"),
    "signal": ("failed", "Worker terminated by a signal"),
}


def run_task(task_id, db_path, api_url=None, auth=None, interval=0.5):
    """Claim and run one task; returns the process exit code."""
    conn = connect(db_path)
    try:
        task = claim_task(conn, task_id, os.getpid())
        if task is None:
            row = ipfsmaster.get_task(conn, task_id)
            print("[Task %d] Not started: %s" % (task_id, "no such task" if row is None
                                                  else "it is %s, not pending" % row["status"]), flush=True)
            return 1
        params = json.loads(task["params"] or "{}")
        api = params.get("ipfs_api") or api_url or os.environ.get("IPFSMASTER_IPFS_API") or DEFAULT_API
        ctx = TaskContext(task, db_path, api, auth if auth is not None else os.environ.get("IPFSMASTER_IPFS_AUTH"),
                          interval=interval)
        return execute(conn, ctx)
    finally:
        conn.close()


def execute(conn, ctx):
    """Run a claimed task to its end, with the reporter thread alongside."""
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: setattr(ctx, "signalled", True))
    done = threading.Event()
    reporter = threading.Thread(target=ctx.run_reporter, args=(done,), name="reporter", daemon=True)
    reporter.start()
    status, error = "failed", None
    try:
        task_type = TASK_TYPES.get(ctx.task_type)
        if task_type is None:
            raise IPFSError("unknown task type %r" % ctx.task_type)
        ctx.result = task_type.run(ctx) or ctx.result
        ctx.check()
        status = "completed"
    except TaskStopped:
        pass
    except IPFSError as exc:
        error = str(exc)
    except Exception as exc:
        traceback.print_exc(file=ctx.out)
        error = "internal error: %s: %s" % (type(exc).__name__, exc)
    finally:
        done.set()
        reporter.join()
    if status != "completed" and ctx.stop_reason in STOP_MESSAGES:
        status, error = STOP_MESSAGES[ctx.stop_reason]
    if ctx.stop_reason == "lost" or not finish(conn, ctx, status, error):
        ctx.log("Stopped: its status was changed from outside")
        return 1
    if status == "completed":
        return 0
    ctx.log("%s: %s" % ("Cancelled" if status == "cancelled" else "Failed", error))
    return 1


# ---------------------------------------------------------------------------
# Task: pin_sync
# ---------------------------------------------------------------------------

NOW_MS = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
LIST_BATCH = 5000      # listed pins written per transaction
SAVE_BATCH = 1000      # sizes written per transaction
MAX_ERROR_DETAILS = 10


def setting(name, default, low, high):
    """A whole-number tuning setting from the environment, kept within bounds."""
    raw = os.environ.get(name, "")
    return max(low, min(high, int(raw))) if raw.isdigit() else default


def size_concurrency():
    """Connections the size look-ups use at once."""
    return setting("IPFSMASTER_SIZE_CONCURRENCY", 8, 1, 64)


def size_pipeline():
    """Look-ups sent together on one connection; 1 sends one at a time (for a
    proxy in front of the node that does not take pipelined requests)."""
    return setting("IPFSMASTER_SIZE_PIPELINE", 32, 1, 256)


def sync_pins(ctx):
    """Mirror the node's recursive pins into ``pins``.

    1. Stream ``pin/ls`` into a temporary table (nothing changes yet).
    2. Only once the listing is known complete: delete what the node no longer
       has, insert what is new, update what changed, in one transaction, so
       the catalogue is either as it was or correctly updated.
    3. Look up the size of every pin whose size is unknown, concurrently.
       CIDs are immutable, so a known size is never looked up again.
    """
    started = time.monotonic()
    result = ctx.result = {"total": 0, "added": 0, "updated": 0, "removed": 0, "unchanged": 0,
                           "failed": 0, "sized": 0, "error_details": [], "duration_s": 0.0}
    conn = connect(ctx.db_path)
    try:
        ctx.log("Fetching pins from IPFS...")
        ctx.current_item = "Fetching pins from IPFS..."
        listing_started = conn.execute("SELECT " + NOW_MS).fetchone()[0]
        total = list_pins_into(conn, ctx)
        result["total"] = total
        ctx.set_total(total)
        ctx.log("Found %d pins to sync" % total)
        apply_listing(conn, ctx, listing_started)
        fetch_sizes(conn, ctx)
        ctx.current_item = None
        ctx.advance(max(0, total - ctx.progress))
        ctx.log("Sync completed: %d pins synced" % total)
        return result
    finally:
        result["duration_s"] = round(time.monotonic() - started, 3)
        conn.close()


def list_pins_into(conn, ctx):
    """Stream the node's recursive pins into temp table ``listed``; returns the count.

    The table has no index: rows are appended as they arrive, which stays
    fast at millions of pins, and the comparison uses the catalogue's own
    index on ``cid``. A transient failure restarts the listing from scratch
    (the table is emptied), so a partial listing is never taken for the whole.
    """
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed (cid TEXT NOT NULL, type TEXT NOT NULL, name TEXT)")
    client = ctx.client()
    for attempt in range(1, client.attempts + 1):
        conn.execute("DELETE FROM listed")
        count = 0
        batch = []
        try:
            with ctx.interruptible(client):
                for objects in client.stream_batches("pin/ls", [("type", "recursive"), ("stream", "true")]):
                    batch.extend(map(listed_row, objects))
                    if len(batch) >= LIST_BATCH:
                        ctx.check()
                        count += insert_listed(conn, batch)
                        ctx.current_item = "Fetching pins from IPFS... %d" % count
                        batch = []
            ctx.check()
            return count + insert_listed(conn, batch)
        except IPFSError as exc:
            ctx.check()
            if not exc.transient or attempt == client.attempts:
                raise
            ctx.log("Listing failed (%s); starting it again" % exc)
            time.sleep(client.backoff * 2 ** (attempt - 1))
        finally:
            client.close()
    raise AssertionError("unreachable")


def listed_row(obj):
    """(cid, type, name) of one pin/ls entry; Name is absent unless the node lists names."""
    try:
        cid, kind, name = obj["Cid"], obj.get("Type") or "recursive", obj.get("Name")
    except (KeyError, TypeError, AttributeError):
        raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % (obj,))
    if not isinstance(cid, str) or not cid:
        raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % (obj,))
    return cid, str(kind), None if name is None else str(name)


def insert_listed(conn, batch):
    if batch:
        with transaction(conn):
            conn.executemany("INSERT INTO listed (cid, type, name) VALUES (?, ?, ?)", batch)
    return len(batch)


def apply_listing(conn, ctx, listing_started):
    """Bring ``pins`` in line with the complete listing in ``listed``.

    One pass over the listing, through the catalogue's index, counts what is
    new, what changed and what is still there; each change then runs only if
    there is something to change, so a re-sync where nothing changed writes
    nothing. Pins written since the listing began (an upload) are never
    removed: the listing may predate them. Kubo's listing never repeats a
    CID, which the "still there" count relies on.
    """
    result = ctx.result
    ctx.current_item = "Comparing with the catalogue..."
    ctx.check()
    found, kept, changed = conn.execute(
        "SELECT COUNT(p.id), COALESCE(SUM(p.synced_at < ?), 0),"
        " COALESCE(SUM(p.type IS NOT l.type OR (l.name IS NOT NULL AND p.name IS NOT l.name)), 0)"
        # In CID order the look-ups walk the catalogue's index instead of jumping around it.
        " FROM (SELECT * FROM listed ORDER BY cid) l LEFT JOIN pins p ON p.cid = l.cid", (listing_started,)).fetchone()
    removable = conn.execute("SELECT COUNT(*) FROM pins WHERE synced_at < ?", (listing_started,)).fetchone()[0]
    ctx.check()
    with transaction(conn):
        if kept < removable:
            conn.execute("CREATE INDEX IF NOT EXISTS temp.listed_cid ON listed(cid)")
            result["removed"] = conn.execute(
                "DELETE FROM pins WHERE synced_at < ? AND cid NOT IN (SELECT cid FROM listed)",
                (listing_started,)).rowcount
        if changed:
            result["updated"] = conn.execute(
                "UPDATE pins SET type = (SELECT type FROM listed WHERE listed.cid = pins.cid),"
                " name = COALESCE((SELECT name FROM listed WHERE listed.cid = pins.cid), name),"
                " synced_at = " + NOW_MS +
                " WHERE cid IN (SELECT l.cid FROM listed l JOIN pins p ON p.cid = l.cid"
                " WHERE p.type IS NOT l.type OR (l.name IS NOT NULL AND p.name IS NOT l.name))").rowcount
        if found < result["total"]:
            # In CID order, every index grows at its end instead of at random places.
            result["added"] = conn.execute(
                "INSERT OR IGNORE INTO pins (cid, type, name) SELECT cid, type, COALESCE(name, '') FROM listed"
                " ORDER BY cid").rowcount
    result["unchanged"] = result["total"] - result["added"] - result["updated"]
    unsized = conn.execute("SELECT unsized FROM pin_stats").fetchone()[0]
    ctx.advance(max(0, ctx.total - unsized))


def fetch_sizes(conn, ctx):
    """Look up the size of every pin whose size is unknown, N at a time.

    Each of N threads has its own keep-alive connection and takes a batch of
    pins at a time; the main thread reads the next batches from the catalogue,
    writes finished sizes back in transactions, and stops everything on a
    cancel.
    """
    result = ctx.result
    if not conn.execute("SELECT unsized FROM pin_stats").fetchone()[0]:
        return
    workers, batch_size = size_concurrency(), size_pipeline()
    todo = queue.Queue(maxsize=workers * 2)
    done = queue.Queue()
    clients = [ctx.client(timeout=30.0) for _ in range(workers)]

    def look_up(client):
        while True:
            batch = todo.get()
            if batch is None:
                return
            try:
                sizes = pin_sizes(client, [cid for _, cid in batch])
                done.put([(pin_id, cid, size) for (pin_id, cid), size in zip(batch, sizes)])
            except IPFSError as exc:  # the node is unreachable: the sync fails
                done.put(exc)
                return

    threads = [threading.Thread(target=look_up, args=(client,), name="size-%d" % n, daemon=True)
               for n, client in enumerate(clients)]
    for thread in threads:
        thread.start()
    last_id, queued, exhausted, sizes = 0, 0, False, []
    try:
        while True:
            while not exhausted and not todo.full():
                rows = conn.execute("SELECT id, cid FROM pins WHERE size IS NULL AND id > ? ORDER BY id LIMIT ?",
                                    (last_id, batch_size)).fetchall()
                exhausted = len(rows) < batch_size
                if rows:
                    last_id = rows[-1]["id"]
                    todo.put([(row["id"], row["cid"]) for row in rows])
                    queued += 1
            if not queued:
                break
            ctx.check()
            try:
                answers = done.get(timeout=0.2)
            except queue.Empty:
                continue
            queued -= 1
            if isinstance(answers, IPFSError):
                raise answers
            for pin_id, cid, outcome in answers:
                if isinstance(outcome, IPFSError):
                    result["failed"] += 1
                    if len(result["error_details"]) < MAX_ERROR_DETAILS:
                        result["error_details"].append({"cid": cid, "error": str(outcome)})
                else:
                    sizes.append((outcome, pin_id))
                    result["sized"] += 1
            ctx.advance(len(answers), answers[-1][1])
            if len(sizes) >= SAVE_BATCH:
                save_sizes(conn, sizes)
                sizes = []
    finally:
        save_sizes(conn, sizes)
        for client in clients:
            client.interrupt()
        for _ in threads:
            with contextlib.suppress(queue.Full):
                todo.put_nowait(None)


def pin_sizes(client, cids):
    """The sizes of several pins (or the IPFSError for each that has none).

    The files/stat look-ups go out pipelined; any that did not give a size
    are done again one by one by ``pin_size``, with its fallback and retries.
    """
    try:
        answers = client.call_many("files/stat", [stat_args(cid) for cid in cids])
    except IPFSError:
        answers = []
    sizes = []
    for index, cid in enumerate(cids):
        answer = answers[index] if index < len(answers) else None
        if isinstance(answer, dict) and isinstance(answer.get("CumulativeSize"), int):
            sizes.append(answer["CumulativeSize"])
        else:
            sizes.append(pin_size(client, cid, answer if isinstance(answer, IPFSError) else None))
    return sizes


def stat_args(cid):
    return [("arg", "/ipfs/" + cid), ("offline", "true"), ("timeout", "10s")]


def pin_size(client, cid, files_stat_error=None):
    """The cumulative size of a pin, or the IPFSError that prevented it.

    files/stat reads only the root block; offline and with a timeout, a
    missing block cannot hang the worker. Non-UnixFS pins fall back to the
    root block's size from block/stat. A node's error answer is returned, to
    be counted. A transient error (the node unreachable even after retries) is raised:
    it fails the whole sync rather than every remaining pin one by one.
    """
    first = files_stat_error
    if first is None or first.transient:
        try:
            stat = client.call("files/stat", stat_args(cid))
            return int(stat["CumulativeSize"])
        except IPFSError as exc:
            if exc.transient:
                raise
            first = exc
        except (KeyError, TypeError, ValueError):
            first = IPFSError("IPFS files/stat gave no size for %s" % cid)
    try:
        stat = client.call("block/stat", [("arg", cid), ("offline", "true"), ("timeout", "10s")])
        return int(stat["Size"])
    except IPFSError as exc:
        if exc.transient:
            raise
        return first
    except (KeyError, TypeError, ValueError):
        return first


def save_sizes(conn, sizes):
    if sizes:
        with transaction(conn):
            conn.executemany("UPDATE pins SET size = ? WHERE id = ?", sizes)


# ---------------------------------------------------------------------------
# Task: file_upload
# ---------------------------------------------------------------------------

UPLOAD_CHUNK = 1024 * 1024


def upload_file(ctx):
    """Stream a spooled upload to the node's add, then record its pin.

    progress/total count bytes sent to the node. The spool file is removed
    however the task ends.
    """
    settings = ipfsmaster.Settings(db=ctx.db_path)
    path = ipfsmaster.spool_path(settings, ctx.task_id)
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
        ctx.log("Uploading %s (%d bytes) to IPFS..." % (name, size))
        boundary = "ipfsmaster-" + os.urandom(12).hex()
        head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                'Content-Type: application/octet-stream\r\n\r\n'
                % (boundary, quote(name, safe=" ._-()[]"))).encode("utf-8")
        tail = ("\r\n--%s--\r\n" % boundary).encode("ascii")

        def body():
            yield head
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(UPLOAD_CHUNK)
                    if not chunk:
                        break
                    yield chunk
                    ctx.advance(len(chunk))  # resumed once the chunk is sent
            yield tail

        client = ctx.client()
        added = None
        with ctx.interruptible(client):
            for obj in client.upload("add", [("progress", "true"), ("pin", "true" if pin else "false")],
                                     body(), len(head) + size + len(tail),
                                     "multipart/form-data; boundary=" + boundary):
                ctx.check()
                if isinstance(obj, dict) and obj.get("Hash"):
                    added = obj
        ctx.check()
        if added is None:
            raise IPFSError("IPFS add finished without giving the file's CID")
        cid, dag_size = added["Hash"], int(added.get("Size") or 0)
        ctx.progress = size
        ctx.result.update({"cid": cid, "size": size, "dag_size": dag_size, "pinned": pin})
        if pin:
            record_pin(ctx.db_path, cid, name, dag_size)
        ctx.log("Upload completed: %s" % cid)
        return ctx.result
    finally:
        ipfsmaster.discard_spool(settings, ctx.task_id)


def record_pin(db_path, cid, name, size):
    """Put a freshly pinned CID in the catalogue without a full sync."""
    conn = connect(db_path)
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO pins (cid, type, name, size) VALUES (?, 'recursive', ?, ?)"
                " ON CONFLICT (cid) DO UPDATE SET type = 'recursive', size = COALESCE(pins.size, excluded.size),"
                " synced_at = excluded.synced_at", (cid, name, size))
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# The registry of task types
# ---------------------------------------------------------------------------

# run: the function; single_flight: at most one active task of the type;
# retryable: whether a failed or cancelled one can be started again.
TaskType = collections.namedtuple("TaskType", "run single_flight retryable")

TASK_TYPES = {
    "pin_sync": TaskType(run=sync_pins, single_flight=True, retryable=True),
    "file_upload": TaskType(run=upload_file, single_flight=False, retryable=False),
}


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(prog="worker.py", description="Run one IPFSMaster task in the foreground.")
    parser.add_argument("task_id", type=int, help="the task's id in background_tasks")
    parser.add_argument("--db", help="SQLite database (env IPFSMASTER_DB; default ipfsmaster.db)")
    parser.add_argument("--ipfs-api", help="the node's RPC API, when the task does not name one"
                                           " (env IPFSMASTER_IPFS_API; default %s)" % DEFAULT_API)
    args = parser.parse_args(argv)
    os.umask(0o077)  # anything the worker creates is the owner's alone
    if hasattr(os, "nice"):
        # A background job: the console's own requests come first when the CPU is busy.
        os.nice(WORKER_NICENESS)
    db = args.db or os.environ.get("IPFSMASTER_DB") or ipfsmaster.DEFAULTS["db"]
    if not os.path.exists(db):
        parser.error("no database at %s" % db)
    return run_task(args.task_id, db, args.ipfs_api)


if __name__ == "__main__":
    sys.exit(main())
