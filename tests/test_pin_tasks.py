"""Pin management in-process: the CID check, POST /pins/add, /pins/remove,
/node/gc and GET /api/node, and the pin_add, pin_remove and repo_gc tasks run
against a programmable node (fake_node)."""

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import console.cids
import console.control
import console.errors
import console.node
import console.pin_input
import console.registry
import console.rpc
import console.shipped
import console.store
import console.web.app
import console.web.files
import console.web.pins
import ipfsmaster
from support import register_task_type, run_here, wait_for


V0 = "QmX8EpP5gNQCvP6rNvvaYP3tep6B1JMSuriTSMXUQ76FsZ"
V1 = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def cid(number):
    """A distinct valid CIDv1 (raw, identity-free sha2-256 shape) for each number."""
    import base64
    digest = number.to_bytes(32, "big")
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


def text_post(client, body, query=""):
    return client.post("/pins/add" + query, body=body, headers={"Content-Type": "text/plain"})


def json_post(client, path, value):
    return client.post(path, body=json.dumps(value).encode(), headers={"Content-Type": "application/json"})


# ---------------------------------------------------------------------------
# The CID check
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    V0, V1, cid(7), "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA",
    "f01551220" + "ab" * 32, "k2jmtxu61mnbnvfphm3bdyt1tc6jeuo6b2ozeu5lqlc5m3bo4o1g1ob3",
    "B" + cid(9)[1:].upper(),
])
def test_it_accepts_cids_in_every_common_form(text):
    assert console.cids.is_cid(text), text


@pytest.mark.parametrize("text", [
    "", "Qm", V0[:-1], V0[:-1] + "0", V0.replace("Qm", "Qn"), V1[:-2], V1 + "a", V1.upper()[1:], "x" + V1[1:],
    "bafy not a cid", V1 + "\x00", "f0155" + "ab" * 32, "f01551220" + "AB" * 32, "Q" * 1000, "b" * 58, "日本",
])
def test_it_refuses_what_is_not_a_cid(text):
    assert not console.cids.is_cid(text), text


# ---------------------------------------------------------------------------
# POST /pins/add
# ---------------------------------------------------------------------------

def spooled(settings, db, task_id):
    params = json.loads(console.store.get_task(db, task_id)["params"])
    with open(settings.files.pin_list(params["pin_list"]), encoding="utf-8") as f:
        return params, f.read().splitlines()


def test_it_spools_the_valid_lines_and_counts_the_others_with_their_numbers(client, settings, db, spawned):
    body = "\n".join([V0 + "  my file ", "not a cid", "", "# a comment", V1 + "\tsecond", V1, "Qm bad\x07",
                      V0 + " " + "n" * 300]).encode() + b"\r\n\xff\xfe\n"
    r = text_post(client, body, "?timeout_s=30")
    assert r.status == 202, r.json
    assert r.json == {"success": True, "taskId": spawned[0], "valid": 3, "invalid": 4, "invalid_lines": [2, 7, 8, 9]}
    params, lines = spooled(settings, db, spawned[0])
    assert lines == [V0 + "\tmy file", V1 + "\tsecond", V1 + "\t"]
    assert params["timeout_s"] == 30 and params["invalid_lines"] == [2, 7, 8, 9]
    assert console.store.get_task(db, spawned[0])["task_type"] == "pin_add"


def test_it_takes_json_and_a_multipart_file(client, settings, db, spawned):
    r = json_post(client, "/pins/add", {"cids": [V0, "nope", V1 + " named"], "name": "all", "timeout_s": 5})
    assert r.status == 202 and r.json["invalid_lines"] == [2]
    params, spooled_lines = spooled(settings, db, spawned[0])
    assert spooled_lines == [V0 + "\t", V1 + "\tnamed"] and params["default_name"] == "all"

    from test_upload import multipart
    body, headers = multipart([("name", None, b"from a file"), ("file", "list.txt", (V1 + "\n").encode())])
    r = client.post("/pins/add", body=body, headers=headers)
    assert r.status == 202, r.json
    params, spooled_lines = spooled(settings, db, spawned[1])
    assert spooled_lines == [V1 + "\t"] and params["default_name"] == "from a file"


def test_it_streams_a_line_of_ten_megabytes_without_keeping_it(client, settings, db, spawned):
    body = b"x" * (10 * 1024 * 1024) + b"\n" + V1.encode() + b"\n"
    r = text_post(client, body)
    assert r.status == 202 and r.json["invalid_lines"] == [1] and r.json["valid"] == 1


@pytest.mark.parametrize("body,error", [
    (b"", "The list holds no CID."),
    (b"\n\n# nothing\n", "The list holds no CID."),
    (b"hello\nworld\n", "No line holds a valid CID: 2 lines are not CIDs (the first is line 1)."),
    (b"\xff\xfe\xfd\n", "No line holds a valid CID: 1 line is not a CID (line 1)."),
    (("bafy with spaces " + V1 + "\n").encode(), "No line holds a valid CID"),
    (b"\x00\x01" + V1.encode(), "No line holds a valid CID"),
])
def test_it_refuses_a_list_without_a_cid_before_any_task(client, settings, db, spawned, body, error):
    r = text_post(client, body)
    assert r.status == 400 and r.json["error"].startswith(error) and r.json["success"] is False
    assert spawned == [] and db.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 0
    assert not [name for name in os.listdir(settings.task_dir) if name.endswith(".list")]


def test_it_answers_in_chinese_too(client, spawned):
    r = client.post("/pins/add", body=b"hello", headers={"Content-Type": "text/plain", "Accept-Language": "zh"})
    assert r.status == 400 and r.json["error"] == "没有任何一行包含有效的 CID：第 1 行不是 CID。"


@pytest.mark.parametrize("path,body,content_type,status", [
    ("/pins/add", b"{", "application/json", 400),
    ("/pins/add", b"[1, 2]", "application/json", 400),
    ("/pins/add", b'{"cids": "Qm"}', "application/json", 400),
    ("/pins/add", b'{"cids": [1]}', "application/json", 400),
    ("/pins/add", json.dumps({"cids": [V1], "timeout_s": 0}).encode(), "application/json", 400),
    ("/pins/add", json.dumps({"cids": [V1], "timeout_s": "soon"}).encode(), "application/json", 400),
    ("/pins/add", json.dumps({"cids": [V1], "name": "n" * 300}).encode(), "application/json", 400),
    ("/pins/add", json.dumps({"cids": [V1], "name": 5}).encode(), "application/json", 400),
    ("/pins/add", b"Qm", "image/png", 415),
    ("/pins/add", b"--x\r\n", "multipart/form-data; boundary=x", 400),
    ("/pins/remove", b"[]", "text/plain", 415),
    ("/pins/remove", b'{"cids": ["nope", " "]}', "application/json", 400),
    ("/pins/remove", b'{"cids": []}', "application/json", 400),
    ("/pins/remove", b'{"cids": {"a": 1}}', "application/json", 400),
])
def test_it_rejects_bad_input_with_a_sentence(client, spawned, path, body, content_type, status):
    for lang in ("en", "zh"):
        r = client.post(path, body=body, headers={"Content-Type": content_type, "Accept-Language": lang})
        assert r.status == status and r.json["success"] is False and r.json["error"], r.body
    assert spawned == []


def test_pin_lists_over_their_limits_are_413_before_they_are_read(client, settings, spawned):
    settings.max_upload_bytes = 1000

    class Unread(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read")
    length = str(console.web.files.UPLOAD_FRAMING + 2000)
    for path, kind in (("/pins/add", "text/plain"), ("/pins/add", "application/json"),
                       ("/pins/remove", "application/json")):
        if kind == "application/json":
            length = str(console.web.pins.MAX_PIN_JSON + 1)
        r = client.post(path, stream=Unread(), headers={"Content-Type": kind, "Content-Length": length})
        assert r.status == 413 and r.json["success"] is False
    assert spawned == []


def test_it_starts_a_removal_with_the_cids_that_are_cids(client, db, spawned):
    r = json_post(client, "/pins/remove", {"cids": [V0, "nope", V1]})
    assert r.status == 202 and r.json["invalid_lines"] == [2]
    params = json.loads(console.store.get_task(db, spawned[0])["params"])
    assert params["cids"] == [V0, V1]


# ---------------------------------------------------------------------------
# The tasks, against the fake node
# ---------------------------------------------------------------------------

def start(settings, db, task_type, node, fill=None, cids=None):
    settings.ipfs_api = node.url
    if task_type == "pin_add":
        return console.pin_input.start_pin_add(settings, db, fill)[0]
    if task_type == "pin_remove":
        return console.pin_input.start_pin_remove(settings, db, cids)[0]
    return console.control.start_task(settings, db, task_type, {"ipfs_api": node.url})


def lines(*items):
    def fill(writer):
        for item in items:
            writer.add_line(item)
    return fill


def test_pin_add_pins_each_cid_once_and_catalogues_it_with_its_size(settings, db, fake_node, spawned):
    fake_node.have.update([cid(1), cid(2)])
    task_id = start(settings, db, "pin_add", fake_node, lines(cid(1) + " one", "junk", cid(2), cid(1), cid(3)))
    task = run_here(settings, task_id)
    assert task["status"] == "completed"
    result = task["result"]
    assert (result["done"], result["failed"], result["duplicates"], result["invalid"]) == (2, 1, 1, 1)
    assert result["invalid_lines"] == [2]
    assert result["error_details"] == [{"cid": cid(3), "error": "pin: block was not found locally (offline):"
                                                               " ipld: could not find %s" % cid(3)}]
    assert fake_node.pin_calls == {cid(1): 1, cid(2): 1, cid(3): 1}
    rows = {row["cid"]: (row["name"], row["size"]) for row in db.execute("SELECT * FROM pins")}
    assert rows == {cid(1): ("one", len(cid(1)) + 100), cid(2): ("", len(cid(2)) + 100)}
    assert task["progress"] == task["total"] == 4


def test_pin_add_shows_the_current_cid_and_the_nodes_progress(settings, db, fake_node, spawned):
    fake_node.have.add(cid(1))
    fake_node.pin_delay[cid(1)] = 1.0
    task_id = start(settings, db, "pin_add", fake_node, lines(cid(1)))
    runner = threading.Thread(target=run_here, args=(settings, task_id))
    runner.start()
    seen = wait_for(lambda: (lambda t: t if (t["result"] or {}).get("current", {}).get("blocks") else None)(
        console.store.task_as_json(console.store.get_task(db, task_id))), timeout=10)
    runner.join()
    assert seen["current_item"] == cid(1) and seen["result"]["current"]["cid"] == cid(1)
    final = console.store.task_as_json(console.store.get_task(db, task_id))
    assert final["status"] == "completed" and "current" not in final["result"]


def test_a_cancel_stops_within_a_cid_and_a_retry_does_only_what_was_not_done(settings, db, fake_node, spawned,
                                                                             monkeypatch):
    monkeypatch.setenv("IPFSMASTER_PIN_CONCURRENCY", "1")     # one CID at a time: see the next test for several
    fake_node.have.update(cid(n) for n in range(1, 6))
    fake_node.pin_delay[cid(3)] = 30.0
    task_id = start(settings, db, "pin_add", fake_node, lines(*[cid(n) for n in range(1, 6)] + [cid(9)]))
    runner = threading.Thread(target=run_here, args=(settings, task_id))
    runner.start()
    wait_for(lambda: fake_node.pin_calls[cid(3)], timeout=10)
    started = time.monotonic()
    assert console.control.cancel_task(settings, db, task_id) == "cancelling"
    runner.join(10)
    assert time.monotonic() - started < 5
    task = console.store.task_as_json(console.store.get_task(db, task_id))
    assert task["status"] == "cancelled" and task["retryable"]
    # cid(3), in hand when it stopped, and cid(4), read ahead for the thread, are
    # owed on the undone file; the list goes on after them.
    assert task["result"]["done"] == 2 and task["result"]["next_index"] == 4
    with open(settings.files.undone(task_id), encoding="utf-8") as f:
        assert f.read() == cid(3) + "\t\n" + cid(4) + "\t\n"

    retry_id = console.control.retry_task(settings, db, task_id)
    fake_node.pin_delay.clear()
    retried = run_here(settings, retry_id)
    assert retried["status"] == "completed" and retried["total"] == 4
    assert (retried["result"]["done"], retried["result"]["failed"]) == (3, 1)
    assert fake_node.pin_calls == {cid(1): 1, cid(2): 1, cid(3): 2, cid(4): 1, cid(5): 1, cid(9): 1}

    # It completed with cid(9) failed: a partial task, whose retry does that one alone.
    assert retried["partial"] is True and retried["retryable"] is True
    fake_node.have.add(cid(9))
    third = run_here(settings, console.control.retry_task(settings, db, retry_id))
    assert third["total"] == 1 and third["result"]["done"] == 1 and fake_node.pin_calls[cid(9)] == 2
    assert not third["partial"] and not third["retryable"]


def test_a_retry_whose_worker_is_killed_forgets_nothing_it_inherited(settings, db, fake_node, spawned):
    """A fails 1-4 and is cancelled on 5; B, its retry, is killed on its second CID; C, B's retry, does the rest."""
    items = [cid(n) for n in range(1, 9)]
    fake_node.have.update(items[4:])
    fake_node.pin_delay[cid(5)] = 30.0
    first = start(settings, db, "pin_add", fake_node, lines(*items))
    runner = threading.Thread(target=run_here, args=(settings, first))
    runner.start()
    wait_for(lambda: fake_node.pin_calls[cid(5)], timeout=10)
    console.control.cancel_task(settings, db, first)
    runner.join(10)
    assert console.store.task_as_json(console.store.get_task(db, first))["result"]["failed"] == 4

    fake_node.have.update(items[:4])
    fake_node.pin_delay[cid(2)] = 60.0
    second = console.control.retry_task(settings, db, first)
    worker = subprocess.Popen([sys.executable, os.path.join(console.shipped.HERE, "worker.py"), str(second),
                               "--db", settings.db], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: console.store.get_task(db, second)["current_item"] == cid(2), timeout=20,
                 message="the retry on its second CID, as its worker reports it")
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait()
    console.control.mark_stale_tasks(db, settings)
    assert console.store.get_task(db, second)["status"] == "failed"

    fake_node.pin_delay.clear()
    third = run_here(settings, console.control.retry_task(settings, db, second))
    assert third["status"] == "completed" and third["result"]["failed"] == 0
    assert sorted(fake_node.pins) == sorted(items)
    assert all(fake_node.pin_calls[item] >= 1 for item in items) and fake_node.pin_calls[cid(1)] >= 2


def test_pin_remove_counts_a_cid_that_is_not_pinned_as_done_and_forgets_it(settings, db, fake_node, spawned):
    """"Not pinned" after an unpin means done: unpinned outside the console, or an answer lost on the way."""
    for number in (1, 2, 3):
        db.execute("INSERT INTO pins (cid, type, size) VALUES (?, 'recursive', 10)", (cid(number),))
    for number in (1, 2):
        fake_node.add(cid(number), 10)
    task = run_here(settings, start(settings, db, "pin_remove", fake_node, cids=[cid(1), cid(3), cid(1)]))
    assert task["status"] == "completed" and not task["partial"]
    result = task["result"]
    assert (result["done"], result["failed"], result["duplicates"], result["not_pinned"]) == (2, 0, 1, 1)
    assert [row[0] for row in db.execute("SELECT cid FROM pins")] == [cid(2)]
    assert cid(1) not in fake_node.pins


def test_a_node_that_cannot_be_reached_fails_the_task_and_keeps_its_place(settings, db, spawned):
    settings.ipfs_api = "http://127.0.0.1:9"
    task_id = console.pin_input.start_pin_add(settings, db, lines(cid(1), cid(2)))[0]
    task = run_here(settings, task_id)
    assert task["status"] == "failed" and "connection refused" in task["error_message"]
    assert task["result"]["next_index"] == 0 and task["retryable"]


def test_repo_gc_counts_removed_blocks_and_freed_bytes(settings, db, fake_node, spawned):
    fake_node.garbage = [cid(n) for n in range(7)]
    task = run_here(settings, start(settings, db, "repo_gc", fake_node))
    assert task["status"] == "completed" and task["progress"] == 7
    result = task["result"]
    assert (result["blocks_removed"], result["bytes_freed"], result["size_before"]) == (7, 7000, 100000)


def test_gc_and_sync_exclude_each_other_in_the_database(client, db, spawned):
    r = client.post("/node/gc")
    assert r.status == 202
    gc_id = r.json["taskId"]
    r = client.post("/node/gc")
    assert r.status == 409 and r.json["taskId"] == gc_id
    assert r.json["error"] == "A garbage collection is already running (task %d)." % gc_id
    r = client.post("/pins/sync", headers={"Accept-Language": "zh"})
    assert r.status == 409 and r.json["taskId"] == gc_id and "垃圾回收" in r.json["error"]
    r = client.post("/pins/sync")
    assert r.json["error"] == ("A pin sync cannot start while a garbage collection runs (task %d);"
                               " try again when it has ended." % gc_id)
    # Even a row inserted behind the app's back cannot break the rule.
    import sqlite3
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO background_tasks (task_type, status, single_flight, exclusive_group)"
                   " VALUES ('pin_sync', 'pending', 1, 'repository')")
    console.store.finish_task(db, gc_id, "completed", "pending")
    sync = client.post("/pins/sync")
    assert sync.status == 202
    r = client.post("/node/gc")
    assert r.status == 409 and r.json["taskId"] == sync.json["taskId"]
    assert "cannot start while a pin sync runs" in r.json["error"]


# ---------------------------------------------------------------------------
# GET /api/node, the gateway, /api/info
# ---------------------------------------------------------------------------

def test_the_node_overview_and_its_gateway(settings, fake_node):
    from support import Client
    settings.ipfs_api = fake_node.url
    client = Client(console.web.app.App(settings))
    r = client.get("/api/node")
    assert r.status == 200
    assert r.json == {"id": "12D3KooWFake", "agent_version": "kubo/0.43.1", "repo_size": 100000,
                      "storage_max": 10 ** 10, "num_objects": 0, "peers": 0, "gateway": "http://127.0.0.1:8080",
                      "storage_percent": 0.0, "storage_level": "ok", "repo_warn_percent": 80, "repo_alarm_percent": 95}
    settings.gateway = "https://gw.example/"
    assert client.get("/api/node").json["gateway"] == "https://gw.example"
    assert client.get("/api/info").json["gateway"] == "https://gw.example/"


def test_open_pages_cost_the_node_one_overview_every_few_seconds(settings, fake_node):
    """Kubo walks its whole blockstore to count objects: that is asked once in minutes, whatever the pages."""
    from support import Client
    settings.ipfs_api = fake_node.url
    clients = [Client(console.web.app.App(settings)) for _ in range(5)]
    for _ in range(4):
        assert all(client.get("/api/node").json["repo_size"] == 100000 for client in clients)
    assert fake_node.calls["id"] == 1 and fake_node.calls["repo/stat"] == 1
    fresh = console.node.node_overview(settings, fresh=True)
    assert fresh["num_objects"] == 0 and fake_node.calls["id"] == 2
    assert (fake_node.calls["repo/stat"], fake_node.calls["repo/stat?size-only"]) == (1, 2)


def test_an_unreachable_node_is_a_502_with_a_sentence(client):
    for lang in ("en", "zh"):
        r = client.get("/api/node", headers={"Accept-Language": lang})
        assert r.status == 502 and r.json["success"] is False
        assert "connection refused" in r.json["error"]
        assert r.json["reason"] == "cannot reach the IPFS API at http://127.0.0.1:9: connection refused"


@pytest.mark.parametrize("addr,url", [
    ("/ip4/127.0.0.1/tcp/8080", "http://127.0.0.1:8080"), ("/ip4/0.0.0.0/tcp/8081", "http://127.0.0.1:8081"),
    ("/ip6/::1/tcp/8080", "http://[::1]:8080"), ("/dns4/gw.local/tcp/80", "http://gw.local:80"),
    ("/unix/tmp/gw.sock", None), ("", None),
])
def test_gateway_multiaddrs_become_urls(addr, url):
    assert console.node.multiaddr_url(addr) == url


def test_info_describes_every_task_type_from_the_registry(client):
    types = client.get("/api/info").json["task_types"]
    assert set(types) == set(console.registry.TASK_TYPES) >= {"pin_sync", "file_upload", "pin_add", "pin_remove",
                                                           "repo_gc"}
    assert types["repo_gc"] == {"label": {"en": "Garbage collection", "zh": "垃圾回收"}, "unit": "blocks",
                                "single_flight": True, "retryable": True, "group": "repository",
                                "partial": False}
    assert types["file_upload"]["unit"] == "bytes" and types["pin_add"]["unit"] == "items"


def test_cleanup_removes_a_pin_list_once_no_task_uses_it(settings, db, spawned):
    task_id = console.pin_input.start_pin_add(settings, db, lines(V1))[0]
    path = settings.files.pin_list(json.loads(console.store.get_task(db, task_id)["params"])["pin_list"])
    console.store.finish_task(db, task_id, "failed", "pending")
    retry_id = console.control.retry_task(settings, db, task_id)
    console.store.finish_task(db, retry_id, "cancelled", "pending")
    db.execute("UPDATE background_tasks SET created_at = datetime('now', '-40 days') WHERE id = ?", (task_id,))
    db.execute("INSERT INTO background_tasks (task_type, status, params, created_at) VALUES"
               " ('pin_sync', 'failed', 'not json', datetime('now', '-40 days'))")
    assert console.control.cleanup_tasks(db, settings, 30) == [task_id, 3]
    assert os.path.exists(path)       # the retry still uses it
    db.execute("UPDATE background_tasks SET created_at = datetime('now', '-40 days') WHERE id = ?", (retry_id,))
    assert console.control.cleanup_tasks(db, settings, 30) == [retry_id]
    assert not os.path.exists(path)


def test_a_new_task_type_is_one_module_and_one_entry(settings, db, fake_node, spawned, monkeypatch, capsys):
    """The README's promise: the registry entry is all the server, the CLI and the pages need."""

    def verify_pins(ctx):
        cids = ctx.params["cids"]
        ctx.set_total(len(cids))
        client = ctx.client()
        missing = []
        for cid in cids:
            ctx.check()
            try:
                client.call("pin/add", [("arg", cid)])
            except console.rpc.IPFSError as exc:
                if exc.transient:
                    raise
                missing.append(cid)
            ctx.advance(1, cid)
        return {"checked": len(cids), "missing": missing}

    register_task_type(monkeypatch, "pin_verify", verify_pins, label="Pin check", label_zh="Pin 检查", unit="items",
                       single_flight=True, retryable=True)
    fake_node.have.add(V1)
    task_id = console.control.start_task(settings, db, "pin_verify", {"ipfs_api": fake_node.url, "cids": [V1, V0]})
    task = run_here(settings, task_id)
    assert task["status"] == "completed" and task["result"] == {"checked": 2, "missing": [V0]}
    console.control.start_task(settings, db, "pin_verify", {})
    with pytest.raises(console.errors.TaskConflict):     # single flight, from the entry alone
        console.control.start_task(settings, db, "pin_verify", {})
    from support import Client
    client = Client(console.web.app.App(settings))
    assert client.get("/api/info").json["task_types"]["pin_verify"]["label"] == {"en": "Pin check", "zh": "Pin 检查"}
    assert client.get("/api/tasks?type=pin_verify").json["total"] == 2
    r = client.post("/tasks/retry?id=%d" % task_id)
    assert r.status == 409 and r.json["error"].startswith("Only failed or cancelled tasks")
    capsys.readouterr()
    assert ipfsmaster.main(["tasks", "--db", settings.db, "--type", "pin_verify", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total"] == 2
