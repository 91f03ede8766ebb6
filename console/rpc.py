"""The RPC clients: Kubo's RPC API (``IPFSClient``) and IPFS Cluster's REST
API (``ClusterClient``), over keep-alive connections, with retries of what
is transient. The worker and the server (the node overview, the cluster's
peers) both use them.
"""

import base64
import http.client
import json
import select
import socket
import threading
import time
from urllib.parse import quote, urlsplit

from console.framing import (MAX_LINE, AnswerReader, AnswerShapes, Buffered, IPFSError, StreamError, _parse_answers,
                             _plain, _query, _quoted, chunked_body, json_batches)

MAX_ANSWER = 1 << 24   # the largest answer ``call`` reads (its answers are small JSON values)
# Kubo's pin listing: recursive pins, streamed, with their names; then the
# direct pins the same way (type=all would walk every pinned DAG).
LIST_ARGS = [("type", "recursive"), ("stream", "true"), ("names", "true")]
DIRECT_LIST_ARGS = [("type", "direct"), ("stream", "true"), ("names", "true")]


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


def wait_while_sending(sock, sender):
    """Wait for the first byte of an answer for as long as ``sender`` (a
    thread) still sends the request's body: the node is reading it, however
    long that takes. Once it has sent it all, reading the answer times out
    as any read does."""
    while sender.is_alive():
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            return


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
                         transient=transient, status=status)

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
        before = "POST %s?arg=" % self._url(command, ())
        options = _query(params)
        after = ("&" + options if options else "") + " HTTP/1.1\r\n" + self._pipelined_headers()
        answers = self._pipeline("".join([before + _quoted(arg) + after for arg in args]), len(args))
        return _parse_answers(command, [body if status == 200 else self._error_for(
            command, status, body.decode("utf-8", "replace")) for status, body in answers])

    def _pipelined_headers(self):
        """What follows a pipelined request's first line: its headers, no body."""
        name = "[%s]" % self.host if ":" in self.host else self.host   # an IPv6 address
        host = name if self.port in (80, 443) else "%s:%d" % (name, self.port)
        lines = "".join("%s: %s\r\n" % item for item in self._headers.items())
        return "Host: %s\r\n%sContent-Length: 0\r\n\r\n" % (host, lines)

    def _pipeline(self, requests, count):
        """Send ``count`` requests in one write on the keep-alive connection;
        (status, body) of each answer, in order, fewer if the node closed the
        connection part-way. A broken connection raises a transient IPFSError."""
        answers = []
        try:
            self._connection()
            self._sock.sendall(requests.encode("latin-1"))
            reader = AnswerReader(self._sock, count, self._shapes)
            for _ in range(count):
                status, body, closing = reader.next()
                answers.append((status, body))
                if closing:
                    self.close()
                    break
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise self._unreachable(exc)
        return answers

    def stream(self, command, params=(), method="POST"):
        """A streaming command: yields each JSON object of the answer.

        The standard library drops HTTP trailers, where the node reports an
        error that happened after the 200 (X-Stream-Error), so the chunked
        encoding is read here: a stream ends cleanly only at its last chunk
        with no error trailer. Anything else raises IPFSError. Only the
        opening request is retried; a stream cut short is not resumed.
        """
        for batch in self.stream_batches(command, params, method):
            yield from batch

    def stream_batches(self, command, params=(), method="POST"):
        """Like ``stream``, but yields lists of objects as they arrive: much
        cheaper per object for listings of millions of pins."""
        return json_batches(command, self.stream_bytes(command, params, method))

    def stream_bytes(self, command, params=(), method="POST"):
        """The body of a streaming command as it arrives, in pieces of bytes,
        checked as ``stream`` checks it."""
        opened = self._retrying(lambda: self._open_stream(command, params, method))
        return self._read_stream(command, *opened)

    def _open_stream(self, command, params, method):
        """One attempt at a command with no body, sent and answered on the
        keep-alive socket as the pipelined calls are (http.client's parse of
        an answer's head costs more than a small pin takes the node).
        Returns (the socket's Buffered reader at the body, chunked, content
        length or None, closing) for a 200 or 204 answer."""
        request = "%s %s HTTP/1.1\r\n%s" % (method, self._url(command, params), self._pipelined_headers())
        try:
            self._connection()
            self._sock.sendall(request.encode("latin-1"))
            source = Buffered(self._sock.recv)
            status, chunked, length, closing = source.head()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise self._unreachable(exc)
        if status in (200, 204):
            return source, chunked, 0 if status == 204 else length, closing
        text = b""
        try:     # the node's message; the status alone if it cannot be read
            for piece in source.body(chunked, length):
                text += piece
                if len(text) > MAX_LINE:
                    closing = True      # the rest is not read
                    break
            closing = closing or not chunked and length is None
        except StreamError as exc:
            text, closing = exc.reported, True
        except (OSError, http.client.HTTPException, ValueError):
            text, closing = b"", True
        if closing or source.pos != len(source.buf):
            self.close()
        raise self._error_for(command, status, text[:MAX_LINE].decode("utf-8", "replace"))

    def _read_stream(self, command, source, chunked, length, closing):
        """The body _open_stream reached, piece by piece; the connection is
        kept for the next call only if the answer was read exactly to its end."""
        reusable = False
        try:
            yield from source.body(chunked, length)
            reusable = not closing and (chunked or length is not None) and source.pos == len(source.buf)
        except (OSError, http.client.HTTPException) as exc:
            raise self._broke_off(command, exc)
        finally:
            if not reusable or self.stopped:
                self.close()

    def upload(self, command, params, chunks, length, content_type):
        """Send a large body while reading the streamed answer; yields its objects.

        The body goes out on a thread of its own, because a node that reports
        progress while it reads (add?progress=true) would otherwise stall once
        its unread progress lines fill the socket buffers. A node may also
        answer only once it has read the whole body (dag/import): the time-out
        counts only from the body's end. Not retried: the body cannot be sent
        twice.
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
                wait_while_sending(sock, sender)
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

    # -- the pins: the node's, or (ClusterClient) the cluster's -------------------

    LISTING = "pin/ls"

    def pin_listing(self):
        """The listing of every recursive and direct pin, as bytes in pieces (see ``stream_bytes``)."""
        for args in (LIST_ARGS, DIRECT_LIST_ARGS):
            yield from self.stream_bytes("pin/ls", args)
            yield b"\n"

    def unpin(self, cid):
        """Unpin ``cid``: True if this did it, False if it was not pinned (an
        answer lost on the way and the request sent again, or someone else
        unpinned it first: either way it is not pinned now, as asked)."""
        try:
            self.call("pin/rm", [("arg", cid)])
        except IPFSError as exc:
            if "not pinned" in str(exc) and not exc.transient:
                return False
            raise
        return True

    def _read_body(self, command, resp):
        """A streamed answer's body, piece by piece.

        A chunked answer read to its end, trailers and all, leaves the
        connection where the next request can follow (keep-alive): only the
        answer's file is closed, which http.client takes for the answer's
        end. Anything else (an error, a stream left half-read, an answer
        that ends with the connection) closes the connection.
        """
        reusable = False
        try:
            if resp.chunked:
                source = Buffered(resp.fp.read1)
                yield from chunked_body(source)
                reusable = not resp.will_close and source.pos == len(source.buf)
            else:
                yield from _plain(resp)
        except (OSError, http.client.HTTPException) as exc:
            raise self._broke_off(command, exc)
        finally:
            # The response was read past http.client's bookkeeping.
            if reusable and not self.stopped:
                resp.close()
            else:
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
    LISTING = "pins"

    def pin_listing(self):
        """Every pin's GlobalPinInfo, each peer's status with it."""
        return self.stream_bytes("pins", method="GET")

    def unpin(self, cid):
        """As IPFSClient.unpin, through the cluster: a pin it does not know answers 404."""
        try:
            self.call("pins/" + quote(cid, safe=""), method="DELETE")
        except IPFSError as exc:
            if exc.status == 404 or "not found" in str(exc).lower() or "not pinned" in str(exc):
                return False
            raise
        return True
