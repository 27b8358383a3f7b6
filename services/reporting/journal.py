"""The journal: every consumed event once, the history projections are built from.

Live, a batch of one event type is journaled (duplicates dropped by ``event_key``) and only
the newly journaled events are applied, in the same transaction. A rebuild empties every
projection table and replays the journal in (occurred_at, id) order through the same code.
"""
from __future__ import annotations

import time

import sqlalchemy as sa
import structlog

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance
from crmhub.runtime.db import insert_new_rows, is_postgres, utcnow
from crmhub.services.reporting import projections
from crmhub.services.reporting.models import journal
from crmhub.services.reporting.replay import load_journaled

log = structlog.get_logger(__name__)

# Projections are read-modify-write per deal, call or card: two batches applying events of
# the same entity at once would each miss the other's. One lock serializes them (on SQLite
# the single writer already does).
APPLY_LOCK_ID = 7_001_007


def event_key(event_type: str, payload: dict) -> str:
    return f"{event_type}:{payload['event_id']}"


def load_event(event_type: str, payload: dict) -> dict:
    """The event as its contract loads it, plus ``_occurred_at``."""
    event = instance(ev.spec(event_type).schema).load(payload)
    event["_occurred_at"] = event["occurred_at"]
    return event


def lock_projections(tx) -> None:
    if is_postgres(tx.conn):
        tx.conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": APPLY_LOCK_ID})


def ingest(tx, event_type: str, payloads: list[dict]) -> int:
    """Journal ``payloads`` (raw, as published) and apply the new ones; returns how many
    were new. Raises ValidationError for a payload breaking its contract."""
    loaded = {}
    for payload in payloads:
        loaded.setdefault(event_key(event_type, payload), (payload, load_event(event_type, payload)))
    if not loaded:
        return 0
    lock_projections(tx)
    now = utcnow()
    rows = [{"event_key": key, "event_type": event_type, "occurred_at": event["occurred_at"],
             "payload": payload, "received_at": now}
            for key, (payload, event) in sorted(loaded.items())]
    fresh = {r.event_key for r in insert_new_rows(tx.conn, journal, rows, ["event_key"],
                                                  journal.c.event_key)}
    projections.apply_events(tx, event_type, [e for k, (_, e) in loaded.items() if k in fresh])
    return len(fresh)


def truncate_projections(conn) -> None:
    tables = projections.projection_tables()
    if is_postgres(conn):
        names = ", ".join(f'"{t.name}"' for t in tables)
        conn.execute(sa.text(f"TRUNCATE {names}"))
    else:
        for table in tables:
            conn.execute(table.delete())


def rebuild(db, chunk: int = 20000, progress=None) -> dict:
    """Empty every projection and replay the whole journal; returns counts and seconds.

    Events journaled live while this runs are applied live and replayed here as well, which
    projections tolerate (they are idempotent), so live ingestion need not stop. What a
    projection sums up over the replay (the funnel's counters) it may write only at the end.
    """
    started = time.monotonic()
    with db.transaction() as tx:
        lock_projections(tx)
        truncate_projections(tx.conn)
    replayed, after = 0, None
    with projections.replaying() as flush:
        while True:
            with db.transaction() as tx:
                query = sa.select(journal.c.id, journal.c.event_type, journal.c.occurred_at,
                                  journal.c.payload).order_by(journal.c.occurred_at, journal.c.id)
                if after is not None:
                    query = query.where(sa.tuple_(journal.c.occurred_at, journal.c.id) > after)
                rows = tx.conn.execute(query.limit(chunk)).all()
                lock_projections(tx)
                if not rows:
                    flush(tx)
                    break
                projections.apply_mixed(tx, [(row.event_type, load_journaled(row.event_type, row.payload))
                                             for row in rows])
            replayed += len(rows)
            after = (rows[-1].occurred_at, rows[-1].id)
            if progress is not None:
                progress(replayed)
    seconds = round(time.monotonic() - started, 3)
    log.info("projections rebuilt", events=replayed, seconds=seconds)
    return {"events": replayed, "seconds": seconds}
