#!/usr/bin/env python3
"""IPFSMaster's benchmark: pin syncs on a synthetic node and on Kubo, and a 1 GiB upload.

    python3 bench/run.py [--sizes 100000,1000000] [--kubo-pins 100000] [--concurrency 8]
                         [--pollers 50] [--upload-mib 1024] [--out bench/results/latest.txt]

Everything runs on 127.0.0.1 as separate processes: the nodes, the real
server (``ipfsmaster.py serve``), the real detached workers it starts, and
the pollers (bench/pollers.py). The nodes are the synthetic node
(bench/synthetic_node.py, a stand-in that answers the RPC calls the worker
makes, with generated pins, at 100k and 1M pins) and Kubo
(bench/kubo.py: a real node with ``--kubo-pins`` pinned files; $IPFS_BIN
or ``sh tests/get_kubo.sh`` provides it). On each it measures:

- the floor: reading the listing alone, and the size look-ups alone at the
  same concurrency, with plain standard-library calls and with the worker's
  client but no database (bench/floor.py);
- a first sync (listing, catalogue, every size) and re-syncs where nothing
  changed: wall time, pins per second, the worker's peak resident memory;
- the status-poll latency of 50 pollers, each polling once a second like an
  open pins page, during every sync;
- the time from POST /pins/sync to the task being running.

Then a 1 GiB upload through POST /files/upload, for the peak memory of the
server and of the worker. It prints each target with PASS or FAIL and writes
the report to --out. Every process it starts is ended by pid at the end.
"""

import argparse
import http.client
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MiB = 1024 * 1024


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------

class Started:
    """A process that prints its URL on its first line; ended by pid."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, cwd=ROOT, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        urls = [word.rstrip("/,") for word in line.split() if word.startswith("http://")]
        if not urls:
            self.stop()
            raise SystemExit("%s did not start: %r" % (" ".join(args), line))
        self.url = urls[0]
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def memory_mb(pid, field="VmHWM"):
    """A process's peak (VmHWM) or current (VmRSS) resident memory in MB, or None once gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Samples a process's VmHWM until it exits or stop() is called."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0.0
        self.cpu_s = 0.0          # its CPU time when last seen (a worker's, nearly all of it)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            value, cpu = memory_mb(self.pid), cpu_seconds(self.pid)
            if value is None or cpu is None:
                return
            self.peak, self.cpu_s = max(self.peak, value), cpu
            time.sleep(0.02)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return self.peak


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def task(server, task_id):
    return request(server, "GET", "/pins/task-status?id=%d" % task_id)[1]


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------

def floor(url, concurrency, lookups, node_pid=None):
    out = subprocess.run([sys.executable, os.path.join(HERE, "floor.py"), "--api", url, "--concurrency",
                          str(concurrency), "--lookups", str(lookups)]
                         + (["--node-pid", str(node_pid)] if node_pid else []), stdout=subprocess.PIPE, check=True)
    return json.loads(out.stdout)


def cpu_seconds(pid):
    """A process's CPU time so far (user and system), in seconds, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_pollers(server, count):
    """``count`` pollers, ten threads to a process, waiting to be told the task."""
    procs = []
    while count > 0:
        threads = min(10, count)
        procs.append(subprocess.Popen([sys.executable, os.path.join(HERE, "pollers.py"), "--url", server.url,
                                       "--task", "-", "--pollers", str(threads)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
                                      start_new_session=True))
        count -= threads
    return procs


def tell_pollers(procs, task_id):
    for proc in procs:
        proc.stdin.write(b"%d\n" % task_id)
        proc.stdin.close()


def collect_pollers(procs):
    latencies, errors = [], 0
    for proc in procs:
        out = proc.stdout.read()
        proc.wait(timeout=120)
        data = json.loads(out)
        latencies += data["latencies_ms"]
        errors += data["error_count"]
    return latencies, errors


def sync(server, pollers, node_pid=None):
    """One pin sync, watched: returns its figures. The pollers' processes
    start first, like pages that are already open. With ``node_pid``, the
    CPU time the node and the worker used during it too."""
    procs = start_pollers(server, pollers)
    try:
        time.sleep(1.0)
        node_cpu = cpu_seconds(node_pid) if node_pid else None
        started = time.perf_counter()
        status, answer = request(server, "POST", "/pins/sync")
        if status != 202:
            raise SystemExit("POST /pins/sync answered %d: %r" % (status, answer))
        task_id = answer["taskId"]
        while True:
            current = task(server, task_id)
            if current["status"] != "pending":
                break
            time.sleep(0.002)
        to_running = time.perf_counter() - started
    except BaseException:
        for proc in procs:
            proc.kill()
            proc.wait()
        raise
    memory = PeakMemory(current["pid"]) if current["pid"] else None
    tell_pollers(procs, task_id)
    shown = None      # when the catalogue was the listing, with sizes still to come (result.phase)
    while current["status"] in ("pending", "running"):
        # Finely near the end, not to add to the time measured; not so
        # often before, not to add to the pollers' load.
        near_end = current["total"] and current["progress"] >= 0.95 * current["total"]
        time.sleep(0.01 if near_end else 0.1)
        current = task(server, task_id)
        if shown is None and (current.get("result") or {}).get("phase") == "sizes":
            shown = time.perf_counter() - started
    wall = time.perf_counter() - started
    if node_cpu is not None:
        node_cpu = cpu_seconds(node_pid) - node_cpu
    peak = memory.stop() if memory else None
    latencies, errors = collect_pollers(procs)
    if current["status"] != "completed":
        raise SystemExit("the sync ended %s: %s" % (current["status"], current["error_message"]))
    return {"wall_s": wall, "to_running_s": to_running, "worker_peak_mb": peak, "result": current["result"],
            "latencies_ms": latencies, "poll_errors": errors, "node_cpu_s": node_cpu, "shown_s": shown,
            "worker_cpu_s": memory.cpu_s if memory else None}


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def bench_size(pins, args, work, cluster=False):
    """Floor, first sync and re-syncs at one size, on the synthetic node,
    through its stand-in for IPFS Cluster's REST API if ``cluster``."""
    node = Started([sys.executable, os.path.join(HERE, "synthetic_node.py"), "--pins", str(pins)]
                   + (["--cluster"] if cluster else []))
    try:
        return bench_node(node.url, pins, args, os.path.join(work, "cluster" if cluster else "node"),
                          cluster_api=node.url if cluster else None)
    finally:
        node.stop()


def bench_kubo(pins, args, work):
    """Floor, first sync and re-syncs on Kubo with ``pins`` pinned files."""
    from kubo import kubo_with_pins
    node = kubo_with_pins(pins)
    try:
        version = node.rpc("version")["Version"]
        figures = bench_node(node.api_url, len(node.pin_ls(type="recursive")), args, os.path.join(work, "kubo"),
                             node_pid=node.pid)
        figures["kubo"] = version
        return figures
    finally:
        node.stop()


def bench_node(url, pins, args, work, cluster_api=None, node_pid=None):
    """Floor, first sync and re-syncs against the node at ``url``, which has
    ``pins`` pins, and the cluster at ``cluster_api`` if given."""
    server = None
    os.makedirs(work, exist_ok=True)
    try:
        lookups = min(pins, args.floor_lookups)
        measured = floor(url, args.concurrency, lookups, node_pid)
        db = os.path.join(work, "bench-%d.db" % pins)
        command = [sys.executable, os.path.join(ROOT, "ipfsmaster.py"), "serve", "--port", "0", "--db", db,
                   "--ipfs-api", url] + (["--cluster-api", cluster_api] if cluster_api else [])
        os.environ["IPFSMASTER_SIZE_CONCURRENCY"] = str(args.concurrency)
        server = Started(command)
        print("  %d pins: floor listing %.2f s, %d look-ups at %.0f/s" % (
            pins, measured["listing_s"], lookups, measured["lookups_per_s"]), flush=True)
        first = sync(server, args.pollers, node_pid)
        print("  first sync %.1f s (%.0f pins/s; %.2f s in the worker), worker peak %.1f MB, poll p99 %.1f ms" % (
            first["wall_s"], pins / first["wall_s"], first["result"]["duration_s"], first["worker_peak_mb"] or 0,
            percentile(first["latencies_ms"], 0.99)), flush=True)
        resyncs = []
        for _ in range(args.resyncs):
            resyncs.append(sync(server, args.pollers))
            print("  re-sync %.2f s, worker peak %.1f MB, poll p99 %.1f ms" % (
                resyncs[-1]["wall_s"], resyncs[-1]["worker_peak_mb"] or 0,
                percentile(resyncs[-1]["latencies_ms"], 0.99)), flush=True)
        changed = None
        if cluster_api:
            changed = resync_after_changes(server, cluster_api, db, args)
        conn = sqlite3.connect(db)
        catalogued, unsized = conn.execute("SELECT COUNT(*), COUNT(*) - COUNT(size) FROM pins").fetchone()
        conn.close()
        runs = [first] + resyncs
        latencies = [x for run in runs for x in run["latencies_ms"]]
        return {
            "pins": pins, "catalogued": catalogued, "unsized": unsized, "floor": measured,
            "first_sync_s": first["wall_s"], "first_pins_per_s": pins / first["wall_s"],
            "first_cpu": {"node_s": first["node_cpu_s"], "worker_s": first["worker_cpu_s"]},
            "first_shown_s": first["shown_s"],
            "first_worker_peak_mb": first["worker_peak_mb"], "first_poll_p99_ms": percentile(first["latencies_ms"], 0.99),
            "resync_s": statistics.median(run["wall_s"] for run in resyncs),
            "resync_pins_per_s": pins / statistics.median(run["wall_s"] for run in resyncs),
            "worker_peak_mb": max(run["worker_peak_mb"] or 0 for run in runs),
            "to_running_ms": [run["to_running_s"] * 1000 for run in runs],
            "polls": len(latencies), "poll_errors": sum(run["poll_errors"] for run in runs),
            "poll_median_ms": statistics.median(latencies) if latencies else float("nan"),
            "poll_p99_ms": percentile(latencies, 0.99), "changed": changed,
        }
    finally:
        if server:
            server.stop()


def resync_after_changes(server, cluster_url, db, args):
    """Through the synthetic cluster, ``args.change_rounds`` rounds of: a
    re-sync where nothing changed, then one after one pin's status changed
    (one peer fails it, then has it again), then one where nothing changed
    but the listing is compared all the same (the catalogue's memory of its
    last listing forgotten first, as a change by a task would). Each pair is
    timed back to back, so that the machine's load moves both alike: the
    median seconds of each kind."""
    unchanged, one, compared = [], [], []
    for _ in range(args.change_rounds):
        unchanged.append(sync(server, args.pollers)["wall_s"])
        parts = urlsplit(cluster_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.request("POST", "/bench/change-pin")
        conn.getresponse().read()
        conn.close()
        one.append(sync(server, args.pollers)["wall_s"])
        forget = sqlite3.connect(db)
        forget.execute("DELETE FROM last_listing")
        forget.commit()
        forget.close()
        compared.append(sync(server, args.pollers)["wall_s"])
    print("  re-syncs, in %d rounds: nothing changed %s s; one pin changed %s s; compared, nothing changed %s s" % (
        args.change_rounds, " ".join("%.2f" % x for x in unchanged), " ".join("%.2f" % x for x in one),
        " ".join("%.2f" % x for x in compared)), flush=True)
    return {"unchanged_s": statistics.median(unchanged), "one_changed_s": statistics.median(one),
            "compared_s": statistics.median(compared)}


def bench_upload(args, work):
    """A large file through POST /files/upload: peak memory of server and worker."""
    node = Started([sys.executable, os.path.join(HERE, "synthetic_node.py"), "--pins", "1"])
    server = Started([sys.executable, os.path.join(ROOT, "ipfsmaster.py"), "serve", "--port", "0", "--db",
                      os.path.join(work, "upload.db"), "--ipfs-api", node.url])
    try:
        size = args.upload_mib * MiB
        block = os.urandom(MiB)
        boundary = "benchboundary"
        head = ('--%s\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
                'Content-Type: application/octet-stream\r\n\r\n' % boundary).encode()
        tail = ("\r\n--%s--\r\n" % boundary).encode()
        server_memory = PeakMemory(server.pid)
        started = time.perf_counter()
        conn = http.client.HTTPConnection(server.host, server.port, timeout=600)
        conn.putrequest("POST", "/files/upload")
        conn.putheader("Content-Type", "multipart/form-data; boundary=" + boundary)
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        conn.send(head)
        for _ in range(args.upload_mib):
            conn.send(block)
        conn.send(tail)
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        conn.close()
        received = time.perf_counter() - started
        if resp.status != 202:
            raise SystemExit("upload answered %d: %r" % (resp.status, answer))
        task_id = answer["taskId"]
        current = task(server, task_id)
        while current["status"] == "pending":
            time.sleep(0.005)
            current = task(server, task_id)
        worker_memory = PeakMemory(current["pid"])
        while current["status"] == "running":
            time.sleep(0.1)
            current = task(server, task_id)
        total = time.perf_counter() - started
        worker_peak = worker_memory.stop()
        server_peak = server_memory.stop()
        if current["status"] != "completed":
            raise SystemExit("the upload ended %s: %s" % (current["status"], current["error_message"]))
        return {"mib": args.upload_mib, "receive_s": received, "total_s": total, "server_peak_mb": server_peak,
                "worker_peak_mb": worker_peak, "cid": current["result"]["cid"]}
    finally:
        server.stop()
        node.stop()


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------

def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpus": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version, "system": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def targets(sizes, kubo, cluster, upload):
    """(name, figure, limit, passed) for each target that this run measured."""
    checks = []
    node = {size["pins"]: size for size in sizes}.get(cluster["pins"]) if cluster else None
    if node:
        ratio = cluster["resync_s"] / node["resync_s"]
        checks.append(("re-sync through the cluster / re-sync of the node alone", ratio, "<= 3.0", ratio <= 3.0))
    if cluster and cluster.get("changed"):
        ratio = cluster["changed"]["one_changed_s"] / cluster["changed"]["unchanged_s"]
        checks.append(("cluster re-sync, one pin changed / none changed", ratio, "<= 1.2", ratio <= 1.2))
    if kubo:
        ratio = kubo["first_sync_s"] / (kubo["pins"] / kubo["floor"]["lookups_per_s"])
        checks.append(("first sync on Kubo / look-ups alone", ratio, "<= 1.25", ratio <= 1.25))
        checks.append(("worker peak RSS during the first sync on Kubo (MB)", kubo["first_worker_peak_mb"], "<= 80",
                       kubo["first_worker_peak_mb"] <= 80))
        checks.append(("status poll p99 during the first sync on Kubo (ms)", kubo["first_poll_p99_ms"], "<= 25",
                       kubo["first_poll_p99_ms"] <= 25))
        ratio = kubo["resync_s"] / kubo["floor"]["listing_s"]
        checks.append(("re-sync on Kubo / listing alone", ratio, "<= 2.0", ratio <= 2.0))
        checks.append(("worker peak RSS on Kubo (MB)", kubo["worker_peak_mb"], "<= 80", kubo["worker_peak_mb"] <= 80))
    by_pins = {size["pins"]: size for size in sizes}
    big = by_pins.get(1000000)
    if big:
        checks.append(("re-sync of 1M unchanged pins (s)", big["resync_s"], "<= 20", big["resync_s"] <= 20))
        ratio = big["resync_s"] / big["floor"]["listing_s"]
        checks.append(("re-sync of 1M / listing alone", ratio, "<= 2.0", ratio <= 2.0))
        checks.append(("worker peak RSS at 1M (MB)", big["worker_peak_mb"], "<= 80", big["worker_peak_mb"] <= 80))
        checks.append(("status poll p99 during 1M syncs (ms)", big["poll_p99_ms"], "<= 25",
                       big["poll_p99_ms"] <= 25 and big["poll_errors"] == 0))
    small = by_pins.get(100000)
    if small:
        share = small["first_pins_per_s"] / small["floor"]["lookups_per_s"]
        checks.append(("first sync of 100k / look-up floor", share, ">= 0.80", share >= 0.80))
    to_running = [ms for size in sizes for ms in size["to_running_ms"]]
    if to_running:
        median = statistics.median(to_running)
        checks.append(("POST to running, median (ms)", median, "<= 500", median <= 500))
    if upload:
        checks.append(("server peak RSS, %d MiB upload (MB)" % upload["mib"], upload["server_peak_mb"], "< 64",
                       upload["server_peak_mb"] < 64))
        checks.append(("worker peak RSS, %d MiB upload (MB)" % upload["mib"], upload["worker_peak_mb"], "< 64",
                       upload["worker_peak_mb"] < 64))
    return checks


def sizes_table(sizes):
    lines = ["| pins | first sync | pins/s | re-sync | pins/s | listing alone | look-ups alone | worker peak RSS "
             "| poll median / p99 | POST to running (median) |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size in sizes:
        lines.append("| %s | %.1f s | %s | %.2f s | %s | %.2f s | %s/s | %.1f MB | %.1f / %.1f ms (%d polls, %d errors) "
                     "| %.0f ms |" % (
                         "{:,}".format(size["pins"]), size["first_sync_s"], "{:,.0f}".format(size["first_pins_per_s"]),
                         size["resync_s"], "{:,.0f}".format(size["resync_pins_per_s"]), size["floor"]["listing_s"],
                         "{:,.0f}".format(size["floor"]["lookups_per_s"]), size["worker_peak_mb"],
                         size["poll_median_ms"], size["poll_p99_ms"], size["polls"], size["poll_errors"],
                         statistics.median(size["to_running_ms"])))
    lines.append("")
    lines.append("The floor is the faster of two ways to make the same calls without a database: plain (one request"
                 " at a time per connection, a JSON parse per line) and batched (the worker's decoding and pipelining):")
    for size in sizes:
        plain, batched = size["floor"]["plain"], size["floor"]["batched"]
        lines.append("- %s pins: plain listing %.2f s, look-ups %s/s; batched listing %.2f s (%.2f s without"
                     " names=true), look-ups %s/s" % (
                         "{:,}".format(size["pins"]), plain["listing_s"], "{:,.0f}".format(plain["lookups_per_s"]),
                         batched["listing_s"], batched["listing_without_names_s"],
                         "{:,.0f}".format(batched["lookups_per_s"])))
    return lines


def cpu_lines(kubo):
    """Where the CPU went: the node's and the client's time during the look-ups alone, and the
    node's and the worker's during the first sync, against the machine's cores."""
    cpu, first = kubo["floor"].get("pipelined_cpu") or {}, kubo["first_cpu"]
    lines = []
    if kubo.get("first_shown_s") is not None:
        lines.append("- first sync: every pin in the catalogue (and on the pages) after %.1f s, the sizes after %.1f s"
                     % (kubo["first_shown_s"], kubo["first_sync_s"]))
    if cpu.get("node_s") is not None:
        lines.append("- CPU during the look-ups alone (%.1f s): Kubo %.1f s, the client %.1f s: %.2f of %d cores busy"
                     % (cpu["wall_s"], cpu["node_s"], cpu["client_s"], (cpu["node_s"] + cpu["client_s"]) / cpu["wall_s"],
                        os.cpu_count()))
    if first.get("node_s") is not None and first.get("worker_s") is not None:
        lines.append("- CPU during the first sync (%.1f s): Kubo %.1f s, the worker %.1f s: %.2f of %d cores busy"
                     % (kubo["first_sync_s"], first["node_s"], first["worker_s"],
                        (first["node_s"] + first["worker_s"]) / kubo["first_sync_s"], os.cpu_count()))
    return lines


def report(info, sizes, kubo, cluster, upload, checks, args):
    lines = ["IPFSMaster benchmark, %s" % info["date"],
             "machine: %d CPUs, %s; Python %s, SQLite %s; %s" % (info["cpus"], info["cpu"], info["python"],
                                                              info["sqlite"], info["system"]),
             "size look-up concurrency %d; %d pollers, each once a second" % (args.concurrency, args.pollers), ""]
    if sizes:
        lines += ["Synthetic node (bench/synthetic_node.py):", ""] + sizes_table(sizes) + [""]
    if cluster:
        lines += ["Through a stand-in for IPFS Cluster's REST API (bench/synthetic_node.py --cluster: two peers,"
                  " every pin pinned on both; sizes from its stand-in Kubo):", ""] + sizes_table([cluster])
        if cluster.get("changed"):
            lines += ["- re-sync after one pin's status changed: %.2f s; re-sync where nothing changed, just"
                      " before each: %.2f s (%.2f s when the listing is compared all the same); medians of %d"
                      " rounds" % (cluster["changed"]["one_changed_s"], cluster["changed"]["unchanged_s"],
                                   cluster["changed"]["compared_s"], args.change_rounds)]
        lines += [""]
    if kubo:
        floor_s = kubo["floor"]["listing_s"] + kubo["pins"] / kubo["floor"]["lookups_per_s"]
        lines += ["Kubo %s (bench/kubo.py: pinned small files, one CIDv0 each; ipfs daemon --offline):" % kubo["kubo"],
                  ""] + sizes_table([kubo]) + [
                  "- first sync / look-up floor: %.2f; against the listing and the look-ups one after the other"
                  " (%.1f s): %.2f" % (kubo["first_pins_per_s"] / kubo["floor"]["lookups_per_s"], floor_s,
                                       floor_s / kubo["first_sync_s"])] + cpu_lines(kubo) + [""]
    if upload:
        lines += ["upload of %d MiB: received in %.1f s, on the node after %.1f s; peak RSS server %.1f MB, "
                  "worker %.1f MB" % (upload["mib"], upload["receive_s"], upload["total_s"],
                                      upload["server_peak_mb"], upload["worker_peak_mb"]), ""]
    lines += ["| target | measured | limit | result |", "|---|---:|---:|---|"]
    for name, value, limit, passed in checks:
        lines.append("| %s | %.2f | %s | %s |" % (name, value, limit, "PASS" if passed else "FAIL"))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="pin counts, comma-separated")
    parser.add_argument("--concurrency", type=int, default=8, help="size look-ups at once (worker and floor)")
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument("--resyncs", type=int, default=3, help="re-syncs after the first sync, at each size")
    parser.add_argument("--change-rounds", type=int, default=5,
                        help="through the cluster: rounds of a re-sync with no change, then one after a change")
    parser.add_argument("--floor-lookups", type=int, default=100000, help="size look-ups the floor times")
    parser.add_argument("--upload-mib", type=int, default=1024, help="0 skips the upload")
    parser.add_argument("--cluster-pins", type=int, default=100000,
                        help="pins for the run through the synthetic cluster (0 skips it)")
    parser.add_argument("--kubo-pins", type=int, default=100000,
                        help="pins for the run on Kubo (0 skips it; needs IPFS_BIN, see tests/get_kubo.sh)")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "latest.txt"))
    args = parser.parse_args(argv)
    info = machine()
    sizes = []
    with tempfile.TemporaryDirectory(prefix="ipfsmaster-bench-") as work:
        for pins in [int(n) for n in args.sizes.split(",") if n]:
            print("%d pins" % pins, flush=True)
            sizes.append(bench_size(pins, args, work))
        cluster = None
        if args.cluster_pins:
            print("%d pins through a stand-in for IPFS Cluster's REST API" % args.cluster_pins, flush=True)
            cluster = bench_size(args.cluster_pins, args, work, cluster=True)
        kubo = None
        if args.kubo_pins:
            print("Kubo, %d pins" % args.kubo_pins, flush=True)
            kubo = bench_kubo(args.kubo_pins, args, work)
        upload = None
        if args.upload_mib:
            print("upload of %d MiB" % args.upload_mib, flush=True)
            upload = bench_upload(args, work)
    checks = targets(sizes, kubo, cluster, upload)
    text = report(info, sizes, kubo, cluster, upload, checks, args)
    print()
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    return 0 if all(passed for _, _, _, passed in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
