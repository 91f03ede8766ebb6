"""What only the node users run shows: Kubo's names, credentials, pins that
are not files, pins whose blocks are gone, errors after a stream began, and
its default ports."""

import json
import os
import subprocess
import sys
import urllib.request

import pytest

import console.rpc
import console.settings
import console.shipped
from ipfs_node import IPFSNode
from support import catalogue, kill_pid, wait_for


def test_a_sync_reads_the_names_pins_were_given(live_server, ipfs_node):
    named = ipfs_node.add(b"a named pin\n", pin=False)
    ipfs_node.pin_add(named, name="backup 备份 2026")
    plain = ipfs_node.add(b"a pin without a name\n")
    task = live_server.sync()
    assert task["status"] == "completed", task
    pins = catalogue(live_server.db_path)
    assert pins[named][1] == "backup 备份 2026"
    assert pins[plain][1] == ""
    found = live_server.request("GET", "/api/pins?q=%E5%A4%87%E4%BB%BD").json
    assert [pin["cid"] for pin in found["pins"]] == [named]


def test_every_pin_gets_the_size_files_stat_gives(live_server, ipfs_node):
    """The pipelined look-ups, against Go's HTTP server, agree with files/stat one by one."""
    cids = ipfs_node.add_many([os.urandom(n) for n in (0, 1, 1000, 262144, 262145, 3 * 1048576 + 5)])
    cids.append(ipfs_node.add(b"cid v1, raw leaves", cid_version=1, raw_leaves="true"))
    cids.append(ipfs_node.add_folder("folder", {"a.txt": b"a" * 5000, "b.txt": b"b" * 70000}))
    task = live_server.sync()
    assert task["status"] == "completed" and task["result"]["failed"] == 0, task
    pins = catalogue(live_server.db_path)
    assert set(cids) <= set(pins)
    for cid, (_, _, size) in pins.items():
        assert size == ipfs_node.rpc("files/stat", arg="/ipfs/" + cid)["CumulativeSize"], cid


def test_pins_that_are_not_files_are_sized_by_their_root_block(live_server, ipfs_node):
    cbor = ipfs_node.dag_put({"kind": "not a file", "list": [1, 2, 3]})
    raw = ipfs_node.block_put_many([b"a raw block, pinned"])[0]
    with pytest.raises(Exception) as refused:
        ipfs_node.rpc("files/stat", arg="/ipfs/" + cbor)
    assert "not unixfs" in str(refused.value)
    task = live_server.sync()
    assert task["status"] == "completed" and task["result"]["failed"] == 0, task
    pins = catalogue(live_server.db_path)
    assert pins[cbor][2] == ipfs_node.rpc("block/stat", arg=cbor)["Size"]
    assert pins[raw][2] == len(b"a raw block, pinned")


@pytest.fixture
def damaged_node(tmp_path):
    """A node whose disk lost two blocks: a pinned file's only block, and
    one file of a pinned folder. Being offline, it cannot fetch them again.
    (Such pins cannot be made with `pin add`: on an offline node, pinning a
    CID it lacks fails at once with "block was not found locally".)"""
    node = IPFSNode(tmp_path / "damaged")
    node.start()
    node.lost_file = node.add(b"a file whose block is lost", cid_version=1)
    node.folder = node.add_folder("folder", {"kept.txt": b"kept" * 100, "lost.txt": b"lost" * 100},
                                  cid_version=1, raw_leaves="false")  # a raw leaf is never read to walk a folder
    links = node.rpc("ls", arg=node.folder)["Objects"][0]["Links"]
    lost_child = [link["Hash"] for link in links if link["Name"] == "lost.txt"][0]
    node.stop()
    node.remove_block_file(node.lost_file)
    node.remove_block_file(lost_child)
    node.start()
    yield node
    node.stop()


def test_a_pin_whose_block_is_lost_is_counted_with_the_nodes_sentence(make_live_server, damaged_node):
    node = damaged_node
    server = make_live_server(node.api_url)
    task = server.sync()
    assert task["status"] == "completed", task
    result = task["result"]
    assert result["failed"] == 1 and result["sized"] == result["total"] - 1
    assert result["error_details"][0]["cid"] == node.lost_file
    assert "block was not found locally" in result["error_details"][0]["error"]
    pins = catalogue(server.db_path)
    assert pins[node.lost_file][2] is None
    # The folder's root block is there: its size is known, though a file in it is lost.
    assert pins[node.folder][2] == node.rpc("files/stat", arg="/ipfs/" + node.folder)["CumulativeSize"]

    refused = node.request("pin/add", {"arg": node.lost_file, "timeout": "5s"})
    assert refused[0] == 500 and b"block was not found locally (offline)" in refused[2]


def test_an_error_after_a_stream_began_is_not_taken_for_its_end(damaged_node):
    """Kubo reports it in the X-Stream-Error trailer, which http.client drops."""
    client = console.rpc.IPFSClient(damaged_node.api_url)
    seen = []
    with pytest.raises(console.rpc.IPFSError) as failed:
        for obj in client.stream("pin/ls", [("type", "all"), ("stream", "true")]):
            seen.append(obj)
    assert seen, "the error should come after some lines"
    assert str(failed.value).startswith("the IPFS node reported an error mid-stream: block was not found locally")


AUTHORIZATIONS = {
    "operator": {"AuthSecret": "basic:operator:s3cret-pass", "AllowedPaths": ["/api/v0"]},
    "script": {"AuthSecret": "bearer:t0ken-for-the-console", "AllowedPaths": ["/api/v0"]},
}


@pytest.fixture(scope="module")
def locked_node(tmp_path_factory):
    """A node that enforces API.Authorizations."""
    def configure(config):
        config["API"]["Authorizations"] = AUTHORIZATIONS
    node = IPFSNode(tmp_path_factory.mktemp("locked"), config=configure, auth="Bearer t0ken-for-the-console")
    node.start()
    node.add_many([b"a pin behind credentials %d" % i for i in range(50)])
    yield node
    node.stop()


@pytest.mark.parametrize("secret", ["basic:operator:s3cret-pass", "bearer:t0ken-for-the-console"])
def test_a_node_that_demands_credentials_is_synced_with_them(make_live_server, locked_node, secret):
    server = make_live_server(locked_node.api_url, ipfs_auth=secret)
    task = server.sync()
    assert task["status"] == "completed" and task["result"]["failed"] == 0, task
    assert set(catalogue(server.db_path)) == set(locked_node.pin_ls(type="recursive"))


def test_credentials_in_the_api_address_work_too(make_live_server, locked_node):
    api, secret = console.settings.split_api_credentials(locked_node.api_url.replace("//", "//operator:s3cret-pass@"))
    server = make_live_server(api, ipfs_auth=secret)
    assert server.sync()["status"] == "completed"


@pytest.mark.parametrize("secret", [None, "basic:operator:wrong-pass", "bearer:wrong-token"])
def test_a_wrong_secret_fails_the_task_with_a_sentence_that_hides_it(make_live_server, locked_node, secret):
    server = make_live_server(locked_node.api_url, ipfs_auth=secret)
    task = server.sync()
    assert task["status"] == "failed"
    assert task["error_message"] == ("the IPFS API at %s refused pin/ls: access denied (check IPFSMASTER_IPFS_AUTH)"
                                     % locked_node.api_url)
    shown = task["error_message"] + server.log(task["id"]) + str(task["params"])
    for word in ("wrong-pass", "wrong-token", "operator"):
        assert word not in shown


def test_the_console_starts_beside_a_kubo_with_default_ports(tmp_path):
    """Kubo's defaults take 4001, 5001 and 8080; the console's 7789 is free beside them."""
    node = IPFSNode(tmp_path / "default", ports={"api": 5001, "gateway": 8080, "swarm": 4001})
    node.start()
    console_proc = subprocess.Popen([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py")], cwd=str(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        line = console_proc.stdout.readline().decode()
        assert line.startswith("IPFSMaster serving on http://127.0.0.1:7789/ (IPFS API http://127.0.0.1:5001"), line
        node.add(b"found through the default address")
        with urllib.request.urlopen(urllib.request.Request("http://127.0.0.1:7789/pins/sync", method="POST"),
                                    timeout=10) as answer:
            task_id = json.loads(answer.read())["taskId"]

        def finished():
            with urllib.request.urlopen("http://127.0.0.1:7789/pins/task-status?id=%d" % task_id, timeout=10) as r:
                task = json.loads(r.read())
            return task if task["status"] in ("completed", "failed") else None
        task = wait_for(finished, timeout=60, interval=0.1, message="the sync on default ports")
        assert task["status"] == "completed" and task["result"]["total"] == 2, task
    finally:
        kill_pid(console_proc.pid)
        console_proc.stdout.close()
        console_proc.wait()
        node.stop()
