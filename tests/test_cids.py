"""The CID check beside what Kubo takes: identity CIDs, whose digest is the
content itself (``bafkqaaa``, the empty raw block, is the shortest)."""

import base64

import pytest

import console.cids

EMPTY_IDENTITY = "bafkqaaa"


def cidv1(codec, hash_code, digest):
    """A base32 CIDv1 of ``codec`` whose multihash is ``hash_code`` with ``digest``."""
    data = bytes([1, codec, hash_code, len(digest)]) + digest
    return "b" + base64.b32encode(data).decode().lower().rstrip("=")


@pytest.mark.parametrize("text", [
    EMPTY_IDENTITY, cidv1(0x55, 0x00, b"hello"), cidv1(0x70, 0x00, b""), cidv1(0x71, 0x00, b"\xa0"),
    "f01550000", "f015500" + "05" + b"hello".hex(),
])
def test_it_accepts_identity_cids(text):
    assert console.cids.is_cid(text), text


@pytest.mark.parametrize("text", [
    EMPTY_IDENTITY + "a", "bafkqaa", "bafkqaaaq", cidv1(0x55, 0x12, b""), cidv1(0x55, 0x00, b"hello")[:-1],
    "f0155000001", "f01550001", "f015500" + "81" + "01" + "61" * 129,
])
def test_it_refuses_what_only_looks_like_one(text):
    assert not console.cids.is_cid(text), text


def test_kubo_pins_the_empty_identity_cid_through_the_console(live_server, ipfs_node):
    r = live_server.request("POST", "/pins/add", body=b'{"cids": ["%s"]}' % EMPTY_IDENTITY.encode(),
                            headers={"Content-Type": "application/json"})
    assert r.status == 202, r.body
    task = live_server.wait_for_task(r.json["taskId"])
    assert task["status"] == "completed" and task["result"]["done"] == 1, task
    assert EMPTY_IDENTITY in ipfs_node.pin_ls(type="recursive")
