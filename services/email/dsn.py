"""Bounces: delivery status notifications (RFC 3464 multipart/report; report-type=
delivery-status) and the common free-form "Undelivered Mail" replies of mail servers.

A bounce names our email by its Message-ID (in the returned message or headers) or by the
X-Crmhub-Email-Id header every outgoing email carries; failing both, by the failed recipient
(the sync then picks that recipient's latest sent email).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage

from crmhub.services.email.mime import message_ids, parse_bytes, part_text
from crmhub.services.email.smtp import EMAIL_ID_HEADER

FREE_FORM_SENDERS = re.compile(r"mailer-daemon|postmaster|mail delivery (sub)?system", re.I)
FREE_FORM_SUBJECTS = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|returned mail|"
    r"failure notice|mail delivery failed|could not be delivered", re.I)
OUR_ID = re.compile(EMAIL_ID_HEADER + r":\s*([0-9a-f]{32})", re.I)
QUOTED_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^<>\s]+>)", re.I | re.M)
FAILED_ADDRESS = re.compile(r"<?([A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")


@dataclass
class Bounce:
    original_message_id: str | None = None
    email_id: str | None = None
    recipients: list[str] = field(default_factory=list)
    reason: str = ""
    #: False for a DSN that only reports a delay or a success: no email bounced.
    failed: bool = True


def _status_blocks(part) -> list:
    """The header blocks of a message/delivery-status part (per-message, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload
    # Some parsers leave the part as text: split it into blocks ourselves.
    text = payload if isinstance(payload, str) else ""
    return [parse_bytes(block.encode()) for block in re.split(r"\r?\n\r?\n", text) if block.strip()]


def _returned_headers(msg: EmailMessage):
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            return inner[0] if isinstance(inner, list) and inner else None
        if ctype == "text/rfc822-headers":
            return parse_bytes(part.get_payload(decode=True) or b"")
    return None


def _from_report(msg: EmailMessage) -> Bounce:
    bounce = Bounce(failed=False)
    reasons = []
    for part in msg.walk():
        if part.get_content_type() not in ("message/delivery-status", "message/global-delivery-status"):
            continue
        for block in _status_blocks(part):
            action = str(block.get("Action") or "").strip().lower()
            recipient = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            if not recipient:
                continue
            if action == "failed":
                bounce.failed = True
                bounce.recipients.append(recipient.rpartition(";")[2].strip().strip("<>").lower())
                status = str(block.get("Status") or "").strip()
                diagnostic = " ".join(str(block.get("Diagnostic-Code") or "").split())
                reasons.append(" ".join(filter(None, (status, diagnostic))) or "failed")
    bounce.reason = "; ".join(reasons)
    original = _returned_headers(msg)
    if original is not None:
        bounce.original_message_id = (message_ids(str(original.get("Message-ID") or "")) or [None])[0]
        our_id = str(original.get(EMAIL_ID_HEADER) or "").strip()
        bounce.email_id = our_id if re.fullmatch(r"[0-9a-f]{32}", our_id) else None
    return bounce


def _from_free_form(msg: EmailMessage) -> Bounce:
    problems: list[str] = []
    text = "\n".join(part_text(p, problems) for p in msg.walk()
                     if p.get_content_maintype() == "text" and not p.is_attachment())
    bounce = Bounce()
    ours = OUR_ID.search(text)
    bounce.email_id = ours.group(1) if ours else None
    quoted = QUOTED_MESSAGE_ID.search(text)
    bounce.original_message_id = quoted.group(1) if quoted else None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = next((line for line in lines if re.search(r"\b[45]\d\d\b|\b[45]\.\d\.\d", line)), "")
    bounce.reason = reason[:500] or "undeliverable (free-form bounce)"
    for line in lines:
        found = FAILED_ADDRESS.search(line)
        if found and "@" in line and not FREE_FORM_SENDERS.search(found.group(1)):
            bounce.recipients.append(found.group(1).lower())
            break
    return bounce


def detect(msg: EmailMessage, from_addr: str | None, subject: str | None) -> Bounce | None:
    """The bounce this message is, or None for an ordinary email."""
    if msg.get_content_type() == "multipart/report" and (
            msg.get_param("report-type") or "").lower() in ("delivery-status", "global-delivery-status"):
        return _from_report(msg)
    if FREE_FORM_SENDERS.search(from_addr or "") and FREE_FORM_SUBJECTS.search(subject or ""):
        return _from_free_form(msg)
    return None
