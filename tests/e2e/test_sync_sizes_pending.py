"""A first sync in a real browser, in both languages: the pins appear and
can be searched as soon as the listing is applied, while the page says
their sizes are still being looked up; the notice goes when the sync ends."""

import pytest

SAID = {
    "en": {"pending": "The pins are all here; their sizes are still being looked up and fill in as the sync goes on.",
           "panel": "Catalogue updated; looking up sizes:", "range": "1–50 of 300", "done": "Sync completed"},
    "zh": {"pending": "固定项已全部列出；大小仍在查询中，同步进行时会陆续填入。",
           "panel": "目录已更新；正在查询大小：", "range": "1–50 / 300", "done": "同步完成"},
}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_pins_show_while_their_sizes_are_looked_up(page, make_live_server, fake_node, monkeypatch, lang):
    for number in range(300):
        fake_node.add("bafyslow%06d" % number, 1000 + number, name="slow %d" % number if number == 42 else None)
    fake_node.lookup_delay = 0.03          # about nine seconds of look-ups, one at a time
    monkeypatch.setenv("IPFSMASTER_SIZE_CONCURRENCY", "1")
    monkeypatch.setenv("IPFSMASTER_SIZE_PIPELINE", "1")
    server = make_live_server(fake_node.url)
    page.open(server.url + "/static/app.css")
    page.driver.add_cookie({"name": "lang", "value": lang, "path": "/"})
    page.open(server.url + "/pins")
    page.click("#sync-button")

    page.wait_for_text("#sizes-pending", SAID[lang]["pending"], timeout=30)
    page.wait(lambda d: SAID[lang]["panel"] in page.text("#sync-task"), message="the panel's size phase")
    page.wait(lambda d: page.text("#stat-count") == "300", message="every pin counted")
    unsized = int(page.text("#stat-unsized").replace(",", ""))
    assert 0 < unsized <= 300
    page.screenshot("sync-sizes-pending-%s" % lang)
    search = page.find("#pin-search")
    search.send_keys("slow 42")
    page.wait(lambda d: len(page.find_all("#pins-body tr")) == 1, message="the search to find the named pin")
    assert "bafyslow000042" in page.find("#pins-body .cid code").get_attribute("title")
    assert page.js("return !document.querySelector('#sizes-pending').hidden")

    page.wait(lambda d: SAID[lang]["done"] in page.text("#sync-task"), timeout=60, message="the sync's end")
    page.wait(lambda d: page.js("return document.querySelector('#sizes-pending').hidden"),
              message="the notice gone")
    page.wait_for_text("#stat-unsized", "0")
    page.assert_no_console_errors()
