"""Fixtures shared by the test suite.

Most tests call the WSGI app in-process on a fresh temporary database; the
integration tests start the real pieces: an IPFS daemon, the server, and
worker processes, all on 127.0.0.1 and all ended by pid in teardown.
"""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import console.node  # noqa: E402
import console.processes  # noqa: E402
import console.settings  # noqa: E402
import console.store  # noqa: E402
import console.web.app  # noqa: E402
from support import CLUSTER_PASSWORD, CLUSTER_USER, NODE_FIXTURES, Client, LiveServer, SilentNode, build_bundle, running  # noqa: E402

# A test that uses one of these starts the real IPFS node (the cluster's
# peers each have one); so does every test in a module that imports
# IPFSNode to start one itself.


def pytest_configure(config):
    config.addinivalue_line("markers", "node: starts the real IPFS node (set on every test that uses it)")
    config.addinivalue_line("markers", "every_python: the real-process test run on each Python version"
                                       " (tests/other_pythons.sh)")
    # What a newer Python deprecates, ours must stop using before it is removed.
    config.addinivalue_line("filterwarnings", "error::DeprecationWarning:(ipfsmaster|worker|console)")
    config.addinivalue_line("filterwarnings", "error::PendingDeprecationWarning:(ipfsmaster|worker|console)")


def pytest_collection_modifyitems(items):
    """Mark the tests that start the IPFS node, so that `-m "not node"` leaves them out."""
    for item in items:
        uses_fixture = bool(NODE_FIXTURES & set(getattr(item, "fixturenames", ())))
        if uses_fixture or hasattr(getattr(item, "module", None), "IPFSNode"):
            item.add_marker(pytest.mark.node)


@pytest.fixture(autouse=True)
def no_overview_from_another_test():
    """The node overview is kept a few seconds per address: a test's node may reuse a port."""
    console.node.forget_overviews()


@pytest.fixture
def settings(tmp_path):
    settings = console.settings.Settings(db=str(tmp_path / "ipfsmaster.db"), ipfs_api="http://127.0.0.1:9")
    console.store.init_db(settings.db)
    return settings


@pytest.fixture
def db(settings):
    conn = console.store.connect(settings.db)
    yield conn
    conn.close()


@pytest.fixture
def client(settings):
    return Client(console.web.app.App(settings))


@pytest.fixture
def spawned(monkeypatch):
    """Workers are not started: the ids of the tasks that would have been."""
    calls = []
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: calls.append(task_id) or 1)
    return calls


@pytest.fixture
def fake_node():
    """A programmable stand-in for the node's RPC API (tests/fake_node.py)."""
    from fake_node import FakeNode
    node = FakeNode()
    yield node
    node.close()


@pytest.fixture(scope="session")
def ipfs_node(tmp_path_factory):
    """A real Kubo daemon on free loopback ports, shared by the whole run."""
    from ipfs_node import IPFSNode
    node = IPFSNode(tmp_path_factory.mktemp("ipfs"))
    node.start()
    yield node
    node.stop()


@pytest.fixture
def own_ipfs_node(tmp_path):
    """A daemon of this test's own, for tests that stop it."""
    from ipfs_node import IPFSNode
    node = IPFSNode(tmp_path / "ipfs")
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """Two IPFS Cluster peers, each with its own Kubo, whose REST API takes a
    password (CLUSTER_USER, CLUSTER_PASSWORD); on loopback in the test run's
    own network namespace."""
    from cluster_node import Cluster
    started = Cluster(tmp_path_factory.mktemp("cluster"), credentials={CLUSTER_USER: CLUSTER_PASSWORD}).start()
    yield started
    started.stop()


@pytest.fixture
def isolated_ipfs_node(tmp_path):
    """A daemon started online but with no routing, no bootstrap peers and a
    loopback-only swarm: it never dials out, and a block it lacks is waited
    for (until a time-out) instead of refused at once as --offline does."""
    from ipfs_node import IPFSNode
    yield from running(IPFSNode(tmp_path / "isolated-ipfs", offline=False))


@pytest.fixture
def second_ipfs_node(tmp_path):
    """Another offline daemon of this test's own (beside own_ipfs_node): a second node to move content to."""
    from ipfs_node import IPFSNode
    yield from running(IPFSNode(tmp_path / "second-ipfs"))


@pytest.fixture
def second_isolated_ipfs_node(tmp_path):
    """Another online but isolated daemon, for isolated_ipfs_node to connect to (see support.swarm_connect)."""
    from ipfs_node import IPFSNode
    yield from running(IPFSNode(tmp_path / "second-isolated-ipfs", offline=False))


@pytest.fixture
def make_live_server(tmp_path):
    servers = []

    def make(ipfs_api, **overrides):
        folder = tmp_path / ("server%d" % len(servers))
        folder.mkdir()
        settings = console.settings.Settings(db=str(folder / "ipfsmaster.db"), ipfs_api=ipfs_api, port=0, **overrides)
        server = LiveServer(settings)
        servers.append(server)
        return server
    yield make
    for server in servers:
        server.close()


@pytest.fixture
def live_server(make_live_server, ipfs_node):
    """The server, talking to the session's IPFS node."""
    return make_live_server(ipfs_node.api_url)


@pytest.fixture
def silent_node():
    """An IPFS API that never answers (support.SilentNode)."""
    node = SilentNode()
    yield node
    node.close()


@pytest.fixture(scope="session")
def bundled_archive(tmp_path_factory):
    """ipfsmaster.pyz, built once from this checkout by ``ipfsmaster.py bundle``."""
    return build_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture
def receiver():
    """A webhook receiver on loopback that fails its first two posts (tests/webhook_receiver.py)."""
    from webhook_receiver import WebhookReceiver
    found = WebhookReceiver(failures=2)
    yield found
    found.close()


@pytest.fixture
def small_node(tmp_path):
    """A Kubo whose Datastore.StorageMax is 1 MB."""
    from ipfs_node import IPFSNode
    yield from running(IPFSNode(tmp_path / "small-ipfs", config=lambda cfg: cfg["Datastore"].update(StorageMax="1MB")))
