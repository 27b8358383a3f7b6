"""Reports in the operator UI: `crmhub run` with contacts, deals, telephony, reporting and the
gateway on real RabbitMQ and PostgreSQL; headless Chromium reads the dashboard, filters it,
downloads a CSV and creates a task from the churn report (report_session.py, in a process of
its own: see operator_session.py for why)."""

import pytest
from browser_runs import BROWSER_MARKS, run_browser_session
from report_samples import (
    REPORT_SERVICES,
    publish_past_purchases,
    script_school_funnel,
    wait_for_school_funnel,
)

from support import ADMIN_KEY, fresh_schema, wait_for

pytestmark = BROWSER_MARKS


@pytest.fixture
def hub(start_hub, pg_url):
    for service in REPORT_SERVICES:
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, services=REPORT_SERVICES)


def test_a_sales_head_reads_filters_downloads_and_acts_on_the_reports(hub, amqp_uri):
    script_school_funnel(hub)
    wait_for_school_funnel(hub)
    # Zoe bought every 30 days, the last time 60 days ago: twice her usual interval.
    zoe = hub.api("POST", "/api/v1/contacts", json={"name": "Zoe"}).json()
    [won] = hub.api("GET", "/api/v1/deals", params={"status": "won",
                                                    "pipeline_id": "language-school"}
                    ).json()["items"]
    template = hub.api("GET", f"/api/v1/deals/{won['id']}").json()
    publish_past_purchases(hub, amqp_uri, template, zoe["id"], [120, 90, 60])
    wait_for(lambda: any(r["contact_id"] == zoe["id"] for r in
                         hub.api("GET", "/api/v1/reports/churn").json()["rows"]),
             timeout=60, interval=0.3, message="Zoe in the churn report")

    run_browser_session("report_session.py", hub.base_url, ADMIN_KEY,
                        passed="report session passed")

    # What the button did: a task for Zoe's manager on her card.
    tasks = hub.api("GET", "/api/v1/tasks", params={"contact_id": zoe["id"]}).json()["items"]
    assert [(t["manager"], t["title"]) for t in tasks] == [
        ("Olga", "Win back Zoe: no purchase for longer than usual")]
