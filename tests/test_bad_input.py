"""Bad input of every kind gets a clear 4xx JSON error: never a 500, a
traceback, a file path, or lost data."""

import json
import os
import random
import socket
import sqlite3
import time

import pytest

import console.processes
import console.shipped
import console.web.app
import console.web.http

BAD_IDS = ["", "abc", "-1", "0", "1.5", "1e3", "99999999999999999999", "9" * 500, "1' OR '1'='1",
           "1;DROP TABLE background_tasks", "%E4%B8%80", "%00", "%FF%FE", "0x1", "1,2", "[1]", "null", "%20"]
ID_PATHS = [("GET", "/pins/task-status"), ("POST", "/tasks/cancel"), ("POST", "/tasks/retry"), ("GET", "/tasks/log")]
QUERIES = [("/api/pins", "limit=-1"), ("/api/pins", "limit=1e9"), ("/api/pins", "offset=abc"),
           ("/api/pins", "sort=name;DROP TABLE pins"), ("/api/pins", "sort=%00"), ("/api/tasks", "status=done"),
           ("/api/tasks", "type=../../etc"), ("/api/tasks", "limit=0"), ("/api/tasks", "offset=-5"),
           ("/api/tasks", "status=%E4%B8%80"), ("/api/tasks", "limit=99999999999"), ("/api/history", "since=yesterday"),
           ("/api/history", "since=2026-02-30"), ("/api/history", "since=%00")]
METHODS = ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"]


def assert_json_error(r, expected=None):
    assert 400 <= r.status < 500, (r.status, r.body[:200])
    if expected:
        assert r.status == expected
    data = json.loads(r.body)
    assert data["success"] is False and isinstance(data["error"], str) and data["error"]
    assert "Traceback" not in r.text and console.shipped.HERE not in r.text


@pytest.fixture
def populated(db):
    db.execute("INSERT INTO pins (cid, type, name, size) VALUES ('bafyKeep', 'recursive', 'keep', 1)")
    db.execute("INSERT INTO background_tasks (task_type, status, single_flight) VALUES ('pin_sync', 'completed', 0)")
    return db


def test_every_endpoint_rejects_bad_ids(client, populated, monkeypatch):
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: 1)
    for method, path in ID_PATHS:
        for raw in BAD_IDS:
            assert_json_error(client.request(method, "%s?id=%s" % (path, raw)), 400)
        assert_json_error(client.request(method, path), 400)  # no id at all
        assert_json_error(client.request(method, path + "?id=424242"), 404)
    assert populated.execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 1
    assert populated.execute("SELECT status FROM background_tasks").fetchone()[0] == "completed"


def test_every_endpoint_rejects_bad_query_values(client):
    for path, query in QUERIES:
        assert_json_error(client.get(path + "?" + query), 400)


@pytest.mark.filterwarnings("ignore::wsgiref.validate.WSGIWarning")  # it does not know BREW, nor should we
def test_every_route_rejects_wrong_methods(client):
    for _, path, _ in console.web.app.ROUTES:
        for method in METHODS:
            r = client.request(method, path)
            assert_json_error(r, 405)
            assert r.header("Allow")


def test_every_post_rejects_oversized_bodies(client, db):
    for method, path, _ in console.web.app.ROUTES:
        # Uploads and pin lists are large by nature; they have limits of their own.
        if method == "POST" and path not in ("/files/upload", "/pins/add", "/pins/remove", "/pins/import-car"):
            r = client.request("POST", path + "?id=1", body=b"{" * (console.web.http.MAX_FORM_BODY + 10))
            assert_json_error(r, 413)
    assert db.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 0


def test_odd_paths_are_404(client):
    for path in ["/pins/", "/api/pins/", "//pins", "/api", "/static", "/tasks/../pins", "/\u4e00", "/%00",
                 "/" + "a" * 5000]:
        assert_json_error(client.get(path), 404)


# The real server, fed malformed traffic over real sockets ----------------------

def raw_request(port, payload, timeout=5, shut=False):
    """Send bytes, return the answer's (status, body) or None if it closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(payload)
            if shut:
                sock.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                data += piece
        except (ConnectionResetError, BrokenPipeError):
            return None
    if not data:
        return None
    if not data.startswith(b"HTTP/"):
        return 400, data  # an HTTP/0.9 request gets a bare body, as that protocol has no status line
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def malformed_requests(port):
    """At least 200 broken requests of many kinds."""
    rng = random.Random(1234)
    host = b"Host: 127.0.0.1:%d\r\n" % port
    boundary = b"----x"
    multipart = b"Content-Type: multipart/form-data; boundary=----x\r\n"
    cases = []
    for raw in BAD_IDS:
        for method, path in ID_PATHS:
            cases.append(b"%s %s?id=%s HTTP/1.1\r\n%sContent-Length: 0\r\n\r\n" % (
                method.encode(), path.encode(), raw.replace(" ", "%20").encode(), host))
    for path, query in QUERIES:
        cases.append(b"GET %s?%s HTTP/1.1\r\n%s\r\n" % (path.encode(), query.encode(), host))
    bad_bodies = [b"{not json", b"\x00\xff" * 50, b'{"id": "1; DROP TABLE pins"}', b"[]" * 1000]
    for body in bad_bodies:
        for path in ("/pins/sync", "/tasks/cancel?id=1", "/tasks/retry?id=abc", "/login"):
            cases.append(b"POST %s HTTP/1.1\r\n%sContent-Type: application/json\r\nOrigin: http://evil.example\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (path.encode(), host, len(body), body))
    multipart_bodies = [b"garbage", b"--" + boundary + b"\r\nno headers end", b"--" + boundary + b"--\r\n",
                        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="other"\r\n\r\nx\r\n--'
                        + boundary + b"--\r\n", b"--wrong\r\n\r\n"]
    for body in multipart_bodies:
        cases.append(b"POST /files/upload HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (host, multipart,
                                                                                          len(body), body))
        cases.append(b"POST /files/upload HTTP/1.1\r\n%sContent-Type: multipart/form-data\r\nContent-Length: %d"
                     b"\r\n\r\n%s" % (host, len(body), body))
    truncated = b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nabc'
    cases.append((b"POST /files/upload HTTP/1.1\r\n%s%sContent-Length: 5000\r\n\r\n%s" % (host, multipart, truncated),
                  "shut"))
    for size in (70000, 200000):
        cases.append(b"GET /api/tasks HTTP/1.1\r\n%sX-Big: %s\r\n\r\n" % (host, b"a" * size))
    cases.append(b"GET /api/tasks HTTP/1.1\r\n%s%s\r\n" % (host, b"".join(b"X-%d: y\r\n" % i for i in range(150))))
    cases.append(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
    for line in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / FTP/1.0\r\n\r\n",
                 b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40, b"GET /pins?id=%ZZ HTTP/1.1\r\n\r\n",
                 b"GET http://evil.example/pins HTTP/1.1\r\n\r\n", b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
                 b"POST /pins/sync HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
                 b"POST /pins/sync HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                 b"POST /login HTTP/1.1\r\nContent-Length: 5\r\n\r\n%ZZ%=",
                 b"GET /static/..%2f..%2fschema.sql HTTP/1.1\r\n\r\n", b"GET /static/%00 HTTP/1.1\r\n\r\n"]:
        cases.append(line)
    for method in METHODS:
        for _, path, _ in console.web.app.ROUTES[:6]:
            cases.append(b"%s %s HTTP/1.1\r\n%sContent-Length: 0\r\n\r\n" % (method.encode(), path.encode(), host))
    while len(cases) < 230:
        junk = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(1, 80)))
        cases.append(b"GET /pins/task-status?id=" + junk.replace(b" ", b"+").replace(b"#", b"") + b" HTTP/1.1\r\n"
                     + host + b"\r\n")
    return cases


def test_the_live_server_survives_200_malformed_requests(make_live_server):
    server = make_live_server("http://127.0.0.1:9", request_timeout=1)
    port = server.server.server_address[1]
    conn = sqlite3.connect(server.db_path)
    conn.execute("INSERT INTO pins (cid, type, name) VALUES ('bafyKeep', 'recursive', '')")
    conn.commit()
    cases = malformed_requests(port)
    assert len(cases) >= 200
    answered = 0
    for case in cases:
        shut = isinstance(case, tuple)
        payload = case[0] if shut else case
        answer = raw_request(port, payload, shut=shut)
        if answer is None:
            continue  # the server may hang up on garbage; it must not crash
        status, body = answer
        assert status < 500, (payload[:120], status, body[:200])
        if status >= 400:
            data = json.loads(body)
            assert data["success"] is False and data["error"], payload[:120]
            assert b"Traceback" not in body
        answered += 1
    assert answered >= 200

    # Slow clients: a stalled body and a stalled header are dropped after the time-out.
    with socket.create_connection(("127.0.0.1", port)) as stalled_body, \
            socket.create_connection(("127.0.0.1", port)) as stalled_head:
        stalled_body.sendall(b"POST /files/upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                             b"Content-Length: 100000\r\n\r\n--x\r\n")
        stalled_head.sendall(b"GET /api/tasks HTTP/1.1\r\nX-Slow: ")
        started = time.monotonic()
        assert server.request("GET", "/api/tasks").status == 200  # others are served meanwhile
        stalled_body.settimeout(10)
        answer = stalled_body.recv(65536)
        assert time.monotonic() - started < 8
        assert answer == b"" or b" 400 " in answer.split(b"\r\n")[0]

    assert server.request("GET", "/api/tasks").status == 200
    assert server.request("GET", "/api/pins").json["total"] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert not [name for name in os.listdir(server.settings.task_dir) if name.startswith("incoming")] \
        if os.path.isdir(server.settings.task_dir) else True
