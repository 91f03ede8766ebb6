"""Which CIDs of a large pin list the node already pins under a name.

Kubo's pin/add without a name clears the name a pin has, so a pin_add
task must know, for each CID its list gives no name, whether the node
pins it under one. Asking the node CID by CID (pin/ls) costs the node a
request per CID beside the pin, and takes the lock pin/add waits on. For
a large list, one listing of the node's recursive pins up front costs
less: ``NamedOnNode`` keeps, of each named pin, one bit of a fixed bitmap
(a Bloom filter with one hash), 8 MiB however many pins the node has.

A CID whose bit is clear is not pinned under a name (as of the listing):
it is pinned with the list's default name, or none, with no look-up. A
CID whose bit is set may be (or shares its bit with one that is): its
name is asked as before. A name given to a pin after the listing, by
someone else, before the task pins the same CID, is cleared, as it is
between a look-up and the pin that follows it.
"""

from console.cids import MULTIBASES, base32_encode
from console.rpc import LIST_ARGS

BITS = 1 << 26              # 8 MiB; a listing of a million named pins sets under 1.5% of them
LIST_FROM = 64              # CIDs without a name in the list, at least, for a listing to pay
LOOKUPS_PER_LISTED = 10     # a look-up costs the node about as much as listing this many pins


def worth_listing(nameless, pins_known):
    """Whether listing the node's pins costs less than a look-up for each of
    ``nameless`` CIDs, the node pinning about ``pins_known`` (the catalogue's count)."""
    return nameless >= LIST_FROM and nameless * LOOKUPS_PER_LISTED >= pins_known


def as_listed(cid):
    """``cid`` as Kubo's pin/ls writes it: a CIDv0 as it is, a CIDv1 in lowercase base32."""
    if cid.startswith("b") or (len(cid) == 46 and cid.startswith("Qm")):
        return cid
    decode = MULTIBASES.get(cid[:1])
    try:
        return "b" + base32_encode(decode(cid[1:])) if decode else cid
    except (KeyError, ValueError):
        return cid


class NamedOnNode:
    """The node's named recursive pins, from one streamed listing."""

    def __init__(self, client, check=lambda: None):
        """``check()`` is called between batches of the listing: it raises to stop it."""
        self.bits = bytearray(BITS // 8)
        self.count = 0
        for batch in client.stream_batches("pin/ls", LIST_ARGS):
            check()
            for entry in batch:
                if isinstance(entry, dict) and entry.get("Name") and isinstance(entry.get("Cid"), str):
                    spot = hash(entry["Cid"]) & (BITS - 1)
                    self.bits[spot >> 3] |= 1 << (spot & 7)
                    self.count += 1

    def may_name(self, cid):
        """False if the node did not pin ``cid`` under a name when listed; True if it may have."""
        spot = hash(as_listed(cid)) & (BITS - 1)
        return bool(self.bits[spot >> 3] & 1 << (spot & 7))
