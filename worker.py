#!/usr/bin/env python3
"""IPFSMaster's background worker: runs one task, then exits.

    python3 worker.py TASK_ID [--db PATH] [--ipfs-api URL]

The server starts it detached, one process per task; run by hand it works in
the foreground. It claims the task (pending -> running) with a compare-and-set,
so two workers can never run the same task, and it never overwrites a status
it did not set: a task cancelled or failed by someone else (the console, or
the seed's ``UPDATE ... SET status='failed'``) makes it stop within seconds.

Task types live in ``TASK_TYPES`` at the bottom: a name, one function that
receives a ``TaskContext``, its labels, its progress unit, and whether only
one may be active at a time (the pin tasks' functions are in tasks_pins.py).
"""

import argparse
import base64
import collections
import contextlib
import hashlib
import http.client
import itertools
import json
import os
import queue
import re
import select
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import traceback
from urllib.parse import quote, quote_plus, urlsplit

import ipfsmaster
from ipfsmaster import connect, transaction

if __name__ == "__main__":
    # One module, whichever name it is imported by (tasks_pins imports "worker").
    sys.modules.setdefault("worker", sys.modules[__name__])

DEFAULT_API = ipfsmaster.DEFAULTS["ipfs_api"]
# The reporter waits this long at most for the write lock, then lets the
# progress wait for its next round (the heartbeat file keeps the task alive).
REPORT_BUSY_TIMEOUT_MS = 250
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

    SERVICE = "IPFS API"                    # what a person calls it, in error messages
    KIND = "a Kubo RPC API"
    AUTH_VARIABLE = "IPFSMASTER_IPFS_AUTH"  # where its credentials come from
    PREFIX = "/api/v0/"                     # the path of every command

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
        self._shapes = AnswerShapes()

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
        query = _query(params)
        return "%s%s%s%s" % (self.base_path, self.PREFIX, command, "?" + query if query else "")

    def _unreachable(self, exc):
        return IPFSError("cannot reach the %s at %s: %s" % (self.SERVICE, self.api_url, describe_os_error(exc)),
                         transient=True)

    def _broke_off(self, command, exc):
        return IPFSError("the %s at %s broke off %s: %s" % (self.SERVICE, self.api_url, command,
                                                          describe_os_error(exc)), transient=True)

    def _send(self, command, params, body=None, headers=None, method="POST"):
        """One attempt: send the request and return the response (status 200)."""
        all_headers = dict(self._headers, **headers) if headers else self._headers
        try:
            conn = self._connection()
            conn.request(method, self._url(command, params), body=body, headers=all_headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise self._unreachable(exc)
        if resp.status not in (200, 204):   # IPFS Cluster answers an empty stream with 204
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
            answer = json.loads(text)
            message = answer.get("Message") or answer.get("message")  # Kubo's, or IPFS Cluster's
        except (ValueError, AttributeError):
            message = None
        if status in (401, 403):
            return IPFSError("the %s at %s refused %s: access denied (check %s)"
                             % (self.SERVICE, self.api_url, command, self.AUTH_VARIABLE))
        if status in (404, 405) and not message:
            return IPFSError("the %s at %s does not know %s (HTTP %d): is it %s?"
                             % (self.SERVICE, self.api_url, command, status, self.KIND))
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

    def call(self, command, params=(), body=None, headers=None, method="POST"):
        """A command whose answer is one JSON value."""
        def attempt():
            resp = self._send(command, params, body, headers, method)
            try:
                data = resp.read(MAX_ANSWER + 1)
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self._unreachable(exc)
            if len(data) > MAX_ANSWER:
                self.close()  # the rest is still on its way
                raise IPFSError("IPFS %s answered more than %d bytes; such an answer is refused"
                                % (command, MAX_ANSWER))
            try:
                return json.loads(data.decode("utf-8")) if data.strip() else {}
            except ValueError:
                raise IPFSError("IPFS %s answered something that is not JSON" % command)
        return self._retrying(attempt)

    def call_many(self, command, args, params=()):
        """The same command for each of several arguments (``arg=``), with the
        same other ``params``, pipelined.

        Every request leaves in one write on the keep-alive connection and the
        answers are read back in order, from large reads, and their JSON is
        parsed in one go: that saves most of the per-call cost of thousands
        of small look-ups. Returns, in order, a parsed value or the node's
        IPFSError for each call it got an answer to; the list is shorter if
        the node closed the connection part-way. A broken connection raises
        a transient IPFSError: the caller then falls back to ``call``, which
        retries.
        """
        lines = "".join("%s: %s\r\n" % item for item in self._headers.items())
        name = "[%s]" % self.host if ":" in self.host else self.host   # an IPv6 address
        host = name if self.port in (80, 443) else "%s:%d" % (name, self.port)
        before = "POST %s?arg=" % self._url(command, ())
        options = _query(params)
        options = "&" + options if options else ""
        after = "%s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: 0\r\n\r\n" % (options, host, lines)
        requests = "".join([before + _quoted(arg) + after for arg in args])
        answers = []
        try:
            self._connection()
            self._sock.sendall(requests.encode("latin-1"))
            reader = AnswerReader(self._sock, len(args), self._shapes)
            for _ in args:
                status, body, closing = reader.next()
                answers.append(body if status == 200 else self._error_for(command, status,
                                                                        body.decode("utf-8", "replace")))
                if closing:
                    self.close()
                    break
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise self._unreachable(exc)
        return _parse_answers(command, answers)

    def stream(self, command, params=(), body=None, headers=None, method="POST"):
        """A streaming command: yields each JSON object of the answer.

        The standard library drops HTTP trailers, where the node reports an
        error that happened after the 200 (X-Stream-Error), so the chunked
        encoding is read here: a stream ends cleanly only at its last chunk
        with no error trailer. Anything else raises IPFSError. Only the
        opening request is retried; a stream cut short is not resumed.
        """
        for batch in self.stream_batches(command, params, body, headers, method):
            yield from batch

    def stream_batches(self, command, params=(), body=None, headers=None, method="POST"):
        """Like ``stream``, but yields lists of objects as they arrive: much
        cheaper per object for listings of millions of pins."""
        return json_batches(command, self.stream_bytes(command, params, body, headers, method))

    def stream_bytes(self, command, params=(), body=None, headers=None, method="POST"):
        """The body of a streaming command as it arrives, in pieces of bytes,
        checked as ``stream`` checks it."""
        resp = self._retrying(lambda: self._send(command, params, body, headers, method))
        return self._read_body(command, resp)

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
            raise self._unreachable(exc)

        sock = self._sock  # conn.sock goes once the answer begins (see interrupt)
        failures = []

        def send():
            try:
                for chunk in chunks:
                    if self.stopped:
                        return
                    try:
                        sock.sendall(chunk)
                    except OSError:  # the node answered early (an error), or we were interrupted
                        return
            except Exception as exc:  # the body could not be read: the node must not wait for the rest
                failures.append(exc)
                self.interrupt()
        sender = threading.Thread(target=send, name="upload-body", daemon=True)
        sender.start()
        try:
            try:
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise self._broke_off(command, exc)
            if resp.status != 200:
                raise self._error_for(command, resp.status, resp.read(65536).decode("utf-8", "replace"))
            for batch in json_batches(command, self._read_body(command, resp)):
                yield from batch
        finally:
            self.interrupt()
            sender.join()
            self.close()
            if failures:
                raise IPFSError("could not send the file to the IPFS API: %s: %s"
                                % (type(failures[0]).__name__, failures[0])) from failures[0]

    def _read_body(self, command, resp):
        """A streamed answer's body, piece by piece."""
        try:
            yield from chunked_body(Buffered(resp.fp.read1)) if resp.chunked else _plain(resp)
        except (OSError, http.client.HTTPException) as exc:
            raise self._broke_off(command, exc)
        finally:
            # The response was read past http.client's bookkeeping.
            self.close()


class ClusterClient(IPFSClient):
    """IPFS Cluster's REST API (port 9094): the same connection, retries and
    stream checks as the node's RPC API, with the REST API's paths and
    methods (``call("pins/CID", method="DELETE")``). Its streams end with
    the same X-Stream-Error trailer when they fail."""

    SERVICE = "IPFS Cluster API"
    KIND = "an IPFS Cluster REST API"
    AUTH_VARIABLE = "IPFSMASTER_CLUSTER_AUTH"
    PREFIX = "/"


MAX_LINE = 1 << 20
MAX_CHUNK = 1 << 24
MAX_ANSWER = 1 << 24   # the largest answer ``call`` reads (its answers are small JSON values)


def json_batches(command, pieces):
    """Lists of the JSON objects in the newline-delimited ``pieces`` of bytes."""
    pending = b""
    for piece in pieces:
        *lines, pending = (pending + piece).split(b"\n")
        if lines:
            yield _parse_lines(command, lines)
        if len(pending) > MAX_LINE:
            raise IPFSError("IPFS %s sent a line longer than %d bytes" % (command, MAX_LINE))
    yield _parse_lines(command, [pending])


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


class StreamError(IPFSError):
    """The node reported an error after its answer had begun (X-Stream-Error)."""

    def __init__(self, reported):
        super().__init__("the IPFS node reported an error mid-stream: %s" % reported.decode("utf-8", "replace"))
        self.reported = reported


class Buffered:
    """Bytes read from a connection and parsed where they lie: ``buf`` from
    ``pos`` on is what is not parsed yet. ``read(n)`` gives at most n bytes,
    b"" at the end."""

    def __init__(self, read):
        self.read = read
        self.buf = b""
        self.pos = 0
        self.dropped = 0         # bytes dropped from the front of buf

    def more(self, started=True):
        data = self.read(1 << 16)
        if not data:
            if started:
                raise http.client.IncompleteRead(self.buf[self.pos:])
            raise http.client.RemoteDisconnected("the connection closed")
        self.dropped += self.pos
        self.buf = self.buf[self.pos:] + data
        self.pos = 0

    def line(self, limit):
        while True:
            end = self.buf.find(b"\r\n", self.pos)
            if end >= 0:
                line, self.pos = self.buf[self.pos:end], end + 2
                return line
            if len(self.buf) - self.pos > limit:
                raise http.client.LineTooLong("an answer's line")
            self.more()

    def take(self, size):
        while len(self.buf) - self.pos < size:
            self.more()
        data, self.pos = self.buf[self.pos:self.pos + size], self.pos + size
        return data


def chunked_body(source):
    """The body of a chunked answer in ``source`` (a Buffered), in pieces as
    they arrive, then its trailers, leaving ``source`` just past them.

    Many chunks are decoded from each read: Kubo sends one chunk per pin,
    and a read per chunk would dominate a listing of millions of pins. An
    X-Stream-Error trailer raises StreamError: without it, a stream that
    failed half-way would look like a clean end.
    """
    while True:
        buf, pos, blocks = source.buf, source.pos, []
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
                source.pos = eol + 2
                if blocks:
                    yield b"".join(blocks)
                _read_trailers(source)
                return
            if not 0 < size <= MAX_CHUNK:
                raise http.client.HTTPException("bad chunk size")
            end = eol + 2 + size
            if end + 2 > len(buf):
                break
            if buf[end:end + 2] != b"\r\n":
                raise http.client.HTTPException("bad chunk")
            blocks.append(buf[eol + 2:end])
            pos = end + 2
        source.pos = pos
        if blocks:
            yield b"".join(blocks)
        source.more()


def _read_trailers(source):
    """Read the trailers to their end; then raise StreamError if they hold one."""
    error = None
    while True:
        line = source.line(65536)
        if not line:
            break
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-stream-error" and value.strip():
            error = value.strip()
    if error is not None:
        raise StreamError(error)


# What a query string may not carry as it is: %-escaped (a space as "+"),
# exactly as urlencode does, but several times faster for the short ASCII
# values of the RPC API, which have few such characters (a CID has none).
_UNSAFE = re.compile(r"[^A-Za-z0-9_.~-]")
_ESCAPES = {chr(c): "+" if c == 32 else "%%%02X" % c for c in range(128)}


def _escape(match):
    return _ESCAPES[match.group()]


def _query(params):
    return "&".join("%s=%s" % (_quoted(k), _quoted(v)) for k, v in params if v is not None)


def _quoted(value):
    value = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, value) if value.isascii() else quote_plus(value, safe="")


# The headers an answer's framing depends on, found in its lowercased head.
_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding|connection)[ \t]*:[ \t]*([^\r\n]*)")


class AnswerShapes:
    """What the answers on a connection looked like so far."""

    def __init__(self):
        self.shortest = 0        # bytes in the shortest answer; 0 while unknown
        self.can_wait = hasattr(select, "poll") and hasattr(socket, "SO_RCVLOWAT")


ANSWER_WAIT_MS = 2


class AnswerReader(Buffered):
    """``expected`` HTTP answers read one after the other from a pipelined
    connection.

    Parsed from large reads with ``bytes.find`` rather than a read per line:
    a look-up's answer is a few hundred bytes, and per-line reads would cost
    more than the node takes to answer. A node writes its answers one by
    one, so a read as soon as anything arrives would mostly get one; while
    more answers are due, a read first waits (up to ANSWER_WAIT_MS, with
    SO_RCVLOWAT) until the bytes of the shortest answer so far times the
    answers due are there. Never reads into what follows the last answer
    asked for, as the node sends nothing unasked.
    """

    def __init__(self, sock, expected, shapes=None):
        super().__init__(self._receive)
        self.sock = sock
        self.due = expected
        self.shapes = shapes or AnswerShapes()
        self.poller = None
        # Over TLS the bytes waiting in the kernel are not the answer's bytes.
        self.can_wait = self.shapes.can_wait and not hasattr(sock, "pending")

    def _wait(self):
        """Wait a moment for the bytes the answers due must at least bring."""
        want = self.due * self.shapes.shortest - (len(self.buf) - self.pos)
        if want <= 1 or not self.can_wait:
            return
        try:
            if self.poller is None:
                self.poller = select.poll()
                self.poller.register(self.sock, select.POLLIN)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, min(want, 1 << 16))
            self.poller.poll(ANSWER_WAIT_MS)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        except OSError:  # the system does not have it for this socket
            self.shapes.can_wait = self.can_wait = False

    def _receive(self, size):
        if self.due > 1:
            self._wait()
        return self.sock.recv(size)

    def next(self):
        """(status, body, closing) of the next answer. An error reported in a
        trailer (X-Stream-Error) turns the status into 500 with that message."""
        start = self.dropped + self.pos
        answer = self._next()
        size = self.dropped + self.pos - start
        if size < self.shapes.shortest or not self.shapes.shortest:
            self.shapes.shortest = size
        self.due -= 1
        return answer

    def _next(self):
        while True:
            end = self.buf.find(b"\r\n\r\n", self.pos)
            if end >= 0:
                break
            if len(self.buf) - self.pos > 65536:
                raise http.client.LineTooLong("an answer's head")
            self.more(started=self.pos < len(self.buf))
        head = self.buf[self.pos:end]
        self.pos = end + 4
        status, chunked, length, closing = _framing(head)
        if chunked:
            try:
                return status, b"".join(chunked_body(self)), closing
            except StreamError as exc:
                return 500, exc.reported, closing
        if length is not None:
            return status, self.take(length), closing
        while True:  # the body runs to the end of the connection
            data = self.sock.recv(1 << 16)
            if not data:
                break
            self.buf += data
            if len(self.buf) - self.pos > MAX_CHUNK:
                raise http.client.HTTPException("answer too large")
        body, self.pos = self.buf[self.pos:], len(self.buf)
        return status, body, True


def _framing(head):
    """(status, chunked, content length or None, closing) from an answer's head."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(None, 2)
    if not line.startswith(b"HTTP/") or len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
        raise http.client.BadStatusLine(line[:80].decode("latin-1", "replace"))
    status = int(parts[1])
    fields = dict(_FRAMING.findall(head.lower()))
    chunked = b"chunked" in fields.get(b"transfer-encoding", b"")
    length = None if chunked or b"content-length" not in fields else int(fields[b"content-length"])
    if length is not None and not 0 <= length <= MAX_CHUNK:
        raise http.client.HTTPException("a Content-Length out of range")
    return status, chunked, length, fields.get(b"connection", b"").strip() == b"close"


def _parse_answers(command, answers):
    """The JSON bodies among ``answers`` parsed in one go (an empty body is {})."""
    bodies = [answer.strip() or b"{}" for answer in answers if isinstance(answer, bytes)]
    try:
        values = json.loads(b"[" + b",".join(bodies) + b"]")
        if len(values) != len(bodies):  # a body held more than one value
            raise ValueError("not one value per answer")
    except ValueError:
        values = [_parse_answer(command, body) for body in bodies]
    values.reverse()
    return [values.pop() if isinstance(answer, bytes) else answer for answer in answers]


def _parse_answer(command, body):
    try:
        return json.loads(body)
    except ValueError:
        return IPFSError("IPFS %s answered something that is not JSON" % command)


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
    renews the heartbeat file, and reads back whether the task must stop.
    ``check()`` raises TaskStopped once it must.
    """

    def __init__(self, task, db_path, api_url, auth=None, interval=0.5, out=None):
        self.task_id = task["id"]
        self.task_type = task["task_type"]
        self.retry_of = task["retry_of"] if "retry_of" in task.keys() else None   # the task this one retries
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
        self.stop_reason = None      # 'cancel', 'signal', 'lost' or 'reporter'
        self.signalled = False       # set by the signal handler, nothing more
        self._stop = threading.Event()
        self._interruptible = set()
        self._lock = threading.Lock()
        self._logged_at = 0
        self.heartbeat_file = ipfsmaster.heartbeat_path(ipfsmaster.Settings(db=db_path), self.task_id)

    def client(self, **options):
        """A new IPFS client for this task (one per thread)."""
        return IPFSClient(self.api_url, self.auth, **options)

    @property
    def cluster_api(self):
        """The IPFS Cluster REST API the task works through, or None for the node alone."""
        return self.params.get("cluster_api")

    def cluster_client(self, **options):
        """A new client of the cluster's REST API (one per thread)."""
        return ClusterClient(self.cluster_api, os.environ.get("IPFSMASTER_CLUSTER_AUTH"), **options)

    # -- progress ------------------------------------------------------------

    def log(self, message):
        self.out.write("[Task %d] %s\n" % (self.task_id, message))
        self.out.flush()

    def set_total(self, total):
        self.total = total

    def advance(self, count=1, item=None):
        """Count ``count`` more items done; logs every 10 items and at the end,
        once the total is known."""
        self.progress += count
        if item is not None:
            self.current_item = item
        if not self.total:
            return
        if self.progress // 10 != self._logged_at // 10 or self.progress >= self.total:
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

    def beat(self):
        """Renew the heartbeat file (see ipfsmaster.heartbeat_path)."""
        try:
            os.utime(self.heartbeat_file)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.heartbeat_file), mode=0o700, exist_ok=True)
            with open(self.heartbeat_file, "ab"):
                pass

    def report(self, conn):
        """Renew the heartbeat, write progress, learn whether to stop. One call.

        While another connection holds the write lock for long (the sync's
        own catalogue update), the progress waits for a later round; the
        heartbeat file and the status read (WAL: no lock needed) go on.
        """
        self.beat()
        try:
            with transaction(conn):
                conn.execute(
                    "UPDATE background_tasks SET progress = ?, total = ?, current_item = ?,"
                    " result = ?, heartbeat_at = datetime('now') WHERE id = ? AND status = 'running'",
                    (self.progress, self.total, self.current_item, json.dumps(self.result), self.task_id))
        except sqlite3.OperationalError as exc:
            if not ipfsmaster.database_busy(exc):
                raise
        row = conn.execute("SELECT status, cancel_requested_at FROM background_tasks WHERE id = ?",
                           (self.task_id,)).fetchone()
        if row is None or row["status"] != "running":
            self.request_stop("lost")
        elif self.signalled:
            self.request_stop("signal")
        elif row["cancel_requested_at"]:
            self.request_stop("cancel")

    def run_reporter(self, done):
        """Report every ``interval`` until ``done``. If this thread fails, the
        task has no heartbeat and no way to hear a cancel: it is stopped."""
        try:
            conn = connect(self.db_path, REPORT_BUSY_TIMEOUT_MS)
            try:
                while True:
                    try:
                        self.report(conn)
                    except sqlite3.OperationalError as exc:  # a disk error, say: the next round may do better
                        self.log("could not record progress: %s" % exc)
                    if done.wait(self.interval):
                        return
            finally:
                conn.close()
        except Exception:
            traceback.print_exc(file=self.out)
            self.request_stop("reporter")


# ---------------------------------------------------------------------------
# Running a task
# ---------------------------------------------------------------------------

def claim_task(conn, task_id, pid):
    """pending -> running, if nobody else did it first; returns the row or None."""
    with transaction(conn):
        cur = conn.execute(
            "UPDATE background_tasks SET status = 'running', pid = ?, started_at = datetime('now'),"
            " started_at_precise = " + ipfsmaster.NOW_PRECISE + ","
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
            " current_item = ?, completed_at = datetime('now'), completed_at_precise = " + ipfsmaster.NOW_PRECISE + ","
            " heartbeat_at = datetime('now')"
            " WHERE id = ? AND status = 'running'",
            (status, error_message, json.dumps(ctx.result), ctx.progress, ctx.total, ctx.current_item, ctx.task_id))
        return cur.rowcount == 1


STOP_MESSAGES = {
    "cancel": ("cancelled", "Cancelled"),
    "signal": ("failed", "Worker terminated by a signal"),
    "reporter": ("failed", "The worker could no longer record its progress (the details are in its log)"),
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
    finished = ctx.stop_reason != "lost" and finish(conn, ctx, status, error)
    with contextlib.suppress(FileNotFoundError):
        os.remove(ctx.heartbeat_file)
    if not finished:
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
# IPFS Cluster's statuses that mean a peer failed a pin.
CLUSTER_ERROR_STATUSES = frozenset(("pin_error", "unpin_error", "cluster_error", "error"))
LIST_ARGS = [("type", "recursive"), ("stream", "true"), ("names", "true")]
LIST_BATCH = 5000      # listed pins written per transaction
SAVE_BATCH = 4096      # sizes written per transaction
SIZE_PAGE = 2048       # unsized pins read from the catalogue at a time
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
    return setting("IPFSMASTER_SIZE_PIPELINE", 64, 1, 256)


def sync_pins(ctx):
    """Mirror the node's recursive pins into ``pins`` (see PinSync)."""
    conn = connect(ctx.db_path)
    try:
        return PinSync(ctx, conn).run()
    finally:
        conn.close()


class PinSync:
    """One pin sync.

    1. Stream ``pin/ls`` into temp table ``listed`` (nothing changes yet).
    2. Only once the listing is known complete: delete what the node no longer
       has, insert what is new, update what changed, in one transaction, so
       the catalogue is either as it was or correctly updated.
    3. Look up the size of every pin whose size is unknown, N at a time, in
       ``id`` order, which is CID order: a batch of sizes then dirties few
       pages, where in random order each size would dirty one of its own.
       CIDs are immutable, so a known size is never looked up again.

    When no pin in the catalogue has a known size (a first sync), every
    listed pin needs a look-up, so "early" look-ups start with the listing,
    in its order, and those of the lowest CIDs keep the node busy while
    step 2 runs. Their sizes go into ``listed`` and reach the catalogue with
    their pins; those that come in after step 2 are written together, in
    CID order, to the first rows. Step 3 then skips the pins that early
    look-ups have, or had and could not size.

    When the listing has the same bytes as the last one applied, there is
    nothing to store or compare (see ``list_pins``): only step 3 is left.
    """

    def __init__(self, ctx, conn):
        self.ctx, self.conn = ctx, conn
        self.result = ctx.result = {"total": 0, "added": 0, "updated": 0, "removed": 0, "unchanged": 0,
                                    "failed": 0, "sized": 0, "error_details": [], "duration_s": 0.0}
        self.early = False          # whether look-ups start with the listing
        self.digest = None          # the listing's SHA-256, as it is read
        self.unchanged = False      # whether the listing is the one last applied
        self.applied = False        # whether step 2 is done
        self.lookups = None         # the SizeLookups at work
        self.reset_sizes()

    def reset_sizes(self):
        self.fed_listed = 0         # the last rowid of ``listed`` handed to early look-ups
        self.fed_pins = 0           # the last id of ``pins`` handed to look-ups in step 3
        self.early_waiting = 0      # early look-ups not answered yet
        self.skip = set()           # CIDs step 3 leaves alone: early ones not yet sized in ``pins``
        self.into_listed = []       # (size, rowid, cid) from early look-ups, before step 2
        self.late = []              # (size, cid) from early look-ups, after step 2
        self.into_pins = []         # (size, id, cid) from step 3

    def run(self):
        ctx, conn, result = self.ctx, self.conn, self.result
        started = time.monotonic()
        try:
            ctx.log("Fetching pins from IPFS...")
            ctx.current_item = "Fetching pins from IPFS..."
            listing_started = conn.execute("SELECT " + NOW_MS).fetchone()[0]
            self.early = bool(conn.execute("SELECT count = unsized FROM pin_stats").fetchone()[0])
            total = result["total"] = self.list_pins()
            ctx.set_total(total)
            ctx.log("Found %d pins to sync" % total)
            if ctx.cluster_api:
                self.record_cluster_peers()
            if self.unchanged:
                self.applied = True
                result["unchanged"] = total
                ctx.advance(total - conn.execute("SELECT unsized FROM pin_stats").fetchone()[0])
            else:
                self.apply_listing(listing_started)
            self.look_up_sizes()
            ctx.current_item = None
            ctx.advance(max(0, total - ctx.progress))
            ctx.log("Sync completed: %d pins synced" % total)
            return result
        finally:
            result["duration_s"] = round(time.monotonic() - started, 3)
            if self.lookups is not None:
                self.lookups.close()

    # -- 1. the listing ------------------------------------------------------

    def list_pins(self):
        """Read the node's recursive pins into ``listed``; returns the count.

        The table has no index: rows are appended as they arrive, which stays
        fast at millions of pins, and the comparison uses the catalogue's own
        index on ``cid``. Its columns have no type, so that a CID that is not
        text stays what it was and is refused at the end. A transient failure
        restarts the listing from scratch (the table is emptied, early
        look-ups start again), so a partial listing is never taken for the whole.

        When the catalogue is still as the last applied listing left it
        (``last_listing``), the listing is first only hashed, and kept in a
        temporary file: if its bytes are the same, nothing has changed and
        there is nothing to store or compare; if not, it is read from the
        file as it would have been from the node.
        """
        ctx, conn = self.ctx, self.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed (cid NOT NULL, type NOT NULL, name, size)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed_peers"
                     " (cid NOT NULL, peer_id NOT NULL, peername, status, error, updated_at)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed_replication (cid NOT NULL, wanted, pinned, in_error)")
        last = conn.execute("SELECT l.digest, l.count FROM last_listing l JOIN pin_stats s ON s.count = l.count"
                            " AND s.id = 1").fetchone()
        if ctx.cluster_api:
            client, command, args, method = ctx.cluster_client(), "pins", [], "GET"
        else:
            client, command, args, method = ctx.client(), "pin/ls", LIST_ARGS, "POST"
        for attempt in range(1, client.attempts + 1):
            conn.execute("DELETE FROM listed")
            conn.execute("DELETE FROM listed_peers")
            self.restart_lookups()
            self.digest = hashlib.sha256()
            try:
                with ctx.interruptible(client):
                    pieces = self.hashed(client.stream_bytes(command, args, method=method))
                    if last is None:
                        return self.store_listing(pieces)
                    with tempfile.TemporaryFile(prefix="ipfsmaster-listing-") as spool:
                        for piece in pieces:
                            spool.write(piece)
                        if self.digest.hexdigest() == last["digest"]:
                            self.unchanged = True
                            return last["count"]
                        spool.seek(0)
                        return self.store_listing(iter(lambda: spool.read(1 << 20), b""))
            except IPFSError as exc:
                ctx.check()
                if not exc.transient or attempt == client.attempts:
                    raise
                ctx.log("Listing failed (%s); starting it again" % exc)
                time.sleep(client.backoff * 2 ** (attempt - 1))
            finally:
                client.close()
        raise AssertionError("unreachable")

    def hashed(self, pieces):
        """``pieces`` of the listing, hashed on the way, with a stop at each if asked."""
        lines = 0
        for piece in pieces:
            self.ctx.check()
            self.digest.update(piece)
            lines += piece.count(b"\n")
            self.ctx.current_item = "Fetching pins from IPFS... %d" % lines
            yield piece

    def store_listing(self, pieces):
        """Parse the listing's ``pieces`` into ``listed``; returns the count."""
        ctx, conn = self.ctx, self.conn
        count = 0
        plain, named = [], []
        cluster = bool(ctx.cluster_api)
        for objects in json_batches("pins" if cluster else "pin/ls", pieces):
            if cluster:
                objects = self.cluster_pins(objects)
            add_listed(objects, plain, named)
            if len(plain) + len(named) >= LIST_BATCH:
                count += insert_listed(conn, plain, named)
                plain, named = [], []
                if self.early:
                    self.feed_listed(self.lookups.depth)
                    self.collect()
        count += insert_listed(conn, plain, named)
        ctx.check()
        bad = conn.execute("SELECT cid FROM listed WHERE typeof(cid) <> 'text' OR cid = '' LIMIT 1").fetchone()
        if bad:
            raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % ({"Cid": bad[0]},))
        return count

    def cluster_pins(self, objects):
        """The cluster's GlobalPinInfo objects as pin/ls entries; each peer's
        status of each pin, and the pin's replication, go to their own tables."""
        peers, replication, pins = [], [], []
        for obj in objects:
            pin, statuses, counts = cluster_pin_rows(obj)
            pins.append(pin)
            peers.extend(statuses)
            replication.append(counts)
        try:
            with transaction(self.conn):
                self.conn.executemany("INSERT INTO listed_peers VALUES (?, ?, ?, ?, ?, ?)", peers)
                self.conn.executemany("INSERT INTO listed_replication VALUES (?, ?, ?, ?)", replication)
        except (sqlite3.InterfaceError, sqlite3.ProgrammingError):
            raise IPFSError("the IPFS Cluster API sent a pin status that is not text")
        return pins

    def record_cluster_peers(self):
        """The cluster's peers and their state, for the pins page. A peer
        that is down is listed with its error; if the list cannot be had at
        all, the sync goes on without it."""
        rows = []
        client = self.ctx.cluster_client()
        try:
            with self.ctx.interruptible(client):
                for peer in client.stream("peers", method="GET"):
                    ipfs = peer.get("ipfs") or {}
                    error = peer.get("error") or ipfs.get("error") or None
                    rows.append((str(peer.get("id")), peer.get("peername"), peer.get("version"),
                                 ipfs.get("id"), error))
        except (IPFSError, AttributeError) as exc:
            self.ctx.log("Could not read the cluster's peers: %s" % exc)
            return
        finally:
            client.close()
        with transaction(self.conn):
            self.conn.execute("DELETE FROM cluster_peers")
            self.conn.executemany("INSERT OR REPLACE INTO cluster_peers (peer_id, peername, version, ipfs_id, error)"
                                  " VALUES (?, ?, ?, ?, ?)", rows)

    # -- 2. the catalogue ----------------------------------------------------

    def apply_listing(self, listing_started):
        """Bring ``pins`` in line with the complete listing in ``listed``.

        One pass over the listing, through the catalogue's index, counts what is
        new, what changed and what is still there; each change then runs only if
        there is something to change, so a re-sync where nothing changed writes
        nothing. Pins written since the listing began (an upload) are never
        removed: the listing may predate them. Kubo's listing never repeats a
        CID, which the "still there" count relies on.
        """
        ctx, conn, result = self.ctx, self.conn, self.result
        if self.early:
            self.feed_lead(self.lookups.depth * 8)
            self.collect()
            self.save_listed()
        ctx.current_item = "Comparing with the catalogue..."
        ctx.check()
        if not conn.execute("SELECT count FROM pin_stats").fetchone()[0]:
            found = kept = changed = removable = 0   # an empty catalogue: all is new
        else:
            found, kept, changed, removable = self.compare(listing_started)
        ctx.check()
        with transaction(conn):
            if kept < removable or (self.early and found):
                conn.execute("CREATE INDEX IF NOT EXISTS temp.listed_cid ON listed(cid)")
            if kept < removable:
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
            if self.early and found:
                # Catalogued pins whose size was found on the way.
                conn.execute("UPDATE pins SET size = (SELECT size FROM listed WHERE listed.cid = pins.cid)"
                             " WHERE size IS NULL AND cid IN (SELECT cid FROM listed WHERE size IS NOT NULL)")
            if found < result["total"]:
                # In CID order, every index grows at its end instead of at random places.
                result["added"] = conn.execute(
                    "INSERT OR IGNORE INTO pins (cid, type, name, size)"
                    " SELECT cid, type, COALESCE(name, ''), size FROM listed ORDER BY cid").rowcount
            # Each peer's status of each pin: the cluster's, or none for a node alone.
            conn.execute("DELETE FROM pin_peers")
            conn.execute("DELETE FROM pin_replication")
            if not ctx.cluster_api:
                conn.execute("DELETE FROM cluster_peers")
            else:
                conn.execute("INSERT OR REPLACE INTO pin_peers (cid, peer_id, peername, status, error, updated_at)"
                             " SELECT * FROM listed_peers ORDER BY cid")
                conn.execute("INSERT OR REPLACE INTO pin_replication (cid, wanted, pinned, in_error)"
                             " SELECT * FROM listed_replication ORDER BY cid")
            # Remembered only if the catalogue is now exactly the listing
            # (not so while an upload's pin is newer than the listing).
            conn.execute("DELETE FROM last_listing")
            if conn.execute("SELECT count FROM pin_stats").fetchone()[0] == result["total"]:
                conn.execute("INSERT INTO last_listing (id, digest, count) VALUES (1, ?, ?)",
                             (self.digest.hexdigest(), result["total"]))
        self.applied = True
        result["unchanged"] = result["total"] - result["added"] - result["updated"]
        if not self.early:
            unsized = conn.execute("SELECT unsized FROM pin_stats").fetchone()[0]
            ctx.advance(max(0, ctx.total - unsized))

    def compare(self, listing_started):
        """(found, kept, changed, removable): listed pins in the catalogue,
        those of them written before the listing began, those whose type or
        name changed, and catalogued pins written before the listing began."""
        conn = self.conn
        found, kept, changed = conn.execute(
            "SELECT COUNT(p.id), COALESCE(SUM(p.synced_at < ?), 0),"
            " COALESCE(SUM(p.type IS NOT l.type OR (l.name IS NOT NULL AND p.name IS NOT l.name)), 0)"
            # In CID order the look-ups walk the catalogue's index instead of jumping around it.
            " FROM (SELECT * FROM listed ORDER BY cid) l LEFT JOIN pins p ON p.cid = l.cid",
            (listing_started,)).fetchone()
        removable = conn.execute("SELECT COUNT(*) FROM pins WHERE synced_at < ?", (listing_started,)).fetchone()[0]
        return found, kept, changed, removable

    # -- 3. the sizes --------------------------------------------------------

    def look_up_sizes(self):
        """Look up every size still unknown, except those early look-ups have
        (or had: one failure is enough for one sync)."""
        if not self.conn.execute("SELECT unsized FROM pin_stats").fetchone()[0]:
            return
        try:
            exhausted = False
            while True:
                if not exhausted and self.lookups.hungry(self.lookups.depth):
                    exhausted = not self.feed_pins(self.lookups.depth)
                if self.late and not self.early_waiting:
                    # Writing these takes a while: enough look-ups queued for it.
                    if not exhausted:
                        exhausted = not self.feed_pins(self.lookups.depth * 16)
                    self.save_late()
                if exhausted and self.lookups.idle:
                    return
                self.ctx.check()
                self.collect(wait=True)
        finally:
            self.save_late()
            self.save_pins()

    def restart_lookups(self):
        if self.lookups is not None:
            self.lookups.close()
        self.lookups = SizeLookups(self.ctx)
        self.reset_sizes()
        self.ctx.progress = 0
        self.result.update(sized=0, failed=0, error_details=[])

    def feed_listed(self, lead):
        """Hand listed pins, in listing order, to early look-ups until ``lead`` are waiting."""
        self.fed_listed, _ = self.feed("SELECT rowid, cid FROM listed WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                       self.fed_listed, lead, self.submit_early)

    def feed_pins(self, lead):
        """Hand unsized pins, in id order, to look-ups until ``lead`` are
        waiting; False once there are no more."""
        self.fed_pins, more = self.feed("SELECT id, cid FROM pins WHERE size IS NULL AND id > ? ORDER BY id LIMIT ?",
                                        self.fed_pins, lead, self.submit_unsized)
        return more

    def feed(self, sql, after, lead, submit):
        """Pass pages of (key, cid) rows of ``sql``, keys after ``after``, to
        ``submit`` until ``lead`` pins are waiting. Returns the last key
        passed and whether there may be more."""
        while self.lookups.hungry(lead):
            limit = self.lookups.room(lead)
            rows = self.conn.execute(sql, (after, limit)).fetchall()
            if rows:
                after = rows[-1][0]
                submit(rows)
            if len(rows) < limit:
                return after, False
        return after, True

    def feed_lead(self, count):
        """Enough early look-ups to keep the node busy while step 2 runs:
        the lowest CIDs not handed out yet, whose rows step 2 puts first
        in ``pins``, so that their sizes, coming in after it, are written
        to neighbouring rows."""
        self.submit_early(self.conn.execute("SELECT rowid, cid FROM listed WHERE rowid > ? ORDER BY cid LIMIT ?",
                                            (self.fed_listed, count)).fetchall())

    def submit_early(self, rows):
        if rows:
            self.lookups.submit(rows, early=True)
            self.early_waiting += len(rows)
            self.skip.update(row[1] for row in rows)

    def submit_unsized(self, rows):
        todo = [row for row in rows if row[1] not in self.skip] if self.skip else rows
        if todo:
            self.lookups.submit(todo, early=False)

    def collect(self, wait=False):
        """Take the answers that are in (waiting a moment for one if
        ``wait``), up to a queue's worth, so that feeding never waits long."""
        result = self.result
        for early, answers in itertools.islice(self.lookups.answers(wait), self.lookups.workers * 4):
            for key, cid, outcome in answers:
                if isinstance(outcome, IPFSError):
                    result["failed"] += 1
                    if len(result["error_details"]) < MAX_ERROR_DETAILS:
                        result["error_details"].append({"cid": cid, "error": str(outcome)})
                    continue
                result["sized"] += 1
                if not early:
                    self.into_pins.append((outcome, key, cid))
                elif self.applied:
                    self.late.append((outcome, cid))
                else:
                    self.into_listed.append((outcome, key, cid))
                    self.skip.discard(cid)
            self.ctx.advance(len(answers), answers[-1][1])
            if early:
                self.early_waiting -= len(answers)
                if len(self.into_listed) >= SAVE_BATCH:
                    self.save_listed()
            elif len(self.into_pins) >= SAVE_BATCH:
                self.save_pins()

    def save_listed(self):
        if self.into_listed:
            with transaction(self.conn):
                self.conn.executemany("UPDATE listed SET size = ? WHERE rowid = ? AND cid = ?", self.into_listed)
            self.into_listed = []

    def save_late(self):
        if self.late:
            self.late.sort(key=lambda item: item[1])
            with transaction(self.conn):
                self.conn.executemany("UPDATE pins SET size = ? WHERE cid = ? AND size IS NULL", self.late)
            self.skip.difference_update(cid for _, cid in self.late)
            self.late = []

    def save_pins(self):
        if self.into_pins:
            with transaction(self.conn):
                self.conn.executemany("UPDATE pins SET size = ? WHERE id = ? AND cid = ?", self.into_pins)
            self.into_pins = []


def cluster_pin_rows(obj):
    """One GlobalPinInfo of IPFS Cluster as (a pin/ls entry, its rows of
    pin_peers, its row of pin_replication)."""
    try:
        cid, peer_map = obj["cid"], obj.get("peer_map") or {}
        statuses = [(cid, peer_id, info.get("peername"), info.get("status"), info.get("error") or None,
                     info.get("timestamp")) for peer_id, info in peer_map.items()]
        wanted = len(obj.get("allocations") or ()) or len(peer_map)
    except (KeyError, TypeError, AttributeError):
        raise IPFSError("the IPFS Cluster API sent a pin without a CID: %r" % (obj,))
    pinned = sum(1 for row in statuses if row[3] == "pinned")
    in_error = sum(1 for row in statuses if row[3] in CLUSTER_ERROR_STATUSES)
    pin = {"Cid": cid, "Type": "recursive"}
    if obj.get("name"):
        pin["Name"] = obj["name"]
    return pin, statuses, (cid, wanted, pinned, in_error)


def record_cluster_status(conn, obj):
    """Put one pin's status across the cluster (a GlobalPinInfo) in the catalogue."""
    _, statuses, counts = cluster_pin_rows(obj)
    with transaction(conn):
        conn.execute("DELETE FROM pin_peers WHERE cid = ?", (counts[0],))
        conn.executemany("INSERT INTO pin_peers (cid, peer_id, peername, status, error, updated_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)", statuses)
        conn.execute("INSERT OR REPLACE INTO pin_replication (cid, wanted, pinned, in_error) VALUES (?, ?, ?, ?)",
                     counts)


class SizeLookups:
    """Size look-ups on N threads, each with its own keep-alive connection,
    taking a batch of pins at a time (looked up pipelined, see pin_sizes).

    ``submit`` hands over (key, cid) rows, with a tag; ``answers`` gives
    back the tag and a list of (key, cid, size or IPFSError) for each batch. A node that cannot be reached at all
    (a transient error that outlived the retries) is raised from ``answers``, as a final error.
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self.workers, self.batch = size_concurrency(), size_pipeline()
        self.depth = self.workers * self.batch * 4   # pins queued that keep every connection busy
        self.todo, self.done = queue.Queue(), queue.Queue()
        self.waiting = 0
        self.clients, self.threads = [], []

    def hungry(self, lead):
        """Whether fewer than ``lead`` pins wait for a thread to take them
        (answers not collected yet do not count: collecting may lag)."""
        return self.todo.qsize() * self.batch < lead

    def room(self, lead):
        """How many pins to hand over next towards ``lead`` waiting: at least
        a batch, at most a page."""
        return min(SIZE_PAGE, max(self.batch, lead - self.todo.qsize() * self.batch))

    @property
    def idle(self):
        return self.waiting == 0

    def submit(self, rows, early):
        if not self.threads:
            self.start()
        for start in range(0, len(rows), self.batch):
            self.todo.put((early, rows[start:start + self.batch]))
        self.waiting += len(rows)

    def start(self):
        self.clients = [self.ctx.client(timeout=30.0) for _ in range(self.workers)]
        self.threads = [threading.Thread(target=self.run, args=(client,), name="size-%d" % n, daemon=True)
                        for n, client in enumerate(self.clients)]
        for thread in self.threads:
            thread.start()

    def run(self, client):
        while True:
            task = self.todo.get()
            if task is None:
                return
            tag, batch = task
            try:
                keys, cids = zip(*batch)
                self.done.put((tag, list(zip(keys, cids, pin_sizes(client, cids)))))
            except IPFSError as exc:  # the node is unreachable: the sync fails
                self.done.put(exc)
                return
            except Exception as exc:  # anything else would leave the sync waiting for this batch forever
                self.done.put(IPFSError("a size look-up failed: %s: %s" % (type(exc).__name__, exc)))
                traceback.print_exc(file=self.ctx.out)
                return

    def answers(self, wait=False):
        try:
            answers = self.done.get(timeout=0.2) if wait else self.done.get_nowait()
        except queue.Empty:
            return
        while True:
            if isinstance(answers, IPFSError):
                # Final: the look-up had its retries, and the listing must not
                # be started again for it (see PinSync.list_pins).
                raise IPFSError(str(answers)) from answers
            self.waiting -= len(answers[1])
            yield answers
            try:
                answers = self.done.get_nowait()
            except queue.Empty:
                return

    def close(self):
        for client in self.clients:
            client.interrupt()
        with contextlib.suppress(queue.Empty):
            while True:
                self.todo.get_nowait()
        for _ in self.threads:
            self.todo.put(None)


def add_listed(objects, plain, named):
    """Sort pin/ls entries into ``plain`` (cid, type) rows and, for the few
    with a name, ``named`` (cid, type, name) rows.

    The listing has no names unless asked for, and two bound values cost the
    sqlite3 module half what three do when the third is None: at a million
    pins that is most of the time spent writing the listing down.
    """
    try:
        rows = [(obj["Cid"], obj.get("Type") or "recursive") for obj in objects if "Name" not in obj]
        if len(rows) == len(objects):
            plain.extend(rows)
            return
    except (KeyError, TypeError, AttributeError):
        pass
    for obj in objects:
        cid, kind, name = listed_row(obj)
        if name is None:
            plain.append((cid, kind))
        else:
            named.append((cid, kind, name))


def listed_row(obj):
    """(cid, type, name) of one pin/ls entry; Name is absent unless the node lists names."""
    try:
        cid, kind, name = obj["Cid"], obj.get("Type") or "recursive", obj.get("Name")
    except (KeyError, TypeError, AttributeError):
        raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % (obj,))
    if not isinstance(cid, str) or not cid:
        raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % (obj,))
    return cid, str(kind), None if name is None else str(name)


def insert_listed(conn, plain, named):
    try:
        with transaction(conn):
            conn.executemany("INSERT INTO listed (cid, type) VALUES (?, ?)", plain)
            if named:
                conn.executemany("INSERT INTO listed (cid, type, name) VALUES (?, ?, ?)", named)
    except (sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError):
        raise IPFSError("IPFS pin/ls sent an entry that is not a pin: a CID or type that is not text")
    return len(plain) + len(named)


def pin_sizes(client, cids):
    """The sizes of several pins (or the IPFSError for each that has none).

    The files/stat look-ups go out pipelined; any that did not give a size
    are done again one by one by ``pin_size``, with its fallback and retries.
    """
    try:
        answers = client.call_many("files/stat", ["/ipfs/" + cid for cid in cids], STAT_OPTIONS)
    except IPFSError:
        answers = []
    sizes = [answer.get("CumulativeSize") if type(answer) is dict else None for answer in answers]
    sizes += [None] * (len(cids) - len(sizes))
    for index, size in enumerate(sizes):
        if type(size) is not int:
            answer = answers[index] if index < len(answers) else None
            sizes[index] = pin_size(client, cids[index], answer if isinstance(answer, IPFSError) else None)
    return sizes


STAT_OPTIONS = [("offline", "true"), ("timeout", "10s")]


def stat_args(cid):
    return [("arg", "/ipfs/" + cid)] + STAT_OPTIONS


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
        except (KeyError, TypeError, ValueError, OverflowError):
            first = IPFSError("IPFS files/stat gave no size for %s" % cid)
    try:
        stat = client.call("block/stat", [("arg", cid), ("offline", "true"), ("timeout", "10s")])
        return int(stat["Size"])
    except IPFSError as exc:
        if exc.transient:
            raise
        return first
    except (KeyError, TypeError, ValueError, OverflowError):
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
        # One file, or several (a folder) added as one directory.
        files = ctx.params.get("files") or [[name, size]]
        wrap = "files" in ctx.params
        ctx.log("Uploading %s (%d bytes%s) to IPFS..." % (name, size, ", %d files" % len(files) if wrap else ""))
        boundary = "ipfsmaster-" + os.urandom(12).hex()
        heads = [('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
                  'Content-Type: application/octet-stream\r\n\r\n'
                  % (boundary, quote(str(file_path), safe=" ._-()[]/" if wrap else " ._-()[]"))).encode("utf-8")
                 for file_path, _ in files]
        tail = ("\r\n--%s--\r\n" % boundary).encode("ascii")
        if sum(int(length) for _, length in files) != size:
            raise IPFSError("the uploaded files do not add up to their size")

        def body():
            with open(path, "rb") as f:
                for number, ((_, length), head) in enumerate(zip(files, heads)):
                    yield (b"\r\n" if number else b"") + head
                    left = int(length)
                    while left > 0:
                        chunk = f.read(min(UPLOAD_CHUNK, left))
                        if not chunk:
                            raise IPFSError("the uploaded file is shorter than it was")
                        left -= len(chunk)
                        yield chunk
                        ctx.advance(len(chunk))  # resumed once the chunk is sent
            yield tail

        length = sum(len(head) for head in heads) + 2 * (len(files) - 1) + size + len(tail)
        options = [("progress", "true"), ("pin", "true" if pin else "false")]
        if wrap:
            options.append(("wrap-with-directory", "true"))
        client = ctx.client()
        added = None
        with ctx.interruptible(client):
            for obj in client.upload("add", options, body(), length, "multipart/form-data; boundary=" + boundary):
                ctx.check()
                if isinstance(obj, dict) and obj.get("Hash"):
                    added = obj
        ctx.check()
        if added is None:
            raise IPFSError("IPFS add finished without giving the file's CID")
        cid, dag_size = added["Hash"], int(added.get("Size") or 0)
        ctx.progress = size
        ctx.result.update({"cid": cid, "size": size, "dag_size": dag_size, "pinned": pin})
        if wrap:
            ctx.result["files"] = len(files)
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
        store_pin(conn, cid, name, size)
    finally:
        conn.close()


def store_pin(conn, cid, name, size, rename=False):
    """Insert or refresh a recursive pin in the catalogue; ``rename``: its
    name becomes ``name`` even if the pin was known under another."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO pins (cid, type, name, size) VALUES (?, 'recursive', ?, ?)"
            " ON CONFLICT (cid) DO UPDATE SET type = 'recursive', size = COALESCE(pins.size, excluded.size),"
            " name = CASE WHEN ? THEN excluded.name ELSE pins.name END, synced_at = excluded.synced_at",
            (cid, name, size, 1 if rename else 0))


# ---------------------------------------------------------------------------
# Task: pin_recover (IPFS Cluster)
# ---------------------------------------------------------------------------

RECOVER_FILTER = [("filter", "pin_error,unpin_error")]
RECOVER_TIMEOUT_S = 120
CLUSTER_POLL_S = 0.5


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


def recover_pins(ctx):
    """Ask the cluster to try again every pin a peer failed
    (``POST /pins/CID/recover``), one at a time, with progress, and follow
    each until its peers have it pinned or fail it again; each pin's status
    reaches the catalogue at once."""
    if not ctx.cluster_api:
        raise IPFSError("no IPFS Cluster is set (--cluster-api): there is nothing to recover")
    client = ctx.cluster_client()
    result = ctx.result = {"total": 0, "recovered": 0, "still_in_error": 0, "failed": 0, "error_details": []}
    ctx.log("Finding the pins in error...")
    with ctx.interruptible(client):
        cids = [obj.get("cid") for obj in client.stream("pins", RECOVER_FILTER, method="GET")]
    cids = sorted(set(cid for cid in cids if isinstance(cid, str) and cid))
    result["total"] = len(cids)
    ctx.set_total(len(cids))
    ctx.log("Found %d pins in error" % len(cids))
    conn = connect(ctx.db_path)
    try:
        for cid in cids:
            ctx.check()
            ctx.current_item = cid
            try:
                with ctx.interruptible(client):
                    answer = client.call("pins/%s/recover" % quote(cid, safe=""), method="POST")
                    answer, (wanted, pinned, _) = follow_cluster_pin(
                        ctx, client, cid, answer, time.monotonic() + RECOVER_TIMEOUT_S)
            except IPFSError as exc:
                ctx.check()
                if exc.transient:
                    raise
                result["failed"] += 1
                if len(result["error_details"]) < MAX_ERROR_DETAILS:
                    result["error_details"].append({"cid": cid, "error": str(exc)})
            else:
                record_cluster_status(conn, answer)
                result["recovered" if pinned >= wanted else "still_in_error"] += 1
            ctx.advance(1, cid)
    finally:
        conn.close()
    ctx.current_item = None
    result.pop("current", None)
    ctx.log("Recovery completed: %d recovered, %d still in error, %d failed"
            % (result["recovered"], result["still_in_error"], result["failed"]))
    return result


# ---------------------------------------------------------------------------
# The registry of task types
# ---------------------------------------------------------------------------

# The one place task types are described; the server, the command line and
# the pages (through /api/info) read it.
# run: the function; label, label_zh: its name for people (English, Chinese);
# unit: what progress counts ("items", "bytes" or "blocks"); single_flight: at
# most one active task of the type; retryable: whether a failed or cancelled
# one can be started again; group: an exclusive group, of which at most one
# task is active whatever its type (the database enforces both).
TaskType = collections.namedtuple("TaskType", "run label label_zh unit single_flight retryable group",
                                  defaults=(None,))

import tasks_pins  # noqa: E402  (its task functions use the client above)

TASK_TYPES = {
    "pin_sync": TaskType(run=sync_pins, label="Pin sync", label_zh="Pin 同步", unit="items",
                         single_flight=True, retryable=True, group="repository"),
    "file_upload": TaskType(run=upload_file, label="File upload", label_zh="文件上传", unit="bytes",
                            single_flight=False, retryable=False),
    "pin_add": TaskType(run=tasks_pins.add_pins, label="Pin add", label_zh="添加 Pin", unit="items",
                        single_flight=False, retryable=True),
    "pin_remove": TaskType(run=tasks_pins.remove_pins, label="Pin removal", label_zh="移除 Pin", unit="items",
                           single_flight=False, retryable=True),
    "repo_gc": TaskType(run=tasks_pins.collect_garbage, label="Garbage collection", label_zh="垃圾回收",
                        unit="blocks", single_flight=True, retryable=True, group="repository"),
    "pin_recover": TaskType(run=recover_pins, label="Pin recovery", label_zh="Pin 恢复", unit="items",
                            single_flight=True, retryable=True),
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
