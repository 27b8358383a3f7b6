"""Messenger senders and messages on client cards, on both database backends: a card found by
phone or made for an unknown identity (with the messenger as its source, for lead rules),
and one timeline entry per message whose status only moves forwards."""
import datetime as dt
import json

import pytest
import sqlalchemy as sa

from crmhub.contracts.base import instance, new_event
from crmhub.contracts.messages import MessageEventSchema
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.contacts import logic, messages
from crmhub.services.contacts.models import metadata, outbox

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def db(database_config):
    engine = make_engine(database_config, "contacts")
    yield ServiceDatabase(engine, metadata, "contacts")
    engine.dispose()


def identify(db, provider="telegram", **sender):
    sender = {"id": "412345678", "username": None, "name": None, "phone": None, **sender}
    with db.transaction() as tx:
        return messages.identify_sender(tx, {"provider": provider, "account": "shop",
                                             "sender": sender}, "RU")


def card(db, contact_id):
    with db.connect() as conn:
        return logic.load_card(conn, contact_id)


def created_events(db):
    with db.connect() as conn:
        return [json.loads(r.payload) for r in conn.execute(
            sa.select(outbox).where(outbox.c.event_type == "contact_created"))]


def test_a_sender_with_a_phone_lands_on_the_card_of_that_phone(db):
    with db.transaction() as tx:
        existing = logic.create_contact(tx, {"name": "Анна", "phones": ["+7 916 123-45-67"]})
    found = identify(db, provider="whatsapp", id="79161234567", phone="+79161234567")
    assert found == {"contact_id": existing["id"], "created": False}


def test_an_unknown_whatsapp_number_gets_a_card_with_the_messenger_as_its_source(db):
    made = identify(db, provider="whatsapp", id="79161234567", phone="+79161234567",
                    name="Test Name")
    assert made["created"] is True
    new = card(db, made["contact_id"])
    assert [p["e164"] for p in new["phones"]] == ["+79161234567"] and new["name"] == "Test Name"
    assert (new["source"]["channel"], new["source"]["connector"], new["source"]["form"]) == (
        "messenger", "whatsapp", "shop")
    [event] = created_events(db)
    assert event["contact"]["id"] == made["contact_id"]


def test_a_telegram_user_without_phone_gets_a_card_that_keeps_the_handle(db):
    made = identify(db, username="anna_s")
    new = card(db, made["contact_id"])
    assert (new["name"], new["custom_fields"], new["phones"]) == ("@anna_s", {"Telegram": "@anna_s"}, [])
    assert new["source"]["connector"] == "telegram"
    assert len(created_events(db)) == 1


def message_event(status, contact_id, direction="outbound", error=None):
    message = {"id": "m1", "conversation_id": "v1", "contact_id": contact_id,
               "provider": "telegram", "account": "shop", "direction": direction,
               "status": status, "text": "Доставка 500 ₽", "attachments": [],
               "provider_message_id": None, "idempotency_key": "k1", "author": "Olga",
               "error": error, "attempts": 0, "created_at": T0, "updated_at": T0}
    return instance(MessageEventSchema).load(new_event(MessageEventSchema, message=message,
                                                       conversation_title="Анна"))


def entries(db, contact_id):
    return [e for e in card(db, contact_id)["timeline"] if e["kind"] == "message"]


def test_one_entry_per_message_its_status_moving_forwards_in_any_order(db):
    contact_id = identify(db, username="anna_s")["contact_id"]
    for status in ("delivered", "queued", "sent", "read", "sent"):
        with db.transaction() as tx:
            messages.add_message_entry(tx, message_event(status, contact_id))
    [entry] = entries(db, contact_id)
    assert entry["title"] == "Telegram message to the client from Olga"
    assert (entry["data"]["status"], entry["data"]["text"], entry["data"]["chat"]) == (
        "read", "Доставка 500 ₽", "Анна")


def test_a_retried_delivery_shows_its_last_error_until_sent(db):
    contact_id = identify(db, username="anna_s")["contact_id"]
    for event in (message_event("queued", contact_id),
                  message_event("queued", contact_id, error="Telegram is not reachable")):
        with db.transaction() as tx:
            messages.add_message_entry(tx, event)
    assert entries(db, contact_id)[0]["data"]["error"] == "Telegram is not reachable"
    with db.transaction() as tx:
        messages.add_message_entry(tx, message_event("sent", contact_id))
    assert entries(db, contact_id)[0]["data"]["error"] is None


def test_a_message_of_a_merged_card_lands_on_the_surviving_card(db):
    source = identify(db, username="anna_s")["contact_id"]
    target = identify(db, provider="whatsapp", id="79161234567", phone="+79161234567")["contact_id"]
    with db.transaction() as tx:
        logic.merge_contacts(tx, source, target)
    with db.transaction() as tx:
        messages.add_message_entry(tx, message_event("received", source, direction="inbound"))
    [entry] = entries(db, target)
    assert entry["title"] == "Telegram message from the client"
