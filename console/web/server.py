"""The threaded WSGI server (Radicale's ``server.py``): one thread per
request, time-outs for stalled clients, and the housekeeping thread.
"""

import contextlib
import json
import logging
import os
import socket
import socketserver
import sqlite3
import struct
import sys
import threading
import traceback
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from console import alerts, history, node, webhook
from console.control import cleanup_tasks, mark_stale_tasks
from console.framing import IPFSError
from console.settings import DEFAULTS
from console.store import connect, init_db
from console.web.app import SECURITY_HEADERS, App
from console.web.http import STREAM_BROKE, is_loopback
from console.web.unattended import start as start_unattended
from console.web.psa import watch_queue

log = logging.getLogger("ipfsmaster")


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """wsgiref's server, one thread per request, so a slow request never
    blocks a status poll."""

    daemon_threads = True
    request_queue_size = 128

    watch_stop = None       # set when the server closes: ends its look at the node

    def server_close(self):
        if self.watch_stop is not None:
            self.watch_stop.set()
        super().server_close()

    def handle_error(self, request, client_address):
        """A client that vanished or stalled is routine; anything else is logged."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)):
            log.info("%s: %s: %s", client_address[0], type(exc).__name__, exc)
        else:
            log.error("error while serving %s\n%s", client_address[0], traceback.format_exc())


class RequestHandler(WSGIRequestHandler):
    """Logs through ``logging``, times out idle or slow clients, answers
    requests too broken to reach the app with the same JSON errors, sends
    replies without Nagle's delay (headers and body leave in separate
    writes), and resets the connection after a stream that broke off."""

    timeout = DEFAULTS["request_timeout"]

    def setup(self):
        self.timeout = getattr(self.server, "request_timeout", self.timeout)
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a bad request line, huge headers) as JSON."""
        template = {414: "The request line is too long.", 431: "The request headers are too large."}.get(
            code, "The request is malformed.")
        body = json.dumps({"success": False, "error": template}).encode("utf-8")
        self.close_connection = True
        try:
            self.send_response(code if 400 <= code < 500 else 400)
            for name, value in [("Content-Type", "application/json; charset=utf-8"), ("Connection", "close"),
                                ("Content-Length", str(len(body)))] + SECURITY_HEADERS:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, format, *args):
        log.info("%s %s", self.address_string(), format % args)

    def get_environ(self):
        environ = super().get_environ()
        environ[STREAM_BROKE] = self.reset_at_the_end
        return environ

    def reset_at_the_end(self):
        """Have the connection reset when this request is done (see http.streamed)."""
        self.reset = True

    def finish(self):
        """After an answer whose stream broke off, reset the connection:
        closed as usual it would look like a complete answer."""
        super().finish()
        if getattr(self, "reset", False):
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("HH" if os.name == "nt" else "ii", 1, 0))
                self.connection.close()


def make_server(settings):
    """A bound server (``port=0`` picks a free port), ready for serve_forever."""
    if not settings.password and not is_loopback(settings.host):
        raise SystemExit("Refusing to listen on %s without a password: anyone who can reach it could drive the"
                         " node. Set IPFSMASTER_PASSWORD (or --password-file), or keep --host 127.0.0.1."
                         % settings.host)
    init_db(settings.db)
    server_class = ThreadingWSGIServer
    if ":" in settings.host:
        server_class = type("ThreadingWSGIServer6", (ThreadingWSGIServer,), {"address_family": socket.AF_INET6})
    server = server_class((settings.host.strip("[]"), settings.port), RequestHandler)
    server.request_timeout = settings.request_timeout
    server.set_app(App(settings))
    server.watch_stop = threading.Event()
    threading.Thread(target=watch_node, args=(settings, server.watch_stop), name="node-watch", daemon=True).start()
    start_unattended(settings, server.watch_stop)
    threading.Thread(target=watch_queue, args=(settings, server.watch_stop, lambda: connect(settings.db)),
                     name="psa-watch", daemon=True).start()
    return server


def watch_node(settings, stop):
    """Look at the node every ``sample_seconds``, whether a page is open or
    not, so that /metrics always has its figures without asking the node
    itself; and write what the console then knows as a sample of its history."""
    while True:
        try:
            node.node_overview(settings)
        except IPFSError:
            pass        # recorded: node_up is 0 until it answers again
        except Exception:
            log.exception("could not look at the node")
        try:
            if not history.record_sample_on_own_connection(settings):
                log.info("history: the database stayed busy; this sample is skipped")
        except Exception:
            log.exception("could not record a sample of the history")
        if stop.wait(settings.sample_seconds):
            return


def housekeeping(settings, stop, interval=24 * 3600):
    """Once a day: delete finished tasks, the webhook's sent posts and closed alerts past the retention period."""
    while True:
        conn = connect(settings.db)
        try:
            removed = cleanup_tasks(conn, settings, settings.retention_days)
            if removed:
                log.info("cleanup: removed %d finished tasks older than %d days", len(removed), settings.retention_days)
            webhook.prune_outbox(conn, settings.retention_days)
            alerts.prune(conn, settings.retention_days)
        except sqlite3.Error:
            log.exception("cleanup failed")
        finally:
            conn.close()
        if stop.wait(interval):
            return


def serve(settings):
    server = make_server(settings)
    conn = connect(settings.db)
    try:
        for task_id in mark_stale_tasks(conn, settings):
            log.warning("task %d: its worker is gone; marked failed", task_id)
    finally:
        conn.close()
    stop = threading.Event()
    threading.Thread(target=housekeeping, args=(settings, stop), name="housekeeping", daemon=True).start()
    host, port = server.server_address[:2]
    print("IPFSMaster serving on http://%s:%d/ (IPFS API %s, database %s)"
          % (host, port, settings.ipfs_api, os.path.abspath(settings.db)), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
