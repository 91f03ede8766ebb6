"""The pinning service's queue task (psa_queue): it drains the requests with
a few in hand, records what it pinned in the catalogue, unpins what nothing
holds any more, and loses nothing to a killed worker or a restarted server."""

import json
import os
import signal

import pytest

import console.pin_input
import console.psa
import console.tasks.psa_queue
import console.settings
import console.tokens
from support import LiveServer, catalogue, run_here, wait_for
from test_psa_api import cid, cid_pair


@pytest.fixture
def queue(settings, db, fake_node, spawned, monkeypatch):
    """Requests made straight in the table, the task run here against the fake node."""
    settings.ipfs_api = fake_node.url
    monkeypatch.setattr(console.tasks.psa_queue, "IDLE_EXIT_S", 0.1)

    class Queue:
        node = fake_node

        def add(self, cid_text, name=None, status="queued", token="laptop"):
            row = console.psa.add_request(db, token, (cid_text, name, [], {}))
            if status != "queued":
                db.execute("UPDATE psa_requests SET status = ? WHERE requestid = ?", (status, row["requestid"]))
            return row["requestid"]

        def row(self, requestid):
            return console.psa.get_request(db, requestid)

        def drain(self):
            task_id = console.store.create_task(db, "psa_queue", {"ipfs_api": fake_node.url})
            return run_here(settings, task_id)
    return Queue()


def test_it_pins_the_queue_with_names_and_fails_with_the_nodes_sentence(queue, settings):
    good = [cid("g%d" % n) for n in range(20)]
    queue.node.have.update(good)
    ids = [queue.add(c, name="file %d" % n) for n, c in enumerate(good)]
    missing = queue.add(cid("missing"))
    task = queue.drain()
    assert task["status"] == "completed" and task["result"]["pinned"] == 20 and task["result"]["failed"] == 1
    assert all(queue.row(i)["status"] == "pinned" for i in ids)
    failed = queue.row(missing)
    assert failed["status"] == "failed" and "block was not found locally" in failed["error"]
    assert console.psa.as_status(failed, [])["info"]["status_details"] == failed["error"]
    assert {c: queue.node.pins[c].get("Name") for c in good} == {c: "file %d" % n for n, c in enumerate(good)}
    pins = catalogue(settings.db)
    assert all(pins[c][1] == "file %d" % n for n, c in enumerate(good)) and cid("missing") not in pins


def test_it_dials_the_origins_first_and_a_failed_dial_is_no_failure(queue, db):
    c = cid("o")
    queue.node.have.add(c)
    row = console.psa.add_request(db, "laptop", (c, None, ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWNobody"], {}))
    queue.drain()
    assert queue.node.calls["swarm/connect"] == 1 and queue.row(row["requestid"])["status"] == "pinned"


def test_a_request_left_pinning_by_a_dead_worker_is_pinned_by_the_next_task(queue, db):
    c = cid("orphan")
    queue.node.have.add(c)
    requestid = queue.add(c)
    dead = console.store.create_task(db, "pin_sync")
    db.execute("UPDATE background_tasks SET status = 'failed' WHERE id = ?", (dead,))
    db.execute("UPDATE psa_requests SET status = 'pinning', task_id = ? WHERE requestid = ?", (dead, requestid))
    assert console.psa.pending_work(db)
    task = queue.drain()
    assert queue.row(requestid)["status"] == "pinned" and task["result"]["pinned"] == 1


def test_a_deleted_pin_is_unpinned_unless_another_request_holds_it(queue, db, settings):
    v0, v1 = cid_pair("one")
    lone = cid("lone")
    queue.node.have.update([v0, v1, lone])
    a, b, c = queue.add(v0), queue.add(v1), queue.add(lone)
    queue.drain()
    assert console.psa.delete_request(db, a, "laptop") and console.psa.delete_request(db, c, "laptop")
    task = queue.drain()
    assert task["result"]["unpinned"] == 1
    assert lone not in queue.node.pins and v0 in queue.node.pins
    assert lone not in catalogue(settings.db)
    assert console.psa.delete_request(db, b, "laptop")
    queue.drain()
    assert v1 not in queue.node.pins


def test_a_pin_the_node_had_before_stays_with_its_name(queue, db):
    c = cid("mine")
    queue.node.have.add(c)
    queue.node.add(c, 10, name="operator's")
    requestid = queue.add(c, name="client's")
    queue.drain()
    assert queue.row(requestid)["held_before"] == 1 and queue.node.pins[c]["Name"] == "operator's"
    console.psa.delete_request(db, requestid, "laptop")
    queue.drain()
    assert c in queue.node.pins


def test_the_operator_cancels_and_retries_a_request(queue, db):
    c = cid("later")
    requestid = queue.add(c)
    assert console.psa.cancel_request(db, requestid) is True
    assert queue.row(requestid)["status"] == "failed" and queue.row(requestid)["error"] == console.psa.CANCELLED
    assert console.psa.cancel_request(db, requestid) is False and console.psa.cancel_request(db, "nope") is None
    queue.node.have.add(c)
    assert console.psa.retry_request(db, requestid) is True and console.psa.retry_request(db, requestid) is False
    queue.drain()
    assert queue.row(requestid)["status"] == "pinned"


def test_a_request_deleted_while_it_was_pinning_is_unpinned_after(queue, db):
    c = cid("gone")
    queue.node.have.add(c)
    requestid = queue.add(c)
    row = console.psa.claim_next(db, 99)
    console.psa.delete_request(db, requestid, "laptop")
    assert console.psa.finish_request(db, row, 99, "pinned") is False
    assert console.psa.take_unpin(db) == c


# -- real processes: a real Kubo, a killed worker, a restarted server -------------------

def post(server, token, body):
    return server.request("POST", "/psa/pins", json.dumps(body).encode(),
                          {"Authorization": "Bearer " + token, "Content-Type": "application/json"})


def statuses(server, token, requestids):
    found = {}
    for requestid in requestids:
        r = server.request("GET", "/psa/pins/" + requestid, headers={"Authorization": "Bearer " + token})
        found[requestid] = r.json["status"]
    return found


def psa_tasks(db_path):
    conn = console.store.connect(db_path)
    try:
        return conn.execute("SELECT id, status, pid FROM background_tasks WHERE task_type = 'psa_queue'"
                            " ORDER BY id").fetchall()
    finally:
        conn.close()


def test_requests_survive_a_killed_worker_and_a_restarted_server(make_live_server, isolated_ipfs_node):
    node = isolated_ipfs_node
    datas = [("content %d" % n).encode() * 50 for n in range(12)]
    cids = [node.only_hash(data) for data in datas]
    server = make_live_server(node.api_url)
    conn = console.store.connect(server.db_path)
    token = console.tokens.add_token(conn, "laptop")
    conn.close()
    ids = []
    for n, c in enumerate(cids):
        r = post(server, token, {"cid": c, "name": "item %d" % n})
        assert r.status == 202, r.body
        ids.append(r.json["requestid"])
    # The node lacks the blocks: pin/add waits, the requests sit pinning.
    wait_for(lambda: "pinning" in statuses(server, token, ids).values(), message="a request pinning")
    first = wait_for(lambda: [t for t in psa_tasks(server.db_path) if t["status"] == "running" and t["pid"]],
                     message="the queue task running")[0]
    os.kill(first["pid"], signal.SIGKILL)
    # The server's watch notices, marks it failed and starts another, which takes the requests back.
    wait_for(lambda: [t for t in psa_tasks(server.db_path) if t["id"] > first["id"] and t["status"] == "running"],
             timeout=60, message="a new queue task")
    server.close()          # its workers are killed with it
    server = LiveServer(console.settings.Settings(db=server.db_path, ipfs_api=node.api_url, port=0))
    try:
        for data in datas:
            node.add(data, pin=False)
        wait_for(lambda: set(statuses(server, token, ids).values()) == {"pinned"}, timeout=120,
                 message="every request pinned")
        assert set(cids) <= set(node.rpc("pin/ls", type="recursive")["Keys"])
        wait_for(lambda: all(t["status"] != "running" for t in psa_tasks(server.db_path)), timeout=30,
                 message="the queue task to end once the queue is empty")
        names = catalogue(server.db_path)
        assert all(names[c][1] == "item %d" % n for n, c in enumerate(cids))
    finally:
        server.close()


def test_cancelling_the_queue_task_puts_its_requests_back_and_another_takes_them(make_live_server,
                                                                                 isolated_ipfs_node):
    node = isolated_ipfs_node
    data = b"nobody has this yet" * 40
    cid = node.only_hash(data)
    server = make_live_server(node.api_url)
    conn = console.store.connect(server.db_path)
    token = console.tokens.add_token(conn, "laptop")
    conn.close()
    requestid = post(server, token, {"cid": cid}).json["requestid"]
    wait_for(lambda: statuses(server, token, [requestid])[requestid] == "pinning", message="the request pinning")
    first = [t for t in psa_tasks(server.db_path) if t["status"] == "running"][0]
    assert server.request("POST", "/tasks/cancel?id=%d" % first["id"]).status == 200
    server.wait_for_task(first["id"], timeout=30)
    assert server.task(first["id"])["status"] == "cancelled"
    assert server.task(first["id"])["result"]["requeued"] == 1
    wait_for(lambda: [t for t in psa_tasks(server.db_path) if t["id"] > first["id"]], timeout=30,
             message="the watch starting another queue task")
    node.add(data, pin=False)
    wait_for(lambda: statuses(server, token, [requestid])[requestid] == "pinned", timeout=60,
             message="the request pinned by the next task")


def console_pins(settings, db, c):
    """The console's own pin_add of ``c``, run here."""
    def fill(writer):
        writer.add_line(c + " by the operator")
    task = run_here(settings, console.pin_input.start_pin_add(settings, db, fill)[0])
    assert task["status"] == "completed", task


def test_a_pin_the_console_makes_too_stays_when_the_request_ends(queue, db, settings):
    c = cid("both")
    queue.node.have.add(c)
    requestid = queue.add(c, name="client's")
    queue.drain()
    console_pins(settings, db, c)
    assert console.psa.delete_request(db, requestid, "laptop")
    queue.drain()
    assert c in queue.node.pins and c in catalogue(settings.db)


def test_a_pin_the_console_makes_while_its_unpin_waits_stays(queue, db, settings):
    c = cid("waiting")
    queue.node.have.add(c)
    requestid = queue.add(c)
    queue.drain()
    assert console.psa.delete_request(db, requestid, "laptop")      # its unpin waits for the next task
    console_pins(settings, db, c)
    task = queue.drain()
    assert task["result"]["unpinned"] == 0 and c in queue.node.pins
