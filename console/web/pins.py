"""Handlers of the pins page's data and actions: the catalogue, sync,
pin, unpin, recover, a pin's DAG as a CAR file, and the node's overview,
peers, garbage collection and verification."""

from console import catalogue, exports, guardrails, node
from console.control import start_task
from console.errors import HTTPError
from console.framing import IPFSError
from console.messages import NO_CLUSTER
from console.pin_input import PIN_OPTIONS, json_cids, pin_name, start_pin_add, start_pin_remove
from console.web.files import UPLOAD_FRAMING
from console.web.http import download, json_response, multipart_fields, read_json_body, task_errors

MAX_PIN_JSON = 64 * 1024 * 1024
MAX_REMOVE_CIDS = 100000


def handle_pin_sync(req):
    """Start a pin sync, or say which one is already running."""
    req.discard_body()
    with task_errors():
        task_id = start_task(req.settings, req.db, "pin_sync", req.settings.sync_params())
    return json_response({"success": True, "taskId": task_id}, 202)


def handle_pin_recover(req):
    """Ask the IPFS Cluster to try again the pins a peer failed."""
    req.discard_body()
    if not req.settings.cluster_api:
        raise HTTPError(409, NO_CLUSTER)
    with task_errors():
        task_id = start_task(req.settings, req.db, "pin_recover", req.settings.sync_params())
    return json_response({"success": True, "taskId": task_id}, 202)


def pin_query(req):
    """(q, status, sort) of a request for pins, or a 400."""
    sort = req.arg("sort", "-synced") or "-synced"
    if sort not in catalogue.PIN_SORTS:
        raise HTTPError(400, "Unknown sort order {value!r}.", value=sort[:40])
    status = req.arg("status").strip()
    if status and status not in catalogue.PIN_FILTERS:
        raise HTTPError(400, "Unknown status {value!r}.", value=status[:40])
    return req.arg("q").strip()[:200], status, sort


def handle_pins_api(req):
    """The catalogue: search, filter, sort and page."""
    q, status, sort = pin_query(req)
    limit = req.int_arg("limit", 50, 1, 1000)
    offset = req.int_arg("offset", 0, 0, 100000000)
    conn = req.db
    pins, total = catalogue.search(conn, q, status, sort, limit, offset)
    summary = catalogue.stats(conn)
    cluster = catalogue.cluster_summary(conn)
    if cluster:
        catalogue.add_replication(conn, pins)
    last = conn.execute("SELECT id, completed_at FROM background_tasks WHERE task_type = 'pin_sync'"
                        " AND status = 'completed' ORDER BY id DESC LIMIT 1").fetchone()
    return json_response({
        "pins": pins,
        "total": total,
        "summary": dict(summary, last_sync=dict(last) if last else None, cluster=cluster),
    })


def handle_pins_export(req):
    """Every pin that matches the search and filter, as CSV or JSON lines, streamed."""
    fmt = req.arg("format", "csv").strip() or "csv"
    if fmt not in exports.PIN_FORMATS:
        raise HTTPError(400, "Unknown export format {value!r}: use csv or jsonl.", value=fmt[:40])
    q, status, sort = pin_query(req)
    return download(exports.on_own_connection(req.settings.db, exports.pin_export, fmt, q, status, sort),
                    exports.PIN_FORMATS[fmt], "pins." + fmt)


def handle_pins_add(req):
    """Check and spool a list of CIDs (JSON, text/plain or a multipart file),
    then pin them in the background (pin_add)."""
    kind = req.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
    if kind not in ("application/json", "text/plain", "multipart/form-data"):
        raise HTTPError(415, "Send the CIDs as JSON (a list named cids), as text/plain with one CID a line,"
                             " or as a multipart/form-data field named file.")
    length = req.content_length()
    if length > (MAX_PIN_JSON if kind == "application/json" else req.settings.max_upload_bytes + UPLOAD_FRAMING):
        raise HTTPError(413, "The request body is too large.")
    stream = req.environ["wsgi.input"]

    def from_json(writer):
        data = read_json_body(req, MAX_PIN_JSON)
        cids = json_cids(data, 10 ** 7)
        writer.name = pin_name(data.get("name"))
        for cid in cids:
            writer.add_line(cid)
        return {option: data.get(option) for option in PIN_OPTIONS}

    def from_text(writer):
        writer.name = pin_name(req.arg("name") or None)
        left = length
        while left > 0:
            data = stream.read(min(65536, left))
            if not data:
                raise HTTPError(400, "The upload is malformed or was cut short.")
            left -= len(data)
            writer.feed(data)
        return {option: req.arg(option) or None for option in PIN_OPTIONS}

    def from_multipart(writer):
        seen = []

        def on_file(_filename, chunks):
            if not seen:
                seen.append(True)
                writer.name = pin_name(fields["name"])
                for chunk in chunks:
                    writer.feed(chunk)
        fields = dict.fromkeys(("name",) + PIN_OPTIONS)
        multipart_fields(req.environ, length, fields, on_file)
        if not seen:
            raise HTTPError(400, "Send the file as multipart/form-data in a field named file.")
        return {option: fields[option] or None for option in PIN_OPTIONS}

    fill = {"application/json": from_json, "text/plain": from_text, "multipart/form-data": from_multipart}[kind]
    with task_errors():
        task_id, summary = start_pin_add(req.settings, req.db, fill, req.lang)
    return json_response(dict(summary, success=True, taskId=task_id), 202)


def handle_pins_remove(req):
    """Unpin the CIDs given, in the background (pin_remove)."""
    if req.environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
        raise HTTPError(415, "Send the CIDs to unpin as JSON, in a list named cids.")
    cids = json_cids(read_json_body(req, 16 * 1024 * 1024), MAX_REMOVE_CIDS)
    with task_errors():
        task_id, summary = start_pin_remove(req.settings, req.db, cids)
    return json_response(dict(summary, success=True, taskId=task_id), 202)


def handle_node_gc(req):
    """Start the node's garbage collection (repo_gc), or say what keeps it from starting."""
    req.discard_body()
    with task_errors():
        task_id = start_task(req.settings, req.db, "repo_gc", {"ipfs_api": req.settings.ipfs_api})
    return json_response({"success": True, "taskId": task_id}, 202)


def handle_node_verify(req):
    """Start a check of every block in the node's repository (repo_verify)."""
    req.discard_body()
    with task_errors():
        task_id = start_task(req.settings, req.db, "repo_verify", {"ipfs_api": req.settings.ipfs_api})
    return json_response({"success": True, "taskId": task_id}, 202)


def handle_export_car(req):
    """The DAG under ``cid`` as a CAR file, streamed as the node exports it."""
    cid = req.arg("cid").strip()
    return download(node.export_car(req.settings, cid), "application/vnd.ipld.car", cid + ".car")


def handle_node_peers(req):
    """The peers the node is connected to, with their address and latency; 502 when it cannot be reached."""
    try:
        peers, online = node.connected_peers(req.settings)
    except IPFSError as exc:
        raise HTTPError(502, "The IPFS node cannot be reached: {reason}", extra={"reason": str(exc)},
                        reason=str(exc))
    return json_response({"peers": peers, "online": online})


def handle_node(req):
    """The node's overview: identity, repository, peers, gateway; 502 when it cannot be reached."""
    try:
        overview = node.node_overview(req.settings)
        return json_response(dict(overview, **guardrails.storage_state(req.settings, overview)))
    except IPFSError as exc:
        raise HTTPError(502, "The IPFS node cannot be reached: {reason}", extra={"reason": str(exc)},
                        reason=str(exc))
