"""Crashes, cancels, manual termination and contention with real worker
processes, real signals and a real IPFS node."""

import contextlib
import os
import signal
import sqlite3
import threading
import time

import pytest

import console.control
import console.processes
import console.shipped
import console.store
from support import wait_for


@pytest.fixture(scope="module")
def node_with_thousands_of_pins(ipfs_node):
    """Enough pins that a sync sizing one at a time lasts seconds on Kubo (about 0.5 ms a pin)."""
    have = sum(1 for kind in ipfs_node.pin_ls().values() if kind == "recursive")
    for start in range(have, 10000, 2000):
        ipfs_node.add_many([("lifecycle pin %d\n" % i).encode() for i in range(start, min(start + 2000, 10000))])
    return ipfs_node


@pytest.fixture
def slow_sizes(monkeypatch):
    """One size look-up at a time, so a sync lasts long enough to interrupt."""
    monkeypatch.setenv("IPFSMASTER_SIZE_CONCURRENCY", "1")
    monkeypatch.setenv("IPFSMASTER_SIZE_PIPELINE", "1")


def start_sync(server):
    r = server.request("POST", "/pins/sync")
    assert r.status == 202, r.body
    return r.json["taskId"]


def wait_until_sizing(server, task_id, fraction=0.2):
    def sizing():
        task = server.task(task_id)
        assert task["status"] in ("pending", "running"), task
        return task if task["total"] and task["progress"] >= task["total"] * fraction else None
    return wait_for(sizing, timeout=60, interval=0.02, message="the sync to be sizing pins")


def catalogue(db_path):
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {cid: size for cid, size in conn.execute("SELECT cid, size FROM pins")}
    finally:
        conn.close()


def recursive(node):
    return {cid for cid, kind in node.pin_ls().items() if kind == "recursive"}


def process_gone(pid):
    return not console.processes.process_alive(pid)


@pytest.mark.parametrize("when", ["at once", "while sizing"])
def test_a_killed_worker_fails_its_task_and_the_next_sync_succeeds(make_live_server, node_with_thousands_of_pins,
                                                                  slow_sizes, when):
    node = node_with_thousands_of_pins
    server = make_live_server(node.api_url)
    task_id = start_sync(server)
    if when == "at once":
        task = wait_for(lambda: (lambda t: t if t["pid"] else None)(server.task(task_id)), interval=0.005,
                        message="the worker to start")
    else:
        task = wait_until_sizing(server, task_id)
    os.kill(task["pid"], signal.SIGKILL)
    started = time.monotonic()
    task = server.wait_for_task(task_id, timeout=server.settings.stale_seconds + 5)
    assert time.monotonic() - started <= server.settings.stale_seconds
    assert task["status"] == "failed" and task["error_message"] == "worker process exited unexpectedly"

    pins = catalogue(server.db_path)
    assert not pins or set(pins) == recursive(node)  # untouched, or the complete listing

    task = server.wait_for_task(start_sync(server))
    assert task["status"] == "completed", task
    pins = catalogue(server.db_path)
    assert set(pins) == recursive(node) and None not in pins.values()


def test_cancel_stops_a_running_sync_within_two_seconds(make_live_server, node_with_thousands_of_pins, slow_sizes):
    server = make_live_server(node_with_thousands_of_pins.api_url)
    task_id = start_sync(server)
    wait_until_sizing(server, task_id)
    r = server.request("POST", "/tasks/cancel?id=%d" % task_id)
    asked = time.monotonic()
    assert r.status == 200 and r.json == {"success": True, "status": "cancelling"}
    task = server.wait_for_task(task_id, timeout=10)
    assert time.monotonic() - asked <= 2.0
    assert task["status"] == "cancelled" and task["error_message"] == "Cancelled"
    assert 0 < task["result"]["sized"] < task["result"]["total"]  # what it had done
    assert wait_for(lambda: process_gone(task["pid"]), timeout=5)
    assert server.request("POST", "/tasks/cancel?id=%d" % task_id).status == 409

    retry = server.request("POST", "/tasks/retry?id=%d" % task_id)
    assert retry.status == 202
    done = server.wait_for_task(retry.json["taskId"])
    assert done["status"] == "completed" and done["retry_of"] == task_id
    assert done["result"]["sized"] == task["result"]["total"] - task["result"]["sized"]


def test_manual_termination_by_sql_stops_the_worker(make_live_server, node_with_thousands_of_pins, slow_sizes):
    server = make_live_server(node_with_thousands_of_pins.api_url)
    task_id = start_sync(server)
    pid = wait_until_sizing(server, task_id)["pid"]
    conn = sqlite3.connect(server.db_path)
    conn.execute("UPDATE background_tasks SET status='failed', error_message='Manually terminated' WHERE id=%d" % task_id)
    conn.commit()
    conn.close()
    wait_for(lambda: process_gone(pid), timeout=5, interval=0.05, message="the worker to exit")
    time.sleep(0.3)
    task = server.task(task_id)
    assert task["status"] == "failed" and task["error_message"] == "Manually terminated"
    assert "Stopped: its status was changed from outside" in server.request("GET", "/tasks/log?id=%d" % task_id).text


def test_a_worker_that_ignores_cancel_is_terminated_after_the_grace_period(make_live_server, node_with_thousands_of_pins,
                                                                           slow_sizes):
    server = make_live_server(node_with_thousands_of_pins.api_url, cancel_grace_seconds=1)
    task_id = start_sync(server)
    pid = wait_until_sizing(server, task_id)["pid"]
    os.kill(pid, signal.SIGSTOP)  # frozen: it cannot see the cancel
    try:
        assert server.request("POST", "/tasks/cancel?id=%d" % task_id).json["status"] == "cancelling"
        # Nobody polls: the server enforces the grace period on its own, and
        # says cancelled once the frozen worker is gone (SIGKILL ends it even frozen).
        def row():
            conn = console.store.connect(server.db_path)
            try:
                return console.store.get_task(conn, task_id)
            finally:
                conn.close()
        wait_for(lambda: row()["status"] == "cancelled", timeout=20, message="the forced cancel")
        assert row()["error_message"] == console.control.CANCEL_FORCED and process_gone(pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    wait_for(lambda: process_gone(pid), timeout=5, message="the terminated worker to exit")
    task = server.task(task_id)
    assert task["status"] == "cancelled" and task["error_message"] == console.control.CANCEL_FORCED


def test_stopping_the_node_mid_sync_keeps_the_catalogue_right(make_live_server, own_ipfs_node, slow_sizes, tmp_path):
    node = own_ipfs_node
    node.add_many([("own node pin %d\n" % i).encode() for i in range(6000)])
    server = make_live_server(node.api_url)
    first = server.wait_for_task(start_sync(server))
    assert first["status"] == "completed"
    removed = sorted(recursive(node))[:50]
    for cid in removed:
        node.pin_rm(cid)
    node.add_many([("own node pin, second batch %d\n" % i).encode() for i in range(4000)])
    expected = recursive(node)

    conn = sqlite3.connect(server.db_path)
    conn.execute("UPDATE pins SET size = NULL")  # all of them to look up again: a long sizing phase
    conn.commit()
    conn.close()
    task_id = start_sync(server)
    wait_until_sizing(server, task_id, fraction=0.3)
    node.stop()
    task = server.wait_for_task(task_id, timeout=30)
    assert task["status"] == "failed"
    assert task["error_message"].startswith("cannot reach the IPFS API at %s" % node.api_url)
    pins = catalogue(server.db_path)
    assert set(pins) == expected  # the listing was complete, so it was applied
    assert None in pins.values()

    node.start()
    conn = sqlite3.connect(server.db_path)
    conn.execute("INSERT INTO background_tasks (task_type, status) VALUES ('pin_sync', 'pending')")
    conn.commit()
    conn.close()
    import subprocess
    import sys
    out = subprocess.run([sys.executable, os.path.join(console.shipped.HERE, 'worker.py'), str(task_id + 1), "--db", server.db_path,
                          "--ipfs-api", node.api_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    assert out.returncode == 0, out.stdout
    assert out.stdout.decode().splitlines()[-1] == "[Task %d] Sync completed: %d pins synced" % (task_id + 1, len(expected))
    pins = catalogue(server.db_path)
    assert set(pins) == expected and None not in pins.values()


def test_fifty_pollers_see_no_errors_during_a_big_sync(make_live_server, node_with_thousands_of_pins):
    server = make_live_server(node_with_thousands_of_pins.api_url)
    task_id = start_sync(server)
    failures, counts = [], []
    done = threading.Event()

    def poll(path):
        n = 0
        while not done.is_set():
            r = server.request("GET", path)
            n += 1
            if r.status != 200 or b"locked" in r.body:
                failures.append((path, r.status, r.body[:200]))
        counts.append(n)

    paths = ["/pins/task-status?id=%d" % task_id if i % 2 else "/api/tasks?limit=20" for i in range(50)]
    threads = [threading.Thread(target=poll, args=(path,)) for path in paths]
    for t in threads:
        t.start()
    try:
        task = server.wait_for_task(task_id, timeout=180)
    finally:
        done.set()
        for t in threads:
            t.join()
    assert task["status"] == "completed", task
    assert task["result"]["total"] >= 10000
    assert failures == []
    assert len(counts) == 50 and min(counts) >= 1
    assert "locked" not in server.request("GET", "/tasks/log?id=%d" % task_id).text
