"""CAR files in-process: the header check, POST /pins/import-car's refusals,
and GET /api/pins/export-car streamed through the app without being held."""

import hashlib
import io
import os

import pytest

import console.messages
import console.node
import console.registry
import console.store
import console.web.app
import console.web.http
from console.car import NotACar, cid_text, read_roots
from console.cids import multihash_of
from test_bad_input import assert_json_error
from test_upload import multipart

CARV2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")


def car_of(data):
    """(root, CAR) of one raw block, laid out as Kubo's dag/export writes it."""
    cid = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    header = b"\xa2eroots\x81\xd8\x2a\x58\x25\x00" + cid + b"gversion\x01"
    return cid_text(cid), bytes([len(header)]) + header + bytes([len(cid) + len(data)]) + cid + data


ROOT, CAR = car_of(b"stored")


def carv2(v1):
    """A CARv2 around a CARv1: the pragma, its header (the CARv1 at byte 51), the CARv1."""
    return CARV2_PRAGMA + bytes(16) + (51).to_bytes(8, "little") + len(v1).to_bytes(8, "little") + bytes(8) + v1


def test_the_header_names_the_roots_of_a_carv1_and_a_carv2():
    assert read_roots(io.BytesIO(CAR)) == [ROOT]
    assert read_roots(io.BytesIO(carv2(CAR))) == [ROOT]
    v0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    assert cid_text(multihash_of(v0)) == v0
    header = b"\xa2eroots\x80gversion\x01"
    assert read_roots(io.BytesIO(bytes([len(header)]) + header)) == []


@pytest.mark.parametrize("data,reason", [
    (b"", "it is empty"),
    (b"hello, not a CAR at all", "its header is cut short"),
    (b"\x80" * 12, "it does not begin with a header length"),
    (b"\x00", "its header length is impossible"),
    (b"\x0a\xa1eroo", "its header is cut short"),
    (b"\x03\xff\xff\xff", "its header is not dag-cbor"),
    (b"\x02\x81\x01", "its header is not a dag-cbor map"),
    (b"\x0a\xa1gversion\x03", "its CAR version is neither 1 nor 2"),
    (b"\x0a\xa1gversion\x01", "its header has no list of roots"),
    (CARV2_PRAGMA + bytes(10), "the CARv2 header is cut short"),
    (b"\x12\xa2eroots\x81\x01gversion\x01", "its header has no list of roots"),
    (b"\x0e\xa1eroots\x81\xd8\x2a\x43\x00\x01\x02", "its header is not dag-cbor"),
    (b"\x20" + b"\x81" * 32, "its header is not dag-cbor"),        # nested past any header's depth
])
def test_what_is_not_a_car_is_told_apart(data, reason):
    with pytest.raises(NotACar) as refused:
        read_roots(io.BytesIO(data))
    assert str(refused.value) == reason
    assert reason in console.messages.MESSAGES_ZH


def test_a_damaged_block_is_matched_by_multihash_whatever_its_codec():
    # Kubo's repo/verify names a folder's node (dag-pb) by its raw CIDv1.
    assert multihash_of("bafkreiclo65ztm2pk5vbehgtxroxs63xqpzqt54hu2riofmptwx7te4w6i") == multihash_of(
        "bafybeiclo65ztm2pk5vbehgtxroxs63xqpzqt54hu2riofmptwx7te4w6i")
    assert multihash_of("not a cid") is None


def test_the_new_task_types_have_labels_in_both_languages():
    info = console.registry.info()
    assert info["car_import"] == {"label": {"en": "CAR import", "zh": "导入 CAR"}, "unit": "bytes",
                                  "single_flight": False, "retryable": False, "group": None, "partial": True}
    assert info["repo_verify"]["label"] == {"en": "Repository verification", "zh": "校验仓库"}
    assert info["repo_verify"]["unit"] == "blocks" and info["repo_verify"]["single_flight"] is True
    assert info["repo_verify"]["partial"] is True and info["repo_verify"]["retryable"] is True
    assert console.registry.labels()["car_import"]["en"] == "CAR import"      # an initialism keeps its capitals
    assert console.registry.labels()["pin_sync"]["en"] == "pin sync"


def test_an_import_spools_the_car_and_starts_a_task(client, db, settings, spawned):
    body, headers = multipart([("file", "backup.car", CAR)])
    r = client.post("/pins/import-car", body=body, headers=headers)
    assert r.status == 202 and r.json == {"success": True, "taskId": spawned[0]}
    task = console.store.task_as_json(console.store.get_task(db, spawned[0]))
    assert task["task_type"] == "car_import" and task["status"] == "pending"
    assert task["params"] == {"ipfs_api": settings.ipfs_api, "file_name": "backup.car", "size": len(CAR)}
    with open(settings.files.spool(task["id"]), "rb") as f:
        assert f.read() == CAR
    assert [name for name in os.listdir(settings.task_dir) if name.startswith("incoming")] == []
    body, headers = multipart([("name", None, "我的备份".encode()), ("file", "b.car", carv2(CAR))])
    assert client.post("/pins/import-car", body=body, headers=headers).status == 202
    assert console.store.task_as_json(console.store.get_task(db, spawned[1]))["params"]["file_name"] == "我的备份"


@pytest.mark.parametrize("case", ["not multipart", "no file", "empty file", "not a car", "two files", "truncated",
                                  "too large", "no content-length"])
def test_it_rejects_bad_imports(client, settings, spawned, case):
    fields = [("file", "x.car", CAR)]
    if case == "no file":
        fields = [("name", None, b"x")]
    elif case == "empty file":
        fields = [("file", "x.car", b"")]
    elif case == "not a car":
        fields = [("file", "notes.txt", b"just some notes, long enough to have a header" * 10)]
    elif case == "two files":
        fields = [("file", "x.car", CAR), ("file", "y.car", CAR)]
    body, headers = multipart(fields)
    if case == "not multipart":
        headers = {"Content-Type": "application/vnd.ipld.car"}
    elif case == "truncated":
        body = body[:-30]
    elif case == "too large":
        settings.max_upload_bytes = 10
    elif case == "no content-length":
        headers["Content-Length"] = ""
    r = client.request("POST", "/pins/import-car", body=body, headers=headers)
    expected = {"too large": 413, "no content-length": 411}.get(case, 400)
    assert_json_error(r, expected)
    if case in ("empty file", "not a car"):
        assert r.json["error"].startswith("This file is not a CAR: ")
    assert spawned == []
    assert not os.path.isdir(settings.task_dir) or os.listdir(settings.task_dir) == []


def test_a_refusal_is_said_in_chinese_too(client):
    body, headers = multipart([("file", "x.car", b"")])
    r = client.request("POST", "/pins/import-car", body=body, headers=dict(headers, **{"Accept-Language": "zh"}))
    assert r.status == 400 and r.json["error"] == "这个文件不是 CAR：文件是空的。"


def test_a_car_import_cannot_be_retried(client, db):
    db.execute("INSERT INTO background_tasks (task_type, status, single_flight) VALUES ('car_import', 'failed', 0)")
    r = client.post("/tasks/retry?id=1")
    assert r.status == 409 and "Import it again" in r.json["error"]


@pytest.mark.parametrize("query", ["", "cid=", "cid=nope", "cid=Qm" + "1" * 44, "cid=%00", "cid=" + "b" * 300])
def test_an_export_of_what_is_not_a_cid_is_400(client, query):
    r = client.get("/api/pins/export-car?" + query)
    assert_json_error(r, 400)
    assert r.header("Content-Disposition") is None


def test_an_export_from_a_node_that_cannot_be_reached_is_502(client):
    r = client.get("/api/pins/export-car?cid=" + ROOT)
    assert r.status == 502 and r.json["success"] is False
    assert r.json["error"] == ("The IPFS node cannot be reached: cannot reach the IPFS API at http://127.0.0.1:9:"
                               " connection refused")


class Pieces:
    """A streamed body that records how far it was read and whether it was closed."""

    def __init__(self, pieces, fail_after=None):
        self.pieces, self.fail_after = pieces, fail_after
        self.given, self.closed = 0, False

    def __iter__(self):
        for piece in self.pieces:
            if self.given == self.fail_after:
                raise console.node.IPFSError("the node broke off")
            self.given += 1
            yield piece

    def close(self):
        self.closed = True


def start_export(settings, monkeypatch, body, method="GET"):
    """Call the app for an export whose node answers ``body``; returns (start_response's call, the app's iterable)."""
    monkeypatch.setattr(console.node, "export_car", lambda settings, cid: body)
    app = console.web.app.App(settings)
    seen = {}
    environ = {"REQUEST_METHOD": method, "PATH_INFO": "/api/pins/export-car", "QUERY_STRING": "cid=" + ROOT,
               "HTTP_HOST": "127.0.0.1:7789", "wsgi.input": io.BytesIO(b""), "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "7789", "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1"}
    result = app(environ, lambda status, headers: seen.update(status=status, headers=dict(headers)))
    return seen, result


def test_an_export_is_passed_on_piece_by_piece_not_held(settings, monkeypatch):
    body = Pieces([b"a" * 10, b"b" * 20, b"c" * 30])
    seen, result = start_export(settings, monkeypatch, body)
    assert seen["status"] == "200 OK" and "Content-Length" not in seen["headers"]
    assert seen["headers"]["Content-Type"] == "application/vnd.ipld.car"
    assert seen["headers"]["Content-Disposition"] == 'attachment; filename="%s.car"' % ROOT
    assert body.given == 0                        # nothing read before the server asks
    pieces = iter(result)
    assert next(pieces) == b"a" * 10 and body.given == 1
    assert list(pieces) == [b"b" * 20, b"c" * 30] and body.closed


def test_an_export_that_breaks_off_ends_there_and_asks_for_a_reset(settings, monkeypatch, caplog):
    body = Pieces([b"a", b"b", b"c"], fail_after=1)
    seen, result = start_export(settings, monkeypatch, body)
    # What the server puts in the environ, to be told to reset the connection.
    resets = []
    environ_with_reset = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/pins/export-car",
                          console.web.http.STREAM_BROKE: lambda: resets.append(True)}
    assert list(console.web.http.streamed(environ_with_reset, Pieces([b"a", b"b"], fail_after=1))) == [b"a"]
    assert resets == [True] and "the answer broke off: the node broke off" in caplog.text
    assert list(result) == [b"a"] and body.closed


def test_head_of_an_export_reads_nothing_and_closes_it(settings, monkeypatch):
    body = Pieces([b"never read"])
    seen, result = start_export(settings, monkeypatch, body, method="HEAD")
    assert seen["status"] == "200 OK" and list(result) == [] and body.given == 0 and body.closed


def test_a_json_answer_still_says_its_length_and_head_gets_it_too(client):
    get, head = client.get("/api/info"), client.request("HEAD", "/api/info")
    assert get.header("Content-Length") == str(len(get.body)) == head.header("Content-Length")
    assert head.body == b""
