"""HTTP framing for the RPC clients: chunked streams with their error
trailers, pipelined answers read back from large reads, newline-delimited
JSON, and the query strings of the RPC API. The standard library's
``http.client`` does the rest.
"""

import http.client
import json
import re
import select
import socket
from urllib.parse import quote_plus


class IPFSError(Exception):
    """A call to the node failed; ``transient`` if trying again may help;
    ``status``: the HTTP status of the node's error answer, if it gave one."""

    def __init__(self, message, transient=False, status=None):
        super().__init__(message)
        self.transient = transient
        self.status = status


class StreamError(IPFSError):
    """The node reported an error after its answer had begun (X-Stream-Error)."""

    def __init__(self, reported):
        super().__init__("the IPFS node reported an error mid-stream: %s" % reported.decode("utf-8", "replace"))
        self.reported = reported


MAX_LINE = 1 << 20
MAX_CHUNK = 1 << 24


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

    def head(self):
        """(status, chunked, content length or None, closing) of the next answer, read past its head."""
        while True:
            end = self.buf.find(b"\r\n\r\n", self.pos)
            if end >= 0:
                break
            if len(self.buf) - self.pos > 65536:
                raise http.client.LineTooLong("an answer's head")
            self.more(started=self.pos < len(self.buf))
        head = self.buf[self.pos:end]
        self.pos = end + 4
        return _framing(head)

    def body(self, chunked, length):
        """The body of the answer whose head ``head`` read, in pieces: chunked,
        ``length`` bytes, or (neither) to the end of the connection."""
        if chunked:
            return chunked_body(self)
        if length is not None:
            return iter([self.take(length)] if length else [])
        return self.to_the_end()

    def to_the_end(self):
        """A body that runs to the end of the connection, in pieces."""
        if self.pos < len(self.buf):
            yield self.buf[self.pos:]
        self.buf, self.pos = b"", 0
        while True:
            data = self.read(1 << 16)
            if not data:
                return
            yield data


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
        status, chunked, length, closing = self.head()
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
