"""The pins page of a console working through a real IPFS Cluster of two
peers: the peers, each pin's replication, a peer's errors, the filters and
recovery, with everything the cluster says shown as text."""

import json

from selenium.webdriver.support.ui import Select

from support import CLUSTER_PASSWORD, CLUSTER_USER

SECRET = "basic:%s:%s" % (CLUSTER_USER, CLUSTER_PASSWORD)
MARKUP_NAME = '<img src=x onerror="document.title=\'owned\'"> <b>bold</b>'


def test_the_pins_page_shows_the_cluster_and_recovers_what_a_peer_failed(page, make_live_server, cluster):
    server = make_live_server(cluster.kubos[0].api_url, cluster_api=cluster.api_url, cluster_auth=SECRET)
    named = cluster.add_everywhere(b"a pin whose name looks like markup")
    cluster.pin(named, name=MARKUP_NAME)
    cluster.wait_for(lambda: set(cluster.status(named).values()) == {"pinned"}, "both peers to pin it")

    late = b"pinned while the second peer's Kubo is down, in the browser test"
    cluster.kubos[1].stop()
    try:
        failed = cluster.pin_failed_by_second_peer(late)
        assert server.sync()["status"] == "completed"
    finally:
        cluster.kubos[1].start()
    cluster.kubos[1].add(late, pin=False)

    page.open(server.url + "/pins")
    page.wait_for_text("#cluster-peers", "peer-1")
    assert "peer-0" in page.text("#cluster-peers")
    page.wait_for_text("#cluster-counts", "2 peers")
    row = "#pins-body tr[data-cid='%s']" % failed
    page.wait_for_text(row + " .cell-replication", "1 of 2 peers")
    assert "connection refused" in page.text(row + " .peer-error")
    assert page.text("#col-replication") == "Replication"
    # A pin's name (and anything else the cluster says) is text, never markup.
    name_cell = "#pins-body tr[data-cid='%s'] .cell-name" % named
    assert page.text(name_cell) == MARKUP_NAME
    assert not page.find_all(name_cell + " img, " + name_cell + " b") and page.driver.title != "owned"
    page.screenshot("pins-cluster")

    Select(page.find("#pin-filter")).select_by_value("error")
    page.wait(lambda d: "status=error" in d.current_url)
    page.wait_for(row)
    in_error = json.loads(server.request("GET", "/api/pins?status=error").body)["total"]
    page.wait(lambda d: len(page.find_all("#pins-body tr")) == in_error, message="the pins in error alone")

    button = page.find("#recover-button")
    assert button.is_enabled()
    page.js("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", button)
    page.wait_for_text("#recover-task", "Completed", timeout=120)
    assert cluster.status(failed) == {"peer-0": "pinned", "peer-1": "pinned"}
    tasks = json.loads(server.request("GET", "/api/tasks?type=pin_recover").body)["tasks"]
    assert tasks[0]["status"] == "completed" and tasks[0]["result"]["recovered"] >= 1
    page.find('[data-lang="zh"]').click()
    page.wait_for_text("#cluster-heading", "IPFS Cluster")
    page.wait_for_text("#cluster-counts", "个节点")
    page.screenshot("pins-cluster-zh")
    page.assert_no_console_errors()
