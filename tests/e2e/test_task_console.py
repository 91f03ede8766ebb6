"""The task console in a real browser: filters, detail, cancel and retry."""

import os

from selenium.webdriver.support.ui import Select


SHOWN_IDS = "return [...document.querySelectorAll('#tasks-body tr')].map((tr) => Number(tr.dataset.taskId));"


def test_the_console_filters_tasks_and_keeps_the_filters_in_the_address(page, make_live_server, finished_task):
    server = make_live_server("http://127.0.0.1:9")
    completed = [finished_task(server, "completed", minutes_ago=50 - i) for i in range(3)]
    failed = finished_task(server, "failed", "worker process exited unexpectedly", minutes_ago=20)
    cancelled = finished_task(server, "cancelled", "Cancelled", minutes_ago=10)
    log_path = server.settings.files.log(failed)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as f:
        f.write("[Task %d] Fetching pins from IPFS...\n[Task %d] Progress: 10 / 10\n" % (failed, failed))
    everything = [cancelled, failed] + completed[::-1]

    page.open(server.url + "/tasks")
    page.wait(lambda d: page.js(SHOWN_IDS) == everything)
    page.screenshot("tasks-phone", phone=True)

    Select(page.find("#filter-status")).select_by_value("failed")
    page.wait(lambda d: page.js(SHOWN_IDS) == [failed])
    assert page.driver.current_url.endswith("/tasks?status=failed")
    page.driver.refresh()
    page.wait(lambda d: page.js(SHOWN_IDS) == [failed])
    assert Select(page.find("#filter-status")).first_selected_option.get_attribute("value") == "failed"

    Select(page.find("#filter-type")).select_by_value("file_upload")
    page.wait_for_text("#tasks-empty", "No tasks match these filters.")
    assert page.driver.current_url.endswith("/tasks?status=failed&type=file_upload")
    page.driver.back()
    page.wait(lambda d: page.js(SHOWN_IDS) == [failed])
    assert Select(page.find("#filter-type")).first_selected_option.get_attribute("value") == ""
    page.driver.back()
    page.wait(lambda d: page.js(SHOWN_IDS) == everything)

    Select(page.find("#filter-status")).select_by_value("completed")
    page.wait(lambda d: page.js(SHOWN_IDS) == completed[::-1])
    Select(page.find("#filter-status")).select_by_value("")
    page.wait(lambda d: page.js(SHOWN_IDS) == everything)

    page.click('#tasks-body tr[data-task-id="%d"] td:nth-child(2)' % failed)
    page.wait_for_text("#detail-heading", "Task #%d" % failed)
    assert page.driver.current_url.endswith("/tasks?id=%d" % failed)
    page.wait_for_text("#detail-body .alert", "worker process exited unexpectedly")
    page.wait_for_text("#detail-log", "Progress: 10 / 10")
    page.click("#detail-back")
    page.wait(lambda d: page.js(SHOWN_IDS) == everything)
    page.assert_no_console_errors()


def test_a_running_sync_is_cancelled_and_retried_from_the_console(page, make_live_server, silent_node):
    server = make_live_server(silent_node.url)  # a node that never answers: the sync runs until cancelled
    page.open(server.url + "/pins")
    page.click("#sync-button")
    page.wait_for_text("#sync-task", "Fetching pins from IPFS...")
    assert "indeterminate" in page.find("#sync-task .progress").get_attribute("class")
    assert page.driver.title == "0% · Pins · IPFSMaster"
    page.screenshot("pins-sync-running")

    page.open(server.url + "/tasks")
    first = int(page.wait_for('#tasks-body tr[data-status="running"]').get_attribute("data-task-id"))
    page.click('#tasks-body tr[data-task-id="%d"] [data-action="cancel"]' % first)
    page.wait_for('#tasks-body tr[data-task-id="%d"][data-status="cancelled"]' % first, timeout=15)
    assert server.task(first)["status"] == "cancelled"

    page.click('#tasks-body tr[data-task-id="%d"] [data-action="retry"]' % first)
    second = int(page.wait_for('#tasks-body tr[data-status="running"]', timeout=15).get_attribute("data-task-id"))
    assert second != first and server.task(second)["retry_of"] == first
    page.screenshot("tasks")

    page.click('#tasks-body tr[data-task-id="%d"] a.task-link' % second)
    page.wait_for_text("#detail-heading", "Task #%d" % second)
    page.wait_for_text("#detail-body", "#%d" % first)  # "Retry of #first"
    page.wait_for_text("#detail-log", "Fetching pins from IPFS...")
    page.click('#detail-actions [data-action="cancel"]')
    page.wait_for_text("#detail-badge", "Cancelled", timeout=15)
    page.screenshot("task-detail")

    page.open(server.url + "/tasks?id=%d" % first)
    page.wait_for_text("#detail-body", "Retried as")
    page.screenshot("task-detail-retried")
    page.click('#detail-body a.task-link[href$="id=%d"]' % second)
    page.wait_for_text("#detail-heading", "Task #%d" % second)
    page.assert_no_console_errors()
