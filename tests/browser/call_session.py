"""An operator's session with telephony in headless Chromium: the incoming-call popup of a
known client (their name and open deal) and of an unknown number, how the call went, the
recording played from the card, and click-to-call from a phone on the card.

test_call_ui.py runs this file in a Python process of its own, which imports no eventlet (see
operator_session.py). The PBX's webhooks (signed by the test with Mango's scheme) are posted
from here while the page is open, so the popups arrive on a page that is already loaded.

    python tests/browser/call_session.py BASE_URL OPERATOR_KEY FACTS_JSON
"""
import json
import sys
import time
import urllib.request

from headless import checked_page
from playwright.sync_api import expect


def post_webhooks(base: str, hooks: list[dict], pause: float = 0.3) -> None:
    """The PBX's webhooks, as it sends them: one after another, a moment apart."""
    for hook in hooks:
        request = urllib.request.Request(base + hook["path"], data=hook["body"].encode(),
                                         headers=hook["headers"], method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        time.sleep(pause)


def sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")


def call_session(page, base: str, key: str, facts: dict) -> None:
    sign_in(page, base, key)
    page.goto(f"{base}/contacts/{facts['anna']}")
    expect(page.locator("body[data-call-stream-ready]")).to_have_count(1)

    # Anna calls: her name, manager and open deal pop up before anyone picks up.
    post_webhooks(base, facts["anna_rings"])
    popup = page.locator(".call-popup")
    expect(popup).to_have_count(1)
    expect(popup).to_contain_text("Анна Петрова")
    expect(popup).to_contain_text("+79161234567")
    expect(popup).to_contain_text("Поставка кофе")
    expect(popup.get_by_role("link", name="Open the card")).to_have_attribute(
        "href", f"/contacts/{facts['anna']}")
    page.screenshot(path=f"{facts['screenshots']}/popup-known.png")
    post_webhooks(base, facts["anna_answers"])
    expect(popup.locator("[data-call-state]")).to_have_text("Answered by Olga")
    post_webhooks(base, facts["anna_hangs_up"])
    expect(popup.locator("[data-call-state]")).to_have_text("Call ended")

    # The call is on her card with its recording, which plays from the card.
    deadline = time.monotonic() + 15
    while not page.locator("audio.recording").count() and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    audio = page.locator("audio.recording")
    expect(audio).to_have_count(1)
    expect(page.locator(".entry.kind-call h3").first).to_contain_text("Incoming call")
    src = audio.get_attribute("src")
    status = page.evaluate("""src => fetch(src, {headers: {Range: "bytes=0-99"}})
        .then(r => r.arrayBuffer().then(b => [r.status, b.byteLength]))""", src)
    assert status == [206, 100], status

    # A stranger calls: "unknown number"; the new card opens from the popup.
    expect(page.locator("body[data-call-stream-ready]")).to_have_count(1)
    post_webhooks(base, facts["stranger_rings"])
    popup = page.locator(".call-popup").first
    expect(popup).to_contain_text("Unknown number")
    page.screenshot(path=f"{facts['screenshots']}/popup-unknown.png")
    popup.get_by_role("link", name="Open the new card").click()
    expect(page.locator(".phone").first).to_contain_text("903")

    # Click-to-call from Anna's card: the operator's phone rings first.
    page.goto(f"{base}/contacts/{facts['anna']}")
    page.get_by_role("button", name="Call").first.click()
    expect(page.locator(".toast.info")).to_contain_text("Calling +79161234567")
    page.screenshot(path=f"{facts['screenshots']}/click-to-call.png")


def refused_session(page, base: str, key: str, facts: dict) -> None:
    """The PBX refuses: the operator reads its reason."""
    sign_in(page, base, key)
    page.goto(f"{base}/contacts/{facts['anna']}")
    page.get_by_role("button", name="Call").first.click()
    error = page.locator(".toast.error")
    expect(error).to_contain_text("The call could not be placed")
    expect(error).to_contain_text("3102")


def main(mode: str, base: str, key: str, facts_json: str) -> None:
    with checked_page(1280) as page:
        session = call_session if mode == "calls" else refused_session
        session(page, base.rstrip("/"), key, json.loads(facts_json))
    print(f"{mode} session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
