"""The pin_remove task: unpin each CID given, on the node or, through IPFS
Cluster, on every peer; the catalogue loses each as it goes. A CID that
turns out not to be pinned (unpinned outside the console, or an answer lost
and the request sent again) is done too: it is not pinned, as asked."""

from console import catalogue
from console.framing import IPFSError
from console.tasks.common import name_on_node, plain_error, run_pin_task


def run(ctx):
    """Unpin each CID of the task's parameters."""
    cids = [str(cid) for cid in ctx.params.get("cids", [])]
    client = ctx.pins_client()

    def unpin(conn, cid, name):
        since = catalogue.now(conn)
        try:
            if not client.unpin(cid):
                ctx.result["not_pinned"] = ctx.result.get("not_pinned", 0) + 1
        except IPFSError as exc:
            if exc.transient:
                raise
            return plain_error(exc)
        # Another task's pin of the same CID may have crossed this unpin: the node says which came last.
        catalogue.remove_pin(conn, cid, since=since,
                             on_node=None if ctx.cluster_api else lambda: name_on_node(client, cid) is not None)
        return None

    ctx.result = {"invalid": int(ctx.params.get("invalid", 0)),
                  "invalid_lines": ctx.params.get("invalid_lines", [])}
    with ctx.interruptible(client):
        return run_pin_task(ctx, lambda start: ((cid, "") for cid in cids[start:]), len(cids), unpin, "Unpinning")
