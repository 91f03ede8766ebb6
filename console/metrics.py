"""The console's figures for Prometheus (``GET /metrics``, text format 0.0.4).

A scrape costs the node nothing and the database almost nothing: it reads
what the console already keeps (the catalogue's totals and the tasks'
outcomes, both kept by triggers; the node's last overview, which the server
refreshes on its own), never a pin listing or a full ``repo/stat``.
"""

import math
import time

from console import alerts, catalogue, node, psa, registry
from console.store import ACTIVE_STATUSES, FINAL_STATUSES, utc_seconds

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OUTCOMES = ("completed", "partial", "failed", "cancelled")


class Exposition:
    """Metric families written one after the other, each with its HELP and TYPE."""

    def __init__(self):
        self.lines = []

    def family(self, name, kind, text, samples):
        """``samples``: (suffix, {label: value}, number) triples; suffix '' for the family's own."""
        self.lines.append("# HELP %s %s" % (name, text.replace("\\", "\\\\").replace("\n", "\\n")))
        self.lines.append("# TYPE %s %s" % (name, kind))
        for suffix, labels, value in samples:
            self.lines.append("%s%s%s %s" % (name, suffix, format_labels(labels), format_value(value)))

    def gauge(self, name, text, value, **labels):
        self.family(name, "gauge", text, [("", labels, value)])

    def text(self):
        return "\n".join(self.lines) + "\n"


def format_labels(labels):
    if not labels:
        return ""
    return "{%s}" % ",".join('%s="%s"' % (key, str(value).replace("\\", "\\\\").replace('"', '\\"')
                                          .replace("\n", "\\n")) for key, value in labels.items())


def format_value(value):
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return str(int(value))


def render(conn, settings):
    """The exposition, as text."""
    out = Exposition()
    types = sorted(registry.TASK_TYPES)
    tasks(out, conn, types)
    pins(out, conn)
    node_figures(out, settings)
    cluster(out, conn)
    open_alerts(out, conn)
    pinning_service(out, conn)
    return out.text()


def tasks(out, conn, types):
    counts = {(row[0], row[1]): row[2] for row in conn.execute(
        "SELECT task_type, status, COUNT(*) FROM background_tasks GROUP BY task_type, status")}
    out.family("ipfsmaster_tasks", "gauge", "Tasks in the console's list, by type and status.",
               [("", {"type": kind, "status": status}, counts.get((kind, status), 0))
                for kind in types for status in ACTIVE_STATUSES + FINAL_STATUSES])
    outcomes = {(row["task_type"], row["outcome"]): row for row in conn.execute("SELECT * FROM task_outcomes")}
    out.family("ipfsmaster_tasks_finished_total", "counter",
               "Tasks that ended, by type and outcome (partial: completed with some items failed).",
               [("", {"type": kind, "outcome": outcome},
                 outcomes[kind, outcome]["count"] if (kind, outcome) in outcomes else 0)
                for kind in types for outcome in OUTCOMES])
    items = []
    for kind in types:
        rows = [outcomes[kind, outcome] for outcome in OUTCOMES if (kind, outcome) in outcomes]
        items.append(("", {"type": kind, "result": "processed"}, sum(row["items"] for row in rows)))
        items.append(("", {"type": kind, "result": "failed"}, sum(row["items_failed"] for row in rows)))
    out.family("ipfsmaster_task_items_total", "counter",
               "Items (CIDs, pins, bytes or blocks, as the type counts) that ended tasks got through, and"
               " those that failed.", items)
    buckets = {}
    for row in conn.execute("SELECT task_type, le, count FROM task_duration_buckets ORDER BY task_type, le"):
        buckets.setdefault(row["task_type"], []).append((row["le"], row["count"]))
    histogram = []
    for kind in sorted(buckets):
        rows = [outcomes[kind, outcome] for outcome in OUTCOMES if (kind, outcome) in outcomes]
        for bound, count in buckets[kind]:
            histogram.append(("_bucket", {"type": kind, "le": "+Inf" if math.isinf(bound) else format_value(
                float(bound))}, count))
        histogram.append(("_sum", {"type": kind}, float(sum(row["duration_seconds"] for row in rows))))
        histogram.append(("_count", {"type": kind}, sum(row["count"] for row in rows)))
    out.family("ipfsmaster_task_duration_seconds", "histogram", "How long tasks that ended ran.", histogram)
    running = conn.execute("SELECT id, task_type, progress, total FROM background_tasks WHERE status = 'running'"
                           " ORDER BY id").fetchall()
    out.family("ipfsmaster_task_progress_ratio", "gauge", "How far each running task is, from 0 to 1 (0 while"
               " its total is unknown).", [("", {"id": row["id"], "type": row["task_type"]},
                                            min(1.0, row["progress"] / row["total"]) if row["total"] else 0.0)
                                           for row in running])


def pins(out, conn):
    stats = catalogue.stats(conn)
    out.gauge("ipfsmaster_pins", "Pins in the catalogue.", stats["count"])
    out.gauge("ipfsmaster_pins_size_bytes", "The catalogued pins' total size (their DAGs' cumulative sizes).",
              stats["total_size"])
    out.gauge("ipfsmaster_pins_unsized", "Catalogued pins whose size is not known yet.", stats["unsized"])
    last = conn.execute("SELECT completed_at FROM background_tasks WHERE task_type = 'pin_sync'"
                        " AND status = 'completed' ORDER BY id DESC LIMIT 1").fetchone()
    if last is not None and last["completed_at"]:
        out.gauge("ipfsmaster_last_sync_age_seconds", "Seconds since the last pin sync completed.",
                  round(max(0.0, time.time() - utc_seconds(last["completed_at"])), 3))


def node_figures(out, settings):
    overview, age = node.last_overview(settings)
    if age is None:
        return      # never asked yet: nothing known, rather than a false 0
    out.gauge("ipfsmaster_node_up", "1 if the node answered the console's last look, else 0.",
              0 if overview is None else 1)
    out.gauge("ipfsmaster_node_overview_age_seconds", "Seconds since the console last looked at the node.",
              round(age, 3))
    if overview is None:
        return
    for name, key, text in (
            ("ipfsmaster_repo_size_bytes", "repo_size", "The node's repository size."),
            ("ipfsmaster_repo_storage_max_bytes", "storage_max", "The node's Datastore.StorageMax."),
            ("ipfsmaster_peers", "peers", "Peers the node is connected to.")):
        if isinstance(overview.get(key), int):
            out.gauge(name, text, overview[key])


def cluster(out, conn):
    peers = conn.execute("SELECT COUNT(*) - COUNT(error), COUNT(error) FROM cluster_peers").fetchone()
    out.family("ipfsmaster_cluster_peers", "gauge", "IPFS Cluster peers as the last sync found them: up, or in"
               " error (the peer or its Kubo cannot be reached).",
               [("", {"state": "up"}, peers[0]), ("", {"state": "error"}, peers[1])])
    summary = catalogue.cluster_summary(conn) or {"pins_in_error": 0, "under_replicated": 0}
    out.gauge("ipfsmaster_pins_in_error", "Pins a cluster peer failed.", summary["pins_in_error"])
    out.gauge("ipfsmaster_pins_under_replicated", "Pins on fewer cluster peers than they should be.",
              summary["under_replicated"])


def open_alerts(out, conn):
    out.family("ipfsmaster_alerts_open", "gauge", "Alerts open now, by kind.",
               [("", {"kind": kind}, count) for kind, count in sorted(alerts.open_counts(conn).items())])

def pinning_service(out, conn):
    counts = psa.counts_by_status(conn)
    out.family("ipfsmaster_psa_requests", "gauge", "The pinning service API's requests, by status.",
               [("", {"status": status}, counts[status]) for status in psa.STATUSES])
