"""The node as the pages and the command line show it: its overview
(``GET /api/node``), its connected peers, its gateway address, its
repository's size, and a DAG it exports as a CAR file.
"""

import re
import threading
import time

from console.cids import is_cid
from console.errors import HTTPError
from console.rpc import IPFSClient, IPFSError


def repo_size(client):
    """The repository's size in bytes, without walking its objects."""
    return int(client.call("repo/stat", [("size-only", "true")]).get("RepoSize") or 0)


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
    try:
        url = node_gateway(client or IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=5.0, attempts=1))
    except IPFSError:
        return None
    with _gateways_lock:
        _gateways[settings.ipfs_api] = (url, time.monotonic())
    return url


# Open pages ask for the overview every few seconds each; the node is asked
# at most once per OVERVIEW_SECONDS whatever their number, and the object
# count (Kubo walks its whole blockstore for it) at most once per
# OBJECTS_SECONDS: between two counts, the repository's size is asked alone.
OVERVIEW_SECONDS = 4
OBJECTS_SECONDS = 300
_overviews = {}        # API URL -> (overview, when)
_last_answers = {}     # API URL -> (overview or None when the node could not be reached, when)
_object_counts = {}    # API URL -> (count or None, when)
_overview_lock = threading.Lock()
_counting_lock = threading.Lock()


def forget_overviews():
    """Ask every node afresh next time (a node replaced at the same address)."""
    with _overview_lock:
        _overviews.clear()
        _object_counts.clear()
        _last_answers.clear()


def last_overview(settings):
    """(the overview the node last gave, or None if it could not be reached
    then, seconds since) without asking it anything; (None, None) if it was
    never asked."""
    with _overview_lock:
        known = _last_answers.get(settings.ipfs_api)
    if known is None:
        return None, None
    return known[0], time.monotonic() - known[1]


def node_overview(settings, fresh=False):
    """What the pins page shows about the node; IPFSError if it cannot be reached.

    ``fresh``: ask the node now rather than take the overview of the last few seconds.
    """
    now = time.monotonic()
    with _overview_lock:
        known = _overviews.get(settings.ipfs_api)
    if known and not fresh and now - known[1] < OVERVIEW_SECONDS:
        return dict(known[0], gateway=gateway_for(settings))
    client = IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=10.0, attempts=1)
    try:
        try:
            ident = client.call("id")
        except IPFSError:
            with _overview_lock:
                _last_answers[settings.ipfs_api] = (None, time.monotonic())
            raise
        stat = client.call("repo/stat", [("size-only", "true")])
        # One count at a time: two threads that look at once (the server's
        # watch and its alerts' tick) share it rather than walk the blockstore twice.
        with _counting_lock:
            with _overview_lock:
                counted = _object_counts.get(settings.ipfs_api)
            if counted is None or now - counted[1] >= OBJECTS_SECONDS:
                try:
                    counted = (client.call("repo/stat", [("timeout", "5s")]).get("NumObjects"), now)
                except IPFSError as exc:
                    if exc.transient:
                        raise
                    counted = (None, now)
                with _overview_lock:
                    _object_counts[settings.ipfs_api] = counted
        try:
            peers = len(client.call("swarm/peers").get("Peers") or [])
        except IPFSError as exc:
            if exc.transient:
                raise
            peers = 0       # an offline node has no swarm
        overview = {
            "id": ident.get("ID"), "agent_version": ident.get("AgentVersion"),
            "repo_size": stat.get("RepoSize"), "storage_max": stat.get("StorageMax"),
            "num_objects": counted[0], "peers": peers,
        }
        gateway = gateway_for(settings, client)
    finally:
        client.close()
    with _overview_lock:
        _overviews[settings.ipfs_api] = _last_answers[settings.ipfs_api] = (overview, time.monotonic())
    return dict(overview, gateway=gateway)


# Go's time.Duration as Kubo writes it ("263.463µs", "1.5ms", "2m3.5s"), in milliseconds.
DURATION_UNITS_MS = {"ns": 1e-6, "us": 1e-3, "\u00b5s": 1e-3, "\u03bcs": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4,
                     "h": 3.6e6}
DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def duration_ms(text):
    """A Go duration in milliseconds (rounded to the microsecond), or None
    for anything else (Kubo says "n/a" for a peer it has not measured)."""
    text = str(text or "").strip()
    if not text or DURATION_PART.sub("", text):
        return None
    return round(sum(float(number) * DURATION_UNITS_MS[unit] for number, unit in DURATION_PART.findall(text)), 3)


def connected_peers(settings):
    """The peers the node is connected to, by id: ({"id", "addr", "latency"}
    list, whether the node is online). ``latency`` is in milliseconds, None
    while the node has not measured it; a node started with --offline has
    no swarm, so no peers. IPFSError if the node cannot be reached or refuses."""
    client = IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=10.0, attempts=1)
    try:
        answer = client.call("swarm/peers", [("latency", "true")])
    except IPFSError as exc:
        if exc.transient or "online mode" not in str(exc):
            raise
        return [], False
    finally:
        client.close()
    peers = [{"id": str(peer.get("Peer") or ""), "addr": str(peer.get("Addr") or ""),
              "latency": duration_ms(peer.get("Latency"))}
             for peer in (answer.get("Peers") or []) if isinstance(peer, dict)]
    return sorted(peers, key=lambda peer: (peer["id"], peer["addr"])), True


# Bytes of a CAR read from the node before the answer begins: an export that
# fails within them is an HTTP error, not a file cut short.
EXPORT_LOOKAHEAD = 1024 * 1024


def export_car(settings, cid):
    """The DAG under ``cid`` as a CAR file, in pieces of bytes as the node
    writes it (``dag/export``, offline: from what the node has, never the
    network).

    Before the first piece: HTTPError 400 (not a CID), 404 (the node does
    not have it) or 502 (the node cannot be reached, or failed within the
    first EXPORT_LOOKAHEAD bytes). A failure after that is an IPFSError
    raised while the pieces are read. Close the pieces when done.
    """
    if not is_cid(cid):
        raise HTTPError(400, "{value!r} is not a CID.", value=cid[:100])
    client, ahead, size = None, [], 0
    try:
        client = IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=60.0, attempts=1)
        pieces = client.stream_bytes("dag/export", [("arg", cid), ("offline", "true")])
        for piece in pieces:
            ahead.append(piece)
            size += len(piece)
            if size >= EXPORT_LOOKAHEAD:
                break
    except IPFSError as exc:
        if client is not None:
            client.close()
        reason = str(exc)
        if exc.transient:
            raise HTTPError(502, "The IPFS node cannot be reached: {reason}", extra={"reason": reason}, reason=reason)
        if not size and ("not found" in reason or "could not find" in reason):
            raise HTTPError(404, "The node does not have {cid} (it exports only what it has).", cid=cid)
        raise HTTPError(502, "The IPFS node could not export {cid}: {reason}", extra={"reason": reason},
                        cid=cid, reason=reason)
    return Stream(client, ahead, pieces)


class Stream:
    """Pieces of a streamed answer: those read ahead, then the rest as they
    come; ``close()`` ends the connection, read to the end or not."""

    def __init__(self, client, ahead, pieces):
        self.client, self.ahead, self.pieces = client, ahead, pieces

    def __iter__(self):
        yield from self.ahead
        yield from self.pieces

    def close(self):
        self.client.close()
