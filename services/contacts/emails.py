"""Emails on client cards: one timeline entry per email sent or received and per bounce; the
sender of an email from an unknown address gets a card (source channel "email"), so lead rules
open a deal for them."""
from __future__ import annotations

from crmhub.contracts.errors import NotFound
from crmhub.services.contacts.logic import (
    add_timeline_entry,
    find_ids_by_emails,
    resolve_id,
    upsert_by_identity,
)


def _card(tx, contact_id: str | None, address: str | None) -> str | None:
    """The card an email belongs to: the one it names (or the card it was merged into), else
    the card of its address."""
    if contact_id:
        try:
            return resolve_id(tx.conn, contact_id)
        except NotFound:
            pass
    ids = find_ids_by_emails(tx.conn, [address])
    return ids[0] if ids else None


def _sent_data(email: dict) -> dict:
    return {"email_id": email["id"], "direction": "out", "to": email["to_addr"],
            "subject": email["subject"], "status": email["status"],
            "thread_id": email["thread_id"], "campaign_id": email.get("campaign_id"),
            "bounce_reason": email.get("bounce_reason")}


def add_sent_entry(tx, event: dict) -> dict | None:
    email = event["email"]
    contact_id = _card(tx, email.get("contact_id"), email["to_addr"])
    if contact_id is None:
        return None
    return add_timeline_entry(tx, contact_id, "email", f"Email sent: {email['subject']}",
                              f"email:{email['id']}", occurred_at=email.get("sent_at"),
                              data=_sent_data(email))


def add_bounce_entry(tx, event: dict) -> dict | None:
    email = event["email"]
    contact_id = _card(tx, email.get("contact_id"), email["to_addr"])
    if contact_id is None:
        return None
    return add_timeline_entry(
        tx, contact_id, "email_bounced",
        f"Email to {email['to_addr']} bounced: {email.get('bounce_reason') or 'undeliverable'}",
        f"email-bounce:{email['id']}", occurred_at=email.get("bounced_at"), data=_sent_data(email))


def add_received_entry(tx, event: dict, region: str) -> dict | None:
    """The client's email on their card; an unknown sender gets a new card first."""
    email = event["email"]
    address = email.get("from_addr")
    if not address:
        return None
    contact_id = _card(tx, None, address)
    if contact_id is None:
        source = {"channel": "email", "connector": "email", "form": email["mailbox"],
                  "tracking": {}}
        contact_id, _ = upsert_by_identity(tx, email.get("from_name") or address, None, [],
                                           [address], source, region, f"email:{email['id']}")
    return add_timeline_entry(
        tx, contact_id, "email", f"Email received: {email.get('subject') or '(no subject)'}",
        f"email-in:{email['id']}", occurred_at=email["received_at"],
        data={"email_id": email["id"], "direction": "in", "from": address,
              "subject": email.get("subject"), "snippet": email.get("snippet"),
              "thread_id": email["thread_id"], "mailbox": email["mailbox"],
              "attachments": len(email.get("attachments") or []),
              "problems": email.get("problems") or []})
