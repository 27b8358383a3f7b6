"""Telephony in the operator UI as a call center meets it: `crmhub run` on real RabbitMQ and
PostgreSQL with the Mango Office connector (its cloud played by plugins/mango/fake_api.py);
headless Chromium gets the incoming-call popups pushed while a card is open, plays the
recording from the card and places a call from it (call_session.py, in a process of its own:
see operator_session.py for why)."""
import json
import os

import pytest
from browser_runs import BROWSER_MARKS, run_browser_session

from crmhub.plugins.mango import simulator
from support import OPERATOR_KEY, fresh_schema, wait_for

SCREENSHOTS = "/tmp/crmhub-calls"
LINE = "74951234567"

pytestmark = BROWSER_MARKS


@pytest.fixture
def hub(start_hub, pg_url, mango):
    for service in ("contacts", "deals", "telephony"):
        fresh_schema(pg_url, service)
    hub = start_hub(database_url=pg_url,
                    CONNECTORS={"mango": mango.settings(allow_private_recording_hosts=True)})
    assert hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Ольга"}).status_code == 200
    assert hub.api("PUT", "/api/v1/extensions/101",
                   json={"manager": "Olga", "provider": "mango"}).status_code == 200
    return hub


def as_json(hooks: list) -> list[dict]:
    return [{"path": hook.url(""), "body": hook.body.decode(), "headers": hook.headers}
            for hook in hooks]


def run_session(hub, mode: str, facts: dict) -> None:
    run_browser_session("call_session.py", mode, hub.base_url, OPERATOR_KEY, json.dumps(facts),
                        passed=f"{mode} session passed", timeout=240)


def test_an_operator_sees_who_calls_plays_the_recording_and_calls_back(hub, mango):
    anna = hub.api("POST", "/api/v1/contacts", json={
        "name": "Анна Петрова", "phones": ["+7 916 123-45-67"], "manager": "Olga"}).json()
    assert hub.api("POST", "/api/v1/pipelines/templates/b2b-sales").status_code == 201
    assert hub.api("POST", "/api/v1/deals", json={
        "contact_id": anna["id"], "pipeline_id": "b2b-sales", "title": "Поставка кофе",
        "manager": "Olga"}).status_code == 201
    # The popup shows the deals the card knows of: the deal is on Anna's card once contacts
    # has taken its deal_created.
    wait_for(lambda: any(e["kind"] == "deal_created" for e in hub.api(
        "GET", f"/api/v1/contacts/{anna['id']}").json()["timeline"]), message="the deal on the card")
    call = simulator.answered_incoming(client="79161234567", line=LINE, extension="101")
    # Appeared at the IVR and at 101 | Connected | the rest (hang-ups, summary, recording).
    stranger = simulator.missed_incoming(client="79035550011", line=LINE, extensions=("101",))
    os.makedirs(SCREENSHOTS, exist_ok=True)
    facts = {"anna": anna["id"], "screenshots": SCREENSHOTS,
             "anna_rings": as_json(call[:2]), "anna_answers": as_json(call[2:4]),
             "anna_hangs_up": as_json(call[4:]), "stranger_rings": as_json(stranger[:1])}
    run_session(hub, "calls", facts)

    commands = wait_for(lambda: mango.commands, message="the click-to-call command")
    [command] = [c for c in commands if c.path == "commands/callback"]
    assert (command.payload["from"]["extension"], command.payload["to_number"]) == (
        "101", "79161234567")
    placed = hub.api("GET", f"/api/v1/calls/{command.payload['command_id']}").json()
    assert (placed["requested_by"], placed["contact_id"]) == ("Olga", anna["id"])

    mango.refuse(3102)
    run_session(hub, "refused", facts)
    failed = hub.api("GET", "/api/v1/calls", params={"outcome": "failed"}).json()["items"]
    assert [c["requested_by"] for c in failed] == ["Olga"]
