"""Email campaigns report against a scripted campaign with numbers worked out by hand."""
from reporting_history import rows_by
from reporting_scripts import campaigns_history

MARCH = {"period_from": "2026-03-01", "period_to": "2026-03-31"}


def test_campaign_counts(reporting):
    reporting.feed(campaigns_history())
    report = reporting.report("campaigns", **MARCH)
    assert [r["campaign_id"] for r in report["rows"]] == ["cmp1"]
    row = report["rows"][0]
    assert (row["sent"], row["bounced"], row["delivered"]) == (4, 1, 3)
    assert (row["opened"], row["clicked"], row["unsubscribed"]) == (2, 2, 1)
    assert (row["open_rate"], row["click_rate"]) == (0.6667, 0.6667)
    assert row["first_sent_at"] == "2026-03-02"

    everything = reporting.report("campaigns")
    assert [r["campaign_id"] for r in everything["rows"]] == ["cmp2", "cmp1"]
    cmp2 = rows_by(everything, "campaign_id")["cmp2"]
    assert (cmp2["sent"], cmp2["delivered"], cmp2["opened"], cmp2["open_rate"]) == (1, 1, 1, 1.0)
    assert everything["summary"]["sent"] == 5 and everything["summary"]["opened"] == 3


def test_rebuild_gives_the_live_numbers(reporting):
    reporting.feed(campaigns_history())
    live = reporting.report("campaigns")
    reporting.rebuild()
    assert reporting.report("campaigns") == live
