"""WhatsApp Cloud API webhook bodies -> ``message_incoming`` and ``message_status`` events
(PROTOCOLS.md §5.2).

One body may carry several changes, each with messages from clients and statuses of our
messages. Media arrive as ids (downloaded through the Graph API if ever needed) without a
size; kinds the hub cannot show are kept as a line of text, so the manager still sees that
the client wrote.
"""
from __future__ import annotations

import datetime as dt

from crmhub.contracts.base import new_event
from crmhub.contracts.messages import MessageIncomingSchema, MessageStatusSchema
from crmhub.plugins.api import BadPayload

MEDIA_KINDS = {"image": "image", "video": "video", "audio": "audio", "document": "document",
               "sticker": "sticker"}
# "played" is a voice message listened to: as far as the manager is concerned, read.
STATUS_WORDS = {"sent": "sent", "delivered": "delivered", "read": "read", "played": "read",
                "failed": "failed"}


def _obj(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise BadPayload(f"{field} must be an object")
    return value


def _list(value, field: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadPayload(f"{field} must be a list")
    return value


def _time(value, field: str) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(value), dt.timezone.utc)
    except (TypeError, ValueError, OverflowError):
        raise BadPayload(f"{field} must be a Unix time") from None


def _id(value, field: str) -> str:
    if not isinstance(value, (str, int)) or not str(value).strip():
        raise BadPayload(f"{field} is missing")
    return str(value)[:200]


def changes(body) -> list[dict]:
    """The ``value`` of every ``messages`` change of a webhook body."""
    body = _obj(body, "the body")
    if body.get("object") != "whatsapp_business_account":
        raise BadPayload("object must be whatsapp_business_account")
    values = []
    for e, entry in enumerate(_list(body.get("entry"), "entry")):
        for c, change in enumerate(_list(_obj(entry, f"entry[{e}]").get("changes"),
                                         f"entry[{e}].changes")):
            change = _obj(change, f"entry[{e}].changes[{c}]")
            if change.get("field") == "messages":
                values.append(_obj(change.get("value"), f"entry[{e}].changes[{c}].value"))
    return values


def _content(message: dict) -> tuple[str | None, list[dict]]:
    kind = message.get("type")
    if kind == "text":
        return _obj(message.get("text"), "text").get("body"), []
    if kind in MEDIA_KINDS:
        media = _obj(message.get(kind), kind)
        attachment = {"kind": "voice" if kind == "audio" and media.get("voice") else MEDIA_KINDS[kind],
                      "file_id": _id(media.get("id"), f"{kind}.id"),
                      "mime": media.get("mime_type"), "size": None,
                      "name": media.get("filename")}
        return media.get("caption"), [attachment]
    if kind == "contacts":
        cards = []
        for card in _list(message.get("contacts"), "contacts"):
            name = (card.get("name") or {}).get("formatted_name") or ""
            phones = ", ".join(p.get("phone", "") for p in card.get("phones") or [])
            cards.append(f"{name} {phones}".strip())
        return "Shared contacts: " + "; ".join(cards), []
    if kind == "location":
        place = _obj(message.get("location"), "location")
        where = ", ".join(str(place[k]) for k in ("name", "address") if place.get(k))
        return f"Location: {place.get('latitude')}, {place.get('longitude')} {where}".strip(), []
    if kind == "reaction":
        emoji = (message.get("reaction") or {}).get("emoji")
        return (f"Reacted {emoji}" if emoji else "Removed a reaction"), []
    if kind == "button":
        return (message.get("button") or {}).get("text"), []
    if kind == "interactive":
        reply = message.get("interactive") or {}
        chosen = reply.get("button_reply") or reply.get("list_reply") or {}
        return chosen.get("title") or "Answered an interactive message", []
    return f"(a {kind or 'unknown'} message the hub cannot show)", []


def incoming(account: str, message: dict, names: dict[str, str]) -> dict:
    sender = _id(message.get("from"), "messages[].from")
    message_id = _id(message.get("id"), "messages[].id")
    text, attachments = _content(message)
    if text is not None and not isinstance(text, str):
        raise BadPayload("the message text must be text")
    return new_event(
        MessageIncomingSchema, idempotency_key=f"whatsapp:{account}:{message_id}",
        provider="whatsapp", account=account, chat_id=sender, provider_message_id=message_id,
        sender={"id": sender, "username": None, "name": names.get(sender),
                "phone": "+" + sender if sender.isdigit() else None},
        text=text, attachments=attachments,
        sent_at=_time(message.get("timestamp"), "messages[].timestamp"))


def status(account: str, item: dict) -> dict | None:
    word = STATUS_WORDS.get(item.get("status"))
    if word is None:
        return None  # a status this hub does not track (e.g. "deleted")
    message_id = _id(item.get("id"), "statuses[].id")
    errors = _list(item.get("errors"), "statuses[].errors")
    error = None
    if errors:
        first = _obj(errors[0], "statuses[].errors[0]")
        details = (first.get("error_data") or {}).get("details")
        error = f"{first.get('code')}: {first.get('title') or first.get('message')}" + (
            f" ({details})" if details else "")
    return new_event(
        MessageStatusSchema, idempotency_key=f"whatsapp:{account}:{message_id}:{item['status']}",
        provider="whatsapp", account=account, provider_message_id=message_id, status=word,
        error=error and error[:2000], at=_time(item.get("timestamp"), "statuses[].timestamp"))


def parse(body) -> list[tuple[str, dict]]:
    """Every event of a webhook body, in its order."""
    events = []
    for value in changes(body):
        account = _id(_obj(value.get("metadata"), "metadata").get("phone_number_id"),
                      "metadata.phone_number_id")
        names = {str(c.get("wa_id")): (c.get("profile") or {}).get("name")
                 for c in _list(value.get("contacts"), "contacts") if isinstance(c, dict)}
        for message in _list(value.get("messages"), "messages"):
            events.append(("message_incoming", incoming(account, _obj(message, "messages[]"), names)))
        for item in _list(value.get("statuses"), "statuses"):
            event = status(account, _obj(item, "statuses[]"))
            if event is not None:
                events.append(("message_status", event))
    return events
