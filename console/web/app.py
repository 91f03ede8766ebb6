"""The WSGI application: the route table, and the one place where a request
is checked (its Host, its origin, who sends it) and where every error
becomes its JSON answer (bottle's ``HTTPError``, Radicale's ``app``).
"""

import logging
import sqlite3
import traceback
from urllib.parse import quote

from console import tokens
from console.control import CancelEnforcer
from console.errors import HTTPError
from console.messages import NOT_FOUND
from console.store import ConnectionPool, database_busy
from console.web.alerts import handle_alerts
from console.web.auth import Authenticator, check_host, check_same_origin
from console.web.files import handle_car_import, handle_upload
from console.web.http import (STATUS_LINES, Redirect, Request, close_body, error_response, not_found_page, redirect,
                              streamed, wants_html)
from console.web.history import handle_history
from console.web.metrics import handle_metrics
from console.web.pages import (handle_favicon, handle_index, handle_info, handle_login, handle_login_page,
                               handle_logout, handle_pins_page, handle_static, handle_tasks_page)
from console.web.pins import (handle_export_car, handle_node, handle_node_gc, handle_node_peers, handle_node_verify,
                              handle_pin_recover, handle_pin_sync, handle_pins_add, handle_pins_api, handle_pins_export,
                              handle_pins_remove)
from console.web.schedules import (handle_schedule_add, handle_schedule_delete, handle_schedule_post,
                                   handle_schedules)
from console.web.psa import (handle_psa_cancel, handle_psa_requests, handle_psa_retry, is_psa_path,
                              serve as serve_psa)
from console.web.tasks import (handle_task_cancel, handle_task_log, handle_task_retry, handle_task_status,
                               handle_tasks_api, handle_tasks_export)
from console.web.tokens import handle_token_add, handle_token_revoke, handle_tokens

log = logging.getLogger("ipfsmaster")

ROUTES = [
    ("GET", "/", handle_index),
    ("GET", "/pins", handle_pins_page),
    ("POST", "/pins/sync", handle_pin_sync),
    ("POST", "/pins/recover", handle_pin_recover),
    ("GET", "/pins/task-status", handle_task_status),
    ("GET", "/api/pins", handle_pins_api),
    ("GET", "/api/info", handle_info),
    ("GET", "/tasks", handle_tasks_page),
    ("GET", "/api/tasks", handle_tasks_api),
    ("POST", "/tasks/cancel", handle_task_cancel),
    ("POST", "/tasks/retry", handle_task_retry),
    ("GET", "/tasks/log", handle_task_log),
    ("POST", "/files/upload", handle_upload),
    ("POST", "/pins/import-car", handle_car_import),
    ("POST", "/pins/add", handle_pins_add),
    ("POST", "/pins/remove", handle_pins_remove),
    ("POST", "/node/gc", handle_node_gc),
    ("GET", "/api/node", handle_node),
    ("GET", "/api/node/peers", handle_node_peers),
    ("POST", "/node/verify", handle_node_verify),
    ("GET", "/api/pins/export-car", handle_export_car),
    ("GET", "/api/pins/export", handle_pins_export),
    ("GET", "/api/tasks/export", handle_tasks_export),
    ("GET", "/metrics", handle_metrics),
    ("GET", "/api/history", handle_history),
    ("GET", "/login", handle_login_page),
    ("POST", "/login", handle_login),
    ("POST", "/logout", handle_logout),
    ("GET", "/favicon.ico", handle_favicon),
    ("GET", "/api/schedules", handle_schedules),
    ("POST", "/api/schedules", handle_schedule_add),
    ("GET", "/api/alerts", handle_alerts),
    ("GET", "/api/tokens", handle_tokens),
    ("POST", "/api/tokens", handle_token_add),
    ("POST", "/api/tokens/revoke", handle_token_revoke),
    ("GET", "/api/psa/requests", handle_psa_requests),
    ("POST", "/api/psa/requests/cancel", handle_psa_cancel),
    ("POST", "/api/psa/requests/retry", handle_psa_retry),
]
# Reachable without logging in.
PUBLIC_PATHS = ("/login", "/favicon.ico")
# Pages: without a login they lead to the login form, not a JSON 401.
PAGE_PATHS = ("/", "/pins", "/tasks")
PREFIX_ROUTES = [
    ("GET", "/static/", handle_static),
    ("POST", "/api/schedules/", handle_schedule_post),
    ("DELETE", "/api/schedules/", handle_schedule_delete),
]


def route(method, path):
    """The handler for a request, or an HTTPError (404, or 405 with Allow)."""
    allowed = [m for m, p, _ in ROUTES if p == path]
    allowed += [m for m, prefix, _ in PREFIX_ROUTES if path.startswith(prefix)]
    if not allowed:
        raise HTTPError(404, NOT_FOUND)
    if method == "HEAD" and "GET" in allowed:
        method = "GET"
    for m, p, handler in ROUTES:
        if m == method and p == path:
            return handler
    for m, prefix, handler in PREFIX_ROUTES:
        if m == method and path.startswith(prefix):
            return handler
    allow = ", ".join(sorted(set(allowed) | ({"HEAD"} if "GET" in allowed else set())))
    raise HTTPError(405, "This address does not accept {method}. Use {allowed}.",
                    headers=[("Allow", allow)], method=method[:20], allowed=allow)


# ---------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                                " connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self';"
                                " frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
]


class App:
    """The WSGI application: routes a request, checks who sends it, turns
    errors into JSON (and an unknown address a browser opens into a page)."""

    def __init__(self, settings):
        self.settings = settings
        self.auth = Authenticator(settings.password)
        self.pool = ConnectionPool(settings.db)
        self.cancels = CancelEnforcer(settings)

    def __call__(self, environ, start_response):
        req = Request(environ, self.settings, self.auth, self.pool, self.cancels)
        if is_psa_path(req.path):
            return self.pinning_service(req, start_response)
        try:
            if not self.auth.enabled:
                check_host(environ, self.settings)
            handler = route(req.method, req.path)
            if req.method in ("POST", "DELETE"):
                check_same_origin(environ)
            if not (req.path in PUBLIC_PATHS or req.path.startswith("/static/")
                    or self.auth.allows(environ, req.client, self.token_opens(req))):
                if req.path in PAGE_PATHS:
                    raise Redirect("/login?next=" + quote(req.path, safe="/"))
                raise HTTPError(401, "Log in first: this console needs a password.",
                                headers=[("WWW-Authenticate", 'Bearer realm="IPFSMaster"')])
            try:
                response = handler(req)
            except sqlite3.OperationalError as exc:
                if not database_busy(exc):
                    raise
                raise HTTPError(503, "The database is busy with a long write (such as a sync saving the catalogue)."
                                     " Try again in a moment.", headers=[("Retry-After", "2")])
        except Redirect as exc:
            response = redirect(exc.location)
        except HTTPError as error:
            if error.status == 404 and error.template == NOT_FOUND and wants_html(environ):
                response = not_found_page(req.lang)   # a mistyped address, opened in a browser
            else:
                response = error_response(error, req.lang, req.all_languages)
        except Exception:
            log.error("unexpected error for %s %s\n%s", req.method, req.path, traceback.format_exc())
            response = error_response(HTTPError(500, "Something went wrong on the server; the details are in its log."),
                                      req.lang, req.all_languages)
        finally:
            req.close()
        status = STATUS_LINES.get(response.status, "%d Status" % response.status)
        if isinstance(response.body, bytes):
            start_response(status, response.headers + SECURITY_HEADERS + [("Content-Length", str(len(response.body)))])
            return [b"" if req.method == "HEAD" else response.body]
        # A stream: passed on as it comes, never held whole; its length is not known.
        start_response(status, response.headers + SECURITY_HEADERS)
        if req.method == "HEAD":
            close_body(response.body)
            return []
        return streamed(environ, response.body)

    def token_opens(self, req):
        """What a pinning token opens besides /psa: /metrics (a scraper may use one instead of the password)."""
        if req.path != "/metrics":
            return None
        return lambda credential: tokens.token_owner(req.db, credential) is not None

    def pinning_service(self, req, start_response):
        """/psa: the pinning service API, which answers everything, its errors too, in the spec's shape."""
        try:
            response = serve_psa(req)
        finally:
            req.close()
        start_response(STATUS_LINES.get(response.status, "%d Status" % response.status),
                       response.headers + SECURITY_HEADERS + [("Content-Length", str(len(response.body)))])
        return [b"" if req.method == "HEAD" else response.body]
