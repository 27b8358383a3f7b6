"""The 1C exchange as 1C drives it, against `crmhub run` on real RabbitMQ and PostgreSQL:
checkauth, init, files in several posts and as a zip, import polled through "progress", the
catalog in the REST API, refusals with a reason, and orders going to 1C and coming back."""
import io
import zipfile

import pytest
import requests
from lxml import etree

from crmhub.plugins.onec.generator import write_exchange
from support import fresh_schema, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]
USER, PASSWORD = "1c-exchange", "s3cret-пароль"
FILE_LIMIT = 64 * 1024


@pytest.fixture
def hub(start_hub, pg_url):
    for service in ("contacts", "deals", "catalog"):
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, CONNECTORS={"1c": {
        "username": USER, "password": PASSWORD, "file_limit": FILE_LIMIT}})


class OneC:
    """What 1C does: a session cookie from checkauth, then mode after mode."""

    def __init__(self, hub, auth=(USER, PASSWORD.encode())):
        self.url = f"{hub.base_url}/hooks/1c/exchange"
        self.http = requests.Session()
        self.auth = auth

    def call(self, kind, mode, method="GET", **params):
        resp = self.http.request(method, self.url, params={"type": kind, "mode": mode, **params},
                                 timeout=30, **({"auth": self.auth} if mode == "checkauth" else {}))
        return resp.status_code, resp.content.decode("windows-1251").split("\n")

    def login(self, kind="catalog"):
        status, lines = self.call(kind, "checkauth")
        assert (status, lines[0]) == (200, "success"), lines
        self.http.cookies.set(lines[1], lines[2])
        return lines

    def upload(self, kind, filename, body: bytes, chunk=FILE_LIMIT):
        for start in range(0, len(body), chunk):
            resp = self.http.post(self.url, params={"type": kind, "mode": "file", "filename": filename},
                                  data=body[start:start + chunk], timeout=30)
            assert resp.text == "success", resp.text

    def import_(self, filename, kind="catalog"):
        """Ask for the import until it is no longer in progress, as 1C does."""
        seen = []

        def done():
            status, lines = self.call(kind, "import", filename=filename)
            seen.append(lines[0])
            return None if lines[0] == "progress" else (status, lines)

        return wait_for(done, timeout=60, interval=0.2, message=f"import of {filename}"), seen


def test_1c_loads_a_catalog_in_parts_and_it_is_in_the_api(hub, tmp_path):
    write_exchange(tmp_path, 400, warehouses=2, quantity_fn=lambda i, w: (i + w) % 4)
    onec = OneC(hub)
    onec.login()
    status, lines = onec.call("catalog", "init")
    assert (status, lines) == (200, ["zip=yes", f"file_limit={FILE_LIMIT}"])
    # import.xml in several posts of file_limit bytes, appended in order.
    body = (tmp_path / "import.xml").read_bytes()
    assert len(body) > 3 * FILE_LIMIT
    onec.upload("catalog", "import.xml", body)
    (status, lines), seen = onec.import_("import.xml")
    assert (status, lines[0]) == (200, "success"), lines
    # offers.xml inside a zip, with a picture, as 1C sends it with zip=yes.
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(tmp_path / "offers.xml", "offers.xml")
        zf.writestr("import_files/ab/abcdef.jpg", b"\xff\xd8\xff picture")
    onec.upload("catalog", "exchange.zip", archive.getvalue())
    (status, lines), _ = onec.import_("offers.xml")
    assert (status, lines[0]) == (200, "success"), lines
    assert onec.call("catalog", "import", filename="import_files/ab/abcdef.jpg")[1][0] == "success"

    page = hub.api("GET", "/api/v1/products", params={"q": "Б-1000", "limit": 200}).json()
    assert page["items"] and all(p["article"].startswith("Б-1000") for p in page["items"])
    product = page["items"][0]
    assert product["prices"][0]["price_type"] == "Розничная" and product["unit"]
    assert len(product["stock"]) == 2 and product["groups"]
    assert hub.api("GET", "/api/v1/products", params={"ids": product["id"]}).json()["items"] == [product]
    imports = hub.api("GET", "/api/v1/catalog/imports").json()["items"]
    assert {(j["filename"], j["state"]) for j in imports} == {("import.xml", "done"),
                                                              ("offers.xml", "done")}
    assert hub.api("GET", "/api/v1/products", params={"limit": "lots"}).status_code == 400


def test_wrong_credentials_a_missing_cookie_and_bad_files_are_refused_with_a_reason(hub, tmp_path):
    status, lines = OneC(hub, auth=(USER, "wrong")).call("catalog", "checkauth")
    assert (status, lines[0]) == (401, "failure") and "password" in lines[1]
    status, lines = OneC(hub).call("catalog", "init")
    assert (status, lines[0]) == (401, "failure") and "checkauth" in lines[1]

    onec = OneC(hub)
    onec.login()
    onec.call("catalog", "init")
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
            b'<x>&lol2;</x>')
    onec.upload("catalog", "import.xml", bomb)
    (status, lines), _ = onec.import_("import.xml")
    assert lines[0] == "failure" and "DOCTYPE" in lines[1]

    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as zf:
        zf.writestr("../../offers.xml", b"<x/>")
    onec.upload("catalog", "evil.zip", traversal.getvalue())
    status, lines = onec.call("catalog", "import", filename="offers.xml")
    assert lines[0] == "failure" and "evil.zip" in lines[1]

    for bad in ("../import.xml", "notes.txt", "/etc/passwd"):
        status, lines = onec.call("catalog", "file", method="POST", filename=bad)
        assert (status, lines[0]) == (400, "failure"), (bad, lines)
    assert onec.call("catalog", "nonsense")[1][0] == "failure"
    assert onec.call("catalog", "import", filename="rests.xml")[1][0] == "failure"
    assert hub.api("GET", "/api/v1/products").json()["items"] == []


def test_orders_go_to_1c_and_its_statuses_come_back(hub, tmp_path):
    assert hub.api("POST", "/api/v1/pipelines/templates/distribution").status_code == 201
    card = hub.api("POST", "/api/v1/contacts", json={
        "name": "ООО «Ромашка»", "phones": ["+7 916 555-44-33"]}).json()
    deal = hub.api("POST", "/api/v1/deals", json={
        "contact_id": card["id"], "pipeline_id": "distribution", "title": "Заказ подушек",
        "products": [{"sku": "Б-100001", "product_id": "guid-1", "name": "Подушка",
                      "quantity": "2", "price": "1500.00"}]}).json()
    onec = OneC(hub)
    onec.login("sale")
    onec.call("sale", "init")
    resp = onec.http.get(onec.url, params={"type": "sale", "mode": "query"}, timeout=30)
    assert resp.status_code == 200 and b'encoding="windows-1251"' in resp.content[:60]
    docs = etree.fromstring(resp.content).findall("{*}Документ")
    assert [d.findtext("{*}Ид") for d in docs] == [deal["id"]]
    assert docs[0].find("{*}Товары/{*}Товар/{*}Ид").text == "guid-1"
    assert onec.call("sale", "success")[1][0] == "success"
    again = onec.http.get(onec.url, params={"type": "sale", "mode": "query"}, timeout=30)
    assert etree.fromstring(again.content).findall("{*}Документ") == []

    status_file = resp.content.replace("Выставлен счет клиенту".encode("windows-1251"), b"")
    root = etree.fromstring(status_file)
    ns = root.nsmap.get(None)
    q = (lambda t: f"{{{ns}}}{t}") if ns else (lambda t: t)
    requisites = root.find(f"{q('Документ')}/{q('ЗначенияРеквизитов')}")
    for name, value in (("Статус заказа", "[N] Принят"), ("Номер по 1С", "УТ-000123")):
        req = etree.SubElement(requisites, q("ЗначениеРеквизита"))
        etree.SubElement(req, q("Наименование")).text = name
        etree.SubElement(req, q("Значение")).text = value
    onec.upload("sale", "orders-1.xml", etree.tostring(root, encoding="windows-1251", xml_declaration=True))
    erp = wait_for(lambda: hub.api("GET", f"/api/v1/deals/{deal['id']}").json().get("erp"),
                   message="1C's status on the deal")
    assert (erp["number"], erp["status"]) == ("УТ-000123", "[N] Принят")
    status, lines = onec.call("sale", "file", method="POST", filename="orders-2.xml")
    assert lines[0] == "failure"


def test_goods_arriving_in_1c_move_the_waiting_deal_and_show_on_the_card(hub, tmp_path):
    from crmhub.plugins.onec.generator import product_id

    assert hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Ольга"}).status_code == 200
    assert hub.api("POST", "/api/v1/pipelines/templates/distribution").status_code == 201
    stages = {s["key"]: s for s in hub.api("GET", "/api/v1/pipelines/distribution").json()["stages"]}
    assert stages["supplier-invoice"]["on_goods_arrival"] == "goods-received"
    onec = OneC(hub)
    onec.login()
    onec.call("catalog", "init")
    write_exchange(tmp_path / "empty", 20, warehouses=2, quantity_fn=lambda i, w: 0)
    onec.upload("catalog", "offers.xml", (tmp_path / "empty" / "offers.xml").read_bytes())
    assert onec.import_("offers.xml")[0][1][0] == "success"
    [waited] = hub.api("GET", "/api/v1/products", params={"ids": product_id(7)}).json()["items"]
    assert waited["in_stock"] == "0.000"

    card = hub.api("POST", "/api/v1/contacts", json={"name": "Пётр", "phones": ["+79165554433"]}).json()
    deal = hub.api("POST", "/api/v1/deals", json={
        "contact_id": card["id"], "pipeline_id": "distribution", "manager": "Olga",
        "stage_id": stages["supplier-invoice"]["id"],
        "products": [{"sku": waited["article"], "product_id": waited["id"], "name": waited["name"],
                      "quantity": "3", "price": "100.00"}]}).json()
    other = hub.api("POST", "/api/v1/deals", json={
        "contact_id": card["id"], "pipeline_id": "distribution", "manager": "Olga",
        "stage_id": stages["supplier-invoice"]["id"],
        "products": [{"sku": "X", "product_id": product_id(8), "quantity": "1", "price": "1.00"}]}).json()

    # A change-only package: product 7 arrives at the first warehouse.
    write_exchange(tmp_path / "arrival", 1, warehouses=2, only_changes=True, start=7,
                   quantity_fn=lambda i, w: 12 if w == 0 else 0)
    onec.login()
    onec.call("catalog", "init")
    onec.upload("catalog", "offers.xml", (tmp_path / "arrival" / "offers.xml").read_bytes())
    assert onec.import_("offers.xml")[0][1][0] == "success"

    moved = wait_for(lambda: (d := hub.api("GET", f"/api/v1/deals/{deal['id']}").json())["stage_id"]
                     == stages["goods-received"]["id"] and d, timeout=20, message="the deal moved")
    assert moved["history"][-1]["actor"] == "1c: goods arrived"
    waiting = stages["supplier-invoice"]["id"]
    assert hub.api("GET", f"/api/v1/deals/{other['id']}").json()["stage_id"] == waiting
    [task] = hub.api("GET", "/api/v1/tasks", params={"deal_id": deal["id"]}).json()["items"]
    assert task["manager"] == "Olga" and waited["name"] in task["title"]
    timeline = wait_for(lambda: [
        e for e in hub.api("GET", f"/api/v1/contacts/{card['id']}").json()["timeline"]
        if e["kind"] == "goods_arrived"], message="a timeline entry")
    assert waited["name"] in timeline[0]["title"]
