"""Churn risk: clients who bought at least twice and whose time since their last purchase
exceeds ``factor`` (default 1.5) times their usual interval between purchases (the median of
their intervals), ranked by how far past it they are.

A purchase is a deal whose latest state is won (a deal moved back out of won is none), at the
time it was won; merged cards are one client. Read from the deal and card snapshots the
sources projection keeps, so this module has no tables or handlers of its own.
"""
from __future__ import annotations

import datetime as dt
import statistics

import sqlalchemy as sa

from crmhub.runtime.db import utcnow
from crmhub.services.reporting.models import card_aliases
from crmhub.services.reporting.projections import aliases
from crmhub.services.reporting.projections.snapshots import period_bounds, resolve_aliases, utc
from crmhub.services.reporting.projections.sources import cards, deals

TITLE = "Churn risk"
DESCRIPTION = ("Clients whose time since their last purchase exceeds their usual interval "
               "between purchases by a factor, most overdue first.")
DEFAULT_FACTOR = 1.5
DAY = dt.timedelta(days=1)
# Two purchases on one day would make any pause look endless: a usual interval is a day at least.
MIN_INTERVAL = DAY

TABLES: list = []
HANDLES: dict = {}

COLUMNS = [
    {"key": "client", "title": "Client", "kind": "text"},
    {"key": "contact_id", "title": "Card", "kind": "text"},
    {"key": "purchases", "title": "Purchases", "kind": "int"},
    {"key": "last_purchase", "title": "Last purchase", "kind": "date"},
    {"key": "usual_interval_days", "title": "Usual interval, days", "kind": "int"},
    {"key": "days_since", "title": "Days since last", "kind": "int"},
    {"key": "days_overdue", "title": "Days overdue", "kind": "int"},
    {"key": "ratio", "title": "Since last / usual interval", "kind": "percent"},
    {"key": "manager", "title": "Manager", "kind": "text"},
]


def _purchases(conn, filters) -> dict[str, list[tuple]]:
    """Resolved card -> [(won at, manager)] oldest first."""
    won = [deals.c.status == "won", deals.c.closed_at.is_not(None)]
    if filters.get("pipeline_id"):
        won.append(deals.c.pipeline_id == filters["pipeline_id"])
    # Only cards that bought twice, or that a merge joins to another card, can qualify.
    repeat = (sa.select(deals.c.contact_id).where(*won).group_by(deals.c.contact_id)
              .having(sa.func.count() >= 2))
    merged = sa.union(sa.select(card_aliases.c.source_id), sa.select(card_aliases.c.target_id))
    query = (sa.select(deals.c.contact_id, deals.c.closed_at, deals.c.manager)
             .where(*won, sa.or_(deals.c.contact_id.in_(repeat), deals.c.contact_id.in_(merged))))
    rows = conn.execute(query).all()
    resolved = resolve_aliases(aliases.merges(conn), {r.contact_id for r in rows})
    bought: dict[str, list[tuple]] = {}
    for row in rows:
        bought.setdefault(resolved[row.contact_id], []).append((utc(row.closed_at), row.manager))
    for purchases in bought.values():
        purchases.sort(key=lambda p: p[0])
    return bought


def at_risk(purchases: list[tuple], as_of: dt.datetime, factor: float) -> dict | None:
    """The churn figures of one client's purchases, or None when not at risk."""
    times = [t for t, _ in purchases if t <= as_of]
    if len(times) < 2:
        return None
    usual = max(statistics.median(b - a for a, b in zip(times, times[1:])), MIN_INTERVAL)
    since = as_of - times[-1]
    ratio = since / usual
    if ratio <= factor:
        return None
    return {"purchases": len(times), "last_purchase": times[-1].date().isoformat(),
            "usual_interval_days": round(usual / DAY, 1), "days_since": round(since / DAY, 1),
            "days_overdue": round((since - usual) / DAY, 1), "ratio": round(ratio, 4),
            "manager": next(m for t, m in reversed(purchases) if t <= as_of)}


def report(conn, filters: dict) -> dict:
    factor = float(filters.get("factor") or DEFAULT_FACTOR)
    _, end = period_bounds(filters)
    as_of = min(end, utcnow()) if end else utcnow()
    rows = []
    for contact_id, purchases in _purchases(conn, filters).items():
        risk = at_risk(purchases, as_of, factor)
        if risk and (not filters.get("manager") or risk["manager"] == filters["manager"]):
            rows.append({"contact_id": contact_id, **risk})
    rows.sort(key=lambda r: (-r["ratio"], r["contact_id"]))
    total = len(rows)
    rows = rows[:int(filters.get("limit") or 100)]
    names = dict(conn.execute(sa.select(cards.c.contact_id, cards.c.name)
                              .where(cards.c.contact_id.in_([r["contact_id"] for r in rows]))).all())
    rows = [{"client": names.get(r["contact_id"]) or r["contact_id"], **r,
             "name": names.get(r["contact_id"])} for r in rows]
    return {
        "report": "churn", "title": TITLE, "filters": filters,
        "columns": COLUMNS, "rows": rows,
        "chart": {"type": "bar", "x": "client", "y": ["ratio"]},
        "highlight": {"row": 0, "why": "most overdue client"} if rows else None,
        "summary": {"at_risk": total, "shown": len(rows), "factor": factor,
                    "as_of": as_of.isoformat()},
    }
