"""A pin sync's steps, run in-process against a programmable node (fake_node):
what is looked up and how often, where sizes end up, what a listing's
changes do to the catalogue, and what a broken listing does not do."""

import json
import threading

import pytest

import console.runner
import console.tasks
import console.tasks.pin_sync
import console.tasks.sizes
from fake_node import FakeNode
from support import wait_for


@pytest.fixture
def node():
    node = FakeNode()
    yield node
    node.close()


@pytest.fixture
def small_batches(monkeypatch):
    """Batches small enough that a few thousand pins cross every boundary."""
    monkeypatch.setattr(console.tasks.pin_sync, "LIST_BATCH", 200)
    monkeypatch.setattr(console.tasks.pin_sync, "SAVE_BATCH", 150)
    monkeypatch.setattr(console.tasks.sizes, "SIZE_PAGE", 64)
    monkeypatch.setenv("IPFSMASTER_SIZE_CONCURRENCY", "3")
    monkeypatch.setenv("IPFSMASTER_SIZE_PIPELINE", "5")


def cid(number):
    return "bafyfake%06d" % number


def fill(node, count, start=0):
    for number in range(start, start + count):
        node.add(cid(number), 1000 + number)


def sync(settings, db, node, capsys=None):
    """Run one pin sync to its end in this process; returns its task row."""
    task_id = db.execute("INSERT INTO background_tasks (task_type, status, params) VALUES ('pin_sync', 'pending', ?)",
                         (json.dumps({"ipfs_api": node.url}),)).lastrowid
    console.tasks.run_task(task_id, settings.db)
    task = dict(db.execute("SELECT * FROM background_tasks WHERE id = ?", (task_id,)).fetchone())
    task["result"] = json.loads(task["result"] or "{}")
    return task


def catalogue(db):
    return {row["cid"]: (row["type"], row["name"], row["size"]) for row in db.execute("SELECT * FROM pins")}


def assert_summary_matches(db):
    stats = tuple(db.execute("SELECT count, total_size, unsized FROM pin_stats").fetchone())
    assert stats == tuple(db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(*) - COUNT(size) FROM pins")
                          .fetchone())


def test_a_first_sync_looks_up_every_pin_once_starting_with_the_listing(settings, db, node, small_batches,
                                                                         monkeypatch, capsys):
    fill(node, 900)
    node.not_unixfs = {cid(n): 77 for n in range(0, 900, 90)}
    node.missing = {cid(n) for n in range(5, 900, 180)}
    node.lookup_delay = 0.0005   # slow enough that look-ups are in flight while the listing is applied
    fed_before_applying = []
    real_apply = console.tasks.pin_sync.PinSync.apply_listing

    def apply_listing(self, listing_started):
        fed_before_applying.append(self.fed_listed)
        return real_apply(self, listing_started)
    monkeypatch.setattr(console.tasks.pin_sync.PinSync, "apply_listing", apply_listing)

    task = sync(settings, db, node)

    assert task["status"] == "completed", task["error_message"]
    assert fed_before_applying[0] > 0   # look-ups began while the listing came in
    result = task["result"]
    assert (result["total"], result["added"], result["sized"], result["failed"]) == (900, 900, 895, 5)
    assert sorted(item["cid"] for item in result["error_details"]) == sorted(node.missing)
    assert task["progress"] == task["total"] == 900
    pins = catalogue(db)
    for number in range(900):
        expected = None if cid(number) in node.missing else node.not_unixfs.get(cid(number), 1000 + number)
        assert pins[cid(number)] == ("recursive", "", expected)
    assert all(node.lookups["files/stat", c] == 1 for c in node.pins)
    assert {c for (command, c) in node.lookups if command == "block/stat"} == set(node.not_unixfs) | node.missing
    assert_summary_matches(db)


def test_a_catalogue_without_sizes_is_sized_on_the_way_and_loses_what_the_node_dropped(settings, db, node,
                                                                                       small_batches, capsys):
    fill(node, 600)
    db.executemany("INSERT INTO pins (cid, type) VALUES (?, 'recursive')",
                   [(cid(n),) for n in range(0, 600, 2)] + [("bafygone",)])
    node.lookup_delay = 0.0005

    task = sync(settings, db, node)

    assert task["status"] == "completed", task["error_message"]
    result = task["result"]
    assert (result["added"], result["removed"], result["sized"], result["failed"]) == (300, 1, 600, 0)
    pins = catalogue(db)
    assert set(pins) == set(node.pins)
    assert all(pins[cid(n)][2] == 1000 + n for n in range(600))
    assert all(node.lookups["files/stat", c] == 1 for c in node.pins)
    assert_summary_matches(db)


def test_a_resync_looks_up_only_new_pins_and_follows_names_and_types(settings, db, node, small_batches, capsys):
    fill(node, 300)
    assert sync(settings, db, node)["status"] == "completed"
    for number in range(50):
        del node.pins[cid(number)]
    fill(node, 40, start=1000)
    for number in range(100, 110):
        node.pins[cid(number)]["Name"] = "named %d" % number
    for number in range(200, 205):
        node.pins[cid(number)]["Type"] = "direct"
    node.lookups.clear()

    task = sync(settings, db, node)

    assert task["status"] == "completed", task["error_message"]
    result = task["result"]
    assert (result["total"], result["added"], result["removed"], result["updated"], result["sized"]) == (
        290, 40, 50, 15, 40)
    assert result["unchanged"] == 290 - 40 - 15
    assert {c for (_, c) in node.lookups} == {cid(n) for n in range(1000, 1040)}
    pins = catalogue(db)
    assert set(pins) == set(node.pins)
    assert pins[cid(105)] == ("recursive", "named 105", 1105)
    assert pins[cid(203)] == ("direct", "", 1203)
    assert pins[cid(1020)] == ("recursive", "", 2020)
    assert_summary_matches(db)

    node.lookups.clear()
    again = sync(settings, db, node)
    assert again["result"]["unchanged"] == 290 and again["result"]["updated"] == 0 and not node.lookups
    assert catalogue(db) == pins


@pytest.mark.parametrize("line", [
    b'{"Type": "recursive"}\n',
    b'{"Cid": "", "Type": "recursive"}\n',
    b'{"Cid": 5, "Type": "recursive"}\n',
    b'{"Cid": {"/": "bafyfake"}, "Type": "recursive"}\n',
    b'{"Cid": "bafyfake", "Type": ["recursive"]}\n',
    b'["bafyfake"]\n',
    b'"bafyfake"\n',
], ids=["no CID", "empty CID", "number", "object", "odd type", "list", "string"])
def test_a_listing_with_a_broken_entry_fails_and_changes_nothing(settings, db, node, line, capsys):
    fill(node, 120)
    assert sync(settings, db, node)["status"] == "completed"
    before = catalogue(db)
    node.extra_lines = [line]
    fill(node, 5, start=500)

    task = sync(settings, db, node)

    assert task["status"] == "failed"
    assert "pin/ls sent an entry" in task["error_message"]
    assert catalogue(db) == before
    assert_summary_matches(db)


def test_a_listing_cut_short_is_read_again_from_the_start(settings, db, node, small_batches, capsys):
    fill(node, 400)
    node.cut_listings = 1

    task = sync(settings, db, node)

    assert task["status"] == "completed", task["error_message"]
    assert node.listings == 2
    result = task["result"]
    assert (result["total"], result["added"], result["sized"], result["failed"]) == (400, 400, 400, 0)
    assert task["progress"] == 400
    pins = catalogue(db)
    assert set(pins) == set(node.pins) and all(pins[cid(n)][2] == 1000 + n for n in range(400))
    assert_summary_matches(db)


def test_a_listing_with_the_same_bytes_as_the_last_one_applied_is_not_compared(settings, db, node, monkeypatch,
                                                                              capsys):
    fill(node, 300)
    node.missing = {cid(7)}
    assert sync(settings, db, node)["status"] == "completed"
    stored = []
    real_store = console.tasks.pin_sync.PinSync.store_listing

    def store_listing(self, pieces):
        stored.append(True)
        return real_store(self, pieces)
    monkeypatch.setattr(console.tasks.pin_sync.PinSync, "store_listing", store_listing)
    before = catalogue(db)
    node.lookups.clear()

    task = sync(settings, db, node)

    assert task["status"] == "completed" and not stored
    assert task["result"]["total"] == task["result"]["unchanged"] == 300 and task["progress"] == 300
    assert catalogue(db) == before
    assert set(node.lookups) == {("files/stat", cid(7)), ("block/stat", cid(7))}   # the one without a size

    # A change to the catalogue from elsewhere makes the next sync compare again, and put back
    # what the node says (no name: Kubo leaves an empty name out).
    db.execute("UPDATE pins SET name = 'mine' WHERE cid = ?", (cid(1),))
    assert db.execute("SELECT COUNT(*) FROM last_listing").fetchone()[0] == 0
    task = sync(settings, db, node)
    assert task["status"] == "completed" and len(stored) == 1 and task["result"]["unchanged"] == 299
    assert catalogue(db)[cid(1)] == ("recursive", "", 1001)
    assert sync(settings, db, node)["status"] == "completed" and len(stored) == 1

    # So does a pin the listing does not have, and a listing with other bytes.
    db.execute("INSERT INTO pins (cid, type, size) VALUES ('bafyuploaded', 'recursive', 5)")
    node.pins[cid(2)]["Type"] = "direct"
    task = sync(settings, db, node)
    assert task["status"] == "completed" and len(stored) == 2
    assert (task["result"]["removed"], task["result"]["updated"]) == (1, 1)
    pins = catalogue(db)
    assert "bafyuploaded" not in pins and pins[cid(2)] == ("direct", "", 1002)
    assert_summary_matches(db)


def test_an_upload_newer_than_the_listing_is_kept_and_not_taken_for_part_of_it(settings, db, node, monkeypatch,
                                                                              capsys):
    fill(node, 50)
    real_apply = console.tasks.pin_sync.PinSync.apply_listing

    def apply_listing(self, listing_started):
        db.execute("INSERT INTO pins (cid, type, size) VALUES ('bafyuploaded', 'recursive', 5)")  # mid-sync
        return real_apply(self, listing_started)
    monkeypatch.setattr(console.tasks.pin_sync.PinSync, "apply_listing", apply_listing)

    task = sync(settings, db, node)

    assert task["status"] == "completed"
    assert "bafyuploaded" in catalogue(db)
    assert db.execute("SELECT COUNT(*) FROM last_listing").fetchone()[0] == 0


def sync_within(settings, db, node, seconds=60):
    """``sync``, on a thread: a sync that never ends fails the test instead of hanging it."""
    tasks = []
    thread = threading.Thread(target=lambda: tasks.append(sync(settings, db, node)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert tasks, "the sync was still going after %d s" % seconds
    return tasks[0]


@pytest.mark.parametrize("garbage", [b"HTTP/1.1\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n", b"\x00\xff garbage\r\n\r\n"],
                         ids=["no status", "bad status", "not HTTP"])
def test_a_node_that_answers_look_ups_with_garbage_fails_the_sync(settings, db, node, small_batches, garbage,
                                                                  capsys):
    fill(node, 50)
    node.lookup_garbage = garbage

    task = sync_within(settings, db, node)

    assert task["status"] == "failed"
    assert task["error_message"].startswith("cannot reach the IPFS API at %s: a broken HTTP answer" % node.url)


def test_a_look_up_thread_that_dies_fails_the_sync_instead_of_waiting_for_it(settings, db, node, small_batches,
                                                                            monkeypatch, capsys):
    fill(node, 50)

    def broken(client, cids):
        raise IndexError("list index out of range")
    monkeypatch.setattr(console.tasks.sizes, "pin_sizes", broken)

    task = sync_within(settings, db, node)
    wait_for(lambda: not any(thread.name.startswith("size-") for thread in threading.enumerate()), timeout=10,
             message="every look-up thread to end")

    assert task["status"] == "failed"
    assert task["error_message"] == "a size look-up failed: IndexError: list index out of range"
    assert "Traceback" in capsys.readouterr().out   # the details, in the worker's log


def test_a_size_that_is_not_a_number_is_a_failed_look_up(settings, db, node, capsys):
    fill(node, 20)
    node.sizes[cid(3)] = float("inf")     # "CumulativeSize": Infinity

    task = sync_within(settings, db, node)

    assert task["status"] == "completed", task["error_message"]
    assert (task["result"]["sized"], task["result"]["failed"]) == (19, 1)
    assert catalogue(db)[cid(3)] == ("recursive", "", None)


def test_a_reporter_thread_that_dies_fails_the_task(settings, db, node, monkeypatch, capsys):
    fill(node, 200)
    node.lookup_delay = 0.002

    def broken(self, conn):
        raise RuntimeError("no heartbeat")
    monkeypatch.setattr(console.runner.TaskContext, "report", broken)

    task = sync_within(settings, db, node)

    assert task["status"] == "failed"
    assert task["error_message"] == console.runner.STOP_MESSAGES["reporter"][1]
    assert "RuntimeError: no heartbeat" in capsys.readouterr().out


def test_a_look_up_that_fails_after_its_retries_does_not_start_the_listing_again(settings, db, node, small_batches,
                                                                                 capsys):
    fill(node, 900)
    node.lookup_status = 503        # every look-up: "try again", until its retries run out
    node.listing_pause = 3.0        # meanwhile the listing is still coming in

    task = sync_within(settings, db, node)

    assert task["status"] == "failed"
    assert task["error_message"] == "IPFS files/stat failed: the node is busy"
    assert node.listings == 1
    assert "starting it again" not in capsys.readouterr().out


def test_while_the_listing_streams_only_a_few_look_ups_wait(settings, db, node, small_batches, monkeypatch, capsys):
    """The node serves the listing and the look-ups from the same cores: a
    few look-ups keep it busy, more would hold back the listing, which the
    catalogue (and the pages) wait for."""
    fill(node, 2000)
    node.lookup_delay = 0.002
    waiting = []
    real_feed = console.tasks.pin_sync.PinSync.feed_listed

    def feed_listed(self, lead):
        real_feed(self, lead)
        waiting.append(self.lookups.todo.qsize())
    monkeypatch.setattr(console.tasks.pin_sync.PinSync, "feed_listed", feed_listed)
    task = sync(settings, db, node)
    assert task["status"] == "completed" and task["result"]["sized"] == 2000
    assert len(waiting) >= 2 and max(waiting) <= console.tasks.pin_sync.LISTING_LEAD
