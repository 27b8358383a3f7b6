"""The rules of client cards: dedupe on ingest, merge, search, the timeline.

Plain functions over a ``Transaction`` (``tx.conn`` plus inbox/outbox) or a connection, so
they are tested without a broker and run the same on PostgreSQL and SQLite.
"""
from __future__ import annotations

import datetime as dt
import re

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.contacts import (
    ContactCreatedSchema,
    ContactsMergedSchema,
    ContactUpdatedSchema,
    TimelineEntryAddedSchema,
)
from crmhub.contracts.errors import Conflict, InvalidInput, NotFound, PermanentError
from crmhub.contracts.phones import DEFAULT_REGION, normalize
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, insert_new_rows, new_id, utcnow
from crmhub.runtime.prepared import PreparedRead
from crmhub.services.contacts.models import contact_emails, contact_phones, contacts, timeline

TIMELINE_LIMIT = 200
MAX_MERGE_DEPTH = 20


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text or "")


def search_text(name, company, emails, phones) -> str:
    parts = [name or "", company or "", *emails]
    for phone in phones:
        parts.append(_digits(phone.get("e164") or ""))
        parts.append(_digits(phone.get("raw") or ""))
    return " ".join(p for p in parts if p).lower()


# -- reading -----------------------------------------------------------------------------------

_MERGED_INTO = PreparedRead("merged_into", sa.select(contacts.c.merged_into)
                            .where(contacts.c.id == sa.bindparam("id", type_=contacts.c.id.type)))


def resolve_id(conn, contact_id: str) -> str:
    """Follow merges: the id of the card that holds ``contact_id`` now."""
    current = contact_id
    for _ in range(MAX_MERGE_DEPTH):
        row = _MERGED_INTO.execute(conn, {"id": current}).first()
        if row is None:
            raise NotFound(f"contact {contact_id} not found")
        if row.merged_into is None:
            return current
        current = row.merged_into
    raise Conflict(f"contact {contact_id}: merge chain too long")


_IDS = sa.bindparam("ids", expanding=True)
# Built once: constructing these per call cost more than running them (lookups are hot).
_CONTACTS_BY_ID = sa.select(contacts).where(contacts.c.id.in_(_IDS))


def _parts_of(owners):
    """The phones, emails and merged-in ids of the cards whose ids ``owners`` gives (an
    expanding bind or a subquery), as rows (part, owner, a, b, c, pos, seq)."""
    return sa.union_all(
        sa.select(sa.literal("p").label("part"), contact_phones.c.contact_id.label("owner"),
                  contact_phones.c.e164.label("a"), contact_phones.c.raw.label("b"),
                  contact_phones.c.extension.label("c"), contact_phones.c.position.label("pos"),
                  contact_phones.c.id.label("seq"))
        .where(contact_phones.c.contact_id.in_(owners)),
        sa.select(sa.literal("e"), contact_emails.c.contact_id, contact_emails.c.email,
                  sa.null(), sa.null(), contact_emails.c.position, sa.literal(0))
        .where(contact_emails.c.contact_id.in_(owners)),
        sa.select(sa.literal("m"), contacts.c.merged_into, contacts.c.id, sa.null(), sa.null(),
                  sa.literal(0), sa.literal(0))
        .where(contacts.c.merged_into.in_(owners)),
    ).subquery("parts")


_PARTS = _parts_of(_IDS)
_PARTS_OF_CARDS = sa.select(_PARTS).order_by(_PARTS.c.pos, _PARTS.c.seq, _PARTS.c.a)


def load_contacts(conn, ids: list[str]) -> list[dict]:
    """Contacts (without timeline) in the order of ``ids``: two queries, whatever the count."""
    if not ids:
        return []
    rows = {r.id: r for r in conn.execute(_CONTACTS_BY_ID, {"ids": ids})}
    return contacts_from_rows(conn, [rows[i] for i in ids if i in rows])


def contacts_from_rows(conn, rows) -> list[dict]:
    """Contact dicts for ``contacts`` rows: their phones, emails and merged-in ids in one
    round trip."""
    if not rows:
        return []
    return _assemble(rows, conn.execute(_PARTS_OF_CARDS, {"ids": [row.id for row in rows]}))


def _assemble(rows, parts) -> list[dict]:
    """Contact dicts for ``contacts`` rows and their parts: (part, owner, a, b, c, ...)
    tuples as ``_parts_of`` selects them."""
    phones: dict[str, list] = {row.id: [] for row in rows}
    emails: dict[str, list] = {row.id: [] for row in rows}
    merged: dict[str, list] = {row.id: [] for row in rows}
    for part, owner, a, b, c, *_ in parts:
        if part == "p":
            phones[owner].append({"e164": a, "raw": b, "extension": c})
        elif part == "e":
            emails[owner].append(a)
        elif part == "m":
            merged[owner].append(a)
    return [{
        "id": row.id, "kind": row.kind, "name": row.name, "company": row.company,
        "phones": phones[row.id], "emails": emails[row.id], "source": row.source,
        "manager": row.manager, "tags": row.tags or [], "custom_fields": row.custom_fields or {},
        "created_at": as_utc(row.created_at), "updated_at": as_utc(row.updated_at),
        "merged_ids": sorted(merged[row.id]),
    } for row in rows]


def load_contact(conn, contact_id: str) -> dict:
    found = load_contacts(conn, [resolve_id(conn, contact_id)])
    if not found:
        raise NotFound(f"contact {contact_id} not found")
    return found[0]


def load_many(conn, ids: list[str]) -> dict:
    """Cards by id for a batch caller (``get_many``): each live card once, in the order first
    asked, ``resolved`` (id asked -> the card holding it now: merges followed) and ``missing``.
    Three queries for live ids, plus one per merge hop of merged ones."""
    ids = list(dict.fromkeys(ids))
    resolved: dict[str, str] = {}
    pending = {i: i for i in ids}  # id asked -> id reached so far
    for _ in range(MAX_MERGE_DEPTH):
        if not pending:
            break
        rows = dict(conn.execute(sa.select(contacts.c.id, contacts.c.merged_into)
                                 .where(contacts.c.id.in_(set(pending.values())))).all())
        step = {}
        for asked, current in pending.items():
            if current not in rows:
                continue  # no such card: missing
            if rows[current] is None:
                resolved[asked] = current
            else:
                step[asked] = rows[current]
        pending = step
    live = list(dict.fromkeys(resolved[i] for i in ids if i in resolved))
    return {"items": load_contacts(conn, live), "resolved": resolved,
            "missing": [i for i in ids if i not in resolved]}


_TIMELINE = PreparedRead("timeline", sa.select(timeline)
                         .where(timeline.c.contact_id == sa.bindparam("contact_id"))
                         .order_by(timeline.c.occurred_at.desc(), timeline.c.id.desc())
                         .limit(sa.bindparam("limit")))


def load_timeline(conn, contact_id: str, limit: int = TIMELINE_LIMIT) -> list[dict]:
    rows = _TIMELINE.execute(conn, {"contact_id": contact_id, "limit": limit})
    return [{"id": r.id, "contact_id": r.contact_id, "kind": r.kind,
             "occurred_at": as_utc(r.occurred_at), "title": r.title,
             "source_key": r.source_key, "data": r.data or {}} for r in rows]


def load_card(conn, contact_id: str) -> dict:
    card = load_contact(conn, contact_id)
    card["timeline"] = load_timeline(conn, card["id"])
    return card


def find_ids_by_phones(conn, e164s) -> list[str]:
    e164s = [p for p in e164s if p]
    if not e164s:
        return []
    rows = conn.execute(sa.select(contact_phones.c.e164, contact_phones.c.contact_id)
                        .where(contact_phones.c.e164.in_(e164s)))
    owner = {r.e164: r.contact_id for r in rows}
    return list(dict.fromkeys(owner[p] for p in e164s if p in owner))


def find_ids_by_emails(conn, emails) -> list[str]:
    emails = [e.lower() for e in emails if e]
    if not emails:
        return []
    rows = conn.execute(sa.select(contact_emails.c.email, contact_emails.c.contact_id)
                        .where(contact_emails.c.email.in_(emails)))
    owner = {r.email: r.contact_id for r in rows}
    return list(dict.fromkeys(owner[e] for e in emails if e in owner))


_LIVE_CARDS = sa.select(contacts).where(contacts.c.merged_into.is_(None))
_PHONE_OWNER = sa.select(contact_phones.c.contact_id).where(
    contact_phones.c.e164 == sa.bindparam("e164"))
_NEWEST_FIRST = (contacts.c.updated_at.desc(), contacts.c.id)


def _cards_with_parts_by_phone():
    """The API's lookup by number in one round trip: the live cards holding the number,
    newest first, each row joined to one of the card's parts."""
    cards = (_LIVE_CARDS.where(contacts.c.id.in_(_PHONE_OWNER)).order_by(*_NEWEST_FIRST)
             .limit(sa.bindparam("limit")).subquery("cards"))
    parts = _parts_of(_PHONE_OWNER)
    return (sa.select(cards, *(c.label(f"part_{c.name}") for c in parts.c))
            .select_from(cards.outerjoin(parts, parts.c.owner == cards.c.id))
            .order_by(cards.c.updated_at.desc(), cards.c.id, parts.c.pos, parts.c.seq, parts.c.a))


# Built once (see _CONTACTS_BY_ID), and planned once per connection on PostgreSQL.
_CARDS_WITH_PARTS_BY_PHONE = PreparedRead("cards_by_phone", _cards_with_parts_by_phone())


def cards_by_phone(conn, e164: str, limit: int) -> list[dict]:
    """The live cards holding ``e164`` (newest first, at most ``limit``): one query."""
    cards: dict[str, object] = {}
    parts = []
    for row in _CARDS_WITH_PARTS_BY_PHONE.execute(conn, {"e164": e164, "limit": limit}):
        cards.setdefault(row.id, row)
        if row.part_part is not None:  # a card with no parts still has its row
            parts.append((row.part_part, row.part_owner, row.part_a, row.part_b, row.part_c))
    return _assemble(list(cards.values()), parts)


def search(conn, q=None, phone=None, limit=50, offset=0, region=DEFAULT_REGION) -> dict:
    query = _LIVE_CARDS
    params = {}
    if phone:
        e164 = normalize(phone, region).e164
        if e164 is None:
            raise InvalidInput(f"{phone!r} is not a phone number", {"phone": ["not a phone number"]})
        if not q and offset == 0:  # a number belongs to one card: the first page is all
            items = cards_by_phone(conn, e164, limit)
            return {"items": items, "total": len(items), "limit": limit, "offset": offset}
        query = query.where(contacts.c.id.in_(_PHONE_OWNER))
        params["e164"] = e164
    if q:
        needle = q.strip().lower()
        terms = [needle]
        if _digits(needle) and len(_digits(needle)) >= 3 and not re.search(r"[^\d\s()+\-]", needle):
            terms = [_digits(needle)]  # a phone fragment: match digits whatever the format
        for term in terms:
            escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(contacts.c.search_text.like(f"%{escaped}%", escape="\\"))
    rows = conn.execute(query.order_by(*_NEWEST_FIRST).limit(limit).offset(offset), params).all()
    if offset == 0 and len(rows) < limit:
        total = len(rows)  # the page holds everything: no need to count
    else:
        total = conn.execute(sa.select(sa.func.count()).select_from(
            query.with_only_columns(contacts.c.id).subquery()), params).scalar_one()
    return {"items": contacts_from_rows(conn, rows), "total": total, "limit": limit,
            "offset": offset}


# -- writing -----------------------------------------------------------------------------------

def _normalize_phones(raws, region) -> list[dict]:
    seen, out = set(), []
    for raw in raws:
        phone = normalize(raw, region)
        key = phone.e164 or phone.raw
        if key and key not in seen:
            seen.add(key)
            out.append(phone.as_dict())
    return out


def _emit_timeline(tx, entry: dict) -> None:
    tx.emit(ev.TIMELINE_ENTRY_ADDED, new_event(TimelineEntryAddedSchema, entry=entry))


def add_timeline_entry(tx, contact_id, kind, title, source_key, occurred_at=None, data=None):
    """Append an entry; the same ``source_key`` twice adds nothing. Returns the entry or None."""
    values = {"contact_id": contact_id, "kind": kind, "title": title[:500],
              "source_key": source_key[:300], "occurred_at": occurred_at or utcnow(),
              "data": data or {}}
    entry_id = insert_ignoring_conflicts(tx.conn, timeline, values, ["source_key"],
                                         returning=timeline.c.id)
    if entry_id is None:
        return None
    entry = {"id": entry_id, **values}
    _emit_timeline(tx, entry)
    return entry


def _claim_phones(tx, contact_id, phones, start=0) -> list[dict]:
    """Attach phones not owned by any card; returns the ones another card already owns."""
    taken = []
    for offset, phone in enumerate(phones):
        row = {"contact_id": contact_id, "e164": phone["e164"], "raw": phone["raw"][:64],
               "extension": phone.get("extension"), "position": start + offset}
        if phone["e164"] is None:
            tx.execute(contact_phones.insert().values(**row))
        elif not insert_ignoring_conflicts(tx.conn, contact_phones, [row], ["e164"]):
            taken.append(phone)
    return taken


def _claim_emails(tx, contact_id, emails, start=0) -> list[str]:
    taken = []
    for offset, email in enumerate(emails):
        row = {"contact_id": contact_id, "email": email.lower(), "position": start + offset}
        if not insert_ignoring_conflicts(tx.conn, contact_emails, [row], ["email"]):
            taken.append(email)
    return taken


def _refresh_search_text(tx, contact_id) -> dict:
    """Recompute what search looks in after a change; returns the card as it now is."""
    contact = load_contacts(tx.conn, [contact_id])[0]
    contact["updated_at"] = utcnow()
    tx.execute(contacts.update().where(contacts.c.id == contact_id).values(
        search_text=search_text(contact["name"], contact["company"], contact["emails"],
                                contact["phones"]), updated_at=contact["updated_at"]))
    return contact


def _insert_contact(tx, data: dict, region) -> tuple[str, dict, list, list]:
    """Insert a card with its phones and emails. Returns (id, contact, taken phones, taken emails)."""
    now = utcnow()
    cid = new_id()
    phones = _normalize_phones(data.get("phones") or [], region)
    emails = list(dict.fromkeys(e.lower() for e in data.get("emails") or []))
    tx.execute(contacts.insert().values(
        id=cid, kind=data.get("kind") or "person", name=data.get("name"),
        company=data.get("company"), manager=data.get("manager"), source=data.get("source"),
        tags=list(dict.fromkeys(data.get("tags") or [])),
        custom_fields=data.get("custom_fields") or {},
        search_text=search_text(data.get("name"), data.get("company"), emails, phones),
        created_at=now, updated_at=now))
    taken_phones = _claim_phones(tx, cid, phones)
    taken_emails = _claim_emails(tx, cid, emails)
    contact = {"id": cid, "kind": data.get("kind") or "person", "name": data.get("name"),
               "company": data.get("company"), "phones": phones, "emails": emails,
               "source": data.get("source"), "manager": data.get("manager"),
               "tags": list(dict.fromkeys(data.get("tags") or [])),
               "custom_fields": data.get("custom_fields") or {}, "created_at": now,
               "updated_at": now, "merged_ids": []}
    return cid, contact, taken_phones, taken_emails


def _delete_contact_rows(tx, cid):
    for table in (contact_phones, contact_emails):
        tx.execute(table.delete().where(table.c.contact_id == cid))
    tx.execute(contacts.delete().where(contacts.c.id == cid))


def _owners(tx, phones, emails) -> list[str]:
    ids = find_ids_by_phones(tx.conn, [p["e164"] for p in phones])
    return ids or find_ids_by_emails(tx.conn, emails)


def create_contact(tx, data: dict, region=DEFAULT_REGION, cause="api") -> dict:
    """Create a card from the API; a phone or email of another card is a Conflict."""
    phones = _normalize_phones(data.get("phones") or [], region)
    existing = _owners(tx, phones, data.get("emails") or [])
    if existing:
        raise Conflict("a card with this phone or email exists", {"contact_id": existing[0]})
    cid, contact, taken_phones, taken_emails = _insert_contact(tx, data, region)
    if taken_phones or taken_emails:  # lost a race with a concurrent insert
        owner = _owners(tx, phones, data.get("emails") or [])
        raise Conflict("a card with this phone or email exists",
                       {"contact_id": owner[0] if owner else None})
    tx.emit(ev.CONTACT_CREATED, new_event(ContactCreatedSchema, contact=contact,
                                          cause=cause))
    add_timeline_entry(tx, cid, "contact_created", "Card created", f"created:{cid}",
                       data={"cause": cause})
    return contact


def _emit_updated(tx, contact: dict, changed: list[str]):
    tx.emit(ev.CONTACT_UPDATED, new_event(ContactUpdatedSchema, contact=contact,
                                          changed=changed))


def update_contact(tx, contact_id: str, patch: dict, region=DEFAULT_REGION) -> dict:
    cid = resolve_id(tx.conn, contact_id)
    current = load_contacts(tx.conn, [cid])[0]
    changed = []
    simple = {k: patch[k] for k in ("kind", "name", "company", "manager", "custom_fields")
              if k in patch and patch[k] != current[k]}
    if "tags" in patch and list(dict.fromkeys(patch["tags"])) != current["tags"]:
        simple["tags"] = list(dict.fromkeys(patch["tags"]))
    if simple:
        tx.execute(contacts.update().where(contacts.c.id == cid).values(**simple))
        changed.extend(simple)
    if "phones" in patch:
        phones = _normalize_phones(patch["phones"], region)
        if phones != current["phones"]:
            tx.execute(contact_phones.delete().where(contact_phones.c.contact_id == cid))
            taken = _claim_phones(tx, cid, phones)
            if taken:
                owner = find_ids_by_phones(tx.conn, [p["e164"] for p in taken])
                raise Conflict(f"phone {taken[0]['raw']} belongs to another card",
                               {"contact_id": owner[0] if owner else None})
            changed.append("phones")
    if "emails" in patch:
        emails = list(dict.fromkeys(e.lower() for e in patch["emails"]))
        if emails != current["emails"]:
            tx.execute(contact_emails.delete().where(contact_emails.c.contact_id == cid))
            taken = _claim_emails(tx, cid, emails)
            if taken:
                owner = find_ids_by_emails(tx.conn, taken)
                raise Conflict(f"email {taken[0]} belongs to another card",
                               {"contact_id": owner[0] if owner else None})
            changed.append("emails")
    if not changed:
        return current
    contact = _refresh_search_text(tx, cid)
    _emit_updated(tx, contact, changed)
    return contact


def merge_contacts(tx, source_id: str, target_id: str) -> dict:
    """Move phones, emails and timeline of ``source`` to ``target``; ``source`` then resolves
    to ``target``. Merging an already merged source into its target again changes nothing."""
    target = resolve_id(tx.conn, target_id)
    source = resolve_id(tx.conn, source_id)
    if source == target:
        if source_id != target_id:
            return load_contacts(tx.conn, [target])[0]
        raise InvalidInput("cannot merge a card into itself", {"source_id": ["same as target_id"]})
    src, dst = load_contacts(tx.conn, [source, target])
    fill = {k: src[k] for k in ("name", "company", "manager", "source") if not dst[k] and src[k]}
    fill["tags"] = list(dict.fromkeys(dst["tags"] + src["tags"]))
    fill["custom_fields"] = {**src["custom_fields"], **dst["custom_fields"]}
    tx.execute(contacts.update().where(contacts.c.id == target).values(**fill))
    offset = len(dst["phones"])
    tx.execute(contact_phones.update().where(contact_phones.c.contact_id == source)
               .values(contact_id=target, position=contact_phones.c.position + offset))
    offset = len(dst["emails"])
    tx.execute(contact_emails.update().where(contact_emails.c.contact_id == source)
               .values(contact_id=target, position=contact_emails.c.position + offset))
    tx.execute(timeline.update().where(timeline.c.contact_id == source).values(contact_id=target))
    tx.execute(contacts.update().where(contacts.c.merged_into == source).values(merged_into=target))
    tx.execute(contacts.update().where(contacts.c.id == source)
               .values(merged_into=target, updated_at=utcnow()))
    contact = _refresh_search_text(tx, target)
    tx.emit(ev.CONTACTS_MERGED, new_event(ContactsMergedSchema, source_id=source, target_id=target))
    add_timeline_entry(tx, target, "contacts_merged",
                       f"Card {src['name'] or source} merged into this card", f"merge:{source}",
                       data={"source_id": source, "source_name": src["name"]})
    _emit_updated(tx, contact, ["merged"])
    return contact


# -- ingest ------------------------------------------------------------------------------------

def _attach(tx, cid: str, name, company, phones, emails) -> list[str]:
    """Add to an existing card what it lacks (name, free phones and emails)."""
    current = load_contacts(tx.conn, [cid])[0]
    changed = []
    if name and not current["name"]:
        tx.execute(contacts.update().where(contacts.c.id == cid).values(name=name))
        changed.append("name")
    if company and not current["company"]:
        tx.execute(contacts.update().where(contacts.c.id == cid).values(company=company))
        changed.append("company")
    known = {p["e164"] or p["raw"] for p in current["phones"]}
    new_phones = [p for p in phones if (p["e164"] or p["raw"]) not in known]
    if new_phones and len(new_phones) > len(_claim_phones(tx, cid, new_phones,
                                                           len(current["phones"]))):
        changed.append("phones")
    new_emails = [e for e in emails if e not in current["emails"]]
    if new_emails and len(new_emails) > len(_claim_emails(tx, cid, new_emails,
                                                          len(current["emails"]))):
        changed.append("emails")
    if changed:
        _emit_updated(tx, _refresh_search_text(tx, cid), changed)
    return changed


def upsert_by_identity(tx, name, company, raw_phones, emails, source, region, cause) -> tuple[str, bool]:
    """Find the card of a phone (then an email) or create it; race-safe. Returns (id, created)."""
    phones = _normalize_phones(raw_phones, region)
    emails = list(dict.fromkeys(e.lower() for e in emails))
    owners = _owners(tx, phones, emails)
    if not owners:
        data = {"kind": "person", "name": name, "company": company, "phones": raw_phones,
                "emails": emails, "source": source}
        cid, contact, taken_phones, taken_emails = _insert_contact(tx, data, region)
        if not (taken_phones or taken_emails):
            tx.emit(ev.CONTACT_CREATED, new_event(
                ContactCreatedSchema, contact=contact, cause=cause))
            return cid, True
        # A concurrent ingest claimed one of these first: use its card instead of a twin.
        _delete_contact_rows(tx, cid)
        owners = _owners(tx, phones, emails)
    cid = owners[0]
    _attach(tx, cid, name, company, phones, emails)
    return cid, False


def ingest_form(tx, event: dict, region=DEFAULT_REGION, request_id=None) -> dict | None:
    """A form submission becomes a card (found or created) with a "form submitted" entry.

    Returns ``{"contact_id", "created"}``, or None for a submission already ingested.
    """
    tx.request_id = request_id
    key = f"form:{event['idempotency_key']}"
    if not tx.claim(key):
        return None
    person = event["contact"]
    source = {"channel": "form", "connector": event["connector"], "form": event["form"],
              "tracking": event.get("tracking") or {}}
    cid, created = upsert_by_identity(tx, person.get("name"), person.get("company"),
                                      person.get("phones") or [], person.get("emails") or [],
                                      source, region, cause=key)
    data = _form_entry_data(event)
    add_timeline_entry(tx, cid, "form_submitted", f"Form «{data['form_name']}» submitted", key,
                       occurred_at=event["received_at"], data=data)
    return {"contact_id": cid, "created": created}


class ConcurrentClaim(Exception):
    """A phone or email of the batch was claimed by a concurrent transaction meanwhile."""


def ingest_forms(tx, events: list[tuple[dict, str | None]], region=DEFAULT_REGION) -> list[dict]:
    """``ingest_form`` for a batch of (event, request id), in a fixed number of statements for
    new cards; each emitted event carries the request id of the submission behind it.

    Raises ConcurrentClaim when another transaction took one of the batch's phones or emails
    in the meantime: the caller rolls back and ingests the events one by one instead.
    """
    keys = [f"form:{e['idempotency_key']}" for e, _ in events]
    claimed = tx.claim_many(keys)
    fresh, seen, request_ids = [], set(), {}
    for key, (event, request_id) in zip(keys, events):
        if key in claimed and key not in seen:
            seen.add(key)
            request_ids[key] = request_id
            person = event["contact"]
            fresh.append((key, event, _normalize_phones(person.get("phones") or [], region),
                          list(dict.fromkeys(e.lower() for e in person.get("emails") or []))))
    if not fresh:
        return []
    by_phone = dict(tx.execute(sa.select(contact_phones.c.e164, contact_phones.c.contact_id).where(
        contact_phones.c.e164.in_({p["e164"] for *_, phones, _ in fresh for p in phones
                                   if p["e164"]}))).all())
    by_email = dict(tx.execute(sa.select(contact_emails.c.email, contact_emails.c.contact_id).where(
        contact_emails.c.email.in_({m for *_, emails in fresh for m in emails}))).all())
    existing = set(by_phone.values()) | set(by_email.values())
    new_cards: dict[str, dict] = {}
    phone_rows, email_rows, touched, plan = [], [], {}, []
    now = utcnow()
    for key, event, phones, emails in fresh:
        person = event["contact"]
        cid = next((by_phone[p["e164"]] for p in phones if p["e164"] in by_phone), None) \
            or next((by_email[m] for m in emails if m in by_email), None)
        created = cid is None
        if created:
            cid = new_id()
            new_cards[cid] = {"request_id": request_ids[key], **{
                "id": cid, "kind": "person", "name": person.get("name"),
                "company": person.get("company"), "phones": [], "emails": [],
                "source": {"channel": "form", "connector": event["connector"],
                           "form": event["form"], "tracking": event.get("tracking") or {}},
                "manager": None, "tags": [], "custom_fields": {}, "created_at": now,
                "updated_at": now, "merged_ids": []}}
        card = new_cards.get(cid)
        for phone in phones:
            if phone["e164"] is None or phone["e164"] not in by_phone:
                if phone["e164"]:
                    by_phone[phone["e164"]] = cid
                phone_rows.append({"contact_id": cid, "e164": phone["e164"],
                                   "raw": phone["raw"][:64], "extension": phone["extension"],
                                   "position": len(card["phones"]) if card else 100})
                if card:
                    card["phones"].append(phone)
                else:
                    touched.setdefault(cid, set()).add("phones")
        for email in emails:
            if email not in by_email:
                by_email[email] = cid
                email_rows.append({"contact_id": cid, "email": email,
                                   "position": len(card["emails"]) if card else 100})
                if card:
                    card["emails"].append(email)
                else:
                    touched.setdefault(cid, set()).add("emails")
        if card is None and cid in existing and (person.get("name") or person.get("company")):
            touched.setdefault(cid, set()).add("fill")
        plan.append((key, event, cid, created))

    if new_cards:
        tx.execute(contacts.insert(), [{
            "id": c["id"], "kind": "person", "name": c["name"], "company": c["company"],
            "manager": None, "source": c["source"], "tags": [], "custom_fields": {},
            "search_text": search_text(c["name"], c["company"], c["emails"], c["phones"]),
            "created_at": now, "updated_at": now} for c in new_cards.values()])
    valid_phones = [r for r in phone_rows if r["e164"]]
    # RETURNING keeps these multi-row INSERTs one statement (asking for a rowcount instead
    # makes the driver run them row by row).
    if len(insert_new_rows(tx.conn, contact_phones, valid_phones, ["e164"],
                           contact_phones.c.e164)) < len(valid_phones):
        raise ConcurrentClaim("a phone of this batch was claimed concurrently")
    if len(valid_phones) < len(phone_rows):
        tx.execute(contact_phones.insert(), [r for r in phone_rows if not r["e164"]])
    if len(insert_new_rows(tx.conn, contact_emails, email_rows, ["email"],
                           contact_emails.c.email)) < len(email_rows):
        raise ConcurrentClaim("an email of this batch was claimed concurrently")

    for card in new_cards.values():
        request_id = card.pop("request_id")
        tx.emit(ev.CONTACT_CREATED, new_event(ContactCreatedSchema, contact=card, cause="form"),
                request_id)
    for cid, what in touched.items():
        tx.request_id = next(request_ids[k] for k, _, c, _ in plan if c == cid)
        _fill_existing(tx, cid, what, [e for _, e, c, _ in plan if c == cid])

    entries = [{"contact_id": cid, "kind": "form_submitted",
                "title": f"Form «{event.get('form_name') or event['form']}» submitted"[:500],
                "source_key": key, "occurred_at": event["received_at"],
                "data": _form_entry_data(event)} for key, event, cid, _ in plan]
    ids = {row.source_key: row.id for row in insert_new_rows(
        tx.conn, timeline, entries, ["source_key"], timeline.c.id, timeline.c.source_key)}
    for entry in entries:
        if entry["source_key"] in ids:
            tx.request_id = request_ids[entry["source_key"]]
            _emit_timeline(tx, {"id": ids[entry["source_key"]], **entry})
    return [{"contact_id": cid, "created": created} for _, _, cid, created in plan]


def _fill_existing(tx, cid, what, events):
    """An existing card got phones or emails from forms; fill its empty name and company."""
    changed = sorted(what - {"fill"})
    current = load_contacts(tx.conn, [cid])[0]
    for field in ("name", "company"):
        value = next((e["contact"].get(field) for e in events if e["contact"].get(field)), None)
        if value and not current[field]:
            tx.execute(contacts.update().where(contacts.c.id == cid).values({field: value}))
            changed.append(field)
    if changed:
        _emit_updated(tx, _refresh_search_text(tx, cid), changed)


def _form_entry_data(event) -> dict:
    form_name = event.get("form_name") or event["form"]
    return {"connector": event["connector"], "form": event["form"], "form_name": form_name,
            "message": event.get("message"), "fields": event.get("fields") or {},
            "tracking": event.get("tracking") or {}, "contact": event["contact"]}


# -- sales on the timeline ---------------------------------------------------------------------

def _sales_entry(kind: str, event: dict) -> tuple[str | None, str, dict]:
    """(contact id, title, data) of the timeline entry for a deals event."""
    if kind == ev.GOODS_ARRIVED:
        deal, items = event["deal"], event["items"]
        names = ", ".join(dict.fromkeys(item["name"] for item in items))
        return deal["contact_id"], f"Товар поступил на склад: {names}", {
            "deal_id": deal["id"], "deal_title": deal["title"], "stage_name": deal["stage_name"],
            "manager": deal["manager"], "import_id": event["import_id"], "items": items}
    if kind.startswith("task_"):
        task = event["task"]
        due = task["due_at"].astimezone(dt.timezone.utc)
        title = (f"Task for {task['manager'] or 'nobody'}: «{task['title']}», due "
                 f"{due:%Y-%m-%d %H:%M} UTC" if kind == ev.TASK_CREATED
                 else f"Task done: «{task['title']}»")
        return task["contact_id"], title, {
            "task_id": task["id"], "deal_id": task["deal_id"], "manager": task["manager"],
            "due_at": due.isoformat(), "actor": event.get("actor")}
    deal, change = event["deal"], event.get("change") or {}
    title = {
        ev.DEAL_CREATED: f"Deal «{deal['title']}» opened in «{deal['pipeline_name']}» "
                         f"at «{deal['stage_name']}»",
        ev.DEAL_STAGE_CHANGED: f"Deal «{deal['title']}»: «{change.get('from_stage_name')}» → "
                               f"«{change.get('to_stage_name')}»",
        ev.DEAL_WON: f"Deal «{deal['title']}» won",
        ev.DEAL_LOST: f"Deal «{deal['title']}» lost",
    }[kind]
    if kind in (ev.DEAL_WON, ev.DEAL_LOST) and deal.get("close_reason"):
        title += f": {deal['close_reason']}"
    return deal["contact_id"], title, {
        "deal_id": deal["id"], "pipeline_id": deal["pipeline_id"], "stage_id": deal["stage_id"],
        "stage_name": deal["stage_name"], "status": deal["status"], "manager": deal["manager"],
        "amount": None if deal["amount"] is None else str(deal["amount"]),
        "currency": deal["currency"], "actor": change.get("actor")}


def add_sales_entry(tx, kind: str, event: dict) -> dict | None:
    """A deals event (deal_created, deal_stage_changed, deal_won, deal_lost, task_created,
    task_completed, goods_arrived) as an entry on the client's card; a redelivered event adds
    nothing."""
    contact_id, title, data = _sales_entry(kind, event)
    if contact_id is None:
        return None
    try:
        contact_id = resolve_id(tx.conn, contact_id)
    except NotFound:
        raise PermanentError(f"{kind} {event['event_id']}: no card {contact_id}") from None
    return add_timeline_entry(tx, contact_id, kind, title, f"{kind}:{event['event_id']}",
                              occurred_at=event["occurred_at"], data=data)
