"""Helpers shared by the sources, calls, campaigns and churn projections.

Their handlers keep, per entity (a call, a deal, a card, an email), the one snapshot that wins
an order every event defines (a rank, a version, a time): the greatest wins whatever order the
events arrive in, so a live projection and a replay of the journal end up with the same rows.
"""
from __future__ import annotations

import datetime as dt
import decimal

import sqlalchemy as sa

from crmhub.runtime.db import as_utc
from crmhub.services.reporting.projections import bulk

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def epoch_us(value: dt.datetime | None) -> int:
    """A time as whole microseconds since 1970 (0 for none): an order key both databases
    compare the same way."""
    if value is None:
        return 0
    return (as_utc(value) - EPOCH) // dt.timedelta(microseconds=1)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """Stored times are UTC; SQLite hands them back naive."""
    if value is None or value.tzinfo is dt.timezone.utc:
        return value
    return as_utc(value).astimezone(dt.timezone.utc)


def cents(amount) -> int | None:
    """A money amount (Decimal or string) in whole cents, kept as an integer for exact sums."""
    if amount is None:
        return None
    return int((decimal.Decimal(str(amount)) * 100).to_integral_value(decimal.ROUND_HALF_UP))


def money(amount_cents: int | None) -> float:
    return round(int(amount_cents or 0) / 100, 2)


def upsert_latest(conn, table: sa.Table, rows: list[dict], key: list[str], order: list[str]):
    """Insert ``rows``, or replace the stored row of the same ``key`` when the new row's
    ``order`` columns compare greater (as a tuple). Commutative: any order of the same rows
    leaves the greatest of each key."""
    best: dict[tuple, dict] = {}
    for row in rows:
        k = tuple(row[c] for c in key)
        if k not in best or _order(row, order) > _order(best[k], order):
            best[k] = row
    # One statement per page of rows (bulk.upsert), not one per row: a rebuild writes millions.
    bulk.upsert(conn, table, list(best.values()), key,
                replace=[c.name for c in table.columns if c.name not in key], newer=order)


def _order(row: dict, order: list[str]) -> tuple:
    return tuple(row[c] for c in order)


def period_bounds(filters: dict) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``period_from`` and ``period_to`` (dates, both included) as UTC instants [start, end)."""
    start = _as_date(filters.get("period_from"))
    end = _as_date(filters.get("period_to"))
    return (dt.datetime.combine(start, dt.time(), dt.timezone.utc) if start else None,
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
            if end else None)


def _as_date(value) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def within(column, start: dt.datetime | None, end: dt.datetime | None) -> list:
    """SQL conditions keeping ``column`` in [start, end)."""
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def resolve_aliases(merges: dict[str, str], ids) -> dict[str, str]:
    """Each id -> the card holding it now, following merge chains (source -> target)."""
    resolved = {}
    for cid in ids:
        current, seen = cid, set()
        while current in merges and current not in seen:
            seen.add(current)
            current = merges[current]
        resolved[cid] = current
    return resolved


def ratio(part, whole) -> float | None:
    """A share rounded to 4 places; None when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None
