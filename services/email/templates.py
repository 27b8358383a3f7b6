"""Email templates: Jinja2 in a sandbox, rendered with the client's card.

Users write templates through the REST API, so they run in ``SandboxedEnvironment`` (no
attribute access to internals) with ``StrictUndefined`` (a field the card lacks is an error
naming it, not an empty greeting). The HTML body is autoescaped; subject and text are not.
Errors come back as ``InvalidInput`` saying which part and line is at fault.
"""
from __future__ import annotations

import sqlalchemy as sa
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, utcnow
from crmhub.services.email.models import templates

PARTS = ("subject", "text_body", "html_body")
_plain = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_html = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


def environment(part: str) -> SandboxedEnvironment:
    return _html if part == "html_body" else _plain


def template_error(part: str, exc: Exception) -> InvalidInput:
    where = f"{part}, line {exc.lineno}" if getattr(exc, "lineno", None) else part
    message = f"{where}: {exc.message if hasattr(exc, 'message') and exc.message else exc}"
    return InvalidInput(f"template error in {message}", {part: [message]})


def check(parts: dict) -> None:
    """Compile each part: a syntax error is refused when the template is saved."""
    for part in PARTS:
        if parts.get(part):
            try:
                environment(part).parse(parts[part])
            except TemplateSyntaxError as exc:
                raise template_error(part, exc) from None


def card_context(card: dict, variables: dict | None = None) -> dict:
    """What a template sees: ``client`` (and ``contact``) with the card's fields, the card's
    custom fields also at the top of ``client``, and the caller's extra ``variables``."""
    client = {**(card.get("custom_fields") or {}), **{
        k: card.get(k) for k in ("id", "name", "company", "emails", "phones", "manager", "tags",
                                 "kind")}}
    client["email"] = (card.get("emails") or [None])[0]
    client["phone"] = next((p.get("e164") or p.get("raw") for p in card.get("phones") or []), None)
    return {**(variables or {}), "client": client, "contact": client}


def render(parts: dict, context: dict) -> dict:
    rendered = {}
    for part in PARTS:
        source = parts.get(part)
        if not source:
            rendered[part] = None
            continue
        try:
            rendered[part] = environment(part).from_string(source).render(context)
        except TemplateError as exc:
            raise template_error(part, exc) from None
    rendered["subject"] = " ".join((rendered["subject"] or "").split())
    return rendered


# -- storage ---------------------------------------------------------------------------------------

def _as_dict(row) -> dict:
    data = dict(row._mapping)
    data["created_at"], data["updated_at"] = as_utc(data["created_at"]), as_utc(data["updated_at"])
    return data


def get(conn, name: str) -> dict:
    row = conn.execute(sa.select(templates).where(templates.c.name == name)).first()
    if row is None:
        raise NotFound(f"no email template {name!r}")
    return _as_dict(row)


def list_all(conn) -> list[dict]:
    return [_as_dict(r) for r in conn.execute(sa.select(templates).order_by(templates.c.name))]


def put(tx, name: str, data: dict) -> dict:
    check(data)
    now = utcnow()
    values = {"subject": data["subject"], "text_body": data["text_body"],
              "html_body": data.get("html_body"), "updated_at": now}
    if not insert_ignoring_conflicts(tx.conn, templates, [{"name": name, "created_at": now,
                                                           **values}], ["name"]):
        tx.execute(templates.update().where(templates.c.name == name).values(**values))
    return get(tx.conn, name)


def delete(tx, name: str) -> None:
    if not tx.execute(templates.delete().where(templates.c.name == name)).rowcount:
        raise NotFound(f"no email template {name!r}")
