"""A throw-away Kubo daemon for the integration tests.

The binary is Kubo v0.43.1: ``$IPFS_BIN``, which ``sh tests/run.sh`` sets after
building it once with Go (see tests/get_kubo.sh), or an ``ipfs`` of that
version on PATH. The node is started the way its users start it, ``ipfs
init`` and then ``ipfs daemon``, in a repository under a folder the caller
gives (a pytest tmp dir), with networking off: the ``test`` profile (no
bootstrap peers, no mDNS, no AutoTLS, no AutoConf fetch, swarm on loopback
only), ``--offline`` (no swarm connections, no routing), and telemetry off.
The RPC API and the gateway listen on free loopback ports.

Standard library only.
"""

import base64
import glob
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid

KUBO_VERSION = "0.43.1"


class KuboMissing(RuntimeError):
    pass


def kubo_version(path):
    """The version an ``ipfs`` binary reports ('0.43.1'), or None."""
    try:
        out = subprocess.run([path, "version", "--number"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             stdin=subprocess.DEVNULL, timeout=30, check=False).stdout
    except OSError:
        return None
    return out.decode("ascii", "replace").strip() or None


def find_kubo():
    """The Kubo binary to test with: $IPFS_BIN, else an ipfs of the right version on PATH."""
    path = os.environ.get("IPFS_BIN")
    if path:
        if not os.access(path, os.X_OK):
            raise KuboMissing("IPFS_BIN=%s is not an executable file" % path)
        return path
    path = shutil.which("ipfs")
    if path and kubo_version(path) == KUBO_VERSION:
        return path
    raise KuboMissing("Kubo %s is not available: run the tests with `sh tests/run.sh` (it builds Kubo once),"
                      " or set IPFS_BIN to an ipfs binary" % KUBO_VERSION)


def stop_process(proc, timeout):
    """End a daemon started in a session of its own: SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def log_tail(path, size=4000):
    """The end of a daemon's log, for an error message ('' if there is none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class IPFSError(Exception):
    """A non-2xx answer from the RPC API."""

    def __init__(self, status, body):
        self.status = status
        self.body = body
        try:
            self.message = json.loads(body).get("Message", body)
        except (ValueError, AttributeError):
            self.message = body
        super().__init__("HTTP %s: %s" % (status, self.message))


class IPFSNode:
    """One Kubo daemon with its repository under ``base_dir``.

    ``ports``: {"api": N, "gateway": N, "swarm": N} to use fixed ports
    (Kubo's defaults are 5001, 8080 and 4001); free loopback ports otherwise.
    ``config``: a function that may change the repository's config (a dict)
    before each start, e.g. to set ``API.Authorizations``.
    ``auth``: the Authorization header the helpers below send.
    ``offline=False``: started online but isolated (no routing, no bootstrap
    peers, no discovery, swarm on 127.0.0.1 only), so that it never dials
    out, yet asking it for a block it lacks waits (for a time-out) instead of
    failing at once as ``--offline`` does.
    """

    def __init__(self, base_dir, startup_timeout=60.0, ports=None, config=None, auth=None, offline=True):
        self.binary = find_kubo()
        self.base_dir = os.path.abspath(str(base_dir))
        self.repo = os.path.join(self.base_dir, "ipfs-repo")
        self.log_path = os.path.join(self.base_dir, "ipfs-daemon.log")
        self.startup_timeout = startup_timeout
        self.fixed_ports = ports
        self.configure = config
        self.offline = offline
        self.auth = auth
        self.proc = None
        self.pid = None
        self.api_port = None
        self.gateway_port = None
        self.swarm_port = None
        self.api_url = None
        self.gateway_url = None
        self._conn = None

    # -- lifecycle ---------------------------------------------------------

    def env(self):
        """The environment to run ``ipfs`` with, against this repository."""
        env = dict(os.environ, IPFS_PATH=self.repo, IPFS_TELEMETRY="off")
        env.pop("IPFS_BIN", None)
        return env

    def command(self, *args, timeout=60):
        """Run ``ipfs ARGS`` against the repository (the daemon need not run); returns stdout."""
        out = subprocess.run([self.binary] + list(args), env=self.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        if out.returncode != 0:
            raise RuntimeError("ipfs %s failed (exit %s):\n%s" % (
                " ".join(args), out.returncode, out.stdout.decode("utf-8", "replace")[-4000:]))
        return out.stdout.decode("utf-8", "replace")

    def _write_config(self, ports):
        path = os.path.join(self.repo, "config")
        with open(path) as f:
            cfg = json.load(f)
        addrs = cfg["Addresses"]
        addrs["API"] = "/ip4/127.0.0.1/tcp/%d" % ports["api"]
        addrs["Gateway"] = "/ip4/127.0.0.1/tcp/%d" % ports["gateway"]
        addrs["Swarm"] = ["/ip4/127.0.0.1/tcp/%d" % ports["swarm"]]
        addrs["Announce"] = []
        plugins = cfg.get("Plugins") or {}
        plugins["Plugins"] = dict(plugins.get("Plugins") or {}, telemetry={"Config": {"Mode": "off"}})
        cfg["Plugins"] = plugins
        if not self.offline:
            cfg["Bootstrap"] = []
            cfg["Peering"] = {"Peers": []}
            cfg["Routing"] = dict(cfg.get("Routing") or {}, Type="none")
            cfg["Discovery"] = {"MDNS": {"Enabled": False}}
            swarm = cfg.setdefault("Swarm", {})
            swarm.update(DisableNatPortMap=True, RelayClient={"Enabled": False}, RelayService={"Enabled": False})
            cfg["AutoNAT"] = {"ServiceMode": "disabled"}
        if self.configure is not None:
            self.configure(cfg)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=2)
        os.replace(tmp, path)

    def start(self):
        os.makedirs(self.base_dir, exist_ok=True)
        if not os.path.exists(os.path.join(self.repo, "config")):
            self.command("init", "--empty-repo", "--profile=test")
        deadline = time.monotonic() + self.startup_timeout
        # A free port can be taken by someone else before the daemon binds
        # it; Kubo then exits, and the start is tried again on other ports.
        # A restart keeps the ports it had.
        for attempt in range(3):
            ports = self.fixed_ports or (
                {"api": self.api_port, "gateway": self.gateway_port, "swarm": self.swarm_port}
                if self.api_port else {"api": free_port(), "gateway": free_port(), "swarm": free_port()})
            self._write_config(ports)
            self.api_port, self.gateway_port, self.swarm_port = ports["api"], ports["gateway"], ports["swarm"]
            self.api_url = "http://127.0.0.1:%d" % self.api_port
            self.gateway_url = "http://127.0.0.1:%d" % self.gateway_port
            log = open(self.log_path, "ab")
            log_start = log.tell()
            try:
                self.proc = subprocess.Popen([self.binary, "daemon"] + (["--offline"] if self.offline else []),
                                             env=self.env(), stdout=log,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             start_new_session=True)
                self.pid = self.proc.pid
            finally:
                log.close()
            if self._wait_ready(deadline, log_start):
                return self
            if self.fixed_ports:
                break
            self.api_port = None
        raise RuntimeError("Kubo could not bind its ports; log %s ends with:\n%s" % (self.log_path, log_tail(self.log_path)))

    def _wait_ready(self, deadline, log_start):
        """True once /api/v0/version answers, False if a port was taken."""
        while True:
            if self.proc.poll() is not None:
                rc, self.proc = self.proc.returncode, None
                with open(self.log_path, "rb") as f:
                    f.seek(log_start)
                    if b"address already in use" in f.read():
                        return False
                raise RuntimeError("Kubo exited with %s during start-up; log %s ends with:\n%s"
                                   % (rc, self.log_path, log_tail(self.log_path)))
            try:
                self.request("version", timeout=2)
                return True  # any answer, even a refusal for want of credentials
            except (OSError, http.client.HTTPException):
                self._close_conn()
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("Kubo did not answer /api/v0/version on %s within %.0f s; log %s ends with:\n%s"
                                   % (self.api_url, self.startup_timeout, self.log_path, log_tail(self.log_path)))
            time.sleep(0.1)

    def stop(self, timeout=10.0):
        self._close_conn()
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP --------------------------------------------------------------

    def _close_conn(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, cmd, params=None, body=None, headers=None, timeout=60):
        """POST /api/v0/<cmd>; returns (status, headers, body bytes).

        Uses one persistent connection, reopened once if the server closed it.
        ``params`` is a dict or a list of pairs (repeat a key for several
        ``arg`` values)."""
        if params:
            items = params.items() if isinstance(params, dict) else params
            items = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in items]
            query = "?" + urllib.parse.urlencode(items)
        else:
            query = ""
        headers = dict(headers or {})
        if self.auth:
            headers.setdefault("Authorization", self.auth)
        path = "/api/v0/" + cmd + query
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=timeout)
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
            try:
                self._conn.request("POST", path, body=body, headers=headers)
                resp = self._conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self._close_conn()
                if attempt:
                    raise
                continue
            except Exception:
                self._close_conn()
                raise
            if resp.will_close:
                self._close_conn()
            return resp.status, resp.headers, data

    def rpc(self, cmd, _timeout=60, **params):
        """Call a command, raise IPFSError on non-2xx, return parsed JSON.

        Newline-delimited JSON answers (streams) come back as a list.
        Use ``arg=`` for the positional argument; keyword names with ``_`` are
        sent with ``-`` (only_hash -> only-hash)."""
        params = {k.replace("_", "-"): v for k, v in params.items()}
        status, _, data = self.request(cmd, params, timeout=_timeout)
        return self._parse(status, data)

    @staticmethod
    def _parse(status, data):
        if not 200 <= status < 300:
            raise IPFSError(status, data.decode("utf-8", "replace"))
        text = data.decode("utf-8").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return [json.loads(line) for line in text.splitlines() if line]

    # -- helpers -----------------------------------------------------------

    @staticmethod
    def multipart(files):
        """A multipart/form-data body with a ``file`` part for each (name, bytes)."""
        boundary = uuid.uuid4().hex
        parts = []
        for name, data in files:
            parts.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                          "Content-Type: application/octet-stream\r\n\r\n"
                          % (boundary, urllib.parse.quote(name))).encode())
            parts.append(data)
            parts.append(b"\r\n")
        parts.append(("--%s--\r\n" % boundary).encode())
        return b"".join(parts), {"Content-Type": "multipart/form-data; boundary=" + boundary}

    def _add(self, files, **params):
        params = {k.replace("_", "-"): v for k, v in params.items()}
        params.setdefault("cid-version", 0)
        body, headers = self.multipart(files)
        status, _, data = self.request("add", params, body, headers, timeout=300)
        out = self._parse(status, data)
        if isinstance(out, dict):
            out = [out]
        for entry in out:
            if "Hash" not in entry:
                raise IPFSError(status, json.dumps(entry))
        return out

    def add(self, data, name="f", pin=True, **params):
        """Add one file, return its CID (CIDv0, like ``ipfs add``)."""
        return self._add([(name, data)], pin=pin, **params)[-1]["Hash"]

    def add_many(self, datas, pin=True):
        """Add several files in one request, each on its own (no wrapping
        folder) and pinned; returns their CIDs in order."""
        files = [("f%d" % i, d) for i, d in enumerate(datas)]
        out = self._add(files, pin=pin)
        by_name = {e["Name"]: e["Hash"] for e in out}
        if len(by_name) != len(files):
            raise RuntimeError("add returned %d entries for %d files" % (len(by_name), len(files)))
        return [by_name[name] for name, _ in files]

    def add_folder(self, name, files, **params):
        """Add {file name: bytes} as the folder ``name`` (pinned); returns the folder's CID."""
        out = self._add([("%s/%s" % (name, file_name), data) for file_name, data in files.items()], **params)
        return [entry["Hash"] for entry in out if entry["Name"] == name][0]

    def only_hash(self, data, name="f", **params):
        """The CID ``data`` would get, without storing it."""
        return self._add([(name, data)], only_hash=True, pin=False, **params)[-1]["Hash"]

    def dag_put(self, value, pin=True, codec="dag-cbor"):
        """Store a DAG node (JSON in, ``codec`` stored) and return its CID."""
        body, headers = self.multipart([("node.json", json.dumps(value).encode())])
        status, _, data = self.request("dag/put", {"store-codec": codec, "input-codec": "dag-json",
                                                   "pin": "true" if pin else "false"}, body, headers)
        return self._parse(status, data)["Cid"]["/"]

    def block_put_many(self, blocks, pin=True):
        """Store raw blocks in one request; returns their CIDs in order."""
        body, headers = self.multipart([("b%d" % i, b) for i, b in enumerate(blocks)])
        status, _, data = self.request("block/put", {"pin": "true" if pin else "false", "cid-codec": "raw"},
                                       body, headers, timeout=600)
        out = self._parse(status, data)
        out = [out] if isinstance(out, dict) else out
        return [entry["Key"] for entry in out]

    def pin_ls(self, type="all"):
        """{cid: pin type} ("recursive", "direct", "indirect"); pass
        type="recursive" to see only what was pinned explicitly."""
        out = self.rpc("pin/ls", type=type)
        return {cid: v["Type"] for cid, v in (out or {}).get("Keys", {}).items()}

    def pin_rm(self, cid):
        return self.rpc("pin/rm", arg=cid)

    def pin_add(self, cid, **params):
        return self.rpc("pin/add", arg=cid, **params)

    def gateway_address(self):
        """The gateway's host:port, as the node reports it over RPC."""
        value = self.rpc("config", arg="Addresses.Gateway")["Value"]
        value = value[0] if isinstance(value, list) else value
        match = re.fullmatch(r"/ip[46]/([^/]+)/tcp/(\d+)", value)
        return "%s:%s" % match.groups()

    def remove_block_file(self, cid):
        """Delete a block from the repository's disk, as a damaged disk would
        (the daemon must be stopped; CIDv1 in base32 only)."""
        assert self.proc is None, "stop the daemon first"
        path = os.path.join(self.repo, "blocks", "*", multihash_key(cid) + ".data")
        found = glob.glob(path)
        assert len(found) == 1, "no block file %s" % path
        os.remove(found[0])


def multihash_key(cid):
    """The flatfs file name of a CIDv1 (base32, 'b...'): its multihash in base32."""
    raw = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    index = 1                       # after the version, a varint codec
    while raw[index] & 0x80:
        index += 1
    return base64.b32encode(raw[index + 1:]).decode("ascii").rstrip("=")
