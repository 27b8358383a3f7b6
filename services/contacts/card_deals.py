"""Each card's deals, kept from the deals service's events: the incoming-call popup shows a
caller's open deals from here, without waiting on a second service while the phone rings.

A deal is kept as its newest announced version (events of one deal may arrive out of order);
the deals that existed before this copy did are fetched once (``backfill``)."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crmhub.runtime.db import insert_ignoring_conflicts, is_postgres, utcnow
from crmhub.runtime.prepared import PreparedRead
from crmhub.services.contacts.models import backfills, card_deals, contacts

BACKFILL = "card_deals"
BRIEF = ("title", "pipeline_name", "stage_name", "amount", "currency", "manager")

# A card's open deals are those kept under its id or the id of a card merged into it (a deal
# keeps the card id it was announced with: the deals service moves deals to the surviving
# card without a new version, and an event may cross a merge).
_CARD = sa.bindparam("contact_id", type_=card_deals.c.contact_id.type)
_OPEN_OF_CARD = PreparedRead("open_deals_of_card", (
    sa.select(card_deals)
    .where(card_deals.c.contact_id.in_(sa.union_all(
               sa.select(_CARD), sa.select(contacts.c.id).where(contacts.c.merged_into == _CARD))),
           card_deals.c.status == "open")
    .order_by(card_deals.c.updated_at.desc(), card_deals.c.deal_id)
    .limit(sa.bindparam("limit"))))


def record_deals(conn, deals: list[dict]) -> None:
    """Keep each deal (loaded ``DealSchema``s, each deal once), unless a newer version of it
    is kept already."""
    if not deals:
        return
    dialect = postgresql if is_postgres(conn) else sqlite
    stmt = dialect.insert(card_deals)
    stmt = stmt.on_conflict_do_update(
        index_elements=[card_deals.c.deal_id],
        set_={c.name: stmt.excluded[c.name] for c in card_deals.columns if c.name != "deal_id"},
        where=card_deals.c.version < stmt.excluded.version)
    conn.execute(stmt, [{
        "deal_id": deal["id"], "contact_id": deal["contact_id"], "status": deal["status"],
        "version": deal["version"], "updated_at": deal["updated_at"],
        **{key: deal.get(key) for key in BRIEF},
        "amount": None if deal.get("amount") is None else str(deal["amount"])} for deal in deals])


def open_deals(conn, contact_id: str, limit: int) -> list[dict]:
    """A card's open deals, latest activity first, as the popup lists them."""
    return [{"id": row.deal_id, **{key: getattr(row, key) for key in BRIEF}}
            for row in _OPEN_OF_CARD.execute(conn, {"contact_id": contact_id, "limit": limit})]


# -- the deals from before the copy ------------------------------------------------------------

def backfilled(conn) -> bool:
    return conn.execute(sa.select(backfills.c.done_at)
                        .where(backfills.c.name == BACKFILL)).first() is not None


def mark_backfilled(conn) -> None:
    insert_ignoring_conflicts(conn, backfills, [{"name": BACKFILL, "done_at": utcnow()}])


def backfill(db, fetch_page) -> int:
    """Copy every open deal, a page at a time (``fetch_page(after_id)`` returns a loaded
    ``OpenDealsPageSchema``), then note it done. Events handled meanwhile are no problem: the
    newer version of a deal wins either way. Returns the deals copied."""
    copied, after_id = 0, None
    while True:
        page = fetch_page(after_id)
        with db.transaction() as tx:
            record_deals(tx.conn, page["items"])
            if page["next_after"] is None:
                mark_backfilled(tx.conn)
        copied += len(page["items"])
        if page["next_after"] is None:
            return copied
        after_id = page["next_after"]
