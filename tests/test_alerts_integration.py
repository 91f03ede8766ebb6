"""Alerts in the real server with a one-second tick: the real Kubo stopped
and started again (one alert, one signed post each way, through a receiver
that fails its first attempts), and a small repository filled past a tiny
StorageMax."""

import json
import os

from support import wait_for
from webhook_receiver import signed_by

SECRET = "a webhook s3cret"


def alerts_of(server, kind):
    return [alert for alert in server.request("GET", "/api/alerts").json["alerts"] if alert["kind"] == kind]


def test_a_stopped_node_opens_one_alert_and_one_post_and_its_return_closes_it(make_live_server, own_ipfs_node,
                                                                             receiver):
    server = make_live_server(own_ipfs_node.api_url, schedule_tick_seconds=1, webhook_url=receiver.url,
                              webhook_secret=SECRET)
    own_ipfs_node.stop()
    alert = wait_for(lambda: alerts_of(server, "node_down"), timeout=30, message="the node_down alert")[0]
    assert alert["closed_at"] is None and own_ipfs_node.api_url in alert["message"]
    headers, body = wait_for(receiver.delivered, timeout=30, message="the opening's post")[0]
    assert signed_by(SECRET, headers, body)
    assert json.loads(body) == {"event": "opened", "alert": alert}
    assert [status for status, _, _ in receiver.posts] == [500, 500, 200]     # retried until taken

    own_ipfs_node.start()
    closed = wait_for(lambda: [a for a in alerts_of(server, "node_down") if a["closed_at"]], timeout=30,
                      message="the alert to close")
    assert [a["id"] for a in closed] == [alert["id"]] and len(alerts_of(server, "node_down")) == 1
    delivered = wait_for(lambda: receiver.delivered()[1:] and receiver.delivered(), timeout=30,
                         message="the closing's post")
    assert len(delivered) == 2 and signed_by(SECRET, *delivered[1])
    assert json.loads(delivered[1][1]) == {"event": "closed", "alert": closed[0]}


def test_a_repository_filled_past_a_tiny_storage_max_opens_the_watermark_alerts(make_live_server, small_node):
    server = make_live_server(small_node.api_url, schedule_tick_seconds=1)
    assert server.request("GET", "/api/node").json["storage_max"] == 1000000
    assert alerts_of(server, "repo_watermark") == []
    small_node.add(os.urandom(1200 * 1024))
    found = wait_for(lambda: (lambda a: a if len(a) == 2 else None)(alerts_of(server, "repo_watermark")),
                     timeout=30, message="the watermark alerts")
    assert {alert["subject"] for alert in found} == {"warn", "alarm"}
    assert all("StorageMax" in alert["message"] and alert["closed_at"] is None for alert in found)
