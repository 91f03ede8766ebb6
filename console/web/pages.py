"""Handlers of the pages, the login form, static files and what the pages
need to know about the console (``/api/info``)."""

from urllib.parse import quote

from console import registry
from console.errors import HTTPError
from console.shipped import version
from console.web.auth import SESSION_COOKIE, Authenticator
from console.web.http import cookie_value, json_response, page, redirect, static_file


def handle_index(req):
    """Send the browser to the pins page."""
    return redirect("/pins")


def handle_pins_page(req):
    """The pins page."""
    return page("pins.html", req.lang)


def handle_tasks_page(req):
    """The task console."""
    return page("tasks.html", req.lang)


def handle_login_page(req):
    """The login form (only when a password is set)."""
    if not req.auth.enabled:
        return redirect("/pins")
    return page("login.html", req.lang)


def safe_next(target):
    """A local path to return to after login, never another site; percent-encoded
    where it is not ASCII (a Location header carries Latin-1 only)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target or any(c < " " for c in target):
        return "/pins"
    return quote(target, safe="/?&=%#:@!$'()*+,;-._~")


def handle_login(req):
    """Check the password; on success set the session cookie and go on."""
    form = req.form()
    target = safe_next(form.get("next", "/pins"))
    wants_json = "application/json" in req.environ.get("HTTP_ACCEPT", "")
    if not req.auth.try_password(req.client, form.get("password", "")):
        if wants_json or not req.auth.enabled:
            raise HTTPError(401, "Wrong password.")
        return redirect("/login?error=1&next=" + quote(target, safe="/"))
    token = req.auth.start_session()
    secure = "; Secure" if req.https else ""
    cookie = "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s" % (
        SESSION_COOKIE, token, Authenticator.SESSION_SECONDS, secure)
    if wants_json:
        return json_response({"success": True}, headers=[("Set-Cookie", cookie)])
    return redirect(target, [("Set-Cookie", cookie)])


def handle_logout(req):
    """End the session."""
    req.discard_body()
    token = cookie_value(req.environ, SESSION_COOKIE)
    if token:
        req.auth.end_session(token)
    return redirect("/login", [("Set-Cookie", "%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" % SESSION_COOKIE)])


def handle_static(req):
    """A file from static/."""
    return static_file(req.path[len("/static/"):])


def handle_favicon(req):
    """The console's icon, where browsers look for it first."""
    return static_file("favicon.svg")


def handle_info(req):
    """What the pages need to know about this console: its limits, version, task types and a set gateway."""
    return json_response({"max_upload_bytes": req.settings.max_upload_bytes, "password": req.auth.enabled,
                          "version": version(), "task_types": registry.info(), "gateway": req.settings.gateway,
                          "cluster": bool(req.settings.cluster_api)})
