"""The catalog on the deal page without a browser or a broker: the product picker's
/ui/products, the stock of a deal's lines (and a catalog that fails or does not answer), the
order's state in 1C, and the products form (as test_ui_deals.py: a gateway worker with
stand-in services, fed werkzeug requests)."""
import json
import re
import time

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory
from werkzeug.datastructures import MultiDict
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from crmhub.contracts.errors import Conflict, InvalidInput, Unauthenticated, Unavailable
from crmhub.services.gateway import openapi, ui_deals
from crmhub.services.gateway.auth import SESSION_COOKIE
from crmhub.services.gateway.service import GatewayService

KEYS = {"op-key": {"name": "Olga", "role": "operator"}}
NOW = "2026-11-23T15:04:05+00:00"
SAME_SITE = {"Origin": "http://localhost"}
STAGES = [{"id": 1, "key": "s1", "name": "Планируемый заказ", "kind": "open", "position": 0,
           "task": "", "result": "", "key_steps": []}]


def deal(**fields):
    return {"id": "d1", "title": "Мария Иванова", "contact_id": "c1",
            "contact_name": "Мария Иванова", "pipeline_id": "distribution",
            "pipeline_name": "Дистрибуция", "stage_id": 1, "stage_name": "Планируемый заказ",
            "status": "open", "manager": "Olga", "amount": None, "currency": "RUB",
            "source": None, "products": [], "close_reason": None, "version": 1,
            "created_at": NOW, "updated_at": NOW, "closed_at": None, **fields}


@pytest.fixture
def gateway():
    worker = worker_factory(GatewayService, api_keys=KEYS)
    worker.deals.get_pipeline.return_value = {
        "id": "distribution", "name": "Дистрибуция", "template": None, "stages": STAGES,
        "managers": [], "created_at": NOW}
    worker.deals.get_deal.return_value = {**deal(), "history": [], "tasks": []}
    return worker


def request(path="/", method="GET", key="op-key", **kwargs):
    headers = kwargs.pop("headers", {})
    if key:
        headers["Cookie"] = f"{SESSION_COOKIE}={key}"
    return EnvironBuilder(path=path, method=method, headers=headers, **kwargs).get_request()


def html(response, status=200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.content_type == "text/html; charset=utf-8"
    return response.get_data(as_text=True)


def as_json(response, status=200):
    assert response.status_code == status
    assert response.content_type == "application/json; charset=utf-8"
    return json.loads(response.get_data(as_text=True))


PRODUCT_ID = "b1d2c3e4-11e7-8a1b-000000000001"
KETTLE = {"sku": "PM-100001", "product_id": PRODUCT_ID, "name": "Чайник электрический Уют 1,5 л",
          "quantity": "3.000", "price": "1990.00"}
DELIVERY = {"sku": "DLV", "product_id": None, "name": "Доставка", "quantity": "1.000",
            "price": "500.00"}


def offer(id=PRODUCT_ID, stock=(("w1", "Склад Москва 1", "2.000"), ("w2", "Склад Казань 2", "0.000")),
          **fields):
    total = sum(float(q) for _, _, q in stock)
    return {"id": id, "product_id": id, "characteristic_id": None, "article": "PM-100001",
            "barcode": None, "name": "Чайник электрический Уют 1,5 л", "unit": "шт",
            "characteristics": {}, "groups": [], "properties": {}, "active": True,
            "prices": [{"price_type_id": "p1", "price_type": "Розничная", "amount": "1990.00",
                        "currency": "RUB"}],
            "stock": [{"warehouse_id": w, "warehouse": n, "quantity": q} for w, n, q in stock],
            "in_stock": f"{total:.3f}", "updated_at": NOW, **fields}


def products_page(*items, more=False):
    return {"items": list(items), "limit": 10, "offset": 0, "more": more}


def deal_card(**fields):
    return {**deal(**fields), "history": [], "tasks": []}


@pytest.fixture
def with_lines(gateway):
    gateway.deals.get_deal.return_value = deal_card(products=[DELIVERY, KETTLE], version=5)
    gateway.catalog.search_products.return_value = products_page(offer())
    return gateway


def post_lines(gateway, data, deal_id="d1", headers=SAME_SITE):
    return gateway.ui_deal_products(request(f"/deals/{deal_id}/products", "POST",
                                            headers=dict(headers), data=data), deal_id=deal_id)


def form_of(lines, digest) -> dict:
    data = {"products_digest": digest}
    for index, line in enumerate(lines):
        for key, value in line.items():
            data[f"lines-{index}-{key}"] = value or ""
    return data


# -- routes -----------------------------------------------------------------------------------

def test_the_routes_are_the_uis_own():
    rules = Map([Rule(ep.url, methods=ep.method.split(","), endpoint=name)
                 for name, _, ep in openapi.entrypoints(GatewayService)]).bind("hub")
    assert rules.match("/ui/products", "GET")[0] == "ui_products"
    assert rules.match("/deals/d1/products", "POST")[0] == "ui_deal_products"
    assert rules.match("/api/v1/products", "GET")[0] == "list_products"
    spec = openapi.build_spec(GatewayService, "1")
    assert not [p for p in spec["paths"] if p.startswith(("/ui", "/deals"))]


# -- the product picker's search ----------------------------------------------------------------

def test_the_picker_searches_the_catalog_in_the_pages_session(gateway):
    gateway.catalog.search_products.return_value = products_page(offer(), more=True)
    body = as_json(gateway.ui_products(request("/ui/products?q=чайник")))
    gateway.catalog.search_products.assert_called_once_with({"q": "чайник", "limit": 10})
    assert body["items"][0]["id"] == PRODUCT_ID and body["more"] is True
    gateway.ui_products(request("/ui/products?q=PM-1&limit=5&in_stock=true"))
    gateway.catalog.search_products.assert_called_with(
        {"q": "PM-1", "limit": "5", "in_stock": "true"})


def test_the_picker_needs_a_session_and_known_parameters(gateway):
    with pytest.raises(Unauthenticated):
        gateway.ui_products(request("/ui/products?q=чайник", key=None))
    with pytest.raises(InvalidInput):
        gateway.ui_products(request("/ui/products?q=чайник&price=1"))
    gateway.catalog.search_products.assert_not_called()


def test_the_picker_does_not_wait_on_a_catalog_that_does_not_answer(gateway, monkeypatch):
    monkeypatch.setattr(ui_deals, "CATALOG_WAIT_SECONDS", 0.05)
    gateway.catalog.search_products.side_effect = lambda query: eventlet.sleep(5)
    with pytest.raises(Unavailable, match="did not answer"):
        gateway.ui_products(request("/ui/products?q=чайник"))


# -- the deal page: lines, stock, 1C -----------------------------------------------------------

def test_the_deal_page_shows_the_stock_of_its_catalog_lines(with_lines):
    body = html(with_lines.ui_deal(request("/deals/d1"), deal_id="d1"))
    with_lines.catalog.search_products.assert_called_once_with(
        {"ids": [PRODUCT_ID], "include_inactive": True, "limit": 1})
    row = re.search(rf'<tr class="product-line" data-line-index="1" data-product-id="{PRODUCT_ID}">'
                    r'(.*?)</tr>', body, re.S).group(1)
    assert '<input type="hidden" name="lines-1-sku" value="PM-100001">' in row
    assert '<code class="line-sku-text">PM-100001</code>' in row and 'value="3"' in row
    assert re.search(r'Склад Москва 1</span> <strong class="stock-quantity">2</strong>', row)
    assert re.search(r'Склад Казань 2</span> <strong class="stock-quantity">0</strong>', row)
    # 2 in stock for a line of 3: the total is marked short.
    assert 'class="stock-total short"' in row and "<strong data-stock-total>2</strong> шт" in row
    assert "5\u202f970\u00a0₽" in row  # 3 × 1 990
    hand = re.search(r'<tr class="product-line" data-line-index="0">(.*?)</tr>', body, re.S).group(1)
    assert 'aria-label="SKU"' in hand and 'value="DLV"' in hand and "—" in hand
    assert 'data-lines-total>6\u202f470\u00a0₽' in body
    assert 'data-blank-row' in body and 'name="lines-2-sku"' in body  # a line typed by hand
    assert 'id="product-line-template"' in body and 'name="lines-__index__-sku"' in body
    assert 'data-product-picker data-source="/ui/products" hidden' in body
    digest = ui_deals.products_digest([DELIVERY, KETTLE])
    assert f'name="products_digest" value="{digest}"' in body
    assert "Stock unavailable" not in body and 'id="erp"' not in body


def test_a_line_whose_product_left_the_catalog_says_so(with_lines):
    with_lines.catalog.search_products.return_value = products_page()
    body = html(with_lines.ui_deal(request("/deals/d1"), deal_id="d1"))
    assert "not in the catalog" in body
    with_lines.catalog.search_products.return_value = products_page(offer(active=False))
    assert "no longer sold" in html(with_lines.ui_deal(request("/deals/d1"), deal_id="d1"))


def test_lines_typed_by_hand_ask_the_catalog_nothing(gateway):
    gateway.deals.get_deal.return_value = deal_card(products=[DELIVERY])
    body = html(gateway.ui_deal(request("/deals/d1"), deal_id="d1"))
    gateway.catalog.search_products.assert_not_called()
    assert "Доставка" in body and "Stock unavailable" not in body


@pytest.mark.parametrize("failure", [RemoteError("OperationalError", "database is down"),
                                     Unavailable("no catalog")])
def test_a_failing_catalog_leaves_the_page_without_stock(with_lines, failure):
    with_lines.catalog.search_products.side_effect = failure
    body = html(with_lines.ui_deal(request("/deals/d1"), deal_id="d1"))
    assert "Stock unavailable: the catalog service failed or did not answer" in body
    assert body.count("stock unavailable</span>") == 1  # the catalog line; not the hand one
    assert 'value="PM-100001"' in body and "Доставка" in body


def test_a_catalog_that_does_not_answer_costs_the_page_its_stock_only(with_lines, monkeypatch):
    monkeypatch.setattr(ui_deals, "CATALOG_WAIT_SECONDS", 0.05)
    with_lines.catalog.search_products.side_effect = lambda query: eventlet.sleep(5)
    started = time.monotonic()
    body = html(with_lines.ui_deal(request("/deals/d1"), deal_id="d1"))
    assert time.monotonic() - started < 2
    assert "Stock unavailable" in body


def test_the_order_in_1c_is_on_the_deal(gateway):
    gateway.deals.get_deal.return_value = deal_card(erp={
        "number": "УТ-000123", "status": "[N] Принят", "paid": True, "shipped": None,
        "cancelled": False, "updated_at": NOW})
    body = html(gateway.ui_deal(request("/deals/d1"), deal_id="d1"))
    erp = re.search(r'<section class="erp" id="erp">(.*?)</section>', body, re.S).group(1)
    assert "УТ-000123" in erp and "[N] Принят" in erp
    assert '<span class="badge won">paid</span>' in erp and "1C did not say" in erp
    assert "Cancelled" not in erp
    gateway.deals.get_deal.return_value = deal_card(erp={
        "number": None, "status": None, "paid": False, "shipped": True, "cancelled": True,
        "updated_at": NOW})
    erp = html(gateway.ui_deal(request("/deals/d1"), deal_id="d1"))
    assert "not paid" in erp and "cancelled in 1C" in erp and '"badge won">shipped' in erp


# -- the products form --------------------------------------------------------------------------

def test_saving_the_lines_updates_the_deal_and_goes_back_to_it(with_lines):
    digest = ui_deals.products_digest([DELIVERY, KETTLE])
    data = form_of([DELIVERY, {**KETTLE, "quantity": "2"},
                    {"product_id": "offer-2", "sku": "", "name": "Плед", "quantity": "1",
                     "price": "2 490,50"},
                    {"product_id": "", "sku": "MNT", "name": "Монтаж", "quantity": "1,5",
                     "price": "1\u00a0200"},
                    {"product_id": "", "sku": "", "name": "", "quantity": "", "price": ""}], digest)
    data["lines-0-remove"] = "1"  # the delivery goes
    response = post_lines(with_lines, data)
    assert (response.status_code, response.headers["Location"]) == (303, "/deals/d1#products")
    with_lines.deals.update_deal.assert_called_once_with("d1", {"expected_version": 5, "products": [
        {"sku": "PM-100001", "product_id": PRODUCT_ID, "name": KETTLE["name"], "quantity": "2",
         "price": "1990.00"},
        {"sku": "offer-2", "product_id": "offer-2", "name": "Плед", "quantity": "1",
         "price": "2490.50"},
        {"sku": "MNT", "product_id": None, "name": "Монтаж", "quantity": "1.5", "price": "1200"}]},
        "Olga")


def test_lines_keep_the_order_of_their_rows_on_the_page():
    # A picked product's row (3) goes before the empty row (2) that was on the page already.
    form = MultiDict([("products_digest", "x"),
                      ("lines-0-sku", "A"), ("lines-0-quantity", "1"), ("lines-0-price", "1"),
                      ("lines-3-product_id", "p3"), ("lines-3-sku", "B"),
                      ("lines-3-quantity", "1"), ("lines-3-price", "1"),
                      ("lines-2-sku", "C"), ("lines-2-quantity", "1"), ("lines-2-price", "1"),
                      ("lines-4-sku", ""), ("lines-4-quantity", ""), ("lines-4-price", "")])
    assert [(line["sku"], line["product_id"]) for line in ui_deals.submitted_lines(form)] == [
        ("A", ""), ("B", "p3"), ("C", "")]


def test_a_line_that_does_not_check_out_is_shown_as_typed(with_lines):
    digest = ui_deals.products_digest([DELIVERY, KETTLE])
    data = form_of([DELIVERY, {**KETTLE, "quantity": "0"},
                    {"sku": "", "name": "Монтаж", "quantity": "1", "price": "много"}], digest)
    body = html(post_lines(with_lines, data), 400)
    assert "Line 2 (Чайник электрический Уют 1,5 л): quantity: must be positive." in body
    assert "Line 3 (Монтаж): sku: enter the SKU; price: Not a valid number." in body
    assert 'value="много"' in body and 'name="lines-2-name" value="Монтаж"' in body
    assert f'name="products_digest" value="{digest}"' in body
    with_lines.deals.update_deal.assert_not_called()


def test_lines_someone_changed_meanwhile_are_not_overwritten(with_lines):
    stale = ui_deals.products_digest([DELIVERY])
    body = html(post_lines(with_lines, form_of([DELIVERY], stale)), 409)
    assert "Someone changed the products of this deal" in body
    assert 'value="PM-100001"' in body  # the lines as they are now
    with_lines.deals.update_deal.assert_not_called()


def test_another_change_of_the_deal_meanwhile_does_not_stand_in_the_way(with_lines):
    digest = ui_deals.products_digest([DELIVERY, KETTLE])
    with_lines.deals.update_deal.side_effect = [Conflict("changed"), {}]
    response = post_lines(with_lines, form_of([DELIVERY], digest))
    assert response.status_code == 303
    assert with_lines.deals.update_deal.call_count == 2


def test_a_refusal_of_the_deals_service_keeps_the_lines(with_lines):
    digest = ui_deals.products_digest([DELIVERY, KETTLE])
    with_lines.deals.update_deal.side_effect = InvalidInput("invalid input", {"products": ["x"]})
    body = html(post_lines(with_lines, form_of([{**DELIVERY, "name": "Доставка курьером"}],
                                               digest)), 400)
    assert "The products were not saved: invalid input" in body and "Доставка курьером" in body


def test_the_products_form_from_another_site_changes_nothing(with_lines):
    response = post_lines(with_lines, form_of([DELIVERY], "x"),
                          headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    with_lines.deals.update_deal.assert_not_called()


def test_too_many_lines_are_refused():
    with pytest.raises(InvalidInput, match="at most"):
        ui_deals.lines_payload([{"product_id": "", "sku": "A", "name": "", "quantity": "1",
                                 "price": "1"}] * (ui_deals.MAX_LINES + 1))


def test_numbers_as_people_write_them():
    assert [ui_deals.plain_number(v) for v in ("12.000", "1.500", "0.125", None, "x")] == [
        "12", "1.5", "0.125", "", "x"]
    assert ui_deals.line_sum({"quantity": "1.5", "price": "1200.50"}) == ui_deals.Decimal("1800.75")
    assert ui_deals.line_sum({"quantity": "", "price": "1"}) is None


def test_a_reader_without_write_sees_the_lines_without_a_form(with_lines, monkeypatch):
    monkeypatch.setitem(ui_deals.TEMPLATES.globals, "may",
                        lambda principal, permission: permission != "deals:write")
    body = html(with_lines.ui_deal(request("/deals/d1"), deal_id="d1"))
    assert "data-products-form" not in body and "<code>PM-100001</code>" in body
    assert "stock-total short" in body
