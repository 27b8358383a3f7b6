"""A manager's session with the catalog on a deal's page in headless Chromium: the order's state
in 1C, the product picker (search as you type by part of the name, choose, quantity), a line
typed by hand, saving, and the stock of the saved lines per warehouse.

test_catalog_ui.py runs this file in a Python process of its own, which imports no eventlet
(see operator_session.py).

    python tests/browser/catalog_session.py BASE_URL OPERATOR_KEY FACTS_JSON
"""
import json
import re
import sys
from decimal import Decimal

from headless import checked_page
from playwright.sync_api import expect

NBSP, NARROW = "\u00a0", "\u202f"


def money(amount) -> str:
    """As the page writes an amount in roubles: 1 500 ₽, 1 500.50 ₽."""
    value = Decimal(str(amount))
    text = format(value, ",.0f" if value == value.to_integral_value() else ",.2f")
    return f"{text.replace(',', NARROW)}{NBSP}₽"


def catalog_session(page, base: str, key: str, facts: dict) -> None:
    deal, product, shots = facts["deal"], facts["product"], facts["screenshots"]
    page.goto(f"{base}/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/")

    # The deal's page: what 1C says of the order, and the line typed by hand (no stock).
    page.goto(f"{base}/deals/{deal}")
    erp = page.locator("#erp")
    expect(erp).to_contain_text("Order in 1C")
    expect(erp).to_contain_text("УТ-000777")
    expect(erp).to_contain_text("Согласован")
    expect(erp.locator("dd").nth(2)).to_have_text("paid")
    expect(erp.locator("dd").nth(3)).to_have_text("not shipped")
    lines = page.locator("#products tbody tr.product-line")
    expect(lines).to_have_count(2)  # the delivery line and the empty row
    delivery = lines.first
    expect(delivery.get_by_label("SKU")).to_have_value("DLV")
    expect(delivery.locator("[data-stock]")).to_have_text("—")

    # The picker: one character is not enough; part of the name finds the product.
    search = page.get_by_label("Add a product from the catalog")
    expect(search).to_be_visible()
    status = page.locator("[data-picker-status]")
    search.press_sequentially(facts["query"][0])
    expect(status).to_have_text("Type at least 2 characters.")
    search.press_sequentially(facts["query"][1:], delay=40)
    match = page.locator(f'#product-matches [data-product-id="{product["id"]}"]')
    expect(match).to_be_visible()
    expect(match).to_contain_text(product["name"])
    expect(match).to_contain_text(f"Art. {product['article']}")
    expect(match.locator(".match-price")).to_have_text(money(product["price"]))
    expect(match.locator(".match-stock")).to_contain_text(f"In stock: {product['total']}")
    page.screenshot(path=f"{shots}/picker.png")
    match.click()

    # A line of the product: its article, name, first price, quantity 1 and its stock.
    picked = page.locator(f'#products tr[data-product-id="{product["id"]}"]')
    expect(picked).to_have_count(1)
    expect(picked.locator("td").nth(0)).to_have_text(product["article"])
    expect(picked.locator("td").nth(1)).to_have_text(product["name"])
    expect(picked.locator('input[name$="-sku"]')).to_have_value(product["article"])
    expect(picked.locator('input[name$="-name"]')).to_have_value(product["name"])
    expect(picked.get_by_label("Quantity")).to_have_value("1")
    expect(picked.get_by_label("Price")).to_have_value(product["price"])
    expect(picked.locator(".stock-list li")).to_have_count(len(product["stock"]))
    expect(picked.locator("[data-stock-total]")).to_have_text(product["total"])
    expect(page.locator("[data-unsaved]")).to_be_visible()
    expect(page.locator("#product-matches")).to_be_hidden()
    expect(search).to_have_value("")
    picked.get_by_label("Quantity").fill("2")
    expect(picked.locator("[data-line-sum]")).to_have_text(money(Decimal(product["price"]) * 2))

    # By keyboard: the arrows go down the matches, Enter picks one (and saves nothing); the
    # product is on the deal already, so it is one more of it.
    search.fill(facts["query"])
    expect(match).to_be_visible()
    options = page.locator("#product-matches [role=option]")
    position = options.evaluate_all(
        "(nodes, id) => nodes.findIndex(n => n.dataset.productId === id)", product["id"])
    for _ in range(position):
        search.press("ArrowDown")
    expect(match).to_have_attribute("aria-selected", "true")
    search.press("Enter")
    expect(picked.get_by_label("Quantity")).to_have_value("3")
    expect(page).to_have_url(f"{base}/deals/{deal}")
    picked.get_by_label("Quantity").fill("2")

    # A line typed by hand in the empty row, as people write numbers; another empty row comes.
    blank = page.locator("#products tr[data-blank-row]")
    blank.get_by_label("SKU").fill("MNT-1")
    expect(lines).to_have_count(4)
    typed = lines.nth(2)
    typed.get_by_label("Name").fill("Монтаж")
    typed.get_by_label("Quantity").fill("1,5")
    typed.get_by_label("Price").fill("1 200,50")
    expect(typed.locator("[data-line-sum]")).to_have_text(money("1800.75"))
    page.screenshot(path=f"{shots}/deal-unsaved.png", full_page=True)

    page.get_by_role("button", name="Save products").click()
    expect(page).to_have_url(f"{base}/deals/{deal}#products")
    expect(page.locator("[data-unsaved]")).to_be_hidden()

    # Saved: the lines in order, and the stock of the product per warehouse with its total.
    expect(lines).to_have_count(4)  # three lines and the empty row
    expect(lines.nth(0).get_by_label("SKU")).to_have_value("DLV")
    expect(lines.nth(1).locator("td").nth(0)).to_have_text(product["article"])
    expect(lines.nth(1).get_by_label("Quantity")).to_have_value("2")
    expect(lines.nth(2).get_by_label("Quantity")).to_have_value("1.5")
    expect(lines.nth(2).get_by_label("Price")).to_have_value("1200.50")
    saved = page.locator(f'#products tr[data-product-id="{product["id"]}"]')
    expect(saved.locator(".stock-list li")).to_have_text(
        [f"{warehouse} {quantity}" for warehouse, quantity in product["stock"]])
    expect(saved.locator("[data-stock-total]")).to_have_text(product["total"])
    expect(page.locator("#products")).not_to_contain_text("stock unavailable")
    total = Decimal("500") + Decimal(product["price"]) * 2 + Decimal("1800.75")
    expect(page.locator("[data-lines-total]")).to_have_text(money(total))
    expect(page.locator("#products h2")).to_have_text(re.compile(r"Products\s*\(3\)"))
    page.screenshot(path=f"{shots}/deal-saved.png", full_page=True)


def main(base: str, key: str, facts: str) -> None:
    with checked_page(1440) as page:
        catalog_session(page, base.rstrip("/"), key, json.loads(facts))
    print("catalog session passed")


if __name__ == "__main__":
    main(*sys.argv[1:])
