"""Campaigns in the operator UI: `crmhub run` on real RabbitMQ and PostgreSQL and a real SMTP
server; headless Chromium creates, previews and sends a campaign (campaign_session.py, in a
process of its own: see operator_session.py for why)."""

import pytest
from browser_runs import BROWSER_MARKS, run_browser_session

from mailservers import SmtpSink
from support import ADMIN_KEY, fresh_schema

SERVICES = ("contacts", "deals", "email", "gateway")

pytestmark = BROWSER_MARKS


@pytest.fixture
def smtp(tmp_path):
    sink = SmtpSink(tmp_path / "smtp").start()
    yield sink
    sink.stop()


@pytest.fixture
def hub(start_hub, pg_url, smtp):
    for service in SERVICES:
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, services=SERVICES, EMAIL={"smtp": smtp.settings()},
                     CAMPAIGN_TICK_S=0.2)


def test_a_marketer_creates_previews_and_sends_a_campaign(hub, smtp):
    for name, consent in (("Anna", True), ("Boris", True), ("Carl", False)):
        card = hub.api("POST", "/api/v1/contacts", json={
            "name": name, "emails": [f"{name.lower()}@client.example"], "tags": ["vip"]}).json()
        if consent:
            assert hub.api("PUT", f"/api/v1/contacts/{card['id']}/consents", json={
                "channel": "email", "status": "granted"}).status_code == 200
    run_browser_session("campaign_session.py", hub.base_url, ADMIN_KEY,
                        passed="campaign session passed")

    # What the browser did is what went out: the two consenting clients, once each.
    assert sorted(m["rcpt_tos"][0] for m in smtp.messages()) == [
        "anna@client.example", "boris@client.example"]
    [campaign] = hub.api("GET", "/api/v1/campaigns").json()["items"]
    assert (campaign["name"], campaign["rate_per_minute"], campaign["created_by"]) == (
        "Spring sale", 1200, "Admin")
