"""A marketer's session with campaigns in headless Chromium: the new campaign form (a template
mistake shown on the form), the preview with its counts and the sample email, sending, and the
metrics of the campaign page.

test_campaigns_ui.py runs this file in a Python process of its own, which imports no eventlet
(see operator_session.py).

    python tests/browser/campaign_session.py BASE_URL ADMIN_KEY
"""
import re
import sys

from headless import checked_page
from playwright.sync_api import expect


def campaign_session(page, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    nav = page.get_by_role("navigation", name="Sections")
    nav.get_by_role("link", name="Campaigns").click()
    expect(page).to_have_url(f"{base}/campaigns")
    page.get_by_role("link", name="New campaign").click()

    page.get_by_label("Name", exact=True).fill("Spring sale")
    page.get_by_label("Any of the tags (comma-separated)").fill("vip")
    page.get_by_label("Subject", exact=True).fill("Spring sale for {{ client.name }}")
    page.get_by_label("Text", exact=True).fill("Dear {{ client.name, see the sale")
    page.get_by_label("Emails per minute", exact=True).fill("1200")
    page.get_by_role("button", name="Create draft").click()
    # The mistake is named on the form, which keeps what was typed.
    expect(page.get_by_role("alert")).to_contain_text("text_body")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Spring sale")
    page.get_by_label("Text", exact=True).fill("Dear {{ client.name }}, see the sale")
    page.get_by_role("button", name="Create draft").click()

    expect(page).to_have_url(re.compile(rf"{re.escape(base)}/campaigns/[0-9a-f]{{32}}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("draft")
    page.get_by_role("link", name="Preview").click()
    expect(page.locator("[data-preview-counts]")).to_contain_text("2 clients would get it now")
    expect(page.locator("[data-preview-counts]")).to_contain_text("1 of the segment left out")
    expect(page.locator("[data-sample-subject]")).to_have_text(
        re.compile(r"Spring sale for (Anna|Boris)"))
    expect(page.get_by_text("List-Unsubscribe-Post")).to_be_visible()

    page.get_by_role("button", name="Send to the segment").click()
    expect(page.locator("[data-campaign-status]")).to_have_text(re.compile("sending|done"))
    # The metrics page shows the emails go out (reloaded as a marketer would).
    for _ in range(60):
        if page.locator('[data-metric="sent"]').inner_text().strip() == "2":
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator('[data-metric="sent"]')).to_have_text("2")
    expect(page.locator("[data-campaign-status]")).to_have_text("done")
    expect(page.get_by_role("button", name="Send to the segment")).to_have_count(0)
    page.get_by_role("link", name="All campaigns").click()
    expect(page.get_by_role("link", name="Spring sale")).to_be_visible()


def main(base: str, key: str) -> None:
    with checked_page() as page:
        campaign_session(page, base.rstrip("/"), key)
    print("campaign session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
