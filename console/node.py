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


def node_overview(settings):
    """What the pins page shows about the node; IPFSError if it cannot be reached."""
    client = IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=10.0, attempts=1)
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
