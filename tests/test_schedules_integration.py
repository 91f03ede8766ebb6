"""Schedules in the real server against the real Kubo, with a one-second
tick: a schedule fires on time, skips while a sync runs, survives a
restart, and runs once after the server was down."""

import json
import time

import console.schedules
import console.settings
import console.store
from support import LiveServer, wait_for


def add(server, **data):
    r = server.request("POST", "/api/schedules", body=json.dumps(data), headers={"Content-Type": "application/json"})
    assert r.status == 201, r.body
    return r.json["id"]


def sql(server, statement, *args):
    conn = console.store.connect(server.db_path)
    try:
        return conn.execute(statement, args).fetchall()
    finally:
        conn.close()


def scheduled_tasks(server, schedule_id):
    return [dict(row) for row in sql(server, "SELECT id, status, created_at, params FROM background_tasks ORDER BY id")
            if json.loads(row["params"]).get("schedule_id") == schedule_id]


def listed(server, schedule_id):
    return next(item for item in server.request("GET", "/api/schedules").json["schedules"]
                if item["id"] == schedule_id)


def test_a_schedule_fires_on_time_and_its_sync_runs(make_live_server, ipfs_node):
    server = make_live_server(ipfs_node.api_url, schedule_tick_seconds=1)
    schedule_id = add(server, task_type="pin_sync", every="1m")
    due = time.time() + 2
    sql(server, "UPDATE schedules SET next_run_at = ? WHERE id = ?", console.schedules.utc_text(due), schedule_id)
    task = wait_for(lambda: scheduled_tasks(server, schedule_id), timeout=20, message="the scheduled sync")[0]
    started = console.store.utc_seconds(task["created_at"])
    assert int(due) <= started <= due + 1 + 2       # within one tick (and a second of the clock's rounding)
    assert server.wait_for_task(task["id"])["status"] == "completed"
    item = listed(server, schedule_id)
    assert item["last_task_id"] == task["id"] and item["last_status"] == "completed"
    assert item["next_run_at"] > console.schedules.utc_text(time.time() + 45)


def test_a_scheduled_run_is_skipped_while_a_sync_runs(make_live_server, ipfs_node):
    server = make_live_server(ipfs_node.api_url, schedule_tick_seconds=1)
    conn = console.store.connect(server.db_path)
    try:
        holding = console.store.create_task(conn, "pin_sync")     # pending, its place held
    finally:
        conn.close()
    schedule_id = add(server, task_type="repo_gc", every="1m")
    sql(server, "UPDATE schedules SET next_run_at = datetime('now', '-1 minutes') WHERE id = ?", schedule_id)
    item = wait_for(lambda: (lambda s: s if s["last_status"] else None)(listed(server, schedule_id)), timeout=20,
                    message="the schedule's run")
    assert item["last_status"] == "skipped" and "task %d" % holding in item["last_message"]
    assert scheduled_tasks(server, schedule_id) == []


def test_a_schedule_survives_a_restart_and_runs_once_after_downtime(tmp_path, ipfs_node):
    settings = console.settings.Settings(db=str(tmp_path / "ipfsmaster.db"), ipfs_api=ipfs_node.api_url, port=0,
                                         schedule_tick_seconds=1)
    first = LiveServer(settings)
    try:
        schedule_id = add(first, task_type="pin_sync", every="1m")
    finally:
        first.close()
    # Down for three hours: 180 runs missed.
    sql(first, "UPDATE schedules SET next_run_at = datetime('now', '-3 hours') WHERE id = ?", schedule_id)
    second = LiveServer(settings)
    try:
        task = wait_for(lambda: scheduled_tasks(second, schedule_id), timeout=20, message="the missed run")[0]
        assert second.wait_for_task(task["id"])["status"] == "completed"
        item = listed(second, schedule_id)
        assert item["spec"] == "every 1m" and item["last_task_id"] == task["id"]
        assert item["next_run_at"] > console.schedules.utc_text(time.time() + 45)
        assert len(scheduled_tasks(second, schedule_id)) == 1
    finally:
        second.close()


def test_a_scheduled_sync_is_skipped_while_a_real_sync_runs(make_live_server, silent_node):
    server = make_live_server(silent_node.url, schedule_tick_seconds=1)
    r = server.request("POST", "/pins/sync")            # its worker lists, and the node never answers
    assert r.status == 202
    running = server.wait_for_task(r.json["taskId"], statuses=("running",))
    schedule_id = add(server, task_type="pin_sync", every="1m")
    sql(server, "UPDATE schedules SET next_run_at = datetime('now', '-1 minutes') WHERE id = ?", schedule_id)
    item = wait_for(lambda: (lambda s: s if s["last_status"] else None)(listed(server, schedule_id)), timeout=20,
                    message="the schedule's run")
    assert item["last_status"] == "skipped" and item["last_task_id"] is None
    assert item["last_message"] == "A pin sync is already running (task %d)." % running["id"]
    assert scheduled_tasks(server, schedule_id) == []
    assert server.task(running["id"])["status"] == "running"
