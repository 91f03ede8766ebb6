"""Alerts: the conditions an operator should know of, raised once when one
begins and once when it clears, never on every check.

``check`` looks at everything the console knows (the node's overview, the
cluster's peers and pins as the last sync found them, the tasks, the
schedules), compares it with the alerts open in the ``alerts`` table, and
opens or closes alerts accordingly; each opening and closing also queues a
post for the webhook (console/webhook.py), in the same transaction.
"""

import json
import sqlite3

from console import catalogue, guardrails, node, registry, schedules, webhook
from console.framing import IPFSError
from console.messages import translate
from console.rpc import ClusterClient
from console.store import transaction

KINDS = ("node_down", "cluster_peer_down", "pins_in_error", "under_replicated", "repo_watermark", "task_failed",
         "schedule_failing")
NODE_DOWN = "The IPFS node at {api} cannot be reached: {reason}"
PEER_DOWN = "Cluster peer {peer} is down: {error}"
PINS_IN_ERROR = "{count} pins are in error on a cluster peer."
UNDER_REPLICATED = "{count} pins are on fewer cluster peers than they should be."
WATERMARK = "The repository uses {percent}% of its StorageMax ({size} of {most} bytes), past the {level} at {limit}%."
TASK_FAILED = "The last {what} failed (task {id}): {error}"
SCHEDULE_FAILING = "Schedule {id} ({what}, {spec}) failed its last {runs} runs."
# Closed alerts the list still shows.
RECENT_DAYS = 7


def conditions(settings, conn):
    """{(kind, subject): (template, values)} of every condition that holds now."""
    found = {}
    before, since = node.last_overview(settings)
    try:
        overview = node.node_overview(settings)
    except IPFSError as exc:
        overview = None
        # Down at two looks in a row: one request that failed is no outage.
        if before is None and since is not None:
            found["node_down", settings.ipfs_api] = (NODE_DOWN, {"api": settings.ipfs_api, "reason": str(exc)})
    if overview is not None:
        percent = guardrails.storage_percent(overview)
        for level, limit in (("warn", settings.repo_warn_percent), ("alarm", settings.repo_alarm_percent)):
            if percent is not None and percent >= limit:
                found["repo_watermark", level] = (WATERMARK, {
                    "percent": percent, "size": overview["repo_size"], "most": overview["storage_max"],
                    "level": {"warn": {"en": "warning", "zh": "警告线"}, "alarm": {"en": "alarm", "zh": "警报线"}}[level],
                    "limit": limit})
    if settings.cluster_api:
        for peer_id, name, _, _, error in cluster_peers(settings, conn):
            if error:
                found["cluster_peer_down", peer_id] = (PEER_DOWN, {"peer": name or peer_id, "error": error})
        summary = catalogue.cluster_summary(conn) or {}
        if summary.get("pins_in_error"):
            found["pins_in_error", ""] = (PINS_IN_ERROR, {"count": summary["pins_in_error"]})
        if summary.get("under_replicated"):
            found["under_replicated", ""] = (UNDER_REPLICATED, {"count": summary["under_replicated"]})
    labels = registry.labels()
    for row in conn.execute(
            "SELECT id, task_type, error_message FROM background_tasks WHERE status = 'failed' AND id IN"
            " (SELECT MAX(id) FROM background_tasks WHERE status IN ('completed', 'failed') GROUP BY task_type)"):
        found["task_failed", row["task_type"]] = (TASK_FAILED, {
            "what": labels.get(row["task_type"], row["task_type"]), "id": row["id"],
            "error": row["error_message"] or ""})
    for schedule_id, (row, _) in schedules.failing_schedules(conn).items():
        found["schedule_failing", str(schedule_id)] = (SCHEDULE_FAILING, {
            "id": schedule_id, "what": labels.get(row["task_type"], row["task_type"]), "spec": row["spec"],
            "runs": 3})
    return found


def cluster_peers(settings, conn):
    """The cluster's peers as rows of cluster_peers: as the cluster lists
    them now, or, when it cannot be reached, as the last sync found them."""
    client = ClusterClient(settings.cluster_api, settings.cluster_auth, timeout=10.0, attempts=1)
    try:
        return [catalogue.cluster_peer_row(peer) for peer in client.stream("peers", method="GET")]
    except (IPFSError, AttributeError):
        return [tuple(row) for row in conn.execute(
            "SELECT peer_id, peername, version, ipfs_id, error FROM cluster_peers")]
    finally:
        client.close()


def check(settings, conn):
    """Open the alerts whose condition began, close those whose condition
    cleared; returns ([opened ids], [closed ids]). Writes only when
    something changed; each change is a compare-and-set (the unique index
    of open alerts, ``closed_at IS NULL``), so two checks never open or
    close one twice."""
    found = {key: (template, json.dumps(values, ensure_ascii=False, sort_keys=True))
             for key, (template, values) in conditions(settings, conn).items()}
    still = {(row["kind"], row["subject"]): row for row in conn.execute("SELECT * FROM alerts WHERE closed_at IS NULL")}
    to_open = [key for key in found if key not in still]
    to_close = [row["id"] for key, row in still.items() if key not in found]
    to_update = [(found[key][1], row["id"]) for key, row in still.items()
                 if key in found and row["message_values"] != found[key][1]]
    if not (to_open or to_close or to_update):
        return [], []
    opened, closed = [], []
    with transaction(conn):
        conn.executemany("UPDATE alerts SET message_values = ? WHERE id = ? AND closed_at IS NULL", to_update)
        for key in to_open:
            try:
                opened.append(conn.execute("INSERT INTO alerts (kind, subject, message, message_values)"
                                           " VALUES (?, ?, ?, ?)", key + found[key]).lastrowid)
            except sqlite3.IntegrityError:
                pass        # another check opened it first
        for alert_id in to_close:
            if conn.execute("UPDATE alerts SET closed_at = datetime('now') WHERE id = ? AND closed_at IS NULL",
                            (alert_id,)).rowcount == 1:
                closed.append(alert_id)
        if settings.webhook_url:
            for event, ids in (("opened", opened), ("closed", closed)):
                for alert_id in ids:
                    webhook.enqueue(conn, event, alert_as_json(get_alert(conn, alert_id)))
    if settings.webhook_url and (opened or closed):
        webhook.wake(settings.db)
    return opened, closed


def get_alert(conn, alert_id):
    return conn.execute("SELECT * FROM alerts WHERE id = ?", (alert_id,)).fetchone()


def alert_as_json(row, lang="en"):
    """An alert as the API and the webhook give it; ``message`` in ``lang``."""
    return {"id": row["id"], "kind": row["kind"], "subject": row["subject"],
            "message": translate(row["message"], lang, **json.loads(row["message_values"] or "{}")),
            "opened_at": row["opened_at"], "closed_at": row["closed_at"]}


def list_alerts(conn, lang="en", limit=100):
    """The open alerts, newest first, then those closed in the last RECENT_DAYS, newest first."""
    rows = conn.execute(
        "SELECT * FROM alerts WHERE closed_at IS NULL OR closed_at >= datetime('now', ?)"
        " ORDER BY closed_at IS NOT NULL, COALESCE(closed_at, opened_at) DESC, id DESC LIMIT ?",
        ("-%d days" % RECENT_DAYS, limit)).fetchall()
    return [alert_as_json(row, lang) for row in rows]


def prune(conn, days):
    """Forget the alerts closed more than ``days`` ago; returns how many."""
    with transaction(conn):
        return conn.execute("DELETE FROM alerts WHERE closed_at < datetime('now', ?)", ("-%d days" % days,)).rowcount


def open_counts(conn):
    """{kind: number of open alerts} for every kind."""
    counts = dict.fromkeys(KINDS, 0)
    for row in conn.execute("SELECT kind, COUNT(*) FROM alerts WHERE closed_at IS NULL GROUP BY kind"):
        counts[row[0]] = row[1]
    return counts
