#!/usr/bin/env python3
"""What exporting a million pins costs, and that it holds none of them.

    python3 bench/export.py [--pins 1000000] [--formats csv,jsonl]

Fills a temporary database with ``--pins`` catalogued pins (names with a
comma and Chinese, so that CSV has to quote them; one size in ten unknown),
starts the real server on it (127.0.0.1, a free port, in this process), and
downloads ``GET /api/pins/export?format=F`` over HTTP for each format,
reading the answer in 64 KiB pieces and counting its lines. Prints rows,
seconds, rows/s, and this process's peak RSS (VmHWM) before and after each
download: a streamed export keeps it flat, where one held whole would grow
by hundreds of megabytes.
"""

import argparse
import http.client
import os
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import console.settings  # noqa: E402
import console.store  # noqa: E402
import console.web.server  # noqa: E402

LIMIT_MB = 20       # the most the peak may grow during a download


def fill(db, pins):
    conn = console.store.connect(db)
    with console.store.transaction(conn):
        conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                     " INSERT INTO pins (cid, type, name, size) SELECT printf('bafybench%012d', i), 'recursive',"
                     " printf('文件 %d, 副本', i), CASE WHEN i % 10 = 0 THEN NULL ELSE i * 1000 END FROM n", (pins,))
    conn.close()


def peak_rss_mb():
    """This process's peak resident memory (VmHWM), in MB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def download(port, fmt):
    """(lines, bytes, seconds) of one export read over HTTP."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    began = time.perf_counter()
    conn.request("GET", "/api/pins/export?format=" + fmt)
    answer = conn.getresponse()
    assert answer.status == 200, answer.read(500)
    lines = size = 0
    while True:
        piece = answer.read(65536)
        if not piece:
            break
        lines += piece.count(b"\n")
        size += len(piece)
    conn.close()
    return lines, size, time.perf_counter() - began


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pins", type=int, default=1000000)
    parser.add_argument("--formats", default="csv,jsonl")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="ipfsmaster-export-") as folder:
        settings = console.settings.Settings(db=os.path.join(folder, "bench.db"), port=0,
                                             ipfs_api="http://127.0.0.1:9")
        console.store.init_db(settings.db)
        started = time.monotonic()
        fill(settings.db, args.pins)
        print("%d pins written in %.1f s" % (args.pins, time.monotonic() - started))
        server = console.web.server.make_server(settings)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        try:
            for fmt in args.formats.split(","):
                before = peak_rss_mb()
                lines, size, seconds = download(server.server_address[1], fmt)
                after = peak_rss_mb()
                rows = lines - 1 if fmt == "csv" else lines        # CSV has a header line
                ok = rows == args.pins and after - before < LIMIT_MB
                failed = failed or not ok
                print("%-5s %d rows, %.0f MB in %.1f s: %.0f rows/s; peak RSS %.1f MB before, %.1f MB after"
                      " (+%.1f MB) %s" % (fmt, rows, size / 1e6, seconds, rows / seconds, before, after,
                                          after - before, "PASS" if ok else "FAIL"))
        finally:
            server.shutdown()
            server.server_close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
