"""Reading a raw email (RFC 5322 / MIME) as it arrives from IMAP, whatever shape it is in.

Nothing here raises on a bad message: what could not be read as sent (an unknown charset, a
broken multipart, a header that is no address) is read as well as it can be and named in
``problems``, shown with the message. Attachments over the size cap are not kept; the others
are handed to ``store`` (outside the database) and only their descriptions are returned.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime

MSG_ID = re.compile(r"<[^<>\s]{1,298}>")
SNIPPET_CHARS = 200


@dataclass
class ParsedEmail:
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    from_addr: str | None
    from_name: str | None
    to_addrs: list[str]
    subject: str | None
    sent_date: object
    text_body: str | None
    html_body: str | None
    dedupe_key: str
    message: EmailMessage
    attachments: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def snippet(self) -> str | None:
        text = " ".join((self.text_body or "").split())
        return text[:SNIPPET_CHARS] or None


def parse_bytes(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def header(msg, name: str, problems: list[str]) -> str | None:
    """A header's decoded text; a header the policy cannot parse is read raw."""
    try:
        value = msg.get(name)
    except Exception as exc:  # noqa: BLE001 - a malformed header must not lose the message
        problems.append(f"header {name} unreadable ({exc.__class__.__name__}): kept raw")
        raw = msg._headers and next((v for k, v in msg._headers if k.lower() == name.lower()),
                                    None)
        return str(raw) if raw is not None else None
    return None if value is None else str(value)


def message_ids(text: str | None) -> list[str]:
    return MSG_ID.findall(text or "")


def addresses(text: str | None) -> list[tuple[str, str]]:
    """(name, lowercase address) pairs of an address header; junk entries are dropped."""
    return [(name, addr.lower()) for name, addr in getaddresses([text or ""])
            if "@" in addr and len(addr) <= 320]


def _date(text: str | None, problems: list[str]):
    if not text:
        return None
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        problems.append(f"Date header unreadable: {text[:80]!r}")
        return None
    if value.tzinfo is None:
        return None
    return value


def part_text(part, problems: list[str]) -> str:
    """A text part's content; an unknown or wrong charset is read as UTF-8 with replacements."""
    try:
        return part.get_content()
    except (LookupError, UnicodeError, AssertionError, ValueError) as exc:
        charset = part.get_content_charset() or "?"
        problems.append(f"text in charset {charset!r} unreadable ({exc.__class__.__name__}): "
                        "read as UTF-8 with replacements")
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def _body(msg, preference: str, problems: list[str]) -> str | None:
    try:
        part = msg.get_body(preferencelist=(preference,))
    except (KeyError, ValueError, AttributeError):
        part = None
    if part is None:
        return None
    return part_text(part, problems)


def _defects(msg) -> list[str]:
    found = []
    for part in msg.walk():
        for defect in getattr(part, "defects", ()):
            found.append(f"malformed MIME: {defect.__class__.__name__}")
    return list(dict.fromkeys(found))


def _attachments(msg, max_bytes: int, store, key_prefix: str, problems: list[str]) -> list[dict]:
    found = []
    for index, part in enumerate(p for p in msg.walk() if p.is_attachment()):
        content_type = part.get_content_type()
        filename = part.get_filename()
        payload = part.get_payload(decode=True) or b""
        item = {"filename": filename, "content_type": content_type, "size": len(payload),
                "key": None, "skipped": None}
        if len(payload) > max_bytes:
            item["skipped"] = f"larger than the {max_bytes}-byte cap"
            problems.append(f"attachment {filename or index} ({len(payload)} bytes) not stored: "
                            f"over the {max_bytes}-byte cap")
        elif store is None:
            item["skipped"] = "no attachment store"
        else:
            item["key"] = store.save(f"{key_prefix}-{index}", [payload], content_type).key
        found.append(item)
    return found


def parse(raw: bytes, *, max_attachment_bytes: int = 10 * 2**20, store=None,
          key_prefix: str | None = None) -> ParsedEmail:
    """``key_prefix`` names the stored attachments; by default it derives from the message, so
    the same message synced twice overwrites its files instead of adding copies."""
    problems: list[str] = []
    try:
        msg = parse_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - the parser is meant not to raise; be sure
        msg = EmailMessage()
        msg.set_content(raw.decode("utf-8", errors="replace"))
        problems.append(f"unparseable message ({exc.__class__.__name__}): kept as text")
    problems.extend(_defects(msg))
    message_id = (message_ids(header(msg, "Message-ID", problems)) or [None])[0]
    senders = addresses(header(msg, "From", problems))
    recipients = addresses(", ".join(filter(None, (header(msg, "To", problems),
                                                   header(msg, "Cc", problems)))))
    text = _body(msg, "plain", problems)
    html = _body(msg, "html", problems)
    if text is None and html is None and not msg.is_multipart():
        text = part_text(msg, problems)
    dedupe_key = message_id or f"sha256:{hashlib.sha256(raw[:65536]).hexdigest()}"
    key_prefix = key_prefix or "mail-" + hashlib.sha256(dedupe_key.encode()).hexdigest()[:40]
    return ParsedEmail(
        message_id=message_id,
        in_reply_to=(message_ids(header(msg, "In-Reply-To", problems)) or [None])[0],
        references=message_ids(header(msg, "References", problems)),
        from_addr=senders[0][1] if senders else None,
        from_name=(senders[0][0] or None) if senders else None,
        to_addrs=list(dict.fromkeys(addr for _, addr in recipients)),
        subject=header(msg, "Subject", problems),
        sent_date=_date(header(msg, "Date", problems), problems),
        text_body=text, html_body=html,
        dedupe_key=dedupe_key,
        message=msg,
        attachments=_attachments(msg, max_attachment_bytes, store, key_prefix, problems),
        problems=list(dict.fromkeys(problems)),
    )
