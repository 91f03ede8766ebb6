"""A real Prometheus (Debian's package, /usr/bin/prometheus, or $PROMETHEUS_BIN)
on a free loopback port, scraping one target every second; ended by pid."""

import json
import os
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request

from support import kill_pid, wait_for


def prometheus_binary():
    path = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or "/usr/bin/prometheus"
    if not os.access(path, os.X_OK):
        raise RuntimeError("Prometheus is not installed: run the tests with `sh tests/run.sh` (it installs Debian's"
                           " prometheus package), or set PROMETHEUS_BIN")
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Prometheus:
    def __init__(self, folder, target, bearer=None):
        self.folder = str(folder)
        config = os.path.join(self.folder, "prometheus.yml")
        auth = "    authorization:\n      credentials: %s\n" % json.dumps(bearer) if bearer else ""
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: ipfsmaster\n    scrape_interval: 1s\n"
                    "%s    static_configs:\n      - targets: [\"%s\"]\n" % (auth, target))
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log = open(os.path.join(self.folder, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [prometheus_binary(), "--config.file=" + config, "--storage.tsdb.path=" + os.path.join(self.folder, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port], stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for(self.ready, timeout=60, interval=0.1, message="Prometheus to be ready")

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as answer:
            return json.loads(answer.read())

    def ready(self):
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            return False

    def query(self, expression):
        """{labels as a sorted tuple: value} of an instant query."""
        data = self.get("/api/v1/query?query=" + urllib.parse.quote(expression))["data"]["result"]
        return {tuple(sorted((k, v) for k, v in item["metric"].items() if k not in ("job", "instance", "__name__"))):
                float(item["value"][1]) for item in data}

    def target_health(self):
        targets = self.get("/api/v1/targets")["data"]["activeTargets"]
        return [(target["health"], target.get("lastError", "")) for target in targets]

    def close(self):
        kill_pid(self.proc.pid)
        self.proc.wait()
        self.log.close()
