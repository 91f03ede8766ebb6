"""The pages' downloads, in a real browser and in both languages: the pins
page's Download (CSV or JSON lines) and the task console's Download CSV
carry the filters on screen at the moment."""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from selenium.webdriver.support.ui import Select

import console.store

DEAD_NODE = "http://127.0.0.1:9"

SAID = {
    "en": {"button": "Download", "csv": "CSV", "jsonl": "JSON lines", "tasks": "Download CSV"},
    "zh": {"button": "下载", "csv": "CSV", "jsonl": "JSON Lines", "tasks": "下载 CSV"},
}


def add_pins(server, rows):
    conn = console.store.connect(server.db_path)
    try:
        with console.store.transaction(conn):
            conn.executemany("INSERT INTO pins (cid, type, name, size) VALUES (?, 'recursive', ?, ?)", rows)
    finally:
        conn.close()


def link_query(page, css):
    """The path and the query (one value a name) of the link ``css`` as the browser has it now."""
    parts = urlsplit(page.find(css).get_attribute("href"))
    return parts.path, {name: values[-1] for name, values in parse_qs(parts.query).items()}


def fetched_text(page, url):
    """What the page gets when it asks for ``url`` (as the download would)."""
    return page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        " fetch(arguments[0]).then((r) => r.text()).then(done, (e) => done(String(e)));", url)


def open_in(page, server, lang, path):
    page.open(server.url + "/static/app.css")
    page.driver.add_cookie({"name": "lang", "value": lang, "path": "/"})
    page.open(server.url + path)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_pins_download_carries_the_search_and_the_sort(page, make_live_server, lang):
    server = make_live_server(DEAD_NODE)
    add_pins(server, [("bafy-doc-b", "文档 b", 2), ("bafy-doc-a", "文档 a", 1), ("bafy-img", "图片", 3)])
    open_in(page, server, lang, "/pins")
    page.wait_for_text("#pins-download summary", SAID[lang]["button"])
    assert link_query(page, "#download-csv") == ("/api/pins/export", {"format": "csv", "sort": "-synced"})

    page.find("#pin-search").send_keys("文档")
    page.click('th[data-sort="name"] button')          # names A to Z
    page.wait(lambda d: link_query(page, "#download-jsonl")[1].get("sort") == "name"
              and link_query(page, "#download-jsonl")[1].get("q") == "文档", message="the links to follow")
    assert link_query(page, "#download-csv") == ("/api/pins/export", {"format": "csv", "q": "文档", "sort": "name"})
    assert link_query(page, "#download-jsonl")[1]["format"] == "jsonl"

    page.click("#pins-download summary")
    page.wait(lambda d: page.find("#download-jsonl").is_displayed(), message="the choices to show")
    assert page.text("#download-csv") == SAID[lang]["csv"]
    assert page.text("#download-jsonl") == SAID[lang]["jsonl"]
    assert page.find("#download-csv").get_attribute("download") is not None
    page.screenshot("downloads-pins-%s" % lang)

    # What the link leads to is that view of the catalogue, every page of it.
    lines = fetched_text(page, page.find("#download-jsonl").get_attribute("href")).splitlines()
    assert [json.loads(line)["cid"] for line in lines] == ["bafy-doc-a", "bafy-doc-b"]
    page.assert_no_console_errors(allowed_statuses=(502,))


def test_the_pins_download_carries_the_status_filter(page, make_live_server):
    server = make_live_server(DEAD_NODE)
    open_in(page, server, "en", "/pins?status=under-replicated&sort=size")
    page.wait(lambda d: page.find("#pin-filter").is_displayed(), message="the filter to show")
    assert link_query(page, "#download-csv")[1] == {"format": "csv", "status": "under-replicated", "sort": "size"}
    Select(page.find("#pin-filter")).select_by_value("error")
    page.wait(lambda d: link_query(page, "#download-csv")[1].get("status") == "error", message="the new filter")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_tasks_download_carries_the_filters(page, make_live_server, finished_task, lang):
    server = make_live_server(DEAD_NODE)
    finished_task(server, "failed", error="boom")
    open_in(page, server, lang, "/tasks?status=failed")
    page.wait_for_text("#tasks-download", SAID[lang]["tasks"])
    assert link_query(page, "#tasks-download") == ("/api/tasks/export", {"format": "csv", "status": "failed"})
    Select(page.find("#filter-type")).select_by_value("pin_sync")
    page.wait(lambda d: link_query(page, "#tasks-download")[1] == {
        "format": "csv", "status": "failed", "type": "pin_sync"}, message="the link to take the type")
    text = fetched_text(page, page.find("#tasks-download").get_attribute("href"))
    assert text.startswith("id,task_type,status,") and ",failed," in text and "boom" in text
    page.screenshot("downloads-tasks-%s" % lang)
    page.assert_no_console_errors(allowed_statuses=(502,))
