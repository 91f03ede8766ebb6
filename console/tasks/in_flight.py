"""Several CIDs of a pin task in flight at once, each thread on its own
keep-alive connection, the catalogue written by the task's own thread.

A pin task's item is two steps: what the node does (``remote``, on a
thread: the calls, which wait on the node) and the record of it
(``record``, on the task's thread: the catalogue). Up to
``pin_concurrency()`` items are with the node at once, and as many again
wait for a free thread (items in flight, for what follows); the answers
are recorded as they come, those that came together in one transaction,
and counted done or failed. A stop hands out no waiting item.

What a task owes a retry stays exact (see common.PinItems): while items
are in flight, ``next_index`` (and ``inherited_next``) stand at the
oldest item not finished, so a worker killed at any moment leaves a
retry every item it had not finished (and at most the few finished after
it, done again: pinning twice is harmless). A task that stops (a cancel)
first writes the items it had in flight to its ``undone`` file and then
moves ``next_index`` past everything it read: a retry does those and
nothing it finished.
"""

import queue
import sqlite3
import threading
import time

from console.runner import TaskStopped
from console.tasks.sizes import setting

KINDS = ("inherited_next", "next_index")
MAX_BATCH = 256       # answers recorded in one transaction at most
READ_AHEAD = 2        # items handed out per thread: each finds its next one waiting
GATHER_S = 0.003      # after an answer, the wait for others to record with it


def pin_concurrency():
    """CIDs a pin_add task has with the node at once."""
    return setting("IPFSMASTER_PIN_CONCURRENCY", 4, 1, 64)


class Step:
    """The two halves of one item: ``remote(client, clock, cid, name)`` on a
    thread returns (error or None, what to record); ``record(conn, done)``
    on the task's thread writes the catalogue for the items done,
    ``(cid, name, data)`` each: all the answers that came meanwhile, at
    once. ``clock`` is a connection of the thread's own, for ``catalogue.now``."""

    def __init__(self, remote, record, make_client):
        self.remote, self.record, self.make_client = remote, record, make_client


def run_in_flight(ctx, conn, items, step, workers):
    """Every item of ``items`` (a common.PinItems) through ``step``, up to
    ``workers`` at once."""
    InFlight(ctx, conn, items, step, workers).run()


class InFlight:
    def __init__(self, ctx, conn, items, step, workers):
        self.ctx, self.conn, self.items, self.step, self.workers = ctx, conn, items, step, workers
        self.todo, self.done = queue.Queue(), queue.Queue()
        self.flying = {}              # key -> (kind, index, cid, name), in the order they were read
        self.read_upto = {}           # kind -> index after the last item read
        self.threads, self.clients = [], []
        self.next_key = 0
        self.wound_down = False

    def run(self):
        ctx = self.ctx
        source = self.items.positions()
        exhausted = False
        try:
            while True:
                while not exhausted and len(self.flying) < self.workers * READ_AHEAD:
                    ctx.check()
                    entry = next(source, None)
                    if entry is None:
                        exhausted = True
                        break
                    self.dispatch(*entry)
                if not self.flying:
                    return
                try:
                    answers = [self.done.get(timeout=0.1)]
                except queue.Empty:
                    ctx.check()
                    continue
                # A moment for the other threads' answers: one wake-up and one
                # transaction for several, where each would cost its own.
                time.sleep(GATHER_S)
                while len(answers) < MAX_BATCH:
                    try:
                        answers.append(self.done.get_nowait())
                    except queue.Empty:
                        break
                self.finish(answers)
        except TaskStopped:
            self.wind_down(owe=True)
            raise
        finally:
            self.wind_down(owe=False)

    def dispatch(self, cid, name, kind, index, fresh):
        self.read_upto[kind] = index + 1
        if fresh:
            if not self.threads:
                self.start()
            key, self.next_key = self.next_key, self.next_key + 1
            self.flying[key] = (kind, index, cid, name)
            self.todo.put((key, cid, name))
        self.settle()

    def start(self):
        for number in range(self.workers):
            client = self.step.make_client()
            self.clients.append(client)
            thread = threading.Thread(target=self.work, args=(client,), name="pin-%d" % number, daemon=True)
            self.threads.append(thread)
            thread.start()

    def work(self, client):
        clock = sqlite3.connect(":memory:")
        try:
            while True:
                job = self.todo.get()
                if job is None:
                    return
                key, cid, name = job
                try:
                    outcome = self.step.remote(client, clock, cid, name)
                except BaseException as exc:      # raised again on the task's thread
                    outcome = exc
                self.done.put((key, outcome))
        finally:
            clock.close()
            client.close()

    def finish(self, answers):
        """Record the items ``answers`` finish, then raise the first error a thread raised, if any."""
        raised, done = None, []
        for key, outcome in answers:
            if isinstance(outcome, BaseException):
                raised = raised or outcome
                continue
            kind, index, cid, name = self.flying.pop(key)
            error, data = outcome
            if error is None:
                done.append((cid, name, data))
            else:
                self.items.failed(cid, name, error)
        self.record(done)
        self.settle()
        if raised is not None:
            raise raised

    def record(self, done):
        """The catalogue for the items ``done`` ((cid, name, data) each), then their count."""
        if done:
            self.step.record(self.conn, done)
            for cid, _, _ in done:
                self.items.done(cid)

    def settle(self):
        """Where a retry would take up: at the oldest item in flight of each kind."""
        result = self.ctx.result
        for kind in KINDS:
            if kind in self.read_upto:
                result[kind] = min((flying[1] for flying in self.flying.values() if flying[0] == kind),
                                   default=self.read_upto[kind])
        oldest = next(iter(self.flying.values()), None)
        if oldest is not None:
            self.ctx.current_item = oldest[2]

    def wind_down(self, owe):
        """End the threads (their requests dropped) and record what the node
        did meanwhile. ``owe`` (a stop): what was still in flight goes to
        the undone file, and the retry's place moves past everything read;
        else (a failure) the place stays at the oldest item not finished."""
        if self.wound_down:
            return
        self.wound_down = True
        while True:         # items no thread has begun stay in flight: owed, or where a retry takes up
            try:
                self.todo.get_nowait()
            except queue.Empty:
                break
        for _ in self.threads:
            self.todo.put(None)
        for client in self.clients:
            client.interrupt()
        for thread in self.threads:
            thread.join(30)
        done = []
        while True:
            try:
                key, outcome = self.done.get_nowait()
            except queue.Empty:
                break
            if key in self.flying and not isinstance(outcome, BaseException) and outcome[0] is None:
                kind, index, cid, name = self.flying.pop(key)
                done.append((cid, name, outcome[1]))
        self.record(done)
        if owe:
            for kind, index, cid, name in self.flying.values():
                self.items.owe(cid, name)
            self.flying.clear()
        self.settle()
