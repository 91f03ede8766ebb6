"""Pin sync end to end: the real server, real worker processes, a real IPFS node."""

import sqlite3

import pytest


def catalogue(db_path):
    conn = sqlite3.connect(db_path)
    try:
        return {cid: (kind, size) for cid, kind, size in conn.execute("SELECT cid, type, size FROM pins")}
    finally:
        conn.close()


def recursive_pins(node):
    return {cid for cid, kind in node.pin_ls().items() if kind == "recursive"}


def sync(server):
    r = server.request("POST", "/pins/sync")
    assert r.status == 202, r.body
    return server.wait_for_task(r.json["taskId"])


@pytest.mark.every_python
def test_it_syncs_the_nodes_pins_then_follows_changes(live_server, ipfs_node):
    contents = [("file %d of the first batch\n" % i).encode() * (i + 1) for i in range(300)]
    cids = ipfs_node.add_many(contents)

    task = sync(live_server)
    assert task["status"] == "completed", task
    assert task["percentage"] == 100 and task["progress"] == task["total"]
    assert task["completed_at"] and task["started_at"] and task["pid"]
    pins = catalogue(live_server.db_path)
    assert set(pins) == recursive_pins(ipfs_node)
    assert set(cids) <= set(pins)
    result = task["result"]
    assert result["total"] == len(pins) and result["added"] == len(pins) and result["removed"] == 0
    assert result["failed"] == 0 and result["error_details"] == []
    for key in ("updated", "unchanged", "duration_s"):
        assert key in result
    # Sizes are the node's cumulative sizes.
    for cid in cids[:5]:
        assert pins[cid][1] == int(ipfs_node.rpc("files/stat", arg="/ipfs/" + cid)["CumulativeSize"])

    log = live_server.request("GET", "/tasks/log?id=%d" % task["id"]).text.splitlines()
    tag = "[Task %d] " % task["id"]
    assert log[0] == tag + "Fetching pins from IPFS..."
    assert log[1] == tag + "Found %d pins to sync" % len(pins)
    assert log[-2] == tag + "Progress: %d / %d" % (len(pins), len(pins))
    assert log[-1] == tag + "Sync completed: %d pins synced" % len(pins)

    for cid in cids[:20]:
        ipfs_node.pin_rm(cid)
    more = ipfs_node.add_many([("second batch %d\n" % i).encode() for i in range(30)])

    task = sync(live_server)
    assert task["status"] == "completed", task
    assert task["result"]["added"] == 30 and task["result"]["removed"] == 20
    assert task["result"]["unchanged"] == task["result"]["total"] - 30
    pins = catalogue(live_server.db_path)
    assert set(pins) == recursive_pins(ipfs_node)
    assert not set(cids[:20]) & set(pins) and set(more) <= set(pins)
    assert all(size is not None for _, size in pins.values())


def test_it_fails_clearly_when_the_node_is_unreachable(make_live_server):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    dead = "http://127.0.0.1:%d" % sock.getsockname()[1]
    sock.close()
    server = make_live_server(dead)
    task = sync(server)
    assert task["status"] == "failed"
    assert task["error_message"] == "cannot reach the IPFS API at %s: connection refused" % dead
    assert task["completed_at"]
