"""Pin management end to end: the real server, real worker processes and a
real Kubo node (pin/add, pin/rm, repo/gc, the overview, folder uploads, and
the command line)."""

import json
import os
import subprocess
import sys
import time
import urllib.parse

import console.shipped
from support import catalogue, wait_for


def post_list(server, text, **query):
    suffix = "?" + "&".join("%s=%s" % item for item in query.items()) if query else ""
    r = server.request("POST", "/pins/add" + suffix, body=text.encode(), headers={"Content-Type": "text/plain"})
    assert r.status == 202, r.body
    return r.json


def named_pins(node):
    out = node.rpc("pin/ls", type="recursive", names=True)
    return {cid: entry.get("Name", "") for cid, entry in out["Keys"].items()}


def test_pin_add_pins_what_the_node_has_and_reports_what_it_lacks(live_server, ipfs_node):
    have = [ipfs_node.add(b"pin me %d %f" % (n, time.time()), pin=False) for n in range(3)]
    missing = ipfs_node.only_hash(b"never stored %f" % time.time())
    started = post_list(live_server, "\n".join([have[0] + " first one", "junk line", have[1], have[1], missing,
                                                have[2]]))
    assert started["valid"] == 5 and started["invalid_lines"] == [2]
    task = live_server.wait_for_task(started["taskId"])
    assert task["status"] == "completed", task
    result = task["result"]
    assert (result["done"], result["failed"], result["duplicates"], result["invalid"]) == (3, 1, 1, 1)
    assert result["error_details"][0]["cid"] == missing
    assert result["error_details"][0]["error"].startswith("pin: block was not found locally (offline)")
    pins = named_pins(ipfs_node)
    assert pins[have[0]] == "first one" and have[1] in pins and missing not in pins
    rows = catalogue(live_server.db_path)
    assert rows[have[0]] == ("recursive", "first one", ipfs_node.rpc("files/stat", arg="/ipfs/" + have[0])
                             ["CumulativeSize"])
    assert all(rows[cid][2] > 0 for cid in have) and missing not in rows
    assert "Failed %s: pin: block was not found locally" % missing in live_server.log(task["id"])


def test_a_default_name_never_replaces_a_name_the_pin_has_on_the_node(live_server, ipfs_node):
    stamp = b"%f" % time.time()
    named, unnamed, fresh = ipfs_node.add_many([b"named " + stamp, b"unnamed " + stamp, b"fresh " + stamp], pin=False)
    ipfs_node.rpc("pin/add", arg=named, name="set by the operator")
    ipfs_node.rpc("pin/add", arg=unnamed)
    task = live_server.wait_for_task(post_list(live_server, "\n".join([named, unnamed, fresh]),
                                               name=urllib.parse.quote("批量"))["taskId"])
    assert task["status"] == "completed" and task["result"]["done"] == 3, task
    assert {cid: named_pins(ipfs_node)[cid] for cid in (named, unnamed, fresh)} == {
        named: "set by the operator", unnamed: "批量", fresh: "批量"}
    # Without a default, a CID given without a name keeps its name (a bare pin/add would clear it).
    task = live_server.wait_for_task(post_list(live_server, named)["taskId"])
    assert task["status"] == "completed" and named_pins(ipfs_node)[named] == "set by the operator"
    assert catalogue(live_server.db_path)[named][1] == "set by the operator"


def test_a_long_list_keeps_the_names_the_node_has_and_sizes_every_pin_as_files_stat_does(live_server, ipfs_node):
    """Past 64 CIDs without a name, the node's named pins are listed once up
    front; one-block pins are sized by pin/add's own answer, larger DAGs
    (here one of repeated chunks, which the walk counts once) by files/stat."""
    stamp = b"%f" % time.time()
    contents = [b"long list %d " % n + stamp for n in range(70)]
    contents += [b"\0" * 800000 + stamp, os.urandom(600000)]
    cids = ipfs_node.add_many(contents, pin=False)
    ipfs_node.rpc("pin/add", arg=cids[5], name="set by the operator")
    ipfs_node.rpc("pin/add", arg=cids[6])
    task = live_server.wait_for_task(post_list(live_server, "\n".join(cids), name="batch")["taskId"])
    assert task["status"] == "completed" and task["result"]["done"] == len(cids), task
    assert "Listing the node's pins" in live_server.log(task["id"])
    pins = named_pins(ipfs_node)
    assert pins[cids[5]] == "set by the operator"
    assert all(pins[cid] == "batch" for n, cid in enumerate(cids) if n != 5)
    rows = catalogue(live_server.db_path)
    for cid in cids:
        assert rows[cid] == ("recursive", pins[cid],
                             ipfs_node.rpc("files/stat", arg="/ipfs/" + cid)["CumulativeSize"]), cid


def test_direct_pins_are_synced_and_unpinned(live_server, ipfs_node):
    direct = ipfs_node.add(b"pinned directly %f" % time.time(), pin=False)
    ipfs_node.rpc("pin/add", arg=direct, recursive="false", name="direct-one")
    assert live_server.sync()["status"] == "completed"
    assert catalogue(live_server.db_path)[direct][:2] == ("direct", "direct-one")
    r = live_server.request("POST", "/pins/remove", body=json.dumps({"cids": [direct]}).encode(),
                            headers={"Content-Type": "application/json"})
    task = live_server.wait_for_task(r.json["taskId"])
    assert task["status"] == "completed" and task["result"]["done"] == 1, task
    assert direct not in ipfs_node.pin_ls(type="direct") and direct not in catalogue(live_server.db_path)


def test_a_bulk_pin_stops_within_a_few_cids_of_a_cancel(live_server, ipfs_node):
    """Quick items (the node has them all) must not run on for a report interval after a cancel."""
    cids = ipfs_node.add_many([b"quick %d %f" % (n, time.time()) for n in range(3000)], pin=False)
    task_id = post_list(live_server, "\n".join(cids))["taskId"]
    wait_for(lambda: live_server.task(task_id)["progress"] >= 100, timeout=60, interval=0.01,
             message="the pins to be under way")
    before = len(set(cids) & set(ipfs_node.pin_ls(type="recursive")))
    assert live_server.request("POST", "/tasks/cancel?id=%d" % task_id).json["status"] == "cancelling"
    task = live_server.wait_for_task(task_id, timeout=10)
    after = len(set(cids) & set(ipfs_node.pin_ls(type="recursive")))
    assert task["status"] == "cancelled" and task["result"]["done"] < len(cids)
    # The worker looks for a cancel every 0.1 s: what the node pinned between the
    # count above and the stop is what it pins in a fraction of a second at this
    # task's own pace (100 CIDs at least, as the pace is measured coarsely).
    per_second = task["result"]["done"] / task["result"]["duration_s"]
    assert after - before <= max(100, 0.5 * per_second), "%d CIDs were pinned after the cancel, at %.0f/s" % (
        after - before, per_second)
    # Each CID the task counted is in the catalogue and on the node; those in hand when the cancel
    # cut their requests (four at once) may have been pinned by the node all the same (the next sync
    # catalogues them).
    catalogued = set(cids) & set(catalogue(live_server.db_path))
    assert len(catalogued) == task["result"]["done"] and catalogued <= set(ipfs_node.pin_ls(type="recursive"))
    assert 0 <= after - task["result"]["done"] <= 4


def test_a_pin_that_never_comes_times_out_and_the_next_one_is_done(make_live_server, isolated_ipfs_node):
    server = make_live_server(isolated_ipfs_node.api_url)
    missing = isolated_ipfs_node.only_hash(b"nobody has this %f" % time.time())
    present = isolated_ipfs_node.add(b"but this one is here %f" % time.time(), pin=False)
    started = time.monotonic()
    task = server.wait_for_task(post_list(server, missing + "\n" + present, timeout_s=2)["taskId"], timeout=60)
    assert task["status"] == "completed" and time.monotonic() - started < 30
    assert (task["result"]["done"], task["result"]["failed"]) == (1, 1)
    (detail,) = task["result"]["error_details"]
    # Kubo's sentence, which it sometimes starts with "pin: ".
    assert detail["cid"] == missing and detail["error"] in ("timed out after 2 s (context deadline exceeded)",
                                                             "timed out after 2 s (pin: context deadline exceeded)")
    assert present in catalogue(server.db_path) and missing not in catalogue(server.db_path)


def test_a_cancel_ends_a_pin_that_is_waiting_for_the_network(make_live_server, isolated_ipfs_node):
    server = make_live_server(isolated_ipfs_node.api_url)
    missing = isolated_ipfs_node.only_hash(b"waited for %f" % time.time())
    task_id = post_list(server, missing, timeout_s=600)["taskId"]
    wait_for(lambda: server.task(task_id)["current_item"] == missing, timeout=30)
    time.sleep(0.5)
    asked = time.monotonic()
    assert server.request("POST", "/tasks/cancel?id=%d" % task_id).json["status"] == "cancelling"
    task = server.wait_for_task(task_id, timeout=30)
    assert task["status"] == "cancelled" and time.monotonic() - asked < 5
    assert task["result"]["done"] == 0 and task["retryable"]


def test_pin_remove_unpins_and_the_catalogue_follows(live_server, ipfs_node):
    cids = ipfs_node.add_many([b"to unpin %d %f" % (n, time.time()) for n in range(3)])
    live_server.sync()
    assert set(cids) <= set(catalogue(live_server.db_path))
    never = ipfs_node.only_hash(b"never pinned %f" % time.time())
    r = live_server.request("POST", "/pins/remove", body=json.dumps({"cids": cids[:2] + [never]}),
                            headers={"Content-Type": "application/json"})
    assert r.status == 202
    task = live_server.wait_for_task(r.json["taskId"])
    # Kubo's "not pinned or pinned indirectly" after an unpin means done: it is not pinned, as asked.
    assert task["status"] == "completed" and not task["partial"]
    assert (task["result"]["done"], task["result"]["failed"], task["result"]["not_pinned"]) == (3, 0, 1)
    pinned = ipfs_node.pin_ls(type="recursive")
    rows = catalogue(live_server.db_path)
    assert not set(cids[:2]) & (set(pinned) | set(rows)) and cids[2] in pinned and cids[2] in rows


def test_gc_removes_unpinned_blocks_and_says_how_much_it_freed(make_live_server, own_ipfs_node):
    server = make_live_server(own_ipfs_node.api_url)
    kept = own_ipfs_node.add(os.urandom(50000))
    own_ipfs_node.add_many([os.urandom(20000) for _ in range(5)], pin=False)
    r = server.request("POST", "/node/gc")
    assert r.status == 202
    task = server.wait_for_task(r.json["taskId"])
    assert task["status"] == "completed", task
    result = task["result"]
    assert result["blocks_removed"] >= 5 and task["progress"] == result["blocks_removed"]
    assert result["bytes_freed"] >= 100000 and result["size_before"] - result["size_after"] == result["bytes_freed"]
    assert own_ipfs_node.rpc("files/stat", arg="/ipfs/" + kept, offline=True)["CumulativeSize"] > 50000


def test_the_overview_describes_the_real_node(live_server, ipfs_node):
    r = live_server.request("GET", "/api/node")
    assert r.status == 200
    node = r.json
    assert node["id"] == ipfs_node.rpc("id")["ID"] and node["agent_version"].startswith("kubo/0.43.1")
    assert node["repo_size"] > 0 and node["storage_max"] > node["repo_size"] and node["num_objects"] > 0
    assert node["peers"] == 0 and node["gateway"] == ipfs_node.gateway_url


def test_a_folder_upload_is_pinned_as_that_folder(live_server, ipfs_node):
    from test_upload import multipart
    files = [("file", "album/a.txt", b"first file"), ("file", "album/sub/b.txt", b"second, deeper"),
             ("file", "album/c.txt", b"")]
    body, headers = multipart([("pin", None, b"1")] + files)
    r = live_server.request("POST", "/files/upload", body=body, headers=headers)
    assert r.status == 202, r.body
    task = live_server.wait_for_task(r.json["taskId"])
    assert task["status"] == "completed", task
    assert task["total"] == task["progress"] == 24 and task["result"]["files"] == 3
    root = task["result"]["cid"]
    assert [link["Name"] for link in ipfs_node.rpc("ls", arg=root)["Objects"][0]["Links"]] == ["a.txt", "c.txt", "sub"]
    stat = ipfs_node.rpc("files/stat", arg="/ipfs/%s/sub/b.txt" % root)
    assert stat["Size"] == len(b"second, deeper")
    assert root in ipfs_node.pin_ls(type="recursive")
    assert catalogue(live_server.db_path)[root][1] == "album"


def cli(*args):
    return subprocess.run([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)


def test_the_command_line_pins_unpins_collects_and_describes(tmp_path, own_ipfs_node):
    db = str(tmp_path / "cli.db")
    api = ["--db", db, "--ipfs-api", own_ipfs_node.api_url]
    cid = own_ipfs_node.add(b"from the shell %f" % time.time(), pin=False)
    listing = tmp_path / "list.txt"
    listing.write_text(cid + " shell pin\nnot a cid\n")
    out = cli("pin", "add", "-f", str(listing), "--wait", "--json", *api)
    assert out.returncode == 0, out.stderr
    task = json.loads(out.stdout)
    assert task["status"] == "completed" and task["result"]["done"] == 1 and task["result"]["invalid_lines"] == [2]
    assert named_pins(own_ipfs_node)[cid] == "shell pin"
    out = cli("pin", "rm", cid, "--wait", *api)
    assert out.returncode == 0 and cid not in own_ipfs_node.pin_ls(type="recursive")
    out = cli("pin", "rm", cid, "--wait", "--json", *api)     # not pinned any more: done, as asked
    assert out.returncode == 0 and json.loads(out.stdout)["result"]["not_pinned"] == 1
    out = cli("gc", "--wait", "--json", *api)
    assert out.returncode == 0 and json.loads(out.stdout)["result"]["blocks_removed"] >= 1
    out = cli("node", "--json", *api)
    assert out.returncode == 0 and json.loads(out.stdout)["agent_version"].startswith("kubo/")
