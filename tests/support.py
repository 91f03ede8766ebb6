"""Helpers for the tests: an in-process WSGI client, the live server, the
bundled console run from its own folder, waiting."""

import glob
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import console.processes
import console.registry
import console.shipped
import console.store
import console.tasks
import console.web.server

# The fixtures that start an IPFS node (or a cluster): their tests carry the
# `node` marker (see conftest.py), which tests/other_pythons.sh leaves out.
NODE_FIXTURES = {"ipfs_node", "own_ipfs_node", "isolated_ipfs_node", "second_ipfs_node", "second_isolated_ipfs_node",
                 "cluster", "small_node"}

# The test cluster's REST API password (see the cluster fixture in conftest.py).
CLUSTER_USER, CLUSTER_PASSWORD = "operator", "cluster-s3cret"


class WSGIResponse:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self):
        return self.body.decode("utf-8")

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Client:
    """Calls the app in-process, through wsgiref's validator."""

    def __init__(self, app):
        self.app = validator(app)

    def request(self, method, path, body=b"", headers=None, stream=None):
        path, _, query = path.partition("?")
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
                   "wsgi.input": stream or io.BytesIO(body), "CONTENT_LENGTH": str(len(body)),
                   "SCRIPT_NAME": "", "HTTP_HOST": "127.0.0.1:8080"}
        for name, value in (headers or {}).items():
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR"):
                environ[key] = value
            else:
                environ["HTTP_" + key] = value
        setup_testing_defaults(environ)
        captured = {}

        def start_response(status, response_headers, exc_info=None):
            captured["status"] = int(status.split()[0])
            captured["headers"] = response_headers
            return lambda data: None

        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            result.close()
        return WSGIResponse(captured["status"], captured["headers"], body)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)


def wait_for(predicate, timeout=30.0, interval=0.05, message="condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message))
        time.sleep(interval)


def catalogue(db_path):
    """{cid: (type, name, size)} of the pins in a database."""
    conn = console.store.connect(db_path)
    try:
        return {row["cid"]: (row["type"], row["name"], row["size"])
                for row in conn.execute("SELECT cid, type, name, size FROM pins")}
    finally:
        conn.close()


def run_here(settings, task_id):
    """Run a pending task's worker in this process, to its end; returns the task as JSON."""
    console.tasks.run_task(task_id, settings.db, interval=0.05)
    conn = console.store.connect(settings.db)
    try:
        return console.store.task_as_json(console.store.get_task(conn, task_id))
    finally:
        conn.close()


def kill_pid(pid):
    """End a process the test started, by pid, and its session."""
    import signal
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if not console.processes.process_alive(pid):
                return
            time.sleep(0.05)


def kill_workers(db_path):
    """Kill every still-running worker process recorded in this database."""
    if not os.path.exists(db_path):
        return
    conn = console.store.connect(db_path)
    try:
        rows = conn.execute("SELECT id, pid FROM background_tasks WHERE pid IS NOT NULL").fetchall()
    finally:
        conn.close()
    for task_id, pid in rows:
        if pid != os.getpid() and console.processes.is_task_worker(pid, task_id):
            kill_pid(pid)


class ServerClient:
    """Requests to a console at ``self.port`` whose database is ``self.db_path``."""

    def request(self, method, path, body=None, headers=None, timeout=30):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return WSGIResponse(resp.status, resp.getheaders(), data)
        finally:
            conn.close()

    def task(self, task_id):
        return self.request("GET", "/pins/task-status?id=%d" % task_id).json

    def wait_for_task(self, task_id, statuses=("completed", "failed", "cancelled"), timeout=120):
        return wait_for(lambda: (lambda t: t if t["status"] in statuses else None)(self.task(task_id)),
                        timeout=timeout, interval=0.1, message="task %d to reach %s" % (task_id, statuses))

    def sync(self, timeout=120):
        """Start a pin sync and wait for its end; returns the task."""
        r = self.request("POST", "/pins/sync")
        assert r.status == 202, r.body
        return self.wait_for_task(r.json["taskId"], timeout=timeout)

    def log(self, task_id):
        return self.request("GET", "/tasks/log?id=%d" % task_id).text


class LiveServer(ServerClient):
    """The real threaded server on a free port, in this process; the
    workers it starts are real detached processes."""

    def __init__(self, settings):
        self.settings = settings
        self.db_path = settings.db
        self.server = console.web.server.make_server(settings)
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        kill_workers(self.db_path)


class SilentNode:
    """An "IPFS API" that takes connections and never answers: a sync against
    it runs, listing, until it is cancelled."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


def swarm_connect(node, other):
    """Connect one online test node to another over loopback; returns ``other``'s peer id."""
    other_id = other.rpc("id")["ID"]
    node.rpc("swarm/connect", arg="/ip4/127.0.0.1/tcp/%d/p2p/%s" % (other.swarm_port, other_id))
    return other_id


class StallingProxy:
    """A TCP proxy in front of the real node that forwards what the worker
    sends until ``limit`` bytes have gone through, then holds the rest
    until ``release()``: an upload is then surely mid-stream when a test
    acts on it, however fast the machine. Answers flow freely."""

    def __init__(self, target_url, limit):
        parts = target_url.split("//", 1)[1].split(":")
        self.target = (parts[0], int(parts[1]))
        self.limit = limit
        self.forwarded = 0
        self.released = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.connections += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source, sink, held):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if held and self.forwarded + len(data) > self.limit:
                    self.released.wait()
                self.forwarded += len(data) if held else 0
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def release(self):
        self.released.set()

    def close(self):
        self.release()
        self.sock.close()
        for sock in self.connections:
            sock.close()


# ---------------------------------------------------------------------------
# The console in one file (ipfsmaster.pyz)
# ---------------------------------------------------------------------------

def clean_environment(**extra):
    """This environment without the console's settings or Python's search
    paths (nothing may lead back to the checkout), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IPFSMASTER_", "PYTHON"))}
    env.update(extra)
    return env


def build_bundle(folder, python=sys.executable):
    """Run ``ipfsmaster.py bundle`` from the checkout, writing into ``folder``; the archive's path."""
    output = os.path.join(str(folder), "ipfsmaster.pyz")
    done = subprocess.run([python, os.path.join(console.shipped.HERE, "ipfsmaster.py"), "bundle", "-o", output],
                          cwd=str(folder), env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    return output


def installed_pythons():
    """{(major, minor): path} of every Python 3.9+ with sqlite3 here: this
    one, pyenv's and each ``python3.X`` on PATH."""
    pyenv = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = [sys.executable] + sorted(glob.glob(os.path.join(pyenv, "versions", "*", "bin", "python3")))
    candidates += [path for path in (shutil.which("python3.%d" % minor) for minor in range(9, 40)) if path]
    found = {}
    for path in candidates:
        try:
            out = subprocess.run([path, "-c", "import sqlite3, sys; print(*sys.version_info[:2])"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=30, check=True).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        version = tuple(int(part) for part in out.split())
        if version >= (3, 9):
            found.setdefault(version, path)
    return found


class BundledServer(ServerClient):
    """The zipapp copied alone into an empty folder and served from there, the
    way a user deploys it: ``python3 ipfsmaster.pyz --port 0`` in that folder."""

    def __init__(self, archive, folder, ipfs_api, python=sys.executable, output=None, password=None):
        os.makedirs(str(folder))
        self.folder = str(folder)
        self.archive = shutil.copy(archive, self.folder)
        self.python = python
        self.db_path = os.path.join(self.folder, "ipfsmaster.db")
        self.env = clean_environment(IPFSMASTER_IPFS_API=ipfs_api)
        self.output = str(output or os.path.join(os.path.dirname(self.folder), "server-output.txt"))
        with open(self.output, "wb") as out:
            env = dict(self.env, IPFSMASTER_PASSWORD=password) if password else self.env
            self.proc = subprocess.Popen([python, self.archive, "--port", "0"], cwd=self.folder, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        try:
            line = wait_for(self._serving_line, timeout=30, message="the bundled console to start")
        except AssertionError:
            self.close()
            raise AssertionError("the bundled console did not start:\n" + self.printed())
        self.url = line.split()[3].rstrip("/")
        self.port = int(self.url.rsplit(":", 1)[1])

    def printed(self):
        with open(self.output, encoding="utf-8", errors="replace") as f:
            return f.read()

    def _serving_line(self):
        if self.proc.poll() is not None:
            raise AssertionError("the bundled console exited with %s:\n%s" % (self.proc.returncode, self.printed()))
        return next((line for line in self.printed().splitlines() if " serving on http://" in line), None)

    def cli(self, *args, timeout=120):
        """``python3 ipfsmaster.pyz ARGS`` in the archive's folder; the finished process."""
        return subprocess.run([self.python, self.archive] + list(args), cwd=self.folder, env=self.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def close(self):
        kill_pid(self.proc.pid)
        self.proc.wait()
        kill_workers(self.db_path)


def register_task_type(monkeypatch, name, run, **entry):
    """Add a task type the way the README says: a module under console/tasks
    with its ``run(ctx)``, and its registry entry (``entry``: TaskType's fields)."""
    module = types.ModuleType("console.tasks." + name)
    module.run = run
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(console.registry.TASK_TYPES, name, console.registry.TaskType(**entry))


def running(node):
    """A fixture's body: ``node`` started, then stopped by its pid in teardown."""
    node.start()
    try:
        yield node
    finally:
        node.stop()
