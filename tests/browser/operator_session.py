"""An operator's session in headless Chromium: sign in, search, read a card, sign out.

test_operator_ui.py runs this file in a Python process of its own, which imports no eventlet.
Playwright's sync API runs its asyncio loop in a greenlet, and under the monkey-patching of
tests/conftest.py even its reads of the driver's pipe go through eventlet's hub. The hub then
adopts that greenlet and never hands control back (waits and shutdown hang). Here the sync API
behaves as documented.

    python tests/browser/operator_session.py BASE_URL OPERATOR_KEY SCREENSHOT_PATH
"""
import re
import sys

from headless import checked_page
from playwright.sync_api import expect


def operator_session(page, base: str, key: str, screenshot: str) -> None:
    # Strangers are sent to the sign-in form; a wrong key is refused there.
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login")
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")
    expect(page.locator(".user-name")).to_have_text("Olga")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(3)

    # A phone written differently from the form finds its card (the plain GET form: Enter).
    search = page.get_by_role("searchbox", name="Search clients")
    search.fill("8 916 123-45-67")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"/\?q=8\+916"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Мария Иванова")
    expect(rows.first).to_contain_text("+7 916 123-45-67")

    # A name fragment, typed without Enter: the results follow as the operator types.
    search.fill("сидор")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Пётр Сидоров")
    expect(page).to_have_url(f"{base}/?q=%D1%81%D0%B8%D0%B4%D0%BE%D1%80")

    search.fill("Иванова")
    search.press("Enter")
    page.get_by_role("link", name="Мария Иванова").click()
    expect(page).to_have_url(re.compile(r"/contacts/[0-9a-f]+$"))

    # The card: who, how to reach them, where they came from, what they wrote.
    expect(page).to_have_title("Мария Иванова · crmhub")
    expect(page.get_by_role("heading", level=1)).to_have_text("Мария Иванова")
    expect(page.get_by_role("link", name="+7 916 123-45-67")).to_be_visible()
    expect(page.get_by_text("as written: +7 (916) 123-45-67")).to_be_visible()
    source = page.locator("section").filter(has=page.get_by_role("heading", name="First contact"))
    expect(source).to_contain_text("UTM source")
    expect(source).to_contain_text("yandex")
    entry = page.locator("li.entry").filter(has_text="Form «Contact us» submitted")
    expect(entry).to_have_count(1)
    expect(entry.locator(".message")).to_have_text("Перезвоните после 18:00, пожалуйста")
    expect(entry).to_contain_text("winter")
    page.screenshot(path=screenshot, full_page=True)

    # An unknown card is a page, not JSON.
    response = page.goto(f"{base}/contacts/no-such-card")
    assert response.status == 404, response.status
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login")


def main(base: str, key: str, screenshot: str) -> None:
    with checked_page(1280) as page:
        operator_session(page, base.rstrip("/"), key, screenshot)
    print("operator session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
