"""Lead sources report against a scripted history with numbers worked out by hand."""
import datetime as dt

import pytest
from reporting_history import rows_by
from reporting_scripts import sources_history

from crmhub.contracts.errors import InvalidInput
from crmhub.services.reporting.projections import sources

MARCH = {"period_from": "2026-03-01", "period_to": "2026-03-31"}


def test_leads_deals_won_and_revenue_by_source(reporting):
    reporting.feed(sources_history())
    report = reporting.report("sources", **MARCH)
    rows = {(r["source"], r["medium"], r["campaign"]): r for r in report["rows"]}
    assert set(rows) == {("google", "cpc", "spring"), ("tilda", "form", "callback"),
                         ("mango", "call", ""), ("direct", "", "")}
    google = rows["google", "cpc", "spring"]
    assert (google["leads"], google["deals"], google["won"], google["revenue"]) == (2, 2, 2, 1250.5)
    assert google["lead_to_sale"] == 1.0
    tilda = rows["tilda", "form", "callback"]
    assert (tilda["leads"], tilda["deals"], tilda["won"], tilda["revenue"]) == (1, 1, 0, 0)
    mango = rows["mango", "call", ""]
    assert (mango["leads"], mango["deals"], mango["won"]) == (1, 1, 0)
    assert rows["direct", "", ""]["leads"] == 1
    assert report["summary"]["leads"] == 5 and report["summary"]["revenue"] == 1250.5
    assert report["summary"]["spend"] == 0 and report["summary"]["cost_per_lead"] is None

    whole = rows_by(reporting.report("sources"), "campaign")["spring"]
    assert (whole["leads"], whole["deals"], whole["won"], whole["revenue"]) == (3, 3, 3, 1340.5)


def test_filters_by_manager_pipeline_and_source(reporting):
    reporting.feed(sources_history())
    boris = reporting.report("sources", manager="boris", **MARCH)
    assert [(r["source"], r["leads"], r["deals"]) for r in boris["rows"]] == [("mango", 1, 1)]
    tilda = reporting.report("sources", source="tilda", **MARCH)
    # utm-tagged google cards came through the tilda connector too: "source" matches either.
    assert {r["source"]: (r["leads"], r["deals"]) for r in tilda["rows"]} == {
        "google": (2, 2), "tilda": (1, 1)}
    top = reporting.report("sources", limit=2, **MARCH)
    # Most leads first, then revenue, then by name.
    assert [r["source"] for r in top["rows"]] == ["google", "direct"]
    assert (top["summary"]["rows"], top["summary"]["leads"]) == (4, 5)
    other = reporting.report("sources", pipeline_id="other", **MARCH)
    assert sum(r["deals"] for r in other["rows"]) == 0


def test_cost_per_lead_and_sale_prorated_over_the_period(reporting):
    reporting.feed(sources_history())
    with reporting.db.transaction() as tx:
        sources.put_ad_spend(tx, {"source": "google", "period_from": dt.date(2026, 3, 1),
                                  "period_to": dt.date(2026, 3, 31), "amount": "3100.00"})
        sources.put_ad_spend(tx, {"source": "tilda", "campaign": "callback",
                                  "period_from": dt.date(2026, 2, 15),
                                  "period_to": dt.date(2026, 3, 16), "amount": "600.00"})
        # Entered again for the same source and period: replaces the amount.
        sources.put_ad_spend(tx, {"source": "google", "period_from": dt.date(2026, 3, 1),
                                  "period_to": dt.date(2026, 3, 31), "amount": "3100.00"})
    with reporting.db.connect() as conn:
        assert len(sources.list_ad_spend(conn)) == 2
    with pytest.raises(InvalidInput) as refused, reporting.db.transaction() as tx:
        sources.put_ad_spend(tx, {"source": "google", "period_from": dt.date(2026, 3, 31),
                                  "period_to": dt.date(2026, 3, 1), "amount": "1.00"})
    assert "period_to" in refused.value.args[1]

    march = rows_by(reporting.report("sources", **MARCH), "source")
    assert march["google"]["spend"] == 3100.0
    assert march["google"]["cost_per_lead"] == 1550.0 and march["google"]["cost_per_sale"] == 1550.0
    # 16 of the entry's 30 days fall in March: 600 * 16 / 30.
    assert march["tilda"]["spend"] == 320.0 and march["tilda"]["cost_per_lead"] == 320.0
    assert march["tilda"]["cost_per_sale"] is None

    half = reporting.report("sources", period_from="2026-03-01", period_to="2026-03-15")
    google = rows_by(half, "source")["google"]
    # 15 of 31 days: 1500.00 over 2 leads and 2 sales (both won by March 12).
    assert (google["spend"], google["cost_per_lead"], google["cost_per_sale"]) == (1500, 750, 750)
    assert rows_by(half, "source")["tilda"]["spend"] == 300.0  # 15 of 30 days
    assert half["summary"]["spend"] == 1800.0


def test_rebuild_gives_the_live_numbers(reporting):
    reporting.feed(sources_history())
    live = reporting.report("sources", **MARCH)
    reporting.rebuild()
    assert reporting.report("sources", **MARCH) == live
