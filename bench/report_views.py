"""Reporting, the lead sources, call center, campaigns and churn projections on PostgreSQL:
how fast their events are applied, and how long their reports take once the data is there.

The events are fed straight into the reporting service's live path (``journal.ingest``: the
journal insert with dedupe, the contract load and every projection of that type, in batches
of 1,000 as the batch handlers take them) without the broker, so the figure is the
projections' own rate; the broker-to-projection path at 2,000 events/s is the ``reporting``
suite's. Per type, ``--report-view-events`` events (default 100,000):

* ``contact_created`` cards (10 sources x 5 campaigns), ``deal_created`` + ``deal_won`` for a
  third of them (several purchases per client, for churn);
* ``call_missed`` / ``call_finished`` inbound calls from 5,000 numbers and outbound callbacks;
* ``email_sent`` for 20 campaigns and ``campaign_email_opened`` for half the emails.

Then each report is asked 20 times for the whole year (and once more per filter shape), and
``crmhub reports rebuild`` replays the journal. Target next to each figure: 2,000 events/s
(the issue's rate for all projections), a report well under a second.
"""
from __future__ import annotations

import datetime as dt
import time

from bench.common import database, summary_ms

RATE_TARGET = 2000
REPORT_TARGET_MS = 1000
T0 = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.timezone.utc)


def _iso(minutes: float) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def _envelope(kind: str, i: int, minutes: float, **body) -> dict:
    return {"event_id": f"{kind[:6]}-{i:09d}", "occurred_at": _iso(minutes), **body}


def cards(n: int):
    for i in range(n):
        source = {"channel": "form", "connector": "tilda", "form": f"form{i % 3}",
                  "tracking": {"utm_source": f"src{i % 10}", "utm_medium": "cpc",
                               "utm_campaign": f"cmp{i % 5}"}}
        at = i * 0.5
        yield "contact_created", _envelope("card", i, at, cause=None, contact={
            "id": f"c{i}", "kind": "person", "name": f"Client {i}", "source": source,
            "created_at": _iso(at), "updated_at": _iso(at)})


def _deal(i: int, version: int, status: str, at: float, won_at: float | None) -> dict:
    return {"id": f"d{i}", "title": f"Deal {i}", "contact_id": f"c{i % 3000}",
            "pipeline_id": "sales", "pipeline_name": "Sales", "stage_id": 1 + version,
            "stage_name": status, "status": status, "manager": f"m{i % 20}", "amount": "150.00",
            "currency": "RUB", "source": None, "version": version, "created_at": _iso(at),
            "updated_at": _iso(won_at or at), "closed_at": _iso(won_at) if won_at else None}


def deals(n: int):
    """Half created, half won (the won ones of the created ones): 3,000 clients buying."""
    half = n // 2
    for i in range(half):
        yield "deal_created", _envelope("dealc", i, i * 3, cause="bench",
                                        deal=_deal(i, 1, "open", i * 3, None))
    for i in range(half):
        won = i * 3 + 600
        yield "deal_won", _envelope("dealw", i, won, deal=_deal(i, 2, "won", i * 3, won), change={
            "id": i, "deal_id": f"d{i}", "to_stage_id": 3, "to_stage_name": "won", "version": 2,
            "changed_at": _iso(won)})


def _call(i: int, at: float, direction: str, answered: bool) -> dict:
    return {"id": f"k{i}", "provider": "mango", "call_key": f"k{i}", "direction": direction,
            "status": "finished", "outcome": "answered" if answered else "missed",
            "client_number": f"+7900{i % 5000:07d}", "manager": f"m{i % 20}",
            "created_at": _iso(at), "answered_at": _iso(at + 0.3) if answered else None,
            "ended_at": _iso(at + 3), "duration_s": 160 if answered else None,
            "updated_at": _iso(at + 3)}


def calls(n: int):
    for i in range(n):
        at = i * 0.7
        if i % 4 == 3:
            yield "call_finished", _envelope("callo", i, at + 3,
                                             call=_call(i, at, "outbound", True))
        elif i % 4 == 1:
            yield "call_missed", _envelope("callm", i, at + 3, call=_call(i, at, "inbound", False))
        else:
            yield "call_finished", _envelope("calla", i, at + 3, call=_call(i, at, "inbound", True))


def emails(n: int):
    for i in range(n):
        at = i * 0.2
        yield "email_sent", _envelope("email", i, at, email={
            "id": f"e{i}", "contact_id": f"c{i}", "campaign_id": f"mail{i % 20}",
            "to_addr": f"c{i}@example.com", "subject": "News", "message_id": f"<e{i}@hub>",
            "thread_id": f"e{i}", "status": "sent", "attempts": 1, "created_at": _iso(at),
            "sent_at": _iso(at)})
    for i in range(0, n, 2):
        yield "campaign_email_opened", _envelope("open", i, i * 0.2 + 30,
                                                 campaign_id=f"mail{i % 20}", contact_id=f"c{i}")


def _feed(db, events, batch: int = 1000) -> dict:
    """Ingest the events in batches of one type (each type has a queue and a batch handler of
    its own, so a batch never mixes types); events/s of each type."""
    from crmhub.services.reporting import journal

    spent: dict[str, list] = {}
    pending: dict[str, list] = {}

    def flush(kind):
        payloads = pending.pop(kind)
        started = time.perf_counter()
        with db.transaction() as tx:
            journal.ingest(tx, kind, payloads)
        figures = spent.setdefault(kind, [0, 0.0])
        figures[0] += len(payloads)
        figures[1] += time.perf_counter() - started

    for kind, payload in events:
        pending.setdefault(kind, []).append(payload)
        if len(pending[kind]) >= batch:
            flush(kind)
    for kind in list(pending):
        flush(kind)
    return {kind: {"events": count, "seconds": round(seconds, 2),
                   "events_per_s": round(count / seconds), "target_per_s": RATE_TARGET}
            for kind, (count, seconds) in spent.items()}


def _time_report(db, name: str, filters: dict, times: int) -> dict:
    from crmhub.contracts.base import instance, load_input
    from crmhub.contracts.reporting import ReportFiltersSchema, ReportSchema
    from crmhub.services.reporting import reports

    loaded = load_input(ReportFiltersSchema, filters)
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        with db.connect() as conn:
            instance(ReportSchema).dump(reports.build(conn, name, loaded))
        spent.append(time.perf_counter() - started)
    return {**summary_ms(spent), "target_ms": REPORT_TARGET_MS}


def run(workdir, events: int = 100_000) -> dict:
    from crmhub.runtime.db import ServiceDatabase, make_engine
    from crmhub.runtime.migrate import upgrade
    from crmhub.services.reporting import journal
    from crmhub.services.reporting.models import metadata

    with database() as url:
        config = {"DATABASE_URL": url, "DATA_DIR": str(workdir)}
        upgrade(config, "reporting")
        engine = make_engine(config, "reporting")
        db = ServiceDatabase(engine, metadata, "reporting")
        try:
            result = {"events_per_type": events, "ingest": {}}
            for generate in (cards, deals, calls, emails):
                result["ingest"].update(_feed(db, generate(events)))
                print(f"report_views: fed {generate.__name__}", flush=True)
            year = {"period_from": "2026-01-01", "period_to": "2026-12-31"}
            result["reports"] = {
                "sources": _time_report(db, "sources", year, 20),
                "sources_by_source": _time_report(db, "sources", {**year, "source": "src3"}, 5),
                "calls": _time_report(db, "calls", year, 20),
                "calls_callback_60": _time_report(db, "calls", {**year, "callback_minutes": 60}, 5),
                "campaigns": _time_report(db, "campaigns", year, 20),
                "churn": _time_report(db, "churn", year, 20),
            }
            started = time.perf_counter()
            replayed = journal.rebuild(db)["events"]
            result["rebuild"] = {"events": replayed,
                                 "seconds": round(time.perf_counter() - started, 1),
                                 "events_per_s": round(replayed / (time.perf_counter() - started))}
            return result
        finally:
            engine.dispose()
