"""GET /metrics: Prometheus's text format, read by the prometheus-client
package's parser in-process and scraped by a real Prometheus."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

import console.metrics
import console.store
import console.web.app
from support import Client, wait_for

PASSWORD = "metrics s3cret"


def families(client, **headers):
    r = client.get("/metrics", headers=headers)
    assert r.status == 200 and r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    return {family.name: family for family in text_string_to_metric_families(r.text)}, r.text


def value(family, **labels):
    suffix = labels.pop("_suffix", "_total" if family.type == "counter" else "")
    found = [sample.value for sample in family.samples if sample.name == family.name + suffix
             and all(sample.labels.get(key) == str(want) for key, want in labels.items())]
    assert len(found) == 1, (family.name, labels, family.samples)
    return found[0]


def finished(db, task_type, status, result=None, progress=0):
    task_id = console.store.create_task(db, task_type)
    db.execute("UPDATE background_tasks SET status = 'running', started_at = datetime('now', '-3 seconds'),"
               " started_at_precise = strftime('%Y-%m-%d %H:%M:%f', 'now', '-3 seconds') WHERE id = ?", (task_id,))
    assert console.store.finish_task(db, task_id, status, "running", result=result, counts=(progress, progress, None))
    return task_id


def test_every_family_has_help_and_type_and_the_conventional_names(client):
    found, text = families(client)
    kinds = {"ipfsmaster_pins": "gauge", "ipfsmaster_pins_size_bytes": "gauge", "ipfsmaster_tasks": "gauge",
             "ipfsmaster_tasks_finished": "counter", "ipfsmaster_task_duration_seconds": "histogram",
             "ipfsmaster_task_items": "counter", "ipfsmaster_cluster_peers": "gauge",
             "ipfsmaster_pins_in_error": "gauge", "ipfsmaster_pins_under_replicated": "gauge"}
    assert {name: found[name].type for name in kinds} == kinds
    for line in text.splitlines():
        if not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert name.startswith("ipfsmaster_")
            assert "# HELP %s " % name.rsplit("_bucket", 1)[0].rsplit("_sum", 1)[0].rsplit("_count", 1)[0] in text \
                or "# HELP %s " % name in text


def test_tasks_counters_and_durations_follow_what_ended(client, db):
    before, _ = families(client)
    assert value(before["ipfsmaster_tasks_finished"], type="pin_add", outcome="partial") == 0
    finished(db, "pin_add", "completed", {"done": 3, "failed": 2}, progress=5)
    finished(db, "pin_add", "completed", {"done": 4, "failed": 0}, progress=4)
    finished(db, "repo_gc", "failed")
    cancelled = console.store.create_task(db, "pin_sync")
    console.store.finish_task(db, cancelled, "cancelled", "pending", "Cancelled before it started")
    running = console.store.create_task(db, "file_upload")
    db.execute("UPDATE background_tasks SET status = 'running', progress = 25, total = 100 WHERE id = ?", (running,))
    # The seed's manual termination counts too.
    manual = console.store.create_task(db, "pin_recover")
    db.execute("UPDATE background_tasks SET status='failed', error_message='Manually terminated' WHERE id = ?",
               (manual,))
    after, _ = families(client)
    done = after["ipfsmaster_tasks_finished"]
    assert value(done, type="pin_add", outcome="partial") == 1 and value(done, type="pin_add", outcome="completed") == 1
    assert value(done, type="repo_gc", outcome="failed") == 1 and value(done, type="pin_sync", outcome="cancelled") == 1
    assert value(done, type="pin_recover", outcome="failed") == 1
    items = after["ipfsmaster_task_items"]
    assert value(items, type="pin_add", result="processed") == 9 and value(items, type="pin_add", result="failed") == 2
    durations = after["ipfsmaster_task_duration_seconds"]
    assert value(durations, _suffix="_count", type="pin_add") == 2
    assert 5.9 <= value(durations, _suffix="_sum", type="pin_add") <= 8
    assert value(durations, _suffix="_bucket", type="pin_add", le="1.0") == 0
    assert value(durations, _suffix="_bucket", type="pin_add", le="5.0") == 2
    assert value(durations, _suffix="_bucket", type="pin_add", le="+Inf") == 2
    gauges = after["ipfsmaster_tasks"]
    assert value(gauges, type="file_upload", status="running") == 1
    assert value(after["ipfsmaster_task_progress_ratio"], id=running, type="file_upload") == 0.25
    # A cleanup deletes tasks, never what the counters counted.
    db.execute("DELETE FROM background_tasks")
    assert value(families(client)[0]["ipfsmaster_tasks_finished"], type="pin_add", outcome="partial") == 1


def test_pins_come_from_the_catalogues_totals(client, db):
    db.execute("INSERT INTO pins (cid, type, size) VALUES ('bafya', 'recursive', 100), ('bafyb', 'recursive', NULL)")
    found, _ = families(client)
    assert (value(found["ipfsmaster_pins"]), value(found["ipfsmaster_pins_size_bytes"]),
            value(found["ipfsmaster_pins_unsized"])) == (2, 100, 1)
    assert "ipfsmaster_node_up" not in found      # never looked at yet: nothing claimed


def test_with_a_password_a_scrape_needs_it_as_bearer(settings):
    settings.password = PASSWORD
    client = Client(console.web.app.App(settings))
    assert client.get("/metrics").status == 401
    found, _ = families(client, Authorization="Bearer " + PASSWORD)
    assert "ipfsmaster_pins" in found


def test_a_real_prometheus_scrapes_the_console(make_live_server, ipfs_node, tmp_path):
    from prometheus_server import Prometheus
    ipfs_node.add_many([b"scraped %d" % n for n in range(7)])
    server = make_live_server(ipfs_node.api_url, password=PASSWORD, sample_seconds=1)
    prometheus = Prometheus(tmp_path, "127.0.0.1:%d" % server.port, bearer=PASSWORD)
    try:
        wait_for(lambda: prometheus.query("ipfsmaster_pins"), timeout=60, interval=0.2, message="a first scrape")
        assert prometheus.target_health() == [("up", "")]
        r = server.request("POST", "/pins/sync", headers={"Authorization": "Bearer " + PASSWORD})
        task = wait_for(lambda: (lambda t: t if t["status"] == "completed" else None)(server.request(
            "GET", "/pins/task-status?id=%d" % r.json["taskId"], headers={"Authorization": "Bearer " + PASSWORD}).json),
            timeout=60, message="the sync")
        pins = task["result"]["total"]
        assert pins >= 7
        wait_for(lambda: prometheus.query("ipfsmaster_pins") == {(): float(pins)}, timeout=60, interval=0.2,
                 message="Prometheus to see the synced pins")
        wait_for(lambda: list(prometheus.query('ipfsmaster_tasks_finished_total{type="pin_sync",outcome="completed"}')
                              .values()) == [1.0], timeout=60, interval=0.2, message="the task counter to move")
        wait_for(lambda: prometheus.query("ipfsmaster_node_up") == {(): 1.0}, timeout=60, interval=0.2,
                 message="the node's figures")
        assert list(prometheus.query("ipfsmaster_repo_size_bytes").values())[0] > 0
    finally:
        prometheus.close()


@pytest.mark.parametrize("labels,text", [({"type": 'a"b\\c\nd'}, '{type="a\\"b\\\\c\\nd"}'), ({}, "")])
def test_label_values_are_escaped(labels, text):
    assert console.metrics.format_labels(labels) == text
    assert json.dumps(console.metrics.format_value(float("inf"))) == '"+Inf"'
