"""The repo_verify task's reading of Kubo's repo/verify stream, in-process:
what counts as damage, what was only removed meanwhile, and how the stream's
own end is told from a failure."""

import io

import pytest

import console.store
from console.cids import multihash_of
from console.framing import IPFSError, StreamError
from console.runner import TaskContext
from console.tasks import repo_verify

DAMAGED = "bafkreibtg6aovmdfzvi7lo7lzdl2dghys7i6bhbot3o4nyusqmwddroki4"
GONE = "bafkreihgv7fqho4nqs7fwebimbx524lqdsejvhslz422kc2eyk7wupptgy"


class VerifyStream:
    """A client whose repo/verify answers ``lines``, then ends with ``trailer`` (X-Stream-Error) if given."""

    stopped = False

    def __init__(self, lines, trailer=None):
        self.lines, self.trailer = lines, trailer

    def stream_batches(self, command, params=()):
        assert command == "repo/verify"
        yield self.lines
        if self.trailer is not None:
            raise StreamError(self.trailer)

    def interrupt(self):
        self.stopped = True


@pytest.fixture
def ctx(settings, db):
    db.execute("INSERT INTO background_tasks (task_type, status, single_flight) VALUES ('repo_verify', 'running', 1)")
    context = TaskContext(console.store.get_task(db, 1), settings.db, settings.ipfs_api, out=io.StringIO())
    context.result = {"blocks": 0, "failed": 0, "vanished": 0}
    yield context
    context.close()


def test_damage_is_told_from_a_block_removed_meanwhile(ctx):
    client = VerifyStream([
        {"Msg": "", "Progress": 1},
        {"Msg": "block %s was corrupt (ipld: could not find %s)" % (GONE, GONE), "Progress": 0},
        {"Msg": "", "Progress": 2},
        {"Msg": "block %s was corrupt (block in storage has different hash than requested)" % DAMAGED, "Progress": 0},
        {"Msg": "", "Progress": 3},
    ], trailer=b"verify complete, 2 blocks corrupt")
    damaged = repo_verify.verify_blocks(ctx, client)
    assert damaged == {multihash_of(DAMAGED): {"cid": DAMAGED, "pins": [], "more_pins": 0,
                                               "error": "block in storage has different hash than requested"}}
    assert ctx.result == {"blocks": 3, "failed": 1, "vanished": 1} and ctx.progress == 3
    assert "Damaged: %s" % DAMAGED in ctx.out.getvalue()


def test_a_clean_end_and_a_failure_are_told_apart(ctx):
    clean = [{"Msg": "", "Progress": 1}, {"Msg": "verify complete, all blocks validated.", "Progress": 0}]
    assert repo_verify.verify_blocks(ctx, VerifyStream(clean)) == {}
    assert ctx.result["blocks"] == 1 and ctx.result["failed"] == 0
    # The same "error" with no damage seen, or any other one, is a failure.
    for trailer in (b"verify complete, 2 blocks corrupt", b"context canceled"):
        with pytest.raises(IPFSError):
            repo_verify.verify_blocks(ctx, VerifyStream([{"Msg": "", "Progress": 1}], trailer))


def test_a_nodes_links_are_read_from_its_dag_json():
    class DagGet:
        def call(self, command, params):
            assert command == "dag/get"
            return {"Data": {"/": {"bytes": "CAE"}}, "Links": [
                {"Hash": {"/": "bafkreia"}, "Name": "a", "Tsize": 1}, {"Hash": {"/": "bafybeib"}, "Name": "b"}],
                "extra": [{"nested": {"/": "bafyreic"}}]}
    assert repo_verify.node_links(DagGet(), "bafybeiroot") == ["bafkreia", "bafybeib", "bafyreic"]
