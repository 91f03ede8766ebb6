#!/usr/bin/env python3
"""Status pollers for the benchmark: what N open pins pages do to the server.

    python3 bench/pollers.py --url http://127.0.0.1:PORT --task ID|- [--pollers 25] [--interval 1.0]

Each poller asks ``/pins/task-status?id=ID`` once per ``--interval`` (with a
random start, as pages opened at different moments would), on a new
connection each time, until the task has ended. Every answer's latency is
measured from connect to the last byte. Prints one JSON object: the latencies
in milliseconds and how many answers were not 200.

With ``--task -`` it reads the task id from its first line of input, so
that it can be started (and its interpreter loaded) before the task is.
The benchmark runs several of these processes so that one Python
interpreter's lock does not add its own queueing to the figures.
"""

import argparse
import http.client
import json
import random
import sys
import threading
import time
from urllib.parse import urlsplit


def poll(host, port, path, interval, stop, latencies, errors, deadline):
    time.sleep(random.uniform(0, interval))
    while not stop.is_set() and time.monotonic() < deadline:
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection(host, port, timeout=30)
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            conn.close()
        except OSError as exc:
            errors.append(str(exc))
            time.sleep(interval)
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        if resp.status != 200:
            errors.append("HTTP %d" % resp.status)
        elif json.loads(body)["status"] in ("completed", "failed", "cancelled"):
            stop.set()
        time.sleep(max(0.0, interval - (time.perf_counter() - started)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--task", required=True, help="the task's id, or - to read it from the first line of input")
    parser.add_argument("--pollers", type=int, default=25)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--max-seconds", type=float, default=1800)
    args = parser.parse_args(argv)
    task = int(sys.stdin.readline() if args.task == "-" else args.task)
    parts = urlsplit(args.url)
    stop = threading.Event()
    latencies, errors = [], []
    deadline = time.monotonic() + args.max_seconds
    threads = [threading.Thread(target=poll, args=(parts.hostname, parts.port, "/pins/task-status?id=%d" % task,
                                                  args.interval, stop, latencies, errors, deadline), daemon=True)
               for _ in range(args.pollers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"latencies_ms": [round(x, 3) for x in latencies], "errors": errors[:20],
                      "error_count": len(errors)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
