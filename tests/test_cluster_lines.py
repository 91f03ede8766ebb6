"""A re-sync through IPFS Cluster parses only the listing's lines that
changed: each pin's line is known by its digest while the catalogue's rows
for that pin are exactly what it says, and any other write to the pin
forgets it, so that the next re-sync applies the cluster's word again.
In-process, against a programmable stand-in for the cluster (fake_node)."""

import json

import sqlite3

import pytest

import console.catalogue
import console.store
import console.tasks
import console.tasks.pin_sync
from fake_node import FakeNode
from test_catalogue import during_the_listing
from test_pin_sync import cid

PINS = 3000


@pytest.fixture
def node():
    node = FakeNode()
    for number in range(PINS):
        node.add(cid(number), 1000 + number)
        node.cluster[cid(number)] = info(number)
    yield node
    node.close()


def info(number, **statuses):
    """A GlobalPinInfo on two peers, pinned on both unless ``statuses`` say otherwise."""
    peers = {}
    for peer in ("p1", "p2"):
        status = statuses.get(peer, "pinned")
        peers[peer] = {"peername": "peer-" + peer, "status": status, "timestamp": "2026-01-01T00:00:00Z",
                       "error": "it failed" if status == "pin_error" else ""}
    return {"name": "pin %d" % number, "allocations": [], "peer_map": peers}


@pytest.fixture
def parsed(monkeypatch):
    """The cluster's pins the worker parsed, by CID, for each sync."""
    seen = []
    real = console.catalogue.cluster_pin_rows

    def cluster_pin_rows(obj):
        seen.append(obj["cid"])
        return real(obj)
    monkeypatch.setattr(console.catalogue, "cluster_pin_rows", cluster_pin_rows)
    return seen


def sync(settings, db, node):
    task_id = db.execute("INSERT INTO background_tasks (task_type, status, params) VALUES ('pin_sync', 'pending', ?)",
                         (json.dumps({"ipfs_api": node.url, "cluster_api": node.url}),)).lastrowid
    console.tasks.run_task(task_id, settings.db)
    task = dict(db.execute("SELECT * FROM background_tasks WHERE id = ?", (task_id,)).fetchone())
    assert task["status"] == "completed", task
    return json.loads(task["result"])


def in_error(db):
    return {row[0] for row in db.execute("SELECT cid FROM pin_replication WHERE in_error > 0")}


def statuses(db, pin):
    return dict(db.execute("SELECT peer_id, status FROM pin_peers WHERE cid = ?", (pin,)).fetchall())


def test_a_re_sync_parses_only_the_line_that_changed(settings, db, node, parsed):
    sync(settings, db, node)
    assert len(parsed) == PINS
    assert db.execute("SELECT COUNT(*) FROM pin_line_digests").fetchone()[0] == PINS
    del parsed[:]
    result = sync(settings, db, node)                      # nothing changed
    assert parsed == [] and result["unchanged"] == PINS
    node.cluster[cid(42)] = info(42, p2="pin_error")       # one peer failed one pin
    result = sync(settings, db, node)
    assert parsed == [cid(42)]
    assert in_error(db) == {cid(42)} and statuses(db, cid(42)) == {"p1": "pinned", "p2": "pin_error"}
    assert (result["added"], result["removed"], result["total"]) == (0, 0, PINS)
    del parsed[:]
    node.cluster[cid(42)] = info(42)                       # it has it again; another is renamed
    node.cluster[cid(7)]["name"] = "renamed"
    sync(settings, db, node)
    assert sorted(parsed) == [cid(7), cid(42)]
    assert in_error(db) == set()
    assert db.execute("SELECT name FROM pins WHERE cid = ?", (cid(7),)).fetchone()[0] == "renamed"
    del parsed[:]
    del node.cluster[cid(9)]                               # the cluster no longer pins one
    node.cluster["bafynew"] = info(1)
    result = sync(settings, db, node)
    assert parsed == ["bafynew"] and (result["added"], result["removed"]) == (1, 1)
    pins = {row[0] for row in db.execute("SELECT cid FROM pins")}
    assert cid(9) not in pins and "bafynew" in pins and len(pins) == PINS
    assert db.execute("SELECT COUNT(*) FROM pin_peers WHERE cid = ?", (cid(9),)).fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM pin_line_digests WHERE id NOT IN (SELECT id FROM pins)").fetchone()[0] == 0
    del parsed[:]
    assert sync(settings, db, node)["unchanged"] == PINS and parsed == []


def test_a_console_write_to_a_pin_forgets_its_line(settings, db, node, parsed):
    node.cluster[cid(5)] = info(5, p1="pin_error")
    sync(settings, db, node)
    assert in_error(db) == {cid(5)}
    # A task records another status for the pin (the cluster's listing stays as it was).
    console.catalogue.record_cluster_status(db, dict(info(5), cid=cid(5)))
    assert in_error(db) == set()
    # A task pins a CID the cluster does not list, and unpins one it does.
    console.catalogue.store_pin(db, "bafytask", "", 10)
    console.catalogue.remove_pin(db, cid(6))
    digests = {row[0] for row in db.execute("SELECT cid FROM pins JOIN pin_line_digests USING (id)")}
    assert cid(5) not in digests and cid(6) not in digests and "bafytask" not in digests
    del parsed[:]
    sync(settings, db, node)
    # The cluster's word again, for those pins and only those.
    assert sorted(parsed) == [cid(5), cid(6)]
    assert in_error(db) == {cid(5)} and statuses(db, cid(5))["p1"] == "pin_error"
    pins = {row[0] for row in db.execute("SELECT cid FROM pins")}
    assert cid(6) in pins and "bafytask" not in pins and len(pins) == PINS
    del parsed[:]
    assert sync(settings, db, node)["unchanged"] == PINS and parsed == []


def test_a_pin_a_task_changed_during_the_listing_keeps_no_digest(settings, db, node, parsed, monkeypatch):
    sync(settings, db, node)
    node.cluster[cid(3)] = info(3, p2="pin_error")
    node.cluster[cid(4)] = info(4, p2="pin_error")
    # While the listing is read, a task records cid 3 pinned everywhere: newer news than the listing.
    during_the_listing(monkeypatch, lambda conn: console.catalogue.record_cluster_status(
        conn, dict(info(3), cid=cid(3))))
    sync(settings, db, node)
    assert in_error(db) == {cid(4)}
    digests = {row[0] for row in db.execute("SELECT cid FROM pins JOIN pin_line_digests USING (id)")}
    assert cid(3) not in digests and cid(4) in digests
    del parsed[:]
    # So the next re-sync reads its line again, and applies it.
    sync(settings, db, node)
    assert parsed == [cid(3)] and in_error(db) == {cid(3), cid(4)}


def test_a_re_sync_that_fails_while_applying_leaves_catalogue_and_digests_as_they_were(settings, db, node,
                                                                                          monkeypatch):
    sync(settings, db, node)
    before = [list(db.execute("SELECT * FROM %s ORDER BY 1, 2" % table))
              for table in ("pins", "pin_peers", "pin_replication", "pin_line_digests")]
    node.cluster[cid(8)] = info(8, p1="pin_error")
    del node.cluster[cid(11)]

    def broken(conn, only=""):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(console.catalogue, "apply_cluster_statuses", broken)
    task_id = db.execute("INSERT INTO background_tasks (task_type, status, params) VALUES ('pin_sync', 'pending', ?)",
                         (json.dumps({"ipfs_api": node.url, "cluster_api": node.url}),)).lastrowid
    console.tasks.run_task(task_id, settings.db)
    assert db.execute("SELECT status FROM background_tasks WHERE id = ?", (task_id,)).fetchone()[0] == "failed"
    after = [list(db.execute("SELECT * FROM %s ORDER BY 1, 2" % table))
             for table in ("pins", "pin_peers", "pin_replication", "pin_line_digests")]
    assert [[tuple(row) for row in rows] for rows in after] == [[tuple(row) for row in rows] for rows in before]
    monkeypatch.undo()
    sync(settings, db, node)
    assert in_error(db) == {cid(8)}
    assert db.execute("SELECT COUNT(*) FROM pins WHERE cid = ?", (cid(11),)).fetchone()[0] == 0
