"""The node overview's peer count opens the list of connected peers (id,
address, latency), which refreshes while it is open: in a real browser, in
English and in Chinese, against real Kubo daemons."""

from support import swarm_connect


def peer_rows(page):
    return page.js("return [...document.querySelectorAll('#peers-body tr')].map((row) =>"
                   " [...row.cells].map((cell) => cell.innerText.trim()));")


def test_the_peer_count_opens_a_list_that_refreshes_while_open(page, make_live_server, isolated_ipfs_node,
                                                               second_isolated_ipfs_node):
    server = make_live_server(isolated_ipfs_node.api_url)
    page.open(server.url + "/pins")
    toggle = page.wait_for("#node-peers button")
    assert toggle.text == "0" and toggle.get_attribute("aria-expanded") == "false"
    assert not page.find("#peers-panel").is_displayed()

    toggle.click()
    page.wait_for_text("#peers-empty", "No peers are connected.")
    assert page.find("#peers-toggle").get_attribute("aria-expanded") == "true"
    assert page.text("#peers-heading") == "Connected peers (0)"

    # Connected meanwhile: the open list shows it without being asked again.
    other_id = swarm_connect(isolated_ipfs_node, second_isolated_ipfs_node)
    page.wait(lambda d: peer_rows(page), timeout=20, message="the new peer in the list")
    assert peer_rows(page) == [[other_id, "/ip4/127.0.0.1/tcp/%d" % second_isolated_ipfs_node.swarm_port, "not measured"]]
    assert page.text("#peers-heading") == "Connected peers (1)"
    page.wait_for_text("#node-peers", "1", timeout=20)

    isolated_ipfs_node.rpc("ping", arg=other_id, count=3)
    page.wait(lambda d: peer_rows(page) and peer_rows(page)[0][2].endswith(" ms"), timeout=20,
              message="a measured latency")
    page.screenshot("pins-peers")

    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#peers-heading", "已连接的节点 (1)")
    assert page.js("return [...document.querySelectorAll('.peers-table th')].map((th) => th.innerText.trim());") \
        == ["节点 ID", "地址", "延迟"]
    assert peer_rows(page)[0][2].endswith(" 毫秒")
    assert page.find("#peers-toggle").get_attribute("title") == "隐藏已连接的节点"
    page.screenshot("pins-peers-zh")

    page.click("#peers-close")
    page.wait(lambda d: not page.find("#peers-panel").is_displayed())
    assert page.find("#peers-toggle").get_attribute("aria-expanded") == "false"
    assert page.js("return document.activeElement.id") == "peers-toggle"
    page.assert_no_console_errors()


def test_an_offline_node_says_why_it_has_no_peers_in_both_languages(page, live_server):
    page.open(live_server.url + "/pins")
    page.wait_for("#node-peers button").click()
    page.wait_for_text("#peers-empty", "The node runs offline (ipfs daemon --offline): it connects to no peers.")
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#peers-empty", "节点以离线模式运行（ipfs daemon --offline），不会连接任何节点。")
    assert page.text("#peers-heading") == "已连接的节点 (0)"
    page.find("#peers-toggle").click()
    page.wait(lambda d: not page.find("#peers-panel").is_displayed())
    page.assert_no_console_errors()
