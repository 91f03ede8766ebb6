"""The name_follow task against the real Kubo: an IPNS name published
offline, followed as it moves on; the old CID unpinned, the last N kept."""

import json
import uuid

import pytest

import console.control
import console.schedules
import console.store
from support import catalogue, run_here


@pytest.fixture
def ipns_key(ipfs_node):
    """A fresh key of the session's node, so that each test publishes its own name."""
    name = "follow-" + uuid.uuid4().hex[:12]
    key_id = ipfs_node.rpc("key/gen", arg=name, type="ed25519")["Id"]
    yield name, "/ipns/" + key_id
    ipfs_node.rpc("key/rm", arg=name)


def publish(node, key, data):
    cid = node.add(data, pin=False)
    node.rpc("name/publish", arg="/ipfs/" + cid, key=key, **{"allow-offline": "true", "resolve": "false"})
    return cid


def follow(settings, db, name, keep=None):
    params = {"ipfs_api": settings.ipfs_api, "name": name}
    if keep:
        params["keep"] = keep
    return run_here(settings, console.control.start_task(settings, db, "name_follow", params))


def pinned(node):
    return set(node.pin_ls("recursive"))


@pytest.fixture
def here(settings, ipfs_node, spawned):
    settings.ipfs_api = ipfs_node.api_url
    return settings


def test_it_pins_what_the_name_points_to_and_unpins_what_it_replaces(here, db, ipfs_node, ipns_key):
    key, name = ipns_key
    first = publish(ipfs_node, key, b"first version " + uuid.uuid4().bytes)
    task = follow(here, db, name)
    assert task["status"] == "completed", task
    assert task["result"]["pinned"] == first and task["result"]["changed"] and task["result"]["unpinned"] == []
    assert first in pinned(ipfs_node)
    assert catalogue(here.db)[first][1] == name       # named after the name it follows

    again = follow(here, db, name)
    assert again["status"] == "completed" and again["result"]["changed"] is False
    assert again["result"]["pinned"] is None and first in pinned(ipfs_node)

    second = publish(ipfs_node, key, b"second version " + uuid.uuid4().bytes)
    moved = follow(here, db, name)
    assert moved["status"] == "completed", moved
    assert moved["result"]["pinned"] == second and moved["result"]["unpinned"] == [first]
    now = pinned(ipfs_node)
    assert second in now and first not in now
    assert second in catalogue(here.db) and first not in catalogue(here.db)


def test_it_keeps_the_last_n(here, db, ipfs_node, ipns_key):
    key, name = ipns_key
    cids = []
    for n in range(3):
        cids.append(publish(ipfs_node, key, b"version %d " % n + uuid.uuid4().bytes))
        assert follow(here, db, name, keep=2)["status"] == "completed"
    now = pinned(ipfs_node)
    assert cids[1] in now and cids[2] in now and cids[0] not in now
    rows = db.execute("SELECT cid FROM followed_names WHERE name = ?", (name,)).fetchall()
    assert {row["cid"] for row in rows} == {cids[1], cids[2]}


def test_a_name_that_does_not_resolve_fails_the_task_and_pins_nothing(here, db, ipfs_node):
    before = pinned(ipfs_node)
    task = follow(here, db, "/ipns/k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8")
    assert task["status"] == "failed" and task["error_message"]
    assert pinned(ipfs_node) == before


def test_a_schedule_starts_it_with_its_name_and_keep(here, db, spawned, ipns_key):
    _, name = ipns_key
    schedule_id = console.schedules.add_schedule(here, db, "name_follow", "every 1h", {"name": name, "keep": 3})
    outcome, task_id, _, _ = console.schedules.run_now(here, db, schedule_id)
    assert outcome == "started" and spawned == [task_id]
    params = json.loads(console.store.get_task(db, task_id)["params"])
    assert params["name"] == name and params["keep"] == 3 and params["schedule_id"] == schedule_id


def test_it_never_unpins_a_cid_that_was_pinned_before_the_name_pointed_to_it(here, db, ipfs_node, ipns_key):
    key, name = ipns_key
    by_hand = publish(ipfs_node, key, b"pinned by hand " + uuid.uuid4().bytes)
    ipfs_node.rpc("pin/add", arg=by_hand)
    assert follow(here, db, name)["result"]["pinned"] == by_hand
    publish(ipfs_node, key, b"the next version " + uuid.uuid4().bytes)
    moved = follow(here, db, name)
    assert moved["status"] == "completed", moved
    assert moved["result"]["unpinned"] == [] and moved["result"]["kept"] == [by_hand]
    assert by_hand in pinned(ipfs_node)
    assert not db.execute("SELECT 1 FROM followed_names WHERE cid = ?", (by_hand,)).fetchone()
