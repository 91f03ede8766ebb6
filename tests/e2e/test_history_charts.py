"""The pins page's History, in a real browser and in both languages: charts
of pins, of the repository's size and of the tasks per hour drawn as SVG,
the values on hover, the same figures as tables, and a sentence when there
is no history yet. Samples are written straight into the console's
database rather than waited for."""

import os
import re
import time
from urllib.parse import urlencode

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import Select

import console.history
import console.store
from support import wait_for

MIB = 1024 * 1024
# Where the screenshots go, beside the other browser tests' (test-artifacts/).
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "test-artifacts")


def own_samples_only(server, samples):
    """Replace what the server sampled on its own at its start by ``samples``
    (tuples in the order of console.history.FIELDS)."""
    conn = console.store.connect(server.db_path)
    try:
        wait_for(lambda: conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0], message="the first sample")
        with console.store.transaction(conn):
            conn.execute("DELETE FROM samples")
            conn.executemany("INSERT INTO samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)", samples)
    finally:
        conn.close()


def six_hours(now=None):
    """A sample every five minutes for six hours: pins and sizes growing, a
    few tasks ending each hour, some failing, the node unreachable for a while."""
    now = time.time() if now is None else now
    rows = []
    for step in range(6 * 12 + 1):
        at = now - (6 * 12 - step) * 300
        reachable = not 30 <= step < 34
        rows.append((console.history.timestamp(at), 1000 + step * 40, (200 + step * 3) * MIB,
                     (300 + step * 4) * MIB if reachable else None, 10 * 1024 * MIB if reachable else None,
                     3 if reachable else None, step // 2 + step // 9, step // 9))
    return rows


@pytest.fixture
def server(make_live_server, ipfs_node):
    # One look at the node at the start, no other during the test: the samples are the test's own.
    return make_live_server(ipfs_node.api_url, sample_seconds=3600)


def shown(page, css):
    """Whether ``css`` takes room on screen (a visually hidden element is one pixel, clipped)."""
    return page.js("const box = document.querySelector(arguments[0]).getBoundingClientRect();"
                   " return box.width > 1 && box.height > 1;", css)


def chart_texts(page, css):
    return page.js("return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent.trim());", css)


def test_the_charts_draw_svg_with_values_on_hover_and_tables_in_both_languages(page, server):
    samples = six_hours()
    own_samples_only(server, samples)
    page.open(server.url + "/pins")
    page.wait_for("#history-pins svg.chart path.chart-line")
    assert page.text("#history-heading") == "History"
    assert chart_texts(page, ".chart-figure figcaption") == [
        "Pins in the catalogue", "Repository size", "Tasks per hour by outcome"]
    assert chart_texts(page, ".chart-axis-title") == ["Pins", "Size", "Tasks"]
    # Lines with a point for every sample (the gap where the node was unreachable breaks the repository's line).
    pins_line = page.find("#history-pins path.line-pins").get_attribute("d")
    assert pins_line.startswith("M") and pins_line.count("L") == len(samples) - 1
    repo_line = page.find("#history-size path.line-repo").get_attribute("d")
    assert repo_line.count("M") == 2 and repo_line.count("L") == len(samples) - 4 - 2
    # Every point's values on hover, as the browser shows a <title>.
    hovers = chart_texts(page, "#history-pins .chart-hover rect > title")
    assert len(hovers) == len(samples) and hovers[-1].endswith("Pins: 3,880")
    sizes = chart_texts(page, "#history-size .chart-hover rect > title")
    assert "Repository: —" in sizes[31] and "Pins' total size: 293 MiB" in sizes[31]
    assert sizes[-1].endswith("Repository: 588 MiB\nPins' total size: 416 MiB")
    assert page.text("#history-size .chart-note") == "StorageMax: 10 GiB"
    # Tasks: a bar for each hour in which tasks ended, failed ones apart; 44 ended, 8 of them failed.
    bars = chart_texts(page, "#history-tasks .chart-bar > title")
    assert 6 <= len(bars) <= 7
    ended = sum(int(line.rsplit(": ", 1)[1]) for bar in bars for line in bar.split("\n")[1:])
    failed = sum(int(bar.split("\n")[2].rsplit(": ", 1)[1]) for bar in bars)
    assert (ended, failed) == (44, 8)
    assert page.find_all("#history-tasks rect.bar-failed") and page.find_all("#history-tasks rect.bar-other")
    assert chart_texts(page, "#history-tasks .chart-legend li") == ["Completed or cancelled", "Failed"]
    # The same figures as tables, for screen readers at once, for everyone at a click.
    assert "visually-hidden" in page.find("#history-pins-table").get_attribute("class")
    assert not shown(page, "#history-pins-table")
    assert page.js("return document.querySelector('#history-pins-table caption').textContent") \
        == "Pins in the catalogue, at the end of each hour"
    rows = page.js("return [...document.querySelectorAll('#history-pins-table tbody tr')].map((row) =>"
                   " [...row.cells].map((cell) => cell.textContent));")
    assert 6 <= len(rows) <= 7 and rows[0][1] == "3,880"
    page.click("#history-table-toggle")
    page.wait(lambda d: shown(page, "#history-pins-table"))
    assert page.find("#history-table-toggle").get_attribute("aria-pressed") == "true"
    assert page.text("#history-table-toggle") == "Hide the tables"
    assert chart_texts(page, "#history-size-table thead th") == ["Time", "Repository", "Pins' total size", "StorageMax"]
    assert chart_texts(page, "#history-tasks-table thead th") == ["Hour", "Completed or cancelled", "Failed"]
    page.click("#history-table-toggle")
    page.wait(lambda d: not shown(page, "#history-pins-table"))
    ActionChains(page.driver).move_to_element(page.find("#history-heading")).perform()    # no bar lit by the pointer
    card = page.find("#history-card")
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", card)
    os.makedirs(ARTIFACTS, exist_ok=True)
    english = os.path.join(ARTIFACTS, "history-en.png")
    card.screenshot(english)
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", page.find("#history-pins"))
    page.screenshot("history-phone", phone=True)

    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#history-heading", "历史")
    assert chart_texts(page, ".chart-figure figcaption") == [
        "目录中的固定项", "仓库大小", "每小时结束的任务（按结果）"]
    assert chart_texts(page, ".chart-axis-title") == ["固定项", "大小", "任务数"]
    assert chart_texts(page, "#history-tasks .chart-legend li") == ["已完成或已取消", "失败"]
    assert chart_texts(page, "#history-pins .chart-hover rect > title")[-1].endswith("固定项: 3,880")
    assert page.text("#history-table-toggle") == "以表格显示"
    assert page.js("return document.querySelector('#history-size-table caption').textContent") \
        == "仓库大小与固定项总大小（每小时末）"
    assert page.find("#history-size svg").get_attribute("aria-label").startswith("仓库大小，从 ")
    # The Chinese is drawn in a font that has it: two different characters come out different.
    first, second = page.glyphs(".chart-figure figcaption", "目录")
    assert first != second
    chinese = os.path.join(ARTIFACTS, "history-zh.png")
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", page.find("#history-card"))
    page.find("#history-card").screenshot(chinese)
    for path in (english, chinese):
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 10000
    page.assert_no_console_errors()


def test_the_period_decides_which_samples_are_drawn(page, server):
    now = time.time()
    old = [(console.history.timestamp(now - 3 * 86400 + n * 600), 500, 100 * MIB, 200 * MIB, None, 1, 0, 0)
           for n in range(3)]
    own_samples_only(server, old + six_hours(now))
    page.open(server.url + "/pins")
    page.wait_for("#history-pins svg.chart")
    assert all(re.fullmatch(r"\d\d:\d\d", label) for label in chart_texts(page, "#history-pins .chart-x"))
    day = len(page.find_all("#history-pins .chart-hover rect"))
    Select(page.find("#history-range")).select_by_value("week")
    page.wait(lambda d: len(page.find_all("#history-pins .chart-hover rect")) == day + 3,
              message="the older samples drawn")
    # A week: the time axis reads dates (MM-DD); within a day it read clock times.
    labels = chart_texts(page, "#history-pins .chart-x")
    assert len(labels) >= 2 and all(re.fullmatch(r"\d\d-\d\d", label) for label in labels), labels
    page.assert_no_console_errors()


def test_without_history_a_sentence_says_why_in_both_languages(page, server):
    own_samples_only(server, [])
    page.open(server.url + "/pins")
    page.wait_for_text("#history-empty", "No history yet: the server records its figures every minute")
    assert not page.find_all("#history-charts svg") and not page.find("#history-table-toggle").is_displayed()
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#history-empty", "暂无历史数据")
    page.assert_no_console_errors()


def test_with_no_task_ended_the_tasks_chart_says_so(page, server):
    rows = [row[:6] + (4, 1) for row in six_hours()]
    own_samples_only(server, rows)
    page.open(server.url + "/pins")
    page.wait_for_text("#history-no-tasks", "No task ended in this period.")
    assert page.find_all("#history-pins svg.chart") and not page.find_all("#history-tasks svg")
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#history-no-tasks", "此期间没有任务结束。")
    page.assert_no_console_errors()


def test_a_new_sample_joins_the_charts_at_the_next_look_which_asks_only_from_the_last_one(page, server):
    samples = six_hours(time.time() - 60)
    own_samples_only(server, samples)
    page.open(server.url + "/pins")
    page.wait_for("#history-pins svg.chart path.chart-line")
    page.js("""
        window.__historyAsked = [];
        const original = window.fetch;
        window.fetch = (...args) => {
            if (String(args[0]).startsWith("/api/history")) window.__historyAsked.push(String(args[0]));
            return original(...args);
        };""")
    conn = console.store.connect(server.db_path)
    try:
        conn.execute("INSERT INTO samples VALUES (?, 5000, 0, NULL, NULL, NULL, 100, 50)",
                     (console.history.timestamp(time.time()),))
    finally:
        conn.close()
    # The poller looks again every minute, and at once when the page shows again.
    page.js("document.dispatchEvent(new Event('visibilitychange'))")
    page.wait(lambda d: chart_texts(page, "#history-pins .chart-hover rect > title")[-1].endswith("Pins: 5,000"),
              message="the new sample drawn")
    assert len(page.find_all("#history-pins .chart-hover rect")) == len(samples) + 1
    assert page.js("return window.__historyAsked") == ["/api/history?" + urlencode({"since": samples[-1][0]})]
    page.assert_no_console_errors()
