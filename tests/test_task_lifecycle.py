"""Liveness, cancel, retry and cleanup, in-process on a temporary database."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import console.cli.commands
import console.control
import console.errors
import console.messages
import console.processes
import console.registry
import console.shipped
import console.store
import console.tasks
import ipfsmaster
from support import Client, register_task_type, wait_for


def insert(db, status="running", task_type="pin_sync", pid=None, age=0, heartbeat_age=None, **extra):
    """A task row, created ``age`` seconds ago, its heartbeat ``heartbeat_age`` ago."""
    columns = {"task_type": task_type, "status": status, "pid": pid, "single_flight": 0,
               "created_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - age))}
    if heartbeat_age is not None:
        columns["heartbeat_at"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - heartbeat_age))
        columns["started_at"] = columns["heartbeat_at"]
    columns.update(extra)
    cur = db.execute("INSERT INTO background_tasks (%s) VALUES (%s)" % (", ".join(columns), ", ".join("?" * len(columns))),
                     list(columns.values()))
    return cur.lastrowid


def status_of(db, task_id):
    row = console.store.get_task(db, task_id)
    return row["status"], row["error_message"]


@pytest.fixture
def sleeper():
    """A live process that is not a worker (a stand-in for a reused pid)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# Liveness -------------------------------------------------------------------

def test_it_fails_a_running_task_whose_process_is_gone(db, settings):
    task_id = insert(db, pid=dead_pid(), heartbeat_age=1)
    assert console.control.mark_stale_tasks(db, settings) == [task_id]
    assert status_of(db, task_id) == ("failed", "worker process exited unexpectedly")
    assert console.store.get_task(db, task_id)["completed_at"]


def test_it_fails_a_running_task_whose_heartbeat_stopped(db, settings, sleeper):
    settings.stale_seconds = 30
    fresh = insert(db, pid=sleeper.pid, heartbeat_age=5)
    silent = insert(db, pid=sleeper.pid, heartbeat_age=31)
    assert console.control.mark_stale_tasks(db, settings) == [silent]
    assert status_of(db, fresh)[0] == "running"
    assert status_of(db, silent) == ("failed", "worker process exited unexpectedly")


def test_it_fails_a_pending_task_whose_worker_never_started(db, settings):
    settings.stale_seconds = 30
    young = insert(db, status="pending", age=5)
    old = insert(db, status="pending", age=31)
    assert console.control.mark_stale_tasks(db, settings) == [old]
    assert status_of(db, old) == ("failed", "worker process never started")
    assert status_of(db, young)[0] == "pending"


def test_a_stale_sync_no_longer_blocks_a_new_one(client, db, spawned):
    db.execute("INSERT INTO background_tasks (task_type, status, pid, started_at, heartbeat_at)"
               " VALUES ('pin_sync', 'running', ?, datetime('now'), datetime('now'))", (dead_pid(),))
    r = client.post("/pins/sync")
    assert r.status == 202 and r.json["taskId"] == 2
    assert status_of(db, 1)[0] == "failed"


def test_reading_tasks_marks_stale_ones(client, db):
    task_id = insert(db, pid=dead_pid(), heartbeat_age=1)
    assert client.get("/pins/task-status?id=%d" % task_id).json["status"] == "failed"
    other = insert(db, pid=dead_pid(), heartbeat_age=1)
    listed = client.get("/api/tasks").json["tasks"][0]
    single = client.get("/pins/task-status?id=%d" % other).json
    assert listed == single
    assert status_of(db, other)[0] == "failed"


@pytest.fixture
def waiting_task(db, settings, monkeypatch):
    """A task run in this process by the real worker code until ``release`` is set."""
    release = threading.Event()

    def wait(ctx):
        while not release.wait(0.05):
            ctx.check()
        return {"waited": True}
    register_task_type(monkeypatch, "waiting", wait, label="Waiting", label_zh="等待", unit="items",
                       single_flight=False, retryable=False)
    task_id = db.execute("INSERT INTO background_tasks (task_type, status) VALUES ('waiting', 'pending')").lastrowid
    runner = threading.Thread(target=console.tasks.run_task, args=(task_id, settings.db), kwargs={"interval": 0.1},
                              daemon=True)
    runner.start()
    wait_for(lambda: status_of(db, task_id)[0] == "running", timeout=10, message="the task to run")
    yield task_id
    release.set()
    runner.join(10)


def test_a_long_transaction_neither_fails_a_live_worker_nor_holds_up_requests(client, db, settings, waiting_task):
    settings.stale_seconds = 1
    catalogue_update = console.store.connect(settings.db)
    catalogue_update.execute("BEGIN IMMEDIATE")
    try:
        time.sleep(2.5)   # the heartbeat in the table is now older than the stale limit
        started = time.monotonic()
        r = client.get("/pins/task-status?id=%d" % waiting_task)
        assert r.status == 200 and r.json["status"] == "running"
        assert time.monotonic() - started < 1
        started = time.monotonic()
        r = client.post("/tasks/cancel?id=%d" % waiting_task)
        assert r.status == 503 and r.json["success"] is False and r.header("Retry-After")
        assert "busy" in r.json["error"]
        assert time.monotonic() - started < 2
    finally:
        catalogue_update.execute("ROLLBACK")
        catalogue_update.close()
    assert client.post("/tasks/cancel?id=%d" % waiting_task).json["status"] == "cancelling"
    wait_for(lambda: status_of(db, waiting_task)[0] == "cancelled", timeout=10, message="the cancel")
    assert not os.path.exists(settings.files.heartbeat(waiting_task))


def test_a_worker_whose_heartbeat_file_stopped_too_is_failed(db, settings, sleeper):
    settings.stale_seconds = 30
    task_id = insert(db, pid=sleeper.pid, heartbeat_age=31)
    os.makedirs(settings.task_dir)
    open(settings.files.heartbeat(task_id), "w").close()
    old = time.time() - 31
    os.utime(settings.files.heartbeat(task_id), (old, old))
    assert console.control.mark_stale_tasks(db, settings) == [task_id]


def test_the_busy_answer_speaks_chinese():
    assert console.messages.MESSAGES_ZH["The database is busy with a long write (such as a sync saving the catalogue)."
                                  " Try again in a moment."]


# Cancel ---------------------------------------------------------------------

def test_cancel_stops_a_pending_task_at_once(client, db):
    task_id = insert(db, status="pending")
    r = client.post("/tasks/cancel?id=%d" % task_id)
    assert r.status == 200 and r.json == {"success": True, "status": "cancelled"}
    assert status_of(db, task_id)[0] == "cancelled"


def test_cancel_asks_a_running_task_to_stop(client, db):
    task_id = insert(db, pid=os.getpid(), heartbeat_age=0)
    r = client.post("/tasks/cancel?id=%d" % task_id)
    assert r.status == 200 and r.json == {"success": True, "status": "cancelling"}
    row = console.store.get_task(db, task_id)
    assert row["status"] == "running" and row["cancel_requested_at"]


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_cancel_refuses_a_finished_task(client, db, status):
    task_id = insert(db, status=status)
    r = client.post("/tasks/cancel?id=%d" % task_id)
    assert r.status == 409 and r.json["success"] is False and status in r.json["error"]


def test_cancel_of_an_unknown_task_is_404(client):
    assert client.post("/tasks/cancel?id=77").status == 404


def test_an_ignored_cancel_ends_in_termination_after_the_grace_period(db, settings, sleeper, monkeypatch):
    """The pid is checked first: a process that is not this task's worker is never signalled."""
    settings.cancel_grace_seconds = 10
    task_id = insert(db, pid=sleeper.pid, heartbeat_age=0,
                     cancel_requested_at=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - 11)))
    signalled = []
    monkeypatch.setattr(console.processes, "terminate_process", signalled.append)
    assert console.control.mark_stale_tasks(db, settings) == [task_id]
    assert status_of(db, task_id) == ("cancelled", console.control.CANCEL_FORCED)
    assert signalled == [] and sleeper.poll() is None


def test_it_recognises_a_workers_process(tmp_path):
    fake_worker = tmp_path / "worker.py"
    fake_worker.write_text("import time; time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(fake_worker), "41", "--db", "x.db"])
    try:
        wait_for(lambda: console.processes.is_task_worker(proc.pid, 41), timeout=10, message="the process to start")
        assert not console.processes.is_task_worker(proc.pid, 42)
        assert not console.processes.is_task_worker(os.getpid(), 41)
    finally:
        proc.kill()
        proc.wait()
    assert not console.processes.is_task_worker(proc.pid, 41)


def utc(seconds_ago):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - seconds_ago))


def fake_worker(tmp_path, task_id, ignore_sigterm=False):
    """A live process whose command line is a worker's for ``task_id``; it
    says "ready" once its signal handling is in place."""
    script = tmp_path / "worker.py"
    script.write_text("import signal, sys, time\n"
                      "if sys.argv[2] == 'stubborn': signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                      "print('ready', flush=True)\n"
                      "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script), str(task_id), "stubborn" if ignore_sigterm else "meek"],
                            stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    return proc


def test_a_worker_that_ignores_sigterm_is_killed_and_only_then_its_task_cancelled(db, settings, tmp_path,
                                                                                  monkeypatch):
    """Until its worker is gone a task keeps its place: a sync or a gc must not start beside a dying worker."""
    monkeypatch.setattr(console.processes, "KILL_AFTER_SECONDS", 0.3)
    proc = fake_worker(tmp_path, 43, ignore_sigterm=True)
    try:
        insert(db, id=43, pid=proc.pid, heartbeat_age=0, cancel_requested_at=utc(11), exclusive_group="repository")
        assert console.control.mark_stale_tasks(db, settings) == []
        assert status_of(db, 43)[0] == "running"
        with pytest.raises(console.errors.TaskConflict):
            console.store.create_task(db, "repo_gc")
        assert proc.wait(timeout=10) == -signal.SIGKILL
        assert console.control.mark_stale_tasks(db, settings) == [43]
        assert status_of(db, 43) == ("cancelled", console.control.CANCEL_FORCED)
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def no_proc(monkeypatch, tmp_path):
    """A system without /proc, as macOS and the BSDs are."""
    monkeypatch.setattr(console.processes, "PROC_DIR", str(tmp_path / "no-proc"))


def test_without_proc_a_live_worker_stays_running_until_it_dies(db, settings, tmp_path, no_proc):
    proc = fake_worker(tmp_path, 44)
    try:
        insert(db, id=44, pid=proc.pid, heartbeat_age=0)
        assert console.processes.process_alive(proc.pid)
        assert console.control.mark_stale_tasks(db, settings) == []
        assert console.processes.is_task_worker(proc.pid, 44)            # its command line, from ps
        assert not console.processes.is_task_worker(proc.pid, 45)
        assert not console.processes.is_task_worker(os.getpid(), 44)
    finally:
        proc.kill()
        proc.wait()
    assert not console.processes.process_alive(proc.pid)
    assert console.control.mark_stale_tasks(db, settings) == [44]


def test_without_proc_an_ignored_cancel_still_ends_the_worker(db, settings, tmp_path, no_proc):
    proc = fake_worker(tmp_path, 46)
    try:
        insert(db, id=46, pid=proc.pid, heartbeat_age=0, cancel_requested_at=utc(11))
        assert console.control.mark_stale_tasks(db, settings) == []
        assert proc.wait(timeout=10) == -signal.SIGTERM
        assert console.control.mark_stale_tasks(db, settings) == [46]
    finally:
        proc.kill()
        proc.wait()


class FakeKernel32:
    """The few kernel32 calls the Windows branches make, over a table of
    processes: pid -> creation time (seconds since the epoch)."""

    def __init__(self):
        self.processes = {}
        self.terminated = []
        self.handles = 0

    def OpenProcess(self, access, inherit, pid):
        if pid not in self.processes:
            return 0
        self.handles += 1
        return 100000 + pid

    def CloseHandle(self, handle):
        self.handles -= 1
        return 1

    def GetExitCodeProcess(self, handle, code):
        code._obj.value = 259  # STILL_ACTIVE
        return 1

    def GetProcessTimes(self, handle, created, exited, kernel, user):
        created._obj.value = int((self.processes[handle - 100000] + 11644473600) * 10 ** 7)
        return 1

    def TerminateProcess(self, handle, code):
        self.terminated.append(handle - 100000)
        return 1


@pytest.fixture
def windows(monkeypatch):
    """Windows, as far as the process functions can tell."""
    import ctypes
    import types
    kernel32 = FakeKernel32()
    monkeypatch.setattr(console.processes, "OS_NAME", "nt")
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=kernel32), raising=False)
    return kernel32


def test_on_windows_a_process_is_alive_while_it_is_there(windows):
    windows.processes[500] = time.time()
    assert console.processes.process_alive(500) and not console.processes.process_alive(501)
    assert windows.handles == 0


def test_on_windows_a_worker_is_known_by_when_it_was_created(windows):
    created_at, started_at = utc(100), utc(99)
    windows.processes[500] = time.time() - 99.5     # the worker: between the task's creation and start
    windows.processes[501] = time.time() - 10       # a later process that got a reused pid
    windows.processes[502] = time.time() - 5000     # one that ran long before the task
    assert console.processes.is_task_worker(500, 1, created_at, started_at)
    assert not console.processes.is_task_worker(501, 1, created_at, started_at)
    assert not console.processes.is_task_worker(502, 1, created_at, started_at)
    assert not console.processes.is_task_worker(500, 1)    # nothing to compare with: never taken for the worker
    assert not console.processes.is_task_worker(503, 1, created_at, started_at)
    assert windows.handles == 0


def test_on_windows_a_forced_cancel_terminates_only_the_tasks_own_worker(db, settings, windows):
    windows.processes[500] = time.time() - 99.5
    windows.processes[501] = time.time() - 10
    worker = insert(db, pid=500, age=100, heartbeat_age=0, started_at=utc(99), cancel_requested_at=utc(11))
    reused = insert(db, pid=501, age=100, heartbeat_age=0, started_at=utc(99), cancel_requested_at=utc(11))
    assert console.control.mark_stale_tasks(db, settings) == [reused]
    assert windows.terminated == [500] and status_of(db, worker)[0] == "running"
    del windows.processes[500]      # TerminateProcess has done its work
    assert console.control.mark_stale_tasks(db, settings) == [worker]
    assert status_of(db, worker) == status_of(db, reused) == ("cancelled", console.control.CANCEL_FORCED)


def test_on_windows_workers_are_started_detached_without_a_redundant_flag(windows):
    flags = console.processes.detach_options()["creationflags"]
    assert flags == 0x00000008 | 0x00000200   # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP


# Retry ----------------------------------------------------------------------

@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_retry_starts_a_linked_task_against_the_consoles_node(client, settings, db, spawned, status):
    old = insert(db, status=status, params='{"ipfs_api": "http://127.0.0.1:5999", "cluster_api": "http://old:9094"}')
    r = client.post("/tasks/retry?id=%d" % old)
    assert r.status == 202 and r.json["success"] is True
    new = console.store.get_task(db, r.json["taskId"])
    assert spawned == [new["id"]]
    assert new["retry_of"] == old and new["task_type"] == "pin_sync" and new["status"] == "pending"
    assert json.loads(new["params"]) == {"ipfs_api": settings.ipfs_api}


def test_a_retry_from_the_console_goes_through_the_cluster_set_since(settings, db, spawned):
    """A sync failed before a cluster was set; the operator sets one and presses Retry."""
    old = insert(db, status="failed", params=json.dumps({"ipfs_api": "http://127.0.0.1:5999"}))
    settings.cluster_api = "http://127.0.0.1:9094"
    client = Client(console.web.app.App(settings))
    new = console.store.get_task(db, client.post("/tasks/retry?id=%d" % old).json["taskId"])
    assert json.loads(new["params"]) == {"ipfs_api": settings.ipfs_api, "cluster_api": "http://127.0.0.1:9094"}


def test_a_task_is_retried_once(client, db, spawned):
    old = insert(db, status="failed")
    first = client.post("/tasks/retry?id=%d" % old).json["taskId"]
    console.store.finish_task(db, first, "failed", "pending", "it failed too")
    r = client.post("/tasks/retry?id=%d" % old)
    assert r.status == 409 and r.json["taskId"] == first and "already been retried" in r.json["error"]
    task = client.get("/pins/task-status?id=%d" % old).json
    assert task["retried_by"] == first and task["retryable"] is False
    listed = {item["id"]: item for item in client.get("/api/tasks").json["tasks"]}
    assert listed[old]["retried_by"] == first and listed[old]["retryable"] is False
    assert client.post("/tasks/retry?id=%d" % first).status == 202     # the retry itself can be retried


@pytest.mark.parametrize("status", ["pending", "running", "completed"])
def test_retry_refuses_other_statuses(client, db, spawned, status):
    old = insert(db, status=status, pid=os.getpid(), heartbeat_age=0)
    r = client.post("/tasks/retry?id=%d" % old)
    assert r.status == 409 and r.json["success"] is False
    assert spawned == []


def test_retry_respects_single_flight(client, db, spawned):
    old = insert(db, status="failed")
    running = client.post("/pins/sync").json["taskId"]
    r = client.post("/tasks/retry?id=%d" % old)
    assert r.status == 409 and r.json["taskId"] == running


# Cleanup --------------------------------------------------------------------

def test_cleanup_deletes_old_finished_tasks_and_their_logs(db, settings):
    os.makedirs(settings.task_dir)
    old = {status: insert(db, status=status, age=31 * 86400) for status in ("completed", "failed", "cancelled")}
    keep = [insert(db, status="completed", age=29 * 86400), insert(db, status="pending", age=40 * 86400),
            insert(db, status="running", age=40 * 86400, pid=os.getpid(), heartbeat_age=0)]
    for task_id in list(old.values()) + keep:
        open(settings.files.log(task_id), "w").close()
    assert sorted(console.control.cleanup_tasks(db, settings, 30)) == sorted(old.values())
    left = [row[0] for row in db.execute("SELECT id FROM background_tasks ORDER BY id")]
    assert left == sorted(keep)
    for task_id in old.values():
        assert not os.path.exists(settings.files.log(task_id))
    for task_id in keep:
        assert os.path.exists(settings.files.log(task_id))


def test_cleanup_keeps_a_retry_whose_original_is_deleted(db, settings):
    old = insert(db, status="failed", age=40 * 86400)
    retry = insert(db, status="completed", retry_of=old)
    console.control.cleanup_tasks(db, settings, 30)
    assert console.store.get_task(db, retry)["retry_of"] is None


def test_cleanup_command(settings, db, capsys):
    insert(db, status="completed", age=8 * 86400)
    insert(db, status="completed", age=6 * 86400)
    assert ipfsmaster.main(["cleanup", "--db", settings.db, "--days", "7"]) == 0
    assert "Removed 1 finished task older than 7 days." in capsys.readouterr().out
    assert db.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 1


# The seed's own SQL -----------------------------------------------------------

def test_the_seeds_sql_works_unchanged(db, settings):
    db.execute("INSERT INTO background_tasks (task_type, status) VALUES ('pin_sync', 'pending')")
    rows = db.execute("SELECT * FROM background_tasks WHERE status IN ('pending', 'running')"
                      " ORDER BY created_at DESC").fetchall()
    assert len(rows) == 1 and rows[0]["progress"] == 0 and rows[0]["created_at"]
    db.execute("UPDATE background_tasks SET status='failed', error_message='Manually terminated' WHERE id=1")
    db.execute("DELETE FROM background_tasks WHERE created_at < datetime('now', '-30 days')"
               " AND status IN ('completed', 'failed')")
    assert status_of(db, 1) == ("failed", "Manually terminated")


def test_starting_again_keeps_the_data(settings, db):
    db.execute("INSERT INTO pins (cid, type) VALUES ('bafyX', 'recursive')")
    console.store.init_db(settings.db)
    console.store.init_db(settings.db)
    assert db.execute("SELECT cid FROM pins").fetchall()[0][0] == "bafyX"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == console.store.SCHEMA_VERSION


def test_the_database_is_private(settings):
    assert os.stat(settings.db).st_mode & 0o777 == 0o600


def test_a_task_links_to_its_latest_retry_and_says_if_it_can_be_retried(client, db, spawned):
    old = insert(db, status="failed")
    upload = insert(db, status="failed", task_type="file_upload")
    before = client.get("/pins/task-status?id=%d" % old).json
    assert before["retryable"] is True and before["retried_by"] is None
    assert client.get("/pins/task-status?id=%d" % upload).json["retryable"] is False
    new = client.post("/tasks/retry?id=%d" % old).json["taskId"]
    after = client.get("/pins/task-status?id=%d" % old).json
    assert after["retried_by"] == new
    assert client.get("/pins/task-status?id=%d" % new).json["retryable"] is False  # pending


def test_info_tells_the_pages_the_upload_limit_and_version(client, settings):
    settings.max_upload_bytes = 12345
    info = client.get("/api/info").json
    assert (info["max_upload_bytes"], info["password"], info["version"]) == (12345, False, console.shipped.version())


def test_durations_have_milliseconds(db):
    task_id = db.execute(
        "INSERT INTO background_tasks (task_type, status, started_at, completed_at, started_at_precise,"
        " completed_at_precise) VALUES ('pin_sync', 'completed', '2026-01-01 00:00:01', '2026-01-01 00:00:01',"
        " '2026-01-01 00:00:01.250', '2026-01-01 00:00:01.730')").lastrowid
    task = console.store.task_as_json(console.store.get_task(db, task_id))
    assert task["duration_s"] == 0.48 and task["started_at"] == "2026-01-01 00:00:01"
    old = db.execute("INSERT INTO background_tasks (task_type, status, started_at, completed_at) VALUES"
                     " ('pin_sync', 'completed', '2026-01-01 00:00:01', '2026-01-01 00:01:03')").lastrowid
    assert console.store.task_as_json(console.store.get_task(db, old))["duration_s"] == 62


def test_an_older_database_gets_the_new_columns(tmp_path):
    import sqlite3
    path = str(tmp_path / "old.db")
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE background_tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, task_type TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', progress INTEGER NOT NULL DEFAULT 0,
            total INTEGER NOT NULL DEFAULT 0, current_item TEXT, result TEXT, error_message TEXT,
            created_at TEXT NOT NULL DEFAULT (datetime('now')), started_at TEXT, completed_at TEXT, pid INTEGER,
            params TEXT NOT NULL DEFAULT '{}', heartbeat_at TEXT, cancel_requested_at TEXT, retry_of INTEGER,
            single_flight INTEGER NOT NULL DEFAULT 1);
        INSERT INTO background_tasks (task_type, status) VALUES ('pin_sync', 'completed');
        PRAGMA user_version = 1;""")
    conn.close()
    console.store.init_db(path)
    conn = console.store.connect(path)
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(background_tasks)")}
    assert {"exclusive_group", "started_at_precise", "completed_at_precise"} <= columns
    assert conn.execute("PRAGMA user_version").fetchone()[0] == console.store.SCHEMA_VERSION
    assert conn.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 1
    conn.close()


# Start-up checks and the store's guarantees ------------------------------------

@pytest.mark.parametrize("args,env", [
    (["reap", "--stale-seconds", "0"], {}),
    (["reap", "--stale-seconds", "-5"], {}),
    (["cleanup", "--days", "0"], {}),
    (["reap"], {"IPFSMASTER_CANCEL_GRACE_SECONDS": "-1"}),
    (["reap"], {"IPFSMASTER_REQUEST_TIMEOUT": "0"}),
    (["reap"], {"IPFSMASTER_MAX_UPLOAD_BYTES": "0"}),
    (["--port", "-1"], {}),
    (["--port", "70000"], {}),
])
def test_it_rejects_a_zero_or_negative_setting_at_start(settings, monkeypatch, args, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(console.cli.commands, "serve", lambda settings: pytest.fail("it started"))
    with pytest.raises(SystemExit, match="must be"):
        ipfsmaster.main(args + (["--db", settings.db] if args[0] in ("reap", "cleanup") else []))


def test_it_refuses_an_sqlite_without_upsert(settings, monkeypatch):
    monkeypatch.setattr(console.store.sqlite3, "sqlite_version_info", (3, 22, 0))
    with pytest.raises(SystemExit, match="needs SQLite 3.24.0 or newer, but this Python uses SQLite 3.22.0"):
        console.store.init_db(settings.db)
    with pytest.raises(SystemExit, match="needs SQLite 3.24.0"):
        ipfsmaster.main(["tasks", "--db", settings.db])


def test_a_failing_rollback_does_not_hide_the_error_that_caused_it(db):
    with pytest.raises(ZeroDivisionError):
        with console.store.transaction(db):
            db.execute("INSERT INTO pins (cid, type) VALUES ('bafyX', 'recursive')")
            db.execute("ROLLBACK")   # as SQLite does by itself after some errors
            1 / 0
    assert not db.in_transaction
    assert db.execute("SELECT COUNT(*) FROM pins").fetchone()[0] == 0


def test_cancels_share_one_enforcing_thread(client, db, settings, sleeper):
    settings.cancel_grace_seconds = 1
    tasks = [insert(db, pid=sleeper.pid, heartbeat_age=0) for _ in range(20)]
    before = threading.active_count()
    for task_id in tasks:
        assert client.post("/tasks/cancel?id=%d" % task_id).json["status"] == "cancelling"
    assert threading.active_count() <= before + 1
    # Nobody polls, yet every grace period is enforced (the sleeper is no worker: it is never signalled).
    wait_for(lambda: all(status_of(db, task_id)[0] == "cancelled" for task_id in tasks), timeout=10,
             message="the cancels to be enforced")
    assert status_of(db, tasks[0])[1] == console.control.CANCEL_FORCED and sleeper.poll() is None
