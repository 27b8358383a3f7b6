"""What the website form connectors (forms, Tilda) share: reading a submission's fields from
any body a form posts, finding the contact among them, capturing where the visitor came from,
and building the ``form_submitted`` event."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from marshmallow import ValidationError
from marshmallow.validate import Email
from werkzeug.http import parse_cookie

from crmhub.contracts.base import new_event
from crmhub.contracts.events import FORM_SUBMITTED
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.contracts.tracking import TRACKING_KEYS
from crmhub.plugins.api import BadPayload, UnsupportedMediaType, WebhookRequest

Fields = dict[str, list[str]]

FORM_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

# Field names looked up (case-insensitively) for each part of the contact, in this order.
DEFAULT_FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "name": ("name", "fio", "fullname", "full_name", "your-name", "имя"),
    "phone": ("phone", "tel", "telephone", "mobile", "phone_number", "телефон"),
    "email": ("email", "mail", "e-mail", "e_mail"),
    "message": ("message", "comment", "comments", "text", "question", "textarea", "msg"),
    "company": ("company", "organization", "organisation", "org", "company_name"),
}
NAME_PARTS = ("first_name", "last_name")  # joined when no whole-name field is filled
TRACKING_ALIASES = {"roistat_visit": "roistat", "referrer": "referer"}

# Limits of FormSubmittedSchema: longer texts are clipped here; the full text stays in `fields`.
MAX_NAME, MAX_MESSAGE, MAX_PHONE = 300, 20000, 64

_is_email = Email()


def read_fields(request: WebhookRequest) -> Fields:
    """The submitted fields of an urlencoded, multipart or JSON-object body, each with all its
    values as text."""
    content_type = request.content_type
    if content_type in FORM_CONTENT_TYPES:
        return {name: list(values) for name, values in request.form().items()}
    if content_type == "application/json" or content_type.endswith("+json"):
        body = request.json()
        if not isinstance(body, dict):
            raise BadPayload("a JSON body must be an object of form fields")
        return {str(key): _texts(value) for key, value in body.items() if value is not None}
    raise UnsupportedMediaType(
        "post the form as application/x-www-form-urlencoded, multipart/form-data or "
        f"application/json, not {content_type or 'a body without Content-Type'}")


def _texts(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [_text(v) for v in values if v is not None]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def first(fields: Mapping[str, list[str]], name: str) -> str | None:
    """The first non-blank value of field ``name``, stripped."""
    return _first_text(fields.get(name) or [])


def _first_text(values: list[str]) -> str | None:
    return next((v.strip() for v in values if v and v.strip()), None)


def flatten(fields: Fields, without: tuple[str | None, ...] = ()) -> dict[str, str]:
    """Every field as one string (several values joined with ", "), minus ``without``."""
    return {name: ", ".join(values) for name, values in fields.items() if name not in without}


@dataclass
class Contact:
    name: str | None = None
    company: str | None = None
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    message: str | None = None
    invalid_emails: list[str] = field(default_factory=list)

    def as_event_contact(self) -> dict:
        return {"name": self.name, "company": self.company, "phones": self.phones,
                "emails": self.emails}


class FieldMap:
    """Which submitted fields hold the contact's name, phone, email, message and company.

    ``overrides`` maps a part to a field name or a list of candidates; an override replaces
    the default names for that part, so an explicit mapping is never second-guessed.
    """

    def __init__(self, overrides: Mapping[str, str | list[str]] | None = None):
        unknown = set(overrides or {}) - set(DEFAULT_FIELD_NAMES)
        if unknown:
            raise ValueError(f"unknown field mapping {sorted(unknown)}; "
                             f"map any of {sorted(DEFAULT_FIELD_NAMES)}")
        self.overridden = {part: (names,) if isinstance(names, str) else tuple(names)
                           for part, names in (overrides or {}).items()}
        self.names = {**DEFAULT_FIELD_NAMES, **self.overridden}

    def contact(self, fields: Fields) -> Contact:
        """The contact found in ``fields``; BadPayload when it has no phone and no valid email."""
        by_name: dict[str, list[str]] = {}
        for name, values in fields.items():
            by_name.setdefault(name.lower(), []).extend(v.strip() for v in values if v.strip())
        values = {part: [v for name in names for v in by_name.get(name.lower(), [])]
                  for part, names in self.names.items()}
        emails = _unique(values["email"], key=str.lower)
        valid = [e for e in emails if _valid_email(e)]
        contact = Contact(
            name=_clip(_first_text(values["name"]) or self._joined_name(by_name), MAX_NAME),
            company=_clip(_first_text(values["company"]), MAX_NAME),
            phones=[p for p in _unique(values["phone"]) if len(p) <= MAX_PHONE],
            emails=valid,
            message=_clip(_first_text(values["message"]), MAX_MESSAGE),
            invalid_emails=[e for e in emails if e not in valid])
        if not contact.phones and not contact.emails:
            raise BadPayload(self._unreachable(contact))
        return contact

    def _joined_name(self, by_name: dict[str, list[str]]) -> str | None:
        if "name" in self.overridden:
            return None
        return " ".join(v for part in NAME_PARTS for v in by_name.get(part, [])[:1]) or None

    def _unreachable(self, contact: Contact) -> str:
        message = ("the submission has no phone and no valid email: fill a phone field "
                   f"({', '.join(self.names['phone'])}) or an email field "
                   f"({', '.join(self.names['email'])})")
        if contact.invalid_emails:
            message += f"; {', '.join(contact.invalid_emails)} is not a valid email address"
        return message


def _valid_email(text: str) -> bool:
    try:
        _is_email(text)
    except ValidationError:
        return False
    return True


def _unique(values: list[str], key=lambda v: v) -> list[str]:
    seen: set[str] = set()
    unique = []
    for value in values:
        if key(value) not in seen:
            seen.add(key(value))
            unique.append(value)
    return unique


def _clip(text: str | None, limit: int) -> str | None:
    return text[:limit] if text else text


def cookies(header: str | None) -> dict[str, str]:
    """A ``Cookie`` header (or Tilda's ``COOKIES`` field) as a dict."""
    return parse_cookie(header or "").to_dict()


def url_query(url: str | None) -> dict[str, list[str]]:
    """The query parameters of ``url`` (a landing page's UTM tags travel there)."""
    return parse_qs(urlsplit(url or "").query)


def tracking_from(*sources: Mapping[str, str | list[str]]) -> dict[str, str]:
    """The tracking keys (UTM tags, click ids, analytics ids, page, referer) found in
    ``sources``; for a key found in several, the earliest source wins."""
    tracking: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            name = TRACKING_ALIASES.get(key.lower(), key.lower())
            text = _first_text(value if isinstance(value, list) else [value])
            if name in TRACKING_KEYS and text and name not in tracking:
                tracking[name] = text
    return tracking


def form_submitted(*, connector: str, form: str, form_name: str | None, idempotency_key: str,
                   contact: Contact, fields: dict[str, str], tracking: dict[str, str],
                   remote_addr: str | None) -> tuple[str, dict]:
    """The ``form_submitted`` event of one accepted submission."""
    return FORM_SUBMITTED, new_event(
        FormSubmittedSchema, idempotency_key=idempotency_key, connector=connector, form=form,
        form_name=form_name, contact=contact.as_event_contact(), message=contact.message,
        fields=fields, tracking=tracking, remote_addr=remote_addr,
        received_at=dt.datetime.now(dt.timezone.utc))
