"""Kubo is the client: a second Kubo daemon pins to the console's node with
``ipfs pin remote``, content only it has arriving through ``origins``."""

import json

import console.store
import console.tokens
from support import catalogue, wait_for

SERVICE = "mynode"


def remote_ls(client, *flags):
    """``ipfs pin remote ls`` as [{Cid, Name, Status}]."""
    out = client.command("pin", "remote", "ls", "--service=" + SERVICE, "--enc=json", *flags, timeout=120)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_kubo_pins_remotely_through_the_console(make_live_server, isolated_ipfs_node, second_isolated_ipfs_node):
    node, client = isolated_ipfs_node, second_isolated_ipfs_node
    server = make_live_server(node.api_url)
    conn = console.store.connect(server.db_path)
    token = console.tokens.add_token(conn, "second kubo")
    conn.close()
    client.command("pin", "remote", "service", "add", SERVICE, server.url + "/psa", token)

    # Content only the client has: the console's node gets it from the origins the client sends.
    cids = [client.add(("only on the client %d" % n).encode() * 100) for n in range(40)]
    assert not set(cids) & set(node.rpc("pin/ls", type="recursive")["Keys"] or {})
    for n, cid in enumerate(cids):
        client.command("pin", "remote", "add", "--service=" + SERVICE, "--background", "--name=file-%02d" % n, cid)

    everything = remote_ls(client, "--status=queued,pinning,pinned,failed")
    assert sorted(entry["Cid"] for entry in everything) == sorted(cids)       # paged by Kubo 10 at a time
    wait_for(lambda: len(remote_ls(client)) == len(cids), timeout=180, interval=0.5, message="every pin pinned")
    pinned = set(node.rpc("pin/ls", type="recursive")["Keys"])
    assert set(cids) <= pinned
    names = catalogue(server.db_path)
    assert all(names[cid][1] == "file-%02d" % n for n, cid in enumerate(cids))

    by_cid = remote_ls(client, "--cid=" + cids[3])
    assert [(e["Cid"], e["Name"], e["Status"]) for e in by_cid] == [(cids[3], "file-03", "pinned")]
    by_name = remote_ls(client, "--name=file-07")
    assert [e["Cid"] for e in by_name] == [cids[7]]

    client.command("pin", "remote", "rm", "--service=" + SERVICE, "--cid=" + cids[3])
    assert remote_ls(client, "--cid=" + cids[3], "--status=queued,pinning,pinned,failed") == []
    wait_for(lambda: cids[3] not in set(node.rpc("pin/ls", type="recursive")["Keys"]), timeout=60,
             message="the removed pin unpinned on the console's node")
    assert cids[4] in set(node.rpc("pin/ls", type="recursive")["Keys"])

    stat = json.loads(client.command("pin", "remote", "service", "ls", "--stat", "--enc=json"))
    service = [s for s in stat["RemoteServices"] if s["Service"] == SERVICE][0]
    assert service["Stat"]["Status"] == "valid"
    assert service["Stat"]["PinCount"] == {"Queued": 0, "Pinning": 0, "Pinned": len(cids) - 1, "Failed": 0}

    conn = console.store.connect(server.db_path)
    assert [t["last_used_at"] is not None for t in console.tokens.list_tokens(conn)] == [True]
    console.tokens.remove_token(conn, "second kubo")
    conn.close()
    out = client.command("pin", "remote", "service", "ls", "--stat", "--enc=json")
    assert [s for s in json.loads(out)["RemoteServices"] if s["Service"] == SERVICE][0]["Stat"]["Status"] == "invalid"
