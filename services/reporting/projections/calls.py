"""Call center: inbound calls, the missed share, wait and answer times, calls per hour of the
day and missed calls called back in time.

One row per call: the latest of its snapshots by (stage, update time), so a ``call_ringing``
arriving after ``call_missed`` changes nothing. A call counts in the period it started.
Wait = from the first ring until answered, or until the caller hung up on a missed call;
answer time = the same for answered calls only. A missed inbound call is called back when an
outbound call to the same number, or an answered inbound call from it, starts within
``callback_minutes`` (default 15) after the missed call ended.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from crmhub.services.reporting.models import TIME, metadata
from crmhub.services.reporting.projections.snapshots import (
    epoch_us,
    period_bounds,
    ratio,
    upsert_latest,
    utc,
    within,
)

TITLE = "Call center"
DESCRIPTION = ("Inbound calls, the missed share, average wait and answer time, calls per hour "
               "of the day and missed calls called back within N minutes.")
DEFAULT_CALLBACK_MINUTES = 15
DEFAULT_TIME_ZONE = "UTC"
# How far a call has got: a later stage's snapshot replaces an earlier one's.
STAGES = {"call_ringing": 1, "call_answered": 2, "call_finished": 3, "call_missed": 3}

calls = sa.Table(
    "calls_log", metadata,
    sa.Column("call_id", sa.String(64), primary_key=True),
    sa.Column("direction", sa.String(10)),
    sa.Column("outcome", sa.String(10)),
    sa.Column("client_number", sa.String(64)),
    sa.Column("manager", sa.String(100)),
    sa.Column("started_at", TIME, nullable=False),
    # Times as epoch milliseconds: both databases do the arithmetic of the report the same way.
    sa.Column("started_ms", sa.BigInteger, nullable=False),
    sa.Column("ended_ms", sa.BigInteger, nullable=False, doc="ended, else started"),
    sa.Column("answered", sa.Boolean, nullable=False),
    sa.Column("missed", sa.Boolean, nullable=False, doc="ended without being answered"),
    sa.Column("wait_ms", sa.BigInteger, doc="until answered, or until a missed call ended"),
    sa.Column("talk_s", sa.Integer),
    sa.Column("stage", sa.SmallInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_calls_log_started", calls.c.started_at)
sa.Index("ix_calls_log_number", calls.c.client_number, calls.c.started_ms)

TABLES = [calls]


def _ms(value: dt.datetime | None) -> int | None:
    return epoch_us(value) // 1000 if value is not None else None


def call_row(event_type: str, call: dict) -> dict:
    """The row of a call as one of its events shows it."""
    stage = STAGES[event_type]
    started, answered, ended = (_ms(call.get(k)) for k in ("created_at", "answered_at", "ended_at"))
    missed = stage == 3 and answered is None and call.get("outcome") != "answered"
    wait_until = answered if answered is not None else ended if missed else None
    return {
        "call_id": call["id"], "direction": call.get("direction"), "outcome": call.get("outcome"),
        "client_number": call.get("client_number") or call.get("client_number_raw"),
        "manager": call.get("manager"), "started_at": utc(call["created_at"]),
        "started_ms": started, "ended_ms": ended if ended is not None else started,
        "answered": answered is not None or call.get("outcome") == "answered",
        "missed": missed,
        "wait_ms": max(0, wait_until - started) if wait_until is not None else None,
        "talk_s": call.get("duration_s"), "stage": stage,
        "updated_us": epoch_us(call["updated_at"]),
    }


def _apply(event_type: str):
    def apply(tx, events: list[dict]) -> None:
        rows = [call_row(event_type, event["call"]) for event in events]
        upsert_latest(tx.conn, calls, rows, ["call_id"], ["stage", "updated_us"])
    apply.__name__ = f"apply_{event_type}"
    return apply


HANDLES = {event_type: _apply(event_type) for event_type in STAGES}


# -- report ------------------------------------------------------------------------------------

COLUMNS = [
    {"key": "hour", "title": "Hour", "kind": "int"},
    {"key": "inbound", "title": "Inbound calls", "kind": "int"},
    {"key": "answered", "title": "Answered", "kind": "int"},
    {"key": "missed", "title": "Missed", "kind": "int"},
    {"key": "missed_share", "title": "Missed share", "kind": "percent"},
    {"key": "avg_wait_s", "title": "Average wait", "kind": "seconds"},
]


# Calls are counted in slots of 15 minutes (UTC) by the database, then the slots are put
# into hours of the report's time zone (exact for zones whose offset is in quarter hours).
SLOT_MS = 15 * 60 * 1000


def _slots(conn, filters, start, end):
    slot = (calls.c.started_ms // SLOT_MS).label("slot")
    waited = sa.and_(calls.c.answered, calls.c.wait_ms.is_not(None))
    query = (sa.select(
        slot, sa.func.count().label("inbound"),
        sa.func.sum(sa.case((calls.c.missed, 1), else_=0)).label("missed"),
        sa.func.sum(calls.c.wait_ms).label("wait_ms"),
        sa.func.count(calls.c.wait_ms).label("waits"),
        sa.func.sum(sa.case((waited, calls.c.wait_ms), else_=None)).label("answer_ms"),
        sa.func.count(sa.case((waited, 1), else_=None)).label("answers"),
        sa.func.sum(sa.case((calls.c.answered, calls.c.talk_s), else_=None)).label("talk_s"),
        sa.func.count(sa.case((calls.c.answered, calls.c.talk_s), else_=None)).label("talks"))
        .where(calls.c.direction == "inbound", calls.c.stage == 3,
               *within(calls.c.started_at, start, end))
        .group_by(slot))
    if filters.get("manager"):
        query = query.where(calls.c.manager == filters["manager"])
    return conn.execute(query).all()


def _called_back(conn, filters, start, end, minutes: int) -> int:
    """Missed inbound calls followed, within ``minutes`` of their end, by an outbound call to
    their number or an answered inbound call from it."""
    later = calls.alias("later")
    callback = (sa.select(sa.literal(1)).where(
        later.c.client_number == calls.c.client_number,
        later.c.started_ms >= calls.c.ended_ms,
        later.c.started_ms <= calls.c.ended_ms + minutes * 60_000,
        sa.or_(later.c.direction == "outbound",
               sa.and_(later.c.direction == "inbound", later.c.answered))))
    query = (sa.select(sa.func.count()).select_from(calls)
             .where(calls.c.direction == "inbound", calls.c.missed,
                    calls.c.client_number.is_not(None), callback.exists(),
                    *within(calls.c.started_at, start, end)))
    if filters.get("manager"):
        query = query.where(calls.c.manager == filters["manager"])
    return conn.execute(query).scalar()


def _mean(total, count, scale=1.0) -> float | None:
    return round(total / count / scale, 1) if count else None


def report(conn, filters: dict) -> dict:
    start, end = period_bounds(filters)
    minutes = int(filters.get("callback_minutes") or DEFAULT_CALLBACK_MINUTES)
    zone_name = filters.get("time_zone") or DEFAULT_TIME_ZONE
    zone = ZoneInfo(zone_name)
    sums = ("inbound", "missed", "wait_ms", "waits", "answer_ms", "answers", "talk_s", "talks")
    hours = [dict.fromkeys(sums, 0) for _ in range(24)]
    for slot in _slots(conn, filters, start, end):
        hour = dt.datetime.fromtimestamp(slot.slot * SLOT_MS / 1000, zone).hour
        for key in sums:
            hours[hour][key] += int(getattr(slot, key) or 0)  # PostgreSQL sums to Decimal
    total = {key: sum(h[key] for h in hours) for key in sums}

    rows = [{"hour": hour, "inbound": h["inbound"], "answered": h["inbound"] - h["missed"],
             "missed": h["missed"], "missed_share": ratio(h["missed"], h["inbound"]),
             "avg_wait_s": _mean(h["wait_ms"], h["waits"], 1000)} for hour, h in enumerate(hours)]
    busiest = max(rows, key=lambda r: (r["missed"], r["inbound"]))
    called_back = _called_back(conn, filters, start, end, minutes)
    return {
        "report": "calls", "title": TITLE, "filters": filters,
        "columns": COLUMNS, "rows": rows,
        "chart": {"type": "bar", "x": "hour", "y": ["answered", "missed"]},
        "highlight": ({"row": busiest["hour"], "why": "most missed calls"}
                      if busiest["missed"] else None),
        "summary": {
            "inbound": total["inbound"], "answered": total["inbound"] - total["missed"],
            "missed": total["missed"], "missed_share": ratio(total["missed"], total["inbound"]),
            "avg_wait_s": _mean(total["wait_ms"], total["waits"], 1000),
            "avg_answer_s": _mean(total["answer_ms"], total["answers"], 1000),
            "avg_talk_s": _mean(total["talk_s"], total["talks"]),
            "callback_minutes": minutes, "called_back": called_back,
            "called_back_share": ratio(called_back, total["missed"]), "time_zone": zone_name,
        },
    }
