"""The catalogue's promise under a short soak: a minute of overlapping tasks,
cancels, killed workers, retries and server restarts on a real Kubo (see
tests/soak.py; bench/soak.py runs it for longer). A divergence fails with
the seed; IPFSMASTER_SOAK_SEED=N replays it."""

import os
import random

from soak import Soak


def test_the_catalogue_stays_the_nodes_whatever_runs_at_once_and_whatever_dies(own_ipfs_node, tmp_path):
    seed = int(os.environ.get("IPFSMASTER_SOAK_SEED") or random.randrange(1 << 30))
    print("soak seed %d (IPFSMASTER_SOAK_SEED=%d replays it)" % (seed, seed))
    soak = Soak(own_ipfs_node, tmp_path, seed)
    try:
        soak.prepare(pins=2000, spare=300)
        for _ in range(2):
            soak.round(seconds=20)
    finally:
        soak.close()
    assert soak.divergences == [], "seed %d" % seed
    assert soak.operations["pin_add"] and soak.operations["restart"] >= 0
