#!/usr/bin/env python3
"""pin_add at scale: a list of CIDs the node already has, pinned by the
pin_add task, against the same pins made by a plain client.

    IPFS_BIN=$(sh tests/get_kubo.sh) python3 bench/pin_add.py [--count 100000]

1. Starts a Kubo node of its own (tests/ipfs_node.py: offline, loopback,
   a temporary repository) and puts 3 x COUNT small raw blocks in it with
   one ``dag/import`` of a CAR file, unpinned.
2. Pins the first COUNT with IPFSMaster: the list goes through the same
   check and spool as ``POST /pins/add`` (``start_pin_add``), then the real
   worker process runs the task (the node's named pins listed once, pin/add
   with progress and a time-out, the catalogue written as the answers
   come). The worker's resident memory is sampled twice a second, with the
   progress it had then, and the CPU time of the node and of each client
   is read (``/proc``, and the children's resource usage).
3. Pins the next COUNT with a plain client: one keep-alive connection,
   ``pin/add?arg=CID`` one after the other, nothing else; and the last
   COUNT the same way over as many connections as the task has CIDs in
   flight (``--concurrency``), the fair comparison. The plain client runs
   in a process of its own at the worker's niceness, so that both get
   the same share of a busy machine's CPU.

Prints the figures: time and rate of each, and the worker's memory over
the run (flat: the list streams from its spool file, nothing grows with it).
"""

import argparse
import hashlib
import http.client
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests"), os.path.join(ROOT, "bench")]

import console.pin_input  # noqa: E402
import console.processes  # noqa: E402
import console.settings  # noqa: E402
import console.store  # noqa: E402
from floor import cpu_seconds  # noqa: E402
from ipfs_node import IPFSNode  # noqa: E402
from worker import WORKER_NICENESS  # noqa: E402


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def raw_cid(data):
    """CIDv1, raw codec, sha2-256: its bytes and its base32 text."""
    import base64
    binary = b"\x01\x55\x12\x20" + hashlib.sha256(data).digest()
    return binary, "b" + base64.b32encode(binary).decode().lower().rstrip("=")


def car_file(path, count):
    """A CARv1 of ``count`` raw blocks; returns their CIDs (text)."""
    cids = []
    with open(path, "wb") as out:
        blocks = []
        for number in range(count):
            data = b"ipfsmaster pin_add benchmark block %d" % number
            binary, text = raw_cid(data)
            cids.append(text)
            blocks.append(varint(len(binary) + len(data)) + binary + data)
        root = raw_cid(b"ipfsmaster pin_add benchmark block 0")[0]
        # dag-cbor {"roots": [CID], "version": 1}; a CID is tag 42 over its bytes with a 0 prefix.
        header = (b"\xa2\x65roots\x81\xd8\x2a\x58\x25\x00" + root + b"\x67version\x01")
        out.write(varint(len(header)) + header)
        out.write(b"".join(blocks))
    return cids


def import_blocks(node, folder, count):
    """``count`` raw blocks put into ``node`` unpinned (a CAR through
    dag/import); returns their CIDs."""
    car = os.path.join(folder, "blocks.car")
    cids = car_file(car, count)
    with open(car, "rb") as f:
        body, headers = node.multipart([("blocks.car", f.read())])
    status, _, data = node.request("dag/import", {"pin-roots": "false"}, body, headers, timeout=1800)
    if status != 200:
        raise SystemExit("dag/import: HTTP %d %s" % (status, data[:300]))
    return cids


def children_cpu():
    """CPU seconds (user and system) of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CPU:
    """CPU seconds the node and our own side (a waited-for child) used between start and stop."""

    def __init__(self, node):
        self.node = node
        self.start_node, self.start_ours = cpu_seconds(node.pid), children_cpu()

    def stop(self):
        self.node_s = cpu_seconds(self.node.pid) - self.start_node
        self.ours_s = children_cpu() - self.start_ours
        return self


def rss_kib(pid, field="VmRSS"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pin_with_ipfsmaster(node, cids, folder):
    settings = console.settings.Settings(db=os.path.join(folder, "bench.db"), ipfs_api=node.api_url)
    console.store.init_db(settings.db)
    conn = console.store.connect(settings.db)
    list_path = os.path.join(folder, "list.txt")
    with open(list_path, "w") as f:
        f.writelines(cid + "\n" for cid in cids)

    def fill(writer):
        with open(list_path, "rb") as f:
            for block in iter(lambda: f.read(65536), b""):
                writer.feed(block)

    console.processes.spawn_worker = lambda settings, task_id: None   # the worker is started below, watched
    task_id, summary = console.pin_input.start_pin_add(settings, conn, fill)
    assert summary["valid"] == len(cids), summary
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-S", os.path.join(ROOT, "worker.py"), str(task_id), "--db", settings.db],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    samples = []          # (seconds, progress, RSS KiB)
    peak = 0
    while proc.poll() is None:
        rss, hwm = rss_kib(proc.pid), rss_kib(proc.pid, "VmHWM")
        peak = max(peak, hwm or 0)
        progress = conn.execute("SELECT progress FROM background_tasks WHERE id = ?", (task_id,)).fetchone()[0]
        if rss:
            samples.append((time.perf_counter() - started, progress, rss))
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    task = console.store.task_as_json(console.store.get_task(conn, task_id))
    pinned = conn.execute("SELECT COUNT(*) FROM pins WHERE size IS NOT NULL").fetchone()[0]
    conn.close()
    return elapsed, task, pinned, samples, peak


def plain_client(port, cids, connections):
    """``pin/add?arg=CID`` for each CID and nothing else, over ``connections``
    keep-alive connections at once (a thread each, the CIDs dealt out in
    turn); the seconds it took."""
    failures = []

    def run(mine):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for cid in mine:
            conn.request("POST", "/api/v0/pin/add?arg=" + cid, headers={"User-Agent": "bench"})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                failures.append("pin/add %s: HTTP %d %s" % (cid, resp.status, body[:200]))
                break
        conn.close()

    threads = [threading.Thread(target=run, args=(cids[n::connections],)) for n in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(failures[0])
    return elapsed


def pin_with_plain_client(node, cids, folder, connections=1):
    """The plain client in a process of its own, at the worker's niceness
    (worker.py lowers its own priority): both get the same share of the CPU."""
    path = os.path.join(folder, "plain.txt")
    with open(path, "w") as f:
        f.writelines(cid + "\n" for cid in cids)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--plain", path, "--port", str(node.api_port),
                          "--concurrency", str(connections)], stdout=subprocess.PIPE, check=True,
                         preexec_fn=lambda: os.nice(WORKER_NICENESS))
    return float(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100000, help="CIDs pinned each way (default 100000)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="CIDs in flight: the task's (IPFSMASTER_PIN_CONCURRENCY) and the fair plain client's")
    parser.add_argument("--plain", help=argparse.SUPPRESS)     # the plain client's own process: its CIDs
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        with open(args.plain) as f:
            print(plain_client(args.port, f.read().split(), args.concurrency))
        return
    os.environ["IPFSMASTER_PIN_CONCURRENCY"] = str(args.concurrency)
    folder = tempfile.mkdtemp(prefix="ipfsmaster-bench-pin-add-")
    node = IPFSNode(os.path.join(folder, "node"), startup_timeout=120)
    node.start()
    try:
        started = time.perf_counter()
        cids = import_blocks(node, folder, 3 * args.count)
        made = time.perf_counter() - started
        print("node: Kubo %s; %d raw blocks imported (unpinned) in %.1f s"
              % (node.rpc("version")["Version"], len(cids), made), flush=True)

        cpu_ours = CPU(node)
        ours, task, pinned, samples, peak = pin_with_ipfsmaster(node, cids[:args.count], folder)
        cpu_ours.stop()
        if task["status"] != "completed" or task["result"]["done"] != args.count:
            raise SystemExit("the pin_add task did not pin everything: %s" % json.dumps(task)[:2000])
        cpu_plain = CPU(node)
        plain = pin_with_plain_client(node, cids[args.count:2 * args.count], folder)
        cpu_plain.stop()
        cpu_fair = CPU(node)
        fair = pin_with_plain_client(node, cids[2 * args.count:], folder, args.concurrency)
        cpu_fair.stop()

        print("pin_add task: %d CIDs in %.1f s, %.0f CIDs/s (%d in flight; the named pins listed once,"
              " pin/add with progress, catalogue); %d in the catalogue with a size"
              % (args.count, ours, args.count / ours, args.concurrency, pinned))
        print("plain client: %d CIDs in %.1f s, %.0f CIDs/s (pin/add alone, one keep-alive connection)"
              % (args.count, plain, args.count / plain))
        print("plain client, %d connections: %d CIDs in %.1f s, %.0f CIDs/s (pin/add alone, %d in flight)"
              % (args.concurrency, args.count, fair, args.count / fair, args.concurrency))
        print("pin_add / plain: %.2f; pin_add / plain with as many in flight: %.2f"
              % (plain / ours, fair / ours))
        print("CPU seconds, node + client: pin_add task %.1f + %.1f; plain %.1f + %.1f; plain, %d connections %.1f + %.1f"
              % (cpu_ours.node_s, cpu_ours.ours_s, cpu_plain.node_s, cpu_plain.ours_s, args.concurrency,
                 cpu_fair.node_s, cpu_fair.ours_s))
        marks = []
        for fraction in (0.1, 0.25, 0.5, 0.75, 0.9):
            sample = next((s for s in samples if s[1] >= fraction * args.count), None)
            if sample:
                marks.append("%d%%: %.1f MB" % (fraction * 100, sample[2] / 1024))
        print("worker RSS at progress " + ", ".join(marks) + "; peak %.1f MB" % (peak / 1024))
    finally:
        node.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
