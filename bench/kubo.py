"""A Kubo node with N pinned small files, for the benchmark.

The node is the tests' (tests/ipfs_node.py: ``ipfs init --profile=test``,
``ipfs daemon --offline``, loopback only) and its binary is found the same
way ($IPFS_BIN, else an ipfs v0.43.1 on PATH; ``sh tests/get_kubo.sh``
builds one). Pinning costs Kubo about a millisecond a pin, however the
pins arrive (``add``, ``dag/import`` or ``pin/add`` with many arguments), so
the repository is kept in bench/work/ and used again while it holds the
pins asked for.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
from ipfs_node import IPFSNode  # noqa: E402

WORK = os.path.join(HERE, "work")
BATCH = 5000


def kubo_with_pins(pins):
    """A started Kubo node whose recursive pins are the empty folder that
    ``ipfs init`` pins plus ``pins`` small files (CIDv0, as ``ipfs add``)."""
    node = IPFSNode(os.path.join(WORK, "kubo-%d" % pins), startup_timeout=300)
    node.start()
    have = len(node.pin_ls(type="recursive")) - 1
    if have < pins:
        print("  pinning %d small files on Kubo (about a millisecond each, once)..." % (pins - have), flush=True)
    for start in range(have, pins, BATCH):
        node.add_many([b"benchmark pin %d\n" % n for n in range(start, min(pins, start + BATCH))])
    return node
