"""The pinning service API's requests (spec v1.0.0): checking a Pin object
and a listing's filters, the ``psa_requests`` table (add, list, replace,
delete, the queue's claims and ends, the operator's cancel and retry), and
the ``psa_unpins`` of CIDs whose last request ended.

A request is the client's: each token sees only its own. A CIDv0 and the
CIDv1 of the same multihash and codec are one pin (``cid_key``). A CID is
unpinned only when no live request holds it, and never when the node pinned
it before the request did, or the console pinned it too (``held_before``).
"""

import calendar
import json
import math
import re
import secrets
import time

from console.cids import MAX_NAME, base58_decode, is_cid, read_varint, MULTIBASES
from console.store import transaction

STATUSES = ("queued", "pinning", "pinned", "failed")
LIVE_STATUSES = ("queued", "pinning", "pinned")
MATCHES = ("exact", "iexact", "partial", "ipartial")
# The statuses as a sentence names them, in each language.
STATUS_NAMES = {"en": "queued, pinning, pinned or failed", "zh": "queued、pinning、pinned 或 failed"}
PIN_FIELDS = ("cid", "name", "origins", "meta")
MAX_CIDS = 10
MAX_ORIGINS = 20
MAX_ORIGIN_CHARS = 1024
MAX_META = 1000
MAX_META_TEXT = 4096
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
DAG_PB = 0x70
RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"
                     r"([Zz]|[+ -][0-9]{2}:[0-9]{2})")     # " ": a "+" a client left unescaped in the query


class BadRequest(Exception):
    """The caller's mistake: a sentence template and its values (a 400 in the spec's shape)."""

    def __init__(self, template, **values):
        super().__init__(template)
        self.template = template
        self.values = values


# ---------------------------------------------------------------------------
# Checking input
# ---------------------------------------------------------------------------

def cid_key(cid):
    """The codec and multihash of ``cid`` in hex (a CIDv0 is dag-pb), or None if it is not a CID."""
    if not is_cid(cid):
        return None
    if len(cid) == 46 and cid.startswith("Qm"):
        return "%02x" % DAG_PB + base58_decode(cid).hex()
    data = MULTIBASES[cid[0]](cid[1:])
    _version, pos = read_varint(data, 0)
    return data[pos:].hex()


def check_pin(data):
    """A Pin object (parsed JSON) as (cid, name, origins, meta); BadRequest if it is not one."""
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object: a Pin with cid, and optionally name, origins and meta.")
    unknown = sorted(set(data) - set(PIN_FIELDS))
    if unknown:
        raise BadRequest("Unknown field {field}: a Pin has only cid, name, origins and meta.", field=unknown[0][:60])
    cid = data.get("cid")
    if not isinstance(cid, str) or cid_key(cid) is None:
        raise BadRequest("cid must be a valid CID, as text.")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        raise BadRequest("name must be text of at most 255 characters.")
    origins = data.get("origins")
    if origins is None:
        origins = []
    if (not isinstance(origins, list) or len(origins) > MAX_ORIGINS
            or not all(isinstance(o, str) and o.startswith("/") and len(o) <= MAX_ORIGIN_CHARS for o in origins)):
        raise BadRequest("origins must be a list of at most 20 multiaddrs, each as text starting with /.")
    if len(set(origins)) != len(origins):
        raise BadRequest("origins must not name a multiaddr twice.")
    meta = data.get("meta")
    if meta is None:
        meta = {}
    check_meta(meta, "meta")
    return cid, name or None, origins, meta


def check_meta(meta, field):
    if (not isinstance(meta, dict) or len(meta) > MAX_META
            or not all(isinstance(v, str) and len(k) <= MAX_META_TEXT and len(v) <= MAX_META_TEXT
                       for k, v in meta.items())):
        raise BadRequest("{field} must be a JSON object of at most 1000 entries, each value text.", field=field)


def parse_time(text, field):
    """An RFC 3339 time as milliseconds since 1970 (a float: it may hold less than a millisecond)."""
    found = RFC3339.fullmatch(text.strip())
    if not found:
        raise BadRequest("{field} must be a time in RFC 3339 form, such as 2020-07-27T17:32:28.276Z.", field=field)
    year, month, day, hour, minute, second = (int(found.group(n)) for n in range(1, 7))
    try:
        time.strptime("%04d-%02d-%02d %02d:%02d:%02d" % (year, month, day, hour, minute, min(second, 59)),
                      "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise BadRequest("{field} must be a time in RFC 3339 form, such as 2020-07-27T17:32:28.276Z.", field=field)
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    zone = found.group(8)
    if zone not in ("Z", "z"):
        if int(zone[1:3]) > 23 or int(zone[4:6]) > 59:
            raise BadRequest("{field} must be a time in RFC 3339 form, such as 2020-07-27T17:32:28.276Z.", field=field)
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= -offset if zone[0] == "-" else offset
    return seconds * 1000.0 + float("0" + (found.group(7) or "")) * 1000.0


def format_time(ms):
    """Milliseconds since 1970 as RFC 3339 UTC with milliseconds: 2020-07-27T17:32:28.276Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


def check_filters(query):
    """The listing's filters from a parsed query string ({name: [values]}); BadRequest for any bad one."""
    known = {"cid", "name", "match", "status", "before", "after", "limit", "meta"}
    unknown = sorted(set(query) - known)
    if unknown:
        raise BadRequest("Unknown query parameter {name}.", name=unknown[0][:60])

    def last(name):
        values = query.get(name)
        return values[-1] if values else None

    filters = {"cids": None, "name": None, "match": "exact", "statuses": ["pinned"], "before": None, "after": None,
               "limit": DEFAULT_LIMIT, "meta": None}
    raw = last("cid")
    if raw is not None:
        cids = [c.strip() for c in raw.split(",") if c.strip()]
        if not cids or len(cids) > MAX_CIDS:
            raise BadRequest("cid takes 1 to 10 CIDs, separated by commas.")
        keys = [cid_key(c) for c in cids]
        if None in keys:
            raise BadRequest("{cid} is not a valid CID.", cid=cids[keys.index(None)][:100])
        filters["cids"] = sorted(set(keys))
    name = last("name")
    if name is not None:
        if len(name) > MAX_NAME:
            raise BadRequest("name must be text of at most 255 characters.")
        filters["name"] = name
    match = last("match")
    if match is not None:
        if match not in MATCHES:
            raise BadRequest("match must be exact, iexact, partial or ipartial.")
        filters["match"] = match
    raw = last("status")
    if raw is not None:
        statuses = [s.strip() for s in raw.split(",") if s.strip()]
        if not statuses or any(s not in STATUSES for s in statuses):
            raise BadRequest("status takes {statuses}, separated by commas.", statuses=STATUS_NAMES)
        filters["statuses"] = sorted(set(statuses))
    for field in ("before", "after"):
        raw = last(field)
        if raw is not None:
            filters[field] = parse_time(raw, field)
    raw = last("limit")
    if raw is not None:
        if not re.fullmatch(r"[0-9]{1,9}", raw.strip()) or not 1 <= int(raw) <= MAX_LIMIT:
            raise BadRequest("limit must be a whole number from 1 to 1000.")
        filters["limit"] = int(raw)
    raw = last("meta")
    if raw is not None:
        try:
            meta = json.loads(raw)
        except (ValueError, RecursionError):
            raise BadRequest("meta must be a JSON object, each value text.")
        check_meta(meta, "meta")
        filters["meta"] = meta
    return filters


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

def prepare(conn):
    """Give ``conn`` the case folding the name filters use (SQLite's lower() knows only ASCII)."""
    conn.create_function("psa_fold", 1, lambda text: text.casefold() if isinstance(text, str) else text)


def new_requestid():
    return secrets.token_hex(16)


def insert_request(conn, token_name, pin):
    """Add a queued request for ``pin`` (cid, name, origins, meta); returns its row. In a transaction."""
    cid, name, origins, meta = pin
    requestid = new_requestid()
    now_ms = int(time.time() * 1000)
    # created is unique, to the millisecond (clients page with before = the
    # oldest created they saw, and JavaScript's Date keeps milliseconds): a
    # burst gets consecutive milliseconds.
    conn.execute(
        "INSERT INTO psa_requests (requestid, cid, cid_key, name, origins, meta, created_ms, token_name)"
        " VALUES (?, ?, ?, ?, ?, ?, MAX(?, COALESCE((SELECT MAX(created_ms) FROM psa_requests), 0) + 1), ?)",
        (requestid, cid, cid_key(cid), name, json.dumps(origins), json.dumps(meta, sort_keys=True), now_ms,
         token_name))
    return get_request(conn, requestid)


def add_request(conn, token_name, pin):
    with transaction(conn):
        return insert_request(conn, token_name, pin)


def get_request(conn, requestid, token_name=None):
    """The request's row (of ``token_name``'s requests, when given), or None."""
    if token_name is None:
        return conn.execute("SELECT * FROM psa_requests WHERE requestid = ?", (requestid,)).fetchone()
    return conn.execute("SELECT * FROM psa_requests WHERE requestid = ? AND token_name = ?",
                        (requestid, token_name)).fetchone()


def list_requests(conn, token_name, filters):
    """(the count that match, the page of rows, newest first)."""
    where, args = [], []
    if token_name is not None:
        where.append("token_name = ?")
        args.append(token_name)
    where.append("status IN (%s)" % ",".join("?" * len(filters["statuses"])))
    args += filters["statuses"]
    if filters["cids"]:
        where.append("cid_key IN (%s)" % ",".join("?" * len(filters["cids"])))
        args += filters["cids"]
    if filters["name"] is not None:
        match = filters["match"]
        where.append({"exact": "name = ?", "iexact": "psa_fold(name) = psa_fold(?)",
                      "partial": "instr(name, ?) > 0", "ipartial": "instr(psa_fold(name), psa_fold(?)) > 0"}[match])
        args.append(filters["name"])
    if filters["before"] is not None:
        where.append("created_ms < ?")
        args.append(int(math.ceil(filters["before"])))
    if filters["after"] is not None:
        where.append("created_ms > ?")
        args.append(int(math.floor(filters["after"])))
    if filters["meta"]:
        where.append("(SELECT COUNT(*) FROM json_each(?) AS f JOIN json_each(psa_requests.meta) AS m"
                     " ON m.key = f.key AND m.value = f.value) = ?")
        args += [json.dumps(filters["meta"]), len(filters["meta"])]
    clause = " WHERE " + " AND ".join(where)
    prepare(conn)
    count = conn.execute("SELECT COUNT(*) FROM psa_requests" + clause, args).fetchone()[0]
    rows = conn.execute("SELECT * FROM psa_requests" + clause + " ORDER BY created_ms DESC LIMIT ?",
                        args + [filters["limit"]]).fetchall()
    return count, rows


def end_request(conn, row):
    """Forget a request (in a transaction): its CID is to be unpinned if it may have pinned it."""
    conn.execute("DELETE FROM psa_requests WHERE requestid = ?", (row["requestid"],))
    if row["status"] in ("pinning", "pinned") and not row["held_before"]:
        conn.execute("INSERT OR REPLACE INTO psa_unpins (cid, cid_key) VALUES (?, ?)", (row["cid"], row["cid_key"]))


def delete_request(conn, requestid, token_name):
    """Delete a request; False if there is none (of that token)."""
    with transaction(conn):
        row = get_request(conn, requestid, token_name)
        if row is None:
            return False
        end_request(conn, row)
        return True


def replace_request(conn, requestid, token_name, pin):
    """A new request for ``pin`` in place of ``requestid`` (then gone); returns its row, or None if none."""
    with transaction(conn):
        row = get_request(conn, requestid, token_name)
        if row is None:
            return None
        new = insert_request(conn, token_name, pin)
        end_request(conn, row)
        return new


def as_status(row, delegates):
    """A row as the spec's PinStatus."""
    pin = {"cid": row["cid"], "origins": json.loads(row["origins"]), "meta": json.loads(row["meta"])}
    if row["name"] is not None:
        pin["name"] = row["name"]
    info = {"status_details": row["error"]} if row["error"] else {}
    return {"requestid": row["requestid"], "status": row["status"], "created": format_time(row["created_ms"]),
            "pin": pin, "delegates": delegates, "info": info}


# ---------------------------------------------------------------------------
# The queue (the psa_queue task) and the operator
# ---------------------------------------------------------------------------

ACTIVE_TASKS = "SELECT id FROM background_tasks WHERE status IN ('pending', 'running')"


def requeue_orphans(conn, task_id=None):
    """Requests left pinning by a worker that is gone go back to the queue; returns how many."""
    with transaction(conn):
        return conn.execute(
            "UPDATE psa_requests SET status = 'queued', task_id = NULL, updated_at = datetime('now')"
            " WHERE status = 'pinning' AND (task_id IS NULL OR task_id IS NOT ? AND task_id NOT IN (" + ACTIVE_TASKS
            + "))", (task_id,)).rowcount


def pending_work(conn):
    """Whether the queue has work no live task is doing: queued requests,
    CIDs to unpin, or requests an ended task left pinning."""
    return conn.execute(
        "SELECT EXISTS (SELECT 1 FROM psa_requests WHERE status = 'queued')"
        " OR EXISTS (SELECT 1 FROM psa_unpins)"
        " OR EXISTS (SELECT 1 FROM psa_requests WHERE status = 'pinning' AND (task_id IS NULL OR task_id NOT IN ("
        + ACTIVE_TASKS + ")))").fetchone()[0] == 1


def claim_next(conn, task_id):
    """The oldest queued request, now pinning for ``task_id``; None if the queue is empty."""
    with transaction(conn):
        row = conn.execute("SELECT requestid FROM psa_requests WHERE status = 'queued'"
                           " ORDER BY created_ms LIMIT 1").fetchone()
        if row is None:
            return None
        conn.execute("UPDATE psa_requests SET status = 'pinning', task_id = ?, error = NULL,"
                     " updated_at = datetime('now') WHERE requestid = ? AND status = 'queued'",
                     (task_id, row["requestid"]))
        return get_request(conn, row["requestid"])


def note_held_before(conn, row, pinned_on_node):
    """Record whether the node had the pin before this request: it did if the
    node pins it and no request of this queue pinned it there."""
    held = pinned_on_node and not conn.execute(
        "SELECT 1 FROM psa_requests WHERE cid_key = ? AND requestid <> ? AND status IN ('pinning', 'pinned')"
        " AND held_before = 0", (row["cid_key"], row["requestid"])).fetchone()
    if held:        # 0 is the default: only a pin held before is written
        with transaction(conn):
            conn.execute("UPDATE psa_requests SET held_before = 1 WHERE requestid = ?", (row["requestid"],))
    return bool(held)


def note_console_pin(conn, cid):
    """The console itself pinned ``cid`` (a pin task, an upload, a CAR import):
    no request that ends later unpins it, nor an unpin already waiting."""
    key = cid_key(cid)
    if key is None:
        return
    # Every pin a pin task makes passes here: most have no request, and cost a read, not a write.
    if not conn.execute(HOLDS_KEY, (key, key)).fetchone()[0]:
        return
    with transaction(conn):
        hold(conn, key)


def note_console_pins(conn, cids):
    """note_console_pin for each of ``cids``, in the caller's transaction;
    one read when no request or unpin waits at all."""
    if not conn.execute(WAITING).fetchone()[0]:
        return
    for key in filter(None, map(cid_key, cids)):
        if conn.execute(HOLDS_KEY, (key, key)).fetchone()[0]:
            hold(conn, key)


HOLDS_KEY = ("SELECT EXISTS (SELECT 1 FROM psa_requests WHERE cid_key = ? AND held_before = 0)"
             " OR EXISTS (SELECT 1 FROM psa_unpins WHERE cid_key = ?)")
WAITING = ("SELECT EXISTS (SELECT 1 FROM psa_requests WHERE held_before = 0)"
           " OR EXISTS (SELECT 1 FROM psa_unpins)")


def hold(conn, key):
    conn.execute("UPDATE psa_requests SET held_before = 1 WHERE cid_key = ? AND held_before = 0", (key,))
    conn.execute("DELETE FROM psa_unpins WHERE cid_key = ?", (key,))


def finish_request(conn, row, task_id, status, error=None):
    """pinning -> pinned or failed, if the request is still this task's. When
    it is not (deleted, replaced or cancelled meanwhile), a pin it made is
    to be undone. True if this call set the status."""
    with transaction(conn):
        done = conn.execute("UPDATE psa_requests SET status = ?, error = ?, updated_at = datetime('now')"
                            " WHERE requestid = ? AND status = 'pinning' AND task_id = ?",
                            (status, error, row["requestid"], task_id)).rowcount == 1
        if not done and status == "pinned":
            held = conn.execute("SELECT held_before FROM psa_requests WHERE requestid = ?",
                                (row["requestid"],)).fetchone()
            if held is None or not held[0]:
                conn.execute("INSERT OR REPLACE INTO psa_unpins (cid, cid_key) VALUES (?, ?)",
                             (row["cid"], row["cid_key"]))
        return done


def requeue(conn, row, task_id):
    """A request in hand when its task stopped goes back to the queue."""
    with transaction(conn):
        conn.execute("UPDATE psa_requests SET status = 'queued', task_id = NULL WHERE requestid = ?"
                     " AND status = 'pinning' AND task_id = ?", (row["requestid"], task_id))


def take_unpin(conn):
    """A CID whose last request ended and that nothing holds any more, taken
    off psa_unpins; None when there is none."""
    while True:
        with transaction(conn):
            row = conn.execute("SELECT cid, cid_key FROM psa_unpins ORDER BY requested_at LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM psa_unpins WHERE cid = ?", (row["cid"],))
            held = conn.execute("SELECT 1 FROM psa_requests WHERE cid_key = ? AND status IN (%s)"
                                % ",".join("?" * len(LIVE_STATUSES)), (row["cid_key"],) + LIVE_STATUSES).fetchone()
            if not held:
                return row["cid"]


def queued_count(conn):
    return conn.execute("SELECT COUNT(*) FROM psa_requests WHERE status = 'queued'").fetchone()[0]


def counts_by_status(conn):
    """{status: count} of every status (0 for none)."""
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({row[0]: row[1] for row in conn.execute("SELECT status, COUNT(*) FROM psa_requests GROUP BY status")})
    return counts


def operator_list(conn, status=None, limit=50, offset=0):
    """Every request (any token), newest first, for the console: (rows, total)."""
    where, args = ("WHERE status = ?", [status]) if status else ("", [])
    total = conn.execute("SELECT COUNT(*) FROM psa_requests " + where, args).fetchone()[0]
    rows = conn.execute("SELECT * FROM psa_requests " + where + " ORDER BY created_ms DESC LIMIT ? OFFSET ?",
                        args + [limit, offset]).fetchall()
    return rows, total


def as_console_json(row):
    """A request as the console's pages read it."""
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["created_ms"] // 1000))
    return {"requestid": row["requestid"], "cid": row["cid"], "name": row["name"], "status": row["status"],
            "created": format_time(row["created_ms"]), "created_at": created + ".%03d" % (row["created_ms"] % 1000),
            "token": row["token_name"], "error": row["error"],
            "task_id": row["task_id"], "origins": json.loads(row["origins"]), "meta": json.loads(row["meta"]),
            "updated_at": row["updated_at"]}


CANCELLED = "Cancelled by the node's operator"


def cancel_request(conn, requestid):
    """The operator stops a queued or pinning request: it fails with CANCELLED
    (a pin it made meanwhile is undone). None if there is no such request,
    False if it had ended, True if cancelled."""
    with transaction(conn):
        row = get_request(conn, requestid)
        if row is None:
            return None
        if row["status"] not in ("queued", "pinning"):
            return False
        conn.execute("UPDATE psa_requests SET status = 'failed', error = ?, updated_at = datetime('now')"
                     " WHERE requestid = ?", (CANCELLED, requestid))
        if row["status"] == "pinning" and not row["held_before"]:
            conn.execute("INSERT OR REPLACE INTO psa_unpins (cid, cid_key) VALUES (?, ?)", (row["cid"], row["cid_key"]))
        return True


def retry_request(conn, requestid):
    """The operator queues a failed request again. None if there is no such
    request, False if it has not failed, True if queued."""
    with transaction(conn):
        row = get_request(conn, requestid)
        if row is None:
            return None
        if row["status"] != "failed":
            return False
        conn.execute("UPDATE psa_requests SET status = 'queued', error = NULL, task_id = NULL,"
                     " updated_at = datetime('now') WHERE requestid = ?", (requestid,))
        return True
