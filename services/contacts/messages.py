"""Messenger conversations on client cards: who wrote (a new card for an unknown sender) and
one timeline entry per message, whose delivery status follows the message."""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.contacts import ContactCreatedSchema
from crmhub.contracts.errors import NotFound
from crmhub.contracts.messages import STATUS_RANK
from crmhub.contracts.phones import normalize
from crmhub.services.contacts.logic import (
    _insert_contact,
    add_timeline_entry,
    resolve_id,
    upsert_by_identity,
)
from crmhub.services.contacts.models import timeline

PROVIDER_NAMES = {"telegram": "Telegram", "whatsapp": "WhatsApp"}


def identify_sender(tx, request: dict, region: str) -> dict:
    """The card of a messenger sender. With a phone (WhatsApp's wa_id, a contact shared in
    Telegram) it is the card of that phone, made if none has it; without, a new card that
    keeps the messenger identity as a field. Either way a new card's source is the messenger
    (channel "messenger", the connector, the bot or number as "form"), so lead rules apply."""
    sender, provider = request["sender"], request["provider"]
    source = {"channel": "messenger", "connector": provider, "form": request["account"],
              "tracking": {}}
    cause = f"messenger:{provider}:{request['account']}:{sender['id']}"
    phone = sender.get("phone")
    if phone and normalize(phone, region).e164:
        contact_id, created = upsert_by_identity(tx, sender.get("name"), None, [phone], [],
                                                 source, region, cause)
        return {"contact_id": contact_id, "created": created}
    handle = f"@{sender['username']}" if sender.get("username") else f"id {sender['id']}"
    data = {"kind": "person", "name": sender.get("name") or handle, "source": source,
            "custom_fields": {PROVIDER_NAMES.get(provider, provider): handle}}
    contact_id, contact, _, _ = _insert_contact(tx, data, region)
    tx.emit(ev.CONTACT_CREATED, new_event(ContactCreatedSchema, contact=contact, cause=cause))
    return {"contact_id": contact_id, "created": True}


def message_title(message: dict) -> str:
    provider = PROVIDER_NAMES.get(message["provider"], message["provider"])
    if message["direction"] == "inbound":
        return f"{provider} message from the client"
    return f"{provider} message to the client" + (
        f" from {message['author']}" if message.get("author") else "")


def message_entry_data(event: dict) -> dict:
    message = event["message"]
    return {"message_id": message["id"], "conversation_id": message["conversation_id"],
            "provider": message["provider"], "direction": message["direction"],
            "status": message["status"], "text": message.get("text"),
            "attachments": message.get("attachments") or [], "author": message.get("author"),
            "error": message.get("error"), "chat": event.get("conversation_title")}


def add_message_entry(tx, event: dict) -> dict | None:
    """One entry per message: written by whichever of its events comes first; later events
    move its status forwards only (they may arrive out of order)."""
    message = event["message"]
    try:
        contact_id = resolve_id(tx.conn, message["contact_id"] or "")
    except NotFound:
        return None  # the card is gone: nothing to write on
    source_key = f"message:{message['id']}"
    data = message_entry_data(event)
    entry = add_timeline_entry(tx, contact_id, "message", message_title(message), source_key,
                               occurred_at=message["created_at"], data=data)
    if entry is not None:
        return entry
    existing = tx.execute(sa.select(timeline.c.id, timeline.c.data)
                          .where(timeline.c.source_key == source_key)).first()
    old = existing.data or {}
    if STATUS_RANK[data["status"]] > STATUS_RANK.get(old.get("status"), 0):
        tx.execute(timeline.update().where(timeline.c.id == existing.id)
                   .values(data={**old, **data}))
    elif retry_note_changed(old, data):
        tx.execute(timeline.update().where(timeline.c.id == existing.id)
                   .values(data={**old, "error": data["error"]}))
    return None


def retry_note_changed(old: dict, new: dict) -> bool:
    """A still-queued message whose delivery attempt failed: the card shows the error."""
    return new["status"] == old.get("status") == "queued" and new.get("error") != old.get("error")
