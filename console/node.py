"""The node as the pages show it: its overview (``GET /api/node``), its
gateway address, its repository's size.
"""

import re
import threading
import time

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
