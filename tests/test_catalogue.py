"""The catalogue's one rule: a listing applies only to rows that no change
touched after it began, and never puts back a pin removed after it began;
what a pin task does while a sync lists is what the node has now."""

import json

import pytest

import console.catalogue
import console.framing
import console.store
import console.tasks.pin_sync
from fake_node import FakeNode
from test_pin_sync import catalogue, cid, fill, sync


@pytest.fixture
def node():
    node = FakeNode()
    yield node
    node.close()


def during_the_listing(monkeypatch, change):
    """Run ``change(conn)`` once, after the next sync's listing is read and before it is applied."""
    real_apply = console.tasks.pin_sync.PinSync.apply_listing
    done = []

    def apply_listing(self, listing_started):
        if not done:
            done.append(True)
            change(self.conn)
        return real_apply(self, listing_started)
    monkeypatch.setattr(console.tasks.pin_sync.PinSync, "apply_listing", apply_listing)


def test_a_sync_does_not_put_back_what_a_pin_task_changed_during_its_listing(settings, db, node, monkeypatch):
    fill(node, 20)
    node.pins[cid(2)]["Name"] = "old name"
    assert sync(settings, db, node)["status"] == "completed"
    node.add(cid(100), 5000)           # a new pin appears on the node

    def pin_tasks(conn):
        # pin_remove of cid(1), and of the new cid(100); pin_add of cid(2) --name "new name"
        for gone in (cid(1), cid(100)):
            del node.pins[gone]
            console.catalogue.remove_pin(conn, gone)
        node.pins[cid(2)]["Name"] = "new name"
        console.catalogue.store_pin(conn, cid(2), "new name", 1002, rename=True)
    during_the_listing(monkeypatch, pin_tasks)

    task = sync(settings, db, node)

    assert task["status"] == "completed"
    pins = catalogue(db)
    assert cid(1) not in pins and cid(100) not in pins
    assert pins[cid(2)][1] == "new name"
    assert db.execute("SELECT COUNT(*) FROM last_listing").fetchone()[0] == 0
    # The next sync finds nothing to change, and the catalogue is the node.
    again = sync(settings, db, node)
    assert (again["result"]["added"], again["result"]["removed"], again["result"]["updated"]) == (0, 0, 0)
    assert {key: value[1] for key, value in catalogue(db).items()} == {
        key: entry.get("Name", "") for key, entry in node.pins.items()}
    assert db.execute("SELECT COUNT(*) FROM pin_removals").fetchone()[0] == 0


def listing(conn, pins, peers=(), replication=()):
    """The temporary tables a sync fills before it applies its listing."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed (cid NOT NULL, type NOT NULL, name, size)")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed_peers"
                 " (cid NOT NULL, peer_id NOT NULL, peername, status, error, updated_at)")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed_replication (cid NOT NULL, wanted, pinned, in_error)")
    for table in ("listed", "listed_peers", "listed_replication"):
        conn.execute("DELETE FROM " + table)
    conn.executemany("INSERT INTO listed (cid, type) VALUES (?, 'recursive')", [(pin,) for pin in pins])
    conn.executemany("INSERT INTO listed_peers VALUES (?, ?, ?, ?, NULL, NULL)", peers)
    conn.executemany("INSERT INTO listed_replication VALUES (?, ?, ?, ?)", replication)


def global_pin_info(pin, **statuses):
    return {"cid": pin, "allocations": list(statuses), "peer_map": {
        peer: {"peername": peer, "status": status} for peer, status in statuses.items()}}


def now(conn):
    """The time as the catalogue writes it, after every row written so far (a millisecond on)."""
    newest = conn.execute("SELECT MAX(synced_at) FROM pins").fetchone()[0] or ""
    while True:
        stamp = conn.execute("SELECT " + console.store.NOW_PRECISE).fetchone()[0]
        if stamp > newest:
            return stamp


def test_a_cluster_status_a_task_recorded_during_the_listing_is_kept(db):
    listing(db, ["a", "b"], peers=[("a", "p1", "p1", "pinned"), ("b", "p1", "p1", "pin_error")],
            replication=[("a", 1, 1, 0), ("b", 1, 0, 1)])
    console.catalogue.apply_listing(db, now(db), 2, "first", True, False)
    started = now(db)
    # The listing of the next sync says b is in error; pin_recover fixed it meanwhile.
    listing(db, ["a", "b"], peers=[("a", "p1", "p1", "pinned"), ("b", "p1", "p1", "pin_error")],
            replication=[("a", 1, 1, 0), ("b", 1, 0, 1)])
    console.catalogue.record_cluster_status(db, global_pin_info("b", p1="pinned"))
    console.catalogue.apply_listing(db, started, 2, "second", True, False)
    assert db.execute("SELECT status FROM pin_peers WHERE cid = 'b'").fetchone()[0] == "pinned"
    assert console.catalogue.cluster_summary(db)["pins_in_error"] == 0


def test_a_status_for_a_pin_the_catalogue_lacks_leaves_no_stray_row(db):
    console.catalogue.record_cluster_status(db, global_pin_info("unknown", p1="pin_error"))
    assert db.execute("SELECT COUNT(*) FROM pin_replication").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM pin_peers").fetchone()[0] == 0


def test_replication_rows_of_pins_the_listing_no_longer_has_go(db):
    listing(db, ["a", "b"], peers=[("b", "p1", "p1", "pin_error")], replication=[("a", 1, 1, 0), ("b", 2, 0, 1)])
    console.catalogue.apply_listing(db, now(db), 2, "first", True, False)
    assert console.catalogue.cluster_summary(db)["pins_in_error"] == 1
    listing(db, ["a"], replication=[("a", 1, 1, 0)])
    console.catalogue.apply_listing(db, now(db), 1, "second", True, False)
    summary = console.catalogue.cluster_summary(db)
    assert (summary["pins_in_error"], summary["under_replicated"]) == (0, 0)
    assert [row[0] for row in db.execute("SELECT cid FROM pin_replication")] == ["a"]


def test_direct_pins_are_in_the_catalogue_and_unpinned_like_the_others(settings, db, node):
    fill(node, 3)
    node.add("bafydirect", 77, name="direct-one", kind="direct")
    sync(settings, db, node)
    assert catalogue(db)["bafydirect"] == ("direct", "direct-one", 77)
    task_id = db.execute("INSERT INTO background_tasks (task_type, status, params) VALUES ('pin_remove',"
                         " 'pending', ?)", (json.dumps({"ipfs_api": node.url, "cids": ["bafydirect"]}),)).lastrowid
    console.tasks.run_task(task_id, settings.db)
    assert "bafydirect" not in catalogue(db) and "bafydirect" not in node.pins


def test_two_tasks_on_one_cid_leave_what_the_node_has(db):
    """pin_add asked the node to pin X; pin_remove then unpinned it and recorded that first; pin_add's
    record comes last and must not bring X back. The other way round, the later pin stays."""
    before_pin = now(db)
    console.catalogue.remove_pin(db, "x", since=now(db))          # the unpin, recorded first
    assert console.catalogue.store_pin(db, "x", "", 10, since=before_pin) is False
    assert db.execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 0
    before_unpin = now(db)
    while now(db) <= before_unpin:      # the pin comes a millisecond later at least
        pass
    assert console.catalogue.store_pin(db, "y", "", 10, since=now(db)) is True     # pinned again after
    assert console.catalogue.remove_pin(db, "y", since=before_unpin) is False
    assert [row[0] for row in db.execute("SELECT cid FROM pins")] == ["y"]


def count_writes(conn, tables=("pin_peers", "pin_replication")):
    """Temporary triggers that count every row inserted, updated or deleted in ``tables``."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS writes (tbl TEXT, n INTEGER)")
    conn.execute("DELETE FROM writes")
    for table in tables:
        conn.execute("INSERT INTO writes VALUES (?, 0)", (table,))
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute("CREATE TEMP TRIGGER IF NOT EXISTS count_%s_%s AFTER %s ON main.%s BEGIN"
                         " UPDATE writes SET n = n + 1 WHERE tbl = '%s'; END" % (table, event, event, table, table))
    return lambda: dict(conn.execute("SELECT tbl, n FROM writes").fetchall())


def test_a_cluster_re_sync_writes_only_the_rows_that_changed(db):
    pins = ["cid%03d" % n for n in range(100)]

    def cluster_listing(changed=None, gone=None):
        peers = [(pin, peer, peer, "pin_error" if (pin, peer) == changed else "pinned")
                 for pin in pins for peer in ("p1", "p2") if (pin, peer) != gone]
        replication = [(pin, 2, sum(1 for row in peers if row[0] == pin and row[3] == "pinned"),
                        sum(1 for row in peers if row[0] == pin and row[3] == "pin_error")) for pin in pins]
        listing(db, pins, peers, replication)

    cluster_listing()
    console.catalogue.apply_listing(db, now(db), 100, "first", True, False)
    assert db.execute("SELECT COUNT(*) FROM pin_peers").fetchone()[0] == 200
    writes = count_writes(db)
    cluster_listing()                        # nothing changed
    console.catalogue.apply_listing(db, now(db), 100, "same", True, False)
    assert writes() == {"pin_peers": 0, "pin_replication": 0}
    cluster_listing(changed=("cid042", "p2"))          # one peer failed one pin
    console.catalogue.apply_listing(db, now(db), 100, "one", True, False)
    # That peer's row of that pin, and that pin's replication: one row each.
    assert writes() == {"pin_peers": 1, "pin_replication": 1}
    assert db.execute("SELECT status FROM pin_peers WHERE cid = 'cid042' AND peer_id = 'p2'").fetchone()[0] \
        == "pin_error"
    assert console.catalogue.cluster_summary(db)["pins_in_error"] == 1
    cluster_listing(gone=("cid007", "p1"))              # a peer no longer lists a pin; cid042 recovered
    console.catalogue.apply_listing(db, now(db), 100, "two", True, False)
    assert db.execute("SELECT COUNT(*) FROM pin_peers").fetchone()[0] == 199
    assert console.catalogue.cluster_summary(db)["pins_in_error"] == 0
    assert [tuple(row) for row in db.execute("SELECT cid, wanted, pinned, in_error FROM pin_replication"
                                              " WHERE cid IN ('cid007', 'cid042') ORDER BY cid")] == [
        ("cid007", 2, 1, 0), ("cid042", 2, 2, 0)]


def after(conn, stamp):
    """The catalogue's time, once it is past ``stamp``."""
    while True:
        now_stamp = conn.execute("SELECT " + console.store.NOW_PRECISE).fetchone()[0]
        if now_stamp > stamp:
            return now_stamp


def test_the_task_that_asked_the_node_last_wins_whichever_records_first(db):
    """The node takes pins and unpins in turn, in the order they were asked:
    a pin asked first but recorded after the unpin was asked must not outlive
    the unpin's record, nor an unpin asked first hide a pin asked after it."""
    asked_pin = now(db)
    asked_unpin = after(db, asked_pin)
    after(db, asked_unpin)
    assert console.catalogue.store_pin(db, "x", "", 10, since=asked_pin) is True     # recorded after the unpin was asked
    assert console.catalogue.remove_pin(db, "x", since=asked_unpin) is True
    assert db.execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 0

    asked_unpin = after(db, asked_unpin)
    asked_pin = after(db, asked_unpin)
    after(db, asked_pin)
    assert console.catalogue.remove_pin(db, "y", since=asked_unpin) is True          # recorded after the pin was asked
    assert console.catalogue.store_pin(db, "y", "", 10, since=asked_pin) is True
    assert [row[0] for row in db.execute("SELECT cid FROM pins")] == ["y"]


@pytest.mark.parametrize("node_pins", [True, False])
def test_when_two_tasks_crossed_on_one_cid_the_node_decides(db, node_pins):
    """A pin and an unpin of one CID whose records overlap may have reached
    the node in either order: the task recording second asks the node."""
    asked = []

    def on_node():
        asked.append(1)
        return node_pins

    asked_pin = now(db)
    asked_unpin = after(db, asked_pin)
    console.catalogue.remove_pin(db, "x", since=asked_unpin)
    assert console.catalogue.store_pin(db, "x", "", 10, since=asked_pin, on_node=on_node) is node_pins
    assert bool(db.execute("SELECT 1 FROM pins WHERE cid = 'x'").fetchone()) is node_pins

    asked_unpin = after(db, asked_unpin)
    asked_pin = after(db, asked_unpin)
    console.catalogue.store_pin(db, "y", "", 10, since=asked_pin)
    assert console.catalogue.remove_pin(db, "y", since=asked_unpin, on_node=on_node) is not node_pins
    assert bool(db.execute("SELECT 1 FROM pins WHERE cid = 'y'").fetchone()) is node_pins
    assert len(asked) == 2

    # A node that cannot say: the task that asked last wins.
    def unreachable():
        raise console.framing.IPFSError("connection refused", transient=True)
    asked_pin = after(db, asked_pin)
    console.catalogue.store_pin(db, "z", "", 10, since=asked_pin)
    assert console.catalogue.remove_pin(db, "z", since=now(db), on_node=unreachable) is True


def test_a_pin_recorded_before_the_other_task_asked_is_no_crossing(db):
    asked = []
    console.catalogue.store_pin(db, "x", "", 10, since=now(db))
    assert console.catalogue.remove_pin(db, "x", since=after(db, now(db)), on_node=lambda: asked.append(1)) is True
    assert asked == []


@pytest.mark.parametrize("node_pins", [True, False])
def test_a_batch_of_pins_settles_a_crossed_one_alone_with_the_node(db, node_pins):
    """A pin task records the answers that came meanwhile in one transaction;
    one an unpin crossed is settled on its own, by the node, as store_pin does."""
    from console.tasks.common import store_console_pins
    asked = []

    def on_node(cid):
        asked.append(cid)
        return node_pins

    asked_pin = now(db)
    console.catalogue.remove_pin(db, "crossed", since=after(db, asked_pin))
    store_console_pins(db, [("a", "one", 10, asked_pin), ("crossed", "two", 20, asked_pin),
                            ("b", "three", None, asked_pin)], on_node)
    assert asked == ["crossed"]
    rows = {row[0]: (row[1], row[2]) for row in db.execute("SELECT cid, name, size FROM pins")}
    assert rows == dict({"a": ("one", 10), "b": ("three", None)}, **({"crossed": ("two", 20)} if node_pins else {}))
