"""The pins page acting on pins in a real browser: the node overview, the pin
form, selecting and unpinning, gateway links and a folder upload; and the
task console updating in place."""

import json
import time

from selenium.webdriver.common.by import By

DEAD_NODE = "http://127.0.0.1:9"


def test_the_overview_shows_the_node_and_its_gateway(page, live_server, ipfs_node):
    page.open(live_server.url + "/pins")
    page.wait_for_text("#node-version", "kubo/0.43.1")
    assert page.text("#node-id") == ipfs_node.rpc("id")["ID"]
    assert page.text("#node-peers") == "0"
    assert " of " in page.text("#node-repo") and page.find("#node-repo .progress").get_attribute("aria-valuenow")
    link = page.find("#node-gateway a")
    assert link.get_attribute("href").rstrip("/") == ipfs_node.gateway_url
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    page.screenshot("pins-node-overview")
    page.assert_no_console_errors()


def test_the_overview_says_when_the_node_cannot_be_reached(page, make_live_server):
    server = make_live_server(DEAD_NODE)
    page.open(server.url + "/pins")
    page.wait_for_text("#node-error", "The node cannot be reached: cannot reach the IPFS API at"
                                      " http://127.0.0.1:9: connection refused")
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#node-error", "无法连接节点：无法连接 IPFS API（http://127.0.0.1:9）：连接被拒绝")
    page.assert_no_console_errors(allowed_statuses=(502,))


def test_the_pin_form_pins_what_it_is_given_and_reports_the_rest(page, live_server, ipfs_node):
    stamp = "%f" % time.time()
    first = ipfs_node.add(b"form pin one " + stamp.encode(), pin=False)
    second = ipfs_node.add(b"form pin two " + stamp.encode(), pin=False)
    page.open(live_server.url + "/pins")
    page.find("#pin-cids").send_keys("%s form-%s\nnot a cid\n%s" % (first, stamp, second))
    page.find("#pin-submit").click()
    page.wait_for_text("#toasts", "Pinning 2 CIDs")
    page.wait_for_text("#toasts", "1 line is not a CID (line 2).")
    panel = page.wait_for_text("#pin-task", "Completed", timeout=60)
    assert "Done\n2" in panel.text and "Not CIDs\n1" in panel.text and "Lines that are not CIDs: 2" in panel.text
    assert page.find("#pin-cids").get_attribute("value") == ""
    pinned = ipfs_node.pin_ls(type="recursive")
    assert first in pinned and second in pinned
    page.find("#pin-search").send_keys("form-" + stamp)
    page.wait(lambda d: [e.get_attribute("title") for e in page.find_all("#pins-body .cid code")] == [first])
    page.screenshot("pins-pin-form")

    page.find("#pin-cids").send_keys("nothing here\nat all")
    page.find("#pin-submit").click()
    page.wait_for_text("#toasts .toast-error", "No line holds a valid CID: 2 lines are not CIDs (the first is line 1).")
    page.assert_no_console_errors(allowed_statuses=(400,))


def test_it_selects_pins_links_them_to_the_gateway_and_unpins_them_after_asking(page, live_server, ipfs_node):
    stamp = "unpin-%f" % time.time()
    cids = [ipfs_node.add(b"%s %d" % (stamp.encode(), n), pin=False) for n in range(3)]
    for number, cid in enumerate(cids):
        ipfs_node.pin_add(cid, name="%s-%d" % (stamp, number))
    live_server.sync()
    page.open(live_server.url + "/pins?q=" + stamp)
    page.wait(lambda d: len(page.find_all("#pins-body tr")) == 3)

    # The links come with the node's gateway, which the page asks for apart from the pins.
    link = page.wait_for("#pins-body tr[data-cid='%s'] .gateway-link" % cids[0])
    assert link.get_attribute("href") == "%s/ipfs/%s" % (ipfs_node.gateway_url, cids[0])
    assert link.get_attribute("target") == "_blank" and link.get_attribute("rel") == "noopener noreferrer"

    assert not page.find("#unpin-button").is_enabled()
    page.find("#select-all").click()
    page.wait_for_text("#unpin-button", "Unpin selected (3)")
    page.find("#pins-body tr[data-cid='%s'] .pin-select" % cids[2]).click()
    page.wait_for_text("#unpin-button", "Unpin selected (2)")
    assert page.js("return document.querySelector('#select-all').indeterminate")

    page.click("#unpin-button")
    page.wait_for_text("#unpin-question", "Unpin 2 pins from the node?")
    page.click("#unpin-no")
    page.wait(lambda d: not page.find("#unpin-confirm").is_displayed())
    assert set(cids) <= set(ipfs_node.pin_ls(type="recursive"))

    page.click("#unpin-button")
    page.screenshot("pins-unpin-confirm")
    page.click("#unpin-yes")
    page.wait_for_text("#unpin-task", "Completed", timeout=60)
    page.wait(lambda d: len(page.find_all("#pins-body tr")) == 1)
    pinned = ipfs_node.pin_ls(type="recursive")
    assert cids[0] not in pinned and cids[1] not in pinned and cids[2] in pinned
    assert page.text("#unpin-button") == "Unpin selected (0)"
    page.assert_no_console_errors()


def test_a_folder_is_uploaded_as_one_directory_with_progress_over_the_set(page, live_server, ipfs_node, tmp_path):
    folder = tmp_path / "holiday"
    (folder / "day1").mkdir(parents=True)
    (folder / "day1" / "beach.txt").write_bytes(b"sand " * 20000)
    (folder / "notes.txt").write_bytes(b"remember the sun cream\n")
    page.open(live_server.url + "/pins")
    page.find("#upload-folder").send_keys(str(folder))
    page.wait_for_text("#upload-chosen", "2 files")
    page.find("#upload-form button[type=submit]").click()
    row = page.wait_for_text(".upload", "pinned", timeout=60)
    assert "holiday" in row.find_element(By.CSS_SELECTOR, ".upload-name").text
    assert "97.7 KiB, 2 files" in row.text and "stored" in row.text
    cid = row.find_element(By.CSS_SELECTOR, ".result-cid code").get_attribute("title")
    link = row.find_element(By.CSS_SELECTOR, ".gateway-link")
    assert link.get_attribute("href") == "%s/ipfs/%s" % (ipfs_node.gateway_url, cid)
    listing = ipfs_node.rpc("ls", arg="/ipfs/%s/holiday" % cid)["Objects"][0]["Links"]
    assert sorted(entry["Name"] for entry in listing) == ["day1", "notes.txt"]
    tasks = json.loads(live_server.request("GET", "/api/tasks?type=file_upload&limit=1").body)["tasks"]
    assert tasks[0]["result"]["files"] == 2 and tasks[0]["total"] == 100000 + 23
    page.screenshot("pins-folder-upload")
    page.assert_no_console_errors()


def test_the_task_console_keeps_focus_and_finds_tasks_started_elsewhere(page, make_live_server, silent_node):
    server = make_live_server(silent_node.url)
    page.open(server.url + "/tasks")
    page.wait_for_text("#tasks-empty", "No tasks")
    # Started from elsewhere (the command line, another tab) while the list is idle.
    task_id = server.request("POST", "/pins/sync").json["taskId"]
    button = page.wait_for("tr[data-task-id='%d'] [data-action='cancel']" % task_id, timeout=20)
    assert page.text("tr[data-task-id='%d'] td:nth-child(2)" % task_id) == "Pin sync"
    button.send_keys("")    # focus it
    page.js("arguments[0].focus()", button)
    page.count_requests("/api/tasks")
    page.wait(lambda d: page.answers("/api/tasks") >= 3, timeout=20, message="a few polls of the list")
    assert page.js("return document.activeElement.dataset.action") == "cancel"
    assert page.js("return document.activeElement === arguments[0]", button)

    page.js("arguments[0].click()", button)
    # The notice shows while the task stops; a quick stop may end it before a look.
    page.wait(lambda d: "Task #%d is stopping" % task_id in page.text("#toasts")
              or server.task(task_id)["status"] == "cancelled", message="the stopping notice")
    page.wait_for_text("tr[data-task-id='%d']" % task_id, "Cancelled", timeout=20)
    page.wait(lambda d: "is stopping" not in page.text("#toasts"), timeout=10, message="the notice to go")
    options = [e.get_attribute("value") for e in page.find_all("#filter-type option")]
    assert {"pin_sync", "file_upload", "pin_add", "pin_remove", "repo_gc"} <= set(options)
    page.assert_no_console_errors()
