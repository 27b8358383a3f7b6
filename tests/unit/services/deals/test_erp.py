"""Orders exchanged with 1C (CommerceML 2, type=sale), on both database backends: which deals go
out and in what shape (the one orders_document writes and read_order_changes reads back), the
confirmation by version, and what 1C says coming back onto the deals."""
import dataclasses
import datetime as dt
import json
import zoneinfo
from decimal import Decimal

import pytest
import sqlalchemy as sa
from lxml import etree
from nameko.testing.services import worker_factory

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance
from crmhub.contracts.contacts import ContactListSchema
from crmhub.contracts.deals import ErpOrderPageSchema
from crmhub.contracts.errors import InvalidInput
from crmhub.plugins.onec.orders import OrderChange, orders_document, read_order_changes
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.deals import erp, logic
from crmhub.services.deals.models import metadata, outbox
from crmhub.services.deals.service import DealsService

MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")
T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
CHAIR = "9a1b2c3d-0000-4000-8000-000000000001#c0c0c0c0-0000-4000-8000-0000000000ed"
SETTINGS = {"order_status_stages": {"Отгружен": "shipped", "  отменён  ": "not-realized",
                                    "st-ready": "ready-to-ship", "В пути": "no-such-stage"}}
CARDS = {"items": [{"id": "c1", "kind": "company", "name": None, "company": "ООО Ромашка",
                    "phones": [{"raw": "8 (916) 123-45-67", "e164": "+79161234567",
                                "extension": None},
                               {"raw": "доб. 5", "e164": None, "extension": None}],
                    "emails": ["buy@romashka.example"], "source": None, "manager": None,
                    "tags": [], "custom_fields": {}, "created_at": T0, "updated_at": T0,
                    "merged_ids": ["c0"]}],
         "resolved": {"c1": "c1", "c0": "c1"}, "missing": ["c9"]}


@pytest.fixture
def db(migrated_database):
    engine = make_engine(migrated_database("deals"), "deals")
    yield ServiceDatabase(engine, metadata, "deals")
    engine.dispose()


def run(db, fn, *args, **kwargs):
    with db.transaction() as tx:
        return fn(tx, *args, **kwargs)


def outbox_events(db, event_type=None) -> list[dict]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    return [json.loads(r.payload) | {"_type": r.event_type} for r in rows
            if event_type in (None, r.event_type)]


@pytest.fixture
def pipeline(db):
    run(db, logic.put_manager, "olga", {"name": "Ольга Смирнова", "role": "manager",
                                        "email": None, "active": True})
    return run(db, logic.load_template, "distribution")[0]


def stage_id(pipeline, key):
    return next(s["id"] for s in pipeline["stages"] if s["key"] == key)


LINES = [{"sku": "CH-1", "product_id": CHAIR, "name": "Кресло «Директор»", "quantity": "2",
          "price": "4500.50"},
         {"sku": "MISC", "product_id": None, "name": None, "quantity": "1.5", "price": "100"}]


def open_deal(db, pipeline, key="planned-order", products=LINES, contact_id="c1", **extra):
    return run(db, logic.create_deal, {
        "contact_id": contact_id, "pipeline_id": pipeline["id"], "title": "Поставка мебели",
        "contact_name": "Ромашка", "manager": "olga", "stage_id": stage_id(pipeline, key),
        "products": list(products), **extra}, actor="olga")


def pending(db, limit=500):
    with db.connect() as conn:
        return erp.pending_orders(conn, limit, MOSCOW)


def change(order_id, **fields):
    base = dict(order_id=order_id, number=None, erp_number=None, operation="Заказ товара",
                status=None, status_id=None, paid=None, shipped=None, cancelled=None,
                posted=None, deleted=False, amount=None, requisites={})
    return dataclasses.asdict(OrderChange(**{**base, **fields}))


def test_only_open_deals_with_lines_changed_since_1c_took_them_go_out(db, pipeline):
    fresh = open_deal(db, pipeline, amount=Decimal("9100.00"))
    open_deal(db, pipeline, products=[])  # nothing to order
    open_deal(db, pipeline, key="not-realized")  # closed
    taken = open_deal(db, pipeline)
    changed = open_deal(db, pipeline)
    run(db, erp.mark_exported, [{"id": taken["id"], "version": 1},
                                {"id": changed["id"], "version": 1}])
    run(db, logic.move_deal, changed["id"], stage_id(pipeline, "order-agreed"), actor="olga")

    orders = pending(db)
    assert [o["id"] for o in orders] == [fresh["id"], changed["id"]]  # least recently changed first
    assert [o["version"] for o in orders] == [1, 2]
    order = orders[0]
    assert order["number"].startswith("CRM-") and order["number"][4:].isdigit()
    assert pending(db)[0]["number"] == order["number"]  # stable
    assert order["created_at"].utcoffset() == dt.timedelta(hours=3)
    assert order["created_at"] == fresh["created_at"]
    assert (order["amount"], order["currency"], order["comment"], order["status"]) == (
        Decimal("9100.00"), "RUB", "Поставка мебели", "Планируемый заказ")
    assert order["manager"] == "Ольга Смирнова"
    assert order["client"] == {"id": "c1", "name": "Ромашка", "phones": [], "emails": []}
    assert [(li["product_id"], li["sku"], li["name"]) for li in order["lines"]] == [
        (CHAIR, "CH-1", "Кресло «Директор»"), (None, "MISC", None)]
    assert orders[1]["status"] == "Заказ согласован"
    assert orders[1]["status_changed_at"] > orders[1]["created_at"] - dt.timedelta(seconds=1)
    assert [o["id"] for o in pending(db, limit=1)] == [fresh["id"]]


def test_orders_are_what_orders_document_writes_and_1c_reads_back(db, pipeline):
    deal = open_deal(db, pipeline)
    orders = erp.attach_clients(pending(db), CARDS)
    assert orders[0]["client"] == {"id": "c1", "name": "ООО Ромашка",
                                   "phones": ["+79161234567", "доб. 5"],
                                   "emails": ["buy@romashka.example"]}
    # Over RPC: dumped by the deals service, loaded by the gateway.
    wire = json.loads(json.dumps(instance(ErpOrderPageSchema).dump({"items": orders})))
    assert set(wire["items"][0]) == {"id", "number", "created_at", "currency", "amount", "comment",
                                     "status", "status_changed_at", "manager", "client", "lines",
                                     "version"}
    loaded = instance(ErpOrderPageSchema).load(wire)["items"]
    xml = orders_document(loaded, generated_at=T0)

    [back] = read_order_changes(xml)
    assert (back.order_id, back.number, back.status) == (
        deal["id"], orders[0]["number"], "Планируемый заказ")
    assert back.amount == "9151.00"  # no amount on the deal: the sum of the lines
    doc = etree.fromstring(xml).find("Документ")
    assert doc.findtext("Время") == deal["created_at"].astimezone(MOSCOW).strftime("%H:%M:%S")
    assert [g.findtext("Ид") for g in doc.find("Товары")] == [CHAIR, "MISC"]
    agent = doc.find("Контрагенты/Контрагент")
    assert agent.findtext("Наименование") == "ООО Ромашка"
    assert [c.findtext("Значение") for c in agent.find("Контакты")] == [
        "+79161234567", "доб. 5", "buy@romashka.example"]


def test_an_order_changed_after_it_was_sent_goes_out_again(db, pipeline):
    deal = open_deal(db, pipeline)
    [sent] = pending(db)
    run(db, logic.update_deal, deal["id"], {"title": "Поставка мебели, 2 этаж"}, actor="olga")
    result = run(db, erp.mark_exported, [{"id": deal["id"], "version": sent["version"]},
                                         {"id": "no-such-deal", "version": 1}])
    assert result == {"marked": 0, "stale": [deal["id"], "no-such-deal"]}
    [again] = pending(db)
    assert (again["version"], again["comment"]) == (2, "Поставка мебели, 2 этаж")
    assert run(db, erp.mark_exported, [{"id": deal["id"], "version": 2}]) == {"marked": 1,
                                                                              "stale": []}
    assert pending(db) == []


def test_what_1c_says_is_stored_and_a_mapped_status_moves_the_deal(db, pipeline):
    deal = open_deal(db, pipeline)
    run(db, erp.mark_exported, [{"id": deal["id"], "version": 1}])
    changes = [change(deal["id"], number="CRM-1", erp_number="УТ-000123", status="Отгружен",
                      paid=True),
               change("5b2f6c1e-1c00-11ef-8f2a-00155d012345", number="УТ-000124"),
               change(None, number=None)]
    assert run(db, erp.apply_changes, changes, SETTINGS, now=T0) == {
        "applied": 1, "unknown": ["5b2f6c1e-1c00-11ef-8f2a-00155d012345"]}

    card = run(db, lambda tx: logic.load_deal_card(tx.conn, deal["id"]))
    assert card["erp"] == {"number": "УТ-000123", "status": "Отгружен", "paid": True,
                           "shipped": None, "cancelled": None, "updated_at": T0}
    assert (card["stage_name"], card["history"][-1]["actor"], card["history"][-1]["reason"]) == (
        "Товар отгружен", "1c", "1C: Отгружен")
    [updated] = outbox_events(db, ev.DEAL_UPDATED)
    assert updated["changed"] == ["erp"] and updated["deal"]["erp"]["number"] == "УТ-000123"
    assert pending(db) == []  # 1C caused it: nothing to send back
    count = len(outbox_events(db))

    # The same file again changes nothing; a file that leaves out paid keeps it.
    run(db, erp.apply_changes, changes, SETTINGS, now=T0 + dt.timedelta(hours=1))
    run(db, erp.apply_changes, [change(deal["id"], status="Отгружен")], SETTINGS)
    assert len(outbox_events(db)) == count
    assert run(db, lambda tx: logic.load_deal(tx.conn, deal["id"]))["version"] == card["version"]

    # A manager moves it back; 1C repeating its status does not undo that, a new one moves it.
    run(db, logic.move_deal, deal["id"], stage_id(pipeline, "client-invoice"), actor="olga")
    run(db, erp.apply_changes, [change(deal["id"], status="Отгружен", shipped=True)], SETTINGS)
    after = run(db, lambda tx: logic.load_deal(tx.conn, deal["id"]))
    assert (after["stage_name"], after["erp"]["shipped"]) == ("Выставлен счет клиенту", True)
    assert [o["id"] for o in pending(db)] == [deal["id"]]  # the manager's move is still to send
    run(db, erp.apply_changes, [change(deal["id"], status="ОТМЕНЁН", cancelled=True)], SETTINGS)
    lost = run(db, lambda tx: logic.load_deal(tx.conn, deal["id"]))
    assert (lost["status"], lost["erp"]["status"], lost["erp"]["paid"]) == ("lost", "ОТМЕНЁН", True)


def test_a_status_id_maps_too_and_a_key_of_no_stage_moves_nothing(db, pipeline):
    ready, elsewhere = open_deal(db, pipeline), open_deal(db, pipeline)
    run(db, erp.apply_changes, [change(ready["id"], status_id="st-ready"),
                                change(elsewhere["id"], status="В пути")], SETTINGS)
    assert run(db, lambda tx: logic.load_deal(tx.conn, ready["id"]))["stage_name"] == (
        "Товар поставлен к отгрузке")
    still = run(db, lambda tx: logic.load_deal(tx.conn, elsewhere["id"]))
    assert (still["stage_id"], still["erp"]["status"]) == (elsewhere["stage_id"], "В пути")


# -- the RPC methods ---------------------------------------------------------------------------

@pytest.fixture
def service(tmp_path):
    config = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "",
              "ERP": {**SETTINGS, "time_zone": "Europe/Moscow"}}
    upgrade(config, "deals")
    engine = make_engine(config, "deals")
    worker = worker_factory(DealsService, config=config,
                            db=ServiceDatabase(engine, metadata, "deals"))
    worker.contacts.get_many.side_effect = lambda ids: instance(ContactListSchema).dump(CARDS)
    worker.put_manager("olga", {"name": "Ольга"})
    worker.load_template("distribution")
    yield worker
    engine.dispose()


def test_the_rpc_methods_speak_the_wire_form(service):
    with service.db.transaction() as tx:
        pipeline = logic.load_pipeline(tx.conn, "distribution")
        deal = logic.create_deal(tx, {"contact_id": "c1", "pipeline_id": "distribution",
                                      "title": "Поставка", "products": LINES,
                                      "stage_id": stage_id(pipeline, "planned-order")})
    page = service.orders_for_erp()
    service.contacts.get_many.assert_called_once_with(["c1"])
    [order] = page["items"]
    assert order["created_at"].endswith("+03:00") and order["lines"][0]["quantity"] == "2.000"
    assert order["client"]["phones"] == ["+79161234567", "доб. 5"]
    orders_document(instance(ErpOrderPageSchema).load(page)["items"], generated_at=T0)

    assert service.mark_orders_exported([{"id": deal["id"], "version": 1}]) == {
        "marked": 1, "stale": []}
    assert service.orders_for_erp() == {"items": []}
    result = service.apply_erp_order_changes(
        {"changes": [change(deal["id"], status="Отгружен"), change("1c-own-order")]})
    assert result == {"applied": 1, "unknown": ["1c-own-order"]}
    assert service.get_deal(deal["id"])["erp"]["status"] == "Отгружен"
    with pytest.raises(InvalidInput) as err:
        service.orders_for_erp(limit=0)
    assert set(err.value.details) == {"limit"}
    with pytest.raises(InvalidInput):
        service.apply_erp_order_changes({"changes": [{"order_id": 1, "surprise": True}]})
