-- IPFSMaster's database schema: the only place tables are defined.
--
-- Every statement is idempotent (IF NOT EXISTS) and runs on every start, so a
-- fresh file gets everything and an existing one loses nothing. Changes to an
-- existing database go through numbered steps keyed on PRAGMA user_version in
-- console/store.py. Timestamps are UTC text in SQLite's datetime('now') form.

-- One row per background job: a pin sync, an upload, ...
CREATE TABLE IF NOT EXISTS background_tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,       -- task id, never reused
    task_type TEXT NOT NULL,                    -- a key of console/registry.py's TASK_TYPES: 'pin_sync', ...
    status TEXT NOT NULL DEFAULT 'pending'      -- pending -> running -> completed | failed | cancelled
        CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    progress INTEGER NOT NULL DEFAULT 0,        -- items (or bytes) done so far
    total INTEGER NOT NULL DEFAULT 0,           -- items (or bytes) in all; 0 while unknown
    current_item TEXT,                          -- what the worker is on now (a CID, a file name)
    result TEXT,                                -- JSON object: the task's outcome, partial if stopped
    error_message TEXT,                         -- why it failed or stopped, for a person
    created_at TEXT NOT NULL DEFAULT (datetime('now')),
    started_at TEXT,                            -- when a worker claimed it
    completed_at TEXT,                          -- when it reached a final status
    pid INTEGER,                                -- the worker's process id while it runs
    params TEXT NOT NULL DEFAULT '{}',          -- JSON object: the task's inputs (never secrets)
    heartbeat_at TEXT,                          -- last sign of life from the running worker
    cancel_requested_at TEXT,                   -- set when someone asked a running task to stop
    retry_of INTEGER REFERENCES background_tasks(id) ON DELETE SET NULL,  -- the task this one retries
    single_flight INTEGER NOT NULL DEFAULT 1    -- 1: at most one active task of this type
        CHECK (single_flight IN (0, 1)),
    exclusive_group TEXT,                       -- tasks of one group never run together (a pin sync and
                                                -- a garbage collection); NULL: no such group
    started_at_precise TEXT,                    -- started_at with milliseconds, for short durations
    completed_at_precise TEXT,                  -- completed_at with milliseconds
    partial INTEGER NOT NULL DEFAULT 0          -- 1: completed with some items failed (types whose items may)
        CHECK (partial IN (0, 1))
);

-- The seed's index: listings by status, newest first.
CREATE INDEX IF NOT EXISTS idx_tasks_status ON background_tasks(status, created_at);

-- A task's retries, for the link from a task to its latest retry.
CREATE INDEX IF NOT EXISTS idx_tasks_retry_of ON background_tasks(retry_of);

-- Listings of one type (the console's filter).
CREATE INDEX IF NOT EXISTS idx_tasks_type ON background_tasks(task_type, id);

-- Single flight, enforced by the database: a second active task of a
-- single-flight type fails to insert, however many requests race.
CREATE UNIQUE INDEX IF NOT EXISTS idx_tasks_one_active
    ON background_tasks(task_type)
    WHERE status IN ('pending', 'running') AND single_flight = 1;

-- Exclusive groups, enforced the same way: at most one active task per group,
-- whatever its type (a garbage collection and a pin sync exclude each other).
CREATE UNIQUE INDEX IF NOT EXISTS idx_tasks_one_active_in_group
    ON background_tasks(exclusive_group)
    WHERE status IN ('pending', 'running') AND exclusive_group IS NOT NULL;

-- The local catalogue of the node's pins.
CREATE TABLE IF NOT EXISTS pins (
    id INTEGER PRIMARY KEY,                     -- row id, the tie-breaker for stable paging
    cid TEXT NOT NULL UNIQUE,                   -- content identifier as the node lists it
    type TEXT NOT NULL,                         -- 'recursive', 'direct', ...
    name TEXT NOT NULL DEFAULT '',              -- the pin's name, '' when it has none
    size INTEGER,                               -- cumulative size in bytes; NULL while unknown
    first_seen_at TEXT NOT NULL DEFAULT (datetime('now')),  -- when a sync or upload first recorded it
    -- when a sync, a pin task or an upload last wrote this row (or its
    -- cluster status); with milliseconds, so a sync can tell rows written
    -- after its listing began, and leave them alone
    synced_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
    -- when a pin task or an upload asked the node for this pin (as
    -- synced_at); NULL when only a sync wrote it. Two tasks on one CID: the
    -- one that asked the node last is what the node has, whichever wrote first
    asked_at TEXT
);

-- Sorting the pins page at any size: each sort key with id as tie-breaker.
CREATE INDEX IF NOT EXISTS idx_pins_name ON pins(name, id);
CREATE INDEX IF NOT EXISTS idx_pins_size ON pins(size, id);
CREATE INDEX IF NOT EXISTS idx_pins_synced ON pins(synced_at, id);

-- The catalogue's totals, kept by the triggers below so that the pins page
-- never counts a million rows to show them.
CREATE TABLE IF NOT EXISTS pin_stats (
    id INTEGER PRIMARY KEY CHECK (id = 1),      -- a single row
    count INTEGER NOT NULL,                     -- rows in pins
    total_size INTEGER NOT NULL,                -- sum of the known sizes, in bytes
    unsized INTEGER NOT NULL                    -- rows whose size is still unknown
);
INSERT OR IGNORE INTO pin_stats (id, count, total_size, unsized)
    SELECT 1, COUNT(*), COALESCE(SUM(size), 0), COUNT(*) - COUNT(size) FROM pins;

CREATE TRIGGER IF NOT EXISTS pins_count_insert AFTER INSERT ON pins BEGIN
    UPDATE pin_stats SET count = count + 1, total_size = total_size + COALESCE(NEW.size, 0),
        unsized = unsized + (NEW.size IS NULL) WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS pins_count_delete AFTER DELETE ON pins BEGIN
    UPDATE pin_stats SET count = count - 1, total_size = total_size - COALESCE(OLD.size, 0),
        unsized = unsized - (OLD.size IS NULL) WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS pins_count_size AFTER UPDATE OF size ON pins BEGIN
    UPDATE pin_stats SET total_size = total_size - COALESCE(OLD.size, 0) + COALESCE(NEW.size, 0),
        unsized = unsized - (OLD.size IS NULL) + (NEW.size IS NULL) WHERE id = 1;
END;

-- The listing the catalogue was last brought in line with, while nothing
-- has changed the catalogue's pins since (the triggers below forget it at
-- the first insert, delete or change of type or name; sizes do not count).
-- A re-sync whose listing has the same bytes has nothing to compare.
CREATE TABLE IF NOT EXISTS last_listing (
    id INTEGER PRIMARY KEY CHECK (id = 1),      -- a single row, or none
    digest TEXT NOT NULL,                       -- SHA-256 of the listing's bytes, in hex
    count INTEGER NOT NULL,                     -- pins in it
    recorded_at TEXT NOT NULL DEFAULT (datetime('now'))
);

CREATE TRIGGER IF NOT EXISTS pins_listing_insert AFTER INSERT ON pins BEGIN
    DELETE FROM last_listing;
END;
CREATE TRIGGER IF NOT EXISTS pins_listing_delete AFTER DELETE ON pins BEGIN
    DELETE FROM last_listing;
END;
CREATE TRIGGER IF NOT EXISTS pins_listing_change AFTER UPDATE OF cid, type, name ON pins BEGIN
    DELETE FROM last_listing;
END;

-- Pins removed from the node by the console, kept until the next sync has
-- applied a listing that began after the removal: a listing that began
-- before it may still hold the pin, and must not put it back.
CREATE TABLE IF NOT EXISTS pin_removals (
    cid TEXT PRIMARY KEY,                       -- the pin that was removed
    removed_at TEXT NOT NULL,                   -- when, with milliseconds (as pins.synced_at)
    asked_at TEXT                               -- when the node was asked to unpin it (as pins.asked_at);
                                                -- NULL only in rows older than the column
) WITHOUT ROWID;

-- IPFS Cluster: each peer's status of each pin, as the last sync through the
-- cluster found it (empty when the console works with a node alone).
CREATE TABLE IF NOT EXISTS pin_peers (
    cid TEXT NOT NULL,                          -- the pin
    peer_id TEXT NOT NULL,                      -- the cluster peer's id
    peername TEXT,                              -- the peer's name, as the cluster gives it
    status TEXT NOT NULL,                       -- pinned, pinning, pin_queued, pin_error, remote, ...
    error TEXT,                                 -- the peer's error sentence, if any
    updated_at TEXT,                            -- when the peer's status last changed (the cluster's time)
    PRIMARY KEY (cid, peer_id)
) WITHOUT ROWID;

-- IPFS Cluster: each pin's replication, for the filters and totals.
CREATE TABLE IF NOT EXISTS pin_replication (
    cid TEXT PRIMARY KEY,                       -- the pin
    wanted INTEGER NOT NULL,                    -- peers it is allocated to (every peer when unlimited)
    pinned INTEGER NOT NULL,                    -- peers that have it pinned
    in_error INTEGER NOT NULL                   -- peers that failed it (pin_error, cluster_error, ...)
) WITHOUT ROWID;

-- The "in error" and "under-replicated" filters and their counts, at any size.
CREATE INDEX IF NOT EXISTS idx_replication_error ON pin_replication(cid) WHERE in_error > 0;
CREATE INDEX IF NOT EXISTS idx_replication_under ON pin_replication(cid) WHERE pinned < wanted;

-- IPFS Cluster: its peers, as the last sync through the cluster found them.
CREATE TABLE IF NOT EXISTS cluster_peers (
    peer_id TEXT PRIMARY KEY,                   -- the cluster peer's id
    peername TEXT,                              -- its name
    version TEXT,                               -- its IPFS Cluster version
    ipfs_id TEXT,                               -- the id of its Kubo
    error TEXT,                                 -- why it or its Kubo cannot be reached, if so
    seen_at TEXT NOT NULL DEFAULT (datetime('now'))  -- when a sync last read it
) WITHOUT ROWID;

-- Tasks that ended, by type and outcome (completed, partial, failed,
-- cancelled), for /metrics: totals that only grow (a cleanup deletes
-- tasks, never these), kept by the trigger below however a task ends (the
-- seed's manual UPDATE too).
CREATE TABLE IF NOT EXISTS task_outcomes (
    task_type TEXT NOT NULL,                    -- the task's type
    outcome TEXT NOT NULL,                      -- completed, partial, failed or cancelled
    count INTEGER NOT NULL DEFAULT 0,           -- tasks that ended so
    duration_seconds REAL NOT NULL DEFAULT 0,   -- their running times, added up
    items INTEGER NOT NULL DEFAULT 0,           -- the items (or bytes, blocks) they got through: progress
    items_failed INTEGER NOT NULL DEFAULT 0,    -- their result.failed, added up
    PRIMARY KEY (task_type, outcome)
) WITHOUT ROWID;

-- The running times of tasks that ended, as a histogram: tasks of each type
-- that took at most ``le`` seconds (cumulative, as Prometheus counts).
CREATE TABLE IF NOT EXISTS task_duration_buckets (
    task_type TEXT NOT NULL,                    -- the task's type
    le REAL NOT NULL,                           -- the bucket's upper bound, in seconds (1e999: +Inf)
    count INTEGER NOT NULL DEFAULT 0,           -- tasks that took at most that long
    PRIMARY KEY (task_type, le)
) WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS tasks_count_outcome AFTER UPDATE OF status ON background_tasks
WHEN NEW.status IN ('completed', 'failed', 'cancelled') AND OLD.status IN ('pending', 'running')
BEGIN
    INSERT INTO task_outcomes (task_type, outcome, count, duration_seconds, items, items_failed)
    SELECT NEW.task_type,
           CASE WHEN NEW.status = 'completed' AND NEW.partial THEN 'partial' ELSE NEW.status END, 1,
           MAX(0, COALESCE((julianday(NEW.completed_at_precise) - julianday(NEW.started_at_precise)) * 86400,
                           (julianday(NEW.completed_at) - julianday(NEW.started_at)) * 86400, 0)),
           MAX(0, NEW.progress),
           CASE WHEN json_valid(NEW.result) AND typeof(json_extract(NEW.result, '$.failed')) = 'integer'
                THEN MAX(0, json_extract(NEW.result, '$.failed')) ELSE 0 END
    WHERE true
    ON CONFLICT (task_type, outcome) DO UPDATE SET count = count + 1,
        duration_seconds = duration_seconds + excluded.duration_seconds,
        items = items + excluded.items, items_failed = items_failed + excluded.items_failed;
    INSERT OR IGNORE INTO task_duration_buckets (task_type, le)
        SELECT NEW.task_type, bound FROM (SELECT 0.1 AS bound UNION ALL SELECT 0.5 UNION ALL SELECT 1
            UNION ALL SELECT 5 UNION ALL SELECT 10 UNION ALL SELECT 30 UNION ALL SELECT 60 UNION ALL SELECT 300
            UNION ALL SELECT 900 UNION ALL SELECT 3600 UNION ALL SELECT 1e999);
    UPDATE task_duration_buckets SET count = count + 1
        WHERE task_type = NEW.task_type AND le >= MAX(0, COALESCE(
            (julianday(NEW.completed_at_precise) - julianday(NEW.started_at_precise)) * 86400,
            (julianday(NEW.completed_at) - julianday(NEW.started_at)) * 86400, 0));
END;

-- The console's figures over time, for GET /api/history and the pages'
-- charts (console/history.py): one row every --sample-seconds, written by
-- the server's look at the node; past two days only the last row of each
-- hour is kept, past thirty none.
CREATE TABLE IF NOT EXISTS samples (
    at TEXT PRIMARY KEY,                        -- when, UTC, to the second (as datetime('now'))
    pins INTEGER NOT NULL,                      -- pins in the catalogue (pin_stats.count)
    pins_size INTEGER NOT NULL,                 -- their known sizes added up, in bytes (pin_stats.total_size)
    repo_size INTEGER,                          -- the node's repository size in bytes; NULL: the node's last
                                                -- look found it unreachable
    storage_max INTEGER,                        -- the node's Datastore.StorageMax in bytes; NULL likewise
    peers INTEGER,                              -- peers the node was connected to; NULL likewise
    tasks_finished INTEGER NOT NULL,            -- tasks that ever ended, whatever the outcome (a running total
                                                -- from task_outcomes: the difference of two samples is what
                                                -- ended between them)
    tasks_failed INTEGER NOT NULL               -- of those, the tasks that failed (a running total likewise)
) WITHOUT ROWID;

-- Recurring tasks: what the server starts on its own, and when.
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,       -- schedule id, never reused
    task_type TEXT NOT NULL,                    -- the type of task it starts (console/schedules.py's UNATTENDED)
    spec TEXT NOT NULL,                         -- when, as people write it: 'every 6h', 'daily 03:00',
                                                -- 'weekly mon 03:00' (times of day in the server's local time)
    params TEXT NOT NULL DEFAULT '{}',          -- JSON object: the schedule's own options (name, keep, above_percent, days)
    enabled INTEGER NOT NULL DEFAULT 1          -- 0: kept, but never started until enabled again
        CHECK (enabled IN (0, 1)),
    next_run_at TEXT NOT NULL,                  -- when it is due next (UTC); a run missed while the server was
                                                -- down is due at once, and runs once, not once per missed slot
    last_run_at TEXT,                           -- when it last came due or was run by hand
    last_task_id INTEGER,                       -- the task its last run started, if it started one
    last_outcome TEXT                           -- started, skipped (another task held its place, or a
        CHECK (last_outcome IN ('started', 'skipped', 'error')),  -- condition was not met) or error
    last_message TEXT,                          -- why it was skipped or failed to start: a template of messages.py
    last_message_values TEXT,                   -- JSON object: the values of that template
    created_at TEXT NOT NULL DEFAULT (datetime('now'))  -- when it was added
);

-- The tick: enabled schedules by when they are due.
CREATE INDEX IF NOT EXISTS idx_schedules_due ON schedules(next_run_at) WHERE enabled = 1;

-- A schedule's tasks (their params name it as schedule_id), newest first:
-- whether a schedule keeps failing.
CREATE INDEX IF NOT EXISTS idx_tasks_schedule ON background_tasks(
    (CASE WHEN json_valid(params) THEN json_extract(params, '$.schedule_id') END), id)
    WHERE params LIKE '%schedule_id%';

-- What the name_follow task pinned for each name it follows, the newest
-- last: the CIDs it keeps (the last N) and those it unpins when the name
-- moves on.
CREATE TABLE IF NOT EXISTS followed_names (
    name TEXT NOT NULL,                         -- the name followed: /ipns/KEY or /ipns/DOMAIN (DNSLink)
    cid TEXT NOT NULL,                          -- a CID the name pointed to, which the task pinned
    pinned_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),  -- when the task pinned it
    pinned_before INTEGER NOT NULL DEFAULT 0    -- 1: the CID was already pinned when the name came to point
        CHECK (pinned_before IN (0, 1)),        -- to it (by hand, say): the task never unpins it then
    PRIMARY KEY (name, cid)
) WITHOUT ROWID;

-- Alerts: conditions an operator should know of, each kept from when it
-- began to when it cleared (at most one open per kind and subject).
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,       -- alert id, never reused
    kind TEXT NOT NULL,                         -- node_down, cluster_peer_down, pins_in_error, under_replicated,
                                                -- repo_watermark, task_failed or schedule_failing
    subject TEXT NOT NULL DEFAULT '',           -- what it is about: the node's address, a peer's id, a level
                                                -- (warn, alarm), a task type, a schedule's id; '' for the whole
    message TEXT NOT NULL,                      -- what it says: a template of messages.py, in English
    message_values TEXT NOT NULL DEFAULT '{}',  -- JSON object: the template's values, the latest the check saw
    opened_at TEXT NOT NULL DEFAULT (datetime('now')),  -- when the condition began (as the check first saw it)
    closed_at TEXT                              -- when it cleared; NULL while it holds
);

-- One open alert per condition, however many checks race.
CREATE UNIQUE INDEX IF NOT EXISTS idx_alerts_open ON alerts(kind, subject) WHERE closed_at IS NULL;

-- The webhook's posts, kept until the receiver took them: a post survives
-- a receiver that is down, and a restart of the console.
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,       -- sent in this order, each after the one before
    body TEXT NOT NULL,                         -- the exact JSON posted (and signed)
    created_at TEXT NOT NULL DEFAULT (datetime('now')),  -- when it was queued (given up a day later)
    status TEXT NOT NULL DEFAULT 'waiting'      -- waiting, delivered, or abandoned (undelivered after a day)
        CHECK (status IN ('waiting', 'delivered', 'abandoned')),
    attempts INTEGER NOT NULL DEFAULT 0,        -- posts tried so far
    next_attempt_at REAL NOT NULL DEFAULT 0,    -- when to try again, in seconds since the epoch
    last_error TEXT,                            -- why the last attempt failed
    delivered_at TEXT                           -- when the receiver answered 2xx
);

-- The posts still to send, in order.
CREATE INDEX IF NOT EXISTS idx_outbox_waiting ON webhook_outbox(id) WHERE status = 'waiting';

-- Access tokens of the pinning service API (/psa): one per device or client.
-- The token itself is shown once, when it is made, and never stored.
CREATE TABLE IF NOT EXISTS psa_tokens (
    name TEXT PRIMARY KEY,                          -- the name its owner gave it (a device, a client), unique
    token_hash TEXT NOT NULL UNIQUE,                -- SHA-256 of the token, in hex: what a Bearer token is looked up by
    created_at TEXT NOT NULL DEFAULT (datetime('now')),  -- when it was made (UTC)
    last_used_at TEXT                               -- when it last opened /psa (UTC, to the minute); NULL: never
) WITHOUT ROWID;

-- The pinning service API's requests: one row a pin request, from its 202
-- until it is deleted or replaced (then gone: it answers 404). The queue
-- task (psa_queue) drains the queued ones.
CREATE TABLE IF NOT EXISTS psa_requests (
    requestid TEXT PRIMARY KEY,                     -- the request's id, random, as the client names it
    cid TEXT NOT NULL,                              -- the CID as the client sent it
    cid_key TEXT NOT NULL,                          -- codec and multihash in hex: a CIDv0 and its CIDv1 share it
    name TEXT,                                      -- the pin's name (at most 255 characters), NULL for none
    origins TEXT NOT NULL DEFAULT '[]',             -- JSON list of multiaddrs said to have the data, dialled first
    meta TEXT NOT NULL DEFAULT '{}',                -- JSON object of text the client attached
    status TEXT NOT NULL DEFAULT 'queued',          -- queued, pinning, pinned or failed
    created_ms INTEGER NOT NULL UNIQUE,             -- when it was made, in ms since 1970 (UTC); unique: clients page by it
    token_name TEXT,                                -- the name of the token that asked (kept after the token is revoked)
    error TEXT,                                     -- the node's sentence when it failed
    task_id INTEGER,                                -- the psa_queue task pinning it (while pinning) or that did
    held_before INTEGER NOT NULL DEFAULT 0,         -- 1: the node pinned the CID before this request did (left pinned at its end)
    updated_at TEXT NOT NULL DEFAULT (datetime('now'))  -- its last change of status (UTC)
) WITHOUT ROWID;
-- The queue in order, and the listing by status, newest first.
CREATE INDEX IF NOT EXISTS idx_psa_requests_status ON psa_requests(status, created_ms);
-- Who else holds a CID, when a request for it ends.
CREATE INDEX IF NOT EXISTS idx_psa_requests_cid ON psa_requests(cid_key);
-- The listing without a status filter's index: every status, newest first.
CREATE INDEX IF NOT EXISTS idx_psa_requests_created ON psa_requests(created_ms);

-- CIDs whose last request ended (deleted, replaced, cancelled mid-pin): the
-- queue task unpins each unless a request or the node's own pin holds it.
CREATE TABLE IF NOT EXISTS psa_unpins (
    cid TEXT PRIMARY KEY,                           -- the CID to unpin, as its request named it
    cid_key TEXT NOT NULL,                          -- its codec and multihash (see psa_requests)
    requested_at TEXT NOT NULL DEFAULT (datetime('now'))  -- when its last request ended (UTC)
) WITHOUT ROWID;

-- IPFS Cluster: a digest of each pin's line in the cluster's last applied
-- listing, so that a re-sync parses and compares only the lines that
-- changed. A row exists only while the catalogue's rows for that pin are
-- exactly what its line says: any other write to the pin deletes it.
CREATE TABLE IF NOT EXISTS pin_line_digests (
    id INTEGER PRIMARY KEY,                     -- the pin: its pins.id (the row goes with the pin)
    digest BLOB NOT NULL                        -- BLAKE2b (16 bytes) of the pin's line, as the cluster sent it
);
CREATE TRIGGER IF NOT EXISTS pins_line_digest_delete AFTER DELETE ON pins BEGIN
    DELETE FROM pin_line_digests WHERE id = OLD.id;
END;
