"""Who may drive the node: password, sessions, rate limit, origins, headers, binding."""

import os
import re

import pytest

import console.cli.commands
import console.messages
import console.processes
import console.settings
import console.shipped
import console.store
import console.web.app
import console.web.auth
import console.web.http
import console.web.server
import ipfsmaster
from support import Client

PASSWORD = "correct horse battery staple"


@pytest.fixture
def locked(settings):
    """The app with a password set."""
    settings.password = PASSWORD
    return Client(console.web.app.App(settings))


def login(client, password=PASSWORD, next_path="/tasks", **headers):
    body = ("password=%s&next=%s" % (password, next_path)).encode()
    return client.post("/login", body=body, headers=dict({"Content-Type": "application/x-www-form-urlencoded"},
                                                          **headers))


def session_cookie(response):
    cookie = response.header("Set-Cookie")
    return re.match(r"ipfsmaster_session=([^;]+)", cookie).group(1)


def test_without_a_password_no_login_is_needed(client):
    assert client.get("/api/tasks").status == 200
    assert client.get("/login").status == 303


@pytest.mark.parametrize("method,path", [("GET", "/api/tasks"), ("GET", "/api/pins"), ("POST", "/pins/sync"),
                                         ("GET", "/pins/task-status?id=1"), ("POST", "/tasks/cancel?id=1"),
                                         ("POST", "/tasks/retry?id=1"), ("GET", "/tasks/log?id=1"),
                                         ("POST", "/files/upload")])
def test_json_endpoints_need_credentials(locked, db, method, path):
    r = locked.request(method, path)
    assert r.status == 401 and r.json["success"] is False and r.json["error"]
    assert r.header("WWW-Authenticate")
    assert db.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 0


@pytest.mark.parametrize("path", ["/", "/pins", "/tasks"])
def test_pages_lead_to_the_login_form(locked, path):
    r = locked.get(path)
    assert r.status == 303 and r.header("Location") == "/login?next=" + path


def test_the_login_page_and_static_files_are_public(locked):
    assert locked.get("/login").status == 200
    assert locked.get("/static/app.css").status == 200


def test_a_bearer_password_lets_scripts_in(locked):
    assert locked.get("/api/tasks", headers={"Authorization": "Bearer " + PASSWORD}).status == 200
    assert locked.get("/api/tasks", headers={"Authorization": "Bearer wrong"}).status == 401
    assert locked.get("/api/tasks", headers={"Authorization": "Basic " + PASSWORD}).status == 401


def test_logging_in_sets_a_strict_http_only_session_cookie(locked):
    r = login(locked)
    assert r.status == 303 and r.header("Location") == "/tasks"
    cookie = r.header("Set-Cookie")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=" in cookie and "Path=/" in cookie
    token = session_cookie(r)
    assert PASSWORD not in cookie and len(token) >= 40
    assert locked.get("/api/tasks", headers={"Cookie": "ipfsmaster_session=" + token}).status == 200
    assert locked.get("/pins", headers={"Cookie": "ipfsmaster_session=" + token}).status == 200
    assert locked.get("/api/tasks", headers={"Cookie": "ipfsmaster_session=" + token + "x"}).status == 401


def test_logging_out_ends_the_session(locked):
    token = session_cookie(login(locked))
    r = locked.post("/logout", headers={"Cookie": "ipfsmaster_session=" + token})
    assert r.status == 303 and "Max-Age=0" in r.header("Set-Cookie")
    assert locked.get("/api/tasks", headers={"Cookie": "ipfsmaster_session=" + token}).status == 401


def test_sessions_expire(locked, monkeypatch):
    token = session_cookie(login(locked))
    real = console.web.auth.time.monotonic
    monkeypatch.setattr(console.web.auth.time, "monotonic", lambda: real() + console.web.auth.Authenticator.SESSION_SECONDS + 1)
    assert locked.get("/api/tasks", headers={"Cookie": "ipfsmaster_session=" + token}).status == 401


def test_a_wrong_password_goes_back_to_the_form(locked):
    r = login(locked, password="nope")
    assert r.status == 303 and r.header("Location").startswith("/login?error=1")
    assert r.header("Set-Cookie") is None
    r = login(locked, password="nope", Accept="application/json")
    assert r.status == 401 and r.json == {"success": False, "error": "Wrong password."}


def test_failed_logins_are_rate_limited_per_address(locked):
    for _ in range(console.web.auth.Authenticator.MAX_FAILURES):
        login(locked, password="guess")
    r = login(locked)  # even the right password must wait
    assert r.status == 429 and int(r.header("Retry-After")) > 0 and r.json["success"] is False
    other = login(locked, REMOTE_ADDR="127.0.0.2")
    assert other.status == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil",
                                    "tasks"])
def test_login_never_redirects_to_another_site(locked, target):
    r = login(locked, next_path=target)
    assert r.status == 303 and r.header("Location") == "/pins"


def test_a_cross_site_login_is_refused(locked):
    assert login(locked, Origin="http://evil.example").status == 403


def test_every_answer_carries_the_security_headers(locked):
    for r in (locked.get("/api/tasks"), locked.get("/pins"), locked.get("/nope"), locked.get("/static/app.css"),
              login(locked, password="x")):
        csp = r.header("Content-Security-Policy")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert r.header("X-Content-Type-Options") == "nosniff"
        assert r.header("X-Frame-Options") == "DENY" and r.header("Referrer-Policy") == "no-referrer"


def test_pages_have_no_inline_script_or_style():
    static = os.path.join(console.shipped.HERE, "static")
    for name in os.listdir(static):
        if name.endswith(".html"):
            html = open(os.path.join(static, name), encoding="utf-8").read()
            assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), name
            assert not re.search(r"\son[a-z]+\s*=", html), name
            assert "<style" not in html and " style=" not in html, name


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_it_will_not_listen_beyond_loopback_without_a_password(settings, host):
    settings.host, settings.port = host, 0
    with pytest.raises(SystemExit, match="without a password"):
        console.web.server.make_server(settings)


def test_it_listens_beyond_loopback_with_a_password(settings):
    settings.host, settings.port, settings.password = "0.0.0.0", 0, PASSWORD
    server = console.web.server.make_server(settings)
    server.server_close()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_addresses_need_no_password(host):
    assert console.web.http.is_loopback(host)


def test_api_credentials_never_reach_task_parameters(settings, monkeypatch, tmp_path):
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: 1)
    monkeypatch.delenv("IPFSMASTER_IPFS_AUTH", raising=False)
    secret = tmp_path / "ipfs-auth"
    secret.write_text("bearer:t0ken\n")
    args = ["sync", "--db", settings.db, "--ipfs-api", "http://alice:s3cret@127.0.0.1:5001", "--ipfs-auth-file",
            str(secret)]
    assert ipfsmaster.main(args) == 0
    conn = console.store.connect(settings.db)
    params = conn.execute("SELECT params FROM background_tasks").fetchone()[0]
    conn.close()
    assert "s3cret" not in params and "t0ken" not in params and "alice" not in params
    assert '"http://127.0.0.1:5001"' in params


def test_url_credentials_become_basic_auth():
    assert console.settings.split_api_credentials("http://al%40ce:p%3Ass@node:5001/") == (
        "http://node:5001/", "basic:al@ce:p:ss")
    assert console.settings.split_api_credentials("http://node:5001") == ("http://node:5001", None)


def test_settings_never_show_secrets():
    text = repr(console.settings.Settings(password="hunter2", ipfs_auth="bearer:abc"))
    assert "hunter2" not in text and "abc" not in text


# DNS rebinding --------------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "127.0.0.2",
                                  "localhost.:8080"])
def test_without_a_password_loopback_hosts_are_answered(client, host):
    assert client.get("/api/tasks", headers={"Host": host}).status == 200


@pytest.mark.parametrize("method,path", [("GET", "/api/pins"), ("GET", "/tasks/log?id=1"), ("GET", "/pins"),
                                         ("POST", "/pins/sync"), ("GET", "/static/app.css")])
def test_it_rejects_a_rebound_host_without_a_password(client, db, method, path):
    """A page on evil.example whose name now resolves to 127.0.0.1 reads nothing and starts nothing."""
    r = client.request(method, path, headers={"Host": "evil.example:8080", "Origin": "http://evil.example:8080"})
    assert r.status == 421 and r.json["success"] is False and "evil.example" in r.json["error"]
    assert db.execute("SELECT COUNT(*) FROM background_tasks").fetchone()[0] == 0


def test_the_rebinding_refusal_speaks_chinese(client):
    r = client.get("/api/pins", headers={"Host": "evil.example", "Accept-Language": "zh-CN"})
    assert r.status == 421 and r.json["error"] == console.messages.MESSAGES_ZH[
        "This console answers only at its own address, such as http://127.0.0.1, not at {host}."].format(
        host="evil.example")


def test_the_address_it_was_started_with_is_answered(settings):
    settings.host = "myhost.internal"
    assert Client(console.web.app.App(settings)).get("/api/tasks", headers={"Host": "MyHost.internal:8080"}).status == 200


def test_with_a_password_any_host_reaches_the_login(locked):
    """Behind a proxy the Host is the public name; the password guards the console."""
    assert locked.get("/api/tasks", headers={"Host": "console.example"}).status == 401
    assert locked.get("/api/tasks", headers={"Host": "console.example",
                                             "Authorization": "Bearer " + PASSWORD}).status == 200


# Guessing the password ------------------------------------------------------

def bearer(client, password, **headers):
    return client.get("/api/tasks", headers=dict({"Authorization": "Bearer " + password}, **headers))


def test_wrong_bearer_passwords_count_towards_the_lock_out(locked):
    token = session_cookie(login(locked))
    for _ in range(console.web.auth.Authenticator.MAX_FAILURES):
        assert bearer(locked, "guess").status == 401
    r = bearer(locked, PASSWORD)  # even the right password must wait
    assert r.status == 429 and int(r.header("Retry-After")) > 0 and r.json["success"] is False
    assert login(locked).status == 429
    # The owner's session is never locked out, nor another address.
    assert locked.get("/api/tasks", headers={"Cookie": "ipfsmaster_session=" + token}).status == 200
    assert bearer(locked, PASSWORD, REMOTE_ADDR="127.0.0.2").status == 200


def test_a_lock_out_ends_and_a_right_password_forgets_the_failures(locked, monkeypatch):
    for _ in range(console.web.auth.Authenticator.MAX_FAILURES):
        bearer(locked, "guess")
    real = console.web.auth.time.monotonic
    monkeypatch.setattr(console.web.auth.time, "monotonic", lambda: real() + console.web.auth.Authenticator.FAILURE_WINDOW + 1)
    assert bearer(locked, PASSWORD).status == 200
    for _ in range(console.web.auth.Authenticator.MAX_FAILURES - 1):
        bearer(locked, "guess")
    assert bearer(locked, PASSWORD).status == 200
    bearer(locked, "guess")
    assert bearer(locked, PASSWORD).status == 200   # the earlier failures were forgotten


def test_without_trust_in_a_proxy_x_forwarded_for_is_ignored(locked):
    for number in range(console.web.auth.Authenticator.MAX_FAILURES):
        bearer(locked, "guess", X_Forwarded_For="198.51.100.%d" % number)
    assert bearer(locked, PASSWORD, X_Forwarded_For="198.51.100.77").status == 429


def test_behind_a_trusted_proxy_each_client_has_its_own_lock_out(settings):
    settings.password, settings.trust_proxy = PASSWORD, True
    proxied = Client(console.web.app.App(settings))
    for _ in range(console.web.auth.Authenticator.MAX_FAILURES):
        # What the client wrote itself comes first; the proxy appends the address it saw.
        bearer(proxied, "guess", X_Forwarded_For="192.0.2.1, 203.0.113.5")
    assert bearer(proxied, PASSWORD, X_Forwarded_For="203.0.113.5").status == 429
    assert bearer(proxied, PASSWORD, X_Forwarded_For="203.0.113.5, 203.0.113.6").status == 200
    assert login(proxied, X_Forwarded_For="203.0.113.6").status == 303


def test_an_ipv6_client_is_counted_by_its_64_block():
    assert console.web.http.client_address({"REMOTE_ADDR": "2001:db8:1:2::1"}, False) == \
        console.web.http.client_address({"REMOTE_ADDR": "2001:db8:1:2:ffff::9"}, False) == "2001:db8:1:2::/64"
    assert console.web.http.client_address({"REMOTE_ADDR": "::ffff:192.0.2.7"}, False) == "192.0.2.7"
    assert console.web.http.client_address({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.9"},
                                     True) == "192.0.2.9"


@pytest.mark.parametrize("raw,expected", [("1", True), ("yes", True), ("On", True), ("0", False), ("no", False)])
def test_trusting_a_proxy_is_set_from_the_environment(raw, expected):
    assert console.settings.Settings.from_environment({"IPFSMASTER_TRUST_PROXY": raw}).trust_proxy is expected
    assert console.settings.Settings.from_environment({}).trust_proxy is False


def test_a_bad_trust_proxy_value_is_refused():
    with pytest.raises(SystemExit, match="IPFSMASTER_TRUST_PROXY must be yes or no"):
        console.settings.Settings.from_environment({"IPFSMASTER_TRUST_PROXY": "maybe"})


def test_the_trust_proxy_flag(monkeypatch):
    seen = []
    monkeypatch.setattr(console.cli.commands, "serve", seen.append)
    monkeypatch.delenv("IPFSMASTER_TRUST_PROXY", raising=False)
    ipfsmaster.main(["--trust-proxy"])
    ipfsmaster.main([])
    assert [settings.trust_proxy for settings in seen] == [True, False]


# Behind a reverse proxy -------------------------------------------------------

def nginx_example():
    readme = open(os.path.join(console.shipped.HERE, "README.md"), encoding="utf-8").read()
    return re.search(r"\n( +)location / \{\n(.*?)\n\1\}", readme, re.S).group(2)


def test_a_post_through_a_proxy_on_another_port_passes_the_same_origin_check(locked, monkeypatch):
    monkeypatch.setattr(console.processes, "spawn_worker", lambda settings, task_id: 1)
    headers = {"Authorization": "Bearer " + PASSWORD, "Origin": "https://console.example:8443"}
    assert locked.post("/pins/sync", headers=dict(headers, Host="console.example:8443")).status == 202
    # The port dropped on the way (nginx's $host) makes the same request look cross-site.
    assert locked.post("/pins/sync", headers=dict(headers, Host="console.example")).status == 403


def test_the_readmes_nginx_example_passes_host_with_its_port():
    lines = [line.split("#")[0].split() for line in nginx_example().splitlines()]
    host = [line for line in lines if line[:2] == ["proxy_set_header", "Host"]]
    assert host in ([["proxy_set_header", "Host", "$http_host;"]],
                    [["proxy_set_header", "Host", "$host:$server_port;"]])
    assert ["proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for;"] in lines
    assert ["proxy_set_header", "X-Forwarded-Proto", "$scheme;"] in lines


@pytest.mark.parametrize("trust_proxy,secure", [(True, True), (False, False)])
def test_the_session_cookie_is_secure_behind_a_tls_proxy_that_is_trusted(settings, trust_proxy, secure):
    settings.password, settings.trust_proxy = PASSWORD, trust_proxy
    client = Client(console.web.app.App(settings))
    r = login(client, X_Forwarded_Proto="https", X_Forwarded_For="203.0.113.7")
    assert r.status == 303 and ("; Secure" in r.header("Set-Cookie")) is secure


def test_a_login_whose_next_is_not_latin_1_goes_there_percent_encoded(locked):
    from urllib.parse import quote
    r = login(locked, next_path=quote("/任务?q=名字"))
    assert r.status == 303 and r.header("Set-Cookie")
    assert r.header("Location") == "/%E4%BB%BB%E5%8A%A1?q=%E5%90%8D%E5%AD%97"
    r = login(locked, password="wrong", next_path=quote("/任务"))
    assert r.status == 303 and r.header("Location") == "/login?error=1&next=/%25E4%25BB%25BB%25E5%258A%25A1"
