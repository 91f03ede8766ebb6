"""Tasks that completed with some items failed, in a real browser, in English
and Chinese: "completed, N failed" (not a green 100%) on the pins page, in its
notice, in the task list and in the task's detail; what failed, named by the
task's type; "Retry the N failed" while the server lets it start again, and a
link to the retry once there is one.

The server's task JSON says ``partial``, ``retryable`` (a partial task not
retried yet) and ``retried_by``.
"""

import hashlib
import json
import time

import pytest

import console.store

SAID = {
    "en": {"partial": "Completed, 1 failed", "details": "CIDs that could not be pinned (1)",
           "retry": "Retry the 1 failed", "progress": "2 / 2 · 1 failed", "retried": "Retried as #%d"},
    "zh": {"partial": "已完成，1 个失败", "details": "无法固定的 CID（1）",
           "retry": "重试失败的 1 个", "progress": "2 / 2 · 1 个失败", "retried": "已重试为 #%d"},
}


def absent_cid(seed):
    """A CID whose block no node has: pinning it on an offline node fails at once."""
    import base64
    digest = hashlib.sha256(seed.encode()).digest()
    return "b" + base64.b32encode(b"\x01\x55\x12\x20" + digest).decode().lower().rstrip("=")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_partly_failed_pin_task_says_so_everywhere(page, live_server, ipfs_node, lang):
    said = SAID[lang]
    stamp = "partial-%s-%f" % (lang, time.time())
    present = ipfs_node.add(stamp.encode(), pin=False)
    missing = absent_cid(stamp)
    page.open(live_server.url + "/static/app.css")
    page.driver.add_cookie({"name": "lang", "value": lang, "path": "/"})
    page.open(live_server.url + "/pins")

    page.find("#pin-cids").send_keys("%s\n%s" % (present, missing))
    page.click("#pin-submit")
    badge = page.wait_for("#pin-task .badge-partial", timeout=60)
    task_id = int(page.text("#pin-task .task-head a").lstrip("#"))
    assert badge.text == said["partial"]
    assert page.find("#pin-task .progress").get_attribute("data-status") == "partial"
    assert page.text("#pin-task .error-details summary") == said["details"]
    assert page.wait_for_text("#toasts .toast-warn", "#%d" % task_id).text.endswith(said["partial"])
    retry = page.find_all("#pin-task [data-action='retry']")
    assert [button.text for button in retry] == [said["retry"]]
    page.js("document.querySelector('#pin-task').scrollIntoView({block: 'center'})")
    page.screenshot("partial-pin-panel-%s" % lang)

    page.open(live_server.url + "/tasks")
    row = "#tasks-body tr[data-task-id='%d']" % task_id
    page.wait_for_text(row + " .badge-partial", said["partial"])
    assert page.text(row + " .progress-meta") == said["progress"] and "100%" not in page.text(row)
    assert page.find(row + " .progress").get_attribute("data-status") == "partial"
    assert page.find_all(row + " [data-action='retry']")
    page.screenshot("partial-task-list-%s" % lang)

    page.click(row + " a.task-link")
    page.wait_for_text("#detail-badge .badge-partial", said["partial"])
    assert said["partial"] in page.text("#detail-body .fields")
    assert page.text("#detail-body .error-details summary") == said["details"]
    assert page.find_all("#detail-actions [data-action='retry']")

    # Retried (from the command line, say): the retry is linked to, and no Retry is offered again.
    retry_id = add_retry(live_server.db_path, task_id)
    page.driver.refresh()
    link = page.wait_for("#detail-actions a[data-action='retried']")
    assert link.text == said["retried"] % retry_id and not page.find_all("#detail-actions [data-action='retry']")
    page.screenshot("partial-task-detail-%s" % lang)
    page.click("#detail-back")
    page.wait_for(row)
    assert not page.find_all(row + " [data-action='retry']")
    assert page.text(row + " a[data-action='retried']") == said["retried"] % retry_id
    page.assert_no_console_errors()


def add_retry(db_path, task_id):
    """Record a finished retry of ``task_id``, as the command line's retry leaves one; its id."""
    conn = console.store.connect(db_path)
    try:
        with console.store.transaction(conn):
            return conn.execute(
                "INSERT INTO background_tasks (task_type, status, retry_of, result, progress, total, created_at,"
                " started_at, completed_at) VALUES ('pin_add', 'completed', ?, ?, 1, 1, datetime('now'),"
                " datetime('now'), datetime('now'))",
                (task_id, json.dumps({"done": 1, "failed": 0, "error_details": []}))).lastrowid
    finally:
        conn.close()
