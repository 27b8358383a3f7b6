"""The sales funnel on a real RabbitMQ: a website form becomes a card with a deal and a first
task for the manager in turn, the deal's moves appear on the card's timeline, and reminders
fire once, across a restart and with two service instances."""
import datetime as dt
import json
import uuid

import amqp
import eventlet
import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from crmhub.contracts.base import new_event
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.runtime.db import ServiceDatabase, make_engine, utcnow
from crmhub.runtime.messaging import connection_params, get_publisher
from crmhub.runtime.migrate import upgrade
from crmhub.runtime.topology import declare_topology
from crmhub.services.contacts import card_deals
from crmhub.services.contacts import logic as contacts_logic
from crmhub.services.contacts.models import metadata as contacts_metadata
from crmhub.services.contacts.service import ContactsService
from crmhub.services.deals import logic
from crmhub.services.deals.models import metadata, outbox
from crmhub.services.deals.service import DealsService
from support import fresh_schema, wait_for

pytestmark = pytest.mark.rabbit


def hub_config(amqp_uri, tmp_path, database_url="", **extra):
    return {"AMQP_URI": amqp_uri, "DATA_DIR": str(tmp_path), "DATABASE_URL": database_url,
            "RETRY_DELAYS_MS": [100, 200], "max_workers": 5, "REMINDER_INTERVAL_SECONDS": 0.1,
            **extra}


def deals_db(config):
    return ServiceDatabase(make_engine(config, "deals"), metadata, "deals")


def setup_funnel(config, managers=("olga", "pavel")):
    upgrade(config, "deals")
    db = deals_db(config)
    with db.transaction() as tx:
        for manager in managers:
            logic.put_manager(tx, manager, {"name": manager.title(), "role": "manager",
                                            "email": None, "active": True})
        logic.load_template(tx, "b2b-sales")
        logic.set_pipeline_managers(tx, "b2b-sales", list(managers))
    return db


def form_event(phone, name="Анна"):
    return new_event(FormSubmittedSchema, idempotency_key=f"forms:{uuid.uuid4().hex}",
                     connector="forms", form="contact-us", form_name="Contact us",
                     contact={"name": name, "phones": [phone]},
                     tracking={"utm_source": "yandex"}, received_at=utcnow())


def observe(amqp_uri, event_type):
    """A queue of our own on deals.events: what the deals service published."""
    conn = amqp.Connection(**connection_params(amqp_uri))
    conn.connect()
    channel = conn.channel()
    channel.exchange_declare("deals.events", "topic", durable=True, auto_delete=False)
    channel.queue_declare(f"observer-{event_type}", durable=False, auto_delete=False)
    channel.queue_bind(f"observer-{event_type}", "deals.events", event_type)

    def drain():
        got = []
        while (message := channel.basic_get(f"observer-{event_type}", no_ack=True)) is not None:
            got.append(json.loads(message.body))
        return got

    return conn, drain


def test_a_form_becomes_a_card_with_a_deal_a_first_task_and_timeline_entries(
        amqp_uri, tmp_path, container_factory):
    config = hub_config(amqp_uri, tmp_path, LEAD_RULES=[
        {"connector": "forms", "pipeline": "b2b-sales",
         "task_title": "Перезвонить в течение 15 минут"}])
    upgrade(config, "contacts")
    db = setup_funnel(config)
    declare_topology(config, [ContactsService, DealsService])
    for service in (ContactsService, DealsService):
        container_factory(service, config).start()

    publisher = get_publisher(amqp_uri)
    publisher.publish_json("gateway.events", "form_submitted", form_event("+79161234567"))
    publisher.publish_json("gateway.events", "form_submitted", form_event("+79162223344", "Борис"))
    contacts_engine = make_engine(config, "contacts")

    def deals_of(phone):
        with contacts_engine.connect() as conn:
            found = contacts_logic.search(conn, phone=phone)["items"]
        if not found:
            return None
        with db.connect() as conn:
            page = logic.search_deals(conn, contact_id=found[0]["id"])
        return page["items"] and (found[0]["id"], page["items"])

    contact_id, [deal] = wait_for(lambda: deals_of("89161234567"), timeout=15,
                                  message="a deal for the new card")
    _, [other] = wait_for(lambda: deals_of("89162223344"), timeout=15)
    assert (deal["pipeline_id"], deal["stage_name"], deal["title"]) == ("b2b-sales", "Lead", "Анна")
    assert deal["contact_name"] == "Анна"
    assert {deal["manager"], other["manager"]} == {"olga", "pavel"}  # in turn
    with db.connect() as conn:
        [task] = logic.load_deal_card(conn, deal["id"])["tasks"]
    assert (task["title"], task["manager"]) == ("Перезвонить в течение 15 минут", deal["manager"])

    def timeline_kinds():
        with contacts_engine.connect() as conn:
            return [e["kind"] for e in contacts_logic.load_timeline(conn, contact_id)]

    wait_for(lambda: {"deal_created", "task_created"} <= set(timeline_kinds()), timeout=15,
             message="deal and task on the card's timeline")

    stages = {s["name"]: s["id"] for s in deal_stages(db)}
    with ServiceRpcProxy("deals", config) as deals:
        moved = deals.move_deal(deal["id"], {"stage_id": stages["Won"], "reason": "подписали"},
                                "olga")
    assert moved["status"] == "won" and moved["history"][-1]["actor"] == "olga"
    wait_for(lambda: {"deal_stage_changed", "deal_won"} <= set(timeline_kinds()), timeout=15,
             message="the move on the card's timeline")
    with contacts_engine.connect() as conn:
        won = next(e for e in contacts_logic.load_timeline(conn, contact_id)
                   if e["kind"] == "deal_won")
    assert won["title"] == "Deal «Анна» won: подписали"
    assert sorted(timeline_kinds()) == sorted([
        "form_submitted", "deal_created", "task_created", "deal_stage_changed", "deal_won"])

    # The client renamed: its deals show the new name (from contact_updated).
    with ServiceRpcProxy("contacts", config) as contacts:
        contacts.update(contact_id, {"name": "Анна Петрова"})

    def contact_name():
        with db.connect() as conn:
            return logic.load_deal(conn, deal["id"])["contact_name"]

    wait_for(lambda: contact_name() == "Анна Петрова", timeout=15, message="the new name")


def deal_stages(db):
    with db.connect() as conn:
        return logic.load_pipeline(conn, "b2b-sales")["stages"]


@pytest.fixture
def pg_config(amqp_uri, tmp_path, pg_url):
    fresh_schema(pg_url, "deals")
    # A long interval: reminders below fire at their time because the service sleeps until
    # the next due time or is woken by the task it just created, not because it polls.
    return hub_config(amqp_uri, tmp_path, pg_url, REMINDER_INTERVAL_SECONDS=60)


def add_task(db, due_at, title="Позвонить"):
    with db.transaction() as tx:
        return logic.create_task(tx, {"title": title, "due_at": due_at, "manager": "olga"})


def test_a_reminder_due_while_the_service_was_down_fires_once_when_it_is_back(
        pg_config, container_factory):
    config = pg_config
    db = setup_funnel(config)
    declare_topology(config, [DealsService])
    conn, drain = observe(config["AMQP_URI"], "task_due")
    missed = add_task(db, utcnow() - dt.timedelta(minutes=10), "Пропущенный звонок")

    first = container_factory(DealsService, config)
    first.start()
    [reminder] = wait_for(drain, timeout=10, message="the missed reminder")
    assert reminder["task"]["id"] == missed["id"] and reminder["task"]["manager"] == "olga"
    # A task set through the service wakes its timer, asleep for the interval otherwise.
    with ServiceRpcProxy("deals", config) as deals:
        soon = deals.create_task({"title": "Скоро", "manager": "olga", "due_at": (
            utcnow() + dt.timedelta(seconds=0.5)).isoformat()}, "olga")
    [reminder] = wait_for(drain, timeout=10, message="a reminder at its time")
    assert reminder["task"]["id"] == soon["id"]
    first.stop()

    # Written while no instance ran: found at start, fired when due.
    later = add_task(db, utcnow() + dt.timedelta(seconds=1.5), "Потом")
    again = container_factory(DealsService, config)
    again.start()
    [reminder] = wait_for(drain, timeout=10)
    assert reminder["task"]["id"] == later["id"]  # nothing fired twice after the restart
    eventlet.sleep(0.5)
    assert drain() == []
    conn.close()


def test_two_instances_fire_each_reminder_once(pg_config, container_factory):
    config = pg_config
    db = setup_funnel(config)
    declare_topology(config, [DealsService])
    conn, drain = observe(config["AMQP_URI"], "task_due")
    due = utcnow() + dt.timedelta(seconds=1)
    ids = [add_task(db, due)["id"] for _ in range(60)]
    for _ in range(2):
        container_factory(DealsService, config).start()
    received = []
    wait_for(lambda: received.extend(drain()) or len(received) >= len(ids), timeout=15,
             message="every reminder")
    eventlet.sleep(0.5)
    received.extend(drain())
    assert sorted(r["task"]["id"] for r in received) == sorted(ids)
    with db.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM tasks WHERE reminded_at IS NULL")
                         ).scalar() == 0
    conn.close()


def test_an_upgraded_hub_copies_the_open_deals_from_before_for_the_popup(
        amqp_uri, tmp_path, pg_url, container_factory):
    """A hub upgraded from the version whose contacts service kept no deals: its first start
    copies the open deals from the deals service (RPC, once), and a caller's popup lists them.
    The deals' own events were published long ago (none is waiting), so only the copy can."""
    fresh_schema(pg_url, "contacts")
    fresh_schema(pg_url, "deals")
    config = hub_config(amqp_uri, tmp_path, pg_url)
    upgrade(config, "contacts", "0001")
    cards = ServiceDatabase(make_engine(config, "contacts"), contacts_metadata, "contacts")
    with cards.transaction() as tx:
        anna = contacts_logic.create_contact(tx, {"name": "Анна", "phones": ["+79161234567"]})
    upgrade(config, "contacts")
    db = setup_funnel(config)
    lost = {s["name"]: s["id"] for s in deal_stages(db)}["Lost"]
    with db.transaction() as tx:
        for title in ("Поставка кофе", "Кофемашина", "Старая сделка"):
            deal = logic.create_deal(tx, {"contact_id": anna["id"], "pipeline_id": "b2b-sales",
                                          "title": title})
        logic.move_deal(tx, deal["id"], lost)
    with db.transaction() as tx:
        tx.execute(sa.delete(outbox))
    declare_topology(config, [ContactsService, DealsService])
    # Deals first: a request sent before its RPC queue exists goes unanswered (the copy would
    # be tried again a tick later).
    for service in (DealsService, ContactsService):
        container_factory(service, config).start()

    def popup_deals():
        with ServiceRpcProxy("contacts", config) as contacts:
            caller = contacts.identify_caller({"number": "8 916 123-45-67"})
        return sorted(d["title"] for d in caller["open_deals"])

    assert wait_for(popup_deals, timeout=15, message="the open deals copied onto the card") == [
        "Кофемашина", "Поставка кофе"]
    with cards.connect() as conn:
        assert card_deals.backfilled(conn)
