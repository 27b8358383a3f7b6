"""Outgoing emails: queueing (the contract other modules build on) and delivery.

Queueing writes ``outgoing_emails`` rows (status ``queued``) and, in the same transaction
(outbox), an ``emails_queued`` event naming them: one event per email for ``queue_email``, one
per chunk of up to ``CHUNK`` rows for ``queue_emails`` (a campaign queues 100k rows as a few
dozen multi-row INSERTs and events). The email service's sender handles each event at once and
sends its rows through SMTP; there is no pacing here: a caller that wants a rate (campaigns)
paces its own queuing.

Delivery is at most once per row: a row is switched ``queued -> sending`` in its own committed
transaction before the SMTP conversation, so a redelivered event skips what was sent (``sent``)
or is being sent. An SMTP outage puts the row back to ``queued`` and raises: the event is
retried with backoff and then parked in the dead-letter queue, and replaying it later sends what
is still queued, once. A refusal no retry can fix (5xx) marks the row ``failed``. A process
killed in mid-conversation leaves its row ``sending``: shown as such, never sent again blind.
"""
from __future__ import annotations

import sqlalchemy as sa
import structlog

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, new_event
from crmhub.contracts.email import EmailSentSchema, EmailsQueuedSchema, OutgoingEmailSchema
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, insert_new_rows, new_id, utcnow
from crmhub.services.email.models import outgoing_emails

log = structlog.get_logger(__name__)

# Rows per INSERT and per emails_queued event: SQLite binds at most 32,766 values a statement.
CHUNK = 1000
DEFAULT_DOMAIN = "crmhub.local"
OPTIONAL = ("contact_id", "campaign_id", "html_body", "from_addr", "in_reply_to", "thread_id",
            "template", "requested_by")


def message_id_for(email_id: str, from_addr: str | None) -> str:
    """Our Message-ID for an outgoing email, on the sender's domain."""
    domain = (from_addr or "").rpartition("@")[2].strip("> ") or DEFAULT_DOMAIN
    return f"<{email_id}@{domain}>"


def _row(values: dict) -> dict:
    email_id = new_id()
    row = {key: values.get(key) for key in OPTIONAL}
    row.update(
        id=email_id, idempotency_key=values["idempotency_key"][:200],
        to_addr=values["to_addr"], subject=values["subject"][:998],
        text_body=values["text_body"], headers=dict(values.get("headers") or {}),
        message_id=message_id_for(email_id, values.get("from_addr")),
        status="queued", attempts=0, created_at=utcnow())
    row["thread_id"] = row["thread_id"] or email_id
    return row


def queue_email(tx, *, to_addr, subject, text_body, html_body=None, idempotency_key,
                contact_id=None, campaign_id=None, headers=None, request_id=None,
                **extra) -> dict:
    """Queue one email; the same ``idempotency_key`` again returns the row queued first and
    sends nothing more. ``extra``: from_addr, in_reply_to, thread_id, template, requested_by."""
    row = _row({"to_addr": to_addr, "subject": subject, "text_body": text_body,
                "html_body": html_body, "idempotency_key": idempotency_key,
                "contact_id": contact_id, "campaign_id": campaign_id, "headers": headers,
                **extra})
    inserted = insert_ignoring_conflicts(tx.conn, outgoing_emails, [row], ["idempotency_key"],
                                         returning=outgoing_emails.c.id)
    if inserted is None:
        return load_by_key(tx.conn, row["idempotency_key"])
    tx.emit(ev.EMAILS_QUEUED, new_event(EmailsQueuedSchema, email_ids=[row["id"]]),
            request_id=request_id)
    return row


def queue_emails(tx, rows: list[dict]) -> int:
    """Queue many emails (each dict takes ``queue_email``'s keyword arguments) with one INSERT
    and one emails_queued event per ``CHUNK``; returns how many were new."""
    queued = 0
    for start in range(0, len(rows), CHUNK):
        chunk = [_row(values) for values in rows[start:start + CHUNK]]
        ids = [r.id for r in insert_new_rows(tx.conn, outgoing_emails, chunk,
                                             ["idempotency_key"], outgoing_emails.c.id)]
        if ids:
            tx.emit(ev.EMAILS_QUEUED, new_event(EmailsQueuedSchema, email_ids=ids))
        queued += len(ids)
    return queued


def load_by_key(conn, idempotency_key: str) -> dict:
    row = conn.execute(sa.select(outgoing_emails)
                       .where(outgoing_emails.c.idempotency_key == idempotency_key[:200])).one()
    return _as_dict(row)


def load(conn, email_id: str) -> dict | None:
    row = conn.execute(sa.select(outgoing_emails).where(outgoing_emails.c.id == email_id)).first()
    return _as_dict(row) if row is not None else None


def _as_dict(row) -> dict:
    data = dict(row._mapping)
    for key in ("created_at", "sent_at", "bounced_at"):
        data[key] = as_utc(data[key])
    return data


# -- delivery ------------------------------------------------------------------------------------

def start_sending(tx, email_id: str) -> dict | None:
    """Take a queued row for delivery (committed before SMTP is spoken); None if it is not
    queued any more (sent, failed, or being sent by a redelivery of its event)."""
    taken = tx.execute(
        outgoing_emails.update()
        .where(outgoing_emails.c.id == email_id, outgoing_emails.c.status == "queued")
        .values(status="sending", attempts=outgoing_emails.c.attempts + 1)).rowcount
    return load(tx.conn, email_id) if taken else None


def mark_sent(tx, email: dict) -> dict:
    sent_at = utcnow()
    tx.execute(outgoing_emails.update().where(outgoing_emails.c.id == email["id"])
               .values(status="sent", sent_at=sent_at, last_error=None))
    email = {**email, "status": "sent", "sent_at": sent_at, "last_error": None}
    tx.emit(ev.EMAIL_SENT, new_event(EmailSentSchema, email=summary(email)))
    return email


def mark_unsent(tx, email_id: str, error: str, *, permanent: bool) -> None:
    """The server refused (``permanent``: status failed) or could not be reached (back to
    queued, for the retry of its event)."""
    tx.execute(outgoing_emails.update().where(outgoing_emails.c.id == email_id)
               .values(status="failed" if permanent else "queued", last_error=error[:2000]))


def summary(email: dict) -> dict:
    """The row's fields of :class:`OutgoingEmailSchema` (bodies and headers left out)."""
    return {key: email.get(key) for key in OutgoingEmailSchema._declared_fields}


def public(email: dict) -> dict:
    """The row dumped as :class:`OutgoingEmailSchema`, for an RPC answer."""
    return instance(OutgoingEmailSchema).dump(summary(email))
