"""An admin's session with the dead letters in headless Chromium: the parked form is listed
under its service with its error, and the Replay button sends it back (a banner says so and
the list empties).

test_dead_letters_ui.py runs this file in a Python process of its own, which imports no
eventlet (see operator_session.py).

    python tests/browser/dead_letters_session.py BASE_URL ADMIN_KEY MESSAGE_ID
"""
import sys

from headless import checked_page
from playwright.sync_api import expect


def dead_letters_session(page, base: str, key: str, message_id: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Sections").get_by_role("link",
                                                               name="Dead letters").click()
    expect(page).to_have_url(f"{base}/dead-letters")

    section = page.locator('section[data-service="contacts"]')
    expect(section.get_by_role("heading")).to_contain_text("contacts (1)")
    row = section.locator(f'tr[data-message-id="{message_id}"]')
    expect(row).to_contain_text("gateway/form_submitted")
    expect(row).to_contain_text("timeline")
    row.get_by_text("Message", exact=True).click()
    expect(row.locator("pre")).to_contain_text("+79167770011")

    row.get_by_role("button", name="Replay").click()
    expect(page).to_have_url(f"{base}/dead-letters?replayed=1")
    expect(page.get_by_role("status")).to_contain_text("Replayed 1 message")


def main(base: str, key: str, message_id: str) -> None:
    with checked_page() as page:
        dead_letters_session(page, base.rstrip("/"), key, message_id)
    print("dead letters session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
