"""Pin sizes: the cumulative size of each pin, looked up pipelined on
several keep-alive connections (``SizeLookups``), or one at a time.
"""

import contextlib
import os
import queue
import threading
import traceback

from console.framing import IPFSError

SIZE_PAGE = 2048       # unsized pins read from the catalogue at a time
STAT_OPTIONS = [("offline", "true"), ("timeout", "10s")]


def setting(name, default, low, high):
    """A whole-number tuning setting from the environment, kept within bounds."""
    raw = os.environ.get(name, "")
    return max(low, min(high, int(raw))) if raw.isdigit() else default


def size_concurrency():
    """Connections the size look-ups use at once."""
    return setting("IPFSMASTER_SIZE_CONCURRENCY", 8, 1, 64)


def size_pipeline():
    """Look-ups sent together on one connection; 1 sends one at a time (for a
    proxy in front of the node that does not take pipelined requests)."""
    return setting("IPFSMASTER_SIZE_PIPELINE", 64, 1, 256)


def pin_sizes(client, cids):
    """The sizes of several pins (or the IPFSError for each that has none).

    The files/stat look-ups go out pipelined; any that did not give a size
    are done again one by one by ``pin_size``, with its fallback and retries.
    """
    try:
        answers = client.call_many("files/stat", ["/ipfs/" + cid for cid in cids], STAT_OPTIONS)
    except IPFSError:
        answers = []
    sizes = [answer.get("CumulativeSize") if type(answer) is dict else None for answer in answers]
    sizes += [None] * (len(cids) - len(sizes))
    for index, size in enumerate(sizes):
        if type(size) is not int:
            answer = answers[index] if index < len(answers) else None
            sizes[index] = pin_size(client, cids[index], answer if isinstance(answer, IPFSError) else None)
    return sizes



def stat_args(cid):
    return [("arg", "/ipfs/" + cid)] + STAT_OPTIONS


def pin_size(client, cid, files_stat_error=None):
    """The cumulative size of a pin, or the IPFSError that prevented it.

    files/stat reads only the root block; offline and with a timeout, a
    missing block cannot hang the worker. Non-UnixFS pins fall back to the
    root block's size from block/stat. A node's error answer is returned, to
    be counted. A transient error (the node unreachable even after retries) is raised:
    it fails the whole sync rather than every remaining pin one by one.
    """
    first = files_stat_error
    if first is None or first.transient:
        try:
            stat = client.call("files/stat", stat_args(cid))
            return int(stat["CumulativeSize"])
        except IPFSError as exc:
            if exc.transient:
                raise
            first = exc
        except (KeyError, TypeError, ValueError, OverflowError):
            first = IPFSError("IPFS files/stat gave no size for %s" % cid)
    try:
        stat = client.call("block/stat", [("arg", cid), ("offline", "true"), ("timeout", "10s")])
        return int(stat["Size"])
    except IPFSError as exc:
        if exc.transient:
            raise
        return first
    except (KeyError, TypeError, ValueError, OverflowError):
        return first


class SizeLookups:
    """Size look-ups on N threads, each with its own keep-alive connection,
    taking a batch of pins at a time (looked up pipelined, see pin_sizes).

    ``submit`` hands over (key, cid) rows, with a tag; ``answers`` gives
    back the tag and a list of (key, cid, size or IPFSError) for each batch. A node that cannot be reached at all
    (a transient error that outlived the retries) is raised from ``answers``, as a final error.
    """

    def __init__(self, ctx):
        self.ctx = ctx
        self.workers, self.batch = size_concurrency(), size_pipeline()
        self.depth = self.workers * self.batch * 4   # pins queued that keep every connection busy
        self.todo, self.done = queue.Queue(), queue.Queue()
        self.waiting = 0
        self.clients, self.threads = [], []

    def hungry(self, lead):
        """Whether fewer than ``lead`` pins wait for a thread to take them
        (answers not collected yet do not count: collecting may lag)."""
        return self.todo.qsize() * self.batch < lead

    def room(self, lead):
        """How many pins to hand over next towards ``lead`` waiting: at least
        a batch, at most a page."""
        return min(SIZE_PAGE, max(self.batch, lead - self.todo.qsize() * self.batch))

    @property
    def idle(self):
        return self.waiting == 0

    def submit(self, rows, early):
        if not self.threads:
            self.start()
        for start in range(0, len(rows), self.batch):
            self.todo.put((early, rows[start:start + self.batch]))
        self.waiting += len(rows)

    def start(self):
        self.clients = [self.ctx.client(timeout=30.0) for _ in range(self.workers)]
        self.threads = [threading.Thread(target=self.run, args=(client,), name="size-%d" % n, daemon=True)
                        for n, client in enumerate(self.clients)]
        for thread in self.threads:
            thread.start()

    def run(self, client):
        while True:
            task = self.todo.get()
            if task is None:
                return
            tag, batch = task
            try:
                keys, cids = zip(*batch)
                self.done.put((tag, list(zip(keys, cids, pin_sizes(client, cids)))))
            except IPFSError as exc:  # the node is unreachable: the sync fails
                self.done.put(exc)
                return
            except Exception as exc:  # anything else would leave the sync waiting for this batch forever
                self.done.put(IPFSError("a size look-up failed: %s: %s" % (type(exc).__name__, exc)))
                traceback.print_exc(file=self.ctx.out)
                return

    def answers(self, wait=False):
        try:
            answers = self.done.get(timeout=0.2) if wait else self.done.get_nowait()
        except queue.Empty:
            return
        while True:
            if isinstance(answers, IPFSError):
                # Final: the look-up had its retries, and the listing must not
                # be started again for it (see PinSync.list_pins).
                raise IPFSError(str(answers)) from answers
            self.waiting -= len(answers[1])
            yield answers
            try:
                answers = self.done.get_nowait()
            except queue.Empty:
                return

    def close(self):
        for client in self.clients:
            client.interrupt()
        with contextlib.suppress(queue.Empty):
            while True:
                self.todo.get_nowait()
        for _ in self.threads:
            self.todo.put(None)
