"""Threads: an email joins the thread of the message it answers.

The parent is looked up by In-Reply-To, then by References from the nearest (last) to the
root, among our sent emails and the received ones (including the same batch, in order); an
email that answers nothing we know starts a thread of its own.
"""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.runtime.db import as_utc
from crmhub.services.email.models import outgoing_emails, received_emails

LOOKUP_CHUNK = 500


def parents(message: dict) -> list[str]:
    """Message-IDs this message may answer, nearest first."""
    ids = [message["in_reply_to"]] if message.get("in_reply_to") else []
    ids += list(reversed(message.get("references") or []))
    return list(dict.fromkeys(ids))


def known_threads(conn, message_ids) -> dict[str, str]:
    """{Message-ID: thread id} of the messages we have, sent or received."""
    ids = sorted({m for m in message_ids if m})
    found: dict[str, str] = {}
    for start in range(0, len(ids), LOOKUP_CHUNK):
        chunk = ids[start:start + LOOKUP_CHUNK]
        for table in (outgoing_emails, received_emails):
            rows = conn.execute(sa.select(table.c.message_id, table.c.thread_id)
                                .where(table.c.message_id.in_(chunk)))
            found.update({r.message_id: r.thread_id for r in rows})
    return found


def assign_threads(conn, messages: list[dict]) -> None:
    """Set ``thread_id`` on each message dict (keys id, message_id, in_reply_to, references),
    in order: a reply later in the batch finds its parent earlier in it."""
    wanted = {m["message_id"] for m in messages}
    for message in messages:
        wanted.update(parents(message))
    threads = known_threads(conn, wanted)
    for message in messages:
        thread = next((threads[p] for p in parents(message) if p in threads), None)
        message["thread_id"] = thread or threads.get(message["message_id"]) or message["id"]
        if message["message_id"]:
            threads.setdefault(message["message_id"], message["thread_id"])


def thread_of(conn, message_id: str | None) -> str | None:
    if not message_id:
        return None
    return known_threads(conn, [message_id]).get(message_id)


# -- a client's threads ---------------------------------------------------------------------------

MESSAGES_READ = 500


def _outgoing_message(row) -> dict:
    return {"id": row.id, "direction": "out", "from_addr": row.from_addr,
            "to_addrs": [row.to_addr], "subject": row.subject, "text_body": row.text_body,
            "at": as_utc(row.sent_at or row.created_at), "message_id": row.message_id,
            "status": row.status, "last_error": row.last_error,
            "bounce_reason": row.bounce_reason, "attachments": [], "problems": [],
            "thread_id": row.thread_id}


def _received_message(row) -> dict:
    return {"id": row.id, "direction": "in", "from_addr": row.from_addr,
            "to_addrs": row.to_addrs, "subject": row.subject, "text_body": row.text_body,
            "at": as_utc(row.received_at), "message_id": row.message_id, "status": None,
            "last_error": None, "bounce_reason": None, "attachments": row.attachments,
            "problems": row.problems, "thread_id": row.thread_id}


def list_threads(conn, addresses: list[str], contact_id: str | None, limit: int) -> list[dict]:
    """The threads of a client (their card id and email addresses), newest first."""
    addresses = [a.lower() for a in addresses]
    mine = outgoing_emails.c.to_addr.in_(addresses) if addresses else sa.false()
    if contact_id:
        mine = sa.or_(mine, outgoing_emails.c.contact_id == contact_id)
    sent = conn.execute(sa.select(outgoing_emails).where(mine)
                        .order_by(outgoing_emails.c.created_at.desc()).limit(MESSAGES_READ))
    received = conn.execute(
        sa.select(received_emails)
        .where(received_emails.c.from_addr.in_(addresses) if addresses else sa.false(),
               received_emails.c.kind == "message")
        .order_by(received_emails.c.received_at.desc()).limit(MESSAGES_READ))
    grouped: dict[str, list[dict]] = {}
    for message in [*map(_outgoing_message, sent), *map(_received_message, received)]:
        grouped.setdefault(message.pop("thread_id"), []).append(message)
    found = []
    for thread_id, messages in grouped.items():
        messages.sort(key=lambda m: m["at"])
        found.append({"thread_id": thread_id, "subject": messages[0]["subject"],
                      "last_at": messages[-1]["at"], "messages": messages})
    found.sort(key=lambda t: t["last_at"], reverse=True)
    return found[:limit]
