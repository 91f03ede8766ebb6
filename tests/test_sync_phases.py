"""A first sync shows the catalogue as soon as its listing is applied,
with sizes filling in after (the task says so: ``result.phase``), and a
worker killed while it looks up sizes leaves the listing applied and the
sizes it had not written unknown, for the next sync to fill in."""

import json
import os
import signal
import subprocess
import sys
import threading

import console.control
import console.shipped
import console.store
import console.tasks
from support import wait_for
from test_pin_sync import assert_summary_matches, catalogue, cid, fill


def slow_sizes(node, monkeypatch, delay=0.01):
    """Look-ups slow enough (two connections, one at a time) that the size phase lasts seconds."""
    node.lookup_delay = delay
    monkeypatch.setenv("IPFSMASTER_SIZE_CONCURRENCY", "2")
    monkeypatch.setenv("IPFSMASTER_SIZE_PIPELINE", "1")


def new_sync(db, node):
    return db.execute("INSERT INTO background_tasks (task_type, status, params) VALUES ('pin_sync', 'pending', ?)",
                      (json.dumps({"ipfs_api": node.url}),)).lastrowid


def task(db, task_id):
    return console.store.task_as_json(console.store.get_task(db, task_id))


def in_size_phase(db, task_id):
    current = task(db, task_id)
    return current if (current["result"] or {}).get("phase") == "sizes" else None


def test_the_pins_are_listed_and_searchable_while_their_sizes_are_looked_up(settings, db, client, fake_node,
                                                                            monkeypatch):
    fill(fake_node, 200)
    fake_node.pins[cid(123)]["Name"] = "the one to find"
    slow_sizes(fake_node, monkeypatch)
    task_id = new_sync(db, fake_node)
    runner = threading.Thread(target=console.tasks.run_task, args=(task_id, settings.db))
    runner.start()
    try:
        wait_for(lambda: in_size_phase(db, task_id), timeout=30, message="the sync's size phase")
        status = client.get("/pins/task-status?id=%d" % task_id).json
        assert status["status"] == "running" and status["result"]["phase"] == "sizes"
        answer = client.get("/api/pins?limit=1000").json
        assert answer["total"] == 200 and answer["summary"]["count"] == 200
        assert answer["summary"]["unsized"] > 0
        assert any(pin["size"] is None for pin in answer["pins"])
        found = client.get("/api/pins?q=the+one").json
        assert [pin["cid"] for pin in found["pins"]] == [cid(123)]
        assert_summary_matches(db)
    finally:
        runner.join(60)
    done = task(db, task_id)
    assert done["status"] == "completed" and "phase" not in done["result"]
    assert all(size == 1000 + int(key[-6:]) for key, (_, _, size) in catalogue(db).items())


def test_the_listing_phase_is_said_too(settings, db, fake_node, monkeypatch):
    fill(fake_node, 50)
    fake_node.listing_pause = 1.0
    task_id = new_sync(db, fake_node)
    runner = threading.Thread(target=console.tasks.run_task, args=(task_id, settings.db))
    runner.start()
    try:
        seen = wait_for(lambda: (task(db, task_id)["result"] or {}).get("phase"), timeout=10)
        assert seen == "listing" and not catalogue(db)
    finally:
        runner.join(30)


def test_a_worker_killed_while_it_looks_up_sizes_leaves_the_listing_applied(settings, db, fake_node, monkeypatch):
    fill(fake_node, 500)
    fake_node.pins[cid(7)]["Name"] = "named"
    slow_sizes(fake_node, monkeypatch, delay=0.01)
    task_id = new_sync(db, fake_node)
    worker = subprocess.Popen([sys.executable, os.path.join(console.shipped.HERE, "worker.py"), str(task_id),
                               "--db", settings.db], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: in_size_phase(db, task_id) and
                 0 < db.execute("SELECT unsized FROM pin_stats").fetchone()[0] < 480, timeout=60,
                 message="some sizes written (a batch at least every second), not all")
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.wait()
    # The listing is applied whole; the sizes written are right; the others are unknown.
    pins = catalogue(db)
    assert sorted(pins) == sorted(fake_node.pins) and pins[cid(7)][1] == "named"
    known = {key: size for key, (_, _, size) in pins.items() if size is not None}
    assert known and len(known) < 500
    assert all(size == 1000 + int(key[-6:]) for key, size in known.items())
    assert_summary_matches(db)
    console.control.mark_stale_tasks(db, settings)
    assert task(db, task_id)["status"] == "failed"

    # The next sync finds the listing it applied and looks up only the sizes still unknown.
    fake_node.lookup_delay = 0
    fake_node.lookups.clear()
    again_id = new_sync(db, fake_node)
    console.tasks.run_task(again_id, settings.db)
    again = task(db, again_id)
    assert again["status"] == "completed" and again["result"]["unchanged"] == 500
    assert again["result"]["sized"] == 500 - len(known)
    assert not any(fake_node.lookups["files/stat", key] for key in known)
    assert all(size == 1000 + int(key[-6:]) for key, (_, _, size) in catalogue(db).items())
    assert_summary_matches(db)
