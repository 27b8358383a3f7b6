"""Bulk upserts of the reporting projections: on PostgreSQL the rows travel as one JSON
document; every type a projection stores comes back as it was written."""
import datetime as dt

import sqlalchemy as sa

from crmhub.services.reporting.projections import bulk, funnel

DAY = dt.date(2026, 3, 2)
SEEN = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.timezone.utc)


def _counter(manager, stage_id, reached, won=0):
    return {"manager": manager, "source": "*", "day": DAY, "pipeline_id": "sales",
            "stage_id": stage_id, "reached": reached, "advanced": 0, "won": won}


def _stage(stage_id, name, seen_at):
    return {"pipeline_id": "sales", "stage_id": stage_id, "pipeline_name": "Sales",
            "stage_name": name, "position": stage_id, "kind": "open", "seen_at": seen_at}


def test_counters_add_up_and_texts_arrive_as_written(reporting):
    key = ["manager", "source", "day", "pipeline_id", "stage_id"]
    odd = "tab\there, line\nbreak, back\\slash, quote \" and ünïcode"
    with reporting.db.transaction() as tx:
        bulk.upsert(tx.conn, funnel.daily, [_counter("anna", 1, 2), _counter(odd, 1, 1)], key,
                    add=funnel.COUNTS)
        # The same table twice in one transaction, adding to what the first call wrote.
        bulk.upsert(tx.conn, funnel.daily, [_counter("anna", 1, 3, won=1), _counter("boris", 2, 1)],
                    key, add=funnel.COUNTS)
    with reporting.db.transaction() as tx:
        bulk.upsert(tx.conn, funnel.daily, [_counter("anna", 1, -1)], key, add=funnel.COUNTS)
    with reporting.db.connect() as conn:
        rows = {(r.manager, r.stage_id): (r.reached, r.won)
                for r in conn.execute(sa.select(funnel.daily))}
    assert rows == {("anna", 1): (4, 1), (odd, 1): (1, 0), ("boris", 2): (1, 0)}


def test_only_newer_rows_replace_and_json_and_nulls_round_trip(reporting):
    key = ["pipeline_id", "stage_id"]
    later = SEEN + dt.timedelta(hours=1)
    columns = [c.name for c in funnel.stages.columns if c.name not in key]
    with reporting.db.transaction() as tx:
        bulk.upsert(tx.conn, funnel.stages, [_stage(1, "New", later), _stage(2, "Won", SEEN)],
                    key, replace=columns, newer=["seen_at"])
    with reporting.db.transaction() as tx:
        bulk.upsert(tx.conn, funnel.stages, [_stage(1, "Stale", SEEN), _stage(2, "Paid", later)],
                    key, replace=columns, newer=["seen_at"])
    record = {"deal_id": "d1", "pipeline_id": "sales", "manager": "anna", "source": "",
              "contact_id": None, "created_at": SEEN, "created_day": DAY, "status": "open",
              "amount_cents": None, "closed_at": None, "version": 1,
              "visits": [["1", SEEN.isoformat()]], "stages": {"1": [1, "open\tstage"]},
              "counted": None}
    with reporting.db.transaction() as tx:
        bulk.upsert(tx.conn, funnel.deals, [record], ["deal_id"],
                    replace=[c for c in record if c != "deal_id"])
    with reporting.db.connect() as conn:
        names = {r.stage_id: r.stage_name for r in conn.execute(sa.select(funnel.stages))}
        stored = conn.execute(sa.select(funnel.deals)).one()._asdict()
    assert names == {1: "New", 2: "Paid"}
    assert stored["stages"] == {"1": [1, "open\tstage"]} and stored["visits"] == record["visits"]
    assert stored["contact_id"] is None and stored["counted"] is None
    assert stored["created_at"].replace(tzinfo=None) == SEEN.replace(tzinfo=None)
    assert stored["created_day"] == DAY


def test_a_rebuild_sized_write_adds_up(reporting):
    key = ["manager", "source", "day", "pipeline_id", "stage_id"]
    rows = [_counter(f"m{i % 50}", i // 50, 1) for i in range(20_000)]
    for _ in range(2):
        with reporting.db.transaction() as tx:
            bulk.upsert(tx.conn, funnel.daily, rows, key, add=funnel.COUNTS)
    with reporting.db.connect() as conn:
        count, total = conn.execute(sa.select(sa.func.count(), sa.func.sum(funnel.daily.c.reached))).one()
    assert (count, total) == (len(rows), 2 * len(rows))


def test_journal_rows_are_inserted_once_and_read_back_as_sent(reporting):
    from crmhub.services.reporting.models import journal

    payload = {"event_id": "e1", "deal": {"title": "Сделка \"A\"\tB", "amount": "10.50",
                                          "products": [{"sku": "x", "qty": 2}], "manager": None}}

    def row(key, body):
        return {"event_key": key, "event_type": "deal_created", "occurred_at": SEEN,
                "payload": body, "received_at": SEEN}

    with reporting.db.transaction() as tx:
        first = bulk.insert_new(tx.conn, journal, [row("deal_created:e1", payload),
                                                   row("deal_created:e2", {"n": 1})],
                                ["event_key"], "event_key")
    with reporting.db.transaction() as tx:
        again = bulk.insert_new(tx.conn, journal, [row("deal_created:e2", {"n": 2}),
                                                   row("deal_created:e3", {"n": 3})],
                                ["event_key"], "event_key")
    with reporting.db.connect() as conn:
        stored = {r.event_key: r for r in conn.execute(sa.select(journal))}
    assert sorted(first) == ["deal_created:e1", "deal_created:e2"]
    assert again == ["deal_created:e3"]  # e2 was journaled already: not inserted, not returned
    assert stored["deal_created:e1"].payload == payload
    assert stored["deal_created:e2"].payload == {"n": 1}
    assert stored["deal_created:e1"].occurred_at.replace(tzinfo=None) == SEEN.replace(tzinfo=None)


def test_dicts_keyed_by_numbers_are_written_with_text_keys(reporting):
    record = {"deal_id": "d2", "pipeline_id": "sales", "manager": "anna", "source": "",
              "contact_id": None, "created_at": SEEN, "created_day": DAY, "status": "open",
              "amount_cents": 1050, "closed_at": None, "version": 1, "visits": [],
              "stages": {3: [3, "open"]}, "counted": None}
    with reporting.db.transaction() as tx:
        bulk.upsert(tx.conn, funnel.deals, [record], ["deal_id"],
                    replace=[c for c in record if c != "deal_id"])
    with reporting.db.connect() as conn:
        assert conn.execute(sa.select(funnel.deals.c.stages)).scalar() == {"3": [3, "open"]}
