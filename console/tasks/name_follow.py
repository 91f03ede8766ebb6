"""The name_follow task: resolve an IPNS name or a DNSLink domain
(``name/resolve``) and, when it points somewhere new, pin what it points to
now (the pin named after the name) and unpin what that replaces, keeping
the last ``keep`` (default 1). What it pinned for each name is kept in
``followed_names``; a CID that was pinned already when the name came to
point to it (by hand, or by another tool) is never unpinned. The catalogue learns of each pin and unpin as it
happens, through the same functions as the pin tasks."""

from console import catalogue
from console.cids import DEFAULT_PIN_TIMEOUT_S
from console.framing import IPFSError
from console.store import connect, transaction
from console.tasks.common import name_on_node, plain_error
from console.tasks.pin_add import cluster_pinner, node_pinner


def resolve(ctx, client, name):
    """The CID ``name`` points to now (a path into a DAG is resolved to its own CID)."""
    with ctx.interruptible(client):
        path = str(client.call("name/resolve", [("arg", name), ("recursive", "true")]).get("Path") or "")
        if path.count("/") > 2:
            path = str(client.call("resolve", [("arg", path)]).get("Path") or "")
    parts = path.split("/")
    if len(parts) < 3 or parts[1] != "ipfs" or not parts[2]:
        raise IPFSError("%s resolves to %r, not to an /ipfs/ path" % (name, path))
    return parts[2]


def run(ctx):
    """Pin what the name points to if it is new; unpin what falls past ``keep``."""
    name = str(ctx.params["name"])
    keep = max(1, int(ctx.params.get("keep") or 1))
    timeout_s = int(ctx.params.get("timeout_s") or DEFAULT_PIN_TIMEOUT_S)
    client = ctx.client(timeout=timeout_s + 30.0)
    ctx.log("Resolving %s..." % name)
    cid = resolve(ctx, client, name)
    result = ctx.result = {"name": name, "cid": cid, "changed": False, "pinned": None, "unpinned": [], "kept": [],
                           "failed": 0, "error_details": []}
    conn = connect(ctx.db_path)
    try:
        followed = [row["cid"] for row in conn.execute(
            "SELECT cid FROM followed_names WHERE name = ? ORDER BY pinned_at DESC", (name,))]
        if followed and followed[0] == cid:
            ctx.log("%s still points to %s: nothing to do" % (name, cid))
            return result
        result["changed"] = True
        replaced = [old for old in followed if old != cid][keep - 1:]
        ctx.set_total(1 + len(replaced))
        ctx.log("%s points to %s now; pinning it" % (name, cid))
        ctx.current_item = cid
        pinned_before = already_pinned(ctx, conn, client, cid)
        error = pin_one(ctx, conn, client, timeout_s, cid, name)
        ctx.result.pop("current", None)
        if error is not None:
            raise IPFSError("could not pin %s: %s" % (cid, error))
        with transaction(conn):
            conn.execute("INSERT OR REPLACE INTO followed_names (name, cid, pinned_before) VALUES (?, ?, ?)",
                         (name, cid, int(pinned_before)))
        result["pinned"] = cid
        ctx.advance(1, cid)
        unpin_replaced(ctx, conn, name, replaced)
        ctx.current_item = None
        ctx.log("Name follow completed: pinned %s, unpinned %d" % (cid, len(result["unpinned"])))
        return result
    finally:
        conn.close()


def pin_one(ctx, conn, client, timeout_s, cid, name):
    """Pin ``cid`` named ``name`` as pin_add would, and catalogue it; the node's sentence if it failed, else None."""
    if ctx.cluster_api:
        return cluster_pinner(ctx, client, timeout_s)(conn, cid, name)
    step = node_pinner(ctx, timeout_s)
    error, data = step.remote(client, conn, cid, name)
    if error is None:
        step.record(conn, [(cid, name, data)])
    return error


def already_pinned(ctx, conn, client, cid):
    """Whether ``cid`` is pinned before this task pins it: on the node, asked;
    through a cluster, as the catalogue knows it."""
    if ctx.cluster_api:
        return conn.execute("SELECT 1 FROM pins WHERE cid = ?", (cid,)).fetchone() is not None
    with ctx.interruptible(client):
        return name_on_node(client, cid) is not None


def unpin_replaced(ctx, conn, name, replaced):
    """Unpin the CIDs the name no longer keeps, unless another followed name
    still keeps one or it was pinned before the name pointed to it."""
    pins = ctx.pins_client()
    held = {row["cid"] for row in conn.execute(
        "SELECT cid FROM followed_names WHERE pinned_before = 1 OR name <> ?", (name,))}
    for old in replaced:
        ctx.check()
        ctx.current_item = old
        if old in held:
            ctx.log("%s stays pinned: it was pinned before %s pointed to it, or another name keeps it" % (old, name))
            ctx.result["kept"].append(old)
        else:
            since = catalogue.now(conn)
            try:
                with ctx.interruptible(pins):
                    pins.unpin(old)
            except IPFSError as exc:
                if exc.transient:
                    raise
                ctx.result["failed"] += 1
                ctx.result["error_details"].append({"cid": old, "error": plain_error(exc)})
                ctx.advance(1, old)
                continue
            catalogue.remove_pin(conn, old, since=since)
            ctx.result["unpinned"].append(old)
        with transaction(conn):
            conn.execute("DELETE FROM followed_names WHERE name = ? AND cid = ?", (name, old))
        ctx.advance(1, old)
