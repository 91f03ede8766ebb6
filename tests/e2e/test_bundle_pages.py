"""The bundled console (ipfsmaster.pyz), copied alone into an empty folder and
run there, in a real browser: every page, styled and scripted from the archive."""

import zipfile

import pytest

from support import BundledServer

PASSWORD = "one file to copy"
STYLED = """return [...document.styleSheets].some((sheet) => sheet.href.endsWith("/static/app.css")
                                                     && sheet.cssRules.length > 50);"""
ICON_DRAWN = "return document.querySelector('.brand img').naturalWidth > 0;"


@pytest.fixture
def bundled_server(bundled_archive, ipfs_node, tmp_path):
    server = BundledServer(bundled_archive, tmp_path / "deploy", ipfs_node.api_url, password=PASSWORD)
    yield server
    server.close()


def test_every_page_of_the_bundled_console_works(page, bundled_server, bundled_archive, ipfs_node, tmp_path):
    with zipfile.ZipFile(bundled_archive) as archive:
        version = archive.read("VERSION").decode().strip()
    cid = ipfs_node.add(b"shown by the bundled console")
    server = bundled_server

    page.open(server.url + "/pins")
    page.wait(lambda d: "/login?next=/pins" in d.current_url)
    page.wait_for_text("#login-heading", "Log in")
    assert page.js(STYLED) and page.js(ICON_DRAWN)
    page.wait_for("#login-password").send_keys(PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait(lambda d: d.current_url.endswith("/pins"))

    page.wait_for_text("#app-version", "IPFSMaster " + version)
    assert page.js(STYLED) and page.js(ICON_DRAWN)
    page.click("#sync-button")
    page.wait(lambda d: page.find_all("#sync-task .badge-completed"), timeout=90, message="the sync to complete")
    page.find("#pin-search").send_keys(cid)
    page.wait(lambda d: [e.get_attribute("title") for e in page.find_all("#pins-body .cid code")] == [cid])

    path = tmp_path / "bundled.txt"
    path.write_bytes(b"uploaded from the browser to the bundled console\n" * 50)
    page.find("#upload-file").send_keys(str(path))
    page.wait_for_text("#upload-chosen", "bundled.txt")
    page.find("#upload-form button[type=submit]").click()
    page.wait_for_text(".upload", "pinned", timeout=60)
    page.screenshot("bundle-pins")

    page.open(server.url + "/tasks")
    page.wait_for_text("#app-version", "IPFSMaster " + version)
    assert page.js(STYLED)
    page.wait(lambda d: len(page.find_all("#tasks-body tr")) == 2)
    page.click('#tasks-body tr[data-task-id="1"] td:nth-child(2)')
    page.wait_for_text("#detail-heading", "Task #1")
    page.wait_for_text("#detail-log", "Sync completed")
    page.screenshot("bundle-task-detail")

    page.click("#logout-button")
    page.wait(lambda d: d.current_url.endswith("/login"))
    page.wait_for("#login-password")
    page.assert_no_console_errors(allowed_statuses=(401,))
