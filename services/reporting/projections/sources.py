"""Lead sources: leads, deals, won deals and revenue by source / medium / campaign, with the
cost per lead and per sale where ad spend was entered.

Where a client came from is the card's source: UTM tags first, else the connector, the channel
and the form (``source_keys``). A deal counts under its own source, else its card's.
Leads are the cards created in the period (a card merged into another is no lead of its own);
deals count in the period they were created, won deals and revenue in the period they were won.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crmhub.contracts.errors import InvalidInput
from crmhub.runtime.db import new_id, utcnow
from crmhub.services.reporting.models import TIME, card_aliases, metadata
from crmhub.services.reporting.projections.snapshots import (
    cents,
    epoch_us,
    money,
    period_bounds,
    ratio,
    upsert_latest,
    utc,
    within,
)

TITLE = "Lead sources"
DESCRIPTION = ("Leads, deals, won deals and revenue by source, medium and campaign (UTM tags, "
               "else connector and form), with the cost per lead and per sale from ad spend.")
KEY = sa.String(200)

# The latest snapshot of every card (from contact_created / contact_updated).
cards = sa.Table(
    "sources_cards", metadata,
    sa.Column("contact_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(300)),
    sa.Column("manager", sa.String(100)),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("source", KEY, nullable=False),
    sa.Column("medium", KEY, nullable=False),
    sa.Column("campaign", KEY, nullable=False),
    sa.Column("utm_source", KEY),
    sa.Column("connector", KEY),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_sources_cards_created", cards.c.created_at)

# The latest snapshot of every deal (highest version wins); churn reads the won ones too.
deals = sa.Table(
    "sources_deals", metadata,
    sa.Column("deal_id", sa.String(64), primary_key=True),
    sa.Column("contact_id", sa.String(64), nullable=False),
    sa.Column("pipeline_id", sa.String(64)),
    sa.Column("manager", sa.String(100)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("closed_at", TIME),
    sa.Column("amount_cents", sa.BigInteger),
    # Null when the deal has no source of its own: its card's counts.
    sa.Column("source", KEY),
    sa.Column("medium", KEY),
    sa.Column("campaign", KEY),
    sa.Column("utm_source", KEY),
    sa.Column("connector", KEY),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_sources_deals_created", deals.c.created_at)
sa.Index("ix_sources_deals_contact", deals.c.contact_id, deals.c.status)

# Entered through the API, not derived from events: a rebuild keeps it (not in TABLES).
ad_spend = sa.Table(
    "ad_spend", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("source", KEY, nullable=False),
    sa.Column("medium", KEY, nullable=False, server_default=""),
    sa.Column("campaign", KEY, nullable=False, server_default=""),
    sa.Column("period_from", sa.Date, nullable=False),
    sa.Column("period_to", sa.Date, nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("created_at", TIME, nullable=False),
    sa.UniqueConstraint("source", "medium", "campaign", "period_from", "period_to",
                        name="uq_ad_spend_period"),
)

TABLES = [cards, deals]


def source_keys(source: dict | None) -> dict | None:
    """(source, medium, campaign) of a card's or deal's source: UTM tags where given, else
    connector (or channel), channel and form. None when there is no source at all."""
    if not source:
        return None
    tracking = source.get("tracking") or {}
    channel = source.get("channel") or ""
    return {
        "source": tracking.get("utm_source") or source.get("connector") or channel or "direct",
        "medium": tracking.get("utm_medium") or channel,
        "campaign": tracking.get("utm_campaign") or source.get("form") or "",
        "utm_source": tracking.get("utm_source"),
        "connector": source.get("connector"),
    }


NO_SOURCE = {"source": "direct", "medium": "", "campaign": "", "utm_source": None,
             "connector": None}


# -- handlers ----------------------------------------------------------------------------------

def apply_contacts(tx, events: list[dict]) -> None:
    rows = []
    for event in events:
        contact = event["contact"]
        rows.append({
            "contact_id": contact["id"], "name": contact.get("name") or contact.get("company"),
            "manager": contact.get("manager"), "created_at": utc(contact["created_at"]),
            **(source_keys(contact.get("source")) or NO_SOURCE),
            "updated_us": epoch_us(contact["updated_at"]),
        })
    upsert_latest(tx.conn, cards, rows, ["contact_id"], ["updated_us"])


def apply_deals(tx, events: list[dict]) -> None:
    rows = []
    for event in events:
        deal = event["deal"]
        keys = source_keys(deal.get("source")) or dict.fromkeys(NO_SOURCE)
        rows.append({
            "deal_id": deal["id"], "contact_id": deal["contact_id"],
            "pipeline_id": deal["pipeline_id"], "manager": deal.get("manager"),
            "status": deal["status"], "created_at": utc(deal["created_at"]),
            "closed_at": utc(deal.get("closed_at")), "amount_cents": cents(deal.get("amount")),
            **keys, "version": deal["version"], "updated_us": epoch_us(deal["updated_at"]),
        })
    upsert_latest(tx.conn, deals, rows, ["deal_id"], ["version", "updated_us"])


HANDLES = {
    "contact_created": apply_contacts,
    "contact_updated": apply_contacts,
    "deal_created": apply_deals,
    "deal_updated": apply_deals,
    "deal_stage_changed": apply_deals,
    "deal_won": apply_deals,
    "deal_lost": apply_deals,
}


# -- ad spend ----------------------------------------------------------------------------------

def put_ad_spend(tx, entry: dict) -> dict:
    """Record what was spent on a source (optionally one medium / campaign of it) over a
    period; entering the same source and period again replaces the amount."""
    if entry["period_to"] < entry["period_from"]:
        raise InvalidInput("period_to is before period_from",
                           {"period_to": ["Must not be before period_from."]})
    row = {"source": entry["source"], "medium": entry.get("medium") or "",
           "campaign": entry.get("campaign") or "", "period_from": entry["period_from"],
           "period_to": entry["period_to"], "amount_cents": cents(entry["amount"])}
    same = sa.and_(*(ad_spend.c[k] == row[k] for k in
                     ("source", "medium", "campaign", "period_from", "period_to")))
    found = tx.execute(sa.select(ad_spend.c.id).where(same)).scalar()
    if found:
        tx.execute(ad_spend.update().where(ad_spend.c.id == found).values(**row))
    else:
        found = new_id()
        tx.execute(ad_spend.insert().values(id=found, created_at=utcnow(), **row))
    return _spend_entry(tx.execute(sa.select(ad_spend).where(ad_spend.c.id == found)).one())


def list_ad_spend(conn) -> list[dict]:
    rows = conn.execute(sa.select(ad_spend).order_by(ad_spend.c.period_from, ad_spend.c.source,
                                                     ad_spend.c.medium, ad_spend.c.campaign))
    return [_spend_entry(r) for r in rows]


def _spend_entry(row) -> dict:
    return {"id": row.id, "source": row.source, "medium": row.medium or None,
            "campaign": row.campaign or None, "period_from": row.period_from,
            "period_to": row.period_to, "amount": f"{row.amount_cents / 100:.2f}",
            "created_at": utc(row.created_at)}


def prorated_cents(entry, start: dt.date | None, end: dt.date | None) -> float:
    """The part of an entry's amount falling in [start, end] (dates, both included), in
    proportion to the days of the entry's period that overlap it."""
    first = max(entry.period_from, start) if start else entry.period_from
    last = min(entry.period_to, end) if end else entry.period_to
    overlap = (last - first).days + 1
    if overlap <= 0:
        return 0.0
    return entry.amount_cents * overlap / ((entry.period_to - entry.period_from).days + 1)


# -- report ------------------------------------------------------------------------------------

COLUMNS = [
    {"key": "source", "title": "Source", "kind": "text"},
    {"key": "medium", "title": "Medium", "kind": "text"},
    {"key": "campaign", "title": "Campaign", "kind": "text"},
    {"key": "leads", "title": "Leads", "kind": "int"},
    {"key": "deals", "title": "Deals", "kind": "int"},
    {"key": "won", "title": "Won", "kind": "int"},
    {"key": "revenue", "title": "Revenue", "kind": "money"},
    {"key": "lead_to_sale", "title": "Lead to sale", "kind": "percent"},
    {"key": "spend", "title": "Ad spend", "kind": "money"},
    {"key": "cost_per_lead", "title": "Cost per lead", "kind": "money"},
    {"key": "cost_per_sale", "title": "Cost per sale", "kind": "money"},
]
GROUP = ("source", "medium", "campaign")


def _merged_away():
    return sa.select(card_aliases.c.source_id)


def _source_filter(columns, value):
    return sa.or_(*(c == value for c in columns))


def _lead_counts(conn, filters, start, end) -> dict[tuple, int]:
    query = (sa.select(cards.c.source, cards.c.medium, cards.c.campaign, sa.func.count())
             .where(cards.c.contact_id.not_in(_merged_away()),
                    *within(cards.c.created_at, start, end))
             .group_by(cards.c.source, cards.c.medium, cards.c.campaign))
    if filters.get("manager"):
        query = query.where(cards.c.manager == filters["manager"])
    if filters.get("source"):
        query = query.where(_source_filter(
            [cards.c.source, cards.c.utm_source, cards.c.connector], filters["source"]))
    return {tuple(r[:3]): r[3] for r in conn.execute(query)}


def _deal_counts(conn, filters, start, end, won: bool) -> dict[tuple, tuple[int, int]]:
    card = cards.alias("card")
    joined = deals.outerjoin(card, card.c.contact_id == deals.c.contact_id)
    keys = [sa.func.coalesce(deals.c[k], card.c[k], NO_SOURCE[k]).label(k) for k in GROUP]
    query = sa.select(*keys, sa.func.count(), sa.func.sum(deals.c.amount_cents)).select_from(joined)
    if won:
        query = query.where(deals.c.status == "won", *within(deals.c.closed_at, start, end))
    else:
        query = query.where(*within(deals.c.created_at, start, end))
    if filters.get("pipeline_id"):
        query = query.where(deals.c.pipeline_id == filters["pipeline_id"])
    if filters.get("manager"):
        query = query.where(deals.c.manager == filters["manager"])
    if filters.get("source"):
        query = query.where(_source_filter([keys[0], sa.func.coalesce(
            deals.c.utm_source, card.c.utm_source), sa.func.coalesce(
            deals.c.connector, card.c.connector)], filters["source"]))
    query = query.group_by(*keys)
    # int(): PostgreSQL sums a bigint to a Decimal.
    return {tuple(r[:3]): (r[3], int(r[4] or 0)) for r in conn.execute(query)}


def _allocate_spend(conn, filters, rows: dict[tuple, dict]) -> float:
    """Spread each entry's prorated amount over the rows it covers, in proportion to their
    leads (evenly when none has leads); an entry covering no row gets a row of its own."""
    start, end = (d.date() if d else None for d in period_bounds(filters))
    end = end - dt.timedelta(days=1) if end else None
    total = 0.0
    for entry in conn.execute(sa.select(ad_spend)):
        if filters.get("source") and entry.source != filters["source"]:
            continue
        amount = prorated_cents(entry, start, end)
        if not amount:
            continue
        total += amount
        covered = [key for key in rows if key[0] == entry.source
                   and (not entry.medium or key[1] == entry.medium)
                   and (not entry.campaign or key[2] == entry.campaign)]
        if not covered:
            key = (entry.source, entry.medium, entry.campaign)
            rows[key] = _empty_row(key)
            covered = [key]
        leads = sum(rows[k]["leads"] for k in covered)
        for key in covered:
            share = rows[key]["leads"] / leads if leads else 1 / len(covered)
            rows[key]["spend_cents"] += amount * share
    return total


def _empty_row(key: tuple) -> dict:
    return {"source": key[0], "medium": key[1], "campaign": key[2], "leads": 0, "deals": 0,
            "won": 0, "revenue_cents": 0, "spend_cents": 0.0}


def report(conn, filters: dict) -> dict:
    start, end = period_bounds(filters)
    rows: dict[tuple, dict] = {}

    def row(key):
        return rows.setdefault(key, _empty_row(key))

    for key, count in _lead_counts(conn, filters, start, end).items():
        row(key)["leads"] = count
    for key, (count, _) in _deal_counts(conn, filters, start, end, won=False).items():
        row(key)["deals"] = count
    for key, (count, revenue) in _deal_counts(conn, filters, start, end, won=True).items():
        row(key)["won"] = count
        row(key)["revenue_cents"] = revenue
    spend = _allocate_spend(conn, filters, rows)

    table = [_finish(r) for r in sorted(rows.values(), key=lambda r: (
        -r["leads"], -r["revenue_cents"], r["source"], r["medium"], r["campaign"]))]
    leads = sum(r["leads"] for r in table)
    won = sum(r["won"] for r in table)
    return {
        "report": "sources", "title": TITLE, "filters": filters,
        "columns": COLUMNS, "rows": table[:int(filters.get("limit") or len(table))],
        "chart": {"type": "bar", "x": "source", "y": ["leads", "deals", "won"]},
        "summary": {
            "rows": len(table), "leads": leads, "deals": sum(r["deals"] for r in table), "won": won,
            "revenue": money(sum(r["revenue_cents"] for r in rows.values())),
            "spend": money(round(spend)),
            "cost_per_lead": money(round(spend / leads)) if spend and leads else None,
            "cost_per_sale": money(round(spend / won)) if spend and won else None,
        },
    }


def _finish(r: dict) -> dict:
    spend = r["spend_cents"]
    return {
        "source": r["source"], "medium": r["medium"], "campaign": r["campaign"],
        "leads": r["leads"], "deals": r["deals"], "won": r["won"],
        "revenue": money(r["revenue_cents"]), "lead_to_sale": ratio(r["won"], r["leads"]),
        "spend": money(round(spend)) if spend else None,
        "cost_per_lead": money(round(spend / r["leads"])) if spend and r["leads"] else None,
        "cost_per_sale": money(round(spend / r["won"])) if spend and r["won"] else None,
    }
