"""The alerts' webhook: each alert's opening and closing is one POST of
JSON ``{"event": "opened" | "closed", "alert": {...}}`` to the URL the
operator set, with the header ``X-IPFSMaster-Signature: sha256=HEX`` (the
HMAC-SHA256 of the exact body with the secret) when a secret is set.

Posts wait in the ``webhook_outbox`` table and leave from their own thread
(``deliver_forever``), one after the other in order: a receiver that is down
delays them (retried with a doubling wait, up to MAX_WAIT_SECONDS; given
up after GIVE_UP_SECONDS), never the server.
"""

import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
from urllib.parse import urlsplit

from console.settings import is_http_url
from console.store import connect, transaction

log = logging.getLogger("ipfsmaster")

SIGNATURE_HEADER = "X-IPFSMaster-Signature"
FIRST_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 300.0
GIVE_UP_SECONDS = 24 * 3600
TIMEOUT_SECONDS = 10.0
# Database path -> the event its sender waits on: set when a post is
# queued, so that the sender looks at once instead of at its next time.
_wakers = {}
_wakers_lock = threading.Lock()


def waker(db_path):
    with _wakers_lock:
        return _wakers.setdefault(db_path, threading.Event())


def wake(db_path):
    """Tell the sender of this database that a post waits."""
    waker(db_path).set()


def enqueue(conn, event, alert):
    """Queue one post (inside the caller's transaction)."""
    body = json.dumps({"event": event, "alert": alert}, ensure_ascii=False, sort_keys=True)
    conn.execute("INSERT INTO webhook_outbox (body, next_attempt_at) VALUES (?, ?)", (body, time.time()))


def prune_outbox(conn, days):
    """Forget the posts delivered or given up more than ``days`` ago; returns how many."""
    with transaction(conn):
        return conn.execute("DELETE FROM webhook_outbox WHERE status <> 'waiting' AND created_at < datetime('now', ?)",
                            ("-%d days" % days,)).rowcount


def signature(secret, body):
    """The header's value for ``body`` (bytes): sha256=HEX."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def post(url, body, secret=None, timeout=TIMEOUT_SECONDS):
    """POST ``body`` (bytes) to ``url``; None if the receiver answered 2xx,
    else why not, as a sentence."""
    if not is_http_url(url):
        return "the webhook URL must begin with http:// or https:// and name a host (and a port up to 65535)"
    parts = urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname, parts.port, timeout=timeout)
    headers = {"Content-Type": "application/json", "User-Agent": "IPFSMaster"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(secret, body)
    try:
        conn.request("POST", (parts.path or "/") + ("?" + parts.query if parts.query else ""), body, headers)
        resp = conn.getresponse()
        resp.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        return "%s: %s" % (type(exc).__name__, exc)
    finally:
        conn.close()
    return None if 200 <= resp.status < 300 else "the receiver answered %d %s" % (resp.status, resp.reason)


def deliver_due(settings, conn):
    """Send the waiting posts whose time has come, in order, until one fails;
    returns when to look again (seconds since the epoch), or None when none waits."""
    while True:
        now = time.time()
        row = conn.execute("SELECT id, body, attempts, next_attempt_at, created_at FROM webhook_outbox"
                           " WHERE status = 'waiting' ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        if row["next_attempt_at"] > now:
            return row["next_attempt_at"]
        error = post(settings.webhook_url, row["body"].encode("utf-8"), settings.webhook_secret)
        attempts = row["attempts"] + 1
        with transaction(conn):
            if error is None:
                conn.execute("UPDATE webhook_outbox SET status = 'delivered', attempts = ?, last_error = NULL,"
                             " delivered_at = datetime('now') WHERE id = ?", (attempts, row["id"]))
                continue
            given_up = conn.execute("SELECT ? < datetime('now', ?)", (row["created_at"],
                                                                    "-%d seconds" % GIVE_UP_SECONDS)).fetchone()[0]
            wait = min(MAX_WAIT_SECONDS, FIRST_WAIT_SECONDS * 2 ** (attempts - 1))
            conn.execute("UPDATE webhook_outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?"
                         " WHERE id = ?", ("abandoned" if given_up else "waiting", attempts, error[:500], now + wait,
                                           row["id"]))
        log.warning("webhook: post %d, attempt %d: %s%s", row["id"], attempts, error,
                    "; given up" if given_up else "; trying again in %.0f s" % wait)
        if not given_up:
            return now + wait


def deliver_forever(settings, stop):
    """The sender's thread: posts what waits, then sleeps until the next
    attempt is due, a post is queued, or ``stop`` is set."""
    event = waker(settings.db)
    while not stop.is_set():
        event.clear()
        conn = connect(settings.db)
        try:
            due = deliver_due(settings, conn)
        except Exception:
            log.exception("webhook: could not send")
            due = time.time() + MAX_WAIT_SECONDS
        finally:
            conn.close()
        until = time.time() + (MAX_WAIT_SECONDS if due is None else min(MAX_WAIT_SECONDS, due - time.time()))
        while not stop.is_set() and not event.is_set() and time.time() < until:
            event.wait(min(0.5, max(0.0, until - time.time())))
