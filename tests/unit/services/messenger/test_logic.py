"""The messenger's rules on both database backends: conversations made on a client's first
message, replies queued once per idempotency key, delivery statuses that only move forwards
(including those that beat our own record of the send)."""
import json

import pytest
import sqlalchemy as sa

from crmhub.contracts.base import instance
from crmhub.contracts.errors import InvalidInput
from crmhub.contracts.messages import MessageIncomingSchema, MessageStatusSchema
from crmhub.plugins.telegram import samples as telegram_samples
from crmhub.plugins.telegram.updates import parse_update
from crmhub.plugins.whatsapp import events as whatsapp_events
from crmhub.plugins.whatsapp import samples as whatsapp_samples
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.messenger import logic
from crmhub.services.messenger.models import metadata, outbox


@pytest.fixture
def db(migrated_database):
    engine = make_engine(migrated_database("messenger"), "messenger")
    yield ServiceDatabase(engine, metadata, "messenger")
    engine.dispose()


def published(db) -> list[tuple[str, dict]]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    return [(r.event_type, json.loads(r.payload)["message"]) for r in rows]


def telegram(update) -> dict:
    return instance(MessageIncomingSchema).load(parse_update("shop", update, 10**6))


def receive(db, event, contact_id="c1"):
    """As the handler does: the conversation locked, a new one linked to the card."""
    with db.transaction() as tx:
        conversation = logic.lock_conversation(tx, event)
        return logic.record_incoming(
            tx, event, {**conversation, "contact_id": conversation["contact_id"] or contact_id})


def send(db, contact_id="c1", key=None, **extra):
    with db.transaction() as tx:
        return logic.queue_outgoing(tx, {"contact_id": contact_id, "text": "Доставка 500 ₽",
                                         "idempotency_key": key, **extra}, "Olga")


def status(db, provider_message_id, word, error=None):
    _, event = whatsapp_events.parse(whatsapp_samples.body(statuses=[whatsapp_samples.delivery(
        word, provider_message_id, [{"code": 1, "title": error}] if error else None)]))[0]
    with db.transaction() as tx:
        return logic.apply_status(tx, instance(MessageStatusSchema).load(event))


def test_a_clients_messages_share_one_conversation_linked_to_the_card(db):
    first = receive(db, telegram(telegram_samples.TEXT))
    second = receive(db, telegram(telegram_samples.PHOTO), contact_id="ignored-now")
    assert first["conversation_id"] == second["conversation_id"]
    with db.connect() as conn:
        [conversation] = logic.conversations_of(conn, ["c1"])
    assert (conversation["provider"], conversation["chat_id"], conversation["title"]) == (
        "telegram", "412345678", "Анна Смирнова")
    assert [m["text"] for m in conversation["messages"]] == [
        "Здравствуйте! Сколько стоит доставка в Казань?", "Вот такой диван нужен"]
    assert conversation["messages"][1]["attachments"][0]["file_id"] == "AgACAgIAAxkBAAIBsmF-large"
    assert [kind for kind, _ in published(db)] == ["message_received", "message_received"]


def test_a_reply_goes_to_the_clients_latest_conversation_once_per_key(db):
    receive(db, telegram(telegram_samples.TEXT))
    message = send(db, key="reply-0001")
    again = send(db, key="reply-0001")
    assert again["id"] == message["id"] and message["status"] == "queued"
    assert (message["author"], message["provider"], message["account"]) == ("Olga", "telegram", "shop")
    assert [kind for kind, _ in published(db)] == ["message_received", "message_sent"]


def test_no_reply_to_a_client_who_never_wrote_or_to_anothers_conversation(db):
    with pytest.raises(InvalidInput, match="has not written to us"):
        send(db, contact_id="stranger")
    conversation_id = receive(db, telegram(telegram_samples.TEXT))["conversation_id"]
    with pytest.raises(InvalidInput, match="another card"):
        send(db, contact_id="stranger", conversation_id=conversation_id)
    with pytest.raises(InvalidInput, match="on whatsapp"):
        send(db, provider="whatsapp")


def test_a_status_racing_another_is_applied_on_top_of_it_not_dropped(db):
    """Meta sends "delivered" and "read" together; two workers take them. The one that loses
    the race finds the message moved and compares with where it is now."""
    receive(db, telegram(telegram_samples.TEXT))
    message = send(db)
    with db.transaction() as tx:
        logic.mark_sent(tx, message["id"], "wamid.A")
    with db.connect() as conn:
        seen_by_read_worker, conversation = logic.load_message(conn, message["id"])
    assert status(db, "wamid.A", "delivered")["status"] == "delivered"  # the other worker
    with db.transaction() as tx:
        read = logic._advance(tx, seen_by_read_worker, conversation, "read", None)
    assert read is not None and read["status"] == "read"
    with db.transaction() as tx:  # and a late one that lost the race still changes nothing
        assert logic._advance(tx, seen_by_read_worker, conversation, "delivered", None) is None
    assert [m["status"] for _, m in published(db)][-2:] == ["delivered", "read"]

def test_statuses_only_move_forwards_and_failure_keeps_its_reason(db):
    receive(db, telegram(telegram_samples.TEXT))
    message = send(db)
    with db.transaction() as tx:
        logic.mark_sent(tx, message["id"], "wamid.A")
    assert status(db, "wamid.A", "read")["status"] == "read"
    assert status(db, "wamid.A", "delivered") is None  # late: read stays
    other = send(db, key="reply-0002")
    with db.transaction() as tx:
        logic.mark_sent(tx, other["id"], "wamid.B")
    failed = status(db, "wamid.B", "failed", error="Message undeliverable")
    assert (failed["status"], failed["error"]) == ("failed", "1: Message undeliverable")
    statuses = [(m["provider_message_id"], m["status"]) for kind, m in published(db)
                if kind == "message_status_changed"]
    assert statuses == [("wamid.A", "sent"), ("wamid.A", "read"), ("wamid.B", "sent"),
                        ("wamid.B", "failed")]


def test_a_status_that_beats_the_send_record_applies_when_the_send_is_recorded(db):
    receive(db, telegram(telegram_samples.TEXT))
    message = send(db)
    assert status(db, "wamid.EARLY", "delivered") is None
    with db.transaction() as tx:
        done = logic.mark_sent(tx, message["id"], "wamid.EARLY")
    assert done["status"] == "delivered"
    assert status(db, "wamid.OTHER-SYSTEM", "read") is None  # kept aside, nothing changes


def test_an_outage_keeps_the_message_queued_with_its_error_and_attempts(db):
    receive(db, telegram(telegram_samples.TEXT))
    message = send(db)
    for _ in range(2):
        with db.transaction() as tx:
            assert logic.start_sending(tx, message["id"])
            logic.note_failed_attempt(tx, message["id"], "Telegram is not reachable")
    with db.connect() as conn:
        stored, _ = logic.load_message(conn, message["id"])
    assert (stored["status"], stored["attempts"], stored["error"]) == (
        "queued", 2, "Telegram is not reachable")
    with db.transaction() as tx:
        assert logic.start_sending(tx, message["id"])
    with db.transaction() as tx:  # a redelivery while it is being sent takes nothing
        assert not logic.start_sending(tx, message["id"])
    with db.transaction() as tx:
        sent = logic.mark_sent(tx, message["id"], "1001")
    assert (sent["status"], sent["error"], sent["attempts"]) == ("sent", None, 3)
    with db.transaction() as tx:
        assert logic.mark_sent(tx, message["id"], "1002") is None  # a redelivery changes nothing
