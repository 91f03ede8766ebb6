"""IPFS Cluster as the engine: syncs through a real cluster of two peers,
each with its own Kubo, on loopback only."""

import json
import os
import subprocess
import sys

import pytest

import console.messages
import console.shipped
import console.web.app
from support import CLUSTER_PASSWORD, CLUSTER_USER, catalogue

SECRET = "basic:%s:%s" % (CLUSTER_USER, CLUSTER_PASSWORD)


def pin_through_cluster(cluster, data, replication=2, name=""):
    """Bytes on every peer's Kubo, pinned through the cluster; returns the CID once every allocated peer has it."""
    cid = cluster.add_everywhere(data)
    cluster.pin(cid, replication, name)
    cluster.wait_for(lambda: list(cluster.status(cid).values()).count("pinned") == replication, "%s pinned" % cid)
    return cid


def cluster_pins(cluster):
    return {pin["cid"] for pin in cluster.peers[0].stream("/pins")}


@pytest.fixture
def cluster_console(make_live_server, cluster):
    """The console on the first peer's Kubo, working through the cluster."""
    return make_live_server(cluster.kubos[0].api_url, cluster_api=cluster.api_url, cluster_auth=SECRET)


def test_a_sync_through_the_cluster_keeps_each_peers_status(cluster, cluster_console):
    cids = [pin_through_cluster(cluster, b"replicated twice %d" % n, name="copy %d 副本" % n) for n in range(3)]
    task = cluster_console.sync()
    assert task["status"] == "completed" and task["result"]["failed"] == 0, task
    assert task["params"] == {"ipfs_api": cluster.kubos[0].api_url, "cluster_api": cluster.api_url}
    pins = catalogue(cluster_console.db_path)
    assert set(pins) == cluster_pins(cluster)
    assert pins[cids[1]][1] == "copy 1 副本"
    for cid in cids:   # sizes come from the local Kubo
        assert pins[cid][2] == cluster.kubos[0].rpc("files/stat", arg="/ipfs/" + cid)["CumulativeSize"]

    answer = cluster_console.request("GET", "/api/pins?limit=1000").json
    shown = {pin["cid"]: pin for pin in answer["pins"]}
    for cid in cids:
        assert shown[cid]["peers"] == {"pinned": 2} and shown[cid]["replication_wanted"] == 2
        assert shown[cid]["peer_errors"] == []
    summary = answer["summary"]["cluster"]
    assert sorted(peer["name"] for peer in summary["peers"]) == ["peer-0", "peer-1"]
    assert all(peer["error"] is None and peer["version"].startswith("1.0.8") for peer in summary["peers"])
    assert summary["pins_in_error"] == 0 and summary["under_replicated"] == 0
    assert cluster_console.request("GET", "/api/pins?status=error").json["total"] == 0


def test_a_peer_whose_kubo_is_down_shows_its_error_and_recovers(cluster, cluster_console):
    kept = pin_through_cluster(cluster, b"on both peers, then one goes down")
    late = b"pinned while a peer's Kubo is down"
    cluster.kubos[1].stop()
    try:
        failed = cluster.pin_failed_by_second_peer(late)
        task = cluster_console.sync()
        assert task["status"] == "completed", task
        in_error = cluster_console.request("GET", "/api/pins?status=error&limit=1000").json
        assert {kept, failed} <= {pin["cid"] for pin in in_error["pins"]}
        assert in_error["summary"]["cluster"]["pins_in_error"] == in_error["total"]
        pin = [pin for pin in in_error["pins"] if pin["cid"] == kept][0]
        assert pin["peers"] == {"pinned": 1, "error": 1}
        (error,) = pin["peer_errors"]
        assert error["peer"] == "peer-1" and "connection refused" in error["error"]
        under = cluster_console.request("GET", "/api/pins?status=under-replicated&limit=1000").json
        assert {kept, failed} <= {pin["cid"] for pin in under["pins"]}
    finally:
        cluster.kubos[1].start()
    cluster.kubos[1].add(late, pin=False)   # what the peer will pin, on its offline Kubo

    r = cluster_console.request("POST", "/pins/recover")
    assert r.status == 202, r.body
    task = cluster_console.wait_for_task(r.json["taskId"], timeout=180)
    assert task["status"] == "completed", (task, cluster_console.log(task["id"]))
    result = task["result"]
    assert result["total"] >= 1 and result["recovered"] == result["total"] and result["failed"] == 0, result
    assert task["progress"] == task["total"] == result["total"]
    assert cluster.status(failed) == {"peer-0": "pinned", "peer-1": "pinned"}
    # Each recovered pin's status reached the catalogue at once; a sync brings the rest.
    assert failed not in {pin["cid"] for pin in cluster_console.request("GET", "/api/pins?status=error").json["pins"]}
    assert cluster_console.sync()["status"] == "completed"
    answer = cluster_console.request("GET", "/api/pins?status=error").json
    assert answer["total"] == 0 and answer["summary"]["cluster"]["pins_in_error"] == 0


def test_recovery_needs_a_cluster(live_server):
    r = live_server.request("POST", "/pins/recover")
    assert r.status == 409 and r.json == {"success": False, "error": console.messages.NO_CLUSTER}


def test_the_command_line_lists_the_peers(cluster):
    env = dict(os.environ, IPFSMASTER_CLUSTER_AUTH=SECRET)
    out = subprocess.run([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py"), "peers", "--cluster-api",
                          cluster.api_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "ID", "VERSION", "ERROR"]
    assert sorted(line.split()[0] for line in lines[1:]) == ["peer-0", "peer-1"]
    refused = subprocess.run([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py"), "peers",
                              "--cluster-api", cluster.api_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=dict(os.environ, IPFSMASTER_CLUSTER_AUTH=""), timeout=60)
    assert refused.returncode == 1 and b"access denied" in refused.stderr


@pytest.mark.parametrize("secret", [None, "basic:%s:wrong-password" % CLUSTER_USER, "bearer:not-a-token"])
def test_wrong_cluster_credentials_fail_the_sync_with_a_sentence_that_hides_them(make_live_server, cluster, secret):
    server = make_live_server(cluster.kubos[0].api_url, cluster_api=cluster.api_url, cluster_auth=secret)
    task = server.sync()
    assert task["status"] == "failed"
    assert task["error_message"] == ("the IPFS Cluster API at %s refused pins: access denied"
                                     " (check IPFSMASTER_CLUSTER_AUTH)" % cluster.api_url)
    shown = task["error_message"] + server.log(task["id"]) + json.dumps(task["params"])
    assert "wrong-password" not in shown and "not-a-token" not in shown and CLUSTER_USER not in shown


def test_a_bearer_token_from_the_cluster_works(make_live_server, cluster):
    status, body = cluster.peers[0].request("POST", "/token")
    assert status == 200, body
    token = json.loads(body)["token"]
    server = make_live_server(cluster.kubos[0].api_url, cluster_api=cluster.api_url, cluster_auth="bearer:" + token)
    assert server.sync()["status"] == "completed"


def test_a_cluster_that_cannot_be_reached_fails_the_sync_clearly(make_live_server, cluster):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = "http://127.0.0.1:%d" % sock.getsockname()[1]
    server = make_live_server(cluster.kubos[0].api_url, cluster_api=dead, cluster_auth=SECRET)
    task = server.sync()
    assert task["status"] == "failed"
    assert task["error_message"] == "cannot reach the IPFS Cluster API at %s: connection refused" % dead


def test_pinning_through_the_console_places_each_pin_on_both_peers(cluster, cluster_console):
    data = b"pinned through the console, twice"
    cid = cluster.add_everywhere(data)
    r = cluster_console.request("POST", "/pins/add", body=json.dumps(
        {"cids": [cid], "name": "两份 copy", "replication_min": 2, "replication_max": 2}).encode(),
        headers={"Content-Type": "application/json"})
    assert r.status == 202, r.body
    task = cluster_console.wait_for_task(r.json["taskId"], timeout=120)
    assert task["status"] == "completed" and task["result"]["done"] == 1, (task, cluster_console.log(task["id"]))
    assert task["params"]["replication_min"] == task["params"]["replication_max"] == 2
    assert cluster.status(cid) == {"peer-0": "pinned", "peer-1": "pinned"}
    info = cluster.peers[0].json("GET", "/allocations/%s" % cid)
    assert info["replication_factor_min"] == info["replication_factor_max"] == 2 and info["name"] == "两份 copy"
    pins = catalogue(cluster_console.db_path)
    assert pins[cid][1] == "两份 copy" and pins[cid][2] == len(data) + 8  # a small file's CumulativeSize
    shown = cluster_console.request("GET", "/api/pins?q=%s" % cid).json["pins"]
    assert shown[0]["peers"] == {"pinned": 2} and shown[0]["replication_wanted"] == 2


def test_unpinning_through_the_command_line_removes_the_pin_from_the_cluster(cluster, cluster_console):
    cid = pin_through_cluster(cluster, b"to be unpinned through the cluster")
    assert cluster_console.sync()["status"] == "completed"
    env = dict(os.environ, IPFSMASTER_CLUSTER_AUTH=SECRET)
    out = subprocess.run([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py"), "pin", "rm", cid, "--wait",
                          "--db", cluster_console.db_path, "--ipfs-api", cluster.kubos[0].api_url,
                          "--cluster-api", cluster.api_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert cid not in catalogue(cluster_console.db_path)
    assert cid not in cluster_pins(cluster)
    cluster.wait_for(lambda: cid not in cluster.kubos[1].pin_ls(type="recursive"), "peer-1's Kubo to unpin it")


@pytest.mark.parametrize("body, error", [
    ({"cids": ["QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"], "replication_min": 2},
     "A replication factor needs an IPFS Cluster (--cluster-api)."),
])
def test_a_replication_factor_needs_a_cluster(client, body, error):
    r = client.post("/pins/add", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["error"] == error


@pytest.mark.parametrize("factors", [{"replication_min": 0}, {"replication_max": "two"}, {"replication_min": True},
                                     {"replication_min": 3, "replication_max": 2}, {"replication_min": -1,
                                                                                    "replication_max": 2},
                                     {"replication_max": 100000}])
def test_it_rejects_bad_replication_factors(settings, factors):
    from support import Client
    settings.cluster_api = "http://127.0.0.1:9"
    client = Client(console.web.app.App(settings))
    body = dict(factors, cids=["QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"])
    r = client.post("/pins/add", body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    assert r.status == 400 and "replication" in r.json["error"], r.json
    assert client.get("/api/tasks").json["total"] == 0


def test_a_peer_whose_kubo_goes_down_opens_an_alert_until_it_is_back(make_live_server, cluster):
    """Read from the cluster at each tick, not only at a sync."""
    console_ = make_live_server(cluster.kubos[0].api_url, cluster_api=cluster.api_url, cluster_auth=SECRET,
                                schedule_tick_seconds=1)

    def peer_alerts(closed):
        return [alert for alert in console_.request("GET", "/api/alerts").json["alerts"]
                if alert["kind"] == "cluster_peer_down" and bool(alert["closed_at"]) == closed]

    cluster.kubos[1].stop()
    try:
        (alert,) = cluster.wait_for(lambda: peer_alerts(False), "the peer's alert")
        assert "peer-1" in alert["message"] and alert["subject"] == cluster.peers[1].id
    finally:
        cluster.kubos[1].start()
    cluster.wait_for(lambda: peer_alerts(True) and not peer_alerts(False), "the peer's alert to close")
