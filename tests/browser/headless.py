"""What the browser sessions share: Debian's Chromium, headless, on a closed network, and a
page whose script errors fail the session. Imported by the session scripts, which run in a
Python process of their own (no eventlet: see operator_session.py)."""
import os
from contextlib import contextmanager

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying hosts this network refuses.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


@contextmanager
def checked_page(width: int = 1280, height: int = 900):
    """A page in Moscow time and Russian; on leaving, fails if the browser console showed a
    script error or a CSP violation (statuses a session provokes on purpose are reported as
    "Failed to load resource" and pass)."""
    problems = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height},
                                    locale="ru-RU", timezone_id="Europe/Moscow")
            page.on("console", lambda msg: msg.type == "error"
                    and not msg.text.startswith("Failed to load resource")
                    and problems.append(msg.text))
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            yield page
        finally:
            browser.close()
    assert not problems, f"errors in the browser console: {problems}"
