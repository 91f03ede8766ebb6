"""A mistyped address in a real browser: a small page in the console's style
and the reader's language, with the way home; the icon browsers ask for."""

import pytest

PASSWORD = "not found either"


@pytest.mark.parametrize("lang,heading,title,home", [
    ("en", "Page not found", "Page not found · IPFSMaster", "Go to the pins"),
    ("zh", "找不到页面", "找不到页面 · IPFSMaster", "前往固定列表"),
])
def test_a_mistyped_address_gets_a_page_with_the_way_home(page, make_live_server, lang, heading, title, home):
    server = make_live_server("http://127.0.0.1:9", password=PASSWORD)
    page.open(server.url + "/static/favicon.svg")
    page.driver.add_cookie({"name": "lang", "value": lang, "path": "/"})
    page.open(server.url + "/pinz?q=<b>x</b>")
    page.wait_for_text("#not-found-heading", heading)
    assert page.driver.title == title
    assert page.js("return document.documentElement.lang") == lang
    assert page.text("#not-found-path") == "/pinz?q=<b>x</b>"
    assert not page.find_all("#not-found-path b")
    assert page.js("return document.styleSheets[0].cssRules.length") > 50
    page.screenshot("not-found-%s" % lang)

    other, other_heading = ("zh", "找不到页面") if lang == "en" else ("en", "Page not found")
    page.click('[data-lang="%s"]' % other)
    page.wait_for_text("#not-found-heading", other_heading)
    assert page.cookie("lang") == other

    page.click("#not-found-home")
    page.wait(lambda d: "/login?next=/pins" in d.current_url, message="the way home (through the login)")
    icon = page.js("""return fetch('/favicon.ico').then(async (r) =>
        [r.status, r.headers.get('Content-Type'), (await r.text()).slice(0, 4)]);""")
    assert icon == [200, "image/svg+xml", "<svg"]
    page.assert_no_console_errors(allowed_statuses=(404,))
