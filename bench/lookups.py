#!/usr/bin/env python3
"""Which parts of the pipelined size look-ups pay for themselves on Kubo.

    python3 bench/lookups.py [--pins 100000] [--concurrency 8] [--rounds 3]

On a Kubo node with ``--pins`` pinned files (bench/kubo.py), it times
``files/stat`` of every pin, over ``--concurrency`` keep-alive connections, the
worker's way (console.rpc.IPFSClient.call_many) at several pipeline depths (1 is
one request at a time), and plainly with ``http.client``, one request at a
time. Best of ``--rounds``. Prints a table of look-ups per second.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import console.rpc  # noqa: E402
import console.tasks.sizes  # noqa: E402
from floor import look_up_sizes, on_threads  # noqa: E402
from kubo import kubo_with_pins  # noqa: E402


def pipelined(url, cids, concurrency, depth):
    def run(slot):
        client = console.rpc.IPFSClient(url)
        mine = cids[slot::concurrency]
        for start in range(0, len(mine), depth):
            answers = client.call_many("files/stat", ["/ipfs/" + cid for cid in mine[start:start + depth]],
                                       console.tasks.sizes.STAT_OPTIONS)
            assert len(answers) == len(mine[start:start + depth])
        client.close()
    return on_threads(run, concurrency)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pins", type=int, default=100000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depths", default="1,4,16,64,256")
    args = parser.parse_args(argv)
    node = kubo_with_pins(args.pins)
    try:
        cids = sorted(node.pin_ls(type="recursive"))
        rows = []
        best = min(look_up_sizes("127.0.0.1", node.api_port, cids, args.concurrency)[0] for _ in range(args.rounds))
        rows.append(("plain http.client, one at a time", len(cids) / best))
        for depth in [int(d) for d in args.depths.split(",")]:
            best = min(pipelined(node.api_url, cids, args.concurrency, depth) for _ in range(args.rounds))
            rows.append(("worker, pipeline depth %d" % depth, len(cids) / best))
        print("%d look-ups on Kubo, %d connections, best of %d:" % (len(cids), args.concurrency, args.rounds))
        for name, rate in rows:
            print("  %-40s %8.0f/s" % (name, rate))
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
