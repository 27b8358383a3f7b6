"""Churn risk report against scripted purchase histories with numbers worked out by hand.

As of the end of the period (1 July 2026 00:00 UTC); purchases at 09:00 UTC.
"""
from reporting_scripts import churn_history

UNTIL_JUNE = {"period_to": "2026-06-30"}


def test_overdue_clients_ranked(reporting):
    reporting.feed(churn_history())
    report = reporting.report("churn", **UNTIL_JUNE)
    assert [r["contact_id"] for r in report["rows"]] == ["c1", "c3"]
    ann, cora = report["rows"]
    assert ann == {"client": "Ann", "name": "Ann", "contact_id": "c1", "purchases": 3,
                   "last_purchase": "2026-03-22", "usual_interval_days": 10.0,
                   "days_since": 100.6, "days_overdue": 90.6, "ratio": 10.0625,
                   "manager": "anna"}
    assert (cora["client"], cora["purchases"], cora["last_purchase"]) == ("Cora", 3, "2026-05-01")
    assert (cora["usual_interval_days"], cora["days_since"], cora["ratio"]) == (30.0, 60.6, 2.0208)
    assert cora["manager"] == "boris"
    assert report["summary"]["at_risk"] == 2
    assert report["highlight"]["row"] == 0


def test_factor_manager_and_limit(reporting):
    reporting.feed(churn_history())
    strict = reporting.report("churn", factor=2.5, **UNTIL_JUNE)
    assert [r["contact_id"] for r in strict["rows"]] == ["c1"]
    boris = reporting.report("churn", manager="boris", **UNTIL_JUNE)
    assert [r["contact_id"] for r in boris["rows"]] == ["c3"]
    top = reporting.report("churn", limit=1, **UNTIL_JUNE)
    assert [r["contact_id"] for r in top["rows"]] == ["c1"] and top["summary"]["at_risk"] == 2
    # As of the end of April Cora's purchase of 1 May has not happened: her last (1 April)
    # is 29.625 days old against a usual 30; Ann's is 39.625 days against 10.
    april = reporting.report("churn", period_to="2026-04-30")
    assert [(r["contact_id"], r["ratio"]) for r in april["rows"]] == [("c1", 3.9625)]


def test_rebuild_gives_the_live_numbers(reporting):
    reporting.feed(churn_history())
    live = reporting.report("churn", **UNTIL_JUNE)
    reporting.rebuild()
    assert reporting.report("churn", **UNTIL_JUNE) == live
