"""Telegram ``Update`` objects -> ``message_incoming`` events (PROTOCOLS.md §5.1).

Only messages in private chats become events: a bot added to a group hears the whole group,
and its members are not the bot's clients. Edits, callback queries, membership changes and
the like are acknowledged and dropped.
"""
from __future__ import annotations

import datetime as dt

from crmhub.contracts.base import new_event
from crmhub.contracts.messages import MessageIncomingSchema
from crmhub.plugins.api import BadPayload

# Message fields holding one file, with the kind we file them under.
FILE_FIELDS = ("document", "video", "audio", "voice", "sticker", "animation", "video_note")


def _text(value, field: str, limit: int = 300) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int)):
        raise BadPayload(f"{field} must be text")
    return str(value)[:limit]


def _obj(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise BadPayload(f"{field} must be an object")
    return value


def _attachment(kind: str, file: dict, cap: int, field: str) -> dict:
    file = _obj(file, field)
    if not file.get("file_id"):
        raise BadPayload(f"{field}.file_id is missing")
    size = file.get("file_size")
    size = int(size) if isinstance(size, int) and size >= 0 else None
    return {"kind": kind, "file_id": str(file["file_id"])[:300],
            "mime": _text(file.get("mime_type"), f"{field}.mime_type", 200),
            "size": size, "name": _text(file.get("file_name"), f"{field}.file_name", 500),
            "width": file.get("width") if isinstance(file.get("width"), int) else None,
            "height": file.get("height") if isinstance(file.get("height"), int) else None,
            "too_large": bool(size and size > cap)}


def attachments(message: dict, cap: int) -> list[dict]:
    found = []
    photo = message.get("photo")
    if photo is not None:
        if not isinstance(photo, list) or not photo:
            raise BadPayload("message.photo must be a non-empty list of sizes")
        # Telegram lists the sizes of one photo smallest first: keep the largest.
        found.append(_attachment("photo", photo[-1], cap, "message.photo[-1]"))
    for field in FILE_FIELDS:
        if message.get(field) is not None:
            found.append(_attachment(field, message[field], cap, f"message.{field}"))
    return found


def own_phone(message: dict, sender_id: str) -> str | None:
    """The phone of a contact the sender shared, if it is their own (a "share my phone"
    button sends it with the sender's user_id): someone else's contact names someone else."""
    contact = message.get("contact")
    if contact is None:
        return None
    contact = _obj(contact, "message.contact")
    if str(contact.get("user_id") or "") != sender_id:
        return None
    return _text(contact.get("phone_number"), "message.contact.phone_number", 64)


def message_text(message: dict) -> str | None:
    text = message.get("text", message.get("caption"))
    if text is not None and not isinstance(text, str):
        raise BadPayload("message.text must be text")
    contact = message.get("contact")
    if text is None and isinstance(contact, dict):
        who = " ".join(str(contact.get(k)) for k in ("first_name", "last_name") if contact.get(k))
        text = f"Shared a contact: {who} {contact.get('phone_number') or ''}".strip()
    return text


def parse_update(bot: str, update, cap: int) -> dict | None:
    """The ``message_incoming`` event of an update, or None for an update with nothing a
    manager should see. BadPayload for a body that is no Telegram update."""
    update = _obj(update, "the update")
    update_id = update.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool):
        raise BadPayload("update_id must be an integer")
    message = update.get("message")
    if message is None:
        return None
    message = _obj(message, "message")
    chat = _obj(message.get("chat"), "message.chat")
    sender = _obj(message.get("from"), "message.from")
    if chat.get("type") != "private" or sender.get("is_bot"):
        return None
    for field, value in (("message.message_id", message.get("message_id")),
                         ("message.date", message.get("date")), ("message.chat.id", chat.get("id")),
                         ("message.from.id", sender.get("id"))):
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadPayload(f"{field} must be an integer")
    sender_id = str(sender["id"])
    name = " ".join(str(sender[k]) for k in ("first_name", "last_name") if sender.get(k)) or None
    return new_event(
        MessageIncomingSchema,
        idempotency_key=f"telegram:{bot}:{update_id}",
        provider="telegram", account=bot, chat_id=str(chat["id"]),
        provider_message_id=str(message["message_id"]),
        sender={"id": sender_id, "username": _text(sender.get("username"), "from.username", 200),
                "name": name and name[:300], "phone": own_phone(message, sender_id)},
        text=message_text(message), attachments=attachments(message, cap),
        sent_at=dt.datetime.fromtimestamp(message["date"], dt.timezone.utc))
