"""The Schedules section of the task console, in a real browser against the
real server and Kubo: add, refuse a bad time, run now, disable, edit,
delete; in English and in Chinese."""

import console.store


def rows(page):
    return page.js("return [...document.querySelectorAll('#schedules-body tr')].map((row) =>"
                   " [...row.cells].map((cell) => cell.innerText.trim()));")


def schedules_in_db(server):
    conn = console.store.connect(server.db_path)
    try:
        return [dict(row) for row in conn.execute("SELECT id, spec, enabled, params FROM schedules ORDER BY id")]
    finally:
        conn.close()


def choose(page, css, value):
    page.js("const s = document.querySelector(arguments[0]); s.value = arguments[1];"
            " s.dispatchEvent(new Event('change'));", css, value)


def test_the_schedules_section_adds_runs_disables_edits_and_deletes(page, live_server):
    page.open(live_server.url + "/tasks")
    page.wait_for_text("#schedules-heading", "Schedules")
    page.wait_for_text("#schedules-empty", "No schedules yet")
    page.wait(lambda d: page.js("return document.querySelector('#schedule-type').options.length") >= 5)
    assert not page.find("#schedule-name").is_displayed()        # name_follow's field, not pin_sync's
    choose(page, "#schedule-type", "name_follow")
    assert page.find("#schedule-name").is_displayed() and page.find("#schedule-keep").is_displayed()
    choose(page, "#schedule-type", "pin_sync")

    page.find("#schedule-value").send_keys("6h")
    page.click("#schedule-save")
    page.wait(lambda d: rows(page), message="the new schedule's row")
    row = rows(page)[0]
    assert row[1] == "Pin sync" and row[2] == "every 6h" and row[4] == "—"
    assert row[3] and row[3] != "Disabled"
    schedule_id = schedules_in_db(live_server)[0]["id"]

    choose(page, "#schedule-kind", "daily")
    page.find("#schedule-value").send_keys("25:00")
    page.click("#schedule-save")
    page.wait_for_text("#schedule-error", "'25:00' is not a time of day: write HH:MM, from 00:00 to 23:59.")
    assert len(schedules_in_db(live_server)) == 1
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#schedule-error", "'25:00' 不是一天中的时间")
    page.wait_for_text("#schedules-heading", "计划任务")
    page.wait(lambda d: rows(page)[0][2] == "每 6h" and rows(page)[0][1] == "固定列表同步")
    page.screenshot("tasks-schedules-zh")

    page.click(".schedule-run")
    page.wait_for_text(".toast", "已开始任务 #")
    page.wait(lambda d: "#" in rows(page)[0][4], timeout=20, message="the last run in the row")
    page.find('[data-lang="en"]').click()
    page.wait(lambda d: rows(page)[0][2] == "every 6h")

    page.click(".schedule-enabled")
    page.wait(lambda d: rows(page)[0][3] == "Disabled", message="the schedule disabled")
    assert schedules_in_db(live_server)[0]["enabled"] == 0
    page.click(".schedule-enabled")
    page.wait(lambda d: rows(page)[0][3] != "Disabled", message="the schedule enabled again")

    page.click(".schedule-edit")
    page.wait_for_text("#schedule-form-heading", "Edit schedule %d" % schedule_id)
    assert page.find("#schedule-value").get_attribute("value") == "6h" or page.js(
        "return document.querySelector('#schedule-value').value") == "6h"
    page.find("#schedule-value").clear()
    page.find("#schedule-value").send_keys("12h")
    page.click("#schedule-save")
    page.wait(lambda d: rows(page)[0][2] == "every 12h", message="the edited schedule")
    assert schedules_in_db(live_server)[0]["spec"] == "every 12h"
    page.wait_for_text("#schedule-form-heading", "Add schedule")
    page.screenshot("tasks-schedules")

    page.click(".schedule-delete")
    page.wait_for_text("#schedules-empty", "No schedules yet")
    assert schedules_in_db(live_server) == []
    page.assert_no_console_errors(allowed_statuses=(400,))


def test_a_weekly_name_follow_is_added_in_chinese(page, live_server):
    page.open(live_server.url + "/tasks")
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#schedules-heading", "计划任务")
    page.wait(lambda d: page.js("return document.querySelector('#schedule-type').options.length") >= 5)
    choose(page, "#schedule-type", "name_follow")
    choose(page, "#schedule-kind", "weekly")
    choose(page, "#schedule-day", "mon")
    page.find("#schedule-value").send_keys("03:30")
    page.find("#schedule-name").send_keys("/ipns/example.org")
    page.find("#schedule-keep").send_keys("2")
    page.click("#schedule-save")
    page.wait(lambda d: rows(page), message="the new schedule's row")
    assert rows(page)[0][2] == "每周一 03:30"
    assert "/ipns/example.org，保留最近 2 个" in rows(page)[0][1]
    assert schedules_in_db(live_server)[0]["spec"] == "weekly mon 03:30"
    page.find('[data-lang="en"]').click()
    page.wait(lambda d: rows(page)[0][2] == "Mondays at 03:30")
    page.assert_no_console_errors()
