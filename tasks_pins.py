"""Acting on the node's pins: the pin_add, pin_remove and repo_gc tasks, the
CID check and pin-list spooling the server uses before it starts them, and
the node's overview (``GET /api/node``) with its gateway address.

The task functions receive a ``worker.TaskContext`` like every task type;
they are registered in ``worker.TASK_TYPES``, which imports this module:
import ``worker`` (or call ``ipfsmaster.pin_tasks()``) before it.
"""

import base64
import binascii
import json
import os
import re
import secrets
import threading
import time

import ipfsmaster
from ipfsmaster import connect, transaction
from urllib.parse import quote

from worker import (CLUSTER_ERROR_STATUSES, IPFSError, TaskStopped, cluster_pin_rows, follow_cluster_pin,
                    pin_size, record_cluster_status, store_pin)

MAX_ERROR_DETAILS = 10
MAX_INVALID_LINES = 100      # line numbers of lines that are not CIDs kept in a result
MAX_LINE_BYTES = 4096        # a longer line is not a CID and a name; it is skipped, never held
MAX_NAME = 255
DEFAULT_PIN_TIMEOUT_S = 600
MAX_PIN_TIMEOUT_S = 7 * 24 * 3600


# ---------------------------------------------------------------------------
# CIDs, checked with the standard library only
# ---------------------------------------------------------------------------

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BASE58_INDEX = {c: i for i, c in enumerate(BASE58)}
BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_CID_CHARS = 200


def base58_decode(text):
    number = 0
    for char in text:
        number = number * 58 + BASE58_INDEX[char]   # KeyError: not base58
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def base36_decode(text):
    number = int(text, 36)
    zeros = len(text) - len(text.lstrip("0"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def base32_decode(text):
    if not re.fullmatch(r"[a-z2-7]*", text):
        raise ValueError("not base32")
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


def read_varint(data, pos):
    """(value, next position) of an unsigned varint; ValueError if cut short or over 9 bytes."""
    value = shift = 0
    for index in range(pos, min(len(data), pos + 9)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    raise ValueError("a bad varint")


def valid_multihash(data, pos):
    _code, pos = read_varint(data, pos)
    length, pos = read_varint(data, pos)
    return 0 < length == len(data) - pos


# Multibase prefix -> decoder of the rest (https://github.com/multiformats/multibase).
MULTIBASES = {
    "b": base32_decode,
    "B": lambda text: base32_decode(text.lower()),
    "z": base58_decode,
    "f": lambda text: bytes.fromhex(text) if text == text.lower() else b"",
    "F": lambda text: bytes.fromhex(text) if text == text.upper() else b"",
    "k": lambda text: base36_decode(text) if text == text.lower() else b"",
    "K": lambda text: base36_decode(text.lower()) if text == text.upper() else b"",
}


def is_cid(text):
    """True if ``text`` is a CIDv0 (base58btc "Qm...") or a multibase CIDv1."""
    if not 2 < len(text) <= MAX_CID_CHARS or not text.isascii() or not text.isalnum():
        return False
    try:
        if len(text) == 46 and text.startswith("Qm"):
            data = base58_decode(text)
            return len(data) == 34 and data[:2] == b"\x12\x20"
        decode = MULTIBASES.get(text[0])
        if decode is None:
            return False
        data = decode(text[1:])
        version, pos = read_varint(data, 0)
        if version != 1:
            return False
        _codec, pos = read_varint(data, pos)
        return valid_multihash(data, pos)
    except (KeyError, ValueError, binascii.Error):
        return False


def parse_pin_line(line):
    """(cid, name) from one line of a pin list, '' for a blank or comment line,
    None for a line that is not a CID (optionally followed by whitespace and a name)."""
    if any(ord(char) < 32 and char != "\t" or ord(char) == 127 for char in line):
        return None
    text = line.strip()
    if not text or text.startswith("#"):
        return ""
    parts = text.split(None, 1)
    name = parts[1].strip() if len(parts) > 1 else ""
    if not is_cid(parts[0]) or len(name) > MAX_NAME:
        return None
    return parts[0], name


# ---------------------------------------------------------------------------
# Pin lists: checked and spooled by the server, read back by the worker
# ---------------------------------------------------------------------------

def pin_list_path(settings, token):
    """Where a pin_add task's list waits (shared by the task and its retries)."""
    if not re.fullmatch(r"[0-9a-f]{16,64}", token or ""):
        raise ValueError("not a pin list token")
    return os.path.join(settings.task_dir, "pins-%s.list" % token)


def undone_path(db_path, task_id):
    """The items a pin task failed or could not reach, for its retry."""
    return os.path.join(ipfsmaster.Settings(db=db_path).task_dir, "task-%d.undone" % int(task_id))


class PinListWriter:
    """Checks a pin list line by line as its bytes arrive and writes the valid
    lines, as ``CID<TAB>NAME``, to a file: a list of a million lines never
    sits in memory, and an overlong line is skipped as it streams by.

    ``name`` is given to every CID whose line has none.
    """

    def __init__(self, path, name=""):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.out = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self.name = name
        self.pending = b""
        self.skipping = False        # inside a line already known to be too long
        self.line_number = 0
        self.valid = 0
        self.invalid = 0
        self.invalid_lines = []

    def feed(self, data):
        *lines, self.pending = (self.pending + data).split(b"\n")
        for line in lines:
            self._line(line)
        if len(self.pending) > MAX_LINE_BYTES:
            if not self.skipping:
                self._count_invalid()
            self.skipping, self.pending = True, b""

    def _line(self, raw):
        if self.skipping:
            self.skipping = False      # the end of the long line, counted already
            return
        self.line_number += 1
        if len(raw) > MAX_LINE_BYTES:
            self._count_invalid(numbered=True)
            return
        try:
            parsed = parse_pin_line(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            parsed = None
        if parsed is None:
            self._count_invalid(numbered=True)
        elif parsed:
            self.valid += 1
            self.out.write("%s\t%s\n" % (parsed[0], parsed[1] or self.name))

    def _count_invalid(self, numbered=False):
        if not numbered:
            self.line_number += 1
        self.invalid += 1
        if len(self.invalid_lines) < MAX_INVALID_LINES:
            self.invalid_lines.append(self.line_number)

    def add_line(self, text):
        """One line given as text (an entry of a JSON list)."""
        self.feed(text.replace("\n", " ").encode("utf-8", "surrogatepass") + b"\n")

    def close(self):
        if self.pending or self.skipping:
            self.feed(b"\n")
        self.out.close()

    def summary(self):
        return {"valid": self.valid, "invalid": self.invalid, "invalid_lines": self.invalid_lines}


def new_pin_list(settings, name=""):
    """A PinListWriter into a new list file; returns (token, writer)."""
    os.makedirs(settings.task_dir, mode=0o700, exist_ok=True)
    token = secrets.token_hex(16)
    return token, PinListWriter(pin_list_path(settings, token), name)


def unreferenced_pin_lists(conn, settings, tokens):
    """The list files of ``tokens`` that no remaining task uses, for cleanup."""
    paths = []
    for token in set(tokens):
        used = conn.execute("SELECT 1 FROM background_tasks WHERE json_valid(params)"
                            " AND json_extract(params, '$.pin_list') = ? LIMIT 1", (token,)).fetchone()
        if not used:
            paths.append(pin_list_path(settings, token))
    return paths


# ---------------------------------------------------------------------------
# What pin tasks share: items in order, done once, and what a retry takes up
# ---------------------------------------------------------------------------

class PinItems:
    """The (cid, name) items of a pin task, each CID once, and the record of
    what is left for a retry.

    Items are numbered in input order; ``next_index`` (kept in the result)
    is the first one not yet finished. Items that failed go to the task's
    ``undone`` file as they fail. A retry takes, in order, the items its
    predecessor left in its ``undone`` file and then those from its
    ``next_index`` on: what was done is not done again.
    """

    def __init__(self, ctx, conn, source):
        self.ctx, self.conn, self.source = ctx, conn, source
        self.result = ctx.result
        path = undone_path(ctx.db_path, ctx.task_id)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        self.undone = open(path, "w", encoding="utf-8")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (cid TEXT PRIMARY KEY) WITHOUT ROWID")
        conn.execute("DELETE FROM seen")
        self.previous, self.start, self.old = ctx.retry_of, 0, None
        self.current_old, self.recorded = None, True
        if self.previous is not None:
            row = ipfsmaster.get_task(conn, self.previous)
            try:
                old = json.loads(row["result"] or "{}") if row is not None else {}
            except ValueError:
                old = {}
            self.start = int(old.get("next_index") or 0) if isinstance(old, dict) else 0
            self.old = self._undone_of(self.previous)

    def __iter__(self):
        """(cid, name) of each item to do; counts and skips duplicates."""
        result = self.result
        result["next_index"] = self.start
        if self.old is not None:
            for item in self.old:
                self.current_old, self.recorded = item, False
                yield from self._fresh(item)
            self.old = self.current_old = None
        for index, item in enumerate(self.source(self.start), self.start):
            result["next_index"] = index
            yield from self._fresh(item)
            result["next_index"] = index + 1

    def remaining(self, total):
        """How many items this run has: all of them, or what a predecessor left."""
        if self.previous is None:
            return total
        return sum(1 for _ in self._undone_of(self.previous)) + max(0, total - self.start)

    def _undone_of(self, task_id):
        try:
            with open(undone_path(self.ctx.db_path, task_id), encoding="utf-8") as f:
                for line in f:
                    cid, _, name = line.rstrip("\n").partition("\t")
                    yield cid, name
        except FileNotFoundError:
            return

    def _fresh(self, item):
        if self.conn.execute("INSERT OR IGNORE INTO seen (cid) VALUES (?)", (item[0],)).rowcount:
            yield item
        else:
            self.result["duplicates"] += 1
            self.ctx.advance(1)

    def done(self, cid):
        self.recorded = True
        self.result["done"] += 1
        self.ctx.advance(1, cid)

    def failed(self, cid, name, error):
        self.recorded = True
        self.result["failed"] += 1
        if len(self.result["error_details"]) < MAX_ERROR_DETAILS:
            self.result["error_details"].append({"cid": cid, "error": error})
        self.undone.write("%s\t%s\n" % (cid, name))
        self.undone.flush()
        self.ctx.log("Failed %s: %s" % (cid, error))
        self.ctx.advance(1, cid)

    def close(self):
        """Keep for a retry what a stop left of the predecessor's undone items."""
        if self.old is not None:
            if self.current_old is not None and not self.recorded:
                self.undone.write("%s\t%s\n" % self.current_old)
            for item in self.old:
                self.undone.write("%s\t%s\n" % item)
        self.undone.close()


def run_pin_task(ctx, source, total, act, verb):
    """The loop pin_add and pin_remove share: each item through ``act``."""
    conn = connect(ctx.db_path)
    ctx.result = dict({"done": 0, "failed": 0, "duplicates": 0, "error_details": [], "next_index": 0},
                      **ctx.result)
    items = PinItems(ctx, conn, source)
    ctx.set_total(items.remaining(total))
    started = time.monotonic()
    try:
        ctx.log("%s %d CIDs..." % (verb, total))
        for cid, name in items:
            ctx.check()
            ctx.current_item = cid
            error = act(conn, cid, name)
            ctx.check()
            if error is None:
                items.done(cid)
            else:
                items.failed(cid, name, error)
        ctx.current_item = None
        ctx.result.pop("current", None)
        ctx.log("%s: %d done, %d failed" % (verb.split()[0] + " completed", ctx.result["done"], ctx.result["failed"]))
        return ctx.result
    finally:
        ctx.result["duration_s"] = round(time.monotonic() - started, 3)
        items.close()
        conn.close()


# ---------------------------------------------------------------------------
# Task: pin_add
# ---------------------------------------------------------------------------

def add_pins(ctx):
    """Pin each CID of a spooled list (pin/add with progress and a timeout),
    and put it in the catalogue with its size as soon as it is pinned."""
    params = ctx.params
    path = pin_list_path(ipfsmaster.Settings(db=ctx.db_path), params.get("pin_list", ""))
    timeout_s = int(params.get("timeout_s") or DEFAULT_PIN_TIMEOUT_S)
    ctx.result = {"invalid": int(params.get("invalid", 0)), "invalid_lines": params.get("invalid_lines", [])}
    if not os.path.exists(path):
        raise IPFSError("the list of CIDs to pin is gone (%s)" % os.path.basename(path))

    def source(start):
        with open(path, encoding="utf-8") as f:
            for index, line in enumerate(f):
                if index >= start:
                    cid, _, name = line.rstrip("\n").partition("\t")
                    yield cid, name

    client = ctx.client(timeout=timeout_s + 30.0)
    if ctx.cluster_api:
        return run_pin_task(ctx, source, int(params.get("valid", 0)),
                            cluster_pinner(ctx, client, timeout_s), "Pinning through the cluster")

    def pin(conn, cid, name):
        args = [("arg", cid), ("progress", "true"), ("timeout", "%ds" % timeout_s)]
        if name:
            args.append(("name", name))
        ctx.result["current"] = {"cid": cid, "blocks": 0}
        client.stopped = False
        try:
            with ctx.interruptible(client):
                for obj in client.stream("pin/add", args):
                    if isinstance(obj, dict) and "Progress" in obj:
                        ctx.result["current"] = {"cid": cid, "blocks": obj["Progress"], "bytes": obj.get("Bytes")}
        except IPFSError as exc:
            if ctx.stopping:
                raise TaskStopped(ctx.stop_reason)
            if exc.transient:
                raise
            if "deadline exceeded" in str(exc):
                return "timed out after %d s (%s)" % (timeout_s, plain_error(exc))
            return plain_error(exc)
        size = pin_size(client, cid)
        store_pin(conn, cid, name, size if isinstance(size, int) else None, rename=bool(name))
        return None

    return run_pin_task(ctx, source, int(params.get("valid", 0)), pin, "Pinning")


def cluster_pinner(ctx, client, timeout_s):
    """Pin through IPFS Cluster: the cluster places each pin (with the
    task's replication factors, if given), and the task follows it until
    every peer it is allocated to has pinned it, one fails it, or the
    timeout runs out. ``client`` is the local Kubo, for the pin's size."""
    cluster = ctx.cluster_client()
    factors = [(option.replace("_", "-"), ctx.params[option])
               for option in ("replication_min", "replication_max") if ctx.params.get(option) is not None]

    def pin(conn, cid, name):
        ctx.result["current"] = {"cid": cid, "pinned": 0, "wanted": None}
        deadline = time.monotonic() + timeout_s
        try:
            with ctx.interruptible(cluster):
                cluster.call("pins/" + quote(cid, safe=""), factors + ([("name", name)] if name else []),
                             method="POST")
                info, (wanted, pinned, in_error) = follow_cluster_pin(ctx, cluster, cid, None, deadline)
        except IPFSError as exc:
            if ctx.stopping:
                raise TaskStopped(ctx.stop_reason)
            if exc.transient:
                raise
            return plain_error(exc)
        size = pin_size(client, cid)    # the local Kubo may not be one of the peers that have it
        store_pin(conn, cid, name, size if isinstance(size, int) else None, rename=bool(name))
        record_cluster_status(conn, info)
        if in_error:
            return "; ".join("%s: %s" % (row[2] or row[1], row[4] or row[3])
                             for row in cluster_pin_rows(info)[1] if row[3] in CLUSTER_ERROR_STATUSES)
        if pinned < wanted:
            return "timed out after %d s: pinned on %d of %d peers" % (timeout_s, pinned, wanted)
        return None

    return pin


def plain_error(exc):
    """The node's own sentence: "IPFS pin/add failed: X" -> X."""
    return re.sub(r"^IPFS \S+ failed: |^the IPFS node reported an error mid-stream: ", "", str(exc))


# ---------------------------------------------------------------------------
# Task: pin_remove
# ---------------------------------------------------------------------------

def remove_pins(ctx):
    """Unpin each CID given; the catalogue loses each as the node does."""
    cids = [str(cid) for cid in ctx.params.get("cids", [])]
    # Through a cluster, the cluster unpins it on every peer.
    client = ctx.cluster_client() if ctx.cluster_api else ctx.client()

    def unpin(conn, cid, name):
        try:
            if ctx.cluster_api:
                client.call("pins/" + quote(cid, safe=""), method="DELETE")
            else:
                client.call("pin/rm", [("arg", cid)])
        except IPFSError as exc:
            if exc.transient:
                raise
            return plain_error(exc)
        with transaction(conn):
            conn.execute("DELETE FROM pins WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM pin_peers WHERE cid = ?", (cid,))
            conn.execute("DELETE FROM pin_replication WHERE cid = ?", (cid,))
        return None

    ctx.result = {"invalid": int(ctx.params.get("invalid", 0)),
                  "invalid_lines": ctx.params.get("invalid_lines", [])}
    with ctx.interruptible(client):
        return run_pin_task(ctx, lambda start: ((cid, "") for cid in cids[start:]), len(cids), unpin, "Unpinning")


# ---------------------------------------------------------------------------
# Task: repo_gc
# ---------------------------------------------------------------------------

def repo_size(client):
    return int(client.call("repo/stat", [("size-only", "true")]).get("RepoSize") or 0)


def collect_garbage(ctx):
    """The node's garbage collection, streamed: progress counts removed blocks."""
    client = ctx.client(timeout=600.0)
    result = ctx.result = {"blocks_removed": 0, "bytes_freed": 0, "size_before": 0, "size_after": 0,
                           "errors": 0, "error_details": []}
    started = time.monotonic()
    try:
        result["size_before"] = repo_size(client)
        ctx.log("Collecting garbage (repository size %d bytes)..." % result["size_before"])
        ctx.current_item = "Collecting garbage..."
        with ctx.interruptible(client):
            try:
                for batch in client.stream_batches("repo/gc", [("stream-errors", "true")]):
                    for obj in batch:
                        if isinstance(obj, dict) and obj.get("Error"):
                            result["errors"] += 1
                            if len(result["error_details"]) < MAX_ERROR_DETAILS:
                                result["error_details"].append({"error": str(obj["Error"])})
                        elif isinstance(obj, dict) and obj.get("Key"):
                            result["blocks_removed"] += 1
                    ctx.progress = result["blocks_removed"]
                    ctx.check()
            except IPFSError:
                ctx.check()
                raise
        client.stopped = False
        result["size_after"] = repo_size(client)
        result["bytes_freed"] = max(0, result["size_before"] - result["size_after"])
        ctx.current_item = None
        ctx.log("Garbage collection completed: %d blocks removed, %d bytes freed"
                % (result["blocks_removed"], result["bytes_freed"]))
        return result
    finally:
        result["duration_s"] = round(time.monotonic() - started, 3)


# ---------------------------------------------------------------------------
# The node's overview and its gateway
# ---------------------------------------------------------------------------

def multiaddr_url(addr):
    """http://host:port for a gateway multiaddr (/ip4/127.0.0.1/tcp/8080), or None."""
    match = re.fullmatch(r"/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)(/http)?", str(addr).strip())
    if not match:
        return None
    kind, host, port = match.group(1), match.group(2), match.group(3)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if kind == "ip4" else "::1"
    if ":" in host:
        host = "[%s]" % host
    return "http://%s:%s" % (host, port)


def node_gateway(client):
    """The node's own gateway, from its Addresses.Gateway, or None."""
    value = client.call("config", [("arg", "Addresses.Gateway")]).get("Value")
    for addr in value if isinstance(value, list) else [value]:
        url = multiaddr_url(addr)
        if url:
            return url
    return None


_gateways = {}      # API URL -> (URL or None, when asked)
_gateways_lock = threading.Lock()
GATEWAY_CACHE_SECONDS = 60


def gateway_for(settings, client=None):
    """The gateway links point to: the setting, else the node's own (asked
    at most once a minute); None while the node cannot say."""
    if settings.gateway:
        return settings.gateway.rstrip("/")
    with _gateways_lock:
        known = _gateways.get(settings.ipfs_api)
    if known and time.monotonic() - known[1] < GATEWAY_CACHE_SECONDS:
        return known[0]
    import worker
    try:
        url = node_gateway(client or worker.IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=5.0,
                                                       attempts=1))
    except IPFSError:
        return None
    with _gateways_lock:
        _gateways[settings.ipfs_api] = (url, time.monotonic())
    return url


def node_overview(settings):
    """What the pins page shows about the node; IPFSError if it cannot be reached."""
    import worker
    client = worker.IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=10.0, attempts=1)
    try:
        ident = client.call("id")
        try:
            stat = client.call("repo/stat", [("timeout", "5s")])
        except IPFSError as exc:
            if exc.transient:
                raise
            stat = client.call("repo/stat", [("size-only", "true")])
            stat["NumObjects"] = None
        try:
            peers = len(client.call("swarm/peers").get("Peers") or [])
        except IPFSError as exc:
            if exc.transient:
                raise
            peers = 0       # an offline node has no swarm
        return {
            "id": ident.get("ID"), "agent_version": ident.get("AgentVersion"),
            "repo_size": stat.get("RepoSize"), "storage_max": stat.get("StorageMax"),
            "num_objects": stat.get("NumObjects"), "peers": peers,
            "gateway": gateway_for(settings, client),
        }
    finally:
        client.close()
