"""Helpers for the tests: an in-process WSGI client, the live server, waiting."""

import io
import json
import os
import threading
import time
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import ipfsmaster


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
    conn = ipfsmaster.connect(db_path)
    try:
        return {row["cid"]: (row["type"], row["name"], row["size"])
                for row in conn.execute("SELECT cid, type, name, size FROM pins")}
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
            if not ipfsmaster.process_alive(pid):
                return
            time.sleep(0.05)


def kill_workers(db_path):
    """Kill every still-running worker process recorded in this database."""
    if not os.path.exists(db_path):
        return
    conn = ipfsmaster.connect(db_path)
    try:
        rows = conn.execute("SELECT id, pid FROM background_tasks WHERE pid IS NOT NULL").fetchall()
    finally:
        conn.close()
    for task_id, pid in rows:
        if pid != os.getpid() and ipfsmaster.is_task_worker(pid, task_id):
            kill_pid(pid)


class LiveServer:
    """The real threaded server on a free port, in this process; the
    workers it starts are real detached processes."""

    def __init__(self, settings):
        self.settings = settings
        self.db_path = settings.db
        self.server = ipfsmaster.make_server(settings)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def request(self, method, path, body=None, headers=None, timeout=30):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_address[1], timeout=timeout)
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

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        kill_workers(self.db_path)


