"""The pins page in a real browser: sync, failure, upload and language."""

import re

from selenium.webdriver.common.by import By

# Nothing listens on the discard port: every call to this "node" is refused.
DEAD_NODE = "http://127.0.0.1:9"

PANEL_STATE = """
const panel = document.querySelector('#sync-task');
const bar = panel.querySelector('.progress');
const badge = panel.querySelector('.badge');
return {
  status: badge ? badge.className : '',
  value: bar ? bar.getAttribute('aria-valuenow') : null,
  indeterminate: bar ? bar.classList.contains('indeterminate') : false,
  text: panel.innerText,
  title: document.title,
};
"""


def test_it_syncs_the_nodes_pins_into_the_table_while_showing_progress(page, live_server, ipfs_node):
    cids = ipfs_node.add_many([b"browser test pin %d" % i for i in range(300)])
    expected = len(ipfs_node.pin_ls(type="recursive"))
    page.open(live_server.url + "/pins")
    page.wait_for_text("#pins-empty", "No pins in the catalogue yet")

    page.find("#sync-button").click()
    seen = []

    def finished(driver):
        state = driver.execute_script(PANEL_STATE)
        seen.append(state)
        return "badge-completed" in state["status"] or "badge-failed" in state["status"]

    page.wait(finished, timeout=90, message="the sync to finish")
    final = seen[-1]
    assert "badge-completed" in final["status"], final["text"]
    assert "Sync completed" in final["text"] and final["value"] == "100"
    running = [state for state in seen if "badge-running" in state["status"] or "badge-pending" in state["status"]]
    assert running, "the panel never showed the sync under way"
    assert all(re.match(r"^\d{1,3}% · Pins · IPFSMaster$", state["title"]) for state in running)
    moving = {state["value"] for state in running if not state["indeterminate"]}
    assert all(int(value) < 100 for value in moving if value is not None)
    assert page.driver.title == "Pins · IPFSMaster"

    page.wait_for_text("#stat-count", "{:,}".format(expected))
    page.wait_for_text("#page-range", "1–50 of {:,}".format(expected))
    assert len(page.find_all("#pins-body tr")) == 50
    page.screenshot("pins")
    page.screenshot("pins-phone", phone=True)

    search = page.find("#pin-search")
    search.send_keys(cids[123])
    page.wait(lambda d: len(page.find_all("#pins-body tr")) == 1
              and page.find("#pins-body .cid code").get_attribute("title") == cids[123])
    assert page.text("#page-range") == "1–1 of 1"
    page.assert_no_console_errors()


def test_it_shows_why_a_sync_failed_and_retries_it(page, make_live_server):
    server = make_live_server(DEAD_NODE)
    page.open(server.url + "/pins")
    page.wait_for_text("#pins-empty", "No pins in the catalogue yet")
    assert page.text("#stat-last-sync") == "Never"

    page.find("#sync-button").click()
    message = "cannot reach the IPFS API at http://127.0.0.1:9: connection refused"
    page.wait_for_text("#sync-task .alert", message, timeout=30)
    first = int(page.text("#sync-task .task-head a").lstrip("#"))
    assert page.driver.title == "Pins · IPFSMaster"
    assert page.find("#sync-button").is_enabled()
    page.screenshot("pins-sync-failed")

    page.click("#sync-retry")
    page.wait(lambda d: page.text("#sync-task .task-head a") != "#%d" % first, message="a new task")
    second = int(page.text("#sync-task .task-head a").lstrip("#"))
    assert server.task(second)["retry_of"] == first
    assert not page.find_all("#sync-task .alert")  # the new task is under way
    assert not page.find("#sync-button").is_enabled()
    page.assert_no_console_errors(allowed_statuses=(502,))  # the node overview


def test_it_uploads_a_file_and_pins_it(page, live_server, ipfs_node, tmp_path):
    path = tmp_path / "greeting.txt"
    path.write_bytes(b"hello from the browser test\n" * 4000)
    page.open(live_server.url + "/pins")
    page.find("#upload-file").send_keys(str(path))
    page.wait_for_text("#upload-chosen", "greeting.txt")
    page.find("#upload-name").send_keys("browser greeting")
    page.find("#upload-form button[type=submit]").click()

    row = page.wait_for_text(".upload", "pinned", timeout=60)
    cid = row.find_element(By.CSS_SELECTOR, ".cid code").get_attribute("title")
    assert cid in ipfs_node.pin_ls(type="recursive")
    assert "109 KiB" in row.text  # 112,000 bytes
    page.find("#pin-search").send_keys("browser greeting")
    page.wait(lambda d: [e.get_attribute("title") for e in page.find_all("#pins-body .cid code")] == [cid])
    page.assert_no_console_errors()


def test_the_language_switch_translates_in_place_and_remembers_the_choice(page, make_live_server, finished_task):
    server = make_live_server(DEAD_NODE)
    finished_task(server, "failed", "cannot reach the IPFS API at http://127.0.0.1:5001: connection refused")
    page.open(server.url + "/pins")
    assert page.js("return document.documentElement.lang") == "en"
    assert page.text("#sync-button") == "Sync now"

    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#sync-button", "立即同步")
    assert page.js("return document.documentElement.lang") == "zh"
    assert page.cookie("lang") == "zh"
    assert page.driver.title == "固定列表 · IPFSMaster"
    assert page.text("#stat-last-sync") == "从未同步"
    assert page.find("#pin-search").get_attribute("placeholder") == "按 CID 或名称搜索"
    page.screenshot("pins-zh")
    # Chinese renders: a CJK font is there, not empty boxes.
    first, again, second, blank = page.glyphs("#sync-button", "同同步 ")
    assert first == again and blank not in (first, second)
    assert first != second, "Chinese renders as empty boxes: no CJK font (apt-get install fonts-wqy-zenhei)"

    # The server now answers in Chinese too, and worker messages are translated.
    page.open(server.url + "/tasks")
    assert page.js("return document.documentElement.lang") == "zh"
    page.wait_for_text(".tasks-table .error-text", "无法连接 IPFS API（http://127.0.0.1:5001）：连接被拒绝")
    assert page.text(".nav a[href='/tasks']") == "任务"

    page.find('[data-lang="en"]').click()
    page.wait_for_text(".tasks-table .error-text",
                       "cannot reach the IPFS API at http://127.0.0.1:5001: connection refused")
    assert page.cookie("lang") == "en"
    assert page.text(".nav a[href='/tasks']") == "Tasks"
    assert page.js("return document.documentElement.lang") == "en"
    page.assert_no_console_errors(allowed_statuses=(502,))  # the node overview


POLL_TIMES = """
window.__polls = [];
const original = window.fetch;
window.fetch = (...args) => {
  const poll = String(args[0]).startsWith('/pins/task-status') ? { asked: performance.now() } : null;
  if (poll) window.__polls.push(poll);
  return original(...args).then((response) => {
    if (poll) poll.answered = performance.now();
    return response;
  });
};
"""


def test_a_started_task_is_looked_at_at_once_and_then_quickly(page, make_live_server, silent_node):
    """The first look at a new task is at once, the next ones follow within a fraction of a
    second, slowing down: a sync that ends in 170 ms shows its end, not a second of "waiting"."""
    server = make_live_server(silent_node.url)   # the sync runs (listing) until it is cancelled
    page.open(server.url + "/pins")
    page.js(POLL_TIMES)
    page.click("#sync-button")
    page.wait(lambda d: len(page.js("return window.__polls.filter((p) => p.answered)")) >= 5, timeout=20,
              message="five looks at the task")
    polls = page.js("return window.__polls")
    # How long each look waited after the previous answer: about 100, 150, 225, 340 ms (not 1 s).
    waits = [later["asked"] - earlier["answered"] for earlier, later in zip(polls, polls[1:5])]
    assert all(wait < 600 for wait in waits[:3]), waits
    assert waits[0] < waits[3], waits
    page.wait_for_text("#sync-task", "Fetching pins from IPFS...")
    page.click("#sync-cancel")
    page.wait_for_text("#sync-task .badge", "Cancelled", timeout=20)
    page.assert_no_console_errors()
