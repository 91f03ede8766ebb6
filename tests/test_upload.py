"""POST /files/upload and the file_upload task."""

import io
import os
import uuid

import pytest

import console.store
import console.web.http


def multipart(fields, boundary=None):
    """A multipart/form-data body from (name, filename or None, bytes) triples."""
    boundary = boundary or uuid.uuid4().hex
    out = b""
    for name, filename, data in fields:
        disposition = 'form-data; name="%s"' % name + ('; filename="%s"' % filename if filename is not None else "")
        out += b"--%s\r\nContent-Disposition: %s\r\n\r\n%s\r\n" % (boundary.encode(), disposition.encode(), data)
    out += b"--%s--\r\n" % boundary.encode()
    return out, {"Content-Type": "multipart/form-data; boundary=" + boundary}


def test_it_spools_the_file_and_creates_a_task(client, db, settings, spawned):
    data = os.urandom(300000)
    body, headers = multipart([("name", None, b"photo.jpg"), ("pin", None, b"0"), ("file", "x.bin", data)])
    r = client.post("/files/upload", body=body, headers=headers)
    assert r.status == 202 and r.json == {"success": True, "taskId": spawned[0]}
    task = console.store.task_as_json(console.store.get_task(db, spawned[0]))
    assert task["task_type"] == "file_upload" and task["status"] == "pending"
    assert task["params"] == {"ipfs_api": settings.ipfs_api, "file_name": "photo.jpg", "size": 300000, "pin": False}
    with open(settings.files.spool(task["id"]), "rb") as f:
        assert f.read() == data
    assert os.stat(settings.files.spool(task["id"])).st_mode & 0o777 == 0o600
    assert [n for n in os.listdir(settings.task_dir) if n.startswith("incoming")] == []


def test_uploads_are_not_single_flight(client, spawned):
    for _ in range(3):
        body, headers = multipart([("file", "a.txt", b"abc")])
        assert client.post("/files/upload", body=body, headers=headers).status == 202
    assert len(spawned) == 3


@pytest.mark.parametrize("chunk", [1, 7, 64, 65536])
def test_the_multipart_reader_handles_any_chunking(chunk, monkeypatch):
    monkeypatch.setattr(console.web.http.MultipartReader, "CHUNK", chunk)
    boundary = "b0undary"
    tricky = b"\r\n--b0undar" + b"\r\n--b0undarX--" + b"\r\n-" + os.urandom(1000).replace(b"\r", b"") + b"\r"
    body, _ = multipart([("name", None, "名字".encode()), ("file", "t.bin", tricky), ("pin", None, b"1")], boundary)
    reader = console.web.http.MultipartReader(io.BytesIO(body), len(body), boundary.encode())
    parts = [(name, filename, b"".join(chunks)) for name, filename, chunks in reader.parts()]
    assert parts == [("name", None, "名字".encode()), ("file", "t.bin", tricky), ("pin", None, b"1")]


def test_an_empty_file_is_fine(client, settings, spawned):
    body, headers = multipart([("file", "empty", b"")])
    assert client.post("/files/upload", body=body, headers=headers).status == 202
    assert os.path.getsize(settings.files.spool(spawned[0])) == 0


def test_it_refuses_a_declared_oversized_body_before_reading_it(client, settings, spawned):
    settings.max_upload_bytes = 1000
    body, headers = multipart([("file", "big", b"x" * 200000)])

    class Unreadable(io.BytesIO):
        def read(self, *a):
            raise AssertionError("the body was read")
    r = client.request("POST", "/files/upload", body=body, headers=headers, stream=Unreadable(body))
    assert r.status == 413 and r.json["success"] is False and "1000" in r.json["error"]
    assert spawned == []


def test_it_refuses_an_oversized_file_while_streaming(client, settings, spawned):
    settings.max_upload_bytes = 1000
    body, headers = multipart([("file", "big", b"x" * 1001)])
    r = client.post("/files/upload", body=body, headers=headers)
    assert r.status == 413 and spawned == []
    assert os.listdir(settings.task_dir) == []


@pytest.mark.parametrize("case", ["not multipart", "no boundary", "no file field", "truncated", "garbage",
                                  "no content-length", "no disposition", "headers never end"])
def test_it_rejects_bad_uploads(client, settings, spawned, case):
    body, headers = multipart([("file", "a.txt", b"hello")])
    if case == "not multipart":
        headers = {"Content-Type": "application/json"}
    elif case == "no boundary":
        headers = {"Content-Type": "multipart/form-data"}
    elif case == "no file field":
        body, headers = multipart([("name", None, b"x")])
    elif case == "truncated":
        body = body[:-20]
    elif case == "garbage":
        body = os.urandom(5000)
    elif case == "no disposition":
        body = body.replace(b"Content-Disposition", b"Content-Dispositio")
    elif case == "no content-length":
        headers["Content-Length"] = ""
    elif case == "headers never end":
        body = body[:body.index(b"\r\n\r\n")] + b"\r\nX: " + b"y" * 40000
    r = client.request("POST", "/files/upload", body=body, headers=headers)
    assert r.status == (411 if case == "no content-length" else 400), r.body
    assert r.json["success"] is False and r.json["error"]
    assert spawned == []
    assert not os.path.isdir(settings.task_dir) or os.listdir(settings.task_dir) == []


def test_an_upload_cannot_be_retried(client, db):
    db.execute("INSERT INTO background_tasks (task_type, status, single_flight) VALUES ('file_upload', 'failed', 0)")
    r = client.post("/tasks/retry?id=1")
    assert r.status == 409 and "Upload it again" in r.json["error"]


def test_cancelling_a_pending_upload_removes_its_file(client, settings, spawned):
    body, headers = multipart([("file", "a.txt", b"hello")])
    task_id = client.post("/files/upload", body=body, headers=headers).json["taskId"]
    assert os.path.exists(settings.files.spool(task_id))
    assert client.post("/tasks/cancel?id=%d" % task_id).json["status"] == "cancelled"
    assert not os.path.exists(settings.files.spool(task_id))


@pytest.mark.parametrize("filename", ["a;b.txt", "semi; colon; name=x.txt", 'say "hi";.txt'])
def test_a_quoted_semicolon_in_a_file_name_is_part_of_the_name(client, db, spawned, filename):
    boundary = uuid.uuid4().hex
    quoted = filename.replace('"', '\\"')
    body = (b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n\r\nabc\r\n--%s--\r\n'
            % (boundary.encode(), quoted.encode(), boundary.encode()))
    r = client.post("/files/upload", body=body, headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    assert r.status == 202
    assert console.store.task_as_json(console.store.get_task(db, spawned[0]))["params"]["file_name"] == filename


def test_disposition_parameters_may_be_unquoted_and_spaced():
    head = b"Content-Disposition: form-data ; name = file ;filename=plain.txt"
    assert console.web.http.MultipartReader._disposition(head) == ("file", "plain.txt")
