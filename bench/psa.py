#!/usr/bin/env python3
"""The pinning service API under a burst: COUNT ``POST /psa/pins`` from 16
client threads against the real console and a real Kubo, then the queue's
drain rate against a plain ``pin/add`` client on the same node.

    IPFS_BIN=$(sh tests/get_kubo.sh) python3 bench/psa.py [--count 10000] [--clients 16]

1. Starts a Kubo node of its own (tests/ipfs_node.py: offline, loopback, a
   temporary repository) and puts 3 x COUNT small raw blocks in it with one
   ``dag/import`` (unpinned), so that pinning measures the queue, not the
   network.
2. Starts the real server (``ipfsmaster.py serve``) with a token.
3. The burst: COUNT ``POST /psa/pins`` (a CID and a name each) from CLIENTS
   threads, each on its own keep-alive connection, as fast as they can.
   Every answer must be 202; it prints the answer times (median, p99, max).
4. The drain: the time from the first POST until every request is pinned
   (the one psa_queue task, 8 in hand at once), read from the database.
5. A plain client pins the other COUNT on the same node: ``pin/add?arg=CID``
   one after the other on one keep-alive connection, and again from 8
   connections at once (the queue's own concurrency).
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.dirname(os.path.abspath(__file__))]

import console.psa  # noqa: E402
import console.store  # noqa: E402
from ipfs_node import IPFSNode, free_port  # noqa: E402
from pin_add import import_blocks  # noqa: E402


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start_server(folder, node):
    db = os.path.join(folder, "bench.db")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "ipfsmaster.py"), "token", "add", "bench", "--db", db],
                         stdout=subprocess.PIPE, check=True)
    token = out.stdout.decode().strip().splitlines()[-1]
    port = free_port()
    log = open(os.path.join(folder, "server.log"), "wb")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "ipfsmaster.py"), "serve", "--port", str(port),
                             "--db", db, "--ipfs-api", node.api_url], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/info")
            conn.getresponse().read()
            conn.close()
            return proc, port, db, token
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start; see %s" % log.name)
            time.sleep(0.1)


def burst(port, token, cids, clients):
    """POST every CID from ``clients`` threads; returns (statuses, answer times in s, wall time)."""
    statuses, times = [], []
    lock = threading.Lock()
    parts = [cids[n::clients] for n in range(clients)]
    ready = threading.Barrier(clients + 1)

    def client(part):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine_status, mine_times = [], []
        ready.wait()
        for cid in part:
            body = json.dumps({"cid": cid, "name": "bench " + cid[-8:]}).encode()
            began = time.perf_counter()
            conn.request("POST", "/psa/pins", body, {"Authorization": "Bearer " + token,
                                                     "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            mine_times.append(time.perf_counter() - began)
            mine_status.append(resp.status)
        conn.close()
        with lock:
            statuses.extend(mine_status)
            times.extend(mine_times)

    threads = [threading.Thread(target=client, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return statuses, times, started, time.perf_counter() - started


def plain_pins(node, cids, connections):
    """pin/add of each CID from ``connections`` keep-alive connections at once; returns the wall time."""
    parts = [cids[n::connections] for n in range(connections)]

    def client(part):
        conn = http.client.HTTPConnection("127.0.0.1", node.api_port, timeout=60)
        for cid in part:
            conn.request("POST", "/api/v0/pin/add?arg=" + cid, headers={"User-Agent": "bench"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise SystemExit("pin/add %s: HTTP %d %s" % (cid, resp.status, body[:200]))
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10000, help="pin requests in the burst (default 10000)")
    parser.add_argument("--clients", type=int, default=16, help="client threads of the burst (default 16)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="ipfsmaster-bench-psa-")
    node = IPFSNode(os.path.join(folder, "node"), startup_timeout=120)
    node.start()
    proc = None
    try:
        cids = import_blocks(node, folder, 3 * args.count)
        print("node: Kubo %s; %d raw blocks imported (unpinned)" % (node.rpc("version")["Version"], len(cids)),
              flush=True)
        proc, port, db, token = start_server(folder, node)
        mine = cids[:args.count]
        statuses, times, started, wall = burst(port, token, mine, args.clients)
        accepted = sum(1 for s in statuses if s == 202)
        print("burst: %d POST /psa/pins from %d clients in %.1f s (%.0f/s): %d answered 202, %d otherwise"
              % (len(statuses), args.clients, wall, len(statuses) / wall, accepted, len(statuses) - accepted))
        print("answer time: median %.1f ms, p99 %.1f ms, max %.1f ms"
              % (percentile(times, 0.5) * 1000, percentile(times, 0.99) * 1000, max(times) * 1000), flush=True)
        conn = console.store.connect(db)
        while True:
            counts = console.psa.counts_by_status(conn)
            if counts["pinned"] + counts["failed"] >= accepted:
                break
            if time.perf_counter() - started > 3600:
                raise SystemExit("the queue did not drain in an hour: %s" % counts)
            time.sleep(0.2)
        drained = time.perf_counter() - started
        pinned = conn.execute("SELECT COUNT(*) FROM pins").fetchone()[0]
        tasks = conn.execute("SELECT COUNT(*) FROM background_tasks WHERE task_type = 'psa_queue'").fetchone()[0]
        conn.close()
        print("queue: %d pinned, %d failed, %.1f s from the first POST (%.0f pins/s), %d queue task(s);"
              " %d in the catalogue" % (counts["pinned"], counts["failed"], drained, args.count / drained, tasks,
                                        pinned))
        one = plain_pins(node, cids[args.count:2 * args.count], 1)
        eight = plain_pins(node, cids[2 * args.count:], 8)
        print("plain pin/add, 1 connection: %d in %.1f s (%.0f pins/s)" % (args.count, one, args.count / one))
        print("plain pin/add, 8 connections: %d in %.1f s (%.0f pins/s)" % (args.count, eight, args.count / eight))
        print("queue / plain (1 connection): %.2f; queue / plain (8): %.2f"
              % (one / drained, eight / drained))
        if accepted != args.count or counts["pinned"] != args.count:
            raise SystemExit("not every request was accepted and pinned")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
            conn = console.store.connect(os.path.join(folder, "bench.db"))
            for (pid,) in conn.execute("SELECT pid FROM background_tasks WHERE pid IS NOT NULL AND status = 'running'"):
                try:
                    os.kill(pid, 15)
                except OSError:
                    pass
            conn.close()
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
