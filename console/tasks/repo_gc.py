"""The repo_gc task: the node's garbage collection, streamed; progress
counts removed blocks."""

import time

from console import node
from console.framing import IPFSError
from console.tasks.common import note_error


def run(ctx):
    """The node's garbage collection, streamed: progress counts removed blocks."""
    client = ctx.client(timeout=600.0)
    result = ctx.result = {"blocks_removed": 0, "bytes_freed": 0, "size_before": 0, "size_after": 0,
                           "errors": 0, "error_details": []}
    started = time.monotonic()
    try:
        result["size_before"] = node.repo_size(client)
        ctx.log("Collecting garbage (repository size %d bytes)..." % result["size_before"])
        ctx.current_item = "Collecting garbage..."
        with ctx.interruptible(client):
            try:
                for batch in client.stream_batches("repo/gc", [("stream-errors", "true")]):
                    for obj in batch:
                        if isinstance(obj, dict) and obj.get("Error"):
                            result["errors"] += 1
                            note_error(result, {"error": str(obj["Error"])})
                        elif isinstance(obj, dict) and obj.get("Key"):
                            result["blocks_removed"] += 1
                    ctx.progress = result["blocks_removed"]
                    ctx.check()
            except IPFSError:
                ctx.check()
                raise
        client.stopped = False
        result["size_after"] = node.repo_size(client)
        result["bytes_freed"] = max(0, result["size_before"] - result["size_after"])
        ctx.current_item = None
        ctx.log("Garbage collection completed: %d blocks removed, %d bytes freed"
                % (result["blocks_removed"], result["bytes_freed"]))
        return result
    finally:
        result["duration_s"] = round(time.monotonic() - started, 3)
