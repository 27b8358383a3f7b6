"""The lead sources, call center, campaigns and churn reports through a running hub: the
scripted histories of the integration tests published on RabbitMQ as their owner services
publish them (each type on its own queue, so in no particular order across types), consumed
by `crmhub run` (reporting and gateway, PostgreSQL), and read back through the REST API as
JSON and CSV with the numbers worked out by hand."""
import csv
import io

import pytest
import sqlalchemy as sa
from nameko.standalone.events import event_dispatcher
from reporting_scripts import calls_history, campaigns_history, churn_history, sources_history

from crmhub.contracts import events as ev
from crmhub.runtime.db import sqlalchemy_url
from support import fresh_schema, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]
MARCH = {"period_from": "2026-03-01", "period_to": "2026-03-31"}


@pytest.fixture
def hub(start_hub, pg_url):
    for service in ("reporting", "gateway"):
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, services=("reporting", "gateway"))


def publish(hub, history) -> None:
    """Publish ``history`` and wait until reporting has journaled every distinct event: the
    reports are read once all of it is in, never from a part that happens to look whole."""
    dispatch = event_dispatcher({"AMQP_URI": hub.config["AMQP_URI"]})
    for event_type, payload in history:
        dispatch(ev.spec(event_type).owner, event_type, payload)
    expected = len({(event_type, payload["event_id"]) for event_type, payload in history})
    engine = sa.create_engine(sqlalchemy_url(hub.config["DATABASE_URL"]))
    try:
        def journaled():
            with engine.connect() as conn:
                count = conn.execute(sa.text("SELECT count(*) FROM reporting.journal")).scalar()
            return count >= expected or None
        wait_for(journaled, timeout=30, interval=0.2, message=f"{expected} events journaled")
    finally:
        engine.dispose()


def report(hub, name, **params) -> dict:
    response = hub.api("GET", f"/api/v1/reports/{name}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def settled(hub, name, check, **params) -> dict:
    """The report once ``check`` holds (every event consumed), within 30 s."""
    def ready():
        body = report(hub, name, **params)
        return body if check(body) else None
    return wait_for(ready, timeout=30, interval=0.3, message=f"{name} report complete")


def csv_lines(hub, name, **params) -> list[dict]:
    response = hub.api("GET", f"/api/v1/reports/{name}", params={**params, "format": "csv"})
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_call_center_report_over_the_broker(hub):
    publish(hub, calls_history())
    body = settled(hub, "calls", lambda b: b["summary"]["inbound"] == 5
                   and b["summary"]["called_back"] == 2, **MARCH)
    summary = body["summary"]
    assert (summary["missed"], summary["missed_share"], summary["avg_wait_s"]) == (3, 0.6, 32.0)
    assert (summary["avg_answer_s"], summary["called_back_share"]) == (15.0, 0.6667)
    wide = report(hub, "calls", callback_minutes=30, time_zone="Europe/Moscow", **MARCH)
    assert wide["summary"]["called_back"] == 3
    assert {r["hour"]: r["inbound"] for r in wide["rows"] if r["inbound"]} == {12: 2, 13: 3}

    lines = csv_lines(hub, "calls", **MARCH)
    assert len(lines) == 24 and list(lines[0]) == [c["key"] for c in body["columns"]]
    assert (lines[10]["inbound"], lines[10]["missed"], lines[10]["missed_share"]) == (
        "3", "2", "0.6667")

    bad = hub.api("GET", "/api/v1/reports/calls", params={"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400 and "time_zone" in bad.json()["details"]


def test_sources_campaigns_and_churn_over_the_broker(hub):
    publish(hub, sources_history() + campaigns_history())
    spend = hub.api("PUT", "/api/v1/reports/ad-spend", json={
        "source": "google", "period_from": "2026-03-01", "period_to": "2026-03-31",
        "amount": "3100.00"})
    assert spend.status_code == 200, spend.text

    sources = settled(hub, "sources", lambda b: b["summary"]["leads"] == 5
                      and b["summary"]["won"] == 2 and b["summary"]["deals"] == 4, **MARCH)
    google = next(r for r in sources["rows"] if r["source"] == "google")
    assert (google["leads"], google["won"], google["revenue"]) == (2, 2, 1250.5)
    assert (google["cost_per_lead"], google["cost_per_sale"]) == (1550.0, 1550.0)
    lines = {line["source"]: line for line in csv_lines(hub, "sources", **MARCH)}
    assert (lines["google"]["leads"], lines["google"]["spend"]) == ("2", "3100.0")

    campaigns = settled(hub, "campaigns", lambda b: b["summary"]["sent"] == 5
                        and b["summary"]["opened"] == 3 and b["summary"]["bounced"] == 1)
    cmp1 = next(r for r in campaigns["rows"] if r["campaign_id"] == "cmp1")
    assert (cmp1["delivered"], cmp1["opened"], cmp1["clicked"], cmp1["unsubscribed"]) == (
        3, 2, 2, 1)


def test_churn_over_the_broker(hub):
    publish(hub, churn_history())
    churn = settled(hub, "churn", lambda b: [r["contact_id"] for r in b["rows"]] == ["c1", "c3"]
                    and b["rows"][1]["purchases"] == 3, period_to="2026-06-30")
    assert (churn["rows"][0]["client"], churn["rows"][0]["ratio"]) == ("Ann", 10.0625)
