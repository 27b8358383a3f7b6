"""Campaign segments over client cards: a page of the live cards (with an email) that match
tags, source and last activity, in id order.

Tags and source are JSON on the card, stored differently by PostgreSQL and SQLite, so they
are matched here in Python over a chunk of cards read by id; last activity (the newest
timeline entry, or the card's creation when it has none) is one grouped query per chunk.
"""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.runtime.db import as_utc
from crmhub.services.contacts.models import contact_emails, contacts, timeline

# Cards read per query: a page of matches may need several chunks when few cards match.
CHUNK = 2000
# Cards looked at per call at most: a selective filter returns a short page (or none) with
# next_after set, rather than holding the caller while it scans the whole table.
MAX_SCANNED = 50000


def matches_card(card: dict, segment: dict) -> bool:
    """The card-side filters of a segment (deals and consent are matched elsewhere)."""
    tags = set(card.get("tags") or [])
    if segment.get("tags_any") and not tags.intersection(segment["tags_any"]):
        return False
    if segment.get("tags_all") and not tags.issuperset(segment["tags_all"]):
        return False
    source = card.get("source") or {}
    for key in ("channel", "connector"):
        wanted = segment.get(f"source_{key}")
        if wanted and source.get(key) != wanted:
            return False
    activity = card.get("last_activity")
    after, before = segment.get("last_activity_after"), segment.get("last_activity_before")
    if after is not None and (activity is None or activity < after):
        return False
    if before is not None and (activity is None or activity >= before):
        return False
    return True


def _first_emails(conn, ids: list[str]) -> dict[str, str]:
    first: dict[str, tuple[int, str]] = {}
    rows = conn.execute(sa.select(contact_emails.c.contact_id, contact_emails.c.email,
                                  contact_emails.c.position)
                        .where(contact_emails.c.contact_id.in_(ids)))
    for row in rows:
        if row.contact_id not in first or (row.position, row.email) < first[row.contact_id]:
            first[row.contact_id] = (row.position, row.email)
    return {contact_id: email for contact_id, (_, email) in first.items()}


def _last_activity(conn, ids: list[str]) -> dict:
    rows = conn.execute(sa.select(timeline.c.contact_id, sa.func.max(timeline.c.occurred_at))
                        .where(timeline.c.contact_id.in_(ids)).group_by(timeline.c.contact_id))
    return {contact_id: as_utc(at) for contact_id, at in rows}


def segment_page(conn, segment: dict, after_id: str | None, limit: int) -> dict:
    """Up to ``limit`` matching cards after ``after_id``; ``next_after`` is None once the
    last card was looked at."""
    wants_activity = (segment.get("last_activity_after") is not None
                      or segment.get("last_activity_before") is not None)
    items: list[dict] = []
    cursor, scanned = after_id, 0
    while len(items) < limit and scanned < MAX_SCANNED:
        chunk = CHUNK if wants_activity else min(CHUNK, max(limit - len(items), 100))
        query = (sa.select(contacts.c.id, contacts.c.name, contacts.c.company, contacts.c.manager,
                           contacts.c.tags, contacts.c.source, contacts.c.custom_fields,
                           contacts.c.created_at)
                 .where(contacts.c.merged_into.is_(None)).order_by(contacts.c.id).limit(chunk))
        if cursor is not None:
            query = query.where(contacts.c.id > cursor)
        rows = conn.execute(query).all()
        if not rows:
            return {"items": items, "next_after": None}
        scanned += len(rows)
        ids = [row.id for row in rows]
        emails = _first_emails(conn, ids)
        activity = _last_activity(conn, ids) if wants_activity else {}
        for row in rows:
            cursor = row.id
            if row.id not in emails:
                continue
            card = {"tags": row.tags, "source": row.source,
                    "last_activity": activity.get(row.id) or as_utc(row.created_at)}
            if matches_card(card, segment):
                items.append({"id": row.id, "email": emails[row.id], "name": row.name,
                              "company": row.company, "manager": row.manager,
                              "tags": row.tags or [], "custom_fields": row.custom_fields or {}})
                if len(items) >= limit:
                    break
        if len(rows) < chunk and cursor == rows[-1].id:
            return {"items": items, "next_after": None}  # that was the last card
    return {"items": items, "next_after": cursor}
