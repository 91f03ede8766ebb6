"""Switching the language redraws everything on screen, in a real browser:
notices already shown (the page's own sentences and the server's), the
error of a task that does not exist, the node's error; both ways."""

import pytest

DEAD_NODE = "http://127.0.0.1:9"

SAID = {
    "en": {
        "need_input": "Paste CIDs or choose a file first.",
        "no_cid": "No line holds a valid CID: 2 lines are not CIDs (the first is line 1).",
        "node": "The node cannot be reached: cannot reach the IPFS API at http://127.0.0.1:9: connection refused",
        "missing": "There is no task #424242.",
        "sync_button": "Sync now",
    },
    "zh": {
        "need_input": "请先粘贴 CID 或选择文件。",
        "no_cid": "没有任何一行包含有效的 CID：2 行不是 CID（第一处在第 1 行）。",
        "node": "无法连接节点：无法连接 IPFS API（http://127.0.0.1:9）：连接被拒绝",
        "missing": "不存在任务 #424242。",
        "sync_button": "立即同步",
    },
}


def toast_texts(page):
    return page.js("return [...document.querySelectorAll('#toasts .toast-text')].map((e) => e.innerText.trim());")


@pytest.mark.parametrize("first,second", [("en", "zh"), ("zh", "en")])
def test_switching_the_language_redraws_notices_and_errors_already_shown(page, make_live_server, first, second):
    server = make_live_server(DEAD_NODE)
    page.open(server.url + "/static/app.css")
    page.driver.add_cookie({"name": "lang", "value": first, "path": "/"})
    page.open(server.url + "/pins")
    page.wait_for_text("#sync-button", SAID[first]["sync_button"])
    page.click("#pin-submit")                       # nothing to pin: the page's own sentence
    page.find("#pin-cids").send_keys("not a cid\nnor this")
    page.click("#pin-submit")                       # the server's sentence, in the language of the moment
    page.wait(lambda d: toast_texts(page) == [SAID[first]["need_input"], SAID[first]["no_cid"]],
              message="both notices in %s" % first)
    page.wait_for_text("#node-error", SAID[first]["node"])

    page.click('[data-lang="%s"]' % second)
    page.wait(lambda d: toast_texts(page) == [SAID[second]["need_input"], SAID[second]["no_cid"]],
              message="both notices in %s" % second)
    assert page.text("#node-error") == SAID[second]["node"]
    dismiss = page.js("return [...document.querySelectorAll('#toasts .toast button')]"
                      ".map((b) => b.getAttribute('aria-label'));")
    assert dismiss == [{"en": "Dismiss", "zh": "关闭"}[second]] * 2
    page.screenshot("language-switch-toasts-%s" % second)

    page.open(server.url + "/tasks?id=424242")
    page.wait_for_text("#detail-missing", SAID[second]["missing"])
    page.click('[data-lang="%s"]' % first)
    page.wait_for_text("#detail-missing", SAID[first]["missing"])
    assert page.text("#detail-heading") == {"en": "Task #424242", "zh": "任务 #424242"}[first]
    page.assert_no_console_errors(allowed_statuses=(400, 404, 502))
