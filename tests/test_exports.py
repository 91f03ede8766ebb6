"""Exports: the catalogue (/api/pins/export, `pins export`) and the task list
(/api/tasks/export, `tasks --csv`) as CSV or JSON lines, streamed."""

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from wsgiref.util import setup_testing_defaults

import pytest

import console.exports
import console.shipped
import console.web.app
from support import Client, kill_pid

HEADER = "cid,type,name,size,first_seen_at,synced_at"
ODD_NAMES = {
    "bafy-comma": "a, b",
    "bafy-quote": 'say "hi"',
    "bafy-newline": "line one\nline two",
    "bafy-chinese": "固定的文件，重要",
}


def add_pins(db, rows):
    """(cid, type, name, size) rows straight into the catalogue."""
    db.executemany("INSERT INTO pins (cid, type, name, size) VALUES (?, ?, ?, ?)", rows)


@pytest.fixture
def odd_pins(db):
    add_pins(db, [(cid, "recursive", name, 1000 + i) for i, (cid, name) in enumerate(sorted(ODD_NAMES.items()))])
    add_pins(db, [("bafy-unsized", "direct", "", None)])


def read_csv(body):
    text = body.decode("utf-8")
    assert text.split("\r\n", 1)[0] == HEADER
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_csv_export_quotes_names_and_leaves_unknown_sizes_empty(client, odd_pins):
    r = client.get("/api/pins/export?format=csv&sort=cid")
    assert r.status == 200
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    assert r.header("Content-Disposition") == 'attachment; filename="pins.csv"'
    rows = read_csv(r.body)
    assert [row["cid"] for row in rows] == sorted(list(ODD_NAMES) + ["bafy-unsized"])
    by_cid = {row["cid"]: row for row in rows}
    assert {cid: by_cid[cid]["name"] for cid in ODD_NAMES} == ODD_NAMES
    assert by_cid["bafy-unsized"]["size"] == "" and by_cid["bafy-unsized"]["type"] == "direct"
    assert by_cid["bafy-chinese"]["size"] == "1000"
    assert all(row["first_seen_at"] and row["synced_at"] for row in rows)


def test_the_jsonl_export_is_one_object_a_line_with_null_for_unknown_sizes(client, odd_pins):
    r = client.get("/api/pins/export?format=jsonl&sort=cid")
    assert r.status == 200
    assert r.header("Content-Type") == "application/x-ndjson"
    assert r.header("Content-Disposition") == 'attachment; filename="pins.jsonl"'
    lines = r.body.decode("utf-8").splitlines()
    pins = [json.loads(line) for line in lines]
    assert len(pins) == 5 and all(list(pin) == HEADER.split(",") for pin in pins)
    by_cid = {pin["cid"]: pin for pin in pins}
    assert by_cid["bafy-unsized"]["size"] is None and by_cid["bafy-chinese"]["name"] == "固定的文件，重要"
    assert "固定" in r.body.decode("utf-8")        # UTF-8 as it is, not \\u escapes


def test_the_export_takes_the_filters_of_the_pins_api(client, db):
    add_pins(db, [("bafy-%02d" % i, "recursive", "doc %d" % i if i % 2 else "img %d" % i, i) for i in range(10)])
    db.executemany("INSERT INTO pin_replication (cid, wanted, pinned, in_error) VALUES (?, 2, ?, ?)",
                   [("bafy-03", 1, 1), ("bafy-05", 2, 1), ("bafy-06", 1, 0)])
    rows = read_csv(client.get("/api/pins/export?q=doc&sort=-size").body)
    assert [row["cid"] for row in rows] == ["bafy-09", "bafy-07", "bafy-05", "bafy-03", "bafy-01"]
    rows = read_csv(client.get("/api/pins/export?format=csv&status=error&q=doc&sort=cid").body)
    assert [row["cid"] for row in rows] == ["bafy-03", "bafy-05"]
    pins = [json.loads(line) for line in client.get("/api/pins/export?format=jsonl&status=under-replicated"
                                                    "&sort=name").body.splitlines()]
    assert [pin["cid"] for pin in pins] == ["bafy-03", "bafy-06"]      # "doc 3" before "img 6"
    assert read_csv(client.get("/api/pins/export?q=nothing-like-this").body) == []


@pytest.mark.parametrize("query, word", [
    ("format=xml", "format"), ("format=CSV", "format"), ("status=sideways", "status"), ("sort=colour", "sort"),
    ("format=csv&sort=%00", "sort"),
])
def test_it_rejects_bad_export_arguments_with_a_json_400(client, query, word):
    r = client.get("/api/pins/export?" + query)
    assert r.status == 400 and r.json["success"] is False and word in r.json["error"].lower()


def streamed_answer(settings, path):
    """The app's answer, not yet read: (status, headers, the body's iterator)."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path.partition("?")[0], "QUERY_STRING": path.partition("?")[2],
               "HTTP_HOST": "127.0.0.1"}
    setup_testing_defaults(environ)
    captured = {}
    body = console.web.app.App(settings)(environ, lambda status, headers: captured.update(status=status))
    return captured["status"], body


def test_the_export_is_streamed_in_small_pieces_on_a_connection_it_closes(settings, db, monkeypatch):
    add_pins(db, [("bafy-%06d" % i, "recursive", "name %d, with a comma" % i, i) for i in range(20000)])
    opened = []
    real_connect = console.exports.connect
    monkeypatch.setattr(console.exports, "connect", lambda path: opened.append(real_connect(path)) or opened[-1])
    status, body = streamed_answer(settings, "/api/pins/export?format=csv")
    assert status.startswith("200") and not isinstance(body, (bytes, list))
    pieces = [next(body) for _ in range(3)]
    assert all(0 < len(piece) < 80 * 1024 for piece in pieces)
    assert len(opened) == 1
    body.close()                                  # the reader went away half way
    with pytest.raises(sqlite3.ProgrammingError):
        opened[0].execute("SELECT 1")             # its connection is closed
    status, body = streamed_answer(settings, "/api/pins/export?format=jsonl")
    assert sum(piece.count(b"\n") for piece in body) == 20000
    body.close()
    with pytest.raises(sqlite3.ProgrammingError):
        opened[1].execute("SELECT 1")


def test_a_head_request_opens_nothing(settings, monkeypatch):
    monkeypatch.setattr(console.exports, "connect", lambda path: pytest.fail("a connection was opened"))
    environ = {"REQUEST_METHOD": "HEAD", "PATH_INFO": "/api/pins/export", "QUERY_STRING": "", "HTTP_HOST": "127.0.0.1"}
    setup_testing_defaults(environ)
    assert console.web.app.App(settings)(environ, lambda status, headers: None) == []


@pytest.mark.parametrize("path", ["/api/pins/export", "/api/tasks/export"])
def test_with_a_password_the_exports_need_it(settings, odd_pins, path):
    settings.password = "correct horse battery staple"
    client = Client(console.web.app.App(settings))
    r = client.get(path)
    assert r.status == 401 and r.json["success"] is False
    r = client.get(path, headers={"Authorization": "Bearer correct horse battery staple"})
    assert r.status == 200 and r.body.startswith(b"cid,") == (path == "/api/pins/export")


def add_task(db, task_type, status, **extra):
    columns = dict({"task_type": task_type, "status": status, "single_flight": 0}, **extra)
    return db.execute("INSERT INTO background_tasks (%s) VALUES (%s)" % (", ".join(columns), ",".join("?" * len(columns))),
                      list(columns.values())).lastrowid


@pytest.fixture
def some_tasks(db):
    first = add_task(db, "pin_sync", "completed", progress=150, total=150, started_at="2026-01-02 03:04:05",
                     completed_at="2026-01-02 03:04:15", result=json.dumps({"total": 150}))
    second = add_task(db, "pin_add", "completed", progress=5, total=5, result=json.dumps({"done": 3, "failed": 2}),
                      started_at="2026-01-02 04:00:00", completed_at="2026-01-02 04:00:02")
    third = add_task(db, "pin_sync", "failed", error_message='cannot reach "node", really\nat all')
    return first, second, third


def test_the_task_export_lists_every_task_newest_first(client, some_tasks):
    first, second, third = some_tasks
    r = client.get("/api/tasks/export?format=csv")
    assert r.status == 200
    assert r.header("Content-Type") == "text/csv; charset=utf-8"
    assert r.header("Content-Disposition") == 'attachment; filename="tasks.csv"'
    text = r.body.decode("utf-8")
    assert text.split("\r\n", 1)[0] == ",".join(console.exports.TASK_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [int(row["id"]) for row in rows] == [third, second, first]
    assert rows[2]["percentage"] == "100" and rows[2]["duration_s"] == "10.0" and rows[2]["partial"] == "false"
    assert rows[1]["partial"] == "true"
    assert rows[0]["error_message"] == 'cannot reach "node", really\nat all' and rows[0]["started_at"] == ""


def test_the_task_export_takes_the_filters_of_the_task_list(client, some_tasks):
    first, second, third = some_tasks
    for query, ids in (("status=completed", [second, first]), ("type=pin_sync", [third, first]),
                       ("type=pin_sync&status=failed", [third]), ("type=repo_gc", [])):
        rows = list(csv.DictReader(io.StringIO(client.get("/api/tasks/export?" + query).text, newline="")))
        assert [int(row["id"]) for row in rows] == ids, query


@pytest.mark.parametrize("query", ["format=jsonl", "status=done", "type=nothing"])
def test_it_rejects_bad_task_export_arguments_with_a_json_400(client, query):
    r = client.get("/api/tasks/export?" + query)
    assert r.status == 400 and r.json["success"] is False


# ---------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------

def command(*args):
    return [sys.executable, os.path.join(console.shipped.HERE, "ipfsmaster.py")] + list(args)


def run(*args):
    return subprocess.run(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)


def test_pins_export_prints_the_same_csv_as_the_web(settings, client, odd_pins):
    done = run("pins", "export", "--db", settings.db, "--sort", "cid")
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout == client.get("/api/pins/export?sort=cid").body
    done = run("pins", "export", "--db", settings.db, "--format", "jsonl", "-q", "固定")
    assert done.returncode == 0
    assert [json.loads(line)["cid"] for line in done.stdout.splitlines()] == ["bafy-chinese"]


def test_pins_export_writes_a_file_whole(settings, client, db, tmp_path):
    add_pins(db, [("bafy-a", "recursive", "x", 1)])
    db.execute("INSERT INTO pin_replication (cid, wanted, pinned, in_error) VALUES ('bafy-a', 2, 1, 1)")
    add_pins(db, [("bafy-b", "recursive", "y", 2)])
    target = tmp_path / "out.csv"
    done = run("pins", "export", "--db", settings.db, "--status", "error", "-o", str(target))
    assert done.returncode == 0 and done.stdout == b""
    assert [row["cid"] for row in read_csv(target.read_bytes())] == ["bafy-a"]
    assert [name for name in os.listdir(tmp_path) if name.startswith("out")] == ["out.csv"]     # no .part left
    done = run("pins", "export", "--db", settings.db, "-o", str(tmp_path / "no-such-folder" / "out.csv"))
    assert done.returncode == 2 and b"Cannot write" in done.stderr


@pytest.mark.parametrize("args", [["--format", "xml"], ["--status", "sideways"], ["--sort", "colour"], []])
def test_pins_export_rejects_bad_flags_with_exit_2(settings, args):
    done = run("pins", *(["export"] + args if args else []), "--db", settings.db)
    assert done.returncode == 2


def test_pins_export_to_a_reader_that_stops_early_ends_quietly(settings, db):
    add_pins(db, [("bafy-%06d" % i, "recursive", "name %d" % i, i) for i in range(50000)])
    proc = subprocess.Popen(command("pins", "export", "--db", settings.db), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        first = [proc.stdout.readline() for _ in range(3)]
        proc.stdout.close()                       # as `| head -3` does
        errors = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        kill_pid(proc.pid)
    assert first[0] == HEADER.encode() + b"\r\n"
    assert errors == b"" and proc.returncode == 141


def test_tasks_csv_prints_the_same_csv_as_the_web(settings, client, some_tasks):
    done = run("tasks", "--db", settings.db, "--csv", "--type", "pin_sync")
    assert done.returncode == 0
    assert done.stdout == client.get("/api/tasks/export?type=pin_sync").body
    assert run("tasks", "--db", settings.db, "--csv", "--json").returncode == 2
