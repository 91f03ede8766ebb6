"""The command line: every command, its output and its exit code."""

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import console.cli.commands
import console.cli.exits
import console.cli.output
import console.processes
import console.registry
import console.settings
import console.shipped
import console.store
import ipfsmaster
from fake_node import FakeNodeHandler
from support import kill_pid, kill_workers, wait_for


def run(*args, env=None):
    """The real command, as a shell script would run it."""
    return subprocess.run([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py")] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120,
                          env=dict(os.environ, **(env or {})))


def insert(db, status, task_type="pin_sync", age_days=0, **extra):
    columns = dict({"task_type": task_type, "status": status, "single_flight": 0,
                    "created_at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() - age_days * 86400))},
                   **extra)
    return db.execute("INSERT INTO background_tasks (%s) VALUES (%s)" % (", ".join(columns), ", ".join("?" * len(columns))),
                      list(columns.values())).lastrowid


def test_every_command_has_help():
    for command in ["serve", "sync", "tasks", "show", "cancel", "retry", "cleanup", "reap", "gc", "node"]:
        out = run(command, "--help")
        assert out.returncode == 0 and b"--db" in out.stdout, command
    top = run("--help")
    assert top.returncode == 0 and b"cleanup" in top.stdout and b"--port" in top.stdout


def test_usage_errors_exit_2():
    assert run("show").returncode == 2
    assert run("show", "abc").returncode == 2
    assert run("frobnicate").returncode == 2


def test_tasks_lists_newest_first_with_filters(settings, db, capsys):
    insert(db, "completed")
    insert(db, "failed", error_message="cannot reach the IPFS API at http://x: connection refused")
    insert(db, "completed", task_type="file_upload")
    assert ipfsmaster.main(["tasks", "--db", settings.db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in listed["tasks"]] == [3, 2, 1] and listed["total"] == 3
    assert ipfsmaster.main(["tasks", "--db", settings.db, "--status", "failed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split() == ["ID", "TYPE", "STATUS", "DONE", "CREATED", "(UTC)", "MESSAGE"]
    assert "connection refused" in lines[1] and "pin_sync" in lines[1]
    assert ipfsmaster.main(["tasks", "--db", settings.db, "--type", "file_upload", "--json"]) == 0
    assert [t["id"] for t in json.loads(capsys.readouterr().out)["tasks"]] == [3]


def test_tasks_says_when_there_are_none(settings, capsys):
    assert ipfsmaster.main(["tasks", "--db", settings.db]) == 0
    assert capsys.readouterr().out.strip() == "No tasks yet."
    assert ipfsmaster.main(["tasks", "--db", settings.db, "--status", "failed"]) == 0
    assert capsys.readouterr().out.strip() == "No tasks match."


def test_it_rejects_bad_filters_and_ages_with_exit_2(settings):
    for args in (["tasks", "--type", "bogus"], ["cleanup", "--days", "-1"], ["cleanup", "--days", "x"],
                 ["pin", "add"], ["pin", "add", "-f", "/nonexistent/list"], ["pin", "rm"],
                 ["pin", "add", "not-a-cid"], ["pin", "rm", "nope"], ["pin", "frob"]):
        out = run(*args, "--db", settings.db)
        assert out.returncode == 2, (args, out.stderr)
    assert run("pin", "add", "not-a-cid", "--db", settings.db).stderr == (
        b"No argument holds a valid CID: 1 argument is not a CID (argument 1).\n")


def test_the_type_filter_names_the_registry(settings):
    help_text = run("tasks", "--help").stdout.decode()
    for name in console.registry.TASK_TYPES:
        assert name in help_text


def test_pin_gc_and_node_start_tasks_and_refuse_like_sync(settings, db, capsys, monkeypatch):
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: 1)
    cid = "QmX8EpP5gNQCvP6rNvvaYP3tep6B1JMSuriTSMXUQ76FsZ"
    assert ipfsmaster.main(["pin", "add", cid, "junk", "--db", settings.db, "--json"]) == 0
    started = json.loads(capsys.readouterr().out)
    assert started["valid"] == 1 and started["invalid_lines"] == [2]
    assert console.store.get_task(db, started["taskId"])["task_type"] == "pin_add"
    assert ipfsmaster.main(["pin", "rm", cid, "--db", settings.db]) == 0
    assert console.store.get_task(db, int(capsys.readouterr().out))["task_type"] == "pin_remove"
    assert ipfsmaster.main(["gc", "--db", settings.db]) == 0
    gc_id = int(capsys.readouterr().out)
    assert ipfsmaster.main(["sync", "--db", settings.db]) == 3
    assert "while a garbage collection runs (task %d)" % gc_id in capsys.readouterr().err
    assert ipfsmaster.main(["gc", "--db", settings.db]) == 3
    assert ipfsmaster.main(["node", "--db", settings.db, "--ipfs-api", "http://127.0.0.1:9"]) == 1
    assert "connection refused" in capsys.readouterr().err


def test_retry_can_use_another_node_address(settings, db, capsys, monkeypatch):
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: 1)
    insert(db, "failed", params=json.dumps({"ipfs_api": "http://wrong:1"}))
    assert ipfsmaster.main(["retry", "1", "--db", settings.db, "--ipfs-api", "http://127.0.0.1:5999"]) == 0
    new = console.store.get_task(db, int(capsys.readouterr().out))
    assert json.loads(new["params"])["ipfs_api"] == "http://127.0.0.1:5999"
    console.store.finish_task(db, new["id"], "failed", "pending")
    # Without the flag it uses the node the task used, whatever the environment says.
    monkeypatch.setenv("IPFSMASTER_IPFS_API", "http://127.0.0.1:5888")
    assert ipfsmaster.main(["retry", str(new["id"]), "--db", settings.db]) == 0
    newer = console.store.get_task(db, int(capsys.readouterr().out))
    assert json.loads(newer["params"])["ipfs_api"] == "http://127.0.0.1:5999"


def test_cleanup_keeps_the_last_completed_sync(settings, db, capsys):
    insert(db, "completed", age_days=90)
    insert(db, "completed", age_days=80)
    insert(db, "failed", age_days=70)
    assert ipfsmaster.main(["cleanup", "--db", settings.db, "--days", "30"]) == 0
    assert [row[0] for row in db.execute("SELECT id FROM background_tasks")] == [2]


def test_show_prints_a_task(settings, db, capsys):
    insert(db, "completed", result='{"added": 5}')
    assert ipfsmaster.main(["show", "1", "--db", settings.db, "--json"]) == 0
    task = json.loads(capsys.readouterr().out)
    assert task["id"] == 1 and task["result"] == {"added": 5} and task["percentage"] == 100
    assert ipfsmaster.main(["show", "1", "--db", settings.db]) == 0
    assert re.search(r"^status +completed$", capsys.readouterr().out, re.M)
    assert ipfsmaster.main(["show", "9", "--db", settings.db]) == 4
    assert "There is no task 9." in capsys.readouterr().err


def test_cancel_and_its_exit_codes(settings, db, capsys):
    insert(db, "pending")
    insert(db, "completed")
    assert ipfsmaster.main(["cancel", "1", "--db", settings.db]) == 0
    assert capsys.readouterr().out.strip() == "cancelled"
    assert ipfsmaster.main(["cancel", "2", "--db", settings.db]) == 3
    assert ipfsmaster.main(["cancel", "99", "--db", settings.db]) == 4


def test_retry_and_its_exit_codes(settings, db, capsys, monkeypatch):
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: 1)
    insert(db, "failed")
    insert(db, "completed")
    insert(db, "failed", task_type="file_upload")
    assert ipfsmaster.main(["retry", "1", "--db", settings.db]) == 0
    new_id = int(capsys.readouterr().out)
    assert console.store.get_task(db, new_id)["retry_of"] == 1
    assert ipfsmaster.main(["retry", "2", "--db", settings.db]) == 3
    assert ipfsmaster.main(["retry", "3", "--db", settings.db]) == 3
    assert ipfsmaster.main(["retry", "1", "--db", settings.db]) == 3  # once only
    assert "Task 1 has already been retried: task %d." % new_id in capsys.readouterr().err


def test_reap_marks_stale_tasks(settings, db, capsys):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    insert(db, "running", pid=proc.pid, started_at=now, heartbeat_at=now)
    assert ipfsmaster.main(["reap", "--db", settings.db]) == 0
    assert capsys.readouterr().out.strip() == "Marked 1 stale task failed."
    assert console.store.get_task(db, 1)["status"] == "failed"


def test_sync_wait_draws_progress_and_succeeds(ipfs_node, tmp_path):
    ipfs_node.add_many([b"cli pin %d" % i for i in range(30)])
    db = str(tmp_path / "cli.db")
    out = run("sync", "--wait", "--db", db, "--ipfs-api", ipfs_node.api_url)
    assert out.returncode == 0, out.stderr
    task_id = int(out.stdout)
    assert b"100%" in out.stderr and b"completed" in out.stderr
    shown = json.loads(run("show", str(task_id), "--db", db, "--json").stdout)
    assert shown["status"] == "completed" and shown["result"]["total"] >= 30


def test_sync_wait_fails_when_the_node_is_down(tmp_path):
    db = str(tmp_path / "cli.db")
    out = run("sync", "--wait", "--db", db, "--ipfs-api", "http://127.0.0.1:9")
    assert out.returncode == 1
    assert b"cannot reach the IPFS API at http://127.0.0.1:9: connection refused" in out.stderr


def test_serve_prints_its_url_and_keeps_files_private(tmp_path):
    db = tmp_path / "served.db"
    proc = subprocess.Popen([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py"), "--port", "0",
                             "--db", str(db), "--ipfs-api", "http://127.0.0.1:9"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=dict(os.environ, IPFSMASTER_PORT="1"))
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("IPFSMaster serving on http://127.0.0.1:")
        url = line.split()[3]
        import urllib.request
        req = urllib.request.Request(url + "pins/sync", method="POST")
        task_id = json.loads(urllib.request.urlopen(req, timeout=10).read())["taskId"]

        def finished():
            task = json.loads(urllib.request.urlopen(url + "pins/task-status?id=%d" % task_id, timeout=10).read())
            return task["status"] == "failed" and task
        wait_for(finished, timeout=30, message="the sync to fail")
        task_dir = console.settings.Settings(db=str(db)).task_dir
        files = [str(db)] + [str(p) for p in tmp_path.glob("served.db-*")] + [
            os.path.join(task_dir, name) for name in os.listdir(task_dir)]
        assert console.settings.TaskFiles(str(db)).log(task_id) in files
        for path in files:
            assert os.stat(path).st_mode & 0o777 == 0o600, path
        assert os.stat(task_dir).st_mode & 0o777 == 0o700
    finally:
        kill_pid(proc.pid)
        proc.wait()


# The common flags, before or after the command ------------------------------------

def test_common_flags_may_come_before_the_command(settings, db):
    insert(db, "failed")
    listed = run("--db", settings.db, "tasks", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["total"] == 1
    assert json.loads(run("--db", settings.db, "--json", "tasks").stdout)["total"] == 1
    assert json.loads(run("--json", "show", "1", "--db", settings.db).stdout)["status"] == "failed"
    # Given on both sides, the one after the command counts.
    assert json.loads(run("--db", "/nonexistent/no.db", "tasks", "--db", settings.db, "--json").stdout)["total"] == 1


def test_the_node_given_before_the_command_is_the_one_used(tmp_path):
    db = str(tmp_path / "cli.db")
    out = run("--ipfs-api", "http://127.0.0.1:9", "--db", db, "sync", "--wait")
    assert out.returncode == 1
    assert b"cannot reach the IPFS API at http://127.0.0.1:9: connection refused" in out.stderr


def test_json_before_a_command_without_json_is_a_usage_error(settings):
    out = run("--json", "cancel", "1", "--db", settings.db)
    assert out.returncode == 2 and b"--json does not apply to cancel" in out.stderr


def test_where_things_are_before_a_command_that_needs_none_is_ignored(settings, tmp_path):
    # As their environment variables are: an alias can give them to every command.
    out = run("--cluster-api", "http://127.0.0.1:9094", "--ipfs-api", "http://127.0.0.1:9", "--db", settings.db, "tasks")
    assert out.returncode == 0 and out.stdout == b"No tasks yet.\n"
    elsewhere = tmp_path / "elsewhere.db"
    out = run("--db", str(elsewhere), "peers")
    assert out.returncode == 2 and b"No IPFS Cluster is set" in out.stderr
    assert elsewhere.exists()


def test_flags_without_a_command_still_serve(settings, monkeypatch):
    served = []
    monkeypatch.setattr(console.cli.commands, "serve", served.append)
    assert console.cli.commands.main(["--db", settings.db, "--port", "7790"]) == 0
    assert console.cli.commands.main(["--port", "7791", "--ipfs-api", "http://127.0.0.1:5999"]) == 0
    assert [(s.db, s.port) for s in served] == [(settings.db, 7790), (console.settings.DEFAULTS["db"], 7791)]
    assert served[1].ipfs_api == "http://127.0.0.1:5999"
    assert run("--version").stdout.startswith(b"IPFSMaster ")
    assert b"Without a command, runs serve" in run("--help").stdout


# Numbers are checked as they are read ----------------------------------------------

def test_a_number_out_of_range_is_a_usage_error_naming_the_flag(settings):
    for args, sentence in ((["cleanup", "--days", "0"], "--days must be at least 1, not 0"),
                           (["cleanup", "--days=-3"], "--days must be at least 1, not -3"),
                           (["cleanup", "--days", "x"], "--days must be a whole number, not 'x'"),
                           (["reap", "--stale-seconds", "0"], "--stale-seconds must be at least 1, not 0"),
                           (["tasks", "--limit", "0"], "--limit must be at least 1, not 0"),
                           (["pin", "add", "--timeout", "0", "bafkqaaa"], "--timeout must be from 1 to 604800, not 0")):
        out = run(*args, "--db", settings.db)
        assert out.returncode == 2, (args, out.stderr)
        assert out.stderr.decode().splitlines()[-1].endswith("error: " + sentence), out.stderr
        assert b"IPFSMASTER_" not in out.stderr


def test_a_usage_error_in_process_is_system_exit_2_with_its_sentence(settings):
    with pytest.raises(SystemExit) as stopped:
        console.cli.commands.main(["cleanup", "--days", "0", "--db", settings.db])
    assert stopped.value.code == 2 and "--days must be at least 1, not 0" in str(stopped.value)


# A closed pipe ---------------------------------------------------------------

def many_tasks(db, number):
    db.executemany("INSERT INTO background_tasks (task_type, status, single_flight) VALUES ('pin_sync', 'completed', 0)",
                   [()] * number)
    db.commit()


def listing(db_path, *args):
    """``ipfsmaster.py tasks`` writing into a real pipe that this test reads."""
    return subprocess.Popen([sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py"), "tasks",
                             "--db", db_path] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_reader_that_stops_early_ends_it_quietly(settings, db):
    many_tasks(db, 3000)
    proc = listing(settings.db, "--limit", "3000")   # far more than a pipe holds: it must wait for the reader
    try:
        first = [proc.stdout.readline() for _ in range(5)]
        proc.stdout.close()                          # as `| head -5` does once it has its lines
        errors = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        kill_pid(proc.pid)
    assert first[0].split()[0] == b"ID" and first[1].split()[0] == b"3000"
    assert errors == b"" and proc.returncode == 141


def test_a_reader_gone_before_the_first_line_ends_it_quietly(settings, db):
    many_tasks(db, 20)
    proc = listing(settings.db)
    try:
        proc.stdout.close()        # the output fits the pipe: it fails only when flushed at the end
        errors = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        kill_pid(proc.pid)
    assert errors == b"" and proc.returncode == 141


# Progress, sizes and sentences, for a person -------------------------------------------

def test_gc_wait_counts_blocks_without_a_total(fake_node, tmp_path):
    fake_node.garbage = ["bafkreigarbage%d" % number for number in range(3)]
    db = str(tmp_path / "cli.db")
    try:
        out = run("gc", "--wait", "--db", db, "--ipfs-api", fake_node.url)
    finally:
        kill_workers(db)
    assert out.returncode == 0, out.stderr
    progress = out.stderr.decode().split("\n")[0].split("\r")[-1]
    assert progress.split() == ["3", "blocks", "completed"]
    assert "/ 0" not in out.stderr.decode()
    assert re.search(r"^bytes_freed +2\.9 KiB$", out.stderr.decode(), re.M)


@pytest.mark.parametrize("task, line", [
    ({"task_type": "repo_gc", "status": "running", "progress": 1, "total": 0, "percentage": 0},
     "1 block  running"),
    ({"task_type": "pin_add", "status": "running", "progress": 1, "total": 4, "percentage": 25},
     "[#######.......................]  25%  1 / 4 items  running"),
    ({"task_type": "pin_add", "status": "completed", "progress": 1, "total": 1, "percentage": 100},
     "[##############################] 100%  1 / 1 item  completed"),
    ({"task_type": "file_upload", "status": "running", "progress": 3 << 20, "total": 12 << 20, "percentage": 25},
     "[#######.......................]  25%  3.0 MiB / 12.0 MiB  running"),
    ({"task_type": "file_upload", "status": "pending", "progress": 0, "total": None, "percentage": 0},
     "0 B  pending"),
])
def test_the_progress_line_speaks_in_the_types_unit(task, line):
    assert console.cli.output.progress_line(task) == line


@pytest.mark.parametrize("number, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
                                          (100000, "97.7 KiB"), (1048575, "1.0 MiB"), (10 ** 10, "9.3 GiB")])
def test_sizes_are_in_binary_units_with_one_decimal(number, text):
    assert console.cli.output.size(number) == text


def test_counts_agree_with_their_nouns(settings, db, tmp_path):
    cid = "QmX8EpP5gNQCvP6rNvvaYP3tep6B1JMSuriTSMXUQ76FsZ"
    pins = tmp_path / "pins.txt"
    pins.write_text("junk\n%s\nmore junk\nand more\n" % cid)
    try:
        one = run("pin", "add", cid, "junk", "--db", settings.db, "--ipfs-api", "http://127.0.0.1:9")
        many = run("pin", "add", "-f", str(pins), "--db", settings.db, "--ipfs-api", "http://127.0.0.1:9")
    finally:
        kill_workers(settings.db)
    assert one.returncode == 0 and one.stderr == b"1 argument is not a CID (argument 2).\n"
    assert many.returncode == 0 and many.stderr == b"3 lines are not CIDs (lines 1, 3, 4).\n"
    pins.write_text("junk\n")
    assert run("pin", "add", "-f", str(pins), "--db", settings.db).stderr == (
        b"No line holds a valid CID: 1 line is not a CID (line 1).\n")
    db.execute("DELETE FROM background_tasks")
    insert(db, "completed", age_days=3)
    insert(db, "completed", age_days=3)
    assert run("cleanup", "--days", "1", "--db", settings.db).stdout == b"Removed 1 finished task older than 1 day.\n"
    insert(db, "failed", age_days=40)
    insert(db, "failed", age_days=40)
    assert run("cleanup", "--db", settings.db).stdout == b"Removed 2 finished tasks older than 30 days.\n"
    assert run("reap", "--db", settings.db).stdout == b"Marked 0 stale tasks failed.\n"


def test_show_prints_fields_a_person_reads(settings, db):
    result = {"blocks_removed": 3, "bytes_freed": 3000, "size_before": 5 << 30, "errors": 1,
              "error_details": [{"error": "could not remove a block"}], "duration_s": 0.25}
    insert(db, "completed", task_type="repo_gc", result=json.dumps(result), progress=3, total=0)
    out = run("show", "1", "--db", settings.db)
    text = out.stdout.decode()
    assert out.returncode == 0 and "None" not in text and "{" not in text
    for line in (r"current_item +\u2014", r"result", r"  bytes_freed +2\.9 KiB", r"  size_before +5\.0 GiB",
                 r"  error_details", r"    - error: could not remove a block", r"  duration_s +0\.25 s",
                 r"created_at +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r"retryable +no"):
        assert re.search("^%s$" % line, text, re.M), (line, text)
    assert json.loads(run("show", "1", "--db", settings.db, "--json").stdout)["result"] == result


def test_node_prints_sizes_and_json_keeps_bytes(fake_node, settings):
    out = run("node", "--db", settings.db, "--ipfs-api", fake_node.url)
    text = out.stdout.decode()
    assert out.returncode == 0, out.stderr
    for line in (r"id +12D3KooWFake", r"agent_version +kubo/0\.43\.1", r"repo_size +97\.7 KiB",
                 r"storage_max +9\.3 GiB", r"peers +0", r"gateway +http://127\.0\.0\.1:8080"):
        assert re.search("^%s$" % line, text, re.M), (line, text)
    overview = json.loads(run("node", "--json", "--db", settings.db, "--ipfs-api", fake_node.url).stdout)
    assert overview["repo_size"] == 100000 and overview["storage_max"] == 10 ** 10


# Partial failures: exit code 5 ---------------------------------------------------------

PINNED = "QmX8EpP5gNQCvP6rNvvaYP3tep6B1JMSuriTSMXUQ76FsZ"
MISSING = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def test_pin_add_wait_exits_5_when_some_cids_failed(fake_node, tmp_path):
    fake_node.have = {PINNED}
    db = str(tmp_path / "cli.db")
    try:
        partial = run("pin", "add", PINNED, MISSING, "--wait", "--db", db, "--ipfs-api", fake_node.url)
        whole = run("pin", "add", PINNED, "--wait", "--db", db, "--ipfs-api", fake_node.url)
        as_json = run("pin", "add", MISSING, "--wait", "--json", "--db", db, "--ipfs-api", fake_node.url)
    finally:
        kill_workers(db)
    assert partial.returncode == 5, partial.stderr
    task_id = int(partial.stdout)
    assert ("Task %d completed, 1 of 2 CIDs failed: %s: pin: block was not found locally (offline)" % (task_id, MISSING)
            in partial.stderr.decode())
    assert whole.returncode == 0, whole.stderr
    assert "failed:" not in whole.stderr.decode()
    assert as_json.returncode == 5
    assert json.loads(as_json.stdout)["result"]["failed"] == 1


class RefusingUnpin(FakeNodeHandler):
    """The fake node, refusing to unpin MISSING for a reason other than its not being pinned."""

    def do_POST(self):
        if self.path.startswith("/api/v0/pin/rm?") and MISSING in self.path:
            self.answer({"Message": "pin/rm: cannot write the pinset: no space left on device", "Code": 0,
                         "Type": "error"}, 500)
        else:
            super().do_POST()


def test_pin_rm_wait_exits_5_when_the_node_refused_a_cid(fake_node, tmp_path):
    fake_node.RequestHandlerClass = RefusingUnpin
    fake_node.add(PINNED, 10)
    fake_node.add(MISSING, 10)
    db = str(tmp_path / "cli.db")
    try:
        out = run("pin", "rm", PINNED, MISSING, "--wait", "--db", db, "--ipfs-api", fake_node.url)
    finally:
        kill_workers(db)
    assert out.returncode == 5, out.stderr
    assert ("completed, 1 of 2 CIDs failed: %s: pin/rm: cannot write the pinset: no space left on device" % MISSING
            in out.stderr.decode())
    assert PINNED not in fake_node.pins and MISSING in fake_node.pins


class ClusterRefusingOneRecovery(BaseHTTPRequestHandler):
    """An IPFS Cluster REST API with two pins in error: it recovers PINNED and refuses MISSING."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(200, b"".join(json.dumps({"cid": cid}).encode() + b"\n" for cid in (PINNED, MISSING)))

    def do_POST(self):
        if MISSING in self.path:
            self.answer(500, json.dumps({"code": 500, "message": "no peer can pin it now"}).encode())
        else:
            info = {"cid": PINNED, "allocations": ["peer-a"], "peer_map": {"peer-a": {"peername": "a", "status": "pinned"}}}
            self.answer(200, json.dumps(info).encode())


@pytest.fixture
def refusing_cluster():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ClusterRefusingOneRecovery)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_recover_wait_exits_5_when_a_pin_could_not_be_recovered(refusing_cluster, tmp_path):
    db = str(tmp_path / "cli.db")
    try:
        out = run("--cluster-api", refusing_cluster, "recover", "--wait", "--db", db, "--ipfs-api", "http://127.0.0.1:9")
    finally:
        kill_workers(db)
    assert out.returncode == 5, out.stderr
    assert "completed, 1 of 2 CIDs failed: %s: " % MISSING in out.stderr.decode()
    assert "no peer can pin it now" in out.stderr.decode()


def test_the_readme_lists_every_exit_code_and_no_other():
    readme = open(os.path.join(console.shipped.HERE, "README.md"), encoding="utf-8").read()
    table = readme.split("\nExit codes, the same for every command:\n", 1)[1].split("\n\n", 1)[0]
    listed = {int(line.split("|")[1]) for line in table.splitlines()[3:]}
    codes = {value for name, value in vars(console.cli.exits).items() if name.isupper()}
    assert listed == codes
