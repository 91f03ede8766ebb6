"""The pin_recover task (IPFS Cluster): ask the cluster to try again every
pin a peer failed, and follow each until its peers have it."""

import time
from urllib.parse import quote

from console import catalogue
from console.framing import IPFSError
from console.store import connect
from console.tasks.common import follow_cluster_pin, note_error

RECOVER_FILTER = [("filter", "pin_error,unpin_error")]
RECOVER_TIMEOUT_S = 120


def run(ctx):
    """Ask the cluster to try again every pin a peer failed
    (``POST /pins/CID/recover``), one at a time, with progress, and follow
    each until its peers have it pinned or fail it again; each pin's status
    reaches the catalogue at once."""
    if not ctx.cluster_api:
        raise IPFSError("no IPFS Cluster is set (--cluster-api): there is nothing to recover")
    client = ctx.cluster_client()
    result = ctx.result = {"total": 0, "recovered": 0, "still_in_error": 0, "failed": 0, "error_details": []}
    ctx.log("Finding the pins in error...")
    with ctx.interruptible(client):
        cids = [obj.get("cid") for obj in client.stream("pins", RECOVER_FILTER, method="GET")]
    cids = sorted(set(cid for cid in cids if isinstance(cid, str) and cid))
    result["total"] = len(cids)
    ctx.set_total(len(cids))
    ctx.log("Found %d pins in error" % len(cids))
    conn = connect(ctx.db_path)
    try:
        for cid in cids:
            ctx.check()
            ctx.current_item = cid
            try:
                with ctx.interruptible(client):
                    answer = client.call("pins/%s/recover" % quote(cid, safe=""), method="POST")
                    answer, (wanted, pinned, _) = follow_cluster_pin(
                        ctx, client, cid, answer, time.monotonic() + RECOVER_TIMEOUT_S)
            except IPFSError as exc:
                ctx.check()
                if exc.transient:
                    raise
                result["failed"] += 1
                note_error(result, {"cid": cid, "error": str(exc)})
            else:
                catalogue.record_cluster_status(conn, answer)
                if pinned >= wanted:
                    result["recovered"] += 1
                else:       # an item that failed, like one the cluster refused: the task is partial
                    result["still_in_error"] += 1
                    result["failed"] += 1
                    note_error(result, {"cid": cid, "error": "pinned on %d of %d peers after recovery" % (
                        pinned, wanted)})
            ctx.advance(1, cid)
    finally:
        conn.close()
    ctx.current_item = None
    result.pop("current", None)
    ctx.log("Recovery completed: %d recovered, %d still in error, %d refused"
            % (result["recovered"], result["still_in_error"], result["failed"] - result["still_in_error"]))
    return result
