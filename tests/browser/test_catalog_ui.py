"""The catalog on a deal's page as a manager meets it: `crmhub run` on real RabbitMQ and
PostgreSQL, the products of a 1C exchange package (CommerceML, two warehouses) imported into the
catalog; then headless Chromium opens a deal, finds a product by part of its name in the
product picker, adds it next to a line typed by hand, saves, and reads the stock of the lines
and the order's state in 1C (catalog_session.py, in a process of its own: see
operator_session.py for why). Without the catalog service the deal page still opens, its
lines without stock."""
import json
import os
import re
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from browser_runs import BROWSER_MARKS, run_browser_session
from nameko.standalone.rpc import ServiceRpcProxy

from crmhub.plugins.onec.generator import write_exchange
from crmhub.runtime.db import make_engine
from crmhub.services.catalog import importer, jobs, logic
from crmhub.services.gateway.auth import SESSION_COOKIE
from support import OPERATOR_KEY, fresh_schema

SCREENSHOTS = "/tmp/crmhub-catalog"
OFFERS = 30

pytestmark = BROWSER_MARKS

PIPELINE = {"id": "sales", "name": "Продажи", "stages": [
    {"name": "Новая заявка"}, {"name": "Счёт"}, {"name": "Отгружено", "kind": "won"}]}
# A line typed by hand through the REST API, as integrations do: no catalog product.
DELIVERY = {"sku": "DLV", "name": "Доставка", "quantity": "1", "price": "500"}


def start(start_hub, pg_url, **options):
    for service in ("contacts", "deals", "catalog"):
        fresh_schema(pg_url, service)
    hub = start_hub(database_url=pg_url, **options)
    assert hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Ольга"}).status_code == 200
    assert hub.api("POST", "/api/v1/pipelines", json=PIPELINE).status_code == 201
    return hub


@pytest.fixture
def hub(start_hub, pg_url):
    return start(start_hub, pg_url)


def import_catalog(hub, directory: Path) -> tuple[dict, str]:
    """A 1C exchange package (import.xml, then offers.xml) imported into the hub's catalog
    tables, as the catalog service's import process does; then a product to pick (as the
    REST API gives it) and a part of its name to find it by."""
    write_exchange(directory, OFFERS, warehouses=2)
    engine = make_engine(hub.config, "catalog")
    try:
        for name in ("import.xml", "offers.xml"):
            with engine.begin() as conn:
                job, _ = jobs.queue(conn, uuid.uuid4().hex, name, None, "test")
            counts = importer.import_file(engine, directory / name, job)
            assert counts["changed_products" if name == "import.xml" else "changed_offers"] \
                == OFFERS
        with engine.connect() as conn:
            products = logic.search_products(conn, limit=200)["items"]
            # The product to pick: in stock in both warehouses, with a price, found among the
            # picker's first 10 by a part of its name (two words from its middle).
            for product in products:
                words = product["name"].split()
                query = " ".join(words[1:3])
                found = logic.search_products(conn, q=query, limit=10)["items"]
                if (len(product["stock"]) == 2 and product["prices"] and product["article"]
                        and all(Decimal(str(s["quantity"])) > 0 for s in product["stock"])
                        and product["id"] in [p["id"] for p in found]):
                    [listed] = hub.api("GET", "/api/v1/products",
                                       params={"ids": product["id"]}).json()["items"]
                    return listed, query
    finally:
        engine.dispose()
    raise AssertionError("no product of the package is in stock in both warehouses")


def a_deal(hub, products=()) -> dict:
    card = hub.api("POST", "/api/v1/contacts", json={
        "name": "ООО «Ромашка»", "phones": ["+7 916 555-44-33"]}).json()
    resp = hub.api("POST", "/api/v1/deals", json={
        "contact_id": card["id"], "pipeline_id": "sales", "title": "Заказ для Ромашки",
        "manager": "Olga", "products": list(products)})
    assert resp.status_code == 201, resp.text
    return resp.json()


def qty(value) -> str:
    """As the page writes a quantity: 12 for 12.000."""
    number = Decimal(str(value))
    return str(number.quantize(Decimal(1))) if number == number.to_integral_value() \
        else format(number.normalize(), "f")


def test_a_manager_picks_a_product_and_sees_its_stock(hub, tmp_path):
    product, query = import_catalog(hub, tmp_path / "exchange")
    deal = a_deal(hub, [DELIVERY])
    # 1C reports the order: its number, status, paid and not shipped yet.
    with ServiceRpcProxy("deals", {"AMQP_URI": hub.config["AMQP_URI"]}) as deals:
        applied = deals.apply_erp_order_changes({"changes": [{
            "order_id": deal["id"], "erp_number": "УТ-000777", "status": "Согласован",
            "paid": True, "shipped": False}]})
    assert applied["applied"] == 1

    price = product["prices"][0]
    facts = {
        "deal": deal["id"], "query": query, "screenshots": SCREENSHOTS,
        "product": {"id": product["id"], "article": product["article"], "name": product["name"],
                    "price": price["amount"], "total": qty(product["in_stock"]),
                    "stock": [[s["warehouse"], qty(s["quantity"])] for s in product["stock"]]}}
    os.makedirs(SCREENSHOTS, exist_ok=True)
    run_browser_session("catalog_session.py", hub.base_url, OPERATOR_KEY, json.dumps(facts),
                        passed="catalog session passed", timeout=240)

    # What the browser saved is what the deals service holds: the hand-typed lines as they
    # were, the picked product with its catalog id, article, name and first price.
    saved = hub.api("GET", f"/api/v1/deals/{deal['id']}").json()
    assert [(line["sku"], line["product_id"], line["name"], line["quantity"], line["price"])
            for line in saved["products"]] == [
        ("DLV", None, "Доставка", "1.000", "500.00"),
        (product["article"], product["id"], product["name"], "2.000", price["amount"]),
        ("MNT-1", None, "Монтаж", "1.500", "1200.50")]
    assert saved["erp"]["number"] == "УТ-000777"


def test_a_deal_page_without_the_catalog_service(start_hub, pg_url):
    """The catalog service stopped: the deal page opens at once with its lines and says their
    stock is unavailable; the picker's search answers 503."""
    hub = start(start_hub, pg_url, services=("contacts", "deals", "gateway"))
    deal = a_deal(hub, [DELIVERY, {"sku": "PM-100001", "product_id": "some-1c-guid",
                                   "name": "Чайник", "quantity": "2", "price": "990"}])
    cookies = {SESSION_COOKIE: OPERATOR_KEY}
    page = requests.get(f"{hub.base_url}/deals/{deal['id']}", cookies=cookies, timeout=20)
    assert page.status_code == 200, page.text[:500]
    assert "Stock unavailable" in page.text and "stock unavailable" in page.text
    assert "Доставка" in page.text and 'value="PM-100001"' in page.text
    assert re.search(r'data-product-id="some-1c-guid"', page.text)
    search = requests.get(f"{hub.base_url}/ui/products", params={"q": "чайник"},
                          cookies=cookies, timeout=20)
    assert search.status_code == 503 and "catalog" in search.json()["message"]
