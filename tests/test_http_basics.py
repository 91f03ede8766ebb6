"""Routing, errors, headers and the language of error messages."""

import os

import pytest

import console.messages
import console.processes
import console.shipped
import console.web.app
import console.web.http
from support import Client


def test_root_leads_to_the_pins_page(client):
    r = client.get("/")
    assert r.status == 303 and r.header("Location") == "/pins"


@pytest.mark.parametrize("path", ["/pins", "/tasks"])
def test_pages_are_html_with_security_headers(client, path):
    r = client.get(path)
    assert r.status == 200 and r.header("Content-Type").startswith("text/html")
    assert "script-src 'self'" in r.header("Content-Security-Policy")
    assert r.header("X-Content-Type-Options") == "nosniff"
    assert r.header("X-Frame-Options") == "DENY"
    assert r.header("Referrer-Policy") == "no-referrer"


def test_pages_speak_the_readers_language(client):
    assert b'<html lang="zh">' in client.get("/pins", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).body
    assert b'<html lang="en">' in client.get("/pins", headers={"Accept-Language": "de, en;q=0.5"}).body
    assert b'<html lang="en">' in client.get("/pins", headers={"Accept-Language": "zh", "Cookie": "lang=en"}).body


def test_errors_are_translated(client):
    r = client.get("/pins/task-status?id=abc", headers={"Accept-Language": "zh-CN"})
    assert r.status == 400 and r.json["error"] == "任务编号必须是正整数。"


def test_every_message_has_a_translation():
    import ast
    import glob
    templates = set()
    for path in glob.glob(os.path.join(console.shipped.HERE, "console", "**", "*.py"), recursive=True):
        tree = ast.parse(open(path, encoding="utf-8").read())
        templates |= {node.args[1].value for node in ast.walk(tree)
                      if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "HTTPError"
                      and isinstance(node.args[1], ast.Constant)}
    templates |= {"A {what} is already running (task {id}).",
                  "A {what} cannot start while a {other} runs (task {id}); try again when it has ended."}
    assert len(templates) > 20
    assert sorted(t for t in templates if t not in console.messages.MESSAGES_ZH) == []


def test_unknown_paths_are_404_json(client):
    r = client.get("/nope")
    assert r.status == 404 and r.json == {"success": False, "error": "Not found."}
    r = client.get("/nope", headers={"Accept": "application/json, */*"})
    assert r.status == 404 and r.json == {"success": False, "error": "Not found."}


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize("path", ["/pins/nope", "/static/nope.html", "/Pins"])
def test_a_browser_gets_a_404_page_for_an_unknown_address(client, path):
    r = client.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert r.status == 404 and r.header("Content-Type") == "text/html; charset=utf-8"
    assert b'<html lang="en">' in r.body and b'href="/pins"' in r.body and b"Page not found" in r.body
    assert "script-src 'self'" in r.header("Content-Security-Policy")


def test_the_404_page_speaks_the_readers_language(client):
    for headers in ({"Accept-Language": "zh-CN,zh;q=0.9"}, {"Cookie": "lang=zh", "Accept-Language": "en"}):
        r = client.get("/nope", headers=dict(headers, Accept=BROWSER_ACCEPT))
        assert r.status == 404 and b'<html lang="zh">' in r.body
    r = client.get("/nope", headers={"Accept": BROWSER_ACCEPT, "Cookie": "lang=en", "Accept-Language": "zh"})
    assert b'<html lang="en">' in r.body


def test_the_404_page_needs_no_login(settings):
    settings.password = "secret"
    r = Client(console.web.app.App(settings)).get("/nope", headers={"Accept": BROWSER_ACCEPT})
    assert r.status == 404 and b"Page not found" in r.body


def test_a_known_address_with_a_missing_task_stays_json_for_a_browser(client):
    r = client.get("/pins/task-status?id=99", headers={"Accept": BROWSER_ACCEPT})
    assert r.status == 404 and r.json["error"] == "There is no task 99."


def test_the_favicon_is_the_consoles_icon(client):
    r = client.get("/favicon.ico")
    assert r.status == 200 and r.header("Content-Type") == "image/svg+xml"
    assert r.body == client.get("/static/favicon.svg").body and r.body.startswith(b"<svg")


def test_the_favicon_needs_no_login(settings):
    settings.password = "secret"
    assert Client(console.web.app.App(settings)).get("/favicon.ico").status == 200


def test_pages_get_an_error_in_every_language_when_they_ask(client):
    r = client.get("/pins/task-status?id=abc", headers={"X-IPFSMaster-Translations": "1", "Cookie": "lang=zh"})
    assert r.status == 400 and r.json["error"] == "任务编号必须是正整数。"
    assert r.json["translations"] == {"en": "The task id must be a positive whole number.",
                                      "zh": "任务编号必须是正整数。"}
    assert "translations" not in client.get("/pins/task-status?id=abc").json


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/pins/sync", "POST"), ("DELETE", "/pins", "GET, HEAD"), ("POST", "/api/tasks", "GET, HEAD"),
    ("PUT", "/tasks/cancel?id=1", "POST"),
])
def test_wrong_methods_get_405_with_allow(client, method, path, allow):
    r = client.request(method, path)
    assert r.status == 405 and r.header("Allow") == allow
    assert r.json["success"] is False


def test_head_is_answered_without_a_body(client):
    r = client.request("HEAD", "/pins")
    assert r.status == 200 and r.body == b""


@pytest.mark.parametrize("path", ["/static/../schema.sql", "/static/%2e%2e/schema.sql", "/static/..%2fschema.sql",
                                  "/static/....//schema.sql", "/static/..\\schema.sql", "/static/app.css\x00.js",
                                  "/static/", "/static/nope.css", "/static//etc/passwd"])
def test_static_files_cannot_escape_their_folder(client, path):
    from urllib.parse import unquote
    assert client.get(unquote(path)).status == 404


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                                     {"Origin": "null"}])
def test_cross_site_posts_are_refused(client, db, headers):
    r = client.post("/pins/sync", headers=headers)
    assert r.status == 403 and r.json["success"] is False
    assert db.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 0


def test_same_origin_posts_are_allowed(client, monkeypatch):
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: 1)
    r = client.post("/pins/sync", headers={"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"})
    assert r.status == 202


def test_an_oversized_body_is_413(client):
    r = client.post("/pins/sync", body=b"x" * (console.web.http.MAX_FORM_BODY + 1))
    assert r.status == 413 and r.json["success"] is False


def test_an_unexpected_error_is_a_short_500_without_details(client, monkeypatch):
    def boom(req):
        raise RuntimeError("secret /etc/path")
    monkeypatch.setattr(console.web.app, "ROUTES", [("GET", "/boom", boom)])
    r = client.get("/boom")
    assert r.status == 500 and "secret" not in r.text and "Traceback" not in r.text
    assert r.json["success"] is False


def test_windows_workers_are_started_detached():
    options = console.processes.detach_options("nt")
    flags = options["creationflags"]
    assert flags & 0x00000008  # DETACHED_PROCESS
    assert flags & 0x00000200  # CREATE_NEW_PROCESS_GROUP
    assert not flags & 0x08000000  # CREATE_NO_WINDOW: DETACHED_PROCESS already has no window
    assert "start_new_session" not in options


def test_posix_workers_get_a_new_session():
    assert console.processes.detach_options("posix") == {"start_new_session": True}
