"""Reports through a running hub: `crmhub run` with contacts, deals, telephony, reporting and
the gateway on real RabbitMQ and PostgreSQL. Deals are created and moved through the REST API
(one backwards); the funnel report is read back as JSON and CSV and checked against numbers
worked out by hand (report_samples.PATHS)."""
import csv
import io

import pytest
from report_samples import (
    BOOKED,
    LOST,
    REPORT_SERVICES,
    REQUEST,
    SCHOOL,
    SIGNED,
    TRIAL,
    school_rows,
    script_school_funnel,
    wait_for_school_funnel,
)

from support import OPERATOR_KEY, fresh_schema

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]


@pytest.fixture
def hub(start_hub, pg_url):
    for service in REPORT_SERVICES:
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, services=REPORT_SERVICES)


def test_the_funnel_report_counts_what_was_done_through_the_api(hub):
    stages = script_school_funnel(hub)
    report = wait_for_school_funnel(hub)
    rows = school_rows(report)
    assert [(s, rows[s]["reached"]) for s in (REQUEST, BOOKED, TRIAL, SIGNED, LOST)] == [
        (REQUEST, 4), (BOOKED, 3), (TRIAL, 1), (SIGNED, 1), (LOST, 1)]
    assert [rows[s]["to_next"] for s in (REQUEST, BOOKED, TRIAL)] == [0.75, 0.3333, 1.0]
    assert [rows[s]["to_won"] for s in (REQUEST, BOOKED, TRIAL)] == [0.25, 0.3333, 1.0]
    highlight = report["highlight"]
    assert (highlight["group"], highlight["row"]) == (SCHOOL, str(stages[BOOKED]))
    assert {g["key"] for g in report["groups"]} == {SCHOOL, "b2b-sales"}

    # The same numbers as CSV: one line per stage of each pipeline, the pipeline first.
    response = hub.api("GET", "/api/v1/reports/funnel", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="funnel')
    lines = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    school = {line["stage"]: line for line in lines if line["group"] == SCHOOL}
    assert {s: school[s]["reached"] for s in school} == {
        REQUEST: "4", BOOKED: "3", TRIAL: "1", SIGNED: "1", LOST: "1"}
    assert school[BOOKED]["to_next"] == "0.3333"

    # Filtered to one pipeline: only its group.
    only = hub.api("GET", "/api/v1/reports/funnel", params={"pipeline_id": "b2b-sales"}).json()
    assert [g["key"] for g in only["groups"]] == ["b2b-sales"]
    assert only["filters"]["pipeline_id"] == "b2b-sales"


def test_report_api_errors_and_permissions(hub):
    unknown = hub.api("GET", "/api/v1/reports/weather")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    bad = hub.api("GET", "/api/v1/reports/funnel", params={"period_from": "last week"})
    assert bad.status_code == 400 and "period_from" in bad.json()["details"]
    stranger = hub.api("GET", "/api/v1/reports/funnel", params={"colour": "red"})
    assert stranger.status_code == 400 and "colour" in stranger.json()["details"]
    operator = hub.api("GET", "/api/v1/reports/funnel",
                       headers={"Authorization": f"Bearer {OPERATOR_KEY}"})
    assert operator.status_code == 403
    listed = hub.api("GET", "/api/v1/reports").json()["reports"]
    assert {"funnel", "managers", "churn"} <= {r["name"] for r in listed}


def test_plans_and_ad_spend_are_set_and_read_back(hub):
    put = hub.api("PUT", "/api/v1/reports/plans/Olga/2026-03",
                  json={"deals_won": 5, "revenue": "250000"})
    assert put.status_code == 200, put.text
    assert (put.json()["deals_won"], put.json()["revenue"]) == (5, "250000.00")
    got = hub.api("GET", "/api/v1/reports/plans/Olga/2026-03").json()
    assert (got["manager"], got["month"], got["deals_won"]) == ("Olga", "2026-03", 5)
    listed = hub.api("GET", "/api/v1/reports/plans", params={"month": "2026-03"}).json()
    assert [p["manager"] for p in listed["plans"]] == ["Olga"]
    assert hub.api("GET", "/api/v1/reports/plans/Ivan/2026-03").status_code == 404
    assert hub.api("PUT", "/api/v1/reports/plans/Olga/2026-13",
                   json={"deals_won": 1}).status_code == 400
    bad = hub.api("PUT", "/api/v1/reports/plans/Olga/2026-04", json={"deals_won": -1})
    assert bad.status_code == 400 and "deals_won" in bad.json()["details"]

    spend = hub.api("PUT", "/api/v1/reports/ad-spend", json={
        "source": "yandex", "period_from": "2026-03-01", "period_to": "2026-03-31",
        "amount": "30000"})
    assert spend.status_code == 200, spend.text
    entries = hub.api("GET", "/api/v1/reports/ad-spend").json()["entries"]
    assert [(e["source"], e["amount"]) for e in entries] == [("yandex", "30000.00")]
