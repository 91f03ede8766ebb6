"""POST /pins/sync, GET /pins/task-status and GET /api/pins, in-process."""

import json
import os
import threading

import pytest

import console.processes
import console.store


def test_it_starts_a_sync_and_answers_at_once(client, db, spawned):
    r = client.post("/pins/sync")
    assert r.status == 202
    assert r.json == {"success": True, "taskId": spawned[0]}
    row = console.store.get_task(db, spawned[0])
    assert row["task_type"] == "pin_sync" and row["status"] == "pending"
    assert json.loads(row["params"]) == {"ipfs_api": "http://127.0.0.1:9"}


def test_it_refuses_a_second_sync_while_one_is_active(client, spawned):
    first = client.post("/pins/sync").json["taskId"]
    r = client.post("/pins/sync")
    assert r.status == 409
    assert r.json["success"] is False and r.json["taskId"] == first
    assert "already running" in r.json["error"]


def test_it_creates_exactly_one_task_for_30_simultaneous_requests(client, db, spawned):
    barrier = threading.Barrier(30)
    answers = []

    def post():
        barrier.wait()
        answers.append(client.post("/pins/sync"))

    threads = [threading.Thread(target=post) for _ in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [r for r in answers if r.status == 202]
    refused = [r for r in answers if r.status == 409]
    assert len(created) == 1 and len(refused) == 29
    winner = created[0].json["taskId"]
    assert all(r.json["taskId"] == winner for r in refused)
    assert db.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 1


def test_the_database_itself_forbids_two_active_syncs(db):
    db.execute("INSERT INTO background_tasks (task_type, status) VALUES ('pin_sync', 'pending')")
    with pytest.raises(console.store.sqlite3.IntegrityError):
        db.execute("INSERT INTO background_tasks (task_type, status) VALUES ('pin_sync', 'pending')")
    db.execute("UPDATE background_tasks SET status = 'completed'")
    db.execute("INSERT INTO background_tasks (task_type, status) VALUES ('pin_sync', 'pending')")


def test_a_finished_sync_does_not_block_the_next(client, db, spawned):
    first = client.post("/pins/sync").json["taskId"]
    db.execute("UPDATE background_tasks SET status = 'failed' WHERE id = ?", (first,))
    r = client.post("/pins/sync")
    assert r.status == 202 and r.json["taskId"] != first


def test_a_worker_that_cannot_start_fails_the_task(client, db, monkeypatch):
    def broken(settings, task_id):
        raise OSError(13, "Permission denied")
    monkeypatch.setattr(console.processes, "spawn_worker", broken)
    r = client.post("/pins/sync")
    assert r.status == 500 and r.json["success"] is False
    row = db.execute("SELECT status, error_message FROM background_tasks").fetchone()
    assert row["status"] == "failed" and "could not start the worker" in row["error_message"]


def test_task_status_has_the_contract_shape(client, db):
    db.execute("INSERT INTO background_tasks (task_type, status, progress, total, current_item, result, pid,"
               " started_at, heartbeat_at) VALUES ('pin_sync', 'running', 30, 120, 'bafy', '{\"added\": 1}', ?,"
               " datetime('now'), datetime('now'))", (os.getpid(),))
    task = client.get("/pins/task-status?id=1").json
    for key in ("id", "task_type", "status", "progress", "total", "percentage", "current_item", "result",
                "error_message", "created_at", "started_at", "completed_at", "pid"):
        assert key in task
    assert task["percentage"] == 25 and task["result"] == {"added": 1} and task["status"] == "running"


@pytest.mark.parametrize("status,progress,total,expected", [
    ("running", 0, 0, 0), ("running", 5, 0, 0), ("running", 150, 150, 100), ("running", 1, 3, 33),
    ("completed", 0, 0, 100), ("failed", 2, 4, 50),
])
def test_percentage_is_an_integer_from_0_to_100(client, db, status, progress, total, expected):
    db.execute("INSERT INTO background_tasks (task_type, status, progress, total, single_flight)"
               " VALUES ('pin_sync', ?, ?, ?, 0)", (status, progress, total))
    assert console.store.task_as_json(console.store.get_task(db, 1))["percentage"] == expected


@pytest.mark.parametrize("raw", ["", "abc", "-1", "0", "1.5", "99999999999999999999", "1;DROP TABLE pins",
                                 "1%20OR%201=1", "%E4%B8%80", "0x10", "+1", " "])
def test_it_rejects_bad_task_ids(client, raw):
    r = client.get("/pins/task-status?id=" + raw)
    assert r.status == 400
    assert r.json["success"] is False and r.json["error"]


def test_it_answers_404_for_an_unknown_task(client):
    r = client.get("/pins/task-status?id=12345")
    assert r.status == 404 and r.json == {"success": False, "error": "There is no task 12345."}


def test_it_lists_pins_with_search_sort_and_paging(client, db):
    db.executemany("INSERT INTO pins (cid, type, name, size) VALUES (?, 'recursive', ?, ?)",
                   [("bafy%03d" % i, "file-%03d" % i, i * 10) for i in range(120)])
    r = client.get("/api/pins?limit=10&offset=5&sort=size")
    assert r.status == 200
    assert r.json["total"] == 120 and [p["size"] for p in r.json["pins"]] == [i * 10 for i in range(5, 15)]
    assert set(r.json["pins"][0]) >= {"cid", "type", "name", "size"}
    assert r.json["summary"]["count"] == 120 and r.json["summary"]["total_size"] == sum(i * 10 for i in range(120))
    found = client.get("/api/pins?q=file-07").json
    assert found["total"] == 10
    by_cid = client.get("/api/pins?q=bafy119").json
    assert [p["name"] for p in by_cid["pins"]] == ["file-119"]
    assert client.get("/api/pins?q=%25").json["total"] == 0  # LIKE wildcards are literal


@pytest.mark.parametrize("query", ["sort=bogus", "limit=0", "limit=abc", "limit=100000", "offset=-1"])
def test_it_rejects_bad_pin_queries(client, query):
    r = client.get("/api/pins?" + query)
    assert r.status == 400 and r.json["success"] is False


def test_the_summary_follows_every_change_to_the_catalogue(client, db, settings):
    db.executemany("INSERT INTO pins (cid, type, size) VALUES (?, 'recursive', ?)",
                   [("a", 10), ("b", None), ("c", 5), ("d", None)])
    db.execute("UPDATE pins SET size = 7 WHERE cid = 'b'")
    db.execute("DELETE FROM pins WHERE cid IN ('c', 'd')")
    db.execute("UPDATE pins SET size = NULL WHERE cid = 'a'")
    expected = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(*) - COUNT(size) FROM pins").fetchone()
    summary = client.get("/api/pins").json["summary"]
    assert (summary["count"], summary["total_size"], summary["unsized"]) == tuple(expected) == (2, 7, 1)
    console.store.init_db(settings.db)  # starting again keeps the totals
    assert client.get("/api/pins").json["summary"]["count"] == 2
