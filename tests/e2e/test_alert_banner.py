"""The alert banner on every page, the desktop notification of a new alert,
and the repository's levels in the node overview: in a real browser, in
English and in Chinese, against the real server (with a one-second tick)
and real Kubo daemons."""

import os

NOTIFICATIONS = """
    window.__notes = [];
    window.Notification = class {
        constructor(title, options) { window.__notes.push([title, options.body, options.tag]); }
        static get permission() { return "granted"; }
        static requestPermission() { return Promise.resolve("granted"); }
    };
    localStorage.setItem("ipfsmaster.notify", "1");
"""


def banner(page):
    return page.js("return [...document.querySelectorAll('#alert-banner .alert-item')].filter((e) =>"
                   " e.offsetParent).map((e) => e.innerText.trim());")


def test_an_open_alert_shows_on_every_page_until_dismissed_and_comes_back_while_it_lasts(
        page, make_live_server, ipfs_node, finished_task):
    server = make_live_server(ipfs_node.api_url, schedule_tick_seconds=1)
    failed = finished_task(server, "failed", error="worker process exited unexpectedly")
    script = page.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NOTIFICATIONS})
    try:
        page.open(server.url + "/pins")
        page.wait(lambda d: banner(page), timeout=20, message="the alert banner")
        assert banner(page) == ["Task failed The last pin sync failed (task %d): worker process exited unexpectedly"
                                % failed]
        notes = page.js("return window.__notes")
        assert len(notes) == 1 and notes[0][0] == "IPFSMaster" and "task %d" % failed in notes[0][1]
        page.screenshot("pins-alert-banner")

        page.find('[data-lang="zh"]').click()
        page.wait(lambda d: banner(page) and banner(page)[0].startswith("任务失败 最近一次固定列表同步任务失败"),
                  message="the banner in Chinese")
        assert "后台进程" in banner(page)[0] or "worker process" in banner(page)[0]

        page.open(server.url + "/tasks")
        page.wait(lambda d: banner(page), message="the banner on the task console")
        assert page.js("return window.__notes.length") == 0       # told once, not on every page
        page.click("#alert-banner .icon-button")
        page.wait(lambda d: not banner(page), message="the banner dismissed")
        page.open(server.url + "/pins")
        page.wait_for("#node-overview dl")
        assert banner(page) == []                                 # dismissed for a while
        page.js("const d = JSON.parse(localStorage.getItem('ipfsmaster.dismissedAlerts'));"
                " for (const id in d) d[id] = Date.now() - 1;"
                " localStorage.setItem('ipfsmaster.dismissedAlerts', JSON.stringify(d));")
        page.open(server.url + "/pins")
        page.wait(lambda d: banner(page), message="the banner back, as the alert is still open")

        finished_task(server, "completed", minutes_ago=0)       # a sync that worked: the alert clears
        page.wait(lambda d: not banner(page), timeout=20, message="the banner gone with the alert")
        assert not page.find("#alert-banner").is_displayed()
    finally:
        page.driver.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]})
    page.assert_no_console_errors()


def test_a_repository_past_its_alarm_is_shown_and_an_upload_past_storage_max_is_warned_of(
        page, make_live_server, small_node, tmp_path):
    server = make_live_server(small_node.api_url, schedule_tick_seconds=1)
    page.open(server.url + "/pins")
    page.wait_for("#node-repo .repo-bar")
    assert page.find_all("#repo-level") == []
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(1100 * 1024))
    page.find("#upload-file").send_keys(str(path))
    page.wait_for_text("#upload-chosen", "big.bin")
    page.find("#upload-form button[type=submit]").click()
    page.wait_for_text(".toast", "would take the repository past its StorageMax", timeout=30)
    page.wait_for_text(".upload", "pinned", timeout=60)
    page.js("location.reload()")
    level = page.wait_for_text("#repo-level", "Past the alarm level", timeout=20)
    assert level.get_attribute("role") == "alert"
    assert page.find("#node-repo .repo-bar").get_attribute("data-level") == "alarm"
    page.wait(lambda d: any(text.startswith("Repository filling up") for text in banner(page)), timeout=20,
              message="the watermark alert in the banner")
    page.screenshot("pins-repo-alarm")
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#repo-level", "已超过警报线")
    page.wait(lambda d: any(text.startswith("仓库将满") for text in banner(page)), message="the banner in Chinese")
    page.assert_no_console_errors()


def test_a_pin_past_storage_max_is_warned_of_in_both_languages(page, make_live_server, small_node):
    server = make_live_server(small_node.api_url, schedule_tick_seconds=1)
    # Its root and one leaf on the node, four 256 kB leaves gone: pinning it adds 1 MiB.
    cid = small_node.add(os.urandom(1200 * 1024), pin=False, cid_version=1, chunker="size-262144")
    for link in small_node.rpc("ls", arg=cid)["Objects"][0]["Links"][:4]:
        small_node.rpc("block/rm", arg=link["Hash"])
    page.open(server.url + "/pins")
    page.wait_for("#node-repo .repo-bar")
    page.find("#pin-cids").send_keys(cid)
    page.find("#pin-submit").click()
    page.wait_for_text("#toasts", "Pinning this adds 1048576 bytes the node does not hold yet, which would take the"
                                  " repository past its StorageMax", timeout=30)
    page.screenshot("pins-pin-storage-warning")
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#pin-submit", "固定")
    page.find("#pin-cids").send_keys(cid)
    page.find("#pin-submit").click()
    page.wait_for_text("#toasts", "这次固定会添加节点尚未保存的 1048576 字节，会让仓库超过 StorageMax", timeout=30)
    page.assert_no_console_errors()
