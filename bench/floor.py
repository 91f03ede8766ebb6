#!/usr/bin/env python3
"""The floor: what reading a node costs before IPFSMaster does anything.

    python3 bench/floor.py --api URL [--concurrency 8] [--lookups N]

1. Reads ``pin/ls?type=recursive&stream=true&names=true`` with ``http.client`` (which
   decodes the chunked encoding) and parses every line as JSON: the listing.
2. Looks up the size of the first N listed pins (all by default) with
   ``files/stat`` (``block/stat`` when files/stat refuses, as the worker
   does), over ``--concurrency`` keep-alive connections with TCP_NODELAY,
   one thread each: the size lookups.

No database, no task, no progress: the plain standard-library way to do the
same calls. Then both again the way the worker does them, still without a
database: the listing decoded many chunks and lines at a time, and the
look-ups pipelined (``--pipeline`` requests per write on each connection).
The faster of the two ways is the floor the benchmark holds the worker to.
The listing is also timed without ``names=true``, for what asking for the
pins' names costs the node.
Prints one JSON object with the timings.
"""

import argparse
import http.client
import json
import os
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import console.rpc  # noqa: E402  (its RPC client, without its database or tasks)
import console.tasks.sizes  # noqa: E402  (its RPC client, without its database or tasks)


def connection(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def post(conn, path):
    conn.request("POST", path, headers={"User-Agent": "ipfsmaster-bench-floor"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def read_listing(host, port):
    """Every listed CID, and the seconds it took."""
    started = time.perf_counter()
    conn = connection(host, port)
    conn.request("POST", "/api/v0/pin/ls?type=recursive&stream=true&names=true",
                 headers={"User-Agent": "ipfsmaster-bench-floor"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit("pin/ls answered HTTP %d" % resp.status)
    cids = []
    pending = b""
    while True:
        data = resp.read(65536)
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        cids.extend(json.loads(line)["Cid"] for line in lines if line)
    if pending.strip():
        cids.append(json.loads(pending)["Cid"])
    conn.close()
    return cids, time.perf_counter() - started


def on_threads(run, count):
    """Run ``run(slot)`` on ``count`` threads at once; the seconds until all are done."""
    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def look_up_sizes(host, port, cids, concurrency):
    """files/stat (else block/stat) for every CID; returns (seconds, sized, failed)."""
    counts = [[0, 0] for _ in range(concurrency)]

    def run(slot):
        conn = connection(host, port)
        count = counts[slot]
        for cid in cids[slot::concurrency]:
            status, body = post(conn, "/api/v0/files/stat?arg=%%2Fipfs%%2F%s&offline=true&timeout=10s" % cid)
            if status != 200:
                status, body = post(conn, "/api/v0/block/stat?arg=%s&offline=true&timeout=10s" % cid)
                key = "Size"
            else:
                key = "CumulativeSize"
            if status == 200 and isinstance(json.loads(body).get(key), int):
                count[0] += 1
            else:
                count[1] += 1
        conn.close()

    return on_threads(run, concurrency), sum(c[0] for c in counts), sum(c[1] for c in counts)


def read_listing_batched(url, names=True):
    """The seconds it takes to read the listing with the worker's client,
    with the pins' names (as the worker asks for them) or without."""
    started = time.perf_counter()
    for _ in console.rpc.IPFSClient(url).stream_batches("pin/ls", console.rpc.LIST_ARGS if names else [
            (name, value) for name, value in console.rpc.LIST_ARGS if name != "names"]):
        pass
    return time.perf_counter() - started


def look_up_sizes_pipelined(url, cids, concurrency, pipeline):
    """files/stat for every CID, ``pipeline`` at a time on each connection; seconds."""
    def run(slot):
        client = console.rpc.IPFSClient(url)
        mine = cids[slot::concurrency]
        for start in range(0, len(mine), pipeline):
            client.call_many("files/stat", ["/ipfs/" + cid for cid in mine[start:start + pipeline]],
                             console.tasks.sizes.STAT_OPTIONS)
        client.close()

    return on_threads(run, concurrency)


def cpu_seconds(pid):
    """A process's CPU time so far (user and system), in seconds; 0 without a pid."""
    if not pid:
        return 0.0
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api", required=True, help="the node's RPC API, http://HOST:PORT")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--lookups", type=int, default=-1, help="how many pins to size (default: all listed)")
    parser.add_argument("--node-pid", type=int, help="the node's process: its CPU time during the look-ups")
    parser.add_argument("--pipeline", type=int, default=console.tasks.sizes.size_pipeline(),
                        help="look-ups per write in the worker's way (default: as the worker)")
    args = parser.parse_args(argv)
    parts = urlsplit(args.api)
    cids, listing_s = read_listing(parts.hostname, parts.port)
    todo = cids if args.lookups < 0 else cids[:args.lookups]
    lookups_s, sized, failed = look_up_sizes(parts.hostname, parts.port, todo, args.concurrency)
    batched_s = read_listing_batched(args.api)
    nameless_s = read_listing_batched(args.api, names=False)
    node_cpu, own_cpu = cpu_seconds(args.node_pid), os.times()
    pipelined_s = look_up_sizes_pipelined(args.api, todo, args.concurrency, args.pipeline)
    node_cpu = cpu_seconds(args.node_pid) - node_cpu if args.node_pid else None
    own_cpu = sum(os.times()[:2]) - sum(own_cpu[:2])
    print(json.dumps({
        "pins": len(cids), "lookups": len(todo), "sized": sized, "failed": failed,
        "concurrency": args.concurrency, "pipeline": args.pipeline,
        "plain": {"listing_s": round(listing_s, 3), "lookups_per_s": round(len(todo) / lookups_s, 1)},
        "batched": {"listing_s": round(batched_s, 3), "lookups_per_s": round(len(todo) / pipelined_s, 1),
                    "listing_without_names_s": round(nameless_s, 3)},
        "pipelined_cpu": {"node_s": node_cpu and round(node_cpu, 2), "client_s": round(own_cpu, 2),
                          "wall_s": round(pipelined_s, 3)},
        "listing_s": round(min(listing_s, batched_s), 3),
        "lookups_per_s": round(len(todo) / min(lookups_s, pipelined_s), 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
