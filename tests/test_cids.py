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


def test_base32_decodes_as_the_standard_library_does():
    # Every length of content, and a last character whose spare bits are set.
    for length in range(0, 70):
        data = bytes((n * 37 + length) % 256 for n in range(length))
        text = console.cids.base32_encode(data)
        assert console.cids.base32_decode(text) == data
        assert console.cids.base32_encode(console.cids.base32_decode(text)) == text
    for text in ("ab", "a7", "7777777", "zzzzz"):
        assert console.cids.base32_decode(text) == base64.b32decode(text.upper() + "=" * (-len(text) % 8))


@pytest.mark.parametrize("text", ["a", "abc", "abcdef", "ABCD", "ab1c", "ab=="])
def test_base32_refuses_what_no_encoder_writes(text):
    with pytest.raises(ValueError):
        console.cids.base32_decode(text)
