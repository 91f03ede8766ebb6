"""POST /node/verify and ``verify`` against a real Kubo whose disk damaged
blocks of a pinned folder: the repo_verify task names each damaged block and
the pins it belongs to, ends completed and partial, and the command line
exits 5; a sound repository verifies clean."""

import glob
import os
import subprocess
import sys

import console.shipped
from console.car import cid_text
from console.cids import multihash_of
from ipfs_node import multihash_key
from support import catalogue, run_here
from test_upload_integration import deterministic_bytes


def damage(node, cid):
    """Overwrite a block's file in the repository, as a failing disk would (the daemon must be stopped)."""
    assert node.proc is None, "stop the daemon first"
    path, = glob.glob(os.path.join(node.repo, "blocks", "*", multihash_key(cid) + ".data"))
    with open(path, "r+b") as f:
        data = f.read()
        f.seek(0)
        f.write(bytes(byte ^ 0x5A for byte in data))


def as_kubo_names_it(cid):
    """How repo/verify names a block: by its key, as a raw CIDv1 (0x01, codec 0x55, the multihash)."""
    return cid_text(b"\x01\x55" + multihash_of(cid))


def run_cli(*args, api):
    return subprocess.run([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                          env=dict(os.environ, IPFSMASTER_IPFS_API=api))


def test_it_names_each_damaged_block_and_the_pins_that_hold_it(own_ipfs_node, make_live_server):
    node = own_ipfs_node
    folder = node.add_folder("album", {"a.txt": b"first " * 100, "b.txt": b"second " * 100,
                                       "big.bin": deterministic_bytes(700000, "verify")},
                             cid_version=1, raw_leaves="true")
    node.pin_add(folder, name="album")
    sound = node.add(b"a pin that nothing damages", cid_version=1)
    incomplete = node.add(deterministic_bytes(600000, "incomplete"), cid_version=1)
    lost = [ref["Ref"] for ref in node.rpc("refs", arg=incomplete, recursive="true")][-1]
    links = {link["Name"]: link["Hash"] for link in node.rpc("ls", arg=folder)["Objects"][0]["Links"]}
    leaf, inner = links["a.txt"], links["big.bin"]      # a file's raw block; a larger file's node (dag-pb)
    server = make_live_server(node.api_url)
    assert server.sync()["status"] == "completed"

    node.stop()
    damage(node, leaf)
    damage(node, inner)
    node.remove_block_file(lost)          # missing, not damaged: repo/verify cannot see it
    node.start()
    blocks = node.rpc("repo/stat")["NumObjects"]
    r = server.request("POST", "/node/verify")
    assert r.status == 202 and r.json["success"] is True
    task = server.wait_for_task(r.json["taskId"])
    assert task["task_type"] == "repo_verify" and task["status"] == "completed", task
    assert task["partial"] is True and task["retryable"] is True
    result = task["result"]
    assert result["failed"] == 2 and result["blocks"] == blocks and result["vanished"] == 0
    assert task["progress"] == task["total"] == blocks
    album = [{"cid": folder, "name": "album"}]
    damaged = {entry["cid"]: entry for entry in result["damaged"]}
    assert set(damaged) == {as_kubo_names_it(leaf), as_kubo_names_it(inner)}
    for entry in damaged.values():
        assert entry["pins"] == album and entry["more_pins"] == 0
        assert entry["error"] == "block in storage has different hash than requested"
    assert all(sound not in str(entry) and incomplete not in str(entry) for entry in result["damaged"])
    # Every pin is walked (the empty folder that ipfs init pins too); one could not be walked whole.
    assert result["pins_walked"] == len(catalogue(server.db_path)) == 4 and result["walk_errors"] == 1
    assert [detail["error"].endswith("(pins: album)") for detail in result["error_details"]] == [True, True]
    log = server.log(task["id"])
    assert "Damaged: %s" % as_kubo_names_it(leaf) in log and "looking for the pins that hold them" in log
    assert "Could not read %s in pin %s" % (lost, incomplete) in log

    out = run_cli("verify", "--wait", "--db", server.db_path, api=node.api_url)
    assert out.returncode == 5, out.stderr
    said = out.stderr.decode()
    assert ("Task %d completed, 2 blocks damaged" % (task["id"] + 1)) in said and "%s: block in storage has different hash" % as_kubo_names_it(
        leaf) in said and "(pins: album)" in said


def test_a_sound_repository_verifies_clean(live_server, ipfs_node, tmp_path):
    ipfs_node.add(b"verified and sound", cid_version=1)
    task = live_server.wait_for_task(live_server.request("POST", "/node/verify").json["taskId"])
    assert task["status"] == "completed" and task["partial"] is False, task
    assert task["result"]["failed"] == 0 and task["result"]["damaged"] == [] and task["result"]["blocks"] > 0
    assert task["result"]["pins_walked"] == 0          # nothing damaged: no pin is walked
    out = run_cli("verify", "--wait", "--db", str(tmp_path / "cli.db"), api=ipfs_node.api_url)
    assert out.returncode == 0, out.stderr


def test_one_verification_at_a_time(client, db, spawned):
    assert client.post("/node/verify").status == 202
    r = client.post("/node/verify")
    assert r.status == 409 and r.json["taskId"] == spawned[0]
    assert r.json["error"] == "A repository verification is already running (task %d)." % spawned[0]


def test_a_node_that_cannot_be_reached_fails_the_task(client, settings, spawned):
    task_id = client.post("/node/verify").json["taskId"]
    task = run_here(settings, task_id)
    assert task["status"] == "failed"
    assert task["error_message"] == "cannot reach the IPFS API at http://127.0.0.1:9: connection refused"
