"""Funnel: for each pipeline, the deals that reached each stage, conversion to the next stage
and to won, the median time in stage, and the stage converting worst.

Definitions (docs/reporting.md): a deal counts in the period it was created, once per stage
it reached (moving back does not count a stage twice). It *advanced* from a stage when it
also reached a later (higher position) stage that is not a lost one; it counts as *won* from
every stage it reached when its current status is won. Time in stage: the time between
entering a stage and the next move, summed over visits, for stages the deal has left.

Served from pre-aggregated counters keyed by (pipeline, stage, manager, source, created day),
rolled up by month as well: a period's whole months are read from the monthly table and only
its partial months from the daily one. Each deal's record keeps what it added to the counters,
so a new event of that deal subtracts the old contribution and adds the new one.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.runtime.db import is_postgres
from crmhub.services.reporting.models import TIME, metadata
from crmhub.services.reporting.projections import bulk, dealstate
from crmhub.services.reporting.projections.snapshots import period_bounds, ratio, upsert_latest

TITLE = "Sales funnel"
DESCRIPTION = ("Deals that reached each stage of each pipeline, conversion to the next stage "
               "and to won, median time in stage; the weakest stage highlighted.")

# Time in stage histogram: bucket 0 is under a minute, bucket k (1..39) holds
# [60 * 2^((k-1)/2), 60 * 2^(k/2)) seconds, the last one everything longer: a median read from
# it is within a factor of sqrt(2) (about ±19 % around the bucket's geometric middle).
BUCKETS = 40
COUNTS = ["reached", "advanced", "won"]


def bucket_of(seconds: float) -> int:
    if seconds < 60:
        return 0
    return min(BUCKETS - 1, 1 + int(2 * math.log2(seconds / 60)))


def bucket_middle(k: int) -> float:
    if k == 0:
        return 30.0
    return 60 * 2 ** ((k - 1) / 2) * 2 ** 0.25


# Counters are kept for every manager and source and for "any" (ALL) of each, so a report
# with or without those filters reads one row per stage and day (or month).
ALL = "*"


def _counter_table(name: str, period: str, *columns) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column("manager", sa.String(100), primary_key=True),
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column(period, sa.Date, primary_key=True),
        sa.Column("pipeline_id", sa.String(64), primary_key=True),
        sa.Column("stage_id", sa.Integer, primary_key=True),
        *columns,
    )


def _counts():
    return [sa.Column(c, sa.Integer, nullable=False, server_default="0") for c in COUNTS]


def _times():
    return [sa.Column("bucket", sa.SmallInteger, primary_key=True),
            sa.Column("deals", sa.Integer, nullable=False, server_default="0")]


daily = _counter_table("funnel_daily", "day", *_counts())
monthly = _counter_table("funnel_monthly", "month", *_counts())
# Time in stage: deals per histogram bucket (only buckets that have deals have rows).
times_daily = _counter_table("funnel_times_daily", "day", *_times())
times_monthly = _counter_table("funnel_times_monthly", "month", *_times())
GRAINS = {"day": (daily, times_daily), "month": (monthly, times_monthly)}

deals = sa.Table(
    "funnel_deals", metadata,
    sa.Column("deal_id", sa.String(64), primary_key=True),
    sa.Column("pipeline_id", sa.String(64), nullable=False),
    sa.Column("manager", sa.String(100), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("contact_id", sa.String(64)),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("created_day", sa.Date, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("amount_cents", sa.BigInteger),
    sa.Column("closed_at", TIME),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("visits", sa.JSON, nullable=False),
    sa.Column("stages", sa.JSON, nullable=False),
    # What this deal added to the counters: [pipeline, manager, source, day, [[stage, adv,
    # won, bucket or -1], ...]].
    sa.Column("counted", sa.JSON),
)
sa.Index("ix_funnel_deals_manager", deals.c.manager, deals.c.created_at)
sa.Index("ix_funnel_deals_created", deals.c.created_at)
sa.Index("ix_funnel_deals_closed", deals.c.closed_at)

stages = sa.Table(
    "funnel_stages", metadata,
    sa.Column("pipeline_id", sa.String(64), primary_key=True),
    sa.Column("stage_id", sa.Integer, primary_key=True),
    sa.Column("pipeline_name", sa.String(200), nullable=False),
    sa.Column("stage_name", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("seen_at", TIME, nullable=False),
)

TABLES = [deals, stages, daily, monthly, times_daily, times_monthly]
RECORD_COLUMNS = [c.name for c in deals.columns]


# -- projection --------------------------------------------------------------------------------

def contribution(record: dict) -> list:
    visits = dealstate.ordered_visits(record["visits"])
    places = record["stages"]
    reached = {}
    for i, (stage_id, at) in enumerate(visits):
        spent = visits[i + 1][1] - at if i + 1 < len(visits) else None
        total = reached.setdefault(stage_id, [None])
        if spent is not None:
            total[0] = (total[0] or 0) + spent

    def place(stage_id):
        return places.get(str(stage_id), [stage_id, None])

    won = int(record["status"] == "won")
    counted = []
    placed = {stage_id: place(stage_id) for stage_id in reached}
    for stage_id, (spent,) in sorted(reached.items()):
        position = placed[stage_id][0]
        advanced = any(other > position and kind != "lost" for other, kind in placed.values())
        counted.append([stage_id, int(advanced), won, -1 if spent is None else bucket_of(spent)])
    return [record["pipeline_id"], record["manager"], record["source"],
            record["created_day"].isoformat(), counted]


def _add(deltas: dict, counted: list | None, sign: int) -> None:
    """Add (sign +1) or take back (-1) a deal's contribution: deltas keyed by (pipeline,
    stage, manager, source, day, bucket), bucket None for the reached/advanced/won counts."""
    if not counted:
        return
    pipeline, manager, source, day, per_stage = counted
    for stage_id, advanced, won, bucket in per_stage:
        for who, where in ((manager, source), (manager, ALL), (ALL, source), (ALL, ALL)):
            row = deltas[(pipeline, stage_id, who, where, day, None)]
            row[0] += sign
            row[1] += sign * advanced
            row[2] += sign * won
            if bucket >= 0:
                deltas[(pipeline, stage_id, who, where, day, bucket)][0] += sign


def _add_change(deltas: dict, old: list | None, new: list | None) -> None:
    """Take back ``old`` and add ``new``, leaving out the stages whose entry is the same in
    both (a move changes one or two of a deal's stages): the same sums, a fraction of the
    counter keys."""
    if old and new and old[:4] == new[:4]:
        same = {tuple(e) for e in old[4]} & {tuple(e) for e in new[4]}
        if same:
            old = [*old[:4], [e for e in old[4] if tuple(e) not in same]]
            new = [*new[:4], [e for e in new[4] if tuple(e) not in same]]
    _add(deltas, old, -1)
    _add(deltas, new, +1)


def _new_rollup() -> dict:
    return {"day": defaultdict(lambda: [0, 0, 0]), "month": defaultdict(lambda: [0, 0, 0])}


# Set by ``replaying``: within a replay, counters are not touched per batch; they are counted
# afresh from the deals' records when it ends.
_replaying: ContextVar[bool] = ContextVar("funnel_replaying", default=False)


def _apply_deltas(conn, deltas: dict) -> None:
    rolled = _new_rollup()
    for (pipeline, stage_id, manager, source, day, bucket), values in deltas.items():
        for grain, when in (("day", day), ("month", day[:7] + "-01")):
            total = rolled[grain][(manager, source, when, pipeline, stage_id, bucket)]
            for i, v in enumerate(values):
                total[i] += v
    _write_rollup(conn, rolled)


@contextmanager
def replaying():
    """Within, deal records are replayed without touching the counters; the function yielded
    (call it in the replay's last transaction) counts them afresh from the records, in SQL.
    Summing deltas per batch instead wrote tens of millions of counter upserts for a
    rebuild of a million deals: more keys than memory could hold until the end."""
    token = _replaying.set(True)
    try:
        yield lambda tx: recount(tx.conn)
    finally:
        _replaying.reset(token)


# Per database: what the deal records count for (their ``counted``), one row per deal and
# stage: (pipeline_id, manager, source, day, stage_id, advanced, won, bucket). PostgreSQL
# parses each record's JSON once (as jsonb), not once per field.
_CONTRIBUTIONS = {
    "postgresql": """
        WITH records AS MATERIALIZED (
            SELECT CAST(counted AS JSONB) AS c FROM funnel_deals WHERE counted IS NOT NULL)
        SELECT r.c->>0 AS pipeline_id, r.c->>1 AS manager, r.c->>2 AS source,
               CAST(r.c->>3 AS DATE) AS day, CAST(e->>0 AS INTEGER) AS stage_id,
               CAST(e->>1 AS INTEGER) AS advanced, CAST(e->>2 AS INTEGER) AS won,
               CAST(e->>3 AS INTEGER) AS bucket
        FROM records r, jsonb_array_elements(CASE jsonb_typeof(r.c) WHEN 'array'
                                             THEN r.c->4 ELSE '[]' END) e""",
    "sqlite": """
        SELECT json_extract(d.counted, '$[0]') AS pipeline_id,
               json_extract(d.counted, '$[1]') AS manager,
               json_extract(d.counted, '$[2]') AS source, json_extract(d.counted, '$[3]') AS day,
               json_extract(e.value, '$[0]') AS stage_id, json_extract(e.value, '$[1]') AS advanced,
               json_extract(e.value, '$[2]') AS won, json_extract(e.value, '$[3]') AS bucket
        FROM funnel_deals d, json_each(d.counted, '$[4]') e
        WHERE json_type(d.counted) = 'array'""",
}
_MONTH_OF_DAY = {"postgresql": "CAST(date_trunc('month', day) AS DATE)",
                 "sqlite": "substr(day, 1, 7) || '-01'"}
_KEY = "manager, source, day, pipeline_id, stage_id"
# Each sum counts for its manager and source, and for "any" (ALL) of either.
_FOR_ALL = f"""
    SELECT CASE WHEN w.any_manager = 1 THEN '{ALL}' ELSE s.manager END AS manager,
           CASE WHEN w.any_source = 1 THEN '{ALL}' ELSE s.source END AS source,
           s.day, s.pipeline_id, s.stage_id, s.bucket, s.deals, s.advanced, s.won
    FROM funnel_recount s, (SELECT 0 AS any_manager, 0 AS any_source UNION ALL SELECT 0, 1
                            UNION ALL SELECT 1, 0 UNION ALL SELECT 1, 1) w"""


def recount(conn) -> None:
    """Count every funnel counter afresh from the deal records (each keeps what it counts
    for in ``counted``): summed per manager, source, day, stage and time bucket once, then
    for ALL managers and sources, then by month. Run under the projections' lock."""
    dialect = conn.dialect.name
    month = _MONTH_OF_DAY[dialect]
    if dialect == "postgresql":  # the sums are hashed in memory rather than spilled to disk
        conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
    statements = [
        "DROP TABLE IF EXISTS funnel_recount",
        f"CREATE TEMPORARY TABLE funnel_recount AS SELECT {_KEY}, bucket, count(*) AS deals, "
        f"sum(advanced) AS advanced, sum(won) AS won FROM ({_CONTRIBUTIONS[dialect]}) c "
        f"GROUP BY {_KEY}, bucket",
        *(f"DELETE FROM {table.name}" for table in (daily, monthly, times_daily, times_monthly)),
        f"INSERT INTO funnel_daily ({_KEY}, reached, advanced, won) SELECT {_KEY}, sum(deals), "
        f"sum(advanced), sum(won) FROM ({_FOR_ALL}) x GROUP BY {_KEY} ORDER BY {_KEY}",
        f"INSERT INTO funnel_times_daily ({_KEY}, bucket, deals) SELECT {_KEY}, bucket, "
        f"sum(deals) FROM ({_FOR_ALL}) x WHERE bucket >= 0 GROUP BY {_KEY}, bucket ORDER BY {_KEY}, bucket",
        f"INSERT INTO funnel_monthly (manager, source, month, pipeline_id, stage_id, reached, "
        f"advanced, won) SELECT manager, source, {month}, pipeline_id, stage_id, sum(reached), "
        f"sum(advanced), sum(won) FROM funnel_daily GROUP BY manager, source, {month}, "
        f"pipeline_id, stage_id",
        f"INSERT INTO funnel_times_monthly (manager, source, month, pipeline_id, stage_id, "
        f"bucket, deals) SELECT manager, source, {month}, pipeline_id, stage_id, bucket, "
        f"sum(deals) FROM funnel_times_daily GROUP BY manager, source, {month}, pipeline_id, "
        f"stage_id, bucket",
        "DROP TABLE funnel_recount",
    ]
    for statement in statements:
        conn.execute(sa.text(statement))


def _write_rollup(conn, rolled: dict) -> None:
    """Add the rolled-up deltas to the counter tables, and forget them."""
    key = ["manager", "source", None, "pipeline_id", "stage_id"]
    # PostgreSQL reads the ISO text as a date (bulk.upsert sends JSON); SQLite wants dates.
    as_date = str if is_postgres(conn) else dt.date.fromisoformat
    for grain, (counts_table, times_table) in GRAINS.items():
        key[2] = grain
        counts, times = [], []
        # In no particular order: every writer of the counters holds the projections' lock,
        # so rows locked in different orders cannot deadlock.
        for (manager, source, when, pipeline, stage_id, bucket), values in rolled[grain].items():
            if not any(values):
                continue
            row = {"manager": manager, "source": source, grain: as_date(when),
                   "pipeline_id": pipeline, "stage_id": stage_id}
            if bucket is None:
                counts.append({**row, **dict(zip(COUNTS, values))})
            else:
                times.append({**row, "bucket": bucket, "deals": values[0]})
        bulk.upsert(conn, counts_table, counts, key, add=COUNTS)
        bulk.upsert(conn, times_table, times, [*key, "bucket"], add=["deals"])
        rolled[grain].clear()


def _load_records(conn, deal_ids: list[str]) -> dict[str, dict]:
    found = {}
    ids = sorted(deal_ids)
    for start in range(0, len(ids), 2000):
        for row in conn.execute(sa.select(deals).where(
                deals.c.deal_id.in_(ids[start:start + 2000]))):
            found[row.deal_id] = row._asdict()
    return found


def apply_deal_events(tx, events: list[dict]) -> None:
    by_deal: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        by_deal[event["deal"]["id"]].append(event)
    stored = _load_records(tx.conn, list(by_deal))
    deltas: dict = defaultdict(lambda: [0, 0, 0])
    records = []
    replaying = _replaying.get()
    for deal_id, deal_events in sorted(by_deal.items()):
        old = stored.get(deal_id)
        record = dealstate.merge(old, deal_events)
        record["deal_id"] = deal_id
        record["counted"] = contribution(record)
        if old is not None and old["counted"] == record["counted"] and \
                old["version"] == record["version"] and old["visits"] == record["visits"]:
            continue
        if not replaying:
            _add_change(deltas, old["counted"] if old else None, record["counted"])
        records.append({c: record.get(c) for c in RECORD_COLUMNS})
    _save_records(tx.conn, records)
    if deltas:
        _apply_deltas(tx.conn, deltas)
    upsert_latest(tx.conn, stages, [_stage_row(e) for e in events],
                  ["pipeline_id", "stage_id"], ["seen_at"])


def _stage_row(event: dict) -> dict:
    deal = event["deal"]
    stage, (position, kind) = dealstate.stage_of(deal)
    return {"pipeline_id": deal["pipeline_id"], "stage_id": int(stage),
            "pipeline_name": deal["pipeline_name"], "stage_name": deal["stage_name"],
            "position": position, "kind": kind, "seen_at": event["_occurred_at"]}


def _save_records(conn, records: list[dict]) -> None:
    bulk.upsert(conn, deals, records, ["deal_id"],
                replace=[c for c in RECORD_COLUMNS if c != "deal_id"])


HANDLES = {t: apply_deal_events for t in (ev.DEAL_CREATED, ev.DEAL_UPDATED,
                                          ev.DEAL_STAGE_CHANGED, ev.DEAL_WON, ev.DEAL_LOST)}


# -- report ------------------------------------------------------------------------------------

COLUMNS = [
    {"key": "stage", "title": "Stage", "kind": "text"},
    {"key": "reached", "title": "Deals reached", "kind": "int"},
    {"key": "to_next", "title": "Conversion to next stage", "kind": "percent"},
    {"key": "to_won", "title": "Conversion to won", "kind": "percent"},
    {"key": "median_seconds", "title": "Median time in stage", "kind": "seconds"},
]


def split_period(start: dt.date | None, end: dt.date | None):
    """[start, end] (days, inclusive) as (whole months, (from, to) day ranges left over)."""
    if start is None and end is None:
        return None, []
    if start is None or end is None:
        return [], [(start, end)]
    first_month = start if start.day == 1 else _next_month(start)
    months, cursor = [], first_month
    while _next_month(cursor) - dt.timedelta(days=1) <= end:
        months.append(cursor)
        cursor = _next_month(cursor)
    if not months:
        return [], [(start, end)]
    days = []
    if start < months[0]:
        days.append((start, months[0] - dt.timedelta(days=1)))
    if cursor <= end:
        days.append((cursor, end))
    return months, days


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _conditions(table, condition, filters) -> list:
    conditions = [condition] if condition is not None else []
    conditions += [table.c.manager == (filters.get("manager") or ALL),
                   table.c.source == (filters.get("source") or ALL)]
    if filters.get("pipeline_id"):
        conditions.append(table.c.pipeline_id == filters["pipeline_id"])
    return conditions


def _sums(conn, grain, condition, filters, totals, histograms) -> None:
    counts_table, times_table = GRAINS[grain]
    query = (sa.select(counts_table.c.pipeline_id, counts_table.c.stage_id,
                       *(sa.func.sum(counts_table.c[c]).label(c) for c in COUNTS))
             .where(*_conditions(counts_table, condition(counts_table), filters))
             .group_by(counts_table.c.pipeline_id, counts_table.c.stage_id))
    for row in conn.execute(query):
        total = totals[(row.pipeline_id, row.stage_id)]
        for i, c in enumerate(COUNTS):
            total[i] += int(getattr(row, c) or 0)
    query = (sa.select(times_table.c.pipeline_id, times_table.c.stage_id, times_table.c.bucket,
                       sa.func.sum(times_table.c.deals).label("deals"))
             .where(*_conditions(times_table, condition(times_table), filters))
             .group_by(times_table.c.pipeline_id, times_table.c.stage_id, times_table.c.bucket))
    for row in conn.execute(query):
        histograms[(row.pipeline_id, row.stage_id)][row.bucket] += int(row.deals or 0)


def counters(conn, filters: dict) -> tuple[dict, dict]:
    """{(pipeline, stage): [reached, advanced, won]} and {(pipeline, stage): histogram}."""
    start, end = (d.date() if d else None for d in period_bounds(filters))
    end = end - dt.timedelta(days=1) if end else None
    months, days = split_period(start, end)
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    histograms: dict[tuple, list[int]] = defaultdict(lambda: [0] * BUCKETS)
    if months is None:
        _sums(conn, "month", lambda t: None, filters, totals, histograms)
        return totals, histograms
    if months:
        _sums(conn, "month", lambda t: t.c.month.in_(months), filters, totals, histograms)
    for low, high in days:
        def within_days(t, low=low, high=high):
            bounds = [c for c in (t.c.day >= low if low else None,
                                  t.c.day <= high if high else None) if c is not None]
            return sa.and_(*bounds)
        _sums(conn, "day", within_days, filters, totals, histograms)
    return totals, histograms


def median_seconds(histogram: list[int]) -> float | None:
    total = sum(histogram)
    if not total:
        return None
    running = 0
    for k, n in enumerate(histogram):
        running += n
        if running * 2 >= total:
            return round(bucket_middle(k))
    return None


def report(conn, filters: dict) -> dict:
    totals, histograms = counters(conn, filters)
    known = {(r.pipeline_id, r.stage_id): r for r in conn.execute(sa.select(stages))}
    pipelines: dict[str, list] = defaultdict(list)
    for (pipeline_id, stage_id), values in totals.items():
        if values[0] > 0:
            pipelines[pipeline_id].append((stage_id, values + histograms[(pipeline_id, stage_id)]))
    groups, worst = [], None
    for pipeline_id in sorted(pipelines):
        group, weakest = _pipeline_group(pipeline_id, pipelines[pipeline_id], known)
        groups.append(group)
        if weakest is not None and (worst is None or weakest[0] < worst[0]):
            worst = (weakest[0], pipeline_id, group["highlight"])
    rows = [{"pipeline": g["title"], **row} for g in groups for row in g["rows"]]
    deals_total = sum(g["rows"][0]["reached"] for g in groups if g["rows"])
    won_total = sum(g["summary_won"] for g in groups)
    for g in groups:
        g.pop("summary_won")
    return {
        "report": "funnel", "title": TITLE,
        "columns": [{"key": "pipeline", "title": "Pipeline", "kind": "text"}, *COLUMNS],
        "rows": rows, "groups": groups,
        "chart": {"type": "funnel", "x": "stage", "y": ["reached"]},
        "highlight": {**worst[2], "group": worst[1]} if worst else None,
        "summary": {"pipelines": len(groups), "deals_entered_first_stage": deals_total,
                    "won": won_total},
    }


def _pipeline_group(pipeline_id, stage_values, known):
    def info(stage_id):
        row = known.get((pipeline_id, stage_id))
        return (row.position, row.stage_name, row.kind) if row else (stage_id, str(stage_id), None)

    ordered = sorted(stage_values, key=lambda item: (info(item[0])[0], item[0]))
    rows, weakest, won = [], None, 0
    for stage_id, values in ordered:
        reached, advanced, won_from = values[0], values[1], values[2]
        position, name, kind = info(stage_id)
        to_next = ratio(advanced, reached) if kind == "open" else None
        rows.append({"key": str(stage_id), "stage": name, "kind": kind, "reached": reached,
                     "to_next": to_next, "to_won": ratio(won_from, reached),
                     "median_seconds": median_seconds(values[3:])})
        if kind == "won":
            won += reached
        if to_next is not None and (weakest is None or to_next < weakest[0]):
            weakest = (to_next, str(stage_id), name)
    title = known[(pipeline_id, ordered[0][0])].pipeline_name \
        if (pipeline_id, ordered[0][0]) in known else pipeline_id
    highlight = ({"row": weakest[1], "why": f"lowest conversion to the next stage: "
                  f"{weakest[0]:.1%} at {weakest[2]}"} if weakest else None)
    return ({"key": pipeline_id, "title": title, "rows": rows, "highlight": highlight,
             "summary_won": won},
            (weakest[0],) if weakest else None)
