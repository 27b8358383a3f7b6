"""Campaigns in the operator UI: `crmhub run` on real RabbitMQ and PostgreSQL and a real SMTP
server; headless Chromium creates, previews and sends a campaign (campaign_session.py, in a
process of its own: see operator_session.py for why)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailservers import SmtpSink
from support import ADMIN_KEY, fresh_schema

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SESSION = Path(__file__).with_name("campaign_session.py")
SERVICES = ("contacts", "deals", "email", "gateway")

pytestmark = [
    pytest.mark.browser, pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM} (`make test` installs it with apt)"),
]


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
    session = subprocess.run(
        [sys.executable, str(SESSION), hub.base_url, ADMIN_KEY],
        capture_output=True, text=True, timeout=180, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert session.returncode == 0, f"{session.stdout}\n{session.stderr}"
    assert "campaign session passed" in session.stdout

    # What the browser did is what went out: the two consenting clients, once each.
    assert sorted(m["rcpt_tos"][0] for m in smtp.messages()) == [
        "anna@client.example", "boris@client.example"]
    [campaign] = hub.api("GET", "/api/v1/campaigns").json()["items"]
    assert (campaign["name"], campaign["rate_per_minute"], campaign["created_by"]) == (
        "Spring sale", 1200, "Admin")
