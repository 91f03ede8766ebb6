"""Storage guardrails: the node overview's level against StorageMax, and
the warning an upload or a CAR import gets when it would cross it."""

import os

import pytest

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
