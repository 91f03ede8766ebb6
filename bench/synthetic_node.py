#!/usr/bin/env python3
"""A synthetic IPFS node for the benchmark: NOT an IPFS implementation.

    python3 bench/synthetic_node.py --pins N [--port 0] [--seed S]

It answers the subset of the Kubo RPC API that IPFSMaster's worker uses, with
generated data, fast enough that timing a sync against it measures IPFSMaster
rather than the node:

- ``pin/ls?type=recursive&stream=true``: N recursive pins (and no direct pins), one JSON object a
  line, one HTTP chunk per line (as Kubo, whose go-ipfs-cmds flushes after
  every object), ``X-Chunked-Output: 1`` and ``Trailer: X-Stream-Error``.
  The CIDs are CIDv0-like (``Qm`` + 44 base58 characters), derived from the
  pin's number and the seed: the same N and seed always list the same pins.
- ``files/stat?arg=/ipfs/CID``: ``{"Hash", "Size", "CumulativeSize", "Blocks",
  "Type"}``, the size derived from the CID. One pin in 1000 is "not UnixFS":
  files/stat answers Kubo's 500 error and ``block/stat?arg=CID`` gives
  ``{"Key", "Size"}``.
- ``add?progress=true``: reads a streamed multipart body (Content-Length),
  hashes the file's bytes with sha256 and answers ``{"Name", "Bytes"}``
  progress lines while it reads, then ``{"Name", "Hash", "Size"}`` with a
  fake CID made from the hash. Nothing is stored.
- ``version`` and ``id``.
- With ``--cluster``, also IPFS Cluster's REST API on the same port:
  ``GET /pins`` streams a GlobalPinInfo a line for each pin (two peers, both
  "pinned", as a healthy cluster of two answers), and ``GET /peers`` the two
  peers. The same process then stands for the cluster and the local Kubo.
  ``POST /bench/change-pin`` (the benchmark's, not the cluster's) flips
  one pin's second peer between "pinned" and "pin_error".

Every answer leaves in ONE write (headers and body together) over HTTP/1.1
keep-alive: with separate small writes, Nagle's algorithm meeting delayed ACKs
can stall each answer by about 40 ms. One asyncio event loop, no threads.
It prints ``listening on http://127.0.0.1:PORT`` once it is ready and runs
until SIGTERM or SIGINT. The correctness of the worker against a real node is
proved by the test suite (tests/), not here.
"""

import argparse
import asyncio
import hashlib
import json
import signal
import socket
import sys
import zlib
from urllib.parse import parse_qsl, unquote, urlsplit

BASE58 = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Byte value -> a base58 character: turns hash bytes into CID-like text.
TO_BASE58 = bytes(BASE58[value % 58] for value in range(256))
PIECE_PINS = 2000        # pin lines per write of the listing
PROGRESS_EVERY = 256 * 1024
MAX_HEAD = 64 * 1024


def fake_cid(data):
    """'Qm' + 44 base58 characters derived from ``data``."""
    return b"Qm" + hashlib.sha512(data).digest()[:44].translate(TO_BASE58)


def pin_cid(seed, number):
    return fake_cid(b"%s/%d" % (seed, number))


def is_unixfs(cid):
    return zlib.crc32(cid) % 1000 != 0


def cumulative_size(cid):
    """A plausible size: mostly small files, some large ones."""
    h = zlib.crc32(cid, 0x5eed)
    return 1 + (h % 4096) * (1 << (h >> 28)) * 61


CLUSTER_PEERS = [("12D3KooWSynthPeerA%034d" % 0, "peer-0"), ("12D3KooWSynthPeerB%034d" % 0, "peer-1")]


def build_cluster_listing(count, seed, changed=None):
    """The cluster's GET /pins stream's body as chunked-encoding pieces.
    ``changed``: {pin number: how many times its second peer's status has
    changed}; an odd count shows that peer failing the pin."""
    changed = changed or {}
    return [cluster_piece(start, count, seed, changed) for start in range(0, count, PIECE_PINS)]


def cluster_piece(start, count, seed, changed):
    """The chunks of pins ``start`` to ``start + PIECE_PINS`` of the cluster's listing."""
    allocations = json.dumps([peer for peer, _ in CLUSTER_PEERS]).encode()

    def peer_map(failing):
        return b",".join(
            b'"%s":{"peername":"%s","ipfs_peer_id":"12D3KooWSynthKubo%s","status":"%s",'
            b'"timestamp":"2026-11-30T12:00:00Z","error":"%s","attempt_count":0,"priority_pin":false}'
            % (peer.encode(), name.encode(), name.encode(), b"pin_error" if failing and n else b"pinned",
               b"synthetic failure" if failing and n else b"") for n, (peer, name) in enumerate(CLUSTER_PEERS))

    healthy = peer_map(False)
    lines = []
    for number in range(start, min(count, start + PIECE_PINS)):
        line = (b'{"cid":"%s","name":"","allocations":%s,"origins":[],"created":"2026-11-30T12:00:00Z",'
                b'"metadata":null,"peer_map":{%s}}\n' % (pin_cid(seed, number), allocations,
                                                         peer_map(True) if changed.get(number, 0) % 2 else healthy))
        lines.append(b"%x\r\n%s\r\n" % (len(line), line))
    return b"".join(lines)


def build_listing(count, seed):
    """The pin/ls stream's body as chunked-encoding pieces, PIECE_PINS lines each."""
    pieces = []
    for start in range(0, count, PIECE_PINS):
        lines = []
        for number in range(start, min(count, start + PIECE_PINS)):
            line = b'{"Cid":"%s","Type":"recursive"}\n' % pin_cid(seed, number)
            lines.append(b"%x\r\n%s\r\n" % (len(line), line))
        pieces.append(b"".join(lines))
    return pieces


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------

STATUS = {200: b"200 OK", 400: b"400 Bad Request", 404: b"404 Not Found", 405: b"405 Method Not Allowed",
          500: b"500 Internal Server Error"}
COMMON_HEADERS = (b"Access-Control-Allow-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\n"
                  b"Access-Control-Expose-Headers: X-Stream-Output, X-Chunked-Output, X-Content-Length\r\n"
                  b"Server: synthetic-node (IPFSMaster benchmark)\r\nVary: Origin\r\n")


def head(status=200, stream=False, close=False, content_type=b"application/json"):
    return (b"HTTP/1.1 %s\r\n%sContent-Type: %s\r\nTrailer: X-Stream-Error\r\n%s%s"
            b"Transfer-Encoding: chunked\r\n\r\n"
            % (STATUS[status], COMMON_HEADERS, content_type, b"X-Chunked-Output: 1\r\n" if stream else b"",
               b"Connection: close\r\n" if close else b""))


def chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


LAST_CHUNK = b"0\r\n\r\n"


def json_line(value):
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def json_answer(value, status=200, close=False):
    """A whole single-value answer, like Kubo's: chunked, the value and a newline."""
    return head(status, close=close) + chunk(json_line(value)) + LAST_CHUNK


def error_answer(message, status=500, close=False):
    return json_answer({"Message": message, "Code": 1 if status == 400 else 0, "Type": "error"}, status, close)


def plain_answer(status, text, extra=b""):
    body = text.encode()
    return (b"HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\n%sContent-Length: %d\r\n\r\n%s"
            % (STATUS[status], extra, len(body), body))


class NodeProtocol(asyncio.Protocol):
    """One client connection: requests one after the other (no pipelining
    while a stream is being sent), keep-alive unless asked to close."""

    def __init__(self, node):
        self.node = node
        self.transport = None
        self.buffer = b""
        self.body = None        # an AddBody while an add's body arrives
        self.streaming = None   # the rest of a pin/ls answer while it is sent
        self.can_write = asyncio.Event()
        self.can_write.set()
        self.close_after = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc):
        self.can_write.set()
        self.streaming = None

    def pause_writing(self):
        self.can_write.clear()

    def resume_writing(self):
        self.can_write.set()

    def data_received(self, data):
        if self.body is not None:
            data = self.body.feed(data)
            if self.body is not None or not data:
                return
        self.buffer += data
        self.handle_requests()

    def handle_requests(self):
        while self.streaming is None and self.body is None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    self.transport.write(plain_answer(400, "request header too large", b"Connection: close\r\n"))
                    self.transport.close()
                return
            raw, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            self.handle(raw)

    def handle(self, raw):
        lines = raw.split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            self.transport.write(plain_answer(400, "malformed request line", b"Connection: close\r\n"))
            self.transport.close()
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        self.close_after = (version == "HTTP/1.0" or headers.get(b"connection", b"").lower() == b"close")
        length = int(headers.get(b"content-length", b"0") or 0)
        parts = urlsplit(target)
        command = parts.path[len("/api/v0/"):] if parts.path.startswith("/api/v0/") else None
        if method == "POST" and self.node.cluster_listing is not None and parts.path == "/bench/change-pin":
            # Not IPFS Cluster's: the benchmark's way to change one pin's status.
            self.skip_body(length)
            self.reply(json_answer({"changed": self.node.change_pin()}))
            return
        if method == "GET" and self.node.cluster_listing is not None and parts.path in ("/pins", "/peers"):
            self.skip_body(length)
            if parts.path == "/pins":
                self.streaming = asyncio.ensure_future(self.send_listing(self.node.cluster_listing))
            else:
                self.reply(head(stream=True, close=self.close_after) + b"".join(
                    chunk(json_line({"id": peer, "peername": name, "version": "1.0.8", "error": "",
                                     "ipfs": {"id": "12D3KooWSynthKubo" + name, "error": ""}}))
                    for peer, name in CLUSTER_PEERS) + LAST_CHUNK)
            return
        if method != "POST":
            self.skip_body(length)
            self.reply(plain_answer(405, "405 - Method Not Allowed", b"Allow: POST\r\n"))
            return
        if command == "add":
            self.start_add(parts.query, headers, length)
            return
        self.skip_body(length)
        handler = COMMANDS.get(command)
        if handler is None:
            self.reply(plain_answer(404, "404 page not found"))
            return
        handler(self, dict(parse_qsl(parts.query, keep_blank_values=True)))

    def skip_body(self, length):
        # The worker sends no body but to add; a small one is dropped here.
        self.buffer = self.buffer[length:]

    def reply(self, answer):
        self.transport.write(answer)
        if self.close_after:
            self.transport.close()

    # -- commands ------------------------------------------------------------

    def pin_ls(self, args):
        if args.get("type", "all") not in ("recursive", "direct") or args.get("stream") != "true":
            # Only the calls the worker makes are generated; say so plainly.
            self.reply(error_answer("the synthetic node lists only type=recursive|direct&stream=true", 400))
            return
        pins = self.node.listing if args["type"] == "recursive" else []    # it has no direct pins
        self.streaming = asyncio.ensure_future(self.send_listing(pins))

    async def send_listing(self, pieces):
        first = pieces[0] if pieces else b""
        self.transport.write(head(stream=True, close=self.close_after) + first)
        for piece in pieces[1:]:
            await self.can_write.wait()
            if self.transport.is_closing():
                return
            self.transport.write(piece)
        await self.can_write.wait()
        self.streaming = None
        self.reply(LAST_CHUNK)
        if self.buffer:
            self.handle_requests()

    def files_stat(self, args):
        path = args.get("arg", "")
        if not path.startswith("/ipfs/") or len(path) < 8:
            self.reply(error_answer("invalid path %r" % path, 400))
            return
        cid = path[6:].split("/")[0].encode()
        if not is_unixfs(cid):
            self.reply(error_answer("not unixfs node (proto: can't skip unknown wire type 6)", 500))
            return
        size = cumulative_size(cid)
        self.reply(json_answer({"Hash": cid.decode(), "Size": max(0, size - 11 * (1 + size // 262144)),
                                "CumulativeSize": size, "Blocks": size // 262144, "Type": "file"}))

    def block_stat(self, args):
        cid = args.get("arg", "")
        if not cid:
            self.reply(error_answer("argument \"cid\" is required", 400))
            return
        self.reply(json_answer({"Key": cid, "Size": cumulative_size(cid.encode()) % 262144 + 1}))

    def version(self, args):
        self.reply(json_answer({"Version": "0.29.0-synthetic", "Commit": "", "Repo": "15",
                                "System": "amd64/linux", "Golang": "n/a"}))

    def ident(self, args):
        self.reply(json_answer({"ID": "12D3KooWSyntheticNodeForIPFSMasterBenchmark", "PublicKey": "",
                                "Addresses": [], "AgentVersion": "synthetic-node", "Protocols": []}))

    def start_add(self, query, headers, length):
        args = dict(parse_qsl(query, keep_blank_values=True))
        kind, _, rest = headers.get(b"content-type", b"").partition(b";")
        boundary = b""
        for item in rest.split(b";"):
            key, _, value = item.strip().partition(b"=")
            if key.lower() == b"boundary":
                boundary = value.strip(b'"')
        if kind.strip().lower() != b"multipart/form-data" or not boundary or not length:
            self.skip_body(length)
            self.reply(error_answer("add needs a multipart/form-data body with a Content-Length", 400))
            return
        self.body = AddBody(self, boundary, length, args.get("progress") == "true")
        data, self.buffer = self.buffer, b""
        if data:
            self.data_received(data)

    def add_done(self, name, digest, size, rest):
        self.body = None
        self.buffer = rest
        if name is None:
            self.reply(error_answer("the multipart body is malformed", 400))
        else:
            cid = fake_cid(digest).decode()
            dag_size = size + 14 * (1 + size // 262144)
            self.reply(self.add_head_once() + chunk(json_line({"Name": name, "Hash": cid, "Size": str(dag_size)}))
                       + LAST_CHUNK)
        if self.buffer:
            self.handle_requests()

    def add_head_once(self):
        sent, self.add_head_sent = getattr(self, "add_head_sent", False), True
        return b"" if sent else head(stream=True, close=self.close_after)

    def add_progress(self, name, total):
        self.transport.write(self.add_head_once() + chunk(json_line({"Name": name, "Bytes": total})))


class AddBody:
    """A multipart body read as it arrives: the first part's bytes are hashed
    up to the next delimiter; progress is reported every PROGRESS_EVERY bytes."""

    def __init__(self, protocol, boundary, length, progress):
        self.protocol = protocol
        self.delimiter = b"\r\n--" + boundary
        self.remaining = length
        self.progress = progress
        self.pending = b"\r\n"   # lets the first boundary match the delimiter
        self.state = "preamble"
        self.name = None
        self.hash = hashlib.sha256()
        self.size = 0
        self.reported = 0
        protocol.add_head_sent = False

    def feed(self, data):
        """Consume body bytes; returns whatever follows the body."""
        body, rest = data[:self.remaining], data[self.remaining:]
        self.remaining -= len(body)
        self.pending += body
        if self.state == "preamble":
            start = self.pending.find(self.delimiter)
            end = self.pending.find(b"\r\n\r\n", start + 2) if start >= 0 else -1
            if end >= 0:
                disposition = self.pending[start:end].decode("utf-8", "replace")
                self.name = "file"
                for item in disposition.split(";"):
                    key, _, value = item.strip().partition("=")
                    if key == "filename":
                        self.name = unquote(value.strip('"'))
                self.pending = self.pending[end + 4:]
                self.state = "file"
        if self.state == "file":
            end = self.pending.find(self.delimiter)
            if end >= 0:
                self.take(self.pending[:end])
                self.pending = b""
                self.state = "epilogue"
            elif len(self.pending) > len(self.delimiter):
                keep = len(self.delimiter)
                self.take(self.pending[:-keep])
                self.pending = self.pending[-keep:]
        if self.state == "epilogue":
            self.pending = b""
        if self.remaining == 0:
            name = self.name if self.state == "epilogue" else None
            self.protocol.add_done(name, self.hash.digest(), self.size, rest)
            return b""
        return rest

    def take(self, data):
        self.hash.update(data)
        self.size += len(data)
        if self.progress and self.size - self.reported >= PROGRESS_EVERY:
            self.reported = self.size
            self.protocol.add_progress(self.name, self.size)


COMMANDS = {
    "pin/ls": NodeProtocol.pin_ls,
    "files/stat": NodeProtocol.files_stat,
    "block/stat": NodeProtocol.block_stat,
    "version": NodeProtocol.version,
    "id": NodeProtocol.ident,
}


# ---------------------------------------------------------------------------
# Running it
# ---------------------------------------------------------------------------

class SyntheticNode:
    def __init__(self, pins, seed, cluster=False):
        self.listing = build_listing(pins, seed)
        self.cluster_listing = build_cluster_listing(pins, seed) if cluster else None
        self.pins, self.seed, self.changed = pins, seed, {}

    def change_pin(self):
        """Flip the status of the second peer of one pin, in the middle of the
        listing (failing, then pinned again); returns its number."""
        number = self.pins // 2
        self.changed[number] = self.changed.get(number, 0) + 1
        start = number - number % PIECE_PINS
        self.cluster_listing[start // PIECE_PINS] = cluster_piece(start, self.pins, self.seed, self.changed)
        return number


async def serve(node, host, port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: NodeProtocol(node), host, port, backlog=512)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("listening on http://%s:%d" % server.sockets[0].getsockname()[:2], flush=True)
    async with server:
        await stop.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description="A synthetic IPFS node for the IPFSMaster benchmark.")
    parser.add_argument("--pins", type=int, default=1000, help="how many recursive pins pin/ls lists")
    parser.add_argument("--seed", default="ipfsmaster-bench", help="the pins depend on it (and on their number)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--cluster", action="store_true", help="answer IPFS Cluster's GET /pins and /peers too")
    args = parser.parse_args(argv)
    node = SyntheticNode(args.pins, args.seed.encode(), args.cluster)
    asyncio.run(serve(node, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
