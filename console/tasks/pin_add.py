"""The pin_add task: pin each CID of a spooled list, through the node (with
progress and a time-out) or through IPFS Cluster (followed until its peers
have it), and put each in the catalogue with its size as soon as it is pinned.

Names: a CID's own name (on its line) is given to its pin. A CID without one
keeps the name its pin already has on the node (Kubo's pin/add without a
name would clear it), else gets the list's default name, if any. For a
large list the node's named pins are listed once up front (pin_names),
so that most CIDs cost the node nothing but their pin/add.

Sizes: pin/add's own progress answer ends with the blocks and bytes it
walked; for a pin of one block, that is its size (what files/stat would
say), with no look-up. A larger DAG is sized by files/stat after its pin,
which costs far less than pinning it did.
"""

import os
import time
from contextlib import closing
from urllib.parse import quote

from console import catalogue
from console.catalogue import CLUSTER_ERROR_STATUSES, cluster_pin_rows
from console.cids import DEFAULT_PIN_TIMEOUT_S, read_pin_list
from console.framing import IPFSError
from console.runner import TaskStopped
from console.store import connect
from console.tasks import pin_names
from console.tasks.common import (count_of, follow_cluster_pin, name_on_node, pin_counts, plain_error,
                                  run_pin_task, store_console_pin, store_console_pins)
from console.tasks.in_flight import Step, pin_concurrency
from console.tasks.sizes import pin_size


def run(ctx):
    """Pin each CID of the task's list; see run_pin_task for the bookkeeping."""
    params = ctx.params
    path = ctx.files.pin_list(params.get("pin_list", ""))
    timeout_s = int(params.get("timeout_s") or DEFAULT_PIN_TIMEOUT_S)
    ctx.result = dict(pin_counts(), invalid=int(params.get("invalid", 0)), invalid_lines=params.get("invalid_lines", []))
    if not os.path.exists(path):
        raise IPFSError("the list of CIDs to pin is gone (%s)" % os.path.basename(path))
    if ctx.cluster_api:
        pin, verb = cluster_pinner(ctx, ctx.client(timeout=timeout_s + 30.0), timeout_s), "Pinning through the cluster"
    else:
        pin, verb = node_pinner(ctx, timeout_s, named_on_node(ctx, path)), "Pinning"
    try:
        return run_pin_task(ctx, lambda start: read_pin_list(path, start), int(params.get("valid", 0)), pin, verb,
                            workers=pin_concurrency())
    finally:
        if not ctx.cluster_api:
            settle_unanswered(ctx, pin.unanswered)


def settle_unanswered(ctx, cids):
    """Kubo's pin/add of a CID it pins already first removes that pin, then
    walks the DAG and adds it back (with the new name): cut short or failed
    meanwhile (a cancel drops the request, a time-out, a missing block), it
    leaves the CID unpinned. For each CID whose pin/add got no "Pins"
    answer, the node is asked whether it pins it still, and the catalogue
    loses those it no longer does. A worker killed outright cannot ask:
    the next sync finds them."""
    with closing(connect(ctx.db_path)) as conn:
        shown = [cid for cid in sorted(cids) if conn.execute("SELECT 1 FROM pins WHERE cid = ?", (cid,)).fetchone()]
        if not shown:
            return
        client = ctx.client(timeout=30.0)
        try:
            for cid in shown:
                since = catalogue.now(conn)
                if name_on_node(client, cid) is None:
                    catalogue.remove_pin(conn, cid, since=since, on_node=lambda: name_on_node(client, cid) is not None)
                    ctx.log("%s is no longer pinned: the node dropped its pin when its pin/add failed" % cid)
        except IPFSError:
            pass        # the node cannot say now: the next sync will
        finally:
            client.close()


def name_in_cluster(cluster, cid):
    """The name of ``cid``'s pin in the cluster ('' for none), or None if the cluster does not pin it."""
    try:
        info = cluster.call("pins/" + quote(cid, safe=""), method="GET")
    except IPFSError as exc:
        if exc.transient:
            raise
        return None
    return str(info.get("name") or "") if isinstance(info, dict) else None


def named_on_node(ctx, path):
    """The node's named pins (pin_names.NamedOnNode) if the list is large
    enough for one listing to cost less than a look-up per CID, else None."""
    nameless = sum(1 for _, name in read_pin_list(path) if not name)
    with closing(connect(ctx.db_path)) as conn:
        pins_known = conn.execute("SELECT COUNT(*) FROM pins").fetchone()[0]
    if not pin_names.worth_listing(nameless, pins_known):
        return None
    ctx.log("Listing the node's pins, for the names of those it has already...")
    client = ctx.client(timeout=600.0)
    try:
        with ctx.interruptible(client):
            named = pin_names.NamedOnNode(client, ctx.check)
    except IPFSError:
        if ctx.stopping:
            raise TaskStopped(ctx.stop_reason)
        raise
    finally:
        client.close()
    ctx.log("The node pins %s under a name." % count_of(named.count, "CID"))
    return named


def name_before_pinning(client, cid, name, named):
    """The name to pin ``cid`` with: the list's, else the one its pin
    already has on the node (asked only if ``named`` says it may have one)."""
    if name or (named is not None and not named.may_name(cid)):
        return name
    return name_on_node(client, cid) or ""


def node_pinner(ctx, timeout_s, named=None):
    """Pin on the node: pin/add with progress, which a cancel interrupts;
    several CIDs at once (in_flight), each thread on its own keep-alive
    connection. The CID the task shows (``result.current``) is the oldest
    in flight, with the node's progress on it. ``named``: see named_on_node."""
    default = ctx.params.get("default_name") or ""
    unanswered = set()      # CIDs whose pin/add was sent and got no "Pins" answer (see settle_unanswered)

    def remote(client, clock, cid, name):
        if ctx.current_item in (None, cid):
            ctx.result["current"] = {"cid": cid, "blocks": 0}
        client.stopped = False
        try:
            with ctx.interruptible(client):
                name = name_before_pinning(client, cid, name, named) or default
                size = None
                since = catalogue.now(clock)
                args = [("arg", cid), ("progress", "true"), ("timeout", "%ds" % timeout_s)]
                if name:
                    args.append(("name", name))
                pinned = False
                unanswered.add(cid)
                for obj in client.stream("pin/add", args):
                    if isinstance(obj, dict) and "Progress" in obj:
                        size = obj.get("Bytes") if obj["Progress"] == 1 else None   # one block: its size
                        if ctx.current_item == cid:
                            ctx.result["current"] = {"cid": cid, "blocks": obj["Progress"], "bytes": obj.get("Bytes")}
                    pinned = pinned or (isinstance(obj, dict) and "Pins" in obj)
                # Only the answer's last object ("Pins") says the pin is made: an
                # answer cut short (the task stopping drops its connections) is no pin.
                if not pinned:
                    raise IPFSError("the node's answer to pin/add %s ended before the pin was made" % cid,
                                    transient=True)
                unanswered.discard(cid)
        except IPFSError as exc:
            if ctx.stopping:
                raise TaskStopped(ctx.stop_reason)
            if exc.transient:
                raise
            if "deadline exceeded" in str(exc):
                return "timed out after %d s (%s)" % (timeout_s, plain_error(exc)), None
            return plain_error(exc), None
        if type(size) is not int:
            size = pin_size(client, cid)
        return None, (name, size if isinstance(size, int) else None, since)

    checker = []        # a client of the task's thread, made the first time another task crossed a pin

    def on_node(cid):
        if not checker:
            checker.append(ctx.client(timeout=30.0))
        return name_on_node(checker[0], cid) is not None

    def record(conn, done):
        store_console_pins(conn, [(cid, name, size, since) for cid, _, (name, size, since) in done], on_node)

    step = Step(remote, record, lambda: ctx.client(timeout=timeout_s + 30.0))
    step.unanswered = unanswered
    return step


def cluster_pinner(ctx, client, timeout_s):
    """Pin through IPFS Cluster: the cluster places each pin (with the
    task's replication factors, if given), and the task follows it until
    every peer it is allocated to has pinned it, one fails it, or the
    timeout runs out. ``client`` is the local Kubo, for the pin's size."""
    cluster = ctx.cluster_client()
    factors = [(option.replace("_", "-"), ctx.params[option])
               for option in ("replication_min", "replication_max") if ctx.params.get(option) is not None]
    default = ctx.params.get("default_name") or ""

    def pin(conn, cid, name):
        ctx.result["current"] = {"cid": cid, "pinned": 0, "wanted": None}
        deadline = time.monotonic() + timeout_s
        try:
            with ctx.interruptible(cluster):
                name = name or name_in_cluster(cluster, cid) or default
                since = catalogue.now(conn)
                cluster.call("pins/" + quote(cid, safe=""), factors + ([("name", name)] if name else []),
                             method="POST")
                info, (wanted, pinned, in_error) = follow_cluster_pin(ctx, cluster, cid, None, deadline)
        except IPFSError as exc:
            if ctx.stopping:
                raise TaskStopped(ctx.stop_reason)
            if exc.transient:
                raise
            return plain_error(exc)
        size = pin_size(client, cid)    # the local Kubo may not be one of the peers that have it
        if store_console_pin(conn, cid, name, size if isinstance(size, int) else None, since=since):
            catalogue.record_cluster_status(conn, info)
        if in_error:
            return "; ".join("%s: %s" % (row[2] or row[1], row[4] or row[3])
                             for row in cluster_pin_rows(info)[1] if row[3] in CLUSTER_ERROR_STATUSES)
        if pinned < wanted:
            return "timed out after %d s: pinned on %d of %d peers" % (timeout_s, pinned, wanted)
        return None

    return pin
