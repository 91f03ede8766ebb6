"""The catalogue: what the node (or the IPFS Cluster) pins, as the pins page
shows it. This module is the only code that writes ``pins``, ``pin_peers``,
``pin_replication``, ``cluster_peers`` and ``last_listing``; the pages read
them through it too.

Writers: a pin sync applies a whole listing (``apply_listing``); pin tasks
and uploads change one pin at a time as the node does (``store_pin``,
``remove_pin``, ``record_cluster_status``); size look-ups fill in sizes.

One rule keeps them from undoing each other: every change to a pin marks
its row (``pins.synced_at``, to the millisecond), and a removal leaves a
mark of its own (``pin_removals``); a listing, which may have begun before
such a change, applies only to rows that no change touched after it began,
and never puts back a pin removed after it began. Through IPFS Cluster a
re-sync reads only the listing's lines that changed (``pin_line_digests``
keeps a digest of each pin's line while its rows are exactly that line),
so every other write to a pin forgets its digest. What a task did while a
sync listed is what the node has now; the listing is older news. The same
holds between two tasks on one CID: a pin task's record carries when it
asked the node (``since``), and a change recorded after that wins.
"""

from console.framing import IPFSError
from console.store import NOW_PRECISE, rows_of, transaction

# IPFS Cluster's statuses that mean a peer failed a pin.
CLUSTER_ERROR_STATUSES = frozenset(("pin_error", "unpin_error", "cluster_error", "error"))

# IPFS Cluster's statuses, as the pins page counts them.
PEER_STATUS_GROUPS = {
    "pinned": "pinned", "pinning": "pinning", "pin_queued": "queued", "remote": "remote",
    "pin_error": "error", "unpin_error": "error", "cluster_error": "error", "error": "error",
    "unpinning": "unpinning", "unpin_queued": "unpinning", "unpinned": "unpinned",
}

PIN_SORTS = {
    "name": "name ASC, id ASC", "-name": "name DESC, id DESC",
    "size": "size ASC, id ASC", "-size": "size DESC, id DESC",
    "synced": "synced_at ASC, id ASC", "-synced": "synced_at DESC, id DESC",
    "cid": "cid ASC", "-cid": "cid DESC",
}

# A pin's fields, as the pages and the exports read them.
PIN_COLUMNS = ("cid", "type", "name", "size", "first_seen_at", "synced_at")

# The pins page's replication filters (IPFS Cluster): which pins each keeps.
PIN_FILTERS = {
    "error": " cid IN (SELECT cid FROM pin_replication WHERE in_error > 0)",
    "under-replicated": " cid IN (SELECT cid FROM pin_replication WHERE pinned < wanted)",
}


# Any write to a pin but a listing's: its line in the cluster's listing is
# no longer known to be what its rows say (see apply_listing's ``lines``).
FORGET_LINE = "DELETE FROM pin_line_digests WHERE id IN (SELECT id FROM pins WHERE cid = ?)"

# ---------------------------------------------------------------------------
# One pin at a time
# ---------------------------------------------------------------------------

def now(conn):
    """The catalogue's time, to the millisecond: taken before asking the node
    for a change, it is the ``since`` of that change's record."""
    return conn.execute("SELECT " + NOW_PRECISE).fetchone()[0]


def store_pin(conn, cid, name, size, rename=False, since=None, on_node=None):
    """Insert or refresh a recursive pin; ``rename``: its name becomes
    ``name`` even if the pin was known under another. True if stored.

    ``since``: when the node was asked to pin it. An unpin another task
    recorded since then may have crossed this pin on the node, in either
    order: ``on_node()``, if given, asks the node whether it pins ``cid``
    now, and that decides; otherwise (or if the node cannot say) the task
    that asked the node last wins.
    """
    with transaction(conn):
        crossed = write_pins(conn, [(cid, name, size, since)], rename)
    if not crossed:
        return True
    if not node_says(on_node, default=crossed[0][1] < since):
        return False
    with transaction(conn):
        write_pin(conn, cid, name, size, rename, since)
    return True


def write_pins(conn, entries, rename=False):
    """Pins (``(cid, name, size, since)`` each, as store_pin takes them), in
    the caller's transaction, but those an unpin recorded since ``since``
    may have crossed on the node: (entry, when that unpin was asked) of
    each of these is returned, not written; store_pin settles them."""
    crossed = []
    for entry in entries:
        cid, name, size, since = entry
        unpin = since is not None and conn.execute(
            "SELECT COALESCE(asked_at, removed_at) FROM pin_removals WHERE cid = ? AND removed_at >= ?",
            (cid, since)).fetchone()
        if unpin:
            crossed.append((entry, unpin[0]))
        else:
            write_pin(conn, cid, name, size, rename, since)
    return crossed


def write_pin(conn, cid, name, size, rename, asked_at):
    conn.execute("DELETE FROM pin_removals WHERE cid = ?", (cid,))
    conn.execute(FORGET_LINE, (cid,))
    conn.execute(
        "INSERT INTO pins (cid, type, name, size, asked_at) VALUES (?, 'recursive', ?, ?, COALESCE(?, "
        + NOW_PRECISE + "))"
        " ON CONFLICT (cid) DO UPDATE SET type = 'recursive', size = COALESCE(pins.size, excluded.size),"
        " name = CASE WHEN ? THEN excluded.name ELSE pins.name END, synced_at = excluded.synced_at,"
        " asked_at = excluded.asked_at",
        (cid, name, size, asked_at, 1 if rename else 0))


def node_says(on_node, default):
    """Whether the node pins the CID, as ``on_node()`` answers; ``default``
    when there is no one to ask or the node cannot say."""
    if on_node is None:
        return default
    try:
        return bool(on_node())
    except IPFSError:
        return default


def remove_pin(conn, cid, since=None, on_node=None):
    """The node (or the cluster) no longer pins ``cid``. True if removed.

    ``since``: when the node was asked to unpin it. A pin another task
    recorded since then may have crossed this unpin on the node: as in
    store_pin, ``on_node()`` decides, else the task that asked last wins.
    A pin only a sync wrote (``asked_at`` NULL) was never asked for.
    """
    with transaction(conn):
        crossed = since is not None and conn.execute(
            "SELECT asked_at FROM pins WHERE cid = ? AND asked_at IS NOT NULL AND synced_at >= ?",
            (cid, since)).fetchone()
        if not crossed:
            delete_pin(conn, cid, since)
            return True
    if node_says(on_node, default=crossed[0] > since):
        return False
    with transaction(conn):
        delete_pin(conn, cid, since)
    return True


def delete_pin(conn, cid, asked_at):
    conn.execute("INSERT OR REPLACE INTO pin_removals (cid, removed_at, asked_at) VALUES (?, %s, COALESCE(?, %s))"
                 % (NOW_PRECISE, NOW_PRECISE), (cid, asked_at))
    conn.execute(FORGET_LINE, (cid,))
    conn.execute("DELETE FROM pins WHERE cid = ?", (cid,))
    conn.execute("DELETE FROM pin_peers WHERE cid = ?", (cid,))
    conn.execute("DELETE FROM pin_replication WHERE cid = ?", (cid,))


def cluster_pin_rows(obj):
    """One GlobalPinInfo of IPFS Cluster as (a pin/ls entry, its rows of
    pin_peers, its row of pin_replication)."""
    try:
        cid, peer_map = obj["cid"], obj.get("peer_map") or {}
        statuses = [(cid, peer_id, info.get("peername"), info.get("status"), info.get("error") or None,
                     info.get("timestamp")) for peer_id, info in peer_map.items()]
        wanted = len(obj.get("allocations") or ()) or len(peer_map)
    except (KeyError, TypeError, AttributeError):
        raise IPFSError("the IPFS Cluster API sent a pin without a CID: %r" % (obj,))
    pinned = sum(1 for row in statuses if row[3] == "pinned")
    in_error = sum(1 for row in statuses if row[3] in CLUSTER_ERROR_STATUSES)
    pin = {"Cid": cid, "Type": "recursive"}
    if obj.get("name"):
        pin["Name"] = obj["name"]
    return pin, statuses, (cid, wanted, pinned, in_error)


def record_cluster_status(conn, obj):
    """One pin's status across the cluster (a GlobalPinInfo), for a pin the
    catalogue has (the next sync brings in one it does not have yet)."""
    _, statuses, counts = cluster_pin_rows(obj)
    with transaction(conn):
        if not conn.execute("UPDATE pins SET synced_at = " + NOW_PRECISE + " WHERE cid = ?", (counts[0],)).rowcount:
            return
        conn.execute(FORGET_LINE, (counts[0],))
        conn.execute("DELETE FROM pin_peers WHERE cid = ?", (counts[0],))
        conn.executemany("INSERT INTO pin_peers (cid, peer_id, peername, status, error, updated_at)"
                         " VALUES (?, ?, ?, ?, ?, ?)", statuses)
        conn.execute("INSERT OR REPLACE INTO pin_replication (cid, wanted, pinned, in_error) VALUES (?, ?, ?, ?)",
                     counts)


def cluster_peer_row(peer):
    """One peer as IPFS Cluster's ``peers`` lists it, as a row of
    cluster_peers: (peer_id, peername, version, ipfs_id, error); the error
    is the peer's own or its Kubo's, None when it is well."""
    ipfs = peer.get("ipfs") or {}
    return (str(peer.get("id")), peer.get("peername"), peer.get("version"), ipfs.get("id"),
            peer.get("error") or ipfs.get("error") or None)


def record_cluster_peers(conn, rows):
    """The cluster's peers as it lists them now: (peer_id, peername, version, ipfs_id, error) rows."""
    with transaction(conn):
        conn.execute("DELETE FROM cluster_peers")
        conn.executemany("INSERT OR REPLACE INTO cluster_peers (peer_id, peername, version, ipfs_id, error)"
                         " VALUES (?, ?, ?, ?, ?)", rows)


def save_sizes(conn, sizes):
    """(size, id, cid) of pins looked up by their row."""
    if sizes:
        with transaction(conn):
            conn.executemany("UPDATE pins SET size = ? WHERE id = ? AND cid = ?", sizes)


def save_sizes_by_cid(conn, sizes):
    """(size, cid) of pins whose size is still unknown, in CID order."""
    if sizes:
        with transaction(conn):
            conn.executemany("UPDATE pins SET size = ? WHERE cid = ? AND size IS NULL",
                             sorted(sizes, key=lambda item: item[1]))


# ---------------------------------------------------------------------------
# A whole listing (the pin sync)
# ---------------------------------------------------------------------------

def stats(conn):
    """The catalogue's totals (count, total_size, unsized), kept by triggers."""
    return conn.execute("SELECT count, total_size, unsized FROM pin_stats").fetchone()


def last_listing(conn):
    """(digest, count) of the listing the catalogue is exactly, or None."""
    return conn.execute("SELECT l.digest, l.count FROM last_listing l JOIN pin_stats s ON s.count = l.count"
                        " AND s.id = 1").fetchone()


def compare(conn, listing_started):
    """(found, kept, changed, removable): pins of the temporary table
    ``listed`` that the catalogue has, those of them written before the
    listing began, those whose type or name changed, and catalogued pins
    written before the listing began."""
    found, kept, changed = conn.execute(
        "SELECT COUNT(p.id), COALESCE(SUM(p.synced_at < ?), 0),"
        " COALESCE(SUM(p.type IS NOT l.type OR p.name IS NOT COALESCE(l.name, '')), 0)"
        # In CID order the look-ups walk the catalogue's index instead of jumping around it.
        " FROM (SELECT * FROM listed ORDER BY cid) l LEFT JOIN pins p ON p.cid = l.cid",
        (listing_started,)).fetchone()
    removable = conn.execute("SELECT COUNT(*) FROM pins WHERE synced_at < ?", (listing_started,)).fetchone()[0]
    return found, kept, changed, removable


def line_digests(conn):
    """{digest: pin id} of every pin whose rows are exactly its line in the
    cluster's last applied listing (see apply_listing's ``lines``)."""
    cursor = conn.cursor()
    cursor.row_factory = None
    return dict(cursor.execute("SELECT digest, id FROM pin_line_digests"))


# The listed pins whose type or name changed, that no task wrote since the
# listing began (its one value): they take the listing's.
UPDATE_LISTED_CHANGES = (
    "UPDATE pins SET type = (SELECT type FROM listed WHERE listed.cid = pins.cid),"
    " name = COALESCE((SELECT name FROM listed WHERE listed.cid = pins.cid), ''),"
    " synced_at = " + NOW_PRECISE +
    " WHERE synced_at < ? AND cid IN (SELECT l.cid FROM listed l JOIN pins p ON p.cid = l.cid"
    " WHERE p.type IS NOT l.type OR p.name IS NOT COALESCE(l.name, ''))")


def apply_listing(conn, listing_started, total, digest, cluster, sized, lines=False):
    """Bring the catalogue in line with the complete listing in the temporary
    tables ``listed`` (and, through a cluster, ``listed_peers`` and
    ``listed_replication``), in one transaction; returns (added, updated, removed).

    One pass over the listing, through the catalogue's index, counts what is
    new, what changed and what is still there; each change then runs only if
    there is something to change, so a re-sync where nothing changed writes
    nothing. The listing began at ``listing_started``: rows written since
    (a pin task, an upload) are left as they are, with their cluster status,
    and pins removed since are not put back. Kubo's listing never repeats a
    CID, which the "still there" count relies on; a pin listed without a
    name has none (Kubo and IPFS Cluster leave an empty name out).
    ``sized``: the listing carries sizes found on the way.

    ``lines`` (through a cluster): ``listed`` holds only the lines of the
    listing whose digest is not in ``pin_line_digests``, their digests in
    the temporary table ``listed_digests`` (cid, digest), and ``unseen``
    (id) the pins whose known digest the listing did not have: the other
    pins are as their lines say. A pin is gone if it is neither listed nor
    known by a digest the listing had. The new digests are written in the
    same transaction, for the pins that now are their lines.
    """
    if lines:
        return apply_lines(conn, listing_started, total, digest, sized)
    if not stats(conn)["count"]:
        found = kept = changed = removable = 0   # an empty catalogue: all is new
    else:
        found, kept, changed, removable = compare(conn, listing_started)
    added = updated = removed = 0
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS touched_pins (cid TEXT PRIMARY KEY) WITHOUT ROWID")
    with transaction(conn):
        # The pins a task changed since the listing began, before this changes any.
        conn.execute("DELETE FROM touched_pins")
        conn.execute("INSERT INTO touched_pins SELECT cid FROM pins WHERE synced_at >= ?", (listing_started,))
        touched = conn.execute("SELECT EXISTS (SELECT 1 FROM touched_pins) OR EXISTS (SELECT 1 FROM pin_removals"
                               " WHERE removed_at >= ?)", (listing_started,)).fetchone()[0]
        if kept < removable or (sized and found):
            conn.execute("CREATE INDEX IF NOT EXISTS temp.listed_cid ON listed(cid)")
        if kept < removable:
            removed = conn.execute("DELETE FROM pins WHERE synced_at < ? AND cid NOT IN (SELECT cid FROM listed)",
                                   (listing_started,)).rowcount
        if changed:
            updated = conn.execute(UPDATE_LISTED_CHANGES, (listing_started,)).rowcount
        if sized and found:
            # Catalogued pins whose size was found on the way.
            conn.execute("UPDATE pins SET size = (SELECT size FROM listed WHERE listed.cid = pins.cid)"
                         " WHERE size IS NULL AND cid IN (SELECT cid FROM listed WHERE size IS NOT NULL)")
        if found < total:
            # In CID order, every index grows at its end instead of at random places.
            added = conn.execute(
                "INSERT OR IGNORE INTO pins (cid, type, name, size)"
                " SELECT cid, type, COALESCE(name, ''), size FROM listed"
                " WHERE cid NOT IN (SELECT cid FROM pin_removals WHERE removed_at >= ?) ORDER BY cid",
                (listing_started,)).rowcount
        # Each peer's status of each pin: the cluster's, or none for a node
        # alone; a status a task recorded since the listing began stays.
        if not cluster:
            conn.execute("DELETE FROM pin_peers WHERE cid NOT IN (SELECT cid FROM touched_pins)")
            conn.execute("DELETE FROM pin_replication WHERE cid NOT IN (SELECT cid FROM touched_pins)")
            conn.execute("DELETE FROM cluster_peers")
        else:
            apply_cluster_statuses(conn)
        conn.execute("DELETE FROM pin_line_digests")
        # A removal's mark is needed only by a listing older than it.
        conn.execute("DELETE FROM pin_removals WHERE removed_at < ?", (listing_started,))
        # Remembered only if the catalogue is now exactly the listing: not
        # so when a task changed it while the listing was read.
        conn.execute("DELETE FROM last_listing")
        if not touched and stats(conn)["count"] == total:
            conn.execute("INSERT INTO last_listing (id, digest, count) VALUES (1, ?, ?)", (digest, total))
    return added, updated, removed


def apply_lines(conn, listing_started, total, digest, sized):
    """apply_listing of the changed lines of a cluster's listing (see its ``lines``)."""
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS touched_pins (cid TEXT PRIMARY KEY) WITHOUT ROWID")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone (cid TEXT PRIMARY KEY, id) WITHOUT ROWID")
    conn.execute("CREATE INDEX IF NOT EXISTS temp.listed_cid ON listed(cid)")
    added = updated = removed = 0
    with transaction(conn):
        conn.execute("DELETE FROM touched_pins")
        conn.execute("INSERT INTO touched_pins SELECT cid FROM pins WHERE synced_at >= ?", (listing_started,))
        touched = conn.execute("SELECT EXISTS (SELECT 1 FROM touched_pins) OR EXISTS (SELECT 1 FROM pin_removals"
                               " WHERE removed_at >= ?)", (listing_started,)).fetchone()[0]
        # Gone: catalogued before the listing began, not in it, and not
        # known by a line it had (a pin without a digest was not).
        conn.execute("DELETE FROM gone")
        if conn.execute("SELECT COUNT(*) FROM pin_line_digests").fetchone()[0] == stats(conn)["count"]:
            # Every pin has its digest (the rows go with the pins): only those unseen can be gone.
            conn.execute("INSERT INTO gone SELECT cid, id FROM pins WHERE id IN (SELECT id FROM unseen)"
                         " AND synced_at < ? AND cid NOT IN (SELECT cid FROM listed)", (listing_started,))
        else:
            conn.execute("INSERT INTO gone SELECT cid, id FROM pins WHERE synced_at < ?"
                         " AND cid NOT IN (SELECT cid FROM listed)"
                         " AND (id IN (SELECT id FROM unseen) OR id NOT IN (SELECT id FROM pin_line_digests))",
                         (listing_started,))
        removed = conn.execute("DELETE FROM pins WHERE cid IN (SELECT cid FROM gone)").rowcount
        updated = conn.execute(UPDATE_LISTED_CHANGES, (listing_started,)).rowcount
        if sized:
            conn.execute("UPDATE pins SET size = (SELECT size FROM listed WHERE listed.cid = pins.cid)"
                         " WHERE size IS NULL AND cid IN (SELECT cid FROM listed WHERE size IS NOT NULL)")
        added = conn.execute(
            "INSERT OR IGNORE INTO pins (cid, type, name, size)"
            " SELECT cid, type, COALESCE(name, ''), size FROM listed"
            " WHERE cid NOT IN (SELECT cid FROM pin_removals WHERE removed_at >= ?) ORDER BY cid",
            (listing_started,)).rowcount
        # Only the listed pins' rows and the gone pins' are compared.
        apply_cluster_statuses(conn, " AND cid IN (SELECT cid FROM listed UNION ALL SELECT cid FROM gone)")
        conn.execute("DELETE FROM pin_line_digests WHERE id IN (SELECT id FROM gone)")
        conn.execute("INSERT OR REPLACE INTO pin_line_digests (id, digest) SELECT p.id, d.digest FROM listed_digests d"
                     " JOIN pins p ON p.cid = d.cid WHERE p.cid NOT IN (SELECT cid FROM touched_pins)")
        conn.execute("DELETE FROM pin_removals WHERE removed_at < ?", (listing_started,))
        conn.execute("DELETE FROM last_listing")
        if not touched and stats(conn)["count"] == total:
            conn.execute("INSERT INTO last_listing (id, digest, count) VALUES (1, ?, ?)", (digest, total))
    return added, updated, removed


def apply_cluster_statuses(conn, only=""):
    """Bring ``pin_peers`` and ``pin_replication`` in line with the listing's
    (``listed_peers``, ``listed_replication``), inside apply_listing's
    transaction, writing only the rows that differ: a re-sync after one
    pin's status changed writes that pin's rows, not two rows a pin. Rows
    of pins a task touched since the listing began (``touched_pins``) stay
    as the task left them."""
    conn.execute("CREATE INDEX IF NOT EXISTS temp.listed_peers_key ON listed_peers(cid, peer_id)")
    conn.execute("CREATE INDEX IF NOT EXISTS temp.listed_replication_cid ON listed_replication(cid)")
    untouched = " AND cid NOT IN (SELECT cid FROM touched_pins)" + only
    conn.execute("DELETE FROM pin_peers WHERE NOT EXISTS (SELECT 1 FROM listed_peers l WHERE l.cid = pin_peers.cid"
                 " AND l.peer_id = pin_peers.peer_id AND pin_peers.cid IN (SELECT cid FROM pins))" + untouched)
    conn.execute("DELETE FROM pin_replication WHERE NOT EXISTS (SELECT 1 FROM listed_replication l"
                 " WHERE l.cid = pin_replication.cid AND pin_replication.cid IN (SELECT cid FROM pins))" + untouched)
    # In CID order, the catalogue's keys are walked, not jumped around.
    conn.execute("INSERT OR REPLACE INTO pin_peers (cid, peer_id, peername, status, error, updated_at)"
                 " SELECT * FROM listed_peers l WHERE cid IN (SELECT cid FROM pins)" + untouched +
                 " AND NOT EXISTS (SELECT 1 FROM pin_peers p WHERE p.cid = l.cid AND p.peer_id = l.peer_id"
                 " AND p.peername IS l.peername AND p.status IS l.status AND p.error IS l.error"
                 " AND p.updated_at IS l.updated_at) ORDER BY cid")
    conn.execute("INSERT OR REPLACE INTO pin_replication (cid, wanted, pinned, in_error)"
                 " SELECT * FROM listed_replication l WHERE cid IN (SELECT cid FROM pins)" + untouched +
                 " AND NOT EXISTS (SELECT 1 FROM pin_replication r WHERE r.cid = l.cid AND r.wanted IS l.wanted"
                 " AND r.pinned IS l.pinned AND r.in_error IS l.in_error) ORDER BY cid")


# ---------------------------------------------------------------------------
# Reading it, for the pages
# ---------------------------------------------------------------------------

def pin_filter(q, status):
    """The WHERE clause (or '') and its arguments for a search of CIDs and
    names and a replication filter (a key of PIN_FILTERS, or '')."""
    where, args = [], []
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(" (cid LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')")
        args = [pattern, pattern]
    if status:
        where.append(PIN_FILTERS[status])
    return (" WHERE" + " AND".join(where) if where else ""), args


def search(conn, q, status, sort, limit, offset):
    """(pins, total) matching ``pin_filter(q, status)``, in a PIN_SORTS order."""
    clause, args = pin_filter(q, status)
    total = conn.execute("SELECT COUNT(*) FROM pins" + clause, args).fetchone()[0] if clause else stats(conn)["count"]
    rows = conn.execute("SELECT " + ", ".join(PIN_COLUMNS) + " FROM pins" + clause
                        + " ORDER BY " + PIN_SORTS[sort] + " LIMIT ? OFFSET ?", args + [limit, offset]).fetchall()
    return [dict(row) for row in rows], total


def stream_pins(conn, q, status, sort, batch=1000):
    """Every pin matching ``pin_filter(q, status)``, in a PIN_SORTS order, as
    tuples of PIN_COLUMNS, read ``batch`` rows at a time from one statement:
    a million pins never sit in memory, and they are one consistent snapshot
    (the statement's read transaction lasts until the last row or until the
    caller closes this generator or ``conn``)."""
    clause, args = pin_filter(q, status)
    cursor = conn.cursor()
    cursor.row_factory = None
    yield from rows_of(cursor.execute("SELECT " + ", ".join(PIN_COLUMNS) + " FROM pins" + clause
                                      + " ORDER BY " + PIN_SORTS[sort], args), batch)


def cluster_summary(conn):
    """The cluster's peers and its pins in error or under-replicated, as the
    last sync found them; None when the catalogue is a node's alone."""
    peers = [dict(row) for row in conn.execute(
        "SELECT peer_id AS id, peername AS name, version, error FROM cluster_peers ORDER BY peername, peer_id")]
    if not peers and conn.execute("SELECT 1 FROM pin_replication LIMIT 1").fetchone() is None:
        return None
    return {
        "peers": peers,
        "pins_in_error": conn.execute("SELECT COUNT(*) FROM pin_replication WHERE in_error > 0"
                                      " AND cid IN (SELECT cid FROM pins)").fetchone()[0],
        "under_replicated": conn.execute("SELECT COUNT(*) FROM pin_replication WHERE pinned < wanted"
                                         " AND cid IN (SELECT cid FROM pins)").fetchone()[0],
    }


def add_replication(conn, pins):
    """Each pin's peers by status, the peers it should have, and the peers' error sentences."""
    by_cid = {pin["cid"]: pin for pin in pins}
    for pin in pins:
        pin.update(peers={}, replication_wanted=None, peer_errors=[])
    marks = ",".join("?" * len(by_cid))
    if not marks:
        return
    for row in conn.execute("SELECT cid, status, peername, error FROM pin_peers WHERE cid IN (%s)"
                            " ORDER BY cid, peername" % marks, list(by_cid)):
        pin = by_cid[row["cid"]]
        group = PEER_STATUS_GROUPS.get(row["status"], "other")
        pin["peers"][group] = pin["peers"].get(group, 0) + 1
        if row["error"]:
            pin["peer_errors"].append({"peer": row["peername"], "status": row["status"], "error": row["error"]})
    for row in conn.execute("SELECT cid, wanted FROM pin_replication WHERE cid IN (%s)" % marks, list(by_cid)):
        by_cid[row["cid"]]["replication_wanted"] = row["wanted"]
