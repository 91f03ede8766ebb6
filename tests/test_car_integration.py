"""CAR files through the real server, worker and Kubo: an export streamed
from one node imports into another with the same root and bytes; an import
pins its roots with names and sizes and counts bytes; an export that breaks
off is never a complete-looking file; the command line does both."""

import http.client
import json
import os
import subprocess
import sys

import pytest

import console.shipped
from support import StallingProxy, catalogue, wait_for
from test_upload import multipart
from test_upload_integration import deterministic_bytes, pin_name_on_node

MiB = 1024 * 1024
FILES = {"a.txt": b"alpha " * 1000, "big.bin": deterministic_bytes(3 * MiB, "car export"),
         "\u4e2d\u6587.txt": "\u4f60\u597d".encode("utf-8")}


def import_car(server, data, name="import.car", fields=()):
    """POST /pins/import-car; returns the answer."""
    body, headers = multipart([("file", name, data)] + list(fields))
    return server.request("POST", "/pins/import-car", body=body, headers=headers)


def cat(node, path):
    status, _, data = node.request("cat", {"arg": path})
    assert status == 200, data[:200]
    return data


def test_an_export_from_one_node_imports_into_another_with_the_same_root_and_bytes(own_ipfs_node, second_ipfs_node,
                                                                                 make_live_server):
    folder = own_ipfs_node.add_folder("photos", FILES, cid_version=1, raw_leaves="true")
    source = make_live_server(own_ipfs_node.api_url)
    r = source.request("GET", "/api/pins/export-car?cid=" + folder)
    assert r.status == 200, r.body[:300]
    assert r.header("Content-Type") == "application/vnd.ipld.car"
    assert r.header("Content-Disposition") == 'attachment; filename="%s.car"' % folder
    assert r.header("Content-Length") is None         # streamed, not held whole to be measured
    car = r.body
    assert car == own_ipfs_node.request("dag/export", {"arg": folder})[2]

    target = make_live_server(second_ipfs_node.api_url)
    r = import_car(target, car, "photos.car")
    assert r.status == 202 and r.json == {"success": True, "taskId": r.json["taskId"]}
    task = target.wait_for_task(r.json["taskId"])
    assert task["status"] == "completed" and task["partial"] is False, task
    size = second_ipfs_node.rpc("files/stat", arg="/ipfs/" + folder)["CumulativeSize"]
    assert task["result"]["roots"] == [{"cid": folder, "name": "photos.car", "size": size}]
    assert task["result"]["done"] == 1 and task["result"]["failed"] == 0 and task["result"]["blocks"] > 12
    assert task["progress"] == task["total"] == len(car) and task["percentage"] == 100
    assert not os.path.exists(target.settings.files.spool(task["id"]))

    assert second_ipfs_node.pin_ls("recursive").get(folder) == "recursive"
    assert pin_name_on_node(second_ipfs_node, folder) == "photos.car"
    for name, data in FILES.items():
        assert cat(second_ipfs_node, "/ipfs/%s/%s" % (folder, name)) == data
    assert catalogue(target.db_path)[folder] == ("recursive", "photos.car", size)
    log = target.log(task["id"])
    assert "Importing photos.car (%d bytes, 1 root) into IPFS..." % len(car) in log and "Pinned " + folder in log


def test_an_import_keeps_the_names_pins_have_and_names_the_others(live_server, ipfs_node):
    named = ipfs_node.add(b"a pin with a name", cid_version=1)
    ipfs_node.pin_add(named, name="my name")
    unnamed = ipfs_node.add(b"a pin without a name", cid_version=1, pin=False)
    cars = [ipfs_node.request("dag/export", {"arg": cid})[2] for cid in (named, unnamed)]
    tasks = [live_server.wait_for_task(import_car(live_server, car, "x.car", [("name", None, b"from the form")])
                                       .json["taskId"]) for car in cars]
    assert [task["status"] for task in tasks] == ["completed", "completed"]
    assert pin_name_on_node(ipfs_node, named) == "my name"      # Kubo's import alone would clear it
    assert pin_name_on_node(ipfs_node, unnamed) == "from the form"
    pins = catalogue(live_server.db_path)
    assert pins[named][:2] == ("recursive", "my name") and pins[unnamed][:2] == ("recursive", "from the form")


def test_a_carv2_is_imported_too(live_server, ipfs_node):
    cid = ipfs_node.add(b"inside a CARv2", cid_version=1, pin=False)
    v1 = ipfs_node.request("dag/export", {"arg": cid})[2]
    v2 = (bytes.fromhex("0aa16776657273696f6e02") + bytes(16) + (51).to_bytes(8, "little")
          + len(v1).to_bytes(8, "little") + bytes(8) + v1)
    task = live_server.wait_for_task(import_car(live_server, v2, "v2.car").json["taskId"])
    assert task["status"] == "completed", task
    assert [root["cid"] for root in task["result"]["roots"]] == [cid]
    assert ipfs_node.pin_ls("recursive").get(cid) == "recursive"


def test_cancel_stops_an_import_mid_stream(make_live_server, ipfs_node):
    cid = ipfs_node.add(deterministic_bytes(24 * MiB, "cancelled import"), cid_version=1, pin=False)
    car = ipfs_node.request("dag/export", {"arg": cid})[2]
    proxy = StallingProxy(ipfs_node.api_url, limit=8 * MiB)     # the rest waits until the cancel is seen
    try:
        server = make_live_server(proxy.url)
        task_id = import_car(server, car, "cancel-me.car").json["taskId"]
        wait_for(lambda: proxy.forwarded >= 4 * MiB, timeout=60, message="the import to be under way")
        assert server.request("POST", "/tasks/cancel?id=%d" % task_id).json["status"] == "cancelling"
        task = server.wait_for_task(task_id, timeout=10)
    finally:
        proxy.close()
    assert task["status"] == "cancelled" and task["progress"] < len(car) and task["result"]["roots"] == []
    assert cid not in ipfs_node.pin_ls("recursive") and catalogue(server.db_path) == {}
    assert not os.path.exists(server.settings.files.spool(task_id))


def test_a_car_cut_short_fails_its_task_with_the_nodes_sentence(live_server, ipfs_node):
    cid = ipfs_node.add(deterministic_bytes(MiB, "cut short"), cid_version=1, pin=False)
    car = ipfs_node.request("dag/export", {"arg": cid})[2]
    task = live_server.wait_for_task(import_car(live_server, car[:len(car) // 2]).json["taskId"])
    assert task["status"] == "failed"
    assert task["error_message"].startswith("IPFS dag/import failed: import failed after block")
    assert "unexpected EOF" in task["error_message"] and cid not in ipfs_node.pin_ls("recursive")
    assert not os.path.exists(live_server.settings.files.spool(task["id"]))


def test_a_root_the_car_lacks_is_counted_as_failed(live_server, ipfs_node):
    absent = ipfs_node.only_hash(b"never stored anywhere", cid_version=1)
    present = ipfs_node.add(b"stored", cid_version=1, pin=False)
    car = ipfs_node.request("dag/export", {"arg": present})[2]
    # The same blocks, under a header that names a root they do not hold as well.
    header = b"\xa2eroots\x82" + b"".join(b"\xd8\x2a\x58\x25\x00" + cid_bytes(cid) for cid in (present, absent)) \
        + b"gversion\x01"
    body = car[1 + car[0]:]
    task = live_server.wait_for_task(import_car(live_server, bytes([len(header)]) + header + body).json["taskId"])
    assert task["status"] == "completed" and task["partial"] is True, task
    assert task["result"]["done"] == 1 and task["result"]["failed"] == 1
    assert [root["cid"] for root in task["result"]["roots"]] == [present]
    assert task["result"]["error_details"][0]["cid"] == absent and task["retryable"] is False


def cid_bytes(cid):
    import base64
    return base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))


def test_an_unknown_or_bad_cid_gets_a_json_error_not_a_file(live_server, ipfs_node):
    unknown = ipfs_node.only_hash(b"nobody has this", cid_version=1)
    r = live_server.request("GET", "/api/pins/export-car?cid=" + unknown)
    assert r.status == 404 and r.json["success"] is False and unknown in r.json["error"]
    assert r.header("Content-Disposition") is None
    for bad in ("", "nope", "Qm" + "1" * 44, "%00"):
        r = live_server.request("GET", "/api/pins/export-car?cid=" + bad)
        assert r.status == 400 and r.json["success"] is False


def test_an_export_that_breaks_off_is_not_a_complete_looking_file(own_ipfs_node, make_live_server):
    node = own_ipfs_node
    small = node.add(deterministic_bytes(300000, "small"), cid_version=1)
    large = node.add(deterministic_bytes(3 * MiB, "large"), cid_version=1)
    lost = [[ref["Ref"] for ref in node.rpc("refs", arg=cid, recursive="true")][-1] for cid in (small, large)]
    node.stop()
    for cid in lost:
        node.remove_block_file(cid)
    node.start()
    server = make_live_server(node.api_url)
    # Within the first MiB the node's failure comes before the answer: a JSON error.
    r = server.request("GET", "/api/pins/export-car?cid=" + small)
    assert r.status == 502 and lost[0] in r.json["error"] and r.json["success"] is False
    # Past it the answer has begun; the connection is reset, which a client sees as an error.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/api/pins/export-car?cid=" + large)
        answer = conn.getresponse()
        assert answer.status == 200
        received = bytearray()
        with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
            while True:
                piece = answer.read1(65536)
                if not piece:
                    break       # a clean end: the test fails
                received += piece
        assert MiB <= len(received) < 3 * MiB
    finally:
        conn.close()


def test_head_of_an_export_sends_the_headers_alone(live_server, ipfs_node):
    cid = ipfs_node.add(b"head", cid_version=1)
    conn = http.client.HTTPConnection("127.0.0.1", live_server.port, timeout=30)
    try:
        conn.request("HEAD", "/api/pins/export-car?cid=" + cid)
        answer = conn.getresponse()
        assert answer.status == 200 and answer.read() == b""
        assert answer.getheader("Content-Disposition") == 'attachment; filename="%s.car"' % cid
    finally:
        conn.close()


def run_cli(*args, api):
    return subprocess.run([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                          env=dict(os.environ, IPFSMASTER_IPFS_API=api))


def test_the_command_line_exports_and_imports(own_ipfs_node, second_ipfs_node, tmp_path):
    folder = own_ipfs_node.add_folder("docs", FILES, cid_version=1)
    path = tmp_path / "docs.car"
    out = run_cli("car", "export", folder, "-o", str(path), api=own_ipfs_node.api_url)
    assert out.returncode == 0, out.stderr
    assert path.read_bytes() == own_ipfs_node.request("dag/export", {"arg": folder})[2]
    assert [name for name in os.listdir(tmp_path) if ".part" in name] == []

    db = str(tmp_path / "console.db")
    out = run_cli("car", "import", str(path), "--wait", "--json", "--db", db, api=second_ipfs_node.api_url)
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout)
    assert task["status"] == "completed" and task["task_type"] == "car_import"
    assert [(root["cid"], root["name"]) for root in task["result"]["roots"]] == [(folder, "docs.car")]
    assert path.exists()              # the task removed its own link to the file, not the file
    assert cat(second_ipfs_node, "/ipfs/%s/a.txt" % folder) == FILES["a.txt"]


def test_the_command_line_refuses_what_is_not_a_car_or_not_a_cid(own_ipfs_node, tmp_path):
    api = own_ipfs_node.api_url
    not_car = tmp_path / "notes.txt"
    not_car.write_bytes(b"hello, not a CAR at all")
    db = str(tmp_path / "console.db")
    for args, code, said in [
            (("car", "import", str(not_car), "--db", db), 2, "is not a CAR: its header is cut short."),
            (("car", "import", str(tmp_path / "missing.car"), "--db", db), 2, "Cannot read"),
            (("car", "export", "not-a-cid", "-o", str(tmp_path / "x.car"), "--db", db), 2, "is not a CID."),
            (("car", "export", own_ipfs_node.only_hash(b"absent", cid_version=1), "-o", str(tmp_path / "y.car"),
              "--db", db), 1, "The node does not have")]:
        out = run_cli(*args, api=api)
        assert out.returncode == code and said in out.stderr.decode(), (args, out.stderr)
    out = run_cli("car", "export", own_ipfs_node.only_hash(b"absent"), "-o", str(tmp_path / "z.car"), "--db", db,
                  api="http://127.0.0.1:9")
    assert out.returncode == 1 and b"connection refused" in out.stderr
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".car") or ".part" in name]
