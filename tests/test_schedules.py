"""Schedules: when they run, what they start, and every way to get one
wrong, over HTTP and on the command line (in-process; workers are not
started, see the ``spawned`` fixture)."""

import json
import time

import pytest

import console.schedules as schedules
import console.store
import ipfsmaster

ZH = {"Accept-Language": "zh-CN"}


def post_json(client, path, data, **headers):
    return client.post(path, body=json.dumps(data).encode(), headers=dict({"Content-Type": "application/json"},
                                                                          **headers))


def add(client, **data):
    r = post_json(client, "/api/schedules", data)
    assert r.status == 201, r.body
    return r.json["id"]


def schedule(client, schedule_id):
    return next(item for item in client.get("/api/schedules").json["schedules"] if item["id"] == schedule_id)


def due_in_the_past(db, schedule_id, seconds_ago=3 * 3600):
    db.execute("UPDATE schedules SET next_run_at = ? WHERE id = ?",
               (schedules.utc_text(time.time() - seconds_ago), schedule_id))


def tasks_of(db, schedule_id):
    return [row["id"] for row in db.execute(
        "SELECT id, params FROM background_tasks ORDER BY id") if json.loads(row["params"]).get("schedule_id")
        == schedule_id]


@pytest.mark.parametrize("data,spec", [
    ({"every": "90s"}, "every 90s"), ({"every": "15m"}, "every 15m"), ({"every": "120m"}, "every 2h"),
    ({"every": "6h"}, "every 6h"), ({"every": "1d"}, "every 1d"), ({"daily": "3:00"}, "daily 03:00"),
    ({"daily": "23:59"}, "daily 23:59"), ({"weekly": "Monday 03:00"}, "weekly mon 03:00"),
    ({"weekly": ["sun", "00:00"]}, "weekly sun 00:00"),
])
def test_it_stores_a_schedule_as_people_write_it(client, data, spec):
    schedule_id = add(client, task_type="pin_sync", **data)
    item = schedule(client, schedule_id)
    assert item["spec"] == spec and item["enabled"] and item["last_status"] is None
    assert item["next_run_at"] > time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


@pytest.mark.parametrize("data,english,chinese", [
    ({"task_type": "pin_sync", "every": "0m"}, "at most once a minute", "最多每分钟"),
    ({"task_type": "pin_sync", "every": "0"}, "is not a duration", "不是时长"),
    ({"task_type": "pin_sync", "every": "30s"}, "at most once a minute", "最多每分钟"),
    ({"task_type": "pin_sync", "every": "-5m"}, "is not a duration", "不是时长"),
    ({"task_type": "pin_sync", "daily": "25:00"}, "is not a time of day", "不是一天中的时间"),
    ({"task_type": "pin_sync", "daily": "12:60"}, "is not a time of day", "不是一天中的时间"),
    ({"task_type": "pin_sync", "daily": 3}, "Say when it runs", "请用 every"),
    ({"task_type": "pin_sync", "weekly": "someday 03:00"}, "is not a day of the week", "不是星期几"),
    ({"task_type": "pin_sync", "weekly": "mon"}, "weekly takes a day and a time", "weekly 需要"),
    ({"task_type": "pin_sync"}, "Say when it runs", "请用 every"),
    ({"task_type": "pin_sync", "every": "1h", "daily": "03:00"}, "Say when it runs", "请用 every"),
    ({"task_type": "frobnicate", "every": "1h"}, "cannot be scheduled", "不能按计划运行"),
    ({"task_type": "file_upload", "every": "1h"}, "cannot be scheduled", "不能按计划运行"),
    ({"every": "1h"}, "cannot be scheduled", "不能按计划运行"),
    ({"task_type": "pin_sync", "every": "1h", "params": []}, "params must be a JSON object", "params 必须"),
    ({"task_type": "pin_sync", "every": "1h", "params": {"x": 1}}, "takes no option 'x'", "没有选项"),
    ({"task_type": "repo_gc", "every": "1h", "params": {"above_percent": 0}}, "above_percent must be",
     "above_percent 必须"),
    ({"task_type": "repo_gc", "every": "1h", "params": {"above_percent": True}}, "above_percent must be",
     "above_percent 必须"),
    ({"task_type": "name_follow", "every": "1h"}, "IPNS name or a DNSLink", "IPNS 名称"),
    ({"task_type": "name_follow", "every": "1h", "params": {"name": "/ipfs/x"}}, "IPNS name or a DNSLink",
     "IPNS 名称"),
    ({"task_type": "name_follow", "every": "1h", "params": {"name": "/ipns/a", "keep": 0}}, "keep must be",
     "keep 必须"),
    ({"task_type": "pin_recover", "every": "1h"}, "No IPFS Cluster", "未设置 IPFS Cluster"),
    ({"task_type": "repo_gc", "every": "1h", "param": {"above_percent": 90}}, "takes no field 'param'",
     "没有字段 'param'"),
])
def test_it_rejects_a_bad_schedule_with_a_sentence_in_both_languages(client, db, data, english, chinese):
    r = post_json(client, "/api/schedules", data)
    assert r.status == 400 and r.json["success"] is False and english in r.json["error"], r.json
    assert chinese in post_json(client, "/api/schedules", data, **ZH).json["error"]
    assert db.execute("SELECT COUNT(*) FROM schedules").fetchone()[0] == 0


def test_it_rejects_bodies_that_are_not_json_objects(client):
    assert post_json(client, "/api/schedules", ["pin_sync"]).status == 400
    r = client.post("/api/schedules", body=b"{", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["error"] == "The request body is not valid JSON."


@pytest.mark.parametrize("argv,sentence", [
    (["--every", "0m"], "at most once a minute"),
    (["--daily", "25:00"], "is not a time of day"),
    (["--weekly", "funday", "03:00"], "is not a day of the week"),
    (["--every", "soon"], "is not a duration"),
])
def test_the_command_line_exits_2_for_a_bad_schedule(settings, capsys, argv, sentence):
    assert ipfsmaster.main(["schedule", "add", "pin_sync", "--db", settings.db] + argv) == 2
    assert sentence in capsys.readouterr().err


def test_the_command_line_refuses_unknown_types_and_options(settings, capsys):
    assert ipfsmaster.main(["schedule", "add", "frobnicate", "--every", "1h", "--db", settings.db]) == 2
    assert "cannot be scheduled" in capsys.readouterr().err
    assert ipfsmaster.main(["schedule", "add", "pin_sync", "--every", "1h", "--keep", "2", "--db", settings.db]) == 2
    assert "--keep does not apply to pin_sync" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stopped:
        ipfsmaster.main(["schedule", "add", "pin_sync", "--db", settings.db])
    assert stopped.value.code == 2


def test_the_command_line_adds_lists_runs_disables_and_removes(settings, db, spawned, capsys):
    assert ipfsmaster.main(["schedule", "add", "name_follow", "--every", "6h", "--name", "/ipns/example.org",
                            "--keep", "2", "--db", settings.db]) == 0
    schedule_id = int(capsys.readouterr().out.strip())
    assert ipfsmaster.main(["schedule", "ls", "--json", "--db", settings.db]) == 0
    listed = json.loads(capsys.readouterr().out)["schedules"]
    assert [(item["id"], item["task_type"], item["spec"], item["params"]) for item in listed] == [
        (schedule_id, "name_follow", "every 6h", {"name": "/ipns/example.org", "keep": 2})]
    assert set(listed[0]) >= {"id", "task_type", "spec", "params", "enabled", "next_run_at", "last_run_at",
                              "last_task_id", "last_status"}
    assert ipfsmaster.main(["schedule", "run", str(schedule_id), "--db", settings.db]) == 0
    task_id = int(capsys.readouterr().out.strip())
    assert spawned == [task_id]
    task = console.store.task_as_json(console.store.get_task(db, task_id))
    assert task["task_type"] == "name_follow"
    assert task["params"]["name"] == "/ipns/example.org" and task["params"]["schedule_id"] == schedule_id
    assert ipfsmaster.main(["schedule", "disable", str(schedule_id), "--db", settings.db]) == 0
    assert ipfsmaster.main(["schedule", "ls", "--db", settings.db]) == 0
    table = capsys.readouterr().out
    assert "every 6h" in table and " no " in table and "pending" in table
    assert ipfsmaster.main(["schedule", "enable", str(schedule_id), "--db", settings.db]) == 0
    assert ipfsmaster.main(["schedule", "rm", str(schedule_id), "--db", settings.db]) == 0
    capsys.readouterr()
    assert ipfsmaster.main(["schedule", "rm", str(schedule_id), "--db", settings.db]) == 4
    assert "There is no schedule" in capsys.readouterr().err
    assert ipfsmaster.main(["schedule", "run", "99", "--db", settings.db]) == 4


def test_a_time_of_day_is_the_next_one_in_local_time():
    now = time.time()
    daily = schedules.next_run("daily 03:15", now)
    assert now < daily <= now + 86400 + 3600
    assert time.localtime(daily)[3:5] == (3, 15)
    weekly = schedules.next_run("weekly fri 22:00", now)
    assert now < weekly <= now + 7 * 86400 + 3600
    assert time.localtime(weekly).tm_wday == 4 and time.localtime(weekly)[3:5] == (22, 0)
    assert schedules.next_run("every 90s", now) == now + 90


def test_a_run_missed_while_the_server_was_down_runs_once(settings, db, client, spawned):
    schedule_id = add(client, task_type="pin_sync", every="1m")
    due_in_the_past(db, schedule_id)        # 180 slots missed
    assert [outcome for _, outcome, _ in schedules.tick(settings, db)] == ["started"]
    assert schedules.tick(settings, db) == []
    assert len(spawned) == 1 and tasks_of(db, schedule_id) == spawned
    item = schedule(client, schedule_id)
    assert item["last_task_id"] == spawned[0] and item["last_status"] == "pending"
    assert item["next_run_at"] > time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 50))


def test_a_run_that_would_collide_is_skipped_and_says_so(settings, db, client, spawned):
    running = console.store.create_task(db, "pin_sync")
    schedule_id = add(client, task_type="repo_gc", every="1h")
    due_in_the_past(db, schedule_id, 10)
    assert [outcome for _, outcome, _ in schedules.tick(settings, db)] == ["skipped"]
    assert spawned == []
    item = schedule(client, schedule_id)
    assert item["last_status"] == "skipped" and item["last_task_id"] is None
    assert "pin sync" in item["last_message"] and str(running) in item["last_message"]
    zh = client.get("/api/schedules", headers=ZH).json["schedules"][0]
    assert "固定列表同步" in zh["last_message"]
    r = client.post("/api/schedules/%d/run" % schedule_id)
    assert r.status == 409 and r.json["taskId"] == running


def test_a_disabled_schedule_never_runs_and_counts_again_from_when_it_is_enabled(settings, db, client, spawned):
    schedule_id = add(client, task_type="pin_sync", every="1h")
    assert post_json(client, "/api/schedules/%d" % schedule_id, {"enabled": False}).json["schedule"]["enabled"] is False
    due_in_the_past(db, schedule_id)
    assert schedules.tick(settings, db) == [] and spawned == []
    item = post_json(client, "/api/schedules/%d" % schedule_id, {"enabled": True}).json["schedule"]
    assert item["enabled"] and item["next_run_at"] > time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3500))
    assert schedules.tick(settings, db) == []


def test_a_schedule_can_be_edited(client):
    schedule_id = add(client, task_type="repo_gc", every="1h", params={"above_percent": 90})
    r = post_json(client, "/api/schedules/%d" % schedule_id, {"daily": "04:00", "params": {"above_percent": 70}})
    assert r.status == 200 and r.json["schedule"]["spec"] == "daily 04:00"
    assert r.json["schedule"]["params"] == {"above_percent": 70}
    bad = post_json(client, "/api/schedules/%d" % schedule_id, {"daily": "24:00"})
    assert bad.status == 400 and schedule(client, schedule_id)["spec"] == "daily 04:00"
    assert post_json(client, "/api/schedules/%d" % schedule_id, {"enabled": "no"}).status == 400
    misspelt = post_json(client, "/api/schedules/%d" % schedule_id, {"parms": {"above_percent": 10}}, **ZH)
    assert misspelt.status == 400 and "没有字段 'parms'" in misspelt.json["error"]


def test_run_now_starts_its_task_at_once(client, db, spawned):
    schedule_id = add(client, task_type="task_cleanup", daily="03:00", params={"days": 7})
    r = client.post("/api/schedules/%d/run" % schedule_id)
    assert r.status == 202 and spawned == [r.json["taskId"]]
    task = client.get("/pins/task-status?id=%d" % r.json["taskId"]).json
    assert task["task_type"] == "task_cleanup" and task["params"] == {"days": 7, "schedule_id": schedule_id}


def test_the_schedule_addresses_refuse_what_they_do_not_know(client):
    schedule_id = add(client, task_type="pin_sync", every="1h")
    assert client.post("/api/schedules/999/run").status == 404
    assert client.request("DELETE", "/api/schedules/999").status == 404
    for path in ("/api/schedules/abc", "/api/schedules/0/run", "/api/schedules/-1"):
        r = client.post(path)
        assert r.status == 400 and "schedule id" in r.json["error"]
    assert client.request("DELETE", "/api/schedules/%d/run" % schedule_id).status == 405
    assert client.request("PUT", "/api/schedules").status == 405
    assert client.get("/api/schedules/%d" % schedule_id).status == 405
    cross = client.request("DELETE", "/api/schedules/%d" % schedule_id, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status == 403
    r = client.request("DELETE", "/api/schedules/%d" % schedule_id)
    assert r.status == 200 and client.get("/api/schedules").json["schedules"] == []


def test_a_garbage_collection_above_a_watermark_waits_for_it(settings, db, client, spawned, fake_node):
    settings.ipfs_api = fake_node.url
    fake_node.repo_size = 5 * 10 ** 9           # 50% of the fake node's StorageMax
    schedule_id = add(client, task_type="repo_gc", every="1h", params={"above_percent": 80})
    due_in_the_past(db, schedule_id, 10)
    assert [outcome for _, outcome, _ in schedules.tick(settings, db)] == ["skipped"]
    assert "50.0%" in schedule(client, schedule_id)["last_message"] and spawned == []
    fake_node.repo_size = 9 * 10 ** 9
    due_in_the_past(db, schedule_id, 10)
    assert [outcome for _, outcome, _ in schedules.tick(settings, db)] == ["started"]
    assert len(spawned) == 1


@pytest.mark.parametrize("data", [
    {"task_type": ["pin_sync"], "every": "1h"}, {"task_type": {"a": 1}, "every": "1h"}, {"task_type": None},
    {"task_type": "pin_sync", "every": 3600}, {"task_type": "pin_sync", "every": None, "daily": None},
    {"task_type": "pin_sync", "weekly": {"day": "mon"}}, {"task_type": "pin_sync", "weekly": [1, 2]},
    {"task_type": "pin_sync", "weekly": ["mon", "03:00", "x"]}, {"task_type": "pin_sync", "every": "9" * 40 + "m"},
    {"task_type": "pin_sync", "daily": "\u0663:00"}, {"task_type": "name_follow", "every": "1h", "params": {"name": 5}},
    {"task_type": "name_follow", "every": "1h", "params": {"name": "/ipns/" + "a" * 300}},
    {"task_type": "name_follow", "every": "1h", "params": {"name": "/ipns/a", "keep": 1.5}},
    {"task_type": "task_cleanup", "every": "1h", "params": {"days": "-1"}},
    {"task_type": "repo_gc", "every": "1h", "params": {"above_percent": 101}},
])
def test_it_handles_any_odd_body_with_a_4xx_sentence(client, data):
    for path in ("/api/schedules", "/api/schedules/1"):
        r = post_json(client, path, data)
        assert 400 <= r.status < 500 and r.json["success"] is False and r.json["error"].endswith("."), (path, r.body)
    add(client, task_type="pin_sync", every="1h")
    r = post_json(client, "/api/schedules/1", data)
    assert r.status == 400 or (r.status == 200 and data.get("every", 0) is None), r.body
    assert schedule(client, 1)["spec"] == "every 1h" and schedule(client, 1)["params"] == {}


def test_schedules_and_alerts_need_the_password_when_one_is_set(settings):
    import console.web.app
    from support import Client
    settings.password = "s3cret schedules"
    locked = Client(console.web.app.App(settings))
    for method, path in (("GET", "/api/schedules"), ("POST", "/api/schedules"), ("POST", "/api/schedules/1/run"),
                         ("DELETE", "/api/schedules/1"), ("GET", "/api/alerts")):
        r = locked.request(method, path)
        assert r.status == 401 and r.json["success"] is False, (method, path)
    bearer = {"Authorization": "Bearer s3cret schedules"}
    assert locked.get("/api/schedules", headers=bearer).json == {"schedules": []}
    assert locked.get("/api/alerts", headers=bearer).json == {"alerts": []}


def test_a_page_on_another_site_cannot_change_a_schedule(client):
    schedule_id = add(client, task_type="pin_sync", every="1h")
    elsewhere = {"Origin": "http://evil.example"}
    assert client.request("DELETE", "/api/schedules/%d" % schedule_id, headers=elsewhere).status == 403
    assert client.post("/api/schedules/%d/run" % schedule_id, headers=elsewhere).status == 403
    assert post_json(client, "/api/schedules", {"task_type": "pin_sync", "every": "1h"}, **elsewhere).status == 403
    assert len(client.get("/api/schedules").json["schedules"]) == 1


@pytest.fixture
def in_shanghai(monkeypatch):
    """The server's local time is UTC+8 (no summer time) for this test."""
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_time_of_day_is_the_servers_local_time_not_utc(in_shanghai, client):
    now = time.time()
    assert time.gmtime(schedules.next_run("daily 03:00", now))[3:5] == (19, 0)       # 03:00 in Shanghai
    weekly = schedules.next_run("weekly mon 07:30", now)
    assert time.gmtime(weekly)[3:5] == (23, 30) and time.gmtime(weekly).tm_wday == 6   # Sunday 23:30 UTC
    schedule_id = add(client, task_type="pin_sync", daily="03:00")
    assert schedule(client, schedule_id)["next_run_at"].endswith(" 19:00:00")


@pytest.fixture
def in_new_york(monkeypatch):
    """The server's local time is New York's (summer time, which ends on 1 November 2026)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_daily_run_runs_once_on_the_night_the_clocks_go_back(in_new_york):
    first = time.mktime((2026, 11, 1, 1, 30, 0, 0, 0, 1))        # 01:30 summer time; an hour later, 01:30 again
    # The C library's mktime guesses an ambiguous time's offset from the one
    # it used last: after a time in winter time, it picks the second 01:30.
    winter = time.mktime((2026, 11, 1, 1, 30, 0, 0, 0, 0))
    assert winter == first + 3600
    assert schedules.next_run("daily 01:30", first - 3600) == first
    time.mktime((2026, 11, 1, 1, 30, 0, 0, 0, 0))
    after = schedules.next_run("daily 01:30", first + 5)          # the tick that ran it, a few seconds later
    assert time.localtime(after)[:5] == (2026, 11, 2, 1, 30) and after == first + 25 * 3600
    time.mktime((2026, 11, 1, 1, 30, 0, 0, 0, 0))
    assert schedules.next_run("weekly sun 01:30", first - 86400) == first
    time.mktime((2026, 11, 1, 1, 30, 0, 0, 0, 0))
    assert schedules.next_run("weekly sun 01:30", first + 5) == first + 7 * 86400 + 3600


def test_a_daily_run_at_a_time_the_clocks_skip_runs_that_day(in_new_york):
    before = time.mktime((2026, 3, 8, 1, 45, 0, 0, 0, -1))          # 02:00 becomes 03:00 at once
    when = schedules.next_run("daily 02:30", before)
    assert time.localtime(when)[:3] == (2026, 3, 8) and when - before == 45 * 60
    assert time.localtime(schedules.next_run("daily 02:30", when + 5))[:5] == (2026, 3, 9, 2, 30)


def test_a_late_tick_does_not_slow_a_repeat_down(settings, db, client, spawned):
    schedule_id = add(client, task_type="pin_sync", every="1m")
    slot = int(time.time()) - 14                                     # the tick came 14 s after the slot
    db.execute("UPDATE schedules SET next_run_at = ? WHERE id = ?", (schedules.utc_text(slot), schedule_id))
    assert [outcome for _, outcome, _ in schedules.tick(settings, db)] == ["started"]
    assert schedule(client, schedule_id)["next_run_at"] == schedules.utc_text(slot + 60)


def follow_schedule(client):
    return add(client, task_type="name_follow", every="1m", params={"name": "/ipns/example.org"})


def test_a_schedule_never_runs_twice_at_once(settings, db, client, spawned):
    schedule_id = follow_schedule(client)       # name_follow is not single flight: only the schedule stops it
    first = client.post("/api/schedules/%d/run" % schedule_id)
    assert first.status == 202
    again = client.post("/api/schedules/%d/run" % schedule_id)
    assert again.status == 409 and again.json["taskId"] == first.json["taskId"]
    assert "already running (task %d)" % first.json["taskId"] in again.json["error"]
    zh = client.post("/api/schedules/%d/run" % schedule_id, headers=ZH)
    assert zh.status == 409 and "跟随名称" in zh.json["error"]
    due_in_the_past(db, schedule_id, 10)
    assert [outcome for _, outcome, _ in schedules.tick(settings, db)] == ["skipped"]
    assert spawned == [first.json["taskId"]]
    item = schedule(client, schedule_id)
    assert item["last_status"] == "skipped" and item["last_task_id"] == first.json["taskId"]
    console.store.finish_task(db, first.json["taskId"], "completed", "pending")
    assert client.post("/api/schedules/%d/run" % schedule_id).status == 202 and len(spawned) == 2


def test_a_tick_and_a_run_by_hand_at_the_same_moment_start_one_task(settings, client, spawned, monkeypatch):
    import threading
    schedule_id = follow_schedule(client)
    real_start = schedules.start_task

    def slow_start(*args, **kwargs):
        time.sleep(0.3)                 # both have looked at the schedule before either task exists
        return real_start(*args, **kwargs)
    monkeypatch.setattr(schedules, "start_task", slow_start)
    outcomes = []

    def run():
        conn = console.store.connect(settings.db)
        try:
            outcomes.append(schedules.run_now(settings, conn, schedule_id)[0])
        finally:
            conn.close()
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["skipped", "started"] and len(spawned) == 1


def test_a_last_run_whose_worker_died_does_not_hold_the_schedule_up(settings, db, client, spawned):
    import subprocess
    import sys
    schedule_id = follow_schedule(client)
    first = client.post("/api/schedules/%d/run" % schedule_id).json["taskId"]
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    db.execute("UPDATE background_tasks SET status = 'running', pid = ?, started_at = datetime('now'),"
               " heartbeat_at = datetime('now') WHERE id = ?", (gone.pid, first))
    r = client.post("/api/schedules/%d/run" % schedule_id)
    assert r.status == 202 and r.json["taskId"] != first
    assert console.store.get_task(db, first)["status"] == "failed"
