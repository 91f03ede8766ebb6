"""Request bodies sent with Transfer-Encoding: chunked (no Content-Length):
decoded, with the same limits as any body, in-process and on the real server."""

import http.client
import json

import pytest

import console.web.http
from console.web.http import MAX_CHUNKED_BODY

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
NO_LENGTH = {"Transfer-Encoding": "chunked", "Content-Length": ""}


def chunked(data, size=7, trailer=b""):
    """``data`` framed in chunks of ``size`` bytes, as a client sends it."""
    pieces = [data[i:i + size] for i in range(0, len(data), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n" + trailer + b"\r\n"


def post(client, path, body, content_type="application/json", **headers):
    return client.post(path, body=body, headers=dict(NO_LENGTH, **{"Content-Type": content_type}, **headers))


@pytest.fixture
def started(spawned, db):
    """The tasks a request started: {id: (type, params)}."""
    def read():
        return {row["id"]: (row["task_type"], json.loads(row["params"] or "{}"))
                for row in db.execute("SELECT id, task_type, params FROM background_tasks")}
    return read


def test_it_reads_a_chunked_json_body(client, started):
    r = post(client, "/pins/remove", chunked(json.dumps({"cids": [CID]}).encode()))
    assert r.status == 202, r.body
    assert [kind for kind, _ in started().values()] == ["pin_remove"]


def test_it_reads_chunk_extensions_and_trailers(client, started):
    body = json.dumps({"cids": [CID], "name": "chunked"}).encode()
    framed = b"5;ext=1\r\n" + body[:5] + b"\r\n" + chunked(body[5:], trailer=b"X-Checksum: 1\r\n")
    r = post(client, "/pins/add", framed)
    assert r.status == 202 and r.json["valid"] == 1, r.body


def test_it_reads_a_chunked_text_list(client, started):
    r = post(client, "/pins/add", chunked(("%s first\nnot a cid\n" % CID).encode()), "text/plain")
    assert r.status == 202 and (r.json["valid"], r.json["invalid"]) == (1, 1), r.body


@pytest.mark.parametrize("framed", [
    b"", b"5\r\n{\"ci", b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"2\r\n{}\r\n", b"2\r\n{}\r\n0\r\n",
    b"1" * 5000,
])
def test_it_refuses_broken_framing(client, started, framed):
    r = post(client, "/pins/remove", framed)
    assert r.status == 400 and r.json == {"success": False, "error": "The request body is malformed or was cut short."}
    assert started() == {}


def test_it_holds_a_chunked_body_to_the_routes_limit(client, started):
    r = post(client, "/pins/sync", chunked(b"x" * (console.web.http.MAX_FORM_BODY + 1), size=4096))
    assert r.status == 413 and r.json["error"] == "The request body is too large."
    assert started() == {}


def test_a_chunked_body_past_the_most_read_that_way_needs_a_length(client, started, monkeypatch):
    monkeypatch.setattr(console.web.http, "MAX_CHUNKED_BODY", 1000)
    r = post(client, "/pins/add", chunked(("%s\n" % CID).encode() * 40, size=500), "text/plain")
    assert r.status == 411 and r.json["error"] == (
        "A request body sent in chunks may be at most 0 MiB; send a larger one with Content-Length.")
    assert MAX_CHUNKED_BODY == 64 << 20


def test_an_upload_still_needs_a_length(client, started):
    r = post(client, "/files/upload", chunked(b"--x\r\n"), "multipart/form-data; boundary=x")
    assert r.status == 411 and r.json["error"] == "Say how large the upload is (Content-Length)."


@pytest.mark.parametrize("headers,error", [
    ({"Transfer-Encoding": "chunked", "Content-Length": "12"},
     "A request cannot have both Content-Length and Transfer-Encoding."),
    ({"Transfer-Encoding": "gzip, chunked", "Content-Length": ""},
     "Send the body with Content-Length or Transfer-Encoding: chunked, not gzip, chunked."),
])
def test_it_refuses_framing_it_cannot_trust(client, started, headers, error):
    r = client.post("/pins/remove", body=chunked(b'{"cids": []}'),
                    headers=dict(headers, **{"Content-Type": "application/json"}))
    assert r.status == 400 and r.json["error"] == error
    assert started() == {}


def test_a_chunked_body_leaves_no_spool_behind(client, started, settings):
    import os
    assert post(client, "/pins/remove", chunked(json.dumps({"cids": [CID]}).encode() + b" " * (2 << 20),
                                                  size=65536)).status == 202
    assert [name for name in os.listdir(settings.files.folder) if name.startswith("tmp")] == []


def test_the_real_server_reads_a_chunked_json_body(make_live_server):
    server = make_live_server("http://127.0.0.1:9")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        body = json.dumps({"cids": [CID]}).encode()
        conn.request("POST", "/pins/remove", body=iter([body[:10], body[10:]]), encode_chunked=True,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        answer = json.loads(r.read())
    finally:
        conn.close()
    assert r.status == 202, answer
    assert server.task(answer["taskId"])["task_type"] == "pin_remove"


def test_the_real_server_says_when_a_chunked_body_is_cut_short(make_live_server):
    import socket
    server = make_live_server("http://127.0.0.1:9")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /pins/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"cids\": [")
        sock.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 400 ")
    assert json.loads(body)["error"] == "The request body is malformed or was cut short."

