"""The Kubo test node starts, stores and pins files, and goes away."""

import os
import socket

import pytest

from ipfs_node import KUBO_VERSION, IPFSError, IPFSNode

EMPTY_FOLDER = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


def _port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _process_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_node_add_pin_and_stop(tmp_path):
    node = IPFSNode(tmp_path)
    node.start()
    try:
        assert node.api_url == "http://127.0.0.1:%d" % node.api_port
        assert node.rpc("version")["Version"] == KUBO_VERSION

        data = b"hello from the IPFSMaster tests\n"
        cid = node.add(data, name="hello.txt")
        assert cid.startswith("Qm")
        # `ipfs init` pins the empty folder, even with --empty-repo.
        assert node.pin_ls(type="recursive") == {cid: "recursive", EMPTY_FOLDER: "recursive"}
        assert node.only_hash(data) == cid

        stat = node.rpc("files/stat", arg="/ipfs/" + cid, timeout="10s")
        assert stat["Hash"] == cid and stat["Size"] == len(data)

        node.pin_rm(cid)
        assert cid not in node.pin_ls()
        with pytest.raises(IPFSError) as err:
            node.pin_rm(cid)
        assert err.value.status == 500 and "not pinned" in err.value.message
    finally:
        pid, port = node.pid, node.api_port
        node.stop()
    assert node.proc is None
    assert _process_gone(pid)
    assert not _port_open(port)


def test_add_many_pins_each_file(tmp_path):
    with IPFSNode(tmp_path) as node:
        datas = [b"file %d\n" % i for i in range(50)]
        cids = node.add_many(datas)
        assert len(set(cids)) == 50
        assert cids[7] == node.only_hash(datas[7])
        pins = node.pin_ls(type="recursive")
        assert all(pins.get(c) == "recursive" for c in cids)
