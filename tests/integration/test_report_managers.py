"""Managers report against a scripted history worked out by hand, with monthly plans."""
import datetime as dt

from reporting_history import at, call, deal

from crmhub.contracts import events as ev
from crmhub.services.reporting.projections import managers

MARCH = {"period_from": "2026-03-01", "period_to": "2026-03-31"}


def history():
    c2_answered = call(ev.CALL_ANSWERED, "c2", at(hours=1), "+79160000002",
                       answered=at(hours=1, seconds=10), outcome="answered", manager="anna")
    return [
        call(ev.CALL_FINISHED, "c1", at(), "+79160000001", direction="outbound",
             answered=at(seconds=5), ended=at(seconds=125), outcome="answered", duration=120),
        # c2: finished arrives before answered (and twice); the newer snapshot wins.
        call(ev.CALL_FINISHED, "c2", at(hours=1), "+79160000002",
             answered=at(hours=1, seconds=10), ended=at(hours=1, seconds=310),
             outcome="answered", duration=300),
        c2_answered, c2_answered,
        call(ev.CALL_MISSED, "c3", at(hours=2), "+79160000003", ended=at(hours=2, seconds=30),
             outcome="missed"),
        call(ev.CALL_MISSED, "c4", at(hours=3), "+79160000004", direction="outbound",
             ended=at(hours=3, seconds=40), outcome="missed", manager="boris"),
        call(ev.CALL_FINISHED, "c5", at(hours=4), "+79160000005",
             answered=at(hours=4, seconds=3), ended=at(hours=4, seconds=63), outcome="answered",
             duration=60, manager="boris"),
        call(ev.CALL_FINISHED, "c6", at(days=40), "+79160000006", direction="outbound",
             answered=at(days=40), ended=at(days=40, seconds=30), outcome="answered",
             duration=30),                                       # April
        deal(ev.DEAL_CREATED, "d1", "k1", 1, at()),
        deal(ev.DEAL_WON, "d1", "k1", 2, at(), when=at(days=1), status="won", amount="1000.00",
             closed=at(days=1), stage_id=4),
        deal(ev.DEAL_CREATED, "d1", "k1", 1, at()),               # duplicate
        deal(ev.DEAL_CREATED, "d2", "k2", 1, at(days=1), amount="700.00"),
        deal(ev.DEAL_CREATED, "d3", "k3", 1, at(days=2), manager="boris"),
        deal(ev.DEAL_LOST, "d3", "k3", 2, at(days=2), when=at(days=3), status="lost",
             manager="boris", closed=at(days=3), stage_id=5),
        # d4: created in February, won in March by boris: won counts in March.
        deal(ev.DEAL_WON, "d4", "k4", 2, at(days=-10), when=at(days=5), status="won",
             amount="250.50", manager="boris", closed=at(days=5), stage_id=4),
        deal(ev.DEAL_CREATED, "d4", "k4", 1, at(days=-10), manager="boris"),
    ]


def test_calls_deals_and_revenue_per_manager(reporting):
    reporting.feed(history())
    rows = {r["manager"]: r for r in reporting.report("managers", **MARCH)["rows"]}
    assert {k: rows["anna"][k] for k in ("calls_made", "calls_answered", "calls_missed",
                                         "talk_seconds", "deals_created", "deals_won",
                                         "revenue")} == {
        "calls_made": 1, "calls_answered": 1, "calls_missed": 1, "talk_seconds": 420,
        "deals_created": 2, "deals_won": 1, "revenue": 1000.0}
    assert {k: rows["boris"][k] for k in ("calls_made", "calls_answered", "calls_missed",
                                          "talk_seconds", "deals_created", "deals_won",
                                          "revenue")} == {
        "calls_made": 1, "calls_answered": 1, "calls_missed": 0, "talk_seconds": 60,
        "deals_created": 1, "deals_won": 1, "revenue": 250.5}
    everything = {r["manager"]: r for r in reporting.report("managers")["rows"]}
    assert everything["anna"]["calls_made"] == 2 and everything["boris"]["deals_created"] == 2
    only_boris = reporting.report("managers", manager="boris", **MARCH)["rows"]
    assert [r["manager"] for r in only_boris] == ["boris"]


def test_share_of_plan(reporting):
    reporting.feed(history())
    with reporting.db.transaction() as tx:
        managers.put_plan(tx, "anna", "2026-03", {"calls": 4, "deals_won": 2, "revenue": "4000"})
        managers.put_plan(tx, "anna", "2026-04", {"revenue": "9999"})
        # A plan is replaced, not added to.
        managers.put_plan(tx, "boris", "2026-03", {"revenue": "100"})
        saved = managers.put_plan(tx, "boris", "2026-03", {"revenue": "1002.00"})
    assert saved["revenue"] == 1002 and saved["calls"] is None
    with reporting.db.connect() as conn:
        assert [p["manager"] for p in managers.list_plans(conn, "2026-03")] == ["anna", "boris"]
    rows = {r["manager"]: r for r in reporting.report("managers", **MARCH)["rows"]}
    assert rows["anna"]["plan_revenue"] == 4000.0
    assert rows["anna"]["revenue_of_plan"] == 0.25
    assert rows["anna"]["won_of_plan"] == 0.5
    assert rows["anna"]["calls_of_plan"] == 0.25
    assert rows["boris"]["revenue_of_plan"] == 0.25
    assert rows["boris"]["calls_of_plan"] is None


def test_plan_months_of_a_period():
    start, end = (dt.datetime(2026, 2, 15, tzinfo=dt.timezone.utc),
                  dt.datetime(2026, 4, 1, tzinfo=dt.timezone.utc))
    assert managers.plan_months(start, end) == ["2026-02", "2026-03"]
    assert managers.plan_months(None, end) is None
