"""Logging in and out, and the upload limit, in a real browser."""

import json

PASSWORD = "open sesame"


def test_a_password_protected_console_needs_a_login(page, make_live_server, ipfs_node):
    server = make_live_server(ipfs_node.api_url, password=PASSWORD)
    page.open(server.url + "/pins")
    page.wait(lambda d: "/login?next=/pins" in d.current_url)
    page.wait_for("#login-password").send_keys("not it")
    page.click("#login-form button[type=submit]")
    page.wait_for_text("#login-error", "Wrong password.")
    page.screenshot("login")

    page.click('[data-lang="zh"]')
    page.wait_for_text("#login-heading", "登录")
    page.wait_for_text("#login-error", "密码错误。")
    page.screenshot("login-zh-phone", phone=True)
    page.click('[data-lang="en"]')

    password = page.find("#login-password")
    password.clear()
    password.send_keys(PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait(lambda d: d.current_url.endswith("/pins"))
    page.wait_for_text("#stat-count", "0")
    assert page.cookie("ipfsmaster_session")
    page.wait_for("#logout-button")
    page.screenshot("pins-logged-in-phone", phone=True)

    page.click("#logout-button")
    page.wait(lambda d: d.current_url.endswith("/login"))
    page.wait_for("#login-password")
    assert not page.cookie("ipfsmaster_session")
    page.open(server.url + "/pins")
    page.wait(lambda d: "/login?next=/pins" in d.current_url)
    page.assert_no_console_errors(allowed_statuses=(401,))


def test_a_file_over_the_limit_is_refused_before_it_is_sent(page, make_live_server, ipfs_node, tmp_path):
    server = make_live_server(ipfs_node.api_url, max_upload_bytes=1024)
    big = tmp_path / "too-big.bin"
    big.write_bytes(b"x" * 4096)
    page.open(server.url + "/pins")
    assert not page.find("#logout-button").is_displayed()  # no password, no log-out
    page.find("#upload-file").send_keys(str(big))
    page.click("#upload-form button[type=submit]")
    page.wait_for_text("#upload-list", "too-big.bin is larger than the limit of 1 KiB.")
    assert json.loads(server.request("GET", "/api/tasks").body)["total"] == 0
    page.assert_no_console_errors()
