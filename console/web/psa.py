"""The IPFS Pinning Service API (spec v1.0.0) at ``/psa``: ``/psa/pins``
and ``/psa/pins/{requestid}``, for Kubo's ``ipfs pin remote``, IPFS Desktop,
Helia and every other client of the spec.

Everything under ``/psa`` answers in the spec's own shape: errors are
``{"error": {"reason", "details"}}`` with its status codes, never the
console's error shape. Every request needs a pinning token as Bearer
(made with ``token add`` or the Tokens section), even on loopback without a
console password: the console's password and session do not open it, and a
token opens nothing else but ``/metrics``. A wrong token counts toward the
same lock-out as a wrong password.

A POST only writes the request into ``psa_requests`` and answers 202; the
one ``psa_queue`` task drains the queue (started here when work arrives,
and by the server's watch when a request waits with no task alive).
"""

import contextlib
import json
import logging
import sqlite3
import threading
import time
import traceback

from console import psa, tokens
from console.control import mark_stale_tasks, start_task
from console.errors import HTTPError, TaskConflict
from console.framing import IPFSError
from console.messages import translate
from console.rpc import IPFSClient
from console.store import REQUEST_BUSY_TIMEOUT_MS, database_busy
from console.web.auth import check_host
from console.web.http import STATUS_LINES, Response, json_response

log = logging.getLogger("ipfsmaster")

ROOT = "/psa"
MAX_BODY = 256 * 1024
REASONS = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
           409: "CONFLICT", 411: "LENGTH_REQUIRED", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
           429: "TOO_MANY_REQUESTS", 500: "INTERNAL_SERVER_ERROR", 503: "SERVICE_UNAVAILABLE"}
STATUS_LINES.setdefault(422, "422 Unprocessable Entity")


# A request's write waits this long for SQLite's lock, not the console's usual
# second: a burst of pin requests shares the lock with the queue task's
# writes, and a client such as Kubo gives up a pin that answers 503. The
# server's own writers take turns first (INSERT_LOCK), so that they do not
# starve one another in SQLite's busy loop.
WRITE_BUSY_TIMEOUT_MS = 15000
INSERT_LOCK = threading.Lock()


@contextlib.contextmanager
def patient_write(conn):
    """One write of the API's, in turn with the server's others, waiting longer for the lock."""
    with INSERT_LOCK:
        conn.execute("PRAGMA busy_timeout = %d" % WRITE_BUSY_TIMEOUT_MS)
        try:
            yield conn
        finally:
            conn.execute("PRAGMA busy_timeout = %d" % REQUEST_BUSY_TIMEOUT_MS)


def is_psa_path(path):
    return path == ROOT or path.startswith(ROOT + "/")


def failure(status, template, lang="en", headers=None, **values):
    """The spec's Failure object as a response."""
    body = {"error": {"reason": REASONS.get(status, "ERROR"), "details": translate(template, lang, **values)}}
    return json_response(body, status, headers)


def serve(req):
    """Answer one request under /psa; never raises."""
    try:
        return route(req)
    except HTTPError as error:
        return failure(error.status, error.template, req.lang, error.headers, **error.values)
    except psa.BadRequest as error:
        return failure(400, error.template, req.lang, **error.values)
    except sqlite3.OperationalError as exc:
        if not database_busy(exc):
            log.error("unexpected error for %s %s\n%s", req.method, req.path, traceback.format_exc())
            return failure(500, "Something went wrong on the server; the details are in its log.", req.lang)
        return failure(503, "The database is busy with a long write (such as a sync saving the catalogue)."
                            " Try again in a moment.", req.lang, [("Retry-After", "2")])
    except Exception:
        log.error("unexpected error for %s %s\n%s", req.method, req.path, traceback.format_exc())
        return failure(500, "Something went wrong on the server; the details are in its log.", req.lang)


def route(req):
    if not req.auth.enabled:
        check_host(req.environ, req.settings)     # as everywhere: a rebound name gets nothing
    path = req.path[len(ROOT):]
    method = "GET" if req.method == "HEAD" else req.method
    if path == "/pins":
        allowed = {"GET": list_pins, "POST": add_pin}
    elif path.startswith("/pins/") and path.count("/") == 2 and path[6:]:
        allowed = {"GET": get_pin, "POST": replace_pin, "DELETE": delete_pin}
    else:
        raise HTTPError(404, "Not found: the pinning service API has {paths}.",
                        paths={"en": "/psa/pins and /psa/pins/REQUEST_ID", "zh": "/psa/pins 和 /psa/pins/REQUEST_ID"})
    handler = allowed.get(method)
    if handler is None:
        allow = ", ".join(sorted(allowed))
        raise HTTPError(405, "This address does not accept {method}. Use {allowed}.", headers=[("Allow", allow)],
                        method=method[:20], allowed=allow)
    owner = token_of(req)
    return handler(req, owner, path[6:]) if path != "/pins" else handler(req, owner)


def token_of(req):
    """The name of the request's pinning token; 401 without a valid one (a
    wrong one counts toward the lock-out), 429 while its address is locked out."""
    scheme, _, credential = req.environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise HTTPError(401, "Send a pinning token as Authorization: Bearer TOKEN (made with: ipfsmaster.py token add"
                             " NAME).", headers=[("WWW-Authenticate", 'Bearer realm="IPFSMaster pinning service"')])
    wait = req.auth.seconds_until_allowed(req.client)
    if wait:
        raise HTTPError(429, "Too many failed logins. Try again in {seconds} seconds.",
                        headers=[("Retry-After", str(wait))], seconds=wait)
    owner = tokens.token_owner(req.db, credential)
    if owner is None:
        req.auth.record_failure(req.client)
        raise HTTPError(401, "This pinning token is not valid (it may have been revoked).",
                        headers=[("WWW-Authenticate",
                                  'Bearer realm="IPFSMaster pinning service", error="invalid_token"')])
    return owner


def read_pin(req):
    """The request's body as a checked Pin."""
    content_type = req.environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json":
        raise HTTPError(415, "Send the Pin as application/json.")
    body = req.read_body(MAX_BODY)
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):      # RecursionError: nested deeper than the parser goes
        raise psa.BadRequest("The request body is not valid JSON.")
    return psa.check_pin(data)


def list_pins(req, owner):
    """GET /psa/pins: the token's requests that match the filters, newest first."""
    filters = psa.check_filters(req.query)
    count, rows = psa.list_requests(req.db, owner, filters)
    members = delegates(req.settings)
    return json_response({"count": count, "results": [psa.as_status(row, members) for row in rows]})


def add_pin(req, owner):
    """POST /psa/pins: queue a pin; 202 with its PinStatus."""
    pin = read_pin(req)
    with patient_write(req.db) as conn:
        row = psa.add_request(conn, owner, pin)
    wake_queue(req.settings, req.db)
    return json_response(psa.as_status(row, delegates(req.settings)), 202)


def get_pin(req, owner, requestid):
    """GET /psa/pins/{requestid}."""
    row = psa.get_request(req.db, requestid, owner)
    if row is None:
        raise HTTPError(404, "There is no pin request {id}.", id=requestid[:80])
    return json_response(psa.as_status(row, delegates(req.settings)))


def replace_pin(req, owner, requestid):
    """POST /psa/pins/{requestid}: a new request in its place; the old id is gone."""
    pin = read_pin(req)
    with patient_write(req.db) as conn:
        row = psa.replace_request(conn, requestid, owner, pin)
    if row is None:
        raise HTTPError(404, "There is no pin request {id}.", id=requestid[:80])
    wake_queue(req.settings, req.db)
    return json_response(psa.as_status(row, delegates(req.settings)), 202)


def delete_pin(req, owner, requestid):
    """DELETE /psa/pins/{requestid}: 202; its CID is unpinned if nothing else holds it."""
    with patient_write(req.db) as conn:
        deleted = psa.delete_request(conn, requestid, owner)
    if not deleted:
        raise HTTPError(404, "There is no pin request {id}.", id=requestid[:80])
    wake_queue(req.settings, req.db)
    return Response(b"", 202, content_type="text/plain; charset=utf-8")


# ---------------------------------------------------------------------------
# The node's addresses, and waking the queue
# ---------------------------------------------------------------------------

DELEGATES_SECONDS = 60
_delegates = {}
_delegates_lock = threading.Lock()


def delegates(settings):
    """The node's own /p2p/ multiaddrs (at most 20), asked at most once a
    minute; the last known ones while the node cannot be reached."""
    now = time.monotonic()
    with _delegates_lock:
        known = _delegates.get(settings.ipfs_api)
    if known and now - known[1] < DELEGATES_SECONDS:
        return known[0]
    addresses = known[0] if known else []
    client = IPFSClient(settings.ipfs_api, settings.ipfs_auth, timeout=5.0, attempts=1)
    try:
        ident = client.call("id")
        peer = ident.get("ID") or ""
        found = [a if "/p2p/" in a else "%s/p2p/%s" % (a, peer) for a in ident.get("Addresses") or []
                 if isinstance(a, str)]
        addresses = list(dict.fromkeys(found))[:20] or (["/p2p/" + peer] if peer else [])
    except IPFSError:
        pass
    finally:
        client.close()
    with _delegates_lock:
        _delegates[settings.ipfs_api] = (addresses, now)
    return addresses


def wake_queue(settings, conn):
    """Start the psa_queue task if there is work and none is active."""
    if conn.execute("SELECT 1 FROM background_tasks WHERE task_type = 'psa_queue'"
                    " AND status IN ('pending', 'running') LIMIT 1").fetchone() or not psa.pending_work(conn):
        return None
    try:
        return start_task(settings, conn, "psa_queue", {"ipfs_api": settings.ipfs_api})
    except TaskConflict:
        return None         # one is draining already
    except sqlite3.OperationalError as exc:
        if not database_busy(exc):
            raise
        return None         # the request is in the table: the server's watch starts the task in a moment
    except OSError:
        log.exception("could not start the pinning service's queue")
        return None


def watch_queue(settings, stop, conn_factory, interval=1.0):
    """The server's watch: every ``interval``, start the queue's task if a
    request waits with none alive (after a restart, a killed worker, or a
    request that came just as the last task was ending)."""
    while not stop.is_set():
        try:
            conn = conn_factory()
            try:
                if psa.pending_work(conn):
                    mark_stale_tasks(conn, settings)
                    wake_queue(settings, conn)
            finally:
                conn.close()
        except Exception:
            log.exception("could not look at the pinning service's queue")
        stop.wait(interval)


# ---------------------------------------------------------------------------
# The operator's view, in the console (its own auth and error shape)
# ---------------------------------------------------------------------------

def request_id(req):
    """The ``id`` argument: a pin request's id, or a 400 (a body, which none of these takes, a 413 if large)."""
    req.discard_body()
    requestid = req.arg("id").strip()
    if not requestid or len(requestid) > 64:
        raise HTTPError(400, "The request id is missing.")
    return requestid


def handle_psa_requests(req):
    """GET /api/psa/requests?status=&limit=&offset=: every token's requests, newest first."""
    status = req.arg("status")
    if status and status not in psa.STATUSES:
        raise HTTPError(400, "status takes {statuses}, separated by commas.", statuses=psa.STATUS_NAMES)
    rows, total = psa.operator_list(req.db, status or None, req.int_arg("limit", 50, 1, 1000),
                                    req.int_arg("offset", 0, 0, 10 ** 9))
    return json_response({"requests": [psa.as_console_json(row) for row in rows], "total": total,
                          "counts": psa.counts_by_status(req.db)})


def handle_psa_cancel(req):
    """POST /api/psa/requests/cancel?id=: a queued or pinning request fails, cancelled by the operator."""
    requestid = request_id(req)
    done = psa.cancel_request(req.db, requestid)
    if done is None:
        raise HTTPError(404, "There is no pin request {id}.", id=requestid)
    if not done:
        raise HTTPError(409, "The pin request {id} has ended: only a queued or pinning one can be cancelled.",
                        id=requestid)
    wake_queue(req.settings, req.db)
    return json_response({"success": True, "status": "failed"})


def handle_psa_retry(req):
    """POST /api/psa/requests/retry?id=: a failed request goes back to the queue."""
    requestid = request_id(req)
    done = psa.retry_request(req.db, requestid)
    if done is None:
        raise HTTPError(404, "There is no pin request {id}.", id=requestid)
    if not done:
        raise HTTPError(409, "The pin request {id} has not failed: only a failed one can be retried.", id=requestid)
    wake_queue(req.settings, req.db)
    return json_response({"success": True, "status": "queued"}, 202)
