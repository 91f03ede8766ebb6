"""The name_follow task: resolve an IPNS name or a DNSLink domain
(``name/resolve``) and, when it points somewhere new, pin what it points to
now (the pin named after the name) and unpin what that replaces, keeping
the last ``keep`` (default 1). What it pinned for each name is kept in
``followed_names``; the catalogue learns of each pin and unpin as it
happens, through the same functions as the pin tasks."""

from console import catalogue
from console.cids import DEFAULT_PIN_TIMEOUT_S
from console.framing import IPFSError
from console.store import connect, transaction
from console.tasks.common import plain_error
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
    result = ctx.result = {"name": name, "cid": cid, "changed": False, "pinned": None, "unpinned": [],
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
        pin = cluster_pinner(ctx, client, timeout_s) if ctx.cluster_api else node_pinner(ctx, client, timeout_s)
        error = pin(conn, cid, name)
        ctx.result.pop("current", None)
        if error is not None:
            raise IPFSError("could not pin %s: %s" % (cid, error))
        with transaction(conn):
            conn.execute("INSERT OR REPLACE INTO followed_names (name, cid) VALUES (?, ?)", (name, cid))
        result["pinned"] = cid
        ctx.advance(1, cid)
        unpin_replaced(ctx, conn, name, replaced)
        ctx.current_item = None
        ctx.log("Name follow completed: pinned %s, unpinned %d" % (cid, len(result["unpinned"])))
        return result
    finally:
        conn.close()


def unpin_replaced(ctx, conn, name, replaced):
    """Unpin the CIDs the name no longer keeps, unless another followed name still keeps one."""
    pins = ctx.pins_client()
    for old in replaced:
        ctx.check()
        ctx.current_item = old
        if conn.execute("SELECT 1 FROM followed_names WHERE cid = ? AND name <> ?", (old, name)).fetchone() is None:
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
        with transaction(conn):
            conn.execute("DELETE FROM followed_names WHERE name = ? AND cid = ?", (name, old))
        ctx.result["unpinned"].append(old)
        ctx.advance(1, old)
