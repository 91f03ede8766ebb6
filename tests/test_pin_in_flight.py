"""pin_add with several CIDs in flight: keep-alive connections, a bounded
number at once, and a cancel whose retry does exactly what was not done."""

import threading

import console.control
import console.store
from support import run_here, wait_for
from test_pin_tasks import cid, lines, start


def test_pin_add_reuses_its_connections(settings, db, fake_node, spawned, monkeypatch):
    monkeypatch.setenv("IPFSMASTER_PIN_CONCURRENCY", "4")
    items = [cid(n) for n in range(1, 41)]
    fake_node.have.update(items)
    task = run_here(settings, start(settings, db, "pin_add", fake_node, lines(*items)))
    assert task["status"] == "completed" and task["result"]["done"] == 40
    assert fake_node.pin_calls == {item: 1 for item in items}
    # Each CID costs a pin/ls, a streamed pin/add and a files/stat: 120 requests
    # on the four threads' connections, not a new connection after each stream.
    assert fake_node.calls["pin/add"] == 40 and fake_node.calls["files/stat"] == 40
    assert fake_node.connections <= 4
    assert db.execute("SELECT COUNT(*) FROM pins WHERE size IS NOT NULL").fetchone()[0] == 40


def test_pin_add_has_at_most_its_concurrency_in_flight(settings, db, fake_node, spawned, monkeypatch):
    monkeypatch.setenv("IPFSMASTER_PIN_CONCURRENCY", "3")
    items = [cid(n) for n in range(1, 10)]
    fake_node.have.update(items)
    for item in items:
        fake_node.pin_delay[item] = 0.3
    task = run_here(settings, start(settings, db, "pin_add", fake_node, lines(*items)))
    assert task["status"] == "completed" and task["result"]["done"] == 9
    assert fake_node.most_pinning == 3
    assert task["progress"] == task["total"] == 9 and task["result"]["next_index"] == 9


def test_a_cancel_with_several_in_flight_leaves_a_retry_exactly_what_was_not_done(settings, db, fake_node, spawned,
                                                                                   monkeypatch):
    monkeypatch.setenv("IPFSMASTER_PIN_CONCURRENCY", "4")
    items = [cid(n) for n in range(1, 13)]
    fake_node.have.update(items)
    for item in items[2:5]:
        fake_node.pin_delay[item] = 30.0     # three CIDs hold three of the four threads
    task_id = start(settings, db, "pin_add", fake_node, lines(*items))
    runner = threading.Thread(target=run_here, args=(settings, task_id))
    runner.start()
    wait_for(lambda: all(fake_node.pin_calls[item] for item in items[2:5])
             and console.store.get_task(db, task_id)["progress"] >= 5, timeout=10)
    assert console.control.cancel_task(settings, db, task_id) == "cancelling"
    runner.join(10)
    first = console.store.task_as_json(console.store.get_task(db, task_id))
    assert first["status"] == "cancelled"
    done_first = {row[0] for row in db.execute("SELECT cid FROM pins")}
    assert first["result"]["done"] == len(done_first) >= 5
    assert not done_first & set(items[2:5])          # cancelled in hand: not recorded, owed

    fake_node.pin_delay.clear()
    retried = run_here(settings, console.control.retry_task(settings, db, task_id))
    assert retried["status"] == "completed" and retried["result"]["failed"] == 0
    assert retried["total"] == retried["result"]["done"] == 12 - len(done_first)
    assert {row[0] for row in db.execute("SELECT cid FROM pins")} == set(items)
    # Nothing the first task finished was pinned again; what it had in hand was.
    assert all(fake_node.pin_calls[item] == 1 for item in done_first)
    assert all(fake_node.pin_calls[item] == 2 for item in items[2:5])


def test_call_each_pipelines_different_commands_and_answers_each(fake_node):
    import console.rpc
    from console.framing import IPFSError
    fake_node.add(cid(1), 4242, name="kept")
    client = console.rpc.IPFSClient(fake_node.url)
    answers = client.call_each([("files/stat", [("arg", "/ipfs/" + cid(1))]),
                                ("pin/ls", [("arg", cid(2)), ("type", "recursive")]),
                                ("pin/ls", [("arg", cid(1)), ("type", "recursive"), ("names", "true")])])
    assert answers[0]["CumulativeSize"] == 4242
    assert isinstance(answers[1], IPFSError) and "not pinned" in str(answers[1]) and not answers[1].transient
    assert answers[2]["Keys"][cid(1)]["Name"] == "kept"
    assert client.call("files/stat", [("arg", "/ipfs/" + cid(1))])["CumulativeSize"] == 4242
    assert fake_node.connections == 1
    client.close()


def test_a_cid_is_sized_and_its_name_read_in_one_round_trip_before_it_is_pinned(settings, db, fake_node, spawned,
                                                                                 monkeypatch):
    monkeypatch.setenv("IPFSMASTER_PIN_CONCURRENCY", "1")
    fake_node.have.update([cid(1), cid(2)])
    fake_node.add(cid(2), 150, name="its own")
    task = run_here(settings, start(settings, db, "pin_add", fake_node, lines(cid(1), cid(2))))
    assert task["status"] == "completed" and task["result"]["done"] == 2
    assert [request for request in fake_node.requests if request[0] != "version"] == [
        ("files/stat", "/ipfs/" + cid(1)), ("pin/ls", cid(1)), ("pin/add", cid(1)),
        ("files/stat", "/ipfs/" + cid(2)), ("pin/ls", cid(2)), ("pin/add", cid(2))]
    rows = {row[0]: (row[1], row[2]) for row in db.execute("SELECT cid, name, size FROM pins")}
    assert rows == {cid(1): ("", 100 + len(cid(1))), cid(2): ("its own", 150)}


def test_a_pin_add_answer_cut_short_is_no_pin(settings, db, fake_node, spawned):
    """Only the answer's Pins object says the node pinned a CID: an answer that
    ends before it (a connection dropped) is never recorded as a pin."""
    good, cut = cid(1), cid(2)
    fake_node.have.update([good, cut])
    fake_node.cut_short.add(cut)
    task = run_here(settings, start(settings, db, "pin_add", fake_node, lines(good, cut)))
    assert task["status"] == "failed" and "ended before the pin was made" in task["error_message"], task
    assert cut not in fake_node.pins
    assert db.execute("SELECT 1 FROM pins WHERE cid = ?", (cut,)).fetchone() is None
