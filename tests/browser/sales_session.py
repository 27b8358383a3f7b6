"""A manager's session with the sales funnel in headless Chromium: the card's deal and first
task, the pipeline board (drag a deal on, a refused drag, close one as won), "my tasks", and a
reminder that pops up without a reload.

test_sales_ui.py runs this file in a Python process of its own, which imports no eventlet (see
operator_session.py). Another user's changes and the task that falls due are made through the
REST API from here, while the page is open.

    python tests/browser/sales_session.py BASE_URL OPERATOR_KEY ADMIN_KEY FACTS_JSON
"""
import datetime as dt
import json
import re
import sys
import time
import urllib.request

from headless import checked_page
from playwright.sync_api import expect

NBSP, NARROW = "\u00a0", "\u202f"


def rest(base: str, key: str, method: str, path: str, body=None) -> dict:
    request = urllib.request.Request(
        base + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def column(page, stage_id: int):
    return page.locator(f'[data-column][data-stage-id="{stage_id}"]')


def sales_session(page, base: str, key: str, admin_key: str, facts: dict) -> None:
    deals, stages, shots = facts["deals"], facts["stages"], facts["screenshots"]
    maria, john, peter = deals["Мария Иванова"], deals["John Smith"], deals["Пётр Сидоров"]
    first, second = stages["Новая заявка"], stages["Квалификация"]
    proposal, won = stages["КП отправлено"], stages["Успешно реализовано"]

    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")
    nav = page.get_by_role("navigation", name="Sections")
    expect(nav.get_by_role("link", name="Clients")).to_have_attribute("aria-current", "page")

    # The card of a new client: its deal at the pipeline's first stage and its first task.
    page.get_by_role("link", name="Мария Иванова").click()
    expect(page).to_have_url(re.compile(r"/contacts/[0-9a-f]+$"))
    card_url = page.url
    deal_rows = page.locator("#deals tbody tr")
    expect(deal_rows).to_have_count(1)
    expect(deal_rows.first).to_contain_text("Продажи")
    expect(deal_rows.first).to_contain_text("Новая заявка")
    expect(deal_rows.first).to_contain_text(f"150{NARROW}000{NBSP}₽")
    expect(deal_rows.first).to_contain_text("Olga")
    expect(deal_rows.first).to_contain_text("open")
    tasks = page.locator("#tasks li.task")
    expect(tasks).to_have_count(1)
    expect(tasks.first).to_contain_text(facts["first_task"])
    expect(tasks.first.get_by_role("button", name="Done")).to_be_visible()
    page.screenshot(path=f"{shots}/card.png", full_page=True)

    # The board: one column per stage in order, the three new deals in the first one.
    nav.get_by_role("link", name="Pipelines").click()
    expect(page).to_have_url(f"{base}/pipelines")
    page.get_by_role("link", name="Продажи").click()
    expect(page).to_have_url(f"{base}/pipelines/sales")
    expect(page.locator("[data-column] h2")).to_have_text(
        ["Новая заявка", "Квалификация", "КП отправлено", "Успешно реализовано won",
         "Закрыто и не реализовано lost"])
    expect(column(page, first).locator("li.deal")).to_have_count(3)
    expect(column(page, first).locator("[data-count]")).to_have_text("3")
    expect(column(page, first).locator("[data-sum]")).to_have_text(
        f"152{NARROW}500.50{NBSP}₽")
    expect(column(page, second).locator("[data-count]")).to_have_text("0")
    expect(column(page, second).locator("[data-sum]")).to_have_text("—")
    page.screenshot(path=f"{shots}/board.png", full_page=True)

    # Drag Мария's deal to the next stage: it moves, and the counts and sums follow.
    page.evaluate("window.noReload = true")
    page.locator(f"#deal-{maria}").drag_to(column(page, second))
    expect(column(page, second).locator(f"#deal-{maria}")).to_be_visible()
    expect(column(page, second).locator("[data-count]")).to_have_text("1")
    expect(column(page, second).locator("[data-sum]")).to_have_text(f"150{NARROW}000{NBSP}₽")
    expect(column(page, first).locator("[data-count]")).to_have_text("2")
    expect(column(page, first).locator("[data-sum]")).to_have_text(f"2{NARROW}500.50{NBSP}₽")
    expect(page.locator(f"#deal-{maria}")).not_to_have_class(re.compile("pending"))
    assert page.evaluate("window.noReload") is True, "the page reloaded"

    # Someone else moves Пётр's deal meanwhile: dragging the stale card is refused with a
    # message, and the card goes back to where it was.
    rest(base, admin_key, "POST", f"/api/v1/deals/{peter}/move", {"stage_id": proposal})
    page.locator(f"#deal-{peter}").drag_to(column(page, second))
    error = page.locator(".toast.error")
    expect(error).to_contain_text("Someone changed this deal")
    expect(column(page, first).locator(f"#deal-{peter}")).to_be_visible()
    expect(column(page, second).locator("li.deal")).to_have_count(1)
    page.screenshot(path=f"{shots}/board-refused.png")
    error.get_by_role("button", name="Dismiss").click()
    expect(error).to_have_count(0)

    # A won stage closes the deal: the reason is asked, and the deal leaves the board.
    page.locator(f"#deal-{john}").drag_to(column(page, won))
    dialog = page.locator("#close-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_contain_text("Close «John Smith» as won")
    dialog.get_by_label("Reason (optional)").fill("Договор подписан")
    dialog.get_by_role("button", name="Close the deal").click()
    expect(page.locator(f"#deal-{john}")).to_have_count(0)
    expect(page.locator(".toast.info")).to_contain_text("Deal won: «John Smith»")
    expect(page.locator("[data-board-count]")).to_have_text("2")  # Мария and Пётр
    expect(column(page, first).locator("[data-count]")).to_have_text("0")
    page.screenshot(path=f"{shots}/board-moved.png", full_page=True)

    # After a reload the board shows what the database holds.
    page.reload()
    expect(column(page, second).locator(f"#deal-{maria}")).to_be_visible()
    expect(column(page, second).locator("[data-count]")).to_have_text("1")
    expect(column(page, first).locator("li.deal")).to_have_count(0)

    # "Only mine": Olga manages them all.
    page.get_by_role("link", name="Only mine").click()
    expect(page).to_have_url(f"{base}/pipelines/sales?manager=Olga")
    expect(page.locator("#manager-filter")).to_have_value("Olga")
    expect(page.locator("[data-board-count]")).to_have_text("2")

    # A long column shows its first deals; "Load more" brings the rest into it.
    nav.get_by_role("link", name="Pipelines").click()
    page.screenshot(path=f"{shots}/pipelines.png")
    page.get_by_role("link", name="Опт").click()
    orders = page.locator("[data-column]").first
    expect(orders.locator("[data-count]")).to_have_text("23")
    expect(orders.locator("[data-sum]")).to_have_text(f"23{NARROW}000{NBSP}₽")
    expect(orders.locator("li.deal")).to_have_count(20)
    orders.get_by_role("link", name="Load more").click()
    expect(orders.locator("li.deal")).to_have_count(23)
    expect(orders.get_by_role("link", name="Load more")).to_be_hidden()
    expect(orders.locator("li.deal").last).to_contain_text("Заказ №1")  # oldest last
    page.goto(f"{base}/pipelines/sales?manager=Olga")

    # The deal's page; the card's timeline shows the stage change (it comes by an event).
    page.locator(f"#deal-{maria} a.deal-name").click()
    expect(page).to_have_url(f"{base}/deals/{maria}")
    expect(page.locator(".history")).to_contain_text("Новая заявка → Квалификация")
    page.screenshot(path=f"{shots}/deal.png", full_page=True)
    page.goto(card_url)
    change = page.locator("li.entry.kind-deal_stage_changed")
    deadline = time.monotonic() + 15
    while change.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    expect(change).to_contain_text("«Новая заявка» → «Квалификация»")
    expect(change).to_contain_text("Olga")
    expect(page.locator("#deals tbody tr").first).to_contain_text("Квалификация")
    page.screenshot(path=f"{shots}/card-moved.png", full_page=True)

    # My tasks: the first tasks of the three deals, each with who it is about.
    nav.get_by_role("link", name="My tasks").click()
    expect(page).to_have_url(f"{base}/tasks")
    mine = page.locator("li.task")
    expect(mine).to_have_count(3)
    expect(mine.filter(has_text="Мария Иванова")).to_contain_text(facts["first_task"])
    page.screenshot(path=f"{shots}/tasks.png", full_page=True)

    # A task falls due while the page is open: the reminder appears without a reload.
    page.evaluate("window.noReload = true")
    due = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=3)
    rest(base, key, "POST", "/api/v1/tasks", {
        "title": "Отправить КП", "due_at": due.isoformat(), "manager": "Olga",
        "deal_id": maria})
    reminder = page.locator(".toast.reminder")
    expect(reminder).to_contain_text("Отправить КП", timeout=20000)
    expect(reminder).to_contain_text("Мария Иванова")
    assert page.evaluate("window.noReload") is True, "the page reloaded"
    expect(page.locator("[data-overdue]")).to_have_text("1")
    page.screenshot(path=f"{shots}/reminder.png")

    # It stays on the next page until dealt with, and "Mark done" closes the task.
    nav.get_by_role("link", name="Pipelines").click()
    expect(page.locator(".toast.reminder")).to_contain_text("Отправить КП")
    page.locator(".toast.reminder").get_by_role("button", name="Mark done").click()
    expect(page).to_have_url(f"{base}/pipelines")
    expect(page.locator(".toast.reminder")).to_have_count(0)
    page.wait_for_timeout(6000)  # a poll or more: the done reminder does not come back
    expect(page.locator(".toast.reminder")).to_have_count(0)

    # A task marked done on the card moves to the end, with an "Undo".
    page.goto(card_url)
    first_task = page.locator("#tasks li.task").filter(has_text=facts["first_task"])
    first_task.get_by_role("button", name="Done").click()
    expect(page).to_have_url(card_url + "#tasks")
    expect(first_task).to_have_class(re.compile(r"\bdone\b"))
    expect(first_task.get_by_role("button", name="Undo")).to_be_visible()


def main(base: str, key: str, admin_key: str, facts: str) -> None:
    with checked_page(1440) as page:
        sales_session(page, base.rstrip("/"), key, admin_key, json.loads(facts))
    print("sales session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
