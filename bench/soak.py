#!/usr/bin/env python3
"""The catalogue's soak, longer than the test suite's: rounds of overlapping
syncs, pin adds and removes, garbage collections, uploads, cancels, killed
workers, retries, changes made on the node by another tool and server
restarts, against a real Kubo (tests/soak.py says what each round checks).

    python3 bench/soak.py [--minutes 10] [--round-seconds 60] [--pins 3000] [--seed N]

Needs Kubo: $IPFS_BIN, or ``export IPFS_BIN=$(sh tests/get_kubo.sh)``.
Prints the seed, each round's operations and divergences, and the totals;
exits 1 if any divergence was found (the seed replays it).
"""

import argparse
import os
import random
import shutil
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
sys.path.insert(0, os.path.dirname(HERE))
from ipfs_node import IPFSNode  # noqa: E402
from soak import Soak  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--round-seconds", type=float, default=60.0)
    parser.add_argument("--pins", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", help="a folder to keep the console's database and task files in, if a"
                                       " divergence is found")
    args = parser.parse_args()
    # A TERM ends the run as an interrupt does: the node and the console are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print("soak seed %d, %.0f minutes, rounds of %.0f s, %d pins" % (seed, args.minutes, args.round_seconds,
                                                                       args.pins), flush=True)
    with tempfile.TemporaryDirectory(prefix="ipfsmaster-soak-") as folder:
        node = IPFSNode(os.path.join(folder, "kubo"))
        node.start()
        soak = Soak(node, folder, seed, say=lambda line: print(line, flush=True))
        started = time.monotonic()
        rounds = 0
        try:
            soak.prepare(pins=args.pins, spare=args.pins // 10)
            while time.monotonic() - started < args.minutes * 60:
                soak.round(seconds=args.round_seconds)
                rounds += 1
        finally:
            soak.close()
            node.stop()
            if args.keep and soak.divergences:
                shutil.copytree(folder, args.keep, ignore=shutil.ignore_patterns("kubo"), dirs_exist_ok=True)
                print("the console's files are kept in %s" % args.keep, flush=True)
    total = dict(soak.operations)
    print("\n%d rounds in %.1f minutes, seed %d: %d operations (%s), %d workers killed, %d divergences"
          % (rounds, (time.monotonic() - started) / 60, seed, sum(v for k, v in total.items() if k != "kills"),
             ", ".join("%s %d" % item for item in sorted(total.items()) if item[0] != "kills"),
             total.get("kills", 0), len(soak.divergences)))
    for line in soak.divergences:
        print("  " + line)
    return 1 if soak.divergences else 0


if __name__ == "__main__":
    sys.exit(main())
