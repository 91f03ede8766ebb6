"""The console in one file: ``ipfsmaster.py bundle`` and the zipapp it writes,
copied alone into an empty folder and run there against the real node."""

import json
import os
import stat
import subprocess
import zipfile

import pytest

import console.processes
import console.shipped
import console.store
import console.web.app
from support import BundledServer, Client, build_bundle, clean_environment, installed_pythons, wait_for
from test_upload import multipart

CHECKOUT = console.shipped.HERE
ALLOWED_BESIDE = {"ipfsmaster.pyz", "ipfsmaster.db", "ipfsmaster.db-wal", "ipfsmaster.db-shm", "ipfsmaster-tasks"}
# Written by pytest itself, never by the console.
NOT_THE_CONSOLES = {".git", ".pytest_cache", "test-artifacts"}


def checkout_files():
    """The names the archive must hold, as the checkout has them."""
    names = [name for name in os.listdir(CHECKOUT) if name.endswith(".py")] + ["schema.sql"]
    names += ["static/" + name for name in os.listdir(os.path.join(CHECKOUT, "static"))]
    for parent, folders, files in os.walk(os.path.join(CHECKOUT, "console")):
        folders[:] = [name for name in folders if name != "__pycache__"]
        names += [os.path.relpath(os.path.join(parent, name), CHECKOUT) for name in files if name.endswith(".py")]
    return sorted(names)


def snapshot(folder):
    """{relative path: (size, mtime)} of everything under ``folder``."""
    seen = {}
    for parent, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if f not in NOT_THE_CONSOLES]
        for name in folders + files:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            seen[os.path.relpath(path, folder)] = (info.st_size if not stat.S_ISDIR(info.st_mode) else 0,
                                                   info.st_mtime_ns)
    return seen


# ---------------------------------------------------------------------------
# The archive itself
# ---------------------------------------------------------------------------

def test_two_builds_are_byte_identical(bundled_archive, tmp_path):
    again = build_bundle(tmp_path)
    with open(bundled_archive, "rb") as a, open(again, "rb") as b:
        assert a.read() == b.read()
    assert sorted(os.listdir(str(tmp_path))) == ["ipfsmaster.pyz"]  # no partial file left behind


def test_the_archive_is_an_executable_zipapp_of_the_sources_alone(bundled_archive):
    with open(bundled_archive, "rb") as f:
        assert f.readline() == b"#!/usr/bin/env python3\n"
    assert os.stat(bundled_archive).st_mode & 0o777 == 0o755
    # Run as a program, through the shebang and the python3 on PATH.
    done = subprocess.run([bundled_archive, "--version"], stdout=subprocess.PIPE, env=clean_environment(),
                          cwd=os.path.dirname(bundled_archive), timeout=60)
    assert done.returncode == 0 and done.stdout.startswith(b"IPFSMaster ")
    with zipfile.ZipFile(bundled_archive) as archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        assert names == sorted(names)
        assert names == sorted(checkout_files() + ["VERSION", "__main__.py"])
        assert not [name for name in names if "__pycache__" in name or name.endswith((".pyc", ".pyo"))]
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
            assert info.external_attr >> 16 == 0o100644, info.filename
        for name in checkout_files():
            with open(os.path.join(CHECKOUT, *name.split("/")), "rb") as f:
                assert archive.read(name) == f.read(), name
        assert archive.read("VERSION").decode() == console.shipped.source_version(CHECKOUT) + "\n"


def test_the_version_names_the_commit_of_a_checkout():
    version = console.shipped.source_version(CHECKOUT)
    if not os.path.isdir(os.path.join(CHECKOUT, ".git")):
        assert version == console.shipped.__version__
        return
    assert version.startswith(console.shipped.__version__ + "+g")
    commit = version.split("+g", 1)[1].split(".")[0]
    assert len(commit) == 12 and int(commit, 16) >= 0


def test_a_folder_that_is_no_checkout_has_the_plain_version(tmp_path):
    assert console.shipped.source_version(str(tmp_path)) == console.shipped.__version__


# ---------------------------------------------------------------------------
# Reading its own files from inside the archive
# ---------------------------------------------------------------------------

@pytest.fixture
def from_archive(bundled_archive, monkeypatch, tmp_path):
    """ipfsmaster reading its schema, static files and version from the
    archive, with no checkout to fall back on."""
    monkeypatch.setattr(console.shipped, "ARCHIVE", bundled_archive)
    monkeypatch.setattr(console.shipped, "HERE", str(tmp_path / "no-checkout-here"))
    console.shipped.version.cache_clear()
    yield bundled_archive
    console.shipped.version.cache_clear()


def test_static_files_come_from_the_archive_with_the_same_headers(settings, from_archive, monkeypatch):
    paths = ["/static/" + name[len("static/"):] for name in checkout_files() if name.startswith("static/")]
    paths += ["/pins", "/tasks"]
    bundled = Client(console.web.app.App(settings))
    answers = {path: bundled.get(path) for path in paths}
    monkeypatch.setattr(console.shipped, "ARCHIVE", None)
    monkeypatch.setattr(console.shipped, "HERE", CHECKOUT)
    checkout = Client(console.web.app.App(settings))
    for path, answer in answers.items():
        expected = checkout.get(path)
        assert answer.status == expected.status == 200, path
        assert answer.body == expected.body, path
        assert sorted(answer.headers) == sorted(expected.headers), path


@pytest.mark.parametrize("path", [
    "/static/../schema.sql", "/static/%2e%2e/schema.sql", "/static/..%2fVERSION", "/static//app.css",
    "/static/", "/static/./app.css", "/static/VERSION", "/static/../ipfsmaster.py", "/static/..\\worker.py",
    "/static/app.css%00", "/static/nope.js", "/static/static/app.css",
])
def test_it_rejects_paths_out_of_static_inside_the_archive_too(settings, from_archive, path):
    r = Client(console.web.app.App(settings)).get(path)
    assert r.status == 404 and r.json["success"] is False, path


def test_the_schema_and_version_come_from_the_archive(tmp_path, from_archive):
    with zipfile.ZipFile(from_archive) as archive:
        recorded = archive.read("VERSION").decode().strip()
    assert console.shipped.version() == recorded
    db = str(tmp_path / "fresh.db")
    console.store.init_db(db)
    conn = console.store.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == console.store.SCHEMA_VERSION
        assert conn.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 0
    finally:
        conn.close()


def test_it_knows_a_worker_by_either_command_line():
    archive = [b"/usr/bin/python3", b"-S", b"/srv/ipfsmaster.pyz", b"worker", b"7", b"--db", b"/srv/x.db"]
    checkout = [b"/usr/bin/python3", b"-S", b"/opt/ipfsmaster/worker.py", b"7", b"--db", b"/srv/x.db"]
    assert console.processes.is_worker_command(archive, 7) and console.processes.is_worker_command(checkout, 7)
    assert not console.processes.is_worker_command(archive, 8) and not console.processes.is_worker_command(checkout, 8)
    assert not console.processes.is_worker_command([b"python3", b"ipfsmaster.pyz", b"show", b"7"], 7)
    assert not console.processes.is_worker_command([b"vim", b"7"], 7)


# ---------------------------------------------------------------------------
# Deployed alone, under the oldest and the newest Python here
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def oldest_and_newest():
    """(oldest, newest) Python 3.9+ on this machine, as (version, path)."""
    found = installed_pythons()
    if len(found) < 2:
        seen = ", ".join("Python %d.%d at %s" % (version + (path,)) for version, path in sorted(found.items()))
        reason = ("Only one Python 3.9+ on this machine (%s): running the archive under the oldest and the newest"
                  " Python needs two (pyenv's versions or python3.X on PATH)." % (seen or "none usable"))
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return min(found.items()), max(found.items())


def upload(server, data, name):
    body, headers = multipart([("file", name, data), ("pin", None, b"1")])
    r = server.request("POST", "/files/upload", body=body, headers=headers)
    assert r.status == 202, r.body
    return r.json["taskId"]


def cli_ok(server, *args):
    done = server.cli(*args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout.decode()


@pytest.mark.parametrize("which", ["oldest", "newest"])
def test_the_archive_alone_does_everything_the_checkout_does(which, oldest_and_newest, bundled_archive, ipfs_node,
                                                             silent_node, tmp_path):
    (major, minor), python = oldest_and_newest[0 if which == "oldest" else 1]
    # Built by this Python, it is the same file.
    with open(build_bundle(tmp_path, python), "rb") as mine, open(bundled_archive, "rb") as theirs:
        assert mine.read() == theirs.read(), "Python %d.%d built different bytes" % (major, minor)
    before = snapshot(CHECKOUT)
    cid = ipfs_node.add(b"pinned before the bundled sync, Python %d.%d" % (major, minor))
    server = BundledServer(bundled_archive, tmp_path / "deploy", ipfs_node.api_url, python=python)
    try:
        with zipfile.ZipFile(bundled_archive) as archive:
            version = archive.read("VERSION").decode().strip()
        assert cli_ok(server, "--version") == "IPFSMaster %s\n" % version
        assert server.request("GET", "/api/info").json["version"] == version
        for path in ["/pins", "/tasks", "/static/app.css", "/static/common.js", "/static/favicon.svg"]:
            assert server.request("GET", path).status == 200, path

        # A sync to completion, from a worker the server started from the archive.
        task = server.sync()
        assert task["status"] == "completed", (task, server.log(task["id"]))
        assert cid in {p["cid"] for p in server.request("GET", "/api/pins?limit=1000").json["pins"]}

        # An upload, pinned on the node.
        data = b"uploaded through the bundled console\n" * 100
        task = server.wait_for_task(upload(server, data, "bundled.txt"))
        assert task["status"] == "completed", (task, server.log(task["id"]))
        assert task["result"]["cid"] == ipfs_node.only_hash(data, name="bundled.txt")
        assert ipfs_node.pin_ls().get(task["result"]["cid"]) == "recursive"

        # A sync that never ends (the node does not answer), started on the
        # command line: its worker is the archive's, and a cancel stops it.
        stuck = int(cli_ok(server, "sync", "--ipfs-api", silent_node.url))
        running = wait_for(lambda: (lambda t: t if t["status"] == "running" and t["pid"] else None)(server.task(stuck)),
                           message="the worker to start")
        with open("/proc/%d/cmdline" % running["pid"], "rb") as f:
            argv = f.read().split(b"\0")[:-1]
        assert argv[1:5] == [b"-S", server.archive.encode(), b"worker", str(stuck).encode()]
        assert console.processes.is_task_worker(running["pid"], stuck)
        r = server.request("POST", "/tasks/cancel?id=%d" % stuck)
        assert r.status == 200 and r.json["success"] is True
        assert server.wait_for_task(stuck, timeout=15)["status"] == "cancelled"
        wait_for(lambda: not console.processes.process_alive(running["pid"]), timeout=10, message="the worker to exit")

        # Every command, as from the checkout.
        waited = server.cli("sync", "--wait")
        assert waited.returncode == 0, waited.stderr
        synced = int(waited.stdout)
        listed = json.loads(cli_ok(server, "tasks", "--json"))
        assert [t["id"] for t in listed["tasks"]][:2] == [synced, stuck]
        shown = json.loads(cli_ok(server, "show", str(synced), "--json"))
        assert shown["status"] == "completed" and shown["result"]["total"] >= 1
        retried = int(cli_ok(server, "retry", str(stuck)))
        assert cli_ok(server, "cancel", str(retried)).strip() in ("cancelled", "cancelling")
        assert server.wait_for_task(retried, timeout=15)["status"] == "cancelled"
        assert cli_ok(server, "reap").startswith("Marked ")
        assert cli_ok(server, "cleanup").startswith("Removed 0 ")
        extra = ipfs_node.add(b"pinned and unpinned by the bundled command line, %d.%d" % (major, minor), pin=False)
        assert server.cli("pin", "add", extra, "--wait").returncode == 0
        assert ipfs_node.pin_ls(type="recursive").get(extra) == "recursive"
        assert server.cli("pin", "rm", extra, "--wait").returncode == 0
        assert extra not in ipfs_node.pin_ls(type="recursive")
        assert json.loads(cli_ok(server, "node", "--json"))["agent_version"] == "kubo/0.43.1"
        assert server.cli("show", "999").returncode == 4
        assert "usage: ipfsmaster.pyz" in cli_ok(server, "--help")
        assert server.cli("bundle", "-o", "again.pyz").returncode == 2  # it is the bundle already
    finally:
        server.close()
    assert set(os.listdir(server.folder)) <= ALLOWED_BESIDE, os.listdir(server.folder)
    assert snapshot(CHECKOUT) == before, "the checkout changed while the archive ran"


def test_the_readme_still_starts_with_the_checkout_and_tells_how_to_deploy_one_file():
    with open(os.path.join(CHECKOUT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    first_command = next(line.strip() for line in readme.splitlines() if line.startswith("    "))
    assert first_command == "python3 ipfsmaster.py"
    section = readme.split("\n## Deploy one file\n", 1)[1].split("\n## ", 1)[0]
    assert "python3 ipfsmaster.py bundle" in section and "python3 ipfsmaster.pyz" in section
