"""The pins page's Tokens and pinning service sections, in a real browser,
in English and in Chinese: a token made (shown once, with the Kubo line)
opens /psa, is listed with its last use and revoked; the requests it made
are listed with their token, status, age and the node's error, and the
operator cancels and retries them."""

import json

from support import wait_for

ONE_CID = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"   # the empty folder every Kubo has


def psa_post(server, token, cid, name):
    return server.request("POST", "/psa/pins", json.dumps({"cid": cid, "name": name}).encode(),
                          {"Authorization": "Bearer " + token, "Content-Type": "application/json"})


def table(page, body):
    return page.js("return [...document.querySelectorAll('%s tr')].map((row) =>"
                   " [...row.cells].map((cell) => cell.innerText.trim()));" % body)


def test_tokens_are_made_listed_and_revoked_and_requests_managed(page, live_server, ipfs_node):
    server = live_server
    page.open(server.url + "/pins")
    page.wait_for_text("#tokens-empty", "No tokens yet.")
    page.wait_for_text("#psa-empty", "No device or client has asked for a pin yet.")
    assert page.text("#tokens-endpoint") == server.url + "/psa"

    page.find("#token-name").send_keys("laptop")
    page.click("#token-create")
    token = page.wait_for("#token-value").text
    assert len(token) >= 40
    assert page.text("#token-kubo-line") == "ipfs pin remote service add laptop %s/psa %s" % (server.url, token)
    page.wait(lambda d: table(page, "#tokens-body") and table(page, "#tokens-body")[0][0] == "laptop")
    assert table(page, "#tokens-body")[0][2] == "Never"
    assert token not in page.js("return document.querySelector('#tokens-body').innerText")
    page.click("#token-made-done")
    page.wait(lambda d: not page.find("#token-made").is_displayed())
    assert token not in page.js("return document.body.innerText")

    # The token pins: one request the node can do, one it cannot (offline, no such block).
    assert psa_post(server, token, ONE_CID, "empty folder").status == 202
    missing = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert psa_post(server, token, missing, "nowhere").status == 202
    page.wait(lambda d: len(table(page, "#psa-body")) == 2, timeout=30, message="two requests listed")
    page.wait(lambda d: sorted(row[3] for row in table(page, "#psa-body")) == ["Failed", "Pinned"], timeout=60,
              message="the requests ended")
    rows = {row[1]: row for row in table(page, "#psa-body")}
    assert rows["empty folder"][2] == "laptop" and rows["nowhere"][2] == "laptop"
    assert "not found locally" in rows["nowhere"][5] and rows["empty folder"][5] == ""
    assert rows["nowhere"][4] == "just now"
    page.wait(lambda d: table(page, "#tokens-body")[0][2] != "Never", timeout=30, message="the token's last use")
    page.screenshot("pins-psa")

    # Retry the failed one: it is queued again and fails again with the node's sentence.
    failed = page.js("return document.querySelector('#psa-body tr [data-status=failed]')"
                     ".closest('tr').dataset.requestid")
    page.click('#psa-body tr[data-requestid="%s"] [data-action=retry]' % failed)
    wait_for(lambda: server.request("GET", "/api/psa/requests").json["counts"]["failed"] == 1, timeout=30)

    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#tokens-heading", "令牌")
    page.wait_for_text("#psa-heading", "固定服务请求")
    assert page.js("return [...document.querySelectorAll('.psa-table th')].map((th) => th.innerText.trim());") == [
        "CID", "名称", "令牌", "状态", "时长", "节点的错误", "操作"]
    page.wait(lambda d: {row[3] for row in table(page, "#psa-body")} == {"失败", "已固定"}, timeout=20)
    assert page.js("return [...document.querySelectorAll('.tokens-table th')].map((th) => th.innerText.trim());") == [
        "名称", "创建时间", "最近使用", "操作"]
    page.screenshot("pins-psa-zh")

    # The task list shows the queue's task, and its task view what it did, in Chinese too.
    page.open(server.url + "/tasks")
    row = page.wait_for('#tasks-body tr[data-task-id]')
    assert "固定服务队列" in row.text
    task_id = int(row.get_attribute("data-task-id"))
    page.click('#tasks-body tr[data-task-id="%d"] td:nth-child(2)' % task_id)
    page.wait_for_text("#detail-heading", "#%d" % task_id)
    page.wait(lambda d: "已固定" in page.text("#detail-body")
              and "节点无法固定的请求" in page.text("#detail-body"),
              timeout=20, message="the queue task's counts and failures")
    page.find('[data-lang="en"]').click()
    page.wait(lambda d: "Requests the node could not pin" in page.text("#detail-body"), timeout=10)
    assert "Pinning service queue" in page.text("#detail-body") or "Pinning service queue" in page.js(
        "return document.body.innerText")
    page.screenshot("tasks-psa-queue")
    page.find('[data-lang="zh"]').click()
    page.open(server.url + "/pins")
    page.wait_for_text("#tokens-heading", "令牌")

    # Revoke, confirmed in the row; the token then opens nothing.
    page.click('#tokens-body tr[data-token="laptop"] [data-action=revoke]')
    page.wait_for_text('#tokens-body [data-action=revoke-yes]', "吊销 laptop")
    page.click('#tokens-body [data-action=revoke-yes]')
    page.wait_for_text("#tokens-empty", "还没有令牌。")
    assert psa_post(server, token, ONE_CID, "again").status == 401
    page.assert_no_console_errors()


def test_a_queued_request_is_cancelled_from_the_page(page, make_live_server, isolated_ipfs_node):
    server = make_live_server(isolated_ipfs_node.api_url)
    page.open(server.url + "/pins")
    page.find("#token-name").send_keys("phone")
    page.click("#token-create")
    token = page.wait_for("#token-value").text
    # An online node waits for a block nobody has: the request stays pinning until cancelled.
    waiting = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert psa_post(server, token, waiting, "wait").status == 202
    page.wait(lambda d: table(page, "#psa-body") and table(page, "#psa-body")[0][3] in ("Queued", "Pinning"),
              timeout=30)
    page.click("#psa-body [data-action=cancel]")
    page.wait(lambda d: table(page, "#psa-body")[0][3] == "Failed", timeout=30, message="the request cancelled")
    assert table(page, "#psa-body")[0][5] == "Cancelled by the node's operator"
    page.find('[data-lang="zh"]').click()
    page.wait(lambda d: table(page, "#psa-body")[0][5] == "已被节点的管理员取消", timeout=10)
    assert table(page, "#psa-body")[0][3] == "失败"
    page.assert_no_console_errors()
