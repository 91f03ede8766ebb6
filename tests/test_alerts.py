"""Alerts: each condition opens one alert when it begins and closes it when
it clears; /api/alerts, the `alerts` command's exit code, the metric, and
the webhook's signed, ordered, retried posts to a real local receiver."""

import json
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

import console.alerts as alerts
import console.catalogue
import console.schedules
import console.store
import console.web.server
import console.webhook as webhook
import ipfsmaster
from support import wait_for
from webhook_receiver import signed_by

SECRET = "hook s3cret"


def task(db, task_type, status, error=None, params=None):
    task_id = console.store.create_task(db, task_type, params)
    db.execute("UPDATE background_tasks SET status = 'running' WHERE id = ?", (task_id,))
    assert console.store.finish_task(db, task_id, status, "running", error)
    return task_id


def open_alerts(db):
    return sorted((row["kind"], row["subject"]) for row in db.execute("SELECT * FROM alerts WHERE closed_at IS NULL"))


def alerts_metric(client):
    text = client.get("/metrics").text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "ipfsmaster_alerts_open")
    return {sample.labels["kind"]: sample.value for sample in family.samples}


def test_an_unreachable_node_opens_one_alert_and_its_return_closes_it(settings, db, client, fake_node, capsys):
    assert alerts.check(settings, db) == ([], [])      # the settings' node is on port 9: nobody there, once
    opened, closed = alerts.check(settings, db)         # twice in a row: down
    assert len(opened) == 1 and closed == [] and open_alerts(db) == [("node_down", settings.ipfs_api)]
    assert alerts.check(settings, db) == ([], [])      # raised once, not on every check
    listed = client.get("/api/alerts").json["alerts"]
    assert [(a["kind"], a["closed_at"]) for a in listed] == [("node_down", None)]
    assert set(listed[0]) == {"id", "kind", "subject", "message", "opened_at", "closed_at"}
    assert "cannot be reached" in listed[0]["message"]
    assert "无法连接" in client.get("/api/alerts", headers={"Accept-Language": "zh"}).json["alerts"][0]["message"]
    assert alerts_metric(client)["node_down"] == 1 and alerts_metric(client)["task_failed"] == 0
    assert ipfsmaster.main(["alerts", "--db", settings.db]) == 6
    assert "node_down" in capsys.readouterr().out

    settings.ipfs_api = fake_node.url
    console.node.forget_overviews()
    assert alerts.check(settings, db) == ([], opened)
    assert open_alerts(db) == [] and alerts_metric(client)["node_down"] == 0
    assert ipfsmaster.main(["alerts", "--json", "--db", settings.db]) == 0
    shown = json.loads(capsys.readouterr().out)["alerts"]
    assert shown[0]["id"] == opened[0] and shown[0]["closed_at"] is not None


def test_the_repository_past_its_watermarks_opens_a_warning_then_an_alarm(settings, db, fake_node):
    settings.ipfs_api = fake_node.url
    for size, expected in ((5 * 10 ** 9, []), (int(8.5 * 10 ** 9), [("repo_watermark", "warn")]),
                           (int(9.6 * 10 ** 9), [("repo_watermark", "alarm"), ("repo_watermark", "warn")]),
                           (10 ** 9, [])):
        fake_node.repo_size = size
        console.node.forget_overviews()
        alerts.check(settings, db)
        assert open_alerts(db) == expected, size
    settings.repo_warn_percent = 40
    fake_node.repo_size = int(4.5 * 10 ** 9)
    console.node.forget_overviews()
    alerts.check(settings, db)
    row = db.execute("SELECT * FROM alerts WHERE closed_at IS NULL").fetchone()
    assert "45.0%" in alerts.alert_as_json(row)["message"] and "40%" in alerts.alert_as_json(row)["message"]


def test_a_failed_task_opens_an_alert_until_one_of_its_type_completes(settings, db, fake_node):
    settings.ipfs_api = fake_node.url
    failed = task(db, "pin_sync", "failed", "worker process exited unexpectedly")
    task(db, "repo_gc", "cancelled")
    alerts.check(settings, db)
    assert open_alerts(db) == [("task_failed", "pin_sync")]
    message = alerts.list_alerts(db)[0]["message"]
    assert "task %d" % failed in message and "worker process exited unexpectedly" in message
    task(db, "pin_sync", "completed")
    alerts.check(settings, db)
    assert open_alerts(db) == []


def test_a_schedule_that_keeps_failing_opens_an_alert(settings, db, fake_node):
    settings.ipfs_api = fake_node.url
    schedule_id = console.schedules.add_schedule(settings, db, "repo_verify", "every 1h")
    for _ in range(2):
        task(db, "repo_verify", "failed", "boom", {"schedule_id": schedule_id})
    alerts.check(settings, db)
    assert ("schedule_failing", str(schedule_id)) not in open_alerts(db)
    task(db, "repo_verify", "failed", "boom", {"schedule_id": schedule_id})
    alerts.check(settings, db)
    assert ("schedule_failing", str(schedule_id)) in open_alerts(db)
    task(db, "repo_verify", "completed", None, {"schedule_id": schedule_id})
    alerts.check(settings, db)
    assert open_alerts(db) == []


def test_the_clusters_peers_and_pins_open_their_alerts(settings, db, fake_node):
    settings.ipfs_api = fake_node.url
    settings.cluster_api = "http://127.0.0.1:9"
    console.catalogue.record_cluster_peers(db, [("12D3peerA", "alpha", "1.1", "ipfsA", None),
                                                ("12D3peerB", "beta", "1.1", "ipfsB", "dial backoff")])
    db.execute("INSERT INTO pins (cid, type) VALUES ('bafyone', 'recursive'), ('bafytwo', 'recursive')")
    db.execute("INSERT INTO pin_replication (cid, wanted, pinned, in_error) VALUES ('bafyone', 2, 1, 1),"
               " ('bafytwo', 2, 1, 0)")
    alerts.check(settings, db)
    assert open_alerts(db) == [("cluster_peer_down", "12D3peerB"), ("pins_in_error", ""), ("under_replicated", "")]
    texts = {a["kind"]: a["message"] for a in alerts.list_alerts(db)}
    assert "beta" in texts["cluster_peer_down"] and "dial backoff" in texts["cluster_peer_down"]
    assert texts["under_replicated"].startswith("2 pins")
    console.catalogue.record_cluster_peers(db, [("12D3peerB", "beta", "1.1", "ipfsB", None)])
    db.execute("DELETE FROM pin_replication")
    alerts.check(settings, db)
    assert open_alerts(db) == []


def test_the_webhook_posts_each_opening_and_closing_signed_in_order_retrying_a_receiver_that_fails(
        settings, db, fake_node, receiver):
    settings.webhook_url, settings.webhook_secret = receiver.url, SECRET
    alerts.check(settings, db)
    opened, _ = alerts.check(settings, db)               # node_down: nobody on port 9, twice
    settings.ipfs_api = fake_node.url
    console.node.forget_overviews()
    alerts.check(settings, db)
    waiting = db.execute("SELECT COUNT(*) FROM webhook_outbox WHERE status = 'waiting'").fetchone()[0]
    assert waiting == 2
    due = webhook.deliver_due(settings, db)              # the receiver fails: tried again after 1 s
    assert due is not None and 0.5 < due - time.time() <= 1.0
    db.execute("UPDATE webhook_outbox SET next_attempt_at = 0")
    due = webhook.deliver_due(settings, db)              # fails again: the wait doubles
    assert 1.5 < due - time.time() <= 2.0
    row = db.execute("SELECT attempts, last_error FROM webhook_outbox ORDER BY id LIMIT 1").fetchone()
    assert row["attempts"] == 2 and "500" in row["last_error"]
    db.execute("UPDATE webhook_outbox SET next_attempt_at = 0")
    assert webhook.deliver_due(settings, db) is None
    delivered = receiver.delivered()
    assert [json.loads(body)["event"] for _, body in delivered] == ["opened", "closed"]
    for headers, body in delivered:
        assert signed_by(SECRET, headers, body) and headers["Content-Type"] == "application/json"
        alert = json.loads(body)["alert"]
        assert alert["id"] == opened[0] and alert["kind"] == "node_down"
        assert set(alert) == {"id", "kind", "subject", "message", "opened_at", "closed_at"}
    assert not signed_by("another secret", *delivered[0])
    assert [status for status, _, _ in receiver.posts] == [500, 500, 200, 200]


def test_without_a_webhook_nothing_is_queued(settings, db):
    alerts.check(settings, db)
    alerts.check(settings, db)
    assert open_alerts(db) == [("node_down", settings.ipfs_api)]
    assert db.execute("SELECT COUNT(*) FROM webhook_outbox").fetchone()[0] == 0


def test_a_post_undelivered_for_a_day_is_given_up(settings, db, receiver):
    settings.webhook_url = receiver.url
    receiver.failures = 10
    db.execute("INSERT INTO webhook_outbox (body, created_at) VALUES ('{}', datetime('now', '-2 days'))")
    assert webhook.deliver_due(settings, db) is None
    assert db.execute("SELECT status FROM webhook_outbox").fetchone()[0] == "abandoned"


def test_the_webhook_without_a_secret_sends_no_signature_and_a_bad_url_is_an_error(settings, db, receiver):
    settings.webhook_url = receiver.url
    receiver.failures = 0
    assert webhook.post(receiver.url, b"{}") is None
    assert "X-IPFSMaster-Signature" not in receiver.posts[0][1]
    assert "http://" in webhook.post("ftp://127.0.0.1/x", b"{}")
    assert webhook.post("http://127.0.0.1:9/x", b"{}")      # nobody there: a reason, not an exception


def test_the_webhook_and_the_watermarks_come_from_flags_or_the_environment(tmp_path, monkeypatch):
    from console.cli.commands import settings_from
    from console.cli.parser import parse
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    settings = settings_from(parse(["serve", "--webhook", "http://127.0.0.1:1/hook", "--webhook-secret-file",
                                    str(secret_file), "--repo-warn-percent", "70", "--schedule-tick-seconds", "2"]))
    assert (settings.webhook_url, settings.webhook_secret) == ("http://127.0.0.1:1/hook", SECRET)
    assert (settings.repo_warn_percent, settings.repo_alarm_percent, settings.schedule_tick_seconds) == (70, 95, 2)
    assert SECRET not in repr(settings)
    monkeypatch.setenv("IPFSMASTER_WEBHOOK_URL", "http://127.0.0.1:2/env")
    monkeypatch.setenv("IPFSMASTER_WEBHOOK_SECRET", "from the environment")
    monkeypatch.setenv("IPFSMASTER_REPO_ALARM_PERCENT", "90")
    settings = settings_from(parse(["serve"]))
    assert (settings.webhook_url, settings.webhook_secret, settings.repo_alarm_percent) == (
        "http://127.0.0.1:2/env", "from the environment", 90)
    for argv in (["--repo-alarm-percent", "101"], ["--repo-warn-percent", "0"], ["--schedule-tick-seconds", "0"]):
        with pytest.raises(SystemExit) as stopped:
            parse(["serve"] + argv)
        assert stopped.value.code == 2
    monkeypatch.setenv("IPFSMASTER_REPO_WARN_PERCENT", "150")
    with pytest.raises(SystemExit) as stopped:
        settings_from(parse(["serve"]))
    assert "at most 100" in str(stopped.value)
    monkeypatch.setenv("IPFSMASTER_REPO_WARN_PERCENT", "91")
    with pytest.raises(SystemExit) as stopped:
        settings_from(parse(["serve"]))
    assert "must not be above --repo-alarm-percent (90)" in str(stopped.value)


def test_a_worker_that_died_opens_a_task_failed_alert_with_nobody_watching(settings, db, fake_node):
    import console.web.unattended
    settings.ipfs_api = fake_node.url
    task_id = console.store.create_task(db, "pin_sync")
    db.execute("UPDATE background_tasks SET status = 'running', pid = 999999999,"
               " started_at = datetime('now', '-5 minutes'), heartbeat_at = datetime('now', '-5 minutes')"
               " WHERE id = ?", (task_id,))
    console.web.unattended.look(settings)
    assert console.store.get_task(db, task_id)["status"] == "failed"
    assert open_alerts(db) == [("task_failed", "pin_sync")]
    assert "worker process exited unexpectedly" in alerts.list_alerts(db)[0]["message"]


def test_a_check_that_changes_nothing_writes_nothing(settings, db, fake_node):
    settings.ipfs_api = fake_node.url
    alerts.check(settings, db)
    changes = db.total_changes
    assert alerts.check(settings, db) == ([], []) and db.total_changes == changes


def test_a_malformed_webhook_url_is_refused_at_start_and_never_breaks_the_sender(settings, db):
    from console.cli.commands import settings_from
    from console.cli.parser import parse
    for url in ("http://127.0.0.1:abc/hook", "http://127.0.0.1:99999/hook", "http://[::1/hook", "ftp://h/x"):
        with pytest.raises(SystemExit) as stopped:
            settings_from(parse(["serve", "--webhook", url]))
        assert "--webhook (IPFSMASTER_WEBHOOK_URL) must be an http:// or https:// URL" in str(stopped.value)
        assert "http://" in webhook.post(url, b"{}")         # a reason, not an exception
    # A URL that slipped through (a database another server set up) fails
    # each post like a receiver that is down: counted, retried, given up.
    settings.webhook_url = "http://127.0.0.1:99999/hook"
    with console.store.transaction(db):
        webhook.enqueue(db, "opened", {"id": 1})
    due = webhook.deliver_due(settings, db)
    assert due is not None and due > time.time()
    row = db.execute("SELECT status, attempts, last_error FROM webhook_outbox").fetchone()
    assert (row["status"], row["attempts"]) == ("waiting", 1) and "webhook URL" in row["last_error"]


def test_a_receiver_that_never_answers_times_out(settings):
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        began = time.monotonic()
        error = webhook.post("http://127.0.0.1:%d/hook" % listener.getsockname()[1], b"{}", timeout=0.5)
        assert "timed out" in error and time.monotonic() - began < 3
    finally:
        listener.close()


def test_posts_waiting_at_a_restart_leave_in_order(settings, db, receiver):
    import threading
    settings.webhook_url, settings.webhook_secret = receiver.url, SECRET
    receiver.failures = 0
    with console.store.transaction(db):
        for number in (1, 2, 3):
            webhook.enqueue(db, "opened", {"id": number})
    stop = threading.Event()
    sender = threading.Thread(target=webhook.deliver_forever, args=(settings, stop))
    sender.start()
    try:
        wait_for(lambda: len(receiver.delivered()) == 3, timeout=10, message="the three posts")
    finally:
        stop.set()
        sender.join(5)
    assert [json.loads(body)["alert"]["id"] for _, body in receiver.delivered()] == [1, 2, 3]
    assert all(signed_by(SECRET, headers, body) for headers, body in receiver.delivered())
    assert not sender.is_alive()


def test_the_daily_housekeeping_forgets_sent_posts_past_the_retention_period(settings, db):
    db.executemany("INSERT INTO webhook_outbox (body, status, created_at) VALUES (?, ?, datetime('now', ?))", [
        ('{"old": "delivered"}', "delivered", "-40 days"), ('{"old": "abandoned"}', "abandoned", "-40 days"),
        ('{"old": "waiting"}', "waiting", "-40 days"), ('{"new": "delivered"}', "delivered", "-1 days")])
    db.commit()
    settings.retention_days = 30
    stop = threading.Event()
    stop.set()              # one pass, then it returns
    console.web.server.housekeeping(settings, stop)
    left = [row[0] for row in db.execute("SELECT body FROM webhook_outbox ORDER BY id")]
    assert left == ['{"old": "waiting"}', '{"new": "delivered"}']


def test_the_daily_housekeeping_forgets_alerts_closed_past_the_retention_period(settings, db):
    db.executemany("INSERT INTO alerts (kind, subject, message, opened_at, closed_at) VALUES (?, ?, 'x',"
                   " datetime('now', '-50 days'), datetime('now', ?))",
                   [("task_failed", "old", "-40 days"), ("task_failed", "recent", "-1 days")])
    db.execute("INSERT INTO alerts (kind, subject, message, opened_at) VALUES ('node_down', 'open', 'x',"
               " datetime('now', '-50 days'))")
    db.commit()
    settings.retention_days = 30
    stop = threading.Event()
    stop.set()
    console.web.server.housekeeping(settings, stop)
    assert sorted(row[0] for row in db.execute("SELECT subject FROM alerts")) == ["open", "recent"]
