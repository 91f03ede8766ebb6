"""The pin_sync task: mirror the node's (or the cluster's) pins into the
catalogue, with every pin's size.
"""

import hashlib
import itertools
import sqlite3
import tempfile
import time

from console import catalogue
from console.framing import MAX_LINE, IPFSError, json_batches
from console.store import NOW_PRECISE, connect, transaction
from console.tasks.common import note_error
from console.tasks.sizes import SizeLookups

LIST_BATCH = 5000      # listed pins written per transaction
SAVE_BATCH = 4096      # sizes written per transaction
SAVE_SECONDS = 1.0     # sizes found wait at most this long to be written (the pages show them)
LISTING_LEAD = 2       # batches of early look-ups waiting while the listing streams


def run(ctx):
    """Mirror the node's recursive pins into ``pins`` (see PinSync)."""
    conn = connect(ctx.db_path)
    try:
        return PinSync(ctx, conn).run()
    finally:
        conn.close()


class PinSync:
    """One pin sync.

    1. Stream ``pin/ls`` into temp table ``listed`` (nothing changes yet).
    2. Only once the listing is known complete: delete what the node no longer
       has, insert what is new, update what changed, in one transaction, so
       the catalogue is either as it was or correctly updated.
    3. Look up the size of every pin whose size is unknown, N at a time, in
       ``id`` order, which is CID order: a batch of sizes then dirties few
       pages, where in random order each size would dirty one of its own.
       CIDs are immutable, so a known size is never looked up again.

    When no pin in the catalogue has a known size (a first sync), every
    listed pin needs a look-up, so "early" look-ups start with the listing,
    in its order, and those of the lowest CIDs keep the node busy while
    step 2 runs. Their sizes go into ``listed`` and reach the catalogue with
    their pins; those that come in after step 2 are written together, in
    CID order, to the first rows. Step 3 then skips the pins that early
    look-ups have, or had and could not size.

    When the listing has the same bytes as the last one applied, there is
    nothing to store or compare (see ``list_pins``): only step 3 is left.
    Through a cluster, whose listing carries each peer's news, step 1 keeps
    only the lines that changed since the catalogue last applied them (see
    ``store_changed_lines``), and step 2 applies those and the pins gone.

    ``result["phase"]`` says which step runs: "listing" until the catalogue
    is the listing, "sizes" while sizes are still being looked up (the
    pages show the pins, and say so), gone at the end. Each step's writes
    are whole: step 2 in one transaction, step 3 a batch of sizes at a
    time, so a worker killed in step 3 leaves the listing applied and the
    sizes it had not written unknown, for the next sync to look up.
    """

    def __init__(self, ctx, conn):
        self.ctx, self.conn = ctx, conn
        self.result = ctx.result = {"total": 0, "added": 0, "updated": 0, "removed": 0, "unchanged": 0,
                                    "failed": 0, "sized": 0, "error_details": [], "duration_s": 0.0}
        self.early = False          # whether look-ups start with the listing
        self.digest = None          # the listing's SHA-256, as it is read
        self.unchanged = False      # whether the listing is the one last applied
        self.lines = False          # whether ``listed`` holds only the cluster's changed lines
        self.applied = False        # whether step 2 is done
        self.lookups = None         # the SizeLookups at work
        self.listing_command = None  # what the listing is called in error messages
        self.reset_sizes()

    def reset_sizes(self):
        self.fed_listed = 0         # the last rowid of ``listed`` handed to early look-ups
        self.fed_pins = 0           # the last id of ``pins`` handed to look-ups in step 3
        self.early_waiting = 0      # early look-ups not answered yet
        self.skip = set()           # CIDs step 3 leaves alone: early ones not yet sized in ``pins``
        self.into_listed = []       # (size, rowid, cid) from early look-ups, before step 2
        self.late = []              # (size, cid) from early look-ups, after step 2
        self.into_pins = []         # (size, id, cid) from step 3
        self.saved_at = time.monotonic()   # when sizes were last written to the catalogue

    def run(self):
        ctx, conn, result = self.ctx, self.conn, self.result
        started = time.monotonic()
        try:
            ctx.log("Fetching pins from IPFS...")
            ctx.current_item = "Fetching pins from IPFS..."
            result["phase"] = "listing"
            listing_started = conn.execute("SELECT " + NOW_PRECISE).fetchone()[0]
            self.early = bool(conn.execute("SELECT count = unsized FROM pin_stats").fetchone()[0])
            total = result["total"] = self.list_pins()
            ctx.set_total(total)
            ctx.log("Found %d pins to sync" % total)
            if ctx.cluster_api:
                self.record_cluster_peers()
            if self.unchanged:
                self.applied = True
                result["unchanged"] = total
                ctx.advance(total - conn.execute("SELECT unsized FROM pin_stats").fetchone()[0])
            else:
                self.apply_listing(listing_started)
            unsized = conn.execute("SELECT unsized FROM pin_stats").fetchone()[0]
            if unsized:
                # The catalogue is the listing now, on the pages too; what
                # is left are sizes, written as they come. A worker that
                # dies from here on leaves the listing applied and those
                # sizes unknown: the next sync looks them up.
                result["phase"] = "sizes"
                ctx.log("Catalogue updated; looking up %d sizes" % unsized)
            self.look_up_sizes()
            result.pop("phase", None)
            ctx.current_item = None
            ctx.advance(max(0, total - ctx.progress))
            ctx.log("Sync completed: %d pins synced" % total)
            return result
        finally:
            result["duration_s"] = round(time.monotonic() - started, 3)
            if self.lookups is not None:
                self.lookups.close()

    # -- 1. the listing ------------------------------------------------------

    def list_pins(self):
        """Read the node's recursive pins into ``listed``; returns the count.

        The table has no index: rows are appended as they arrive, which stays
        fast at millions of pins, and the comparison uses the catalogue's own
        index on ``cid``. Its columns have no type, so that a CID that is not
        text stays what it was and is refused at the end. A transient failure
        restarts the listing from scratch (the table is emptied, early
        look-ups start again), so a partial listing is never taken for the whole.

        When the catalogue is still as the last applied listing left it
        (``last_listing``), the listing is first only hashed, and kept in a
        temporary file: if its bytes are the same, nothing has changed and
        there is nothing to store or compare; if not, it is read from the
        file as it would have been from the node.
        """
        ctx, conn = self.ctx, self.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed (cid NOT NULL, type NOT NULL, name, size)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed_peers"
                     " (cid NOT NULL, peer_id NOT NULL, peername, status, error, updated_at)")
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed_replication (cid NOT NULL, wanted, pinned, in_error)")
        last = catalogue.last_listing(conn)
        if ctx.cluster_api:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS listed_digests (cid NOT NULL, digest NOT NULL)")
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS unseen (id INTEGER PRIMARY KEY)")
        client = ctx.pins_client()
        self.listing_command = client.LISTING
        for attempt in range(1, client.attempts + 1):
            conn.execute("DELETE FROM listed")
            conn.execute("DELETE FROM listed_peers")
            conn.execute("DELETE FROM listed_replication")
            self.restart_lookups()
            self.digest = hashlib.sha256()
            try:
                with ctx.interruptible(client):
                    pieces = self.hashed(client.pin_listing())
                    if ctx.cluster_api:
                        return self.store_changed_lines(pieces)
                    if last is None:
                        return self.store_listing(pieces)
                    with tempfile.TemporaryFile(prefix="ipfsmaster-listing-") as spool:
                        for piece in pieces:
                            spool.write(piece)
                        if self.digest.hexdigest() == last["digest"]:
                            self.unchanged = True
                            return last["count"]
                        spool.seek(0)
                        return self.store_listing(iter(lambda: spool.read(1 << 20), b""))
            except IPFSError as exc:
                ctx.check()
                if not exc.transient or attempt == client.attempts:
                    raise
                ctx.log("Listing failed (%s); starting it again" % exc)
                time.sleep(client.backoff * 2 ** (attempt - 1))
            finally:
                client.close()
        raise AssertionError("unreachable")

    def hashed(self, pieces):
        """``pieces`` of the listing, hashed on the way, with a stop at each if asked."""
        lines = 0
        for piece in pieces:
            self.ctx.check()
            self.digest.update(piece)
            lines += piece.count(b"\n")
            self.ctx.current_item = "Fetching pins from IPFS... %d" % lines
            yield piece

    def store_listing(self, pieces):
        """Parse the listing's ``pieces`` into ``listed``; returns the count."""
        ctx, conn = self.ctx, self.conn
        count = 0
        plain, named = [], []
        cluster = bool(ctx.cluster_api)
        for objects in json_batches(self.listing_command, pieces):
            if cluster:
                objects = self.cluster_pins(objects)
            add_listed(objects, plain, named)
            if len(plain) + len(named) >= LIST_BATCH:
                count += insert_listed(conn, plain, named)
                plain, named = [], []
                if self.early:
                    # A few look-ups keep the node busy while it lists, not
                    # so many that the listing (and the catalogue the pages
                    # wait for) waits behind them: the node serves both from
                    # the same cores. The full depth comes with step 2.
                    self.feed_listed(self.lookups.batch * LISTING_LEAD)
                    self.collect()
        count += insert_listed(conn, plain, named)
        ctx.check()
        bad = conn.execute("SELECT cid FROM listed WHERE typeof(cid) <> 'text' OR cid = '' LIMIT 1").fetchone()
        if bad:
            raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % ({"Cid": bad[0]},))
        return count

    def store_changed_lines(self, pieces):
        """Through a cluster: hash each line of the listing's ``pieces`` and
        parse into ``listed`` only those whose digest the catalogue does not
        know (``pin_line_digests``), their digests into ``listed_digests``;
        the pins whose known digest did not come go into ``unseen``. When
        every line is known and every pin was seen, the listing is the
        catalogue (``unchanged``). Returns the count of lines."""
        conn = self.conn
        for table in ("listed_digests", "unseen"):
            conn.execute("DELETE FROM " + table)
        known = catalogue.line_digests(conn)
        unknown = conn.execute("SELECT COUNT(*) FROM pins").fetchone()[0] - len(known)
        self.lines = True
        count = parsed = 0
        changed, digests = [], []
        pending = b""
        blake2b = hashlib.blake2b
        for piece in pieces:
            *lines, pending = (pending + piece).split(b"\n")
            for line in lines:
                digest = blake2b(line, digest_size=16).digest()
                if known.pop(digest, None) is not None:
                    count += 1
                elif line.strip():
                    changed.append(line)
                    digests.append(digest)
            if len(changed) >= LIST_BATCH:
                parsed += self.store_lines(changed, digests)
                changed, digests = [], []
            if len(pending) > MAX_LINE:
                raise IPFSError("IPFS %s sent a line longer than %d bytes" % (self.listing_command, MAX_LINE))
        if pending.strip():
            changed.append(pending)
            digests.append(blake2b(pending, digest_size=16).digest())
        parsed += self.store_lines(changed, digests)
        self.ctx.check()
        bad = conn.execute("SELECT cid FROM listed WHERE typeof(cid) <> 'text' OR cid = '' LIMIT 1").fetchone()
        if bad:
            raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % ({"Cid": bad[0]},))
        with transaction(conn):
            conn.executemany("INSERT OR IGNORE INTO unseen (id) VALUES (?)", ((key,) for key in known.values()))
        self.unchanged = not parsed and not known and not unknown
        return count + parsed

    def store_lines(self, lines, digests):
        """Parse the cluster's ``lines`` into ``listed`` and the rest, and their
        ``digests`` into ``listed_digests``; returns the count."""
        if not lines:
            return 0
        objects = [obj for batch in json_batches(self.listing_command, [b"\n".join(lines)]) for obj in batch]
        pins = self.cluster_pins(objects)
        with transaction(self.conn):
            self.conn.executemany("INSERT INTO listed_digests VALUES (?, ?)",
                                  zip((pin["Cid"] for pin in pins), digests))
        plain, named = [], []
        add_listed(pins, plain, named)
        count = insert_listed(self.conn, plain, named)
        if self.early:
            self.feed_listed(self.lookups.batch * LISTING_LEAD)
            self.collect()
        return count

    def cluster_pins(self, objects):
        """The cluster's GlobalPinInfo objects as pin/ls entries; each peer's
        status of each pin, and the pin's replication, go to their own tables."""
        peers, replication, pins = [], [], []
        for obj in objects:
            pin, statuses, counts = catalogue.cluster_pin_rows(obj)
            pins.append(pin)
            peers.extend(statuses)
            replication.append(counts)
        try:
            with transaction(self.conn):
                self.conn.executemany("INSERT INTO listed_peers VALUES (?, ?, ?, ?, ?, ?)", peers)
                self.conn.executemany("INSERT INTO listed_replication VALUES (?, ?, ?, ?)", replication)
        except (sqlite3.InterfaceError, sqlite3.ProgrammingError):
            raise IPFSError("the IPFS Cluster API sent a pin status that is not text")
        return pins

    def record_cluster_peers(self):
        """The cluster's peers and their state, for the pins page. A peer
        that is down is listed with its error; if the list cannot be had at
        all, the sync goes on without it."""
        client = self.ctx.cluster_client()
        try:
            with self.ctx.interruptible(client):
                rows = [catalogue.cluster_peer_row(peer) for peer in client.stream("peers", method="GET")]
        except (IPFSError, AttributeError) as exc:
            self.ctx.log("Could not read the cluster's peers: %s" % exc)
            return
        finally:
            client.close()
        catalogue.record_cluster_peers(self.conn, rows)

    # -- 2. the catalogue ----------------------------------------------------

    def apply_listing(self, listing_started):
        """Bring the catalogue in line with the complete listing in ``listed``
        (see catalogue.apply_listing)."""
        ctx, conn, result = self.ctx, self.conn, self.result
        if self.early:
            self.feed_lead(self.lookups.depth * 8)
            self.collect()
            self.save_listed()
        ctx.current_item = "Comparing with the catalogue..."
        ctx.check()
        result["added"], result["updated"], result["removed"] = catalogue.apply_listing(
            conn, listing_started, result["total"], self.digest.hexdigest(), bool(ctx.cluster_api), self.early,
            self.lines)
        self.applied = True
        result["unchanged"] = result["total"] - result["added"] - result["updated"]
        if not self.early:
            ctx.advance(max(0, ctx.total - catalogue.stats(conn)["unsized"]))

    # -- 3. the sizes --------------------------------------------------------

    def look_up_sizes(self):
        """Look up every size still unknown, except those early look-ups have
        (or had: one failure is enough for one sync)."""
        if not self.conn.execute("SELECT unsized FROM pin_stats").fetchone()[0]:
            return
        try:
            exhausted = False
            while True:
                if not exhausted and self.lookups.hungry(self.lookups.depth):
                    exhausted = not self.feed_pins(self.lookups.depth)
                if self.late and not self.early_waiting:
                    # Writing these takes a while: enough look-ups queued for it.
                    if not exhausted:
                        exhausted = not self.feed_pins(self.lookups.depth * 16)
                    self.save_late()
                if exhausted and self.lookups.idle:
                    return
                if (self.late or self.into_pins) and time.monotonic() - self.saved_at >= SAVE_SECONDS:
                    self.save_late()
                    self.save_pins()
                self.ctx.check()
                self.collect(wait=True)
        finally:
            self.save_late()
            self.save_pins()

    def restart_lookups(self):
        if self.lookups is not None:
            self.lookups.close()
        self.lookups = SizeLookups(self.ctx)
        self.reset_sizes()
        self.ctx.progress = 0
        self.result.update(sized=0, failed=0, error_details=[])

    def feed_listed(self, lead):
        """Hand listed pins, in listing order, to early look-ups until ``lead`` are waiting."""
        self.fed_listed, _ = self.feed("SELECT rowid, cid FROM listed WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                       self.fed_listed, lead, self.submit_early)

    def feed_pins(self, lead):
        """Hand unsized pins, in id order, to look-ups until ``lead`` are
        waiting; False once there are no more."""
        self.fed_pins, more = self.feed("SELECT id, cid FROM pins WHERE size IS NULL AND id > ? ORDER BY id LIMIT ?",
                                        self.fed_pins, lead, self.submit_unsized)
        return more

    def feed(self, sql, after, lead, submit):
        """Pass pages of (key, cid) rows of ``sql``, keys after ``after``, to
        ``submit`` until ``lead`` pins are waiting. Returns the last key
        passed and whether there may be more."""
        while self.lookups.hungry(lead):
            limit = self.lookups.room(lead)
            rows = self.conn.execute(sql, (after, limit)).fetchall()
            if rows:
                after = rows[-1][0]
                submit(rows)
            if len(rows) < limit:
                return after, False
        return after, True

    def feed_lead(self, count):
        """Enough early look-ups to keep the node busy while step 2 runs:
        the lowest CIDs not handed out yet, whose rows step 2 puts first
        in ``pins``, so that their sizes, coming in after it, are written
        to neighbouring rows."""
        self.submit_early(self.conn.execute("SELECT rowid, cid FROM listed WHERE rowid > ? ORDER BY cid LIMIT ?",
                                            (self.fed_listed, count)).fetchall())

    def submit_early(self, rows):
        if rows:
            self.lookups.submit(rows, early=True)
            self.early_waiting += len(rows)
            self.skip.update(row[1] for row in rows)

    def submit_unsized(self, rows):
        todo = [row for row in rows if row[1] not in self.skip] if self.skip else rows
        if todo:
            self.lookups.submit(todo, early=False)

    def collect(self, wait=False):
        """Take the answers that are in (waiting a moment for one if
        ``wait``), up to a queue's worth, so that feeding never waits long."""
        result = self.result
        for early, answers in itertools.islice(self.lookups.answers(wait), self.lookups.workers * 4):
            for key, cid, outcome in answers:
                if isinstance(outcome, IPFSError):
                    result["failed"] += 1
                    note_error(result, {"cid": cid, "error": str(outcome)})
                    continue
                result["sized"] += 1
                if not early:
                    self.into_pins.append((outcome, key, cid))
                elif self.applied:
                    self.late.append((outcome, cid))
                else:
                    self.into_listed.append((outcome, key, cid))
                    self.skip.discard(cid)
            self.ctx.advance(len(answers), answers[-1][1])
            if early:
                self.early_waiting -= len(answers)
                if len(self.into_listed) >= SAVE_BATCH:
                    self.save_listed()
            elif len(self.into_pins) >= SAVE_BATCH:
                self.save_pins()

    def save_listed(self):
        if self.into_listed:
            with transaction(self.conn):
                self.conn.executemany("UPDATE listed SET size = ? WHERE rowid = ? AND cid = ?", self.into_listed)
            self.into_listed = []

    def save_late(self):
        self.saved_at = time.monotonic()
        if self.late:
            catalogue.save_sizes_by_cid(self.conn, self.late)
            self.skip.difference_update(cid for _, cid in self.late)
            self.late = []

    def save_pins(self):
        self.saved_at = time.monotonic()
        if self.into_pins:
            catalogue.save_sizes(self.conn, self.into_pins)
            self.into_pins = []


def add_listed(objects, plain, named):
    """Sort pin/ls entries into ``plain`` (cid, type) rows and, for the few
    with a name, ``named`` (cid, type, name) rows.

    The listing has no names unless asked for, and two bound values cost the
    sqlite3 module half what three do when the third is None: at a million
    pins that is most of the time spent writing the listing down.
    """
    try:
        rows = [(obj["Cid"], obj.get("Type") or "recursive") for obj in objects if "Name" not in obj]
        if len(rows) == len(objects):
            plain.extend(rows)
            return
    except (KeyError, TypeError, AttributeError):
        pass
    for obj in objects:
        cid, kind, name = listed_row(obj)
        if name is None:
            plain.append((cid, kind))
        else:
            named.append((cid, kind, name))


def listed_row(obj):
    """(cid, type, name) of one pin/ls entry; Name is absent unless the node lists names."""
    try:
        cid, kind, name = obj["Cid"], obj.get("Type") or "recursive", obj.get("Name")
    except (KeyError, TypeError, AttributeError):
        raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % (obj,))
    if not isinstance(cid, str) or not cid:
        raise IPFSError("IPFS pin/ls sent an entry without a CID: %r" % (obj,))
    return cid, str(kind), None if name is None else str(name)


def insert_listed(conn, plain, named):
    try:
        with transaction(conn):
            conn.executemany("INSERT INTO listed (cid, type) VALUES (?, ?)", plain)
            if named:
                conn.executemany("INSERT INTO listed (cid, type, name) VALUES (?, ?, ?)", named)
    except (sqlite3.InterfaceError, sqlite3.ProgrammingError, sqlite3.IntegrityError):
        raise IPFSError("IPFS pin/ls sent an entry that is not a pin: a CID or type that is not text")
    return len(plain) + len(named)
