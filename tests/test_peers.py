"""GET /api/node/peers on real Kubo: the test node runs offline and has no
peers; two online daemons on loopback, connected with swarm/connect, list
each other with address and latency; a node that cannot be reached is a 502."""

import pytest

import console.node
from support import swarm_connect, wait_for


def test_an_offline_node_has_no_peers(live_server):
    r = live_server.request("GET", "/api/node/peers")
    assert r.status == 200 and r.json == {"peers": [], "online": False}


def test_an_online_node_without_connections_has_none_either(make_live_server, isolated_ipfs_node):
    r = make_live_server(isolated_ipfs_node.api_url).request("GET", "/api/node/peers")
    assert r.status == 200 and r.json == {"peers": [], "online": True}


def test_connected_peers_are_listed_with_their_address_and_latency(make_live_server, isolated_ipfs_node,
                                                                   second_isolated_ipfs_node):
    other_id = swarm_connect(isolated_ipfs_node, second_isolated_ipfs_node)
    server = make_live_server(isolated_ipfs_node.api_url)
    r = server.request("GET", "/api/node/peers")
    assert r.status == 200 and r.json["online"] is True
    assert r.json["peers"] == [{"id": other_id, "addr": "/ip4/127.0.0.1/tcp/%d" % second_isolated_ipfs_node.swarm_port,
                                "latency": None}]           # Kubo says "n/a" until it has measured it
    # A ping measures it.
    isolated_ipfs_node.rpc("ping", arg=other_id, count=3)
    peers = wait_for(lambda: [peer for peer in server.request("GET", "/api/node/peers").json["peers"]
                              if peer["latency"] is not None], message="a measured latency")
    assert peers[0]["id"] == other_id and 0 < peers[0]["latency"] < 1000
    assert server.request("GET", "/api/node").json["peers"] == 1
    # The other side sees the first one too.
    first_id = isolated_ipfs_node.rpc("id")["ID"]
    other_server = make_live_server(second_isolated_ipfs_node.api_url)
    assert [peer["id"] for peer in other_server.request("GET", "/api/node/peers").json["peers"]] == [first_id]


def test_a_node_that_cannot_be_reached_is_a_502(client):
    r = client.get("/api/node/peers")
    assert r.status == 502 and r.json["success"] is False
    assert r.json["error"] == ("The IPFS node cannot be reached: cannot reach the IPFS API at http://127.0.0.1:9:"
                               " connection refused")
    assert r.json["reason"] == "cannot reach the IPFS API at http://127.0.0.1:9: connection refused"


@pytest.mark.parametrize("text,ms", [
    ("n/a", None), ("", None), (None, None), ("263.463µs", 0.263), ("263.463μs", 0.263), ("1.5ms", 1.5),
    ("2s", 2000.0), ("1m2.5s", 62500.0), ("1h0m0s", 3600000.0), ("850ns", 0.001), ("0s", 0.0),
    ("12 ms", None), ("fast", None), ("1.5", None),
])
def test_kubos_latency_is_read_in_milliseconds(text, ms):
    assert console.node.duration_ms(text) == ms
