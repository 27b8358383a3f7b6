"""The messenger's rules as plain functions over a connection or transaction: conversations,
inbound messages, the outgoing queue and delivery statuses."""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.contracts.messages import STATUS_RANK, MessageEventSchema
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, new_id, utcnow
from crmhub.services.messenger.models import conversations, early_statuses, messages

LATEST_MESSAGES = 50


def _time_fields(row: dict) -> dict:
    for name in ("created_at", "updated_at", "last_message_at"):
        if name in row:
            row[name] = as_utc(row[name])
    return row


# -- conversations -----------------------------------------------------------------------------

def load_conversation(conn, conversation_id: str) -> dict:
    row = conn.execute(sa.select(conversations).where(
        conversations.c.id == conversation_id)).mappings().first()
    if row is None:
        raise NotFound(f"no conversation {conversation_id!r}")
    return _time_fields(dict(row))


def sender_title(sender: dict) -> str | None:
    if sender.get("name"):
        return sender["name"][:300]
    return f"@{sender['username']}" if sender.get("username") else sender.get("phone")


def _new_conversation(event: dict, now) -> dict:
    return {"id": new_id(), "provider": event["provider"], "account": event["account"],
            "chat_id": event["chat_id"], "contact_id": None,
            "title": sender_title(event["sender"]), "created_at": now, "last_message_at": now}


def lock_conversation(tx, event: dict) -> dict:
    """The conversation of an incoming message, made if new, its row locked until the
    transaction ends (PostgreSQL; SQLite has one writer anyway): the first messages of a new
    client, handled at once, wait here for one card instead of making one each."""
    query = sa.select(conversations).where(
        conversations.c.provider == event["provider"], conversations.c.account == event["account"],
        conversations.c.chat_id == event["chat_id"]).with_for_update()
    row = tx.execute(query).mappings().first()
    if row is None:  # a new chat: made once, whoever else is making it meanwhile
        insert_ignoring_conflicts(tx.conn, conversations, [_new_conversation(event, utcnow())],
                                  ["provider", "account", "chat_id"])
        row = tx.execute(query).mappings().one()
    return _time_fields(dict(row))


def refresh_conversation(tx, conversation: dict, event: dict) -> dict:
    """A new message: the conversation's latest time, the sender's current name (a renamed
    user) and the card it may have lacked."""
    changes = {"last_message_at": utcnow(), "contact_id": conversation["contact_id"]}
    title = sender_title(event["sender"])
    if title:
        changes["title"] = title
    tx.execute(conversations.update().where(conversations.c.id == conversation["id"])
               .values(**changes))
    return {**conversation, **changes}


def conversations_of(conn, contact_ids: list[str], latest: int = LATEST_MESSAGES) -> list[dict]:
    """The conversations of a card (and of the cards merged into it), newest first, each with
    its ``latest`` messages oldest first."""
    rows = conn.execute(sa.select(conversations)
                        .where(conversations.c.contact_id.in_(contact_ids))
                        .order_by(conversations.c.last_message_at.desc())).mappings().all()
    found = []
    for row in rows:
        conversation = _time_fields(dict(row))
        recent = conn.execute(sa.select(messages)
                              .where(messages.c.conversation_id == conversation["id"])
                              .order_by(messages.c.created_at.desc(), messages.c.id)
                              .limit(latest)).mappings().all() if latest else []
        conversation["messages"] = [_message(r, conversation) for r in reversed(recent)]
        found.append(conversation)
    return found


# -- messages ----------------------------------------------------------------------------------

def _message(row, conversation: dict) -> dict:
    message = _time_fields(dict(row))
    message.update(contact_id=conversation["contact_id"], provider=conversation["provider"],
                   account=conversation["account"])
    return message


def load_message(conn, message_id: str) -> tuple[dict, dict]:
    """(message, its conversation)."""
    row = conn.execute(sa.select(messages).where(messages.c.id == message_id)).mappings().first()
    if row is None:
        raise NotFound(f"no message {message_id!r}")
    conversation = load_conversation(conn, row["conversation_id"])
    return _message(row, conversation), conversation


def _emit(tx, event_type: str, message: dict, conversation: dict) -> None:
    tx.emit(event_type, new_event(MessageEventSchema, message=message,
                                  conversation_title=conversation.get("title")))


def record_incoming(tx, event: dict, conversation: dict) -> dict:
    """Store a client's message in its conversation (from ``lock_conversation``, with the
    card to link) and announce it (message_received). Messages are ordered by arrival:
    messengers stamp them to the second only."""
    conversation = refresh_conversation(tx, conversation, event)
    now = utcnow()
    row = {"id": new_id(), "conversation_id": conversation["id"], "direction": "inbound",
           "status": "received", "text": event.get("text"),
           "attachments": event.get("attachments") or [],
           "provider_message_id": event["provider_message_id"], "idempotency_key": None,
           "author": None, "error": None, "attempts": 0, "created_at": now, "updated_at": now}
    tx.execute(messages.insert().values(**row))
    message = _message(row, conversation)
    _emit(tx, ev.MESSAGE_RECEIVED, message, conversation)
    return message


def _pick_conversation(conn, request: dict) -> dict:
    ids = [request["contact_id"], *request.get("contact_ids", [])]
    if request.get("conversation_id"):
        conversation = load_conversation(conn, request["conversation_id"])
        if conversation["contact_id"] not in ids:
            raise InvalidInput("conversation_id: not a conversation of this card",
                               {"conversation_id": ["belongs to another card"]})
        return conversation
    query = sa.select(conversations).where(conversations.c.contact_id.in_(ids))
    if request.get("provider"):
        query = query.where(conversations.c.provider == request["provider"])
    row = conn.execute(query.order_by(conversations.c.last_message_at.desc())).mappings().first()
    if row is None:
        via = f" on {request['provider']}" if request.get("provider") else ""
        raise InvalidInput(f"this client has not written to us{via} yet: a messenger lets a "
                           "business answer, not start, a conversation",
                           {"conversation_id": ["no conversation with this client"]})
    return _time_fields(dict(row))


def queue_outgoing(tx, request: dict, author: str | None) -> dict:
    """Store a manager's message as queued and announce it (message_sent): the delivery
    handler takes it from there. A key already used returns that message, sent once."""
    key = request.get("idempotency_key") or new_id()
    existing = tx.execute(sa.select(messages.c.id).where(messages.c.idempotency_key == key)).first()
    if existing:
        return load_message(tx.conn, existing.id)[0]
    conversation = _pick_conversation(tx.conn, request)
    now = utcnow()
    row = {"id": new_id(), "conversation_id": conversation["id"], "direction": "outbound",
           "status": "queued", "text": request["text"], "attachments": [],
           "provider_message_id": None, "idempotency_key": key, "author": author, "error": None,
           "attempts": 0, "created_at": now, "updated_at": now}
    if not insert_ignoring_conflicts(tx.conn, messages, [row], ["idempotency_key"]):
        # The same key, sent twice at once: the other request's message is the one.
        return load_message(tx.conn, tx.execute(sa.select(messages.c.id).where(
            messages.c.idempotency_key == key)).scalar_one())[0]
    tx.execute(conversations.update().where(conversations.c.id == conversation["id"])
               .values(last_message_at=now))
    message = _message(row, conversation)
    _emit(tx, ev.MESSAGE_SENT, message, conversation)
    return message


def start_sending(tx, message_id: str) -> bool:
    """Take a queued message for delivery, committed before the messenger is called: a
    redelivered or concurrent delivery of the same message then finds it taken and sends
    nothing. A process that dies mid-call leaves it ``sending``, shown so, never resent blind."""
    return bool(tx.execute(messages.update().where(
        messages.c.id == message_id, messages.c.status == "queued").values(
        status="sending", updated_at=utcnow())).rowcount)


def note_failed_attempt(tx, message_id: str, error: str) -> None:
    """A delivery attempt met an outage: the message is queued again for the retry and the
    card shows the error meanwhile."""
    changed = tx.execute(messages.update().where(
        messages.c.id == message_id, messages.c.status == "sending").values(
        status="queued", error=error[:2000], attempts=messages.c.attempts + 1,
        updated_at=utcnow()))
    if changed.rowcount:
        message, conversation = load_message(tx.conn, message_id)
        _emit(tx, ev.MESSAGE_STATUS_CHANGED, message, conversation)


def _advance(tx, message: dict, conversation: dict, status: str, error: str | None,
             **extra) -> dict | None:
    """Move ``message`` to ``status`` if that is further along; None if it is not."""
    values = {"status": status, "error": error if status == "failed" else None,
              "updated_at": utcnow(), **extra}
    while STATUS_RANK[status] > STATUS_RANK[message["status"]]:
        changed = tx.execute(messages.update().where(
            messages.c.id == message["id"], messages.c.status == message["status"]).values(**values))
        if changed.rowcount:
            message = {**message, **values}
            _emit(tx, ev.MESSAGE_STATUS_CHANGED, message, conversation)
            return message
        # Another worker moved it meanwhile (a "delivered" and a "read" arriving together):
        # compare with where it is now rather than drop this status.
        message, conversation = load_message(tx.conn, message["id"])
    return None


def mark_sent(tx, message_id: str, provider_message_id: str) -> dict | None:
    """The messenger took the message; statuses that beat us to it apply now."""
    message, conversation = load_message(tx.conn, message_id)
    attempts = message["attempts"] + 1
    sent = _advance(tx, message, conversation, "sent", None,
                    provider_message_id=provider_message_id, attempts=attempts)
    if sent is None:
        return None
    early = tx.execute(sa.select(early_statuses).where(
        early_statuses.c.provider_message_id == provider_message_id)).all()
    for row in sorted(early, key=lambda r: STATUS_RANK[r.status]):
        sent = _advance(tx, sent, conversation, row.status, row.error) or sent
    if early:
        tx.execute(early_statuses.delete().where(
            early_statuses.c.provider_message_id == provider_message_id))
    return sent


def mark_failed(tx, message_id: str, error: str) -> dict | None:
    """The messenger refused the message for good (a blocked bot, an unknown chat)."""
    message, conversation = load_message(tx.conn, message_id)
    return _advance(tx, message, conversation, "failed", error[:2000],
                    attempts=message["attempts"] + 1)


def apply_status(tx, event: dict) -> dict | None:
    """A delivery status from the messenger. One about a message not (yet) known is kept
    aside: ours is applied when its send is recorded; another system's stays unused."""
    row = tx.execute(sa.select(messages.c.id).where(
        messages.c.provider_message_id == event["provider_message_id"],
        messages.c.direction == "outbound")).first()
    if row is None:
        insert_ignoring_conflicts(tx.conn, early_statuses, [{
            "provider_message_id": event["provider_message_id"], "status": event["status"],
            "error": event.get("error"), "at": event["at"]}])
        return None
    message, conversation = load_message(tx.conn, row.id)
    return _advance(tx, message, conversation, event["status"], event.get("error"))
