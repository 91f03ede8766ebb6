"""The history the console keeps: samples written from the figures it
already has, thinned out and dropped as they age, and GET /api/history."""

import calendar

import pytest

import console.history
import console.node
import console.rpc
import console.store
from support import wait_for

FIELDS = ["at", "pins", "pins_size", "repo_size", "storage_max", "peers", "tasks_finished", "tasks_failed"]
NOW = calendar.timegm((2026, 12, 6, 12, 30, 0, 0, 0, 0))
HOUR = 3600
DAY = 86400


def end_task(db, task_type, status):
    task_id = console.store.create_task(db, task_type)
    db.execute("UPDATE background_tasks SET status = 'running', started_at = datetime('now') WHERE id = ?",
               (task_id,))
    assert console.store.finish_task(db, task_id, status, "running")


def times(db):
    return [row[0] for row in db.execute("SELECT at FROM samples ORDER BY at")]


def test_a_sample_holds_the_catalogue_the_node_and_the_task_totals(db, settings, fake_node):
    db.execute("INSERT INTO pins (cid, type, size) VALUES ('bafya', 'recursive', 100), ('bafyb', 'direct', 23),"
               " ('bafyc', 'recursive', NULL)")
    end_task(db, "pin_add", "completed")
    end_task(db, "pin_sync", "failed")
    end_task(db, "repo_gc", "failed")
    end_task(db, "pin_remove", "cancelled")
    settings.ipfs_api = fake_node.url
    console.node.node_overview(settings)
    asked = dict(fake_node.calls)
    sample = console.history.record_sample(db, settings, now=NOW)
    assert sample == {"at": "2026-12-06 12:30:00", "pins": 3, "pins_size": 123, "repo_size": 100000,
                      "storage_max": 10 ** 10, "peers": 0, "tasks_finished": 4, "tasks_failed": 2}
    # Written from what the console keeps: the node is not asked again, and never for its pins.
    assert dict(fake_node.calls) == asked and fake_node.listings == 0
    assert [dict(row) for row in db.execute("SELECT * FROM samples")] == [sample]


def test_while_the_node_cannot_be_reached_its_figures_are_null(db, settings):
    with pytest.raises(console.rpc.IPFSError):
        console.node.node_overview(settings)      # port 9: nothing listens
    sample = console.history.record_sample(db, settings, now=NOW)
    assert (sample["repo_size"], sample["storage_max"], sample["peers"]) == (None, None, None)
    assert (sample["pins"], sample["tasks_finished"]) == (0, 0)


def test_the_task_totals_only_grow_when_old_tasks_are_cleaned_up(db, settings):
    end_task(db, "pin_add", "failed")
    first = console.history.record_sample(db, settings, now=NOW)
    db.execute("DELETE FROM background_tasks")
    end_task(db, "pin_add", "completed")
    second = console.history.record_sample(db, settings, now=NOW + 60)
    assert (first["tasks_finished"], first["tasks_failed"]) == (1, 1)
    assert (second["tasks_finished"], second["tasks_failed"]) == (2, 1)


def test_two_samples_in_one_second_keep_the_later(db, settings):
    console.history.record_sample(db, settings, now=NOW)
    db.execute("INSERT INTO pins (cid, type, size) VALUES ('bafya', 'recursive', 5)")
    console.history.record_sample(db, settings, now=NOW + 0.5)
    assert [tuple(row) for row in db.execute("SELECT at, pins FROM samples")] == [("2026-12-06 12:30:00", 1)]


def test_samples_are_thinned_to_one_an_hour_past_two_days_and_dropped_past_thirty(db, settings):
    start = NOW - 31 * DAY
    # One every ten minutes for 31 days (tasks_finished: one task ended in each), then a sample now.
    db.executemany("INSERT INTO samples VALUES (?, 0, 0, NULL, NULL, NULL, ?, 0)",
                   [(console.history.timestamp(start + step * 600), step) for step in range(31 * 24 * 6)])
    console.history.record_sample(db, settings, now=NOW)
    kept = times(db)
    thirty_days_ago = console.history.timestamp(NOW - 30 * DAY)
    two_days_ago = console.history.timestamp(NOW - 2 * DAY)
    assert kept[0] >= thirty_days_ago and kept[-1] == "2026-12-06 12:30:00"
    old = [at for at in kept if at < two_days_ago]
    recent = [at for at in kept if at >= two_days_ago]
    # Past two days: one an hour, the last of its hour (hh:50), in the 28 days and the two part hours at their ends.
    assert len(old) == len({at[:13] for at in old}) == 28 * 24 + 1
    assert all(at.endswith(":50:00") for at in old[:-1]) and old[-1] == "2026-12-04 12:20:00"
    # The last two days are whole: every ten minutes.
    assert len(recent) == 2 * 24 * 6 + 1
    # A running total thinned out still says how many ended between two kept samples.
    totals = dict(db.execute("SELECT at, tasks_finished FROM samples"))
    assert totals[old[1]] - totals[old[0]] == 6


def test_thinning_keeps_one_an_hour_as_samples_age_one_by_one(db, settings):
    steps = 3 * 24 * 6
    for step in range(steps):       # one every ten minutes for three days, each thinning the old ones
        console.history.record_sample(db, settings, now=NOW + step * 600)
    end = NOW + (steps - 1) * 600
    old = [at for at in times(db) if at < console.history.timestamp(end - 2 * DAY)]
    assert len(old) == len({at[:13] for at in old}) == 25
    assert all(at.endswith(":50:00") for at in old[:-1]) and old[-1] == "2026-12-07 12:10:00"
    assert len(times(db)) == 25 + 2 * 24 * 6 + 1


@pytest.mark.parametrize("text,expected", [
    ("2026-12-06T08:00:00Z", "2026-12-06 08:00:00"),
    ("2026-12-06 08:00:00", "2026-12-06 08:00:00"),
    ("2026-12-06T08:00", "2026-12-06 08:00:00"),
    ("2026-12-06", "2026-12-06 00:00:00"),
    ("2026-12-06T08:00:00.123456Z", "2026-12-06 08:00:00"),
    ("2026-12-06T16:00:00+08:00", "2026-12-06 08:00:00"),
    ("2026-12-06T03:30:00-0430", "2026-12-06 08:00:00"),
    ("2026-12-06t08:00:00z", "2026-12-06 08:00:00"),
    ("0999-01-01", "0999-01-01 00:00:00"),
])
def test_since_takes_iso_times_in_utc_or_with_an_offset(text, expected):
    assert console.history.parse_since(text) == expected


BAD_SINCE = ["yesterday", "2026-13-01", "2026-02-30", "2026-12-06T25:00:00Z", "2026-12-06T08:61", "1700000000",
             "2026-12-06T08:00:00+8", "2026-12-06T08:00:00Zjunk", "\u0662\u0660\u0662\u0666-12-06", "0000-01-01",
             "0001-01-01T00:00:00+01:00", "%E4%B8%80", "%00", "2026-12-06'; DROP TABLE samples;--", "9" * 500]


@pytest.mark.parametrize("raw", BAD_SINCE)
def test_it_rejects_a_bad_since_with_a_400_in_both_languages(client, raw):
    r = client.get("/api/history?since=" + raw)
    assert r.status == 400 and r.json["success"] is False
    assert r.json["error"].startswith("since must be a time in ISO 8601 form, such as 2026-12-01T08:00:00Z")
    zh = client.get("/api/history?since=" + raw, headers={"Cookie": "lang=zh"})
    assert zh.status == 400 and zh.json["error"].startswith("since 必须是 ISO 8601 格式的时间")


def test_the_endpoint_serves_the_samples_oldest_first_from_since(client, db, settings):
    assert client.get("/api/history").json == {"samples": []}
    for minutes in (3, 2, 1, 0):
        db.execute("INSERT INTO pins (cid, type, size) VALUES (?, 'recursive', 10)", ("bafy%d" % minutes,))
        console.history.record_sample(db, settings, now=NOW - minutes * 60)
    r = client.get("/api/history")
    assert r.status == 200 and r.header("Content-Type").startswith("application/json")
    assert r.header("Cache-Control") == "no-store"
    samples = r.json["samples"]
    assert [sample["at"] for sample in samples] == ["2026-12-06 12:27:00", "2026-12-06 12:28:00",
                                                    "2026-12-06 12:29:00", "2026-12-06 12:30:00"]
    assert [list(sample) for sample in samples] == [FIELDS] * 4
    assert [(sample["pins"], sample["pins_size"]) for sample in samples] == [(1, 10), (2, 20), (3, 30), (4, 40)]
    assert all(isinstance(sample[key], int) for sample in samples for key in FIELDS[1:3] + FIELDS[6:])
    since = client.get("/api/history?since=2026-12-06T12:29:00Z").json["samples"]
    assert [sample["at"] for sample in since] == ["2026-12-06 12:29:00", "2026-12-06 12:30:00"]
    offset = client.get("/api/history?since=2026-12-06T20:28:30%2B08:00").json["samples"]
    assert [sample["pins"] for sample in offset] == [3, 4]
    assert client.get("/api/history?since=2030-01-01").json == {"samples": []}
    assert client.get("/api/history?since=").json["samples"] == samples


def test_the_server_writes_a_sample_every_sample_seconds(make_live_server, fake_node):
    server = make_live_server(fake_node.url, sample_seconds=1)
    samples = wait_for(lambda: (lambda found: found if len(found) >= 3 else None)(
        server.request("GET", "/api/history").json["samples"]), timeout=30, message="three samples")
    assert samples[-1]["repo_size"] == 100000 and samples[-1]["storage_max"] == 10 ** 10
    assert samples == sorted(samples, key=lambda sample: sample["at"])
    # Samples ask the node nothing of their own: never a pin listing, no full repo/stat beyond the overview's first.
    assert fake_node.listings == 0 and fake_node.calls["repo/stat"] == 1
