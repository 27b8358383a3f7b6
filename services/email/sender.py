"""Composing an email from a card, and delivering queued emails through SMTP."""
from __future__ import annotations

import structlog

from crmhub.contracts.errors import InvalidInput
from crmhub.services.email import outgoing, templates, threads
from crmhub.services.email.metrics import EMAILS_SENT
from crmhub.services.email.smtp import SmtpRefused, SmtpUnavailable, build_message

log = structlog.get_logger(__name__)


def compose(conn, card: dict, request: dict) -> dict:
    """Subject and bodies of an email to the card's client, rendered from the named template
    or the request's own subject and body (both are templates)."""
    if request["template"]:
        parts = templates.get(conn, request["template"])
    elif request["subject"] and request["text_body"]:
        parts = {"subject": request["subject"], "text_body": request["text_body"],
                 "html_body": request["html_body"]}
    else:
        raise InvalidInput("give a template, or a subject and a text_body",
                           {"template": ["required without subject and text_body"]})
    to_addr = request["to"] or (card.get("emails") or [None])[0]
    if not to_addr:
        raise InvalidInput("to: the card has no email address; give one",
                           {"to": ["the card has no email address"]})
    rendered = templates.render(parts, templates.card_context(card, request["variables"]))
    if not rendered["subject"] or not (rendered["text_body"] or "").strip():
        raise InvalidInput("the rendered subject or text body is empty",
                           {"subject": ["empty after rendering"]})
    return {**rendered, "to_addr": to_addr.lower(),
            "thread_id": threads.thread_of(conn, request["in_reply_to"]),
            "template": request["template"]}


def deliver(db, mailer, email_ids: list[str]) -> dict:
    """Send the queued emails among ``email_ids`` on one SMTP connection. Raises
    SmtpUnavailable (after putting the email back in the queue) for the event to be retried."""
    counts = {"sent": 0, "failed": 0, "skipped": 0}
    with mailer.session() as smtp:
        for email_id in email_ids:
            with db.transaction() as tx:
                email = outgoing.start_sending(tx, email_id)
            if email is None:
                counts["skipped"] += 1  # sent already, failed for good, or being sent
                continue
            try:
                smtp.send(build_message(email, mailer.from_addr))
            except SmtpRefused as exc:
                with db.transaction() as tx:
                    outgoing.mark_unsent(tx, email_id, str(exc), permanent=True)
                EMAILS_SENT.labels("refused").inc()
                counts["failed"] += 1
                log.warning("SMTP refused an email", email_id=email_id, error=str(exc))
                continue
            except SmtpUnavailable as exc:
                with db.transaction() as tx:
                    outgoing.mark_unsent(tx, email_id, str(exc), permanent=False)
                EMAILS_SENT.labels("unavailable").inc()
                raise
            with db.transaction() as tx:
                outgoing.mark_sent(tx, email)
            EMAILS_SENT.labels("sent").inc()
            counts["sent"] += 1
    return counts
