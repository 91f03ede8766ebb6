"""Real-browser tests: Debian's headless Chromium, driven by Selenium.

One browser serves the whole test run; each test gets a clean page (no
cookies, a 1280x800 viewport, an empty console log). Chromium and
chromedriver are required: without them these tests fail, they never skip.

Besides ``live_server`` and ``ipfs_node``, the tests start consoles
(``make_live_server``) against a node that is down or one that never
answers (``silent_node``), to show failures and long-running syncs.
"""

import json
import os

import pytest
from selenium import webdriver
from selenium.common.exceptions import (ElementClickInterceptedException, NoSuchElementException,
                                        StaleElementReferenceException, TimeoutException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import console.store

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ARTIFACTS = os.path.join(ROOT, "test-artifacts")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Without it the first page load stalls while the new-tab page looks for the internet.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
DESKTOP = (1280, 800)
PHONE = (390, 844)


# ---------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """One headless Chromium for the whole run, with its own home and profile."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail("%s is missing: apt-get install -y chromium chromium-driver" % path, pytrace=False)
    home = tmp_path_factory.mktemp("chromium-home")
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--user-data-dir=%s" % (home / "profile"))
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would try the internet.
    service = Service(CHROMEDRIVER, env=env)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


class Page:
    """The shared browser, with the waits and checks the tests share."""

    def __init__(self, driver):
        self.driver = driver

    def viewport(self, size):
        width, height = size
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def settle(self, size):
        """Wait until the page has the viewport ``size`` and has drawn a frame at it."""
        width, height = size
        self.wait(lambda d: self.js("return [window.innerWidth, window.innerHeight]") == [width, height],
                  message="the viewport to be %dx%d" % size)
        self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            " requestAnimationFrame(() => requestAnimationFrame(() => done()));")

    def count_requests(self, prefix):
        """From now on, count the answers the page receives to requests whose URL starts with ``prefix``;
        ``answers(prefix)`` reads the count."""
        self.js("""
            const prefix = arguments[0];
            window.__answers = window.__answers || {};
            window.__answers[prefix] = 0;
            if (!window.__counting) {
                window.__counting = true;
                const original = window.fetch;
                window.fetch = (...args) => original(...args).then((response) => {
                    for (const name of Object.keys(window.__answers)) {
                        if (String(args[0]).startsWith(name)) window.__answers[name] += 1;
                    }
                    return response;
                });
            }""", prefix)

    def answers(self, prefix):
        return self.js("return (window.__answers || {})[arguments[0]] || 0;", prefix)

    def open(self, url):
        self.driver.get(url)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    def wait(self, condition, timeout=10, message=""):
        # The pages redraw as they poll: an element found a moment ago may be gone.
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                             ).until(condition, message)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click(self, css, timeout=10):
        """Click what matches ``css``, finding it again if the page redrew it meanwhile."""
        def clicked(driver):
            try:
                driver.find_element(By.CSS_SELECTOR, css).click()
                return True
            except ElementClickInterceptedException:
                return False
        self.wait(clicked, timeout, "nothing to click at %s" % css)

    def text(self, css):
        """The rendered text of the first element matching ``css`` ('' if none)."""
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : '';", css)

    def wait_for(self, css, timeout=10):
        """The first visible element matching ``css``."""
        def visible(driver):
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                if element.is_displayed():
                    return element
            return False
        return self.wait(visible, timeout, "no visible %s" % css)

    def wait_for_text(self, css, text, timeout=10):
        """Wait until an element matching ``css`` contains ``text``; returns it."""
        def found(driver):
            for element in driver.find_elements(By.CSS_SELECTOR, css):
                if text in element.text:
                    return element
            return False
        try:
            return self.wait(found, timeout)
        except TimeoutException:
            seen = self.js("return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText);", css)
            raise AssertionError("no %s containing %r after %ss; saw %r" % (css, text, timeout, seen))

    def glyphs(self, css, characters):
        """Each character drawn on a canvas in the font of ``css``, as a data URL.

        A missing font draws every character as the same empty box, so two
        different characters that come out the same did not render.
        """
        return self.js("""
            const family = getComputedStyle(document.querySelector(arguments[0])).fontFamily;
            return [...arguments[1]].map((character) => {
                const canvas = document.createElement("canvas");
                canvas.width = canvas.height = 40;
                const context = canvas.getContext("2d");
                context.font = "32px " + family;
                context.fillText(character, 4, 34);
                return canvas.toDataURL();
            });""", css, characters)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def cookie(self, name):
        found = self.driver.get_cookie(name)
        return found["value"] if found else None

    def screenshot(self, name, phone=False):
        """Save test-artifacts/NAME.png, at a phone's width if asked (then back to desktop)."""
        os.makedirs(ARTIFACTS, exist_ok=True)
        if phone:
            self.viewport(PHONE)
            self.settle(PHONE)
        self.driver.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))
        if phone:
            self.viewport(DESKTOP)
            self.settle(DESKTOP)

    def console_errors(self, allowed_statuses=()):
        """SEVERE browser log entries, less failed requests with an expected status."""
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] != "SEVERE":
                continue
            message = entry["message"]
            if entry.get("source") == "network" and any(
                    "status of %d" % status in message for status in allowed_statuses):
                continue
            errors.append(message)
        return errors

    def assert_no_console_errors(self, allowed_statuses=()):
        errors = self.console_errors(allowed_statuses)
        assert not errors, "JavaScript console errors:\n" + "\n".join(errors)


@pytest.fixture
def page(browser):
    """The browser, reset: a new tab, no cookies, desktop viewport, empty console log.

    A new tab has a history of its own: a tab keeps at most 50 entries, and
    a test that goes back must find its own pages there, not the limit's
    leftovers of the tests before it.
    """
    used = browser.current_window_handle
    browser.switch_to.new_window("tab")
    fresh = browser.current_window_handle
    browser.switch_to.window(used)
    browser.close()
    browser.switch_to.window(fresh)
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.get_log("browser")
    result = Page(browser)
    result.viewport(DESKTOP)
    return result


# ---------------------------------------------------------------------------
# Tasks and nodes for the console to show
# ---------------------------------------------------------------------------

def add_finished_task(server, status, error=None, minutes_ago=60):
    """Record a pin sync that ended ``minutes_ago``, as a worker would have; returns its id."""
    result = json.dumps({"total": 10, "added": 10, "updated": 0, "removed": 0, "unchanged": 0, "failed": 0,
                         "error_details": [], "duration_s": 2.5}) if status == "completed" else None
    when = "-%d minutes" % minutes_ago
    conn = console.store.connect(server.db_path)
    try:
        with console.store.transaction(conn):
            return conn.execute(
                "INSERT INTO background_tasks (task_type, status, progress, total, result, error_message,"
                " created_at, started_at, completed_at) VALUES ('pin_sync', ?, 10, 10, ?, ?,"
                " datetime('now', ?), datetime('now', ?), datetime('now', ?, '+3 seconds'))",
                (status, result, error, when, when, when)).lastrowid
    finally:
        conn.close()


@pytest.fixture
def finished_task():
    """``finished_task(server, status, error=None, minutes_ago=60)`` -> the new task's id."""
    return add_finished_task
