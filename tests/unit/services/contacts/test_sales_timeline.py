"""Deals events on the client card's timeline: one readable entry per event, on the card that
holds the client now (merges followed), nothing twice on redelivery."""
import copy
import datetime as dt

import pytest

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, new_event
from crmhub.contracts.errors import PermanentError
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.contacts import logic
from crmhub.services.contacts.models import metadata

T0 = dt.datetime(2026, 3, 14, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def db(database_config):
    engine = make_engine(database_config, "contacts")
    yield ServiceDatabase(engine, metadata, "contacts")
    engine.dispose()


def deals_event(kind, contact_id, **body):
    deal = {"id": "d1", "title": "Уборка офиса", "contact_id": contact_id,
            "pipeline_id": "cleaning-services", "pipeline_name": "Клининг",
            "stage_id": 2, "stage_name": "Установлен контакт", "status": "open",
            "manager": "olga", "amount": "1500.00", "currency": "RUB", "source": None,
            "products": [], "close_reason": None, "version": 2, "created_at": T0,
            "updated_at": T0, "closed_at": None}
    change = {"id": 5, "deal_id": "d1", "from_stage_id": 1,
              "from_stage_name": "Потенциальный клиент", "to_stage_id": 2,
              "to_stage_name": "Установлен контакт", "actor": "olga", "reason": None,
              "version": 2, "changed_at": T0}
    task = {"id": "t1", "title": "Перезвонить", "due_at": T0, "manager": "olga",
            "contact_id": contact_id, "deal_id": "d1", "done": False, "done_at": None,
            "reminded_at": None, "created_by": "olga", "created_at": T0}
    fields = {"task": task, "actor": "olga"} if kind.startswith("task_") else {
        "deal": deal, **({"change": change} if kind != ev.DEAL_CREATED else {"cause": "olga"})}
    for key, changes in body.items():  # e.g. deal={"status": "lost"}
        fields[key] = {**fields[key], **changes}
    schema = instance(ev.spec(kind).schema)
    return schema.load(new_event(ev.spec(kind).schema, **copy.deepcopy(fields)))


def test_each_sales_event_becomes_one_entry_on_the_card(db):
    with db.transaction() as tx:
        card = logic.create_contact(tx, {"name": "Анна", "phones": ["+79161234567"]})
    events = [
        (ev.DEAL_CREATED, deals_event(ev.DEAL_CREATED, card["id"])),
        (ev.DEAL_STAGE_CHANGED, deals_event(ev.DEAL_STAGE_CHANGED, card["id"])),
        (ev.DEAL_LOST, deals_event(ev.DEAL_LOST, card["id"], deal={
            "status": "lost", "close_reason": "выбрали другого подрядчика"})),
        (ev.TASK_CREATED, deals_event(ev.TASK_CREATED, card["id"])),
        (ev.TASK_COMPLETED, deals_event(ev.TASK_COMPLETED, card["id"])),
    ]
    for _ in range(2):  # the second round is a redelivery
        for kind, event in events:
            with db.transaction() as tx:
                logic.add_sales_entry(tx, kind, event)
    with db.connect() as conn:
        titles = {e["kind"]: e["title"] for e in logic.load_card(conn, card["id"])["timeline"]}
        assert len(logic.load_timeline(conn, card["id"])) == 6  # "Card created" + 5
    assert titles[ev.DEAL_CREATED] == "Deal «Уборка офиса» opened in «Клининг» at «Установлен контакт»"
    assert titles[ev.DEAL_STAGE_CHANGED] == (
        "Deal «Уборка офиса»: «Потенциальный клиент» → «Установлен контакт»")
    assert titles[ev.DEAL_LOST] == "Deal «Уборка офиса» lost: выбрали другого подрядчика"
    assert titles[ev.TASK_CREATED] == "Task for olga: «Перезвонить», due 2026-03-14 09:00 UTC"
    assert titles[ev.TASK_COMPLETED] == "Task done: «Перезвонить»"


def test_entries_follow_merges_and_an_unknown_card_is_parked(db):
    with db.transaction() as tx:
        old = logic.create_contact(tx, {"name": "A", "phones": ["+79161230001"]})
        new = logic.create_contact(tx, {"name": "B", "phones": ["+79161230002"]})
        logic.merge_contacts(tx, old["id"], new["id"])
    with db.transaction() as tx:
        entry = logic.add_sales_entry(tx, ev.DEAL_WON, deals_event(ev.DEAL_WON, old["id"]))
    assert entry["contact_id"] == new["id"]
    with pytest.raises(PermanentError), db.transaction() as tx:
        logic.add_sales_entry(tx, ev.DEAL_WON, deals_event(ev.DEAL_WON, "no-such-card"))
    with db.transaction() as tx:  # a task linked to no card has no timeline
        assert logic.add_sales_entry(tx, ev.TASK_CREATED, deals_event(
            ev.TASK_CREATED, None)) is None


def test_goods_arrived_is_an_entry_on_the_client_card_once(db):
    with db.transaction() as tx:
        card = logic.create_contact(tx, {"name": "Анна", "phones": ["+79161234567"]})
    deal = deals_event(ev.DEAL_STAGE_CHANGED, card["id"])["deal"]
    items = [{"offer_id": "p1#red", "product_id": "p1", "name": "Кресло красное",
              "warehouse_id": "main", "quantity": "10.000"},
             {"offer_id": "p1#red", "product_id": "p1", "name": "Кресло красное",
              "warehouse_id": "north", "quantity": "2"},
             {"offer_id": "p2", "product_id": "p2", "name": "Стол", "warehouse_id": "main",
              "quantity": "1"}]
    schema = instance(ev.spec(ev.GOODS_ARRIVED).schema)
    event = schema.load(new_event(ev.spec(ev.GOODS_ARRIVED).schema, deal=deal, items=items,
                                  import_id="imp-42"))
    with db.transaction() as tx:
        entry = logic.add_sales_entry(tx, ev.GOODS_ARRIVED, event)
    with db.transaction() as tx:
        assert logic.add_sales_entry(tx, ev.GOODS_ARRIVED, event) is None  # redelivered
    assert (entry["kind"], entry["title"]) == (ev.GOODS_ARRIVED,
                                               "Товар поступил на склад: Кресло красное, Стол")
    assert entry["data"]["deal_id"] == "d1" and entry["data"]["items"] == items
    assert entry["source_key"] == f"goods_arrived:{event['event_id']}"
    with db.connect() as conn:
        kinds = [e["kind"] for e in logic.load_timeline(conn, card["id"])]
    assert kinds.count(ev.GOODS_ARRIVED) == 1
