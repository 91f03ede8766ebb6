"""A throw-away IPFS Cluster of real peers, each with its own Kubo, for the tests.

The binaries are IPFS Cluster v1.0.8 (``$IPFS_CLUSTER_BIN``, a folder that
``sh tests/get_cluster.sh`` prints after building them once). Each peer is
``ipfs-cluster-service init --consensus crdt`` then ``daemon``, with a fixed
secret, on free loopback ports, and its own offline Kubo (tests/ipfs_node.py).

A cluster peer's libp2p host always looks for a NAT gateway (UPnP and
NAT-PMP) on the machine's network: cluster peers may only run inside a
network namespace that has nothing but loopback, which ``sh tests/run.sh``
makes for the whole test run. ``Cluster`` refuses to start anywhere else.

Standard library only.
"""

import http.client
import json
import os
import subprocess
import time
from urllib.parse import quote

from ipfs_node import IPFSNode, free_port, log_tail, stop_process

CLUSTER_VERSION = "1.0.8"
SECRET = "9a1f0e3c5b7d2e4f6a8c0b1d3e5f7a9c1e3d5b7f9a0c2e4d6b8f0a1c3e5d7b9f"


class ClusterMissing(RuntimeError):
    pass


def find_cluster():
    folder = os.environ.get("IPFS_CLUSTER_BIN")
    if not folder or not os.access(os.path.join(folder, "ipfs-cluster-service"), os.X_OK):
        raise ClusterMissing("IPFS Cluster %s is not available: run the tests with `sh tests/run.sh` (it builds it"
                             " once), or set IPFS_CLUSTER_BIN to the folder of ipfs-cluster-service" % CLUSTER_VERSION)
    return folder


def only_loopback():
    """True inside a network namespace whose only interface is loopback."""
    with open("/proc/net/dev") as f:        # this process's namespace (unlike /sys/class/net)
        names = [line.split(":")[0].strip() for line in f if ":" in line]
    return names == ["lo"]


class ClusterPeer:
    """One ipfs-cluster-service daemon in ``base_dir``, in front of ``kubo``."""

    def __init__(self, base_dir, kubo, name, credentials=None):
        self.binary = os.path.join(find_cluster(), "ipfs-cluster-service")
        self.base_dir = os.path.abspath(str(base_dir))
        self.config_dir = os.path.join(self.base_dir, "cluster")
        self.log_path = os.path.join(self.base_dir, "cluster.log")
        self.kubo = kubo
        self.name = name
        self.credentials = credentials      # {"user": "password"} for the REST API, or None
        self.proc = None
        self.cluster_port = free_port()
        self.api_port = free_port()
        self.api_url = "http://127.0.0.1:%d" % self.api_port
        self.id = None

    def init(self):
        os.makedirs(self.base_dir, exist_ok=True)
        self._run("init", "--consensus", "crdt")
        with open(os.path.join(self.config_dir, "identity.json")) as f:
            self.id = json.load(f)["id"]
        path = os.path.join(self.config_dir, "service.json")
        with open(path) as f:
            config = json.load(f)
        cluster = config["cluster"]
        cluster.update(peername=self.name, secret=SECRET, mdns_interval="0s", enable_relay_hop=False,
                       listen_multiaddress=["/ip4/127.0.0.1/tcp/%d" % self.cluster_port],
                       monitor_ping_interval="2s", peer_watch_interval="1s")
        kubo_address = "/ip4/127.0.0.1/tcp/%d" % self.kubo.api_port
        config["api"]["restapi"].update(http_listen_multiaddress="/ip4/127.0.0.1/tcp/%d" % self.api_port,
                                        basic_auth_credentials=self.credentials)
        config["api"]["ipfsproxy"].update(listen_multiaddress="/ip4/127.0.0.1/tcp/%d" % free_port(),
                                          node_multiaddress=kubo_address)
        config["api"]["pinsvcapi"]["http_listen_multiaddress"] = "/ip4/127.0.0.1/tcp/%d" % free_port()
        config["ipfs_connector"]["ipfshttp"].update(node_multiaddress=kubo_address, pin_timeout="20s")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)

    def _run(self, *args):
        out = subprocess.run([self.binary, "--config", self.config_dir] + list(args), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60, check=False)
        if out.returncode != 0:
            raise RuntimeError("ipfs-cluster-service %s failed:\n%s" % (" ".join(args), out.stdout.decode()[-3000:]))

    @property
    def address(self):
        return "/ip4/127.0.0.1/tcp/%d/p2p/%s" % (self.cluster_port, self.id)

    def start(self, bootstrap=None, timeout=60):
        if not only_loopback():
            raise RuntimeError("IPFS Cluster peers look for a NAT gateway on the network: run them only in a"
                               " network namespace with nothing but loopback (sh tests/run.sh does)")
        args = [self.binary, "--config", self.config_dir, "daemon"]
        if bootstrap:
            args += ["--bootstrap", bootstrap]
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("ipfs-cluster-service exited with %s; log:\n%s" % (self.proc.returncode,
                                                                                     log_tail(self.log_path)))
            try:
                if self.request("GET", "/id")[0] == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("ipfs-cluster-service did not answer on %s; log:\n%s" % (self.api_url,
                                                                                           log_tail(self.log_path)))
            time.sleep(0.2)

    def stop(self, timeout=15):
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc, timeout)

    def request(self, method, path, headers=None):
        """(status, body) of a REST API call."""
        import base64
        headers = dict(headers or {})
        if self.credentials and "Authorization" not in headers:
            (user, password), = self.credentials.items()
            headers["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=60)
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def json(self, method, path):
        """A REST API call's one JSON value."""
        status, body = self.request(method, path)
        if status >= 300:
            raise RuntimeError("%s %s: HTTP %d %s" % (method, path, status, body[:300]))
        return json.loads(body)

    def stream(self, path):
        """The JSON values of a streamed GET, one a line."""
        status, body = self.request("GET", path)
        if status >= 300:
            raise RuntimeError("GET %s: HTTP %d %s" % (path, status, body[:300]))
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


class Cluster:
    """``size`` cluster peers, each with its own Kubo, joined into one cluster."""

    def __init__(self, base_dir, size=2, credentials=None):
        self.base_dir = str(base_dir)
        self.kubos = [IPFSNode(os.path.join(self.base_dir, "kubo-%d" % n)) for n in range(size)]
        self.peers = [ClusterPeer(os.path.join(self.base_dir, "peer-%d" % n), kubo, "peer-%d" % n, credentials)
                      for n, kubo in enumerate(self.kubos)]

    @property
    def api_url(self):
        return self.peers[0].api_url

    def start(self):
        try:
            for kubo, peer in zip(self.kubos, self.peers):
                kubo.start()
                peer.init()
            self.peers[0].start()
            for peer in self.peers[1:]:
                peer.start(bootstrap=self.peers[0].address)
            self.wait_for(lambda: len(self.peers[0].stream("/peers")) == len(self.peers), "the peers to join")
            # Pins are allocated by the peers' metrics, which arrive after they join.
            self.wait_for(lambda: all(len(self.peers[0].json("GET", "/monitor/metrics/" + name)) == len(self.peers)
                                      for name in self.peers[0].json("GET", "/monitor/metrics")),
                          "every peer's metrics")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for peer in self.peers:
            peer.stop()
        for kubo in self.kubos:
            kubo.stop()

    def add_everywhere(self, data):
        """Put the same bytes on every peer's Kubo, unpinned; returns the CID."""
        cids = {kubo.add(data, pin=False) for kubo in self.kubos}
        assert len(cids) == 1
        return cids.pop()

    def pin(self, cid, replication=2, name=""):
        """Pin a CID through the cluster on ``replication`` peers."""
        status, body = self.peers[0].request("POST", "/pins/%s?replication-min=%d&replication-max=%d&name=%s" % (
            cid, replication, replication, quote(name)))
        assert status == 200, body

    def pin_failed_by_second_peer(self, data):
        """Pin ``data`` on both peers while the second peer's Kubo is down
        (stop it first): the second peer fails it. Returns the CID."""
        cid = self.kubos[0].add(data, pin=False)
        self.pin(cid)
        self.wait_for(lambda: self.status(cid).get("peer-1") == "pin_error", "peer-1 to fail the pin")
        return cid

    def status(self, cid):
        """{peer name: status} of one pin across the cluster."""
        info = self.peers[0].json("GET", "/pins/%s" % cid)
        return {value["peername"]: value["status"] for value in info["peer_map"].values()}

    @staticmethod
    def wait_for(predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = predicate()
            except (OSError, RuntimeError, ValueError, KeyError):
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s" % what)
            time.sleep(0.2)
