"""Goods arrival on both database backends: a deal waiting in a stage with on_goods_arrival moves
on when 1C reports a product of its lines in stock, its manager gets a task and goods_arrived
is published; once per event, and only for the deals that really wait for that product."""
import datetime as dt
import json

import pytest
import sqlalchemy as sa
from marshmallow import ValidationError
from nameko.testing.services import worker_factory

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, new_event
from crmhub.contracts.catalog import StockChangedSchema
from crmhub.contracts.deals import GoodsArrivedSchema, StageInputSchema
from crmhub.contracts.errors import InvalidInput
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.deals import arrivals, logic
from crmhub.services.deals.models import metadata, outbox, stages, tasks
from crmhub.services.deals.service import DealsService
from support import fresh_schema

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
CHAIR = "9a1b2c3d-0000-4000-8000-000000000001"
DESK = "9a1b2c3d-0000-4000-8000-000000000002"
RED, BLUE = "c0c0c0c0-0000-4000-8000-0000000000ed", "c0c0c0c0-0000-4000-8000-0000000000b1"


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
def distribution(db):
    run(db, logic.put_manager, "olga", {"name": "Ольга", "role": "manager", "email": None,
                                        "active": True})
    return run(db, logic.load_template, "distribution")[0]


def stage_id(pipeline, key):
    return next(s["id"] for s in pipeline["stages"] if s["key"] == key)


def line(product_id, name="Кресло офисное", sku="CH-1"):
    return {"sku": sku, "product_id": product_id, "name": name, "quantity": "2", "price": "4500.00"}


def open_deal(db, pipeline, key="supplier-invoice", products=(), contact_id="c1"):
    return run(db, logic.create_deal, {
        "contact_id": contact_id, "pipeline_id": pipeline["id"], "title": "Поставка мебели",
        "manager": "olga", "stage_id": stage_id(pipeline, key), "products": list(products)},
        actor="olga")


def stock(*items, event_id="evt-stock-000001"):
    rows = [{"offer_id": offer, "product_id": offer.partition("#")[0], "warehouse_id": "main",
             "quantity": "10", "previous": "0", "arrived": arrived}
            for offer, arrived in items]
    wire = new_event(StockChangedSchema, event_id=event_id, import_id="imp-42", items=rows)
    return instance(StockChangedSchema).load(wire)


def arrive(db, event, minutes=None):
    settings = {} if minutes is None else {"arrival_task_due_minutes": minutes}
    with db.transaction() as tx:
        return arrivals.handle_stock_changed(tx, event, settings, now=T0)


def deal_tasks(db, deal_id):
    with db.connect() as conn:
        return conn.execute(sa.select(tasks).where(tasks.c.deal_id == deal_id)).all()


def test_the_template_waits_for_goods_at_the_supplier_invoice(distribution):
    waits = {s["key"]: s["on_goods_arrival"] for s in distribution["stages"]}
    assert waits["supplier-invoice"] == "goods-received"
    assert [k for k, v in waits.items() if v] == ["supplier-invoice"]


def test_a_waiting_deal_moves_on_and_its_manager_is_told_to_call_the_client(db, distribution):
    deal = open_deal(db, distribution, products=[line(CHAIR), line(DESK, "Стол", "DS-1")])
    created = arrive(db, stock((CHAIR, True), ("other-product", True)), minutes=30)

    moved = run(db, lambda tx: logic.load_deal_card(tx.conn, deal["id"]))
    assert (moved["stage_name"], moved["status"]) == ("Товар поступил на склад", "open")
    last = moved["history"][-1]
    assert (last["actor"], last["reason"]) == ("1c: goods arrived",
                                               "Товар поступил на склад: Кресло офисное")
    [task] = created
    assert task == moved["tasks"][0]
    assert task["title"] == "Товар поступил на склад: Кресло офисное — сообщите клиенту"
    assert (task["manager"], task["contact_id"], task["deal_id"]) == ("olga", "c1", deal["id"])
    assert task["due_at"] == T0 + dt.timedelta(minutes=30)

    kinds = [e["_type"] for e in outbox_events(db)]
    assert kinds[-3:] == [ev.DEAL_STAGE_CHANGED, ev.TASK_CREATED, ev.GOODS_ARRIVED]
    [event] = outbox_events(db, ev.GOODS_ARRIVED)
    event = instance(GoodsArrivedSchema).load({k: v for k, v in event.items() if k != "_type"})
    assert event["deal"]["stage_name"] == "Товар поступил на склад"
    assert event["import_id"] == "imp-42"
    assert event["items"] == [{"offer_id": CHAIR, "product_id": CHAIR, "name": "Кресло офисное",
                               "warehouse_id": "main", "quantity": "10"}]


def test_the_task_is_due_in_an_hour_by_default(db, distribution):
    open_deal(db, distribution, products=[line(CHAIR)])
    [task] = arrive(db, stock((CHAIR, True)))
    assert task["due_at"] == T0 + dt.timedelta(minutes=60)


def test_only_open_deals_waiting_for_an_arrived_product_move(db, distribution):
    elsewhere = open_deal(db, distribution, key="order-agreed", products=[line(CHAIR)])
    other_product = open_deal(db, distribution, products=[line(DESK)])
    typed_by_hand = open_deal(db, distribution, products=[line(None)])
    not_arrived = open_deal(db, distribution, products=[line("sold-out")])
    # A lost stage that would wait for goods: a closed deal there is not reopened.
    custom = run(db, logic.create_pipeline, {"id": "custom", "name": "Под заказ", "stages": [
        instance(StageInputSchema).load(s) for s in (
            {"key": "waiting", "name": "Ждём товар", "on_goods_arrival": "arrived"},
            {"key": "arrived", "name": "Товар пришёл"},
            {"key": "gone", "name": "Отказ", "kind": "lost", "on_goods_arrival": "arrived"})]})
    closed = open_deal(db, custom, key="gone", products=[line(CHAIR)])
    assert closed["status"] == "lost"

    assert arrive(db, stock((CHAIR, True), (DESK, False), ("sold-out", False))) == []
    for deal in (elsewhere, other_product, typed_by_hand, not_arrived, closed):
        after = run(db, lambda tx, d=deal: logic.load_deal(tx.conn, d["id"]))
        assert (after["stage_id"], after["version"]) == (deal["stage_id"], deal["version"])
        assert deal_tasks(db, deal["id"]) == []
    assert outbox_events(db, ev.GOODS_ARRIVED) == []


def test_a_replayed_event_creates_no_second_task(db, distribution):
    deal = open_deal(db, distribution, products=[line(CHAIR)])
    event = stock((CHAIR, True))
    assert len(arrive(db, event)) == 1
    # The deal is moved back to wait (say the goods were sold to someone else): the same
    # event redelivered still changes nothing.
    run(db, logic.move_deal, deal["id"], stage_id(distribution, "supplier-invoice"), actor="olga")
    assert arrive(db, event) == []
    assert len(deal_tasks(db, deal["id"])) == 1
    assert len(outbox_events(db, ev.GOODS_ARRIVED)) == 1
    # A new arrival of it (a new event) moves it again.
    assert len(arrive(db, stock((CHAIR, True), event_id="evt-stock-000002"))) == 1


def test_a_line_for_the_product_waits_for_any_of_its_characteristics(db, distribution):
    bare = open_deal(db, distribution, products=[line(CHAIR)])
    blue = open_deal(db, distribution, products=[line(f"{CHAIR}#{BLUE}", "Кресло синее")])
    red = open_deal(db, distribution, products=[line(f"{CHAIR}#{RED}", "Кресло красное")])
    created = arrive(db, stock((f"{CHAIR}#{RED}", True)))
    assert sorted(t["deal_id"] for t in created) == sorted([bare["id"], red["id"]])
    assert deal_tasks(db, blue["id"]) == []
    by_deal = {e["deal"]["id"]: e["items"] for e in outbox_events(db, ev.GOODS_ARRIVED)}
    assert by_deal[bare["id"]][0]["offer_id"] == f"{CHAIR}#{RED}"
    assert by_deal[red["id"]][0]["name"] == "Кресло красное"


def test_many_products_are_named_in_one_task(db, distribution):
    products = [line(f"p-{i}", f"Товар {i}", f"SKU-{i}") for i in range(7)]
    open_deal(db, distribution, products=products + [line("p-0", None, "SKU-0")])
    [task] = arrive(db, stock(*((f"p-{i}", True) for i in range(7))))
    assert task["title"] == ("Товар поступил на склад: Товар 0, Товар 1, Товар 2, Товар 3, "
                             "Товар 4 и ещё 2 — сообщите клиенту")


@pytest.mark.parametrize("stages_in, message", [
    ([{"key": "a", "name": "A", "on_goods_arrival": "nowhere"}, {"key": "b", "name": "B"}],
     "on_goods_arrival must name another stage"),
    ([{"key": "a", "name": "A", "on_goods_arrival": "a"}, {"key": "b", "name": "B"}],
     "on_goods_arrival must name another stage"),
])
def test_on_goods_arrival_must_name_another_stage_of_the_pipeline(db, stages_in, message):
    with pytest.raises(InvalidInput) as err:
        run(db, logic.create_pipeline, {"name": "X", "stages": [
            instance(StageInputSchema).load(s) for s in stages_in]})
    assert message in err.value.details["stages"][0]
    # A stage without a key is named after its position, and may be named so.
    pipeline = run(db, logic.create_pipeline, {"name": "Y", "stages": [
        instance(StageInputSchema).load(s) for s in (
            {"name": "A", "on_goods_arrival": "stage-2"}, {"name": "B"})]})
    assert pipeline["stages"][0]["on_goods_arrival"] == "stage-2"
    assert pipeline["stages"][1]["on_goods_arrival"] is None


def test_the_contract_checks_the_key_form():
    with pytest.raises(ValidationError) as err:
        instance(StageInputSchema).load({"name": "A", "on_goods_arrival": "Not a key!"})
    assert "on_goods_arrival" in err.value.messages


def test_a_template_naming_no_stage_is_refused(monkeypatch, tmp_path):
    (tmp_path / "broken.yaml").write_text(
        "name: broken\ntitle: Broken\nstages:\n  - key: a\n    name: A\n"
        "    on_goods_arrival: b\n", encoding="utf-8")
    monkeypatch.setattr(logic, "TEMPLATES", tmp_path)
    with pytest.raises(InvalidInput):
        logic.read_template("broken")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_migration_sets_the_distribution_pipeline_loaded_before_it(request, tmp_path, backend):
    config = {"DATABASE_URL": "", "DATA_DIR": str(tmp_path)}
    if backend == "postgres":
        config["DATABASE_URL"] = request.getfixturevalue("pg_url")
        fresh_schema(config["DATABASE_URL"], "deals")
    upgrade(config, "deals", "0002")
    engine = make_engine(config, "deals")
    old_stages = sa.table("stages", *(sa.column(c) for c in (
        "pipeline_id", "key", "name", "position", "kind", "task", "result")),
        sa.column("key_steps", sa.JSON))
    pipelines = sa.table("pipelines", sa.column("id"), sa.column("name"), sa.column("template"),
                         sa.column("created_at", sa.DateTime(timezone=True)))
    with engine.begin() as conn:
        for pid, template in (("distribution", "distribution"), ("own", None)):
            conn.execute(pipelines.insert().values(id=pid, name=pid, template=template,
                                                   created_at=T0))
            conn.execute(old_stages.insert(), [
                {"pipeline_id": pid, "key": key, "name": key, "position": i, "kind": "open",
                 "task": "", "result": "", "key_steps": []}
                for i, key in enumerate(("supplier-invoice", "goods-received"))])
    engine.dispose()
    upgrade(config, "deals")
    engine = make_engine(config, "deals")
    with engine.connect() as conn:
        waits = {(r.pipeline_id, r.key): r.on_goods_arrival for r in conn.execute(
            sa.select(stages.c.pipeline_id, stages.c.key, stages.c.on_goods_arrival))}
    engine.dispose()
    assert waits == {("distribution", "supplier-invoice"): "goods-received",
                     ("distribution", "goods-received"): None,
                     ("own", "supplier-invoice"): None, ("own", "goods-received"): None}


def test_the_handler_wakes_the_reminders_for_the_new_tasks(tmp_path):
    config = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "",
              "CATALOG": {"arrival_task_due_minutes": 15}}
    upgrade(config, "deals")
    engine = make_engine(config, "deals")
    worker = worker_factory(DealsService, config=config,
                            db=ServiceDatabase(engine, metadata, "deals"))
    try:
        worker.put_manager("olga", {"name": "Ольга"})
        pipeline = worker.load_template("distribution")["pipeline"]
        with worker.db.transaction() as tx:
            deal = logic.create_deal(tx, {
                "contact_id": "c1", "pipeline_id": "distribution", "title": "Поставка",
                "manager": "olga", "stage_id": stage_id(pipeline, "supplier-invoice"),
                "products": [line(CHAIR)]})
        rows = [{"offer_id": CHAIR, "product_id": CHAIR, "warehouse_id": "", "quantity": "3",
                 "previous": None, "arrived": False}]
        worker.on_stock_changed(new_event(StockChangedSchema, import_id="i1", items=rows))
        worker.wake_reminders.assert_not_called()
        worker.on_stock_changed(new_event(StockChangedSchema, import_id="i2",
                                          items=[{**rows[0], "arrived": True}]))
        [task] = worker.search_tasks({"deal_id": deal["id"]})["items"]
        worker.wake_reminders.assert_called_once_with(
            dt.datetime.fromisoformat(task["due_at"]))
        assert worker.get_deal(deal["id"])["stage_name"] == "Товар поступил на склад"
        with pytest.raises(ValidationError):  # a payload breaking the contract is parked
            worker.on_stock_changed({"event_id": "evt-bad-0001", "items": []})
    finally:
        engine.dispose()
