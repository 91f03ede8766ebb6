"""A throw-away js-ipfs daemon for the integration tests.

The daemon is js-ipfs 0.66.1 installed by ``sh tests/run.sh`` (npm, from tests/ipfsnode/package-lock.json).
It speaks the Kubo RPC API (``POST /api/v0/<cmd>``) on a free loopback port.
The repository is created in a directory the caller gives (a pytest tmp dir)
and configured so the node never talks to anything but 127.0.0.1: no swarm
listeners, no bootstrap peers, no delegates, no DHT, no mDNS, no UPnP/NAT-PMP,
no pubsub and no preload.

Standard library only.

Differences from Kubo seen with this daemon (js-ipfs 0.18.1 core):

* Unknown query parameters are silently dropped, in particular
  ``offline=true``: ``files/stat``/``block/stat``/``pin/add`` of a CID that is
  not in the repo wait until ``timeout=`` expires (forever without it), then
  answer 500 ``{"Message":"request timed out","Code":0,"Type":"error"}``.
* Errors are ``{"Message":..., "Code":0|1|3, "Type":"error"}``: 400 (Code 1)
  for a query that fails validation (bad CID in ``arg``), 404 (Code 3) for an
  unknown command, 500 (Code 0) for everything else, e.g.
  ``pin/rm`` of an unpinned CID -> "Failed to remove pin: <cid> is not pinned".
* Streamed answers (add, pin/ls?stream=true) are chunked NDJSON with
  ``X-Chunked-Output: 1`` and ``Trailer: X-Stream-Error``; an error before the
  first line is a normal 500, an error after it arrives only as the
  ``X-Stream-Error`` trailer (http.client discards trailers).
* ``add`` answers ``"Size"`` as a number (Kubo: string) and adds ``"Mode"``;
  CIDv1 in add/pin ls/files stat is printed in base58btc (``zb2…``/``zdpu…``)
  unless ``cid-base=base32`` (files/stat only honours ``cidBase=base32``), and
  ``pin/ls?cid-base=base32`` fails with 500 as soon as a CIDv0 is pinned.
* ``files/stat`` of a non-UnixFS block (raw leaf, dag-cbor) does not fail: it
  answers ``Type: "file"`` with the block size and no ``Mode``.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "ipfsnode")
POLYFILL = os.path.join(NODE_DIR, "polyfill.cjs")


def find_jsipfs():
    """Path of the jsipfs executable; RuntimeError if npm has not been run."""
    path = os.path.join(NODE_DIR, "node_modules", ".bin", "jsipfs")
    if not os.path.exists(path):
        raise RuntimeError(
            "js-ipfs is not installed (%s is missing): run "
            "`sh tests/run.sh` (it installs the test node from npm)" % path)
    return path


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
    """One js-ipfs daemon with its repository under ``base_dir``."""

    def __init__(self, base_dir, startup_timeout=60.0):
        self.base_dir = os.path.abspath(str(base_dir))
        self.repo = os.path.join(self.base_dir, "ipfs-repo")
        self.log_path = os.path.join(self.base_dir, "ipfs-daemon.log")
        self.startup_timeout = startup_timeout
        self.proc = None
        self.pid = None
        self.init_seconds = None
        self.startup_seconds = None
        self.api_port = None
        self.gateway_port = None
        self.api_url = None
        self.gateway_url = None
        self._conn = None

    # -- lifecycle ---------------------------------------------------------

    def _env(self):
        env = dict(os.environ)
        env["IPFS_PATH"] = self.repo
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") +
                               " --require " + POLYFILL).strip()
        # the libp2p/ipfs debug logger would flood the log file
        env.pop("DEBUG", None)
        return env

    def _write_config(self):
        path = os.path.join(self.repo, "config")
        with open(path) as f:
            cfg = json.load(f)
        self.api_port = free_port()
        self.gateway_port = free_port()
        while self.gateway_port == self.api_port:
            self.gateway_port = free_port()
        addrs = cfg.setdefault("Addresses", {})
        addrs["Swarm"] = []
        addrs["Announce"] = []
        addrs["NoAnnounce"] = []
        addrs["Delegates"] = []
        addrs["API"] = "/ip4/127.0.0.1/tcp/%d" % self.api_port
        addrs["Gateway"] = "/ip4/127.0.0.1/tcp/%d" % self.gateway_port
        # The gRPC-over-websocket server is only started when Addresses.RPC
        # is set; the tests do not use it, so it is not started at all.
        addrs.pop("RPC", None)
        cfg["Bootstrap"] = []
        disc = cfg.setdefault("Discovery", {})
        disc["MDNS"] = {"Enabled": False, "Interval": 10}
        disc["webRTCStar"] = {"Enabled": False}
        cfg["Routing"] = {"Type": "none"}           # no DHT
        cfg["Pubsub"] = {"Router": "gossipsub", "Enabled": False}
        swarm = cfg.setdefault("Swarm", {})
        swarm["DisableNatPortMap"] = True           # no UPnP / NAT-PMP
        cfg["relay"] = {"enabled": False, "hop": {"enabled": False}}
        # js-ipfs has no config key for preload (the preload nodes live in
        # code); it is switched off with `daemon --enable-preload=false`.
        # `--offline` alone does NOT stop libp2p in js-ipfs 0.66 (it only
        # affects IPNS), hence all of the above.
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=2)
        os.replace(tmp, path)

    def _log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def start(self):
        jsipfs = find_jsipfs()
        os.makedirs(self.base_dir, exist_ok=True)
        env = self._env()
        t0 = time.monotonic()
        if not os.path.exists(os.path.join(self.repo, "config")):
            r = subprocess.run([jsipfs, "init", "--empty-repo"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL,
                               timeout=self.startup_timeout)
            if r.returncode != 0:
                raise RuntimeError("jsipfs init failed (exit %s):\n%s" % (
                    r.returncode, r.stdout.decode("utf-8", "replace")[-4000:]))
        self.init_seconds = time.monotonic() - t0
        deadline = t0 + self.startup_timeout
        # A port picked by free_port() can be taken by someone else before
        # the daemon binds it; js-ipfs then logs EADDRINUSE but does not
        # exit, so that case is detected in the log and retried.
        for attempt in range(3):
            self._write_config()
            self.api_url = "http://127.0.0.1:%d" % self.api_port
            self.gateway_url = "http://127.0.0.1:%d" % self.gateway_port
            log = open(self.log_path, "ab")
            log_start = log.tell()
            try:
                self.proc = subprocess.Popen(
                    [jsipfs, "daemon", "--offline", "--enable-preload=false"],
                    env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True)
                self.pid = self.proc.pid
            finally:
                log.close()
            if self._wait_ready(deadline, log_start):
                break
            self.stop()
        else:
            raise RuntimeError(
                "js-ipfs daemon could not bind its ports (EADDRINUSE) three "
                "times; log %s ends with:\n%s" % (self.log_path,
                                                 self._log_tail()))
        self.startup_seconds = time.monotonic() - t0
        return self

    def _wait_ready(self, deadline, log_start):
        """True once /api/v0/version answers, False on EADDRINUSE."""
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise RuntimeError(
                    "js-ipfs daemon exited with %s during start-up; "
                    "log %s ends with:\n%s" % (rc, self.log_path,
                                               self._log_tail()))
            try:
                self.rpc("version", _timeout=2)
                return True
            except (OSError, http.client.HTTPException, IPFSError):
                self._close_conn()
            with open(self.log_path, "rb") as f:
                f.seek(log_start)
                if b"EADDRINUSE" in f.read():
                    return False
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "js-ipfs daemon did not answer /api/v0/version on %s "
                    "within %.0f s; log %s ends with:\n%s" % (
                        self.api_url, self.startup_timeout, self.log_path,
                        self._log_tail()))
            time.sleep(0.2)

    def stop(self, timeout=10.0):
        self._close_conn()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

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
            items = [(k, str(v).lower() if isinstance(v, bool) else v)
                     for k, v in items]
            query = "?" + urllib.parse.urlencode(items)
        else:
            query = ""
        path = "/api/v0/" + cmd + query
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    "127.0.0.1", self.api_port, timeout=timeout)
            self._conn.timeout = timeout
            if self._conn.sock is not None:
                self._conn.sock.settimeout(timeout)
            try:
                self._conn.request("POST", path, body=body,
                                   headers=headers or {})
                resp = self._conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.RemoteDisconnected,
                    http.client.BadStatusLine):
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
    def _multipart(files):
        boundary = uuid.uuid4().hex
        parts = []
        for name, data in files:
            parts.append(
                ("--%s\r\nContent-Disposition: form-data; name=\"file\"; "
                 "filename=\"%s\"\r\nContent-Type: application/octet-stream"
                 "\r\n\r\n" % (boundary, urllib.parse.quote(name))).encode())
            parts.append(data)
            parts.append(b"\r\n")
        parts.append(("--%s--\r\n" % boundary).encode())
        return (b"".join(parts),
                {"Content-Type": "multipart/form-data; boundary=" + boundary})

    def _add(self, files, **params):
        params.setdefault("cid-version", 0)
        params = {k.replace("_", "-"): v for k, v in params.items()}
        body, headers = self._multipart(files)
        status, _, data = self.request("add", params, body, headers)
        out = self._parse(status, data)
        if isinstance(out, dict):
            out = [out]
        # js-ipfs reports errors inside a 200 stream as {"Message", "Code"...}
        for entry in out:
            if "Hash" not in entry:
                raise IPFSError(status, json.dumps(entry))
        return out

    def add(self, data, name="f", pin=True):
        """Add one file, return its CID (CIDv0, like ``ipfs add``)."""
        return self._add([(name, data)], pin=pin)[-1]["Hash"]

    def add_many(self, datas, pin=True):
        """Add several files in one multipart request; return their CIDs in
        order. Each file is added (and pinned) on its own, no wrapping dir."""
        files = [("f%d" % i, d) for i, d in enumerate(datas)]
        out = self._add(files, pin=pin)
        if len(out) != len(files):
            raise RuntimeError("add returned %d entries for %d files" %
                               (len(out), len(files)))
        by_name = {e["Name"]: e["Hash"] for e in out}
        return [by_name[name] for name, _ in files]

    def only_hash(self, data, name="f"):
        """CID ``data`` would get, without storing it."""
        return self._add([(name, data)], only_hash=True, pin=False)[-1]["Hash"]

    def pin_ls(self, type="all"):
        """{cid: pin type} ("recursive", "direct", "indirect"); pass
        type="recursive" to see only what was pinned explicitly.
        CIDv1 keys come back in base58btc (z...), not base32 -- see module
        notes."""
        out = self.rpc("pin/ls", type=type)
        return {cid: v["Type"] for cid, v in out["Keys"].items()}

    def pin_rm(self, cid):
        return self.rpc("pin/rm", arg=cid)

    def pin_add(self, cid):
        return self.rpc("pin/add", arg=cid)
