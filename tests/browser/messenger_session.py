"""A manager's session with messenger conversations in headless Chromium: the client's
Telegram messages in the card's Conversations block, a reply typed and sent from the card,
its status moving from queued to sent, and a refused reply shown as not delivered with
Telegram's reason.

test_messenger_ui.py runs this file in a Python process of its own, which imports no eventlet
(see operator_session.py).

    python tests/browser/messenger_session.py BASE_URL OPERATOR_KEY FACTS_JSON
"""
import json
import re
import sys
import time

from headless import checked_page
from playwright.sync_api import expect


def sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")


def reload_until(page, locator, text: str, seconds: float = 15) -> None:
    """Delivery happens after the redirect: reload the card until the status shows."""
    deadline = time.monotonic() + seconds
    while text not in (locator.text_content() or "") and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    expect(locator).to_contain_text(text)


def reply(page, text: str) -> None:
    box = page.locator(".conversation").first
    box.get_by_label("Reply").fill(text)
    box.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/contacts/\w+#conversations$"))


def messenger_session(page, base: str, key: str, facts: dict) -> None:
    sign_in(page, base, key)
    page.goto(f"{base}/contacts/{facts['card']}")
    block = page.locator("#conversations")
    expect(block.locator("h3")).to_contain_text("Telegram · Анна Смирнова")
    expect(block.locator(".chat-message.inbound")).to_contain_text("Сколько стоит доставка")
    expect(page.locator(".entry.kind-message h3").first).to_contain_text(
        "Telegram message from the client")

    reply(page, facts["reply"])
    last = page.locator(".chat-message.outbound").last
    expect(last).to_contain_text(facts["reply"])
    reload_until(page, page.locator(".chat-message.outbound").last.locator(".delivery"), "sent")
    page.screenshot(path=f"{facts['screenshots']}/reply-sent.png")


def refused_session(page, base: str, key: str, facts: dict) -> None:
    sign_in(page, base, key)
    page.goto(f"{base}/contacts/{facts['card']}")
    reply(page, facts["refused_reply"])
    reload_until(page, page.locator(".chat-message.outbound").last, "not delivered")
    expect(page.locator(".chat-message.outbound").last.locator(".chat-error")).to_contain_text(
        "bot was blocked by the user")


def main(mode: str, base: str, key: str, facts_json: str) -> None:
    with checked_page(1280) as page:
        session = messenger_session if mode == "reply" else refused_session
        session(page, base.rstrip("/"), key, json.loads(facts_json))
    print(f"{mode} session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
