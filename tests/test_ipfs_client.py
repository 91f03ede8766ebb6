"""The worker's Kubo RPC client against canned HTTP answers on loopback.

These isolate what a real node rarely does on demand: errors in trailers,
streams cut short, transient 5xx answers.
"""

import http.client
import io
import json
import os
import socket
import socketserver
import sys
import threading
import time

import pytest

import console.framing
import console.rpc
import console.runner
import console.tasks
import console.tasks.sizes


class CannedServer(socketserver.ThreadingTCPServer):
    """Answers each request with the next canned raw HTTP response."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, responses, host="127.0.0.1"):
        self.responses = list(responses)
        self.requests = []
        self.heads = []
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, 0), CannedHandler)

    @property
    def url(self):
        host = self.server_address[0]
        return "http://%s:%d" % ("[%s]" % host if ":" in host else host, self.server_address[1])


class CannedHandler(socketserver.StreamRequestHandler):
    def handle(self):
        while self.server.responses:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                byte = self.rfile.read(1)
                if not byte:
                    return
                head += byte
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            self.rfile.read(length)
            self.server.requests.append(head.split(b"\r\n")[0].decode())
            self.server.heads.append(head.decode("latin-1"))
            raw = self.server.responses.pop(0)
            self.wfile.write(raw)
            self.wfile.flush()
            if b"Connection: close" in raw:
                return


@pytest.fixture
def canned():
    servers = []

    def make(*responses, host="127.0.0.1"):
        server = CannedServer(responses, host)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        servers.append(server)
        return server
    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def chunked(lines, trailer=b"", end=True):
    body = b""
    for line in lines:
        body += b"%x\r\n%s\r\n" % (len(line), line)
    if end:
        body += b"0\r\n" + trailer + b"\r\n"
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Chunked-Output: 1\r\n"
            b"Transfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\nConnection: close\r\n\r\n")
    return head + body


def json_answer(obj, status="200 OK"):
    body = json.dumps(obj).encode()
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status.encode(), len(body), body)


PINS = [b'{"Cid": "bafyA", "Type": "recursive"}\n', b'{"Cid": "bafyB", "Name": "b", "Type": "recursive"}\n']


def test_it_reads_a_complete_stream(canned):
    server = canned(chunked(PINS))
    client = console.rpc.IPFSClient(server.url)
    assert [o["Cid"] for o in client.stream("pin/ls", [("stream", "true")])] == ["bafyA", "bafyB"]
    assert server.requests[0].startswith("POST /api/v0/pin/ls?stream=true ")


def test_it_reads_lines_split_across_chunks(canned):
    server = canned(chunked([b'{"Cid": "ba', b'fyA"}\n{"Cid"', b': "bafyB"}\n']))
    assert [o["Cid"] for o in console.rpc.IPFSClient(server.url).stream("pin/ls")] == ["bafyA", "bafyB"]


def test_it_handles_an_error_in_the_trailer(canned):
    server = canned(chunked(PINS, trailer=b"X-Stream-Error: context canceled\r\n"))
    with pytest.raises(console.rpc.IPFSError, match="context canceled"):
        list(console.rpc.IPFSClient(server.url, attempts=1).stream("pin/ls"))


def test_it_handles_a_stream_cut_short(canned):
    server = canned(chunked(PINS, end=False))
    with pytest.raises(console.rpc.IPFSError, match="broke off pin/ls") as info:
        list(console.rpc.IPFSClient(server.url, attempts=1).stream("pin/ls"))
    assert info.value.transient


def test_it_handles_an_error_object_in_the_stream(canned):
    server = canned(chunked([PINS[0], b'{"Message": "pin store broken", "Code": 0, "Type": "error"}\n']))
    with pytest.raises(console.rpc.IPFSError, match="pin store broken"):
        list(console.rpc.IPFSClient(server.url).stream("pin/ls"))


def test_it_says_when_the_node_cannot_be_reached():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = console.rpc.IPFSClient("http://127.0.0.1:%d" % port, attempts=2, backoff=0.01)
    with pytest.raises(console.rpc.IPFSError) as info:
        client.call("version")
    assert str(info.value) == "cannot reach the IPFS API at http://127.0.0.1:%d: connection refused" % port


def test_it_retries_transient_errors_with_backoff(canned):
    server = canned(json_answer({"Message": ""}, "503 Service Unavailable"),
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
                    json_answer({"Version": "0.30.0"}))
    client = console.rpc.IPFSClient(server.url, attempts=3, backoff=0.01)
    assert client.call("version") == {"Version": "0.30.0"}
    assert len(server.requests) == 3


def test_it_does_not_retry_the_nodes_own_error_answer(canned):
    server = canned(json_answer({"Message": "not unixfs node (proto or raw)", "Code": 0, "Type": "error"},
                                "500 Internal Server Error"), json_answer({}))
    with pytest.raises(console.rpc.IPFSError, match="not unixfs node") as info:
        console.rpc.IPFSClient(server.url, backoff=0.01).call("files/stat", [("arg", "/ipfs/x")])
    assert not info.value.transient and len(server.requests) == 1


def test_it_gives_up_after_three_attempts(canned):
    answer = json_answer({"Message": "busy"}, "503 Service Unavailable")
    server = canned(answer, answer, answer, answer)
    with pytest.raises(console.rpc.IPFSError, match="busy"):
        console.rpc.IPFSClient(server.url, backoff=0.01).call("version")
    assert len(server.requests) == 3


def test_it_builds_kubo_credentials():
    assert console.rpc.auth_header("basic:alice:s3cret") == "Basic YWxpY2U6czNjcmV0"
    assert console.rpc.auth_header("bearer:tok") == "Bearer tok"
    with pytest.raises(ValueError):
        console.rpc.auth_header("alice:s3cret")


def test_progress_lines_follow_the_seed_format():
    out = io.StringIO()
    ctx = console.runner.TaskContext({"id": 7, "task_type": "pin_sync", "params": "{}"}, ":memory:", "http://x", out=out)
    ctx.log("Fetching pins from IPFS...")
    ctx.set_total(25)
    for _ in range(25):
        ctx.advance(1, "bafy")
    assert out.getvalue().splitlines() == [
        "[Task 7] Fetching pins from IPFS...",
        "[Task 7] Progress: 10 / 25",
        "[Task 7] Progress: 20 / 25",
        "[Task 7] Progress: 25 / 25",
    ]


def test_a_task_sends_the_nodes_credentials_and_never_logs_them(canned, settings, db):
    denied = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 37\r\n\r\n"
              b"Kubo RPC Access Denied: bad password")
    server = canned(denied)
    db.execute("INSERT INTO background_tasks (task_type, status, params) VALUES ('pin_sync', 'pending', ?)",
               (json.dumps({"ipfs_api": server.url}),))
    out = io.StringIO()
    real_stdout = sys.stdout
    sys.stdout = out
    try:
        assert console.tasks.run_task(1, settings.db, auth="basic:alice:s3cret-pw") == 1
    finally:
        sys.stdout = real_stdout
    assert "[Task 1] Failed: the IPFS API at %s refused pin/ls: access denied" % server.url in out.getvalue()
    assert "Authorization: Basic YWxpY2U6czNjcmV0LXB3\r\n" in server.heads[0]
    row = db.execute("SELECT status, error_message, params, result FROM background_tasks").fetchone()
    assert row["status"] == "failed" and "access denied" in row["error_message"]
    for text in [out.getvalue(), row["error_message"], row["params"], row["result"]]:
        assert "s3cret" not in text and "YWxpY2U6czNjcmV0LXB3" not in text


def test_pipelined_calls_read_each_answer_in_order(canned):
    chunked_ok = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\n\r\n"
                  b"4\r\n{\"Cu\r\n12\r\nmulativeSize\": 7}\n\r\n0\r\n\r\n")
    chunked_failed = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"2\r\n{}\r\n0\r\nX-Stream-Error: block not found\r\n\r\n")
    not_unixfs = json_answer({"Message": "not unixfs node", "Code": 0, "Type": "error"}, "500 Internal Server Error")
    server = canned(json_answer({"CumulativeSize": 1}), chunked_ok, chunked_failed, not_unixfs,
                    json_answer({"CumulativeSize": 4}))
    client = console.rpc.IPFSClient(server.url)
    answers = client.call_many("files/stat", ["/ipfs/c%d" % i for i in range(5)], console.tasks.sizes.STAT_OPTIONS)
    assert answers[0] == {"CumulativeSize": 1} and answers[1] == {"CumulativeSize": 7}
    assert isinstance(answers[2], console.rpc.IPFSError) and "block not found" in str(answers[2])
    assert isinstance(answers[3], console.rpc.IPFSError) and not answers[3].transient
    assert answers[4] == {"CumulativeSize": 4}
    assert [r.split()[1] for r in server.requests] == [
        "/api/v0/files/stat?arg=%%2Fipfs%%2Fc%d&offline=true&timeout=10s" % i for i in range(5)]


def test_pipelined_size_look_ups_fall_back_one_by_one(canned):
    closing = json_answer({"CumulativeSize": 1}).replace(b"200 OK\r\n", b"200 OK\r\nConnection: close\r\n")
    not_unixfs = json_answer({"Message": "not unixfs node", "Code": 0, "Type": "error"}, "500 Internal Server Error")
    # c0 answers and closes; c1 is asked again alone: files/stat fails, block/stat gives the root block's size.
    server = canned(closing, not_unixfs, json_answer({"Key": "c1", "Size": 99}))
    assert console.tasks.sizes.pin_sizes(console.rpc.IPFSClient(server.url), ["c0", "c1"]) == [1, 99]
    assert [r.split()[1].split("?")[0] for r in server.requests] == [
        "/api/v0/files/stat", "/api/v0/files/stat", "/api/v0/block/stat"]


class Pieces:
    """A socket that hands out its bytes in the given pieces, one per recv."""

    def __init__(self, data, sizes):
        self.pieces = []
        while data:
            size = next(sizes)
            self.pieces.append(data[:size])
            data = data[size:]

    def recv(self, limit):
        return self.pieces.pop(0) if self.pieces else b""


def test_pipelined_answers_are_read_whatever_the_reads_return():
    error = b'{"Message": "not unixfs", "Code": 0, "Type": "error"}'
    answers = [
        json_answer({"CumulativeSize": 1}),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\n{\"Cum\r\n12;ext=1\r\nulativeSize\": 22}\n\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Stream-Error\r\n\r\n"
        b"3\r\n{}\n\r\n0\r\nX-Stream-Error: block not found\r\n\r\n",
        b"HTTP/1.1 500 Internal Server Error\r\nTRANSFER-ENCODING: Chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(error), error),
        json_answer({"CumulativeSize": 4}),
    ]
    expected = [(200, b'{"CumulativeSize": 1}'), (200, b'{"CumulativeSize": 22}\n'), (500, b"block not found"),
                (500, error), (200, b'{"CumulativeSize": 4}')]
    data = b"".join(answers)
    for sizes in ([len(data)], [1], [7, 3], [64], [200, 1]):
        shapes = console.framing.AnswerShapes()
        shapes.can_wait = False
        reader = console.framing.AnswerReader(Pieces(data, iter(sizes * len(data))), len(answers), shapes)
        assert [reader.next()[:2] for _ in answers] == expected
        assert shapes.shortest == min(len(answer) for answer in answers)


def test_a_pipelined_answer_cut_short_is_an_error():
    data = json_answer({"CumulativeSize": 1}) + b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"Cumul"
    reader = console.framing.AnswerReader(Pieces(data, iter([10] * 100)), 2)
    assert reader.next()[:2] == (200, b'{"CumulativeSize": 1}')
    with pytest.raises(http.client.IncompleteRead):
        reader.next()


def test_query_values_are_escaped_as_urlencode_does():
    from urllib.parse import urlencode
    values = ["/ipfs/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "a b+c&d=e", "~._-", "100%", "日本語", "",
              "".join(chr(c) for c in range(1, 128))]
    for value in values:
        assert console.framing._query([("arg", value)]) == urlencode([("arg", value)])


def test_progress_is_not_logged_against_a_total_still_unknown():
    out = io.StringIO()
    ctx = console.runner.TaskContext({"id": 7, "task_type": "pin_sync", "params": "{}"}, ":memory:", "http://x", out=out)
    ctx.advance(64, "bafy")
    assert ctx.progress == 64 and out.getvalue() == ""
    ctx.set_total(100)
    ctx.advance(36, "bafy")
    assert out.getvalue().splitlines() == ["[Task 7] Progress: 100 / 100"]


@pytest.mark.parametrize("head", [b"Content-Length: 99999999999", b"Content-Length: -5", b"Transfer-Encoding: chunked"])
def test_a_pipelined_answer_that_would_not_fit_is_refused(head):
    body = b"ffffffffff\r\n" if b"chunked" in head else b""
    reader = console.framing.AnswerReader(Pieces(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n" + body, iter([4096] * 10)), 1)
    with pytest.raises(http.client.HTTPException):
        reader.next()


def test_an_upload_whose_file_cannot_be_read_fails_with_that_reason(canned):
    server = canned(json_answer({"Hash": "bafyX", "Size": "5"}))

    def body():
        yield b"--b\r\n"
        raise OSError(5, "Input/output error")

    client = console.rpc.IPFSClient(server.url, timeout=5)
    with pytest.raises(console.rpc.IPFSError, match="could not send the file to the IPFS API: OSError: .*Input/output"):
        list(client.upload("add", [], body(), 1000, "multipart/form-data; boundary=b"))


def test_pipelined_calls_to_an_ipv6_address_bracket_it_in_the_host_header(canned):
    try:
        server = canned(json_answer({"CumulativeSize": 1}), json_answer({"CumulativeSize": 2}), host="::1")
    except OSError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail("no IPv6 loopback (::1) here: %s" % exc, pytrace=False)
        pytest.skip("no IPv6 loopback here")
    client = console.rpc.IPFSClient(server.url)
    assert client.call_many("files/stat", ["/ipfs/c0", "/ipfs/c1"]) == [{"CumulativeSize": 1}, {"CumulativeSize": 2}]
    port = server.server_address[1]
    assert all("\r\nHost: [::1]:%d\r\n" % port in head for head in server.heads)


def test_an_answer_larger_than_the_limit_is_refused_not_read(canned, monkeypatch):
    monkeypatch.setattr(console.rpc, "MAX_ANSWER", 1000)
    server = canned(json_answer({"Data": "x" * 5000}), json_answer({"ID": "12D3"}))
    client = console.rpc.IPFSClient(server.url)
    with pytest.raises(console.rpc.IPFSError, match="id answered more than 1000 bytes; such an answer is refused") as info:
        client.call("id")
    assert not info.value.transient
    assert client.call("id") == {"ID": "12D3"}   # on a new connection: nothing left over is read as an answer


def test_an_answer_that_waits_for_the_whole_body_is_not_a_time_out(canned):
    """Kubo's dag/import answers only once it has read the whole CAR, however long that takes."""
    server = canned(chunked([b'{"Root": {"Cid": {"/": "bafyR"}, "PinErrorMsg": ""}}\n']))

    def slow_body():
        for _ in range(6):
            time.sleep(0.2)     # the body takes longer to send than the time-out allows for a read
            yield b"x" * 100

    client = console.rpc.IPFSClient(server.url, timeout=0.5)
    answers = list(client.upload("dag/import", [], slow_body(), 600, "multipart/form-data; boundary=b"))
    assert answers == [{"Root": {"Cid": {"/": "bafyR"}, "PinErrorMsg": ""}}]
