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
    # Each CID costs a pin/ls and a streamed pin/add (one block: sized by its
    # answer): 80 requests on the four threads' connections, not a new
    # connection after each stream.
    assert fake_node.calls["pin/add"] == 40 and fake_node.calls["pin/ls"] == 40 and not fake_node.calls["files/stat"]
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


def test_a_short_list_asks_each_name_and_takes_one_block_sizes_from_the_pin(settings, db, fake_node, spawned,
                                                                             monkeypatch):
    """Each CID without a name is asked its name (pin/ls) before its pin; a
    pin of one block is sized by pin/add's own last progress, a larger DAG
    by files/stat after."""
    monkeypatch.setenv("IPFSMASTER_PIN_CONCURRENCY", "1")
    fake_node.have.update([cid(1), cid(2), cid(3)])
    fake_node.add(cid(2), 150, name="its own")
    fake_node.sizes[cid(3)], fake_node.blocks[cid(3)] = 9000, 3
    task = run_here(settings, start(settings, db, "pin_add", fake_node, lines(cid(1), cid(2), cid(3))))
    assert task["status"] == "completed" and task["result"]["done"] == 3
    assert [request for request in fake_node.requests if request[0] != "version"] == [
        ("pin/ls", cid(1)), ("pin/add", cid(1)), ("pin/ls", cid(2)), ("pin/add", cid(2)),
        ("pin/ls", cid(3)), ("pin/add", cid(3)), ("files/stat", "/ipfs/" + cid(3))]
    rows = {row[0]: (row[1], row[2]) for row in db.execute("SELECT cid, name, size FROM pins")}
    assert rows == {cid(1): ("", 100 + len(cid(1))), cid(2): ("its own", 150), cid(3): ("", 9000)}


def test_a_long_list_lists_the_named_pins_once_and_asks_only_those(settings, db, fake_node, spawned):
    """Past pin_names.LIST_FROM CIDs without a name, one listing up front
    says which CIDs the node pins under a name: only those are asked theirs,
    the rest get the list's default name, and each CID costs the node one
    pin/add and nothing else."""
    import console.tasks.pin_names
    many = [cid(n) for n in range(1, console.tasks.pin_names.LIST_FROM + 11)]
    fake_node.have.update(many)
    fake_node.add(many[3], 150, name="kept")                  # pinned under a name: keeps it
    fake_node.add(many[5], 160)                               # pinned without one: gets the default

    def fill(writer):
        writer.name = "batch"
        writer.feed("".join(item + "\n" for item in many[:-1]).encode() + many[-1].encode() + b" given\n")

    task = run_here(settings, start(settings, db, "pin_add", fake_node, fill))
    assert task["status"] == "completed" and task["result"]["done"] == len(many), task
    asked = [request for request in fake_node.requests if request[0] != "version"]
    assert asked.count(("pin/ls", None)) == 1 and asked[0] == ("pin/ls", None)
    assert [request for request in asked if request[0] == "pin/ls" and request[1]] == [("pin/ls", many[3])]
    assert sorted(request[1] for request in asked if request[0] == "pin/add") == sorted(many)
    assert len(asked) == len(many) + 2
    names = {row[0]: row[1] for row in db.execute("SELECT cid, name FROM pins")}
    assert {item: entry.get("Name") for item, entry in fake_node.pins.items()} == names
    assert names[many[3]] == "kept" and names[many[5]] == "batch" and names[many[-1]] == "given"
    assert names[many[0]] == "batch"


def test_the_listing_is_skipped_when_the_node_pins_far_more_than_the_list_names(settings, db, fake_node, spawned):
    import console.tasks.pin_names
    many = [cid(n) for n in range(1, console.tasks.pin_names.LIST_FROM + 1)]
    fake_node.have.update(many)
    db.executemany("INSERT INTO pins (cid, type, name) VALUES (?, 'recursive', '')",
                   [(cid(n),) for n in range(1000, 1000 + 10 * len(many) + 1)])
    db.commit()
    task = run_here(settings, start(settings, db, "pin_add", fake_node, lines(*many)))
    assert task["status"] == "completed", task
    assert ("pin/ls", None) not in fake_node.requests
    assert sum(1 for request in fake_node.requests if request[0] == "pin/ls") == len(many)


def test_a_cid_is_matched_to_the_listing_in_any_base():
    import console.cids
    from console.tasks.pin_names import as_listed
    v1 = "bafybeididnrsshsoboewbmxdsixad6zaoeyvnlujmypiupjneysyii4lwu"
    binary = console.cids.base32_decode(v1[1:])
    assert as_listed(v1) == v1 and as_listed("B" + v1[1:].upper()) == v1
    assert as_listed("f" + binary.hex()) == v1
    assert as_listed("QmVM3LBoHGfKKjyoeJ2VcFPuVBNPhC2MoxdC1crsh583qv") == "QmVM3LBoHGfKKjyoeJ2VcFPuVBNPhC2MoxdC1crsh583qv"


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


def test_a_cancel_ends_the_listing_of_named_pins(settings, db, fake_node, spawned):
    """The listing a long list begins with stops at a cancel, as a pin does;
    nothing was pinned, so a retry does the whole list."""
    import time

    import console.tasks.pin_names
    many = [cid(n) for n in range(1, console.tasks.pin_names.LIST_FROM + 1)]
    fake_node.have.update(many)
    for n in range(100, 110):
        fake_node.add(cid(n), 10, name="named %d" % n)
    fake_node.listing_pause = 30.0
    task_id = start(settings, db, "pin_add", fake_node, lines(*many))
    runner = threading.Thread(target=run_here, args=(settings, task_id))
    runner.start()
    wait_for(lambda: fake_node.listings, timeout=10, message="the listing to begin")
    started = time.monotonic()
    assert console.control.cancel_task(settings, db, task_id) == "cancelling"
    runner.join(20)
    assert not runner.is_alive() and time.monotonic() - started < 10
    task = console.store.task_as_json(console.store.get_task(db, task_id))
    assert task["status"] == "cancelled" and task["result"]["done"] == 0, task
    assert not fake_node.pin_calls
    fake_node.listing_pause = 0.0
    retried = run_here(settings, console.control.retry_task(settings, db, task_id))
    assert retried["status"] == "completed" and retried["result"]["done"] == len(many), retried


def test_a_cancel_that_cuts_a_repin_short_leaves_no_pin_the_node_lost(settings, db, fake_node, spawned, monkeypatch):
    """Kubo's pin/add of a CID it already pins removes that pin first and adds
    it back once the DAG is walked: cut short by a cancel, it leaves the CID
    unpinned. The task asks the node afterwards about each CID it had sent
    without an answer, and the catalogue loses those the node no longer pins."""
    monkeypatch.setenv("IPFSMASTER_PIN_CONCURRENCY", "2")
    renamed, fresh, kept = cid(1), cid(2), cid(3)
    fake_node.have.update([renamed, fresh, kept])
    fake_node.add(renamed, 150, name="old name")
    fake_node.add(kept, 160, name="kept")
    db.executemany("INSERT INTO pins (cid, type, name, size) VALUES (?, 'recursive', ?, ?)",
                   [(renamed, "old name", 150), (kept, "kept", 160)])
    db.commit()
    fake_node.pin_delay[renamed] = fake_node.pin_delay[fresh] = 30.0
    task_id = start(settings, db, "pin_add", fake_node, lines(renamed + " new name", fresh))
    runner = threading.Thread(target=run_here, args=(settings, task_id))
    runner.start()
    wait_for(lambda: fake_node.pinning == 2, timeout=10, message="both pins to be under way")
    assert console.control.cancel_task(settings, db, task_id) == "cancelling"
    runner.join(20)
    assert not runner.is_alive()
    assert renamed not in fake_node.pins and fresh not in fake_node.pins and kept in fake_node.pins
    assert {row[0] for row in db.execute("SELECT cid FROM pins")} == {kept}


def test_a_failed_repin_leaves_no_pin_the_node_lost(settings, db, fake_node, spawned):
    """The same when the node's answer is an error after it removed the pin
    (here: the answer ends before its Pins object, as a time-out would)."""
    lost = cid(1)
    fake_node.have.add(lost)
    fake_node.add(lost, 150, name="old name")
    fake_node.cut_short.add(lost)
    db.execute("INSERT INTO pins (cid, type, name, size) VALUES (?, 'recursive', 'old name', 150)", (lost,))
    db.commit()
    task = run_here(settings, start(settings, db, "pin_add", fake_node, lines(lost + " new name")))
    assert task["status"] == "failed", task
    assert lost not in fake_node.pins
    assert db.execute("SELECT 1 FROM pins WHERE cid = ?", (lost,)).fetchone() is None


def test_a_car_root_whose_naming_failed_is_counted_as_the_node_left_it(settings, db, fake_node):
    """A CAR import names each root with a second pin/add; one that fails after
    Kubo dropped the pin leaves the root unpinned: failed, not catalogued."""
    import io

    import console.rpc
    import console.runner
    from console.tasks.car_import import record_root
    lost, named = cid(1), cid(2)
    fake_node.have.update([lost, named])
    fake_node.add(lost, 100)
    fake_node.add(named, 120)
    fake_node.pin_errors[lost] = "context deadline exceeded"
    ctx = console.runner.TaskContext({"id": 1, "task_type": "car_import", "params": "{}"}, settings.db,
                                     fake_node.url, out=io.StringIO())
    ctx.result = {"done": 0, "failed": 0, "roots": [], "error_details": []}
    client = console.rpc.IPFSClient(fake_node.url)
    for root in (lost, named):
        record_root(ctx, client, db, {"Cid": {"/": root}}, {}, "imported")
    client.close()
    assert (ctx.result["done"], ctx.result["failed"]) == (1, 1)
    assert ctx.result["error_details"] == [{"cid": lost, "error": "context deadline exceeded"}]
    assert {row[0]: row[1] for row in db.execute("SELECT cid, name FROM pins")} == {named: "imported"}
