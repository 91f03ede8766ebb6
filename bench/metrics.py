#!/usr/bin/env python3
"""What a Prometheus scrape costs at a million pins.

    python3 bench/metrics.py [--pins 1000000] [--tasks 10000] [--scrapes 50]

Fills a database with ``--pins`` catalogued pins (sized) and ``--tasks``
finished tasks, starts the real server on it (127.0.0.1, a free port, no
node: the node's figures are whatever it last saw), and times
``GET /metrics`` over HTTP, one scrape after the other. Prints the median and
the slowest, and the exposition's size.
"""

import argparse
import http.client
import os
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import console.settings  # noqa: E402
import console.store  # noqa: E402
import console.web.server  # noqa: E402


def fill(db, pins, tasks):
    conn = console.store.connect(db)
    with console.store.transaction(conn):
        conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                     " INSERT INTO pins (cid, type, name, size) SELECT printf('bafybench%012d', i), 'recursive',"
                     " '', i % 100000 FROM n", (pins,))
        conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                     " INSERT INTO background_tasks (task_type, status, single_flight, progress, total, started_at,"
                     " started_at_precise)"
                     " SELECT CASE i % 3 WHEN 0 THEN 'pin_add' WHEN 1 THEN 'pin_sync' ELSE 'repo_gc' END, 'running', 0, i,"
                     " i, datetime('now', '-5 seconds'), strftime('%Y-%m-%d %H:%M:%f', 'now', '-5 seconds') FROM n",
                     (tasks,))
        conn.execute("UPDATE background_tasks SET status = 'completed', completed_at = datetime('now'),"
                     " completed_at_precise = strftime('%Y-%m-%d %H:%M:%f', 'now')")
    conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pins", type=int, default=1000000)
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--scrapes", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ipfsmaster-metrics-") as folder:
        settings = console.settings.Settings(db=os.path.join(folder, "bench.db"), port=0,
                                             ipfs_api="http://127.0.0.1:9")
        console.store.init_db(settings.db)
        started = time.monotonic()
        fill(settings.db, args.pins, args.tasks)
        print("%d pins and %d finished tasks written in %.1f s" % (args.pins, args.tasks, time.monotonic() - started))
        server = console.web.server.make_server(settings)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        times, size = [], 0
        try:
            for _ in range(args.scrapes + 1):
                conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
                began = time.perf_counter()
                conn.request("GET", "/metrics")
                answer = conn.getresponse()
                body = answer.read()
                times.append((time.perf_counter() - began) * 1000)
                conn.close()
                assert answer.status == 200 and b"ipfsmaster_pins %d" % args.pins in body, body[:200]
                size = len(body)
        finally:
            server.shutdown()
            server.server_close()
        times = times[1:]      # the first warms the connection pool
        print("GET /metrics at %d pins: median %.1f ms, slowest %.1f ms over %d scrapes; %d bytes, %d lines"
              % (args.pins, statistics.median(times), max(times), len(times), size, body.count(b"\n")))


if __name__ == "__main__":
    main()
