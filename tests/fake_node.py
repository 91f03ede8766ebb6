"""A programmable stand-in for the node's RPC API, for in-process sync tests.

It answers what a sync asks (pin/ls streamed, files/stat, block/stat) from a
dict of pins, over HTTP/1.1 keep-alive with pipelining, and counts every
look-up, so that a test can say exactly which pins were looked up and how
often. What it serves is set per test: pins with or without names, pins that
are not UnixFS (files/stat fails, block/stat answers), pins whose block is
missing (both fail), IPFS Cluster's listing of pins (GET /pins), raw listing lines, a listing cut short, slow look-ups,
look-ups answered with raw bytes (garbage) or an HTTP error status, and a
listing that pauses half-way.
The real-node tests (Kubo) stay the proof that the worker speaks to a node.
"""

import collections
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class FakeNode(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        self.pins = {}                 # cid -> {"Type": ..., "Name": ...} (Name optional)
        self.sizes = {}                # cid -> CumulativeSize
        self.local_sizes = {}          # cid -> SizeLocal (files/stat with-local); else all of it is local
        self.not_unixfs = {}           # cid -> the root block's size (block/stat)
        self.missing = set()           # cids whose block is not there: both look-ups fail
        self.extra_lines = []          # raw lines appended to the listing
        self.cut_listings = 0          # the next N listings end without their last chunk
        self.lookup_delay = 0.0        # seconds each files/stat takes
        self.lookup_garbage = None     # raw bytes that answer every files/stat, then the connection closes
        self.lookup_status = None      # an HTTP status that answers every files/stat (503: try again)
        self.listing_pause = 0.0       # seconds the listing stops half-way
        self.lookups = collections.Counter()   # (command, cid) -> calls
        self.calls = collections.Counter()     # command (repo/stat: with its size-only flag) -> calls
        self.listings = 0
        self.have = set()              # blocks pin/add finds; any other CID is "not found locally"
        self.pin_delay = {}            # cid -> seconds pin/add takes, sending progress meanwhile
        self.blocks = {}               # cid -> blocks in its DAG (1 if not given): pin/add's last progress
        self.cut_short = set()         # CIDs whose pin/add answer ends before its Pins object (no pin made)
        self.pin_errors = {}           # cid -> the error pin/add answers (after dropping a pin it had)
        self.pin_calls = collections.Counter()   # cid -> pin/add calls
        self.garbage = []              # CIDs the next repo/gc removes
        self.repo_size = 100000
        self.connections = 0           # connections the node accepted
        self.pinning = 0               # pin/add answers under way now
        self.most_pinning = 0          # the most there were at once
        self.requests = []             # (command, arg) of every request, in the order they came
        self.cluster = {}              # cid -> IPFS Cluster's GlobalPinInfo, listed by GET /pins
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), FakeNodeHandler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def add(self, cid, size, name=None, kind="recursive"):
        self.pins[cid] = {"Type": kind} if name is None else {"Type": kind, "Name": name}
        self.sizes[cid] = size

    def close(self):
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address):
        """A sync that stopped mid-answer hangs up: routine, not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeNodeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *args):
        pass

    def do_POST(self):
        parts = urlsplit(self.path)
        command = parts.path[len("/api/v0/"):]
        args = {key: values[0] for key, values in parse_qs(parts.query).items()}
        node = self.server
        with node.lock:
            node.calls[command + ("?size-only" if args.get("size-only") == "true" else "")] += 1
            node.requests.append((command, args.get("arg")))
        if command == "pin/ls" and "arg" in args:
            entry = node.pins.get(args["arg"])
            if entry is None or entry.get("Type", "recursive") != args.get("type", "recursive"):
                self.answer({"Message": "path '%s' is not pinned" % args["arg"], "Code": 0, "Type": "error"}, 500)
            else:
                self.answer({"Keys": {args["arg"]: {"Type": entry.get("Type", "recursive"),
                                                    "Name": entry.get("Name", "")}}})
        elif command == "pin/ls":
            self.listing(node, args.get("type", "all"))
        elif command == "files/stat":
            cid = args.get("arg", "")[len("/ipfs/"):]
            with node.lock:
                node.lookups["files/stat", cid] += 1
            limit = float(args["timeout"].rstrip("s")) if args.get("timeout", "").endswith("s") else None
            if node.lookup_delay:
                time.sleep(min(node.lookup_delay, limit or node.lookup_delay))
            if limit is not None and node.lookup_delay > limit:
                self.answer({"Message": "context deadline exceeded", "Code": 0, "Type": "error"}, 500)
            elif node.lookup_garbage is not None:
                self.wfile.write(node.lookup_garbage)
                self.wfile.flush()
                self.close_connection = True
            elif node.lookup_status is not None:
                self.answer({"Message": "the node is busy", "Code": 0, "Type": "error"}, node.lookup_status)
            elif cid in node.missing:
                self.answer({"Message": "block was not found locally (offline)", "Code": 0, "Type": "error"}, 500)
            elif cid in node.not_unixfs:
                self.answer({"Message": "not unixfs node (proto: can't skip unknown wire type 6)", "Code": 0,
                             "Type": "error"}, 500)
            else:
                # A block the node has is the size pinning it records, pinned or not yet (a CID's size is its own).
                size = node.sizes.get(cid, 100 + len(cid) if cid in node.have else 1)
                stat = {"Hash": cid, "CumulativeSize": size, "Type": "file"}
                if args.get("with-local") == "true":
                    stat.update(WithLocality=True, SizeLocal=node.local_sizes.get(cid, stat["CumulativeSize"]))
                self.answer(stat)
        elif command == "pin/add":
            self.pin_add(node, args)
        elif command == "pin/rm":
            cid = args.get("arg", "")
            if node.pins.pop(cid, None) is None:
                self.answer({"Message": "not pinned or pinned indirectly", "Code": 0, "Type": "error"}, 500)
            else:
                self.answer({"Pins": [cid]})
        elif command == "repo/gc":
            removed, node.garbage = node.garbage, []
            node.repo_size -= 1000 * len(removed)
            self.stream([{"Key": {"/": cid}} for cid in removed])
        elif command == "repo/stat":
            self.answer({"RepoSize": node.repo_size, "StorageMax": 10 ** 10, "NumObjects": len(node.pins),
                         "RepoPath": "/fake", "Version": "fs-repo@18"})
        elif command == "id":
            self.answer({"ID": "12D3KooWFake", "AgentVersion": "kubo/0.43.1", "Addresses": []})
        elif command == "swarm/peers":
            self.answer({"Peers": None})
        elif command == "config":
            self.answer({"Key": args.get("arg"), "Value": "/ip4/127.0.0.1/tcp/8080"})
        elif command == "block/stat":
            cid = args.get("arg", "")
            with node.lock:
                node.lookups["block/stat", cid] += 1
            if cid in node.not_unixfs:
                self.answer({"Key": cid, "Size": node.not_unixfs[cid]})
            else:
                self.answer({"Message": "block was not found locally (offline)", "Code": 0, "Type": "error"}, 500)
        else:
            self.answer({"Message": "unknown command", "Code": 0, "Type": "error"}, 404)

    def do_GET(self):
        """IPFS Cluster's REST API, its listing only: GET /pins (a GlobalPinInfo
        a line, for the pins of ``cluster``) and GET /peers (none)."""
        path = urlsplit(self.path).path
        node = self.server
        with node.lock:
            node.requests.append(("GET " + path, None))
            node.listings += path == "/pins"
            objects = [dict(info, cid=cid) for cid, info in node.cluster.items()] if path == "/pins" else []
        if path in ("/pins", "/peers"):
            self.stream(objects)
        else:
            self.answer({"message": "not found", "code": 404}, 404)

    def answer(self, value, status=200):
        body = json.dumps(value).encode() + b"\n"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def pin_add(self, node, args):
        cid = args.get("arg", "")
        with node.lock:
            node.pin_calls[cid] += 1
        if cid not in node.have:
            self.answer({"Message": "pin: block was not found locally (offline): ipld: could not find %s" % cid,
                         "Code": 0, "Type": "error"}, 500)
            return
        steps = int(node.pin_delay.get(cid, 0) / 0.05)
        with node.lock:
            # As Kubo's pinner does: a CID pinned already loses its pin first, and gets
            # it back (with the new name) once its DAG is walked; an answer cut short
            # meanwhile leaves it unpinned.
            if node.pins.get(cid, {}).get("Type", "recursive") == "recursive":
                node.pins.pop(cid, None)
        if cid in node.cut_short:
            self.stream([{"Progress": 0}], delay=0.05)
            return
        if cid in node.pin_errors:
            self.answer({"Message": node.pin_errors[cid], "Code": 0, "Type": "error"}, 500)
            return
        # As Kubo ends it (with progress): the blocks walked and their bytes, then the pin.
        walked = {"Progress": node.blocks.get(cid, 1), "Bytes": node.sizes.get(cid, 100 + len(cid))}
        lines = [{"Progress": step} for step in range(steps)] + [walked] * (args.get("progress") == "true")
        lines.append({"Pins": [cid]})
        with node.lock:
            node.pinning += 1
            node.most_pinning = max(node.most_pinning, node.pinning)
        try:
            self.stream(lines, delay=0.05, then=lambda: node.add(cid, walked["Bytes"], args.get("name")))
        finally:
            with node.lock:
                node.pinning -= 1

    def stream(self, objects, delay=0.0, then=None):
        """A streamed answer, one chunk a line, ``delay`` seconds apart."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Chunked-Output", "1")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for index, obj in enumerate(objects):
                if index == len(objects) - 1 and then is not None:
                    then()
                line = json.dumps(obj).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                if delay and index < len(objects) - 1:
                    time.sleep(delay)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:      # the client went away (a cancelled task)
            self.close_connection = True

    def listing(self, node, kind):
        """The pins of type ``kind`` (an entry without a Type is recursive); the
        counts, cuts, pauses and raw extra lines are the recursive listing's."""
        recursive = kind == "recursive"
        with node.lock:
            node.listings += recursive
            cut = recursive and node.cut_listings > 0
            node.cut_listings -= cut
        lines = [json.dumps(dict(entry, Cid=cid)).encode() + b"\n" for cid, entry in node.pins.items()
                 if kind == "all" or entry.get("Type", "recursive") == kind]
        lines += node.extra_lines if recursive else []
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Chunked-Output", "1")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "X-Stream-Error")
        if cut:
            self.send_header("Connection", "close")
        self.end_headers()
        for index, line in enumerate(lines):
            if index == len(lines) // 2:
                self.wfile.flush()
                if cut:
                    self.close_connection = True
                    return
                time.sleep(node.listing_pause if recursive else 0)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self.wfile.write(b"0\r\n\r\n")
