"""The pins page's cards in a real browser, in English and Chinese: the node
card's peer id on one line, the cards filling both columns, a file counted
as one, and the pin form's file chooser speaking the reader's language."""

import pytest

WIDE = (1280, 900)
RECT = "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom];"


def open_in(page, server, lang, path="/pins"):
    page.open(server.url + "/static/app.css")
    page.driver.add_cookie({"name": "lang", "value": lang, "path": "/"})
    page.open(server.url + path)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_peer_id_is_one_line_whole_in_its_title_and_copied_whole(page, live_server, ipfs_node, lang):
    peer_id = ipfs_node.rpc("id")["ID"]
    page.driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": live_server.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    open_in(page, live_server, lang)
    page.wait_for_text("#node-version", "kubo/0.43.1")
    code = "#node-id code"
    assert page.find(code).get_attribute("title") == peer_id and page.text(code) == peer_id
    one_line = page.js("return parseFloat(getComputedStyle(document.querySelector(arguments[0])).lineHeight);", code)
    assert page.js("return document.querySelector(arguments[0]).getBoundingClientRect().height;", code) < 1.5 * one_line
    assert page.js("const e = document.querySelector(arguments[0]); return e.scrollWidth > e.clientWidth;", code), \
        "the id fits without an ellipsis: the test shows nothing"
    page.click("#node-id button")
    page.wait_for_text("#toasts", {"en": "Copied to the clipboard.", "zh": "已复制到剪贴板。"}[lang])
    copied = page.driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; navigator.clipboard.readText().then(done, (e) => done(String(e)));")
    assert copied == peer_id
    page.assert_no_console_errors()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_cards_fill_both_columns_at_a_desktop_width(page, make_live_server, lang):
    server = make_live_server("http://127.0.0.1:9")
    page.viewport(WIDE)
    open_in(page, server, lang)
    page.settle(WIDE)
    sync, upload, pin = (page.js(RECT, css) for css in ("#sync-card", "#upload-card", "#pin-card"))
    assert sync[0] == upload[0] < sync[2] < pin[0], (sync, upload, pin)     # two columns, sync above upload
    assert upload[1] - sync[3] < 20 and abs(pin[1] - sync[1]) < 1          # no gap, tops aligned
    left, right = upload[3] - sync[1], pin[3] - pin[1]
    assert abs(left - right) < 0.25 * max(left, right), (left, right)      # no large empty area under either
    page.screenshot("pins-columns-%s" % lang)
    page.screenshot("pins-columns-%s-phone" % lang, phone=True)


@pytest.mark.parametrize("lang,label", [("en", "10 B, 1 file"), ("zh", "10 字节，1 个文件")])
def test_one_file_is_counted_as_one(page, live_server, ipfs_node, tmp_path, lang, label):
    path = tmp_path / ("single-%s.txt" % lang)
    path.write_bytes(b"ten bytes\n")
    open_in(page, live_server, lang)
    page.find("#upload-file").send_keys(str(path))
    page.wait_for_text("#upload-chosen", path.name)
    page.click("#upload-form button[type=submit]")
    row = page.wait_for_text(".upload", {"en": "pinned", "zh": "已固定"}[lang], timeout=60)
    assert page.text(".upload .upload-size") == label
    assert row.text.count(label) == 1
    page.assert_no_console_errors()


@pytest.mark.parametrize("lang,choose,none", [("en", "Choose a text file", "No file chosen"),
                                              ("zh", "选择文本文件", "未选择文件")])
def test_the_pin_forms_file_chooser_is_the_pages_own(page, live_server, ipfs_node, tmp_path, lang, choose, none):
    cid = ipfs_node.add(b"pinned from a list chosen in %s" % lang.encode(), pin=False)
    path = tmp_path / "cids.txt"
    path.write_text("%s from-a-file-%s\n" % (cid, lang))
    open_in(page, live_server, lang)
    page.wait_for_text("#pin-file-button", choose)
    assert page.text("#pin-file-name") == none and not page.find("#pin-file-clear").is_displayed()
    # The browser's own input (whose words are the browser's) is out of sight; the page's button opens it.
    assert page.js("return document.querySelector('#pin-file').getBoundingClientRect().width") <= 1
    page.js("""window.__opened = 0; document.querySelector('#pin-file').addEventListener('click', (event) => {
        window.__opened += 1; event.preventDefault(); });""")
    page.click("#pin-file-button")
    assert page.js("return window.__opened") == 1

    page.find("#pin-file").send_keys(str(path))
    page.wait_for_text("#pin-file-name", "cids.txt")
    page.wait_for("#pin-file-clear")
    page.screenshot("pins-pin-file-%s" % lang)
    page.click("#pin-submit")
    page.wait_for_text("#pin-task", {"en": "Completed", "zh": "已完成"}[lang], timeout=60)
    assert cid in ipfs_node.pin_ls(type="recursive")
    page.wait_for_text("#pin-file-name", none)
    page.assert_no_console_errors()
