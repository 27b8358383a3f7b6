"""Managers: calls made, answered and missed, talk time, deals created and won, revenue,
against each manager's monthly plan.

Calls: the newest snapshot of each call (by its ``updated_at``) is kept, so call_answered,
call_finished and call_missed in any order leave the same row. A call counts in the period it
started; made = outbound, answered/missed = inbound by the manager of the extension, talk
time = the duration of every answered call. Deals come from the funnel's per-deal records:
created in the period, won (and revenue) by the time they were closed.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.runtime.db import utcnow
from crmhub.services.reporting.models import TIME, manager_plans, metadata
from crmhub.services.reporting.projections import bulk, funnel
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

TITLE = "Managers"
DESCRIPTION = ("Per manager: calls made, answered, missed, talk time, deals created and won, "
               "revenue, and the share of the monthly plan reached.")

calls = sa.Table(
    "manager_calls", metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("manager", sa.String(100), nullable=False),
    sa.Column("direction", sa.String(10)),
    sa.Column("outcome", sa.String(10)),
    sa.Column("started_at", TIME, nullable=False),
    sa.Column("talk_s", sa.Integer, nullable=False),
    sa.Column("order_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_manager_calls_started", calls.c.started_at, calls.c.manager)

TABLES = [calls]


def apply_call_events(tx, events: list[dict]) -> None:
    rows = []
    for event in events:
        call = event["call"]
        rows.append({
            "call_id": call["id"], "manager": call.get("manager") or "",
            "direction": call.get("direction"), "outcome": call.get("outcome"),
            "started_at": utc(call["created_at"]), "talk_s": call.get("duration_s") or 0,
            "order_us": epoch_us(call["updated_at"]),
        })
    upsert_latest(tx.conn, calls, rows, ["call_id"], ["order_us"])


HANDLES = {t: apply_call_events for t in (ev.CALL_ANSWERED, ev.CALL_FINISHED, ev.CALL_MISSED)}


# -- plans -------------------------------------------------------------------------------------

def put_plan(tx, manager: str, month: str, plan: dict) -> dict:
    row = {"manager": manager, "month": month, "calls": plan.get("calls"),
           "deals_won": plan.get("deals_won"), "revenue_cents": cents(plan.get("revenue")),
           "updated_at": utcnow()}
    bulk.upsert(tx.conn, manager_plans, [row], ["manager", "month"],
                replace=["calls", "deals_won", "revenue_cents", "updated_at"])
    return _plan(row)


def list_plans(conn, month: str | None = None) -> list[dict]:
    query = sa.select(manager_plans).order_by(manager_plans.c.month, manager_plans.c.manager)
    if month:
        query = query.where(manager_plans.c.month == month)
    return [_plan(r._asdict()) for r in conn.execute(query)]


def _plan(row: dict) -> dict:
    revenue = row["revenue_cents"]
    return {"manager": row["manager"], "month": row["month"], "calls": row["calls"],
            "deals_won": row["deals_won"],
            "revenue": None if revenue is None else Decimal(revenue) / 100,
            "updated_at": utc(row["updated_at"])}


def plan_months(start: dt.datetime | None, end: dt.datetime | None) -> list[str] | None:
    """The months ('YYYY-MM') a period touches; None (every month) without a full period."""
    if start is None or end is None:
        return None
    months, cursor = [], start.date().replace(day=1)
    while cursor < end.date():
        months.append(cursor.strftime("%Y-%m"))
        cursor = funnel._next_month(cursor)
    return months


# -- report ------------------------------------------------------------------------------------

COLUMNS = [
    {"key": "manager", "title": "Manager", "kind": "text"},
    {"key": "calls_made", "title": "Calls made", "kind": "int"},
    {"key": "calls_answered", "title": "Calls answered", "kind": "int"},
    {"key": "calls_missed", "title": "Calls missed", "kind": "int"},
    {"key": "talk_seconds", "title": "Talk time", "kind": "seconds"},
    {"key": "deals_created", "title": "Deals created", "kind": "int"},
    {"key": "deals_won", "title": "Deals won", "kind": "int"},
    {"key": "revenue", "title": "Revenue", "kind": "money"},
    {"key": "plan_revenue", "title": "Revenue plan", "kind": "money"},
    {"key": "revenue_of_plan", "title": "Revenue, share of plan", "kind": "percent"},
    {"key": "plan_deals_won", "title": "Deals won plan", "kind": "int"},
    {"key": "won_of_plan", "title": "Deals won, share of plan", "kind": "percent"},
    {"key": "plan_calls", "title": "Calls plan", "kind": "int"},
    {"key": "calls_of_plan", "title": "Calls made, share of plan", "kind": "percent"},
]
FIGURES = ["calls_made", "calls_answered", "calls_missed", "talk_seconds", "deals_created",
           "deals_won", "revenue_cents"]


def report(conn, filters: dict) -> dict:
    start, end = period_bounds(filters)
    figures: dict[str, dict] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    _call_figures(conn, filters, start, end, figures)
    _deal_figures(conn, filters, start, end, figures)
    plans = _plans(conn, filters, plan_months(start, end))
    rows = []
    for manager in sorted(set(figures) | set(plans)):
        f, plan = figures[manager], plans.get(manager, {})
        rows.append({
            "key": manager, "manager": manager,
            **{k: f[k] for k in FIGURES if k != "revenue_cents"},
            "revenue": money(f["revenue_cents"]),
            "plan_revenue": money(plan["revenue_cents"]) if plan.get("revenue_cents") is not None
            else None,
            "revenue_of_plan": ratio(f["revenue_cents"], plan.get("revenue_cents")),
            "plan_deals_won": plan.get("deals_won"),
            "won_of_plan": ratio(f["deals_won"], plan.get("deals_won")),
            "plan_calls": plan.get("calls"),
            "calls_of_plan": ratio(f["calls_made"], plan.get("calls")),
        })
    return {
        "report": "managers", "title": TITLE, "columns": COLUMNS, "rows": rows,
        "chart": {"type": "bar", "x": "manager", "y": ["revenue", "plan_revenue"]},
        "highlight": None,
        "summary": {"managers": len(rows),
                    "revenue": money(sum(figures[m]["revenue_cents"] for m in figures)),
                    "deals_won": sum(figures[m]["deals_won"] for m in figures),
                    "calls_made": sum(figures[m]["calls_made"] for m in figures)},
    }


def _call_figures(conn, filters, start, end, figures) -> None:
    inbound = calls.c.direction == "inbound"
    answered = calls.c.outcome == "answered"
    count = sa.func.count
    query = (sa.select(
        calls.c.manager,
        count().filter(calls.c.direction == "outbound").label("calls_made"),
        count().filter(inbound, answered).label("calls_answered"),
        count().filter(inbound, sa.or_(calls.c.outcome.is_(None), ~answered)).label("calls_missed"),
        sa.func.coalesce(sa.func.sum(calls.c.talk_s).filter(answered), 0).label("talk_seconds"))
        .where(calls.c.manager != "", *within(calls.c.started_at, start, end))
        .group_by(calls.c.manager))
    if filters.get("manager"):
        query = query.where(calls.c.manager == filters["manager"])
    for row in conn.execute(query):
        for key in ("calls_made", "calls_answered", "calls_missed", "talk_seconds"):
            figures[row.manager][key] = int(getattr(row, key) or 0)


def _deal_filters(filters) -> list:
    deals = funnel.deals
    conditions = [deals.c.manager != ""]
    for name in ("pipeline_id", "manager", "source"):
        if filters.get(name):
            conditions.append(deals.c[name] == filters[name])
    return conditions


def _deal_figures(conn, filters, start, end, figures) -> None:
    deals = funnel.deals
    created = (sa.select(deals.c.manager, sa.func.count().label("n"))
               .where(*_deal_filters(filters), *within(deals.c.created_at, start, end))
               .group_by(deals.c.manager))
    for row in conn.execute(created):
        figures[row.manager]["deals_created"] = int(row.n)
    won = (sa.select(deals.c.manager, sa.func.count().label("n"),
                     sa.func.coalesce(sa.func.sum(deals.c.amount_cents), 0).label("revenue"))
           .where(*_deal_filters(filters), deals.c.status == "won",
                  *within(deals.c.closed_at, start, end))
           .group_by(deals.c.manager))
    for row in conn.execute(won):
        figures[row.manager]["deals_won"] = int(row.n)
        figures[row.manager]["revenue_cents"] = int(row.revenue)


def _plans(conn, filters, months) -> dict[str, dict]:
    query = sa.select(manager_plans)
    if months is not None:
        query = query.where(manager_plans.c.month.in_(months))
    if filters.get("manager"):
        query = query.where(manager_plans.c.manager == filters["manager"])
    plans: dict[str, dict] = {}
    for row in conn.execute(query):
        plan = plans.setdefault(row.manager, {"calls": None, "deals_won": None,
                                              "revenue_cents": None})
        for key in ("calls", "deals_won", "revenue_cents"):
            value = getattr(row, key)
            if value is not None:
                plan[key] = (plan[key] or 0) + value
    return plans
