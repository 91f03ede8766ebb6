"""Uploads through the real server and worker to the real IPFS node."""

import hashlib
import os
import re

import pytest

from support import StallingProxy, wait_for
from test_upload import multipart


MiB = 1024 * 1024


def upload(server, data, name="file.bin", pin=True):
    body, headers = multipart([("file", name, data), ("pin", None, b"1" if pin else b"0")])
    r = server.request("POST", "/files/upload", body=body, headers=headers)
    assert r.status == 202, r.body
    return r.json["taskId"]


def deterministic_bytes(size, seed):
    out, block = bytearray(), hashlib.sha256(seed.encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


@pytest.mark.parametrize("size", [0, 1, 3 * MiB + 17])
def test_an_upload_reaches_the_node_with_the_right_cid(live_server, ipfs_node, size):
    data = deterministic_bytes(size, "upload %d" % size)
    task = live_server.wait_for_task(upload(live_server, data, name="data-%d.bin" % size))
    assert task["status"] == "completed", task
    cid = task["result"]["cid"]
    assert cid == ipfs_node.only_hash(data)
    assert task["result"]["size"] == size and task["result"]["pinned"] is True
    assert task["progress"] == task["total"] == size and task["current_item"] == "data-%d.bin" % size
    assert ipfs_node.pin_ls().get(cid) == "recursive"
    assert pin_name_on_node(ipfs_node, cid) == "data-%d.bin" % size
    pins = live_server.request("GET", "/api/pins?q=" + cid).json["pins"]
    stat = ipfs_node.rpc("files/stat", arg="/ipfs/" + cid)
    assert [(p["cid"], p["name"], p["size"]) for p in pins] == [(cid, "data-%d.bin" % size, stat["CumulativeSize"])]
    assert not os.path.exists(live_server.settings.files.spool(task["id"]))


def pin_name_on_node(ipfs_node, cid):
    return ipfs_node.rpc("pin/ls", arg=cid, type="recursive", names="true")["Keys"][cid].get("Name", "")


def test_a_folder_is_pinned_as_itself_under_its_name(live_server, ipfs_node):
    folder = "my folder 我的文件夹"
    files = {"a.txt": b"first file", "b.txt": b"second file"}
    body, headers = multipart([("file", "%s/%s" % (folder, name), data) for name, data in files.items()])
    r = live_server.request("POST", "/files/upload", body=body, headers=headers)
    task = live_server.wait_for_task(r.json["taskId"])
    assert task["status"] == "completed", task
    cid = task["result"]["cid"]
    assert cid == ipfs_node.add_folder(folder, files, only_hash="true", pin="false")
    assert pin_name_on_node(ipfs_node, cid) == folder
    listed = ipfs_node.rpc("ls", arg=cid)["Objects"][0]["Links"]
    assert sorted(link["Name"] for link in listed) == ["a.txt", "b.txt"]


def test_a_large_upload_reports_progress_in_bytes(live_server, ipfs_node):
    data = deterministic_bytes(12 * MiB, "large")
    task_id = upload(live_server, data, name="large.bin", pin=False)
    task = live_server.wait_for_task(task_id)
    assert task["status"] == "completed", task
    assert task["result"]["cid"] == ipfs_node.only_hash(data) and task["result"]["pinned"] is False
    assert task["result"]["cid"] not in ipfs_node.pin_ls()
    log = live_server.request("GET", "/tasks/log?id=%d" % task_id).text
    steps = [int(n) for n in re.findall(r"Progress: (\d+) / %d" % len(data), log)]
    assert len(steps) >= 12 and steps == sorted(steps) and steps[-1] == len(data)


def test_several_uploads_run_at_once(live_server, ipfs_node):
    blobs = [deterministic_bytes(2 * MiB, "parallel %d" % i) for i in range(3)]
    ids = [upload(live_server, blob, name="p%d" % i) for i, blob in enumerate(blobs)]
    tasks = [live_server.wait_for_task(task_id) for task_id in ids]
    assert [t["status"] for t in tasks] == ["completed"] * 3
    assert [t["result"]["cid"] for t in tasks] == [ipfs_node.only_hash(b) for b in blobs]


def test_cancel_stops_an_upload_mid_stream(make_live_server, ipfs_node):
    proxy = StallingProxy(ipfs_node.api_url, limit=8 * MiB)     # the rest waits until the cancel is seen
    try:
        server = make_live_server(proxy.url)
        data = deterministic_bytes(40 * MiB, "cancelled")
        task_id = upload(server, data, name="cancel-me.bin")
        wait_for(lambda: proxy.forwarded >= 4 * MiB, timeout=60, message="the upload to be under way")
        assert server.request("POST", "/tasks/cancel?id=%d" % task_id).json["status"] == "cancelling"
        task = server.wait_for_task(task_id, timeout=10)
    finally:
        proxy.close()
    assert task["status"] == "cancelled" and task["progress"] < len(data)
    assert "cid" not in task["result"]
    assert ipfs_node.only_hash(data) not in ipfs_node.pin_ls()
    assert not os.path.exists(server.settings.files.spool(task_id))


def test_an_oversized_upload_gets_413_before_the_body_is_sent(make_live_server, ipfs_node):
    import socket
    server = make_live_server(ipfs_node.api_url, max_upload_bytes=MiB)
    port = server.server.server_address[1]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /files/upload HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: %d\r\n\r\n"
                     % (port, 3 * 1024 ** 3))
        answer = sock.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 413 ") or head.startswith(b"HTTP/1.1 413 ")
    assert b'"success": false' in body
    assert server.request("GET", "/api/tasks").json["total"] == 0


def test_a_failed_upload_removes_its_file(make_live_server):
    server = make_live_server("http://127.0.0.1:9")
    task_id = upload(server, b"never reaches a node")
    task = server.wait_for_task(task_id, timeout=30)
    assert task["status"] == "failed"
    assert task["error_message"] == "cannot reach the IPFS API at http://127.0.0.1:9: connection refused"
    assert not os.path.exists(server.settings.files.spool(task_id))
