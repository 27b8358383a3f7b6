"""Telephony as a call center meets it: `crmhub run` on real RabbitMQ and PostgreSQL with the
Mango Office connector, whose cloud is played by a local server speaking Mango's API
(plugins/mango/fake_api.py) and whose webhooks are the simulator's signed scenarios.

An operator's browser stream shows who is calling before they pick up; every call lands on the
client's card (a new card and a deal for an unknown number), with its recording streamed with
HTTP Range; a missed call sets a call-back task; click-to-call reaches the PBX, and a PBX that
refuses or is down comes back as a readable error."""
import contextlib
import json
import subprocess
import sys
import threading
import time

import pytest
import requests

from crmhub.plugins.mango import simulator
from crmhub.plugins.mango.fake_api import FAKE_MP3
from support import (
    INTEGRATOR_KEY,
    OPERATOR_KEY,
    RABBIT_API,
    RABBIT_AUTH,
    fresh_schema,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]

CLIENT = "79161234567"
LINE = "74951234567"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}


class PopupStream:
    """A browser's popup stream, read in a thread: the events it got, in order."""

    def __init__(self, url: str, headers: dict):
        self.events: list[tuple[str, dict]] = []
        self.response = requests.get(url, headers=headers, stream=True, timeout=30)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        wait_for(lambda: any(kind == "ready" for kind, _ in self.events), message="ready")

    def _read(self):
        kind = None
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line[6:])))
        except (requests.RequestException, AttributeError):
            pass  # closed at the end of the test

    def of(self, kind: str) -> list[dict]:
        return [data for k, data in self.events if k == kind]

    def close(self):
        with contextlib.suppress(RuntimeError):  # the reader thread is inside a read
            self.response.close()


@pytest.fixture
def hub(start_hub, pg_url, mango):
    for service in ("contacts", "deals", "telephony"):
        fresh_schema(pg_url, service)
    hub = start_hub(
        database_url=pg_url,
        CONNECTORS={"mango": mango.settings(allow_private_recording_hosts=True)},
        LEAD_RULES=[{"connector": "mango", "pipeline": "b2b-sales"}],
        TELEPHONY={"lines": {f"+{LINE}": {"queue": "sales-desk"}}})
    mango.hub_url = hub.base_url
    assert hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Ольга"}).status_code == 200
    assert hub.api("POST", "/api/v1/pipelines/templates/b2b-sales").status_code == 201
    assert hub.api("PUT", "/api/v1/pipelines/b2b-sales/managers",
                   json={"managers": ["Olga"]}).status_code == 200
    assert hub.api("PUT", "/api/v1/extensions/101",
                   json={"manager": "Olga", "provider": "mango"}).status_code == 200
    return hub


def post(hub, webhooks, pause: float = 0.0) -> None:
    """Send webhooks in order; ``pause`` between them stands for the seconds a PBX leaves
    between a phone ringing and someone picking up (without it, answered may overtake ringing
    in the mesh, and a call answered already shows no popup)."""
    for hook in webhooks:
        resp = requests.post(hook.url(hub.base_url), data=hook.body, headers=hook.headers,
                             timeout=10)
        assert resp.status_code == 200, resp.text
        time.sleep(pause)


def card_of(hub, phone=CLIENT) -> dict:
    return wait_for(lambda: (p := hub.api("GET", "/api/v1/contacts", params={"phone": phone})
                             .json())["total"] and p["items"][0], message=f"a card for {phone}")


def call_entries(hub, contact_id) -> list[dict]:
    card = hub.api("GET", f"/api/v1/contacts/{contact_id}").json()
    return [e for e in card["timeline"] if e["kind"] == "call"]


def test_an_unknown_caller_pops_up_lands_on_a_new_card_with_a_deal_and_a_playable_recording(
        hub, mango):
    stream = PopupStream(f"{hub.base_url}/api/v1/calls/stream", OPERATOR)
    try:
        answered = simulator.answered_incoming(client=CLIENT, line=LINE, extension="101")
        post(hub, answered, pause=0.3)
        [ringing] = wait_for(lambda: stream.of("call_ringing"), message="the popup")
        assert (ringing["extensions"], ringing["managers"]) == (["101"], ["Olga"])
        assert ringing["caller"]["known"] is False and ringing["caller"]["contact_id"]
        assert ringing["caller"]["number"] == f"+{CLIENT}"
        wait_for(lambda: stream.of("call_finished"), message="the end of the call")
        assert [k for k, _ in stream.events if k != "ready"] == [
            "call_ringing", "call_answered", "call_finished"]
    finally:
        stream.close()

    card = card_of(hub)
    assert card["id"] == ringing["caller"]["contact_id"]
    assert card["source"]["channel"] == "call" and card["source"]["connector"] == "mango"
    deals = wait_for(lambda: hub.api("GET", "/api/v1/deals",
                                     params={"contact_id": card["id"]}).json()["items"],
                     message="a deal for the new caller")
    assert (deals[0]["pipeline_id"], deals[0]["manager"]) == ("b2b-sales", "Olga")
    [entry] = wait_for(lambda: call_entries(hub, card["id"]), message="the call on the card")
    assert entry["title"] == "Incoming call, 0:42, Olga"
    assert entry["data"]["direction"] == "inbound" and entry["data"]["extension"] == "101"

    # The recording is fetched from the PBX and played from the card, seeking included.
    entry = wait_for(lambda: (e := call_entries(hub, card["id"])[0])["data"]["recording_url"]
                     and e, message="the recording on the card")
    url = hub.base_url + entry["data"]["recording_url"]
    whole = requests.get(url, headers=OPERATOR, timeout=10)
    assert (whole.status_code, whole.content) == (200, FAKE_MP3)
    assert whole.headers["Content-Type"] == "audio/mpeg"
    part = requests.get(url, headers={**OPERATOR, "Range": "bytes=100-199"}, timeout=10)
    assert (part.status_code, part.content) == (206, FAKE_MP3[100:200])
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(FAKE_MP3)}"
    beyond = requests.get(url, headers={**OPERATOR, "Range": f"bytes={len(FAKE_MP3)}-"},
                          timeout=10)
    assert beyond.status_code == 416 and beyond.json()["error"] == "range_not_satisfiable"
    refused = requests.get(url, headers={"Authorization": f"Bearer {INTEGRATOR_KEY}"},
                           timeout=10)
    assert refused.status_code == 403
    assert requests.get(url, timeout=10).status_code == 401

    # Mango delivers the same webhooks again: nothing changes.
    post(hub, answered)
    calls = hub.api("GET", "/api/v1/calls", params={"contact_id": card["id"]}).json()
    assert calls["total"] == 1 and calls["items"][0]["outcome"] == "answered"
    assert len(call_entries(hub, card["id"])) == 1
    assert len(mango.downloads) == 1


def test_a_missed_call_sets_a_call_back_task_and_forged_webhooks_store_nothing(hub, mango):
    post(hub, simulator.missed_incoming(client=CLIENT, line=LINE, extensions=("101", "102")))
    card = card_of(hub)
    [entry] = wait_for(lambda: call_entries(hub, card["id"]), message="the missed call")
    assert entry["title"] == "Incoming call: missed"
    tasks = wait_for(lambda: [t for t in hub.api("GET", "/api/v1/tasks", params={
        "contact_id": card["id"]}).json()["items"] if "missed call" in t["title"]],
        message="the call-back task")
    assert [(t["title"], t["manager"]) for t in tasks] == [
        (f"Call back: missed call from +{CLIENT}", "Olga")]

    forged = simulator.answered_incoming(client="79035550011", line=LINE, api_salt="not-ours")
    for hook in forged:
        resp = requests.post(hook.url(hub.base_url), data=hook.body, headers=hook.headers,
                             timeout=10)
        assert resp.status_code in (401, 403) and resp.json()["message"]
    assert hub.api("GET", "/api/v1/calls").json()["total"] == 1
    assert hub.api("GET", "/api/v1/contacts", params={"phone": "79035550011"}).json()["total"] == 0


def test_click_to_call_rings_the_operator_then_the_client_and_pbx_errors_are_readable(
        hub, mango):
    card = hub.api("POST", "/api/v1/contacts", json={"name": "Анна",
                                                     "phones": ["8 (916) 123-45-67"]}).json()
    placed = requests.post(f"{hub.base_url}/api/v1/calls", headers=OPERATOR, timeout=10,
                           json={"contact_id": card["id"]})
    assert placed.status_code == 201, placed.text
    call = placed.json()
    assert (call["status"], call["extension"], call["client_number"], call["requested_by"]) == (
        "dialing", "101", f"+{CLIENT}", "Olga")
    [command] = wait_for(lambda: mango.commands, message="the callback command")
    assert command.path == "commands/callback"
    assert (command.payload["from"]["extension"], command.payload["to_number"],
            command.payload["command_id"]) == ("101", CLIENT, call["id"])
    # The PBX reports the call it made, carrying our command id: the same call, on the card.
    done = wait_for(lambda: (c := hub.api("GET", f"/api/v1/calls/{call['id']}").json())[
        "status"] == "finished" and c, message="the call placed")
    assert (done["direction"], done["outcome"], done["contact_id"]) == (
        "outbound", "answered", card["id"])
    [entry] = wait_for(lambda: call_entries(hub, card["id"]), message="the call on the card")
    assert entry["title"].startswith("Outgoing call")

    mango.refuse(3102)
    refused = requests.post(f"{hub.base_url}/api/v1/calls", headers=OPERATOR, timeout=10,
                            json={"number": "+7 903 555-00-11"})
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"] == "pbx_refused" and "3102" in refused.json()["message"]
    mango.accept()
    mango.down = True
    down = requests.post(f"{hub.base_url}/api/v1/calls", headers=OPERATOR, timeout=20,
                         json={"number": "+7 903 555-00-11"})
    assert down.status_code == 503, down.text
    assert down.json()["error"] == "pbx_unavailable"
    failed = hub.api("GET", "/api/v1/calls", params={"outcome": "failed"}).json()["items"]
    assert len(failed) == 2 and {c["status"] for c in failed} == {"finished"}

    no_extension = hub.api("POST", "/api/v1/calls", json={"number": "+79035550011"})
    assert no_extension.status_code == 400 and "extension" in no_extension.json()["message"]
    garbage = requests.post(f"{hub.base_url}/api/v1/calls", headers=OPERATOR, timeout=10,
                            json={"number": "sip:someone@example.com"})
    assert garbage.status_code == 400 and "not a phone number" in garbage.json()["message"]
    nobody = requests.post(f"{hub.base_url}/api/v1/calls", headers=OPERATOR, timeout=10,
                           json={"contact_id": "c-nobody"})
    assert nobody.status_code == 400 and "no client card" in nobody.json()["message"]


def test_the_pbx_simulator_plays_each_providers_scenarios_against_a_running_hub(
        start_hub, pg_url, tmp_path):
    """`crmhub simulate pbx`, as integrators and the demo use it: signed with the keys of the
    hub's config file, every scenario accepted; keys the hub does not know are refused."""
    for service in ("contacts", "deals", "telephony"):
        fresh_schema(pg_url, service)
    hub = start_hub(database_url=pg_url, CONNECTORS={
        "mango": {"api_key": "demo-key", "api_salt": "demo-salt"},
        "zadarma": {"api_key": "demo-key", "api_secret": "demo-secret"}})
    config = tmp_path / "hub.yaml"
    for provider, client in (("mango", "79161234567"), ("zadarma", "79035550011")):
        played = subprocess.run(
            [sys.executable, "-m", "crmhub.cli", "simulate", "pbx", "--provider", provider,
             "--config", str(config), "--to", hub.base_url, "--client", client,
             "--scenario", "answered", "--scenario", "missed", "--pause", "0.2"],
            capture_output=True, text=True, timeout=120)
        assert played.returncode == 0, played.stdout + played.stderr
        assert f"{provider} answered #1" in played.stdout
        card = card_of(hub, client)
        calls = wait_for(lambda: (page := hub.api("GET", "/api/v1/calls", params={
            "contact_id": card["id"], "status": "finished"}).json())["total"] == 2 and page,
            message=f"the {provider} calls")
        assert sorted(c["outcome"] for c in calls["items"]) == ["answered", "missed"]
        assert {c["provider"] for c in calls["items"]} == {provider}

    stranger = tmp_path / "stranger.yaml"
    stranger.write_text("CONNECTORS:\n  mango: {api_key: demo-key, api_salt: guessed}\n")
    refused = subprocess.run(
        [sys.executable, "-m", "crmhub.cli", "simulate", "pbx", "--provider", "mango",
         "--config", str(stranger), "--to", hub.base_url, "--scenario", "missed",
         "--pause", "0"], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "refused" in refused.stderr


def test_each_gateway_instance_pushes_the_popup_to_its_own_browsers(hub, start_hub, pg_url,
                                                                     mango, amqp_uri):
    """Two gateway processes behind a balancer: a browser on either sees the popup. Each has
    its own queue per call event, which the broker settles as it delivers (no acks: a popup
    is only worth showing now)."""
    second = start_hub(database_url=pg_url, services=("gateway",), name="edge-2",
                       CONNECTORS={"mango": mango.settings(allow_private_recording_hosts=True)})
    streams = [PopupStream(f"{base}/api/v1/calls/stream", OPERATOR)
               for base in (hub.base_url, second.base_url)]
    try:
        post(hub, simulator.missed_incoming(client=CLIENT, line=LINE, extensions=("101",)),
             pause=0.3)
        for stream in streams:
            [ringing] = wait_for(lambda s=stream: s.of("call_ringing"), message="the popup")
            assert ringing["managers"] == ["Olga"]
            wait_for(lambda s=stream: s.of("call_missed"), message="the missed call")
        vhost = amqp_uri.rsplit("/", 1)[1]

        def popup_consumers():
            return [c for c in requests.get(f"{RABBIT_API}/consumers/{vhost}",
                                            auth=RABBIT_AUTH, timeout=10).json()
                    if "--gateway.on_call_" in c["queue"]["name"]]

        # The management API lists consumers as its statistics come in (every few seconds).
        consumers = wait_for(lambda: len(found := popup_consumers()) == 2 * 4 and found,
                             timeout=30, interval=0.5,
                             message="two instances' consumers of four call events")
        assert {c["ack_required"] for c in consumers} == {False}
    finally:
        for stream in streams:
            stream.close()


def test_an_asterisk_pbx_over_ami_feeds_the_call_log_and_places_calls(start_hub, pg_url):
    """Asterisk has no webhooks: the gateway holds the AMI session (here to a local server
    replaying synthesized calls in AMI's wire format) and click-to-call is an Originate."""
    from crmhub.plugins.asterisk import scenarios
    from crmhub.plugins.asterisk.simulator import AmiServer

    for service in ("contacts", "deals", "telephony"):
        fresh_schema(pg_url, service)
    script = [*scenarios.answered_incoming(caller=CLIENT, did=LINE, extension="101"),
              *scenarios.missed_incoming(caller="79031112233", did=LINE, extensions=("101",))]
    with AmiServer(script, interval=0.02) as ami:
        hub = start_hub(database_url=pg_url, CONNECTORS={
            "asterisk": ami.connector_settings(enabled=True, cdr_settle_seconds=0.2)})
        assert hub.api("PUT", "/api/v1/extensions/101", json={
            "manager": "Olga", "provider": "asterisk"}).status_code == 200
        page = wait_for(lambda: (p := hub.api("GET", "/api/v1/calls", params={
            "status": "finished"}).json())["total"] == 2 and p, timeout=20,
            message="both calls in the call log")
        calls = {c["client_number"]: c for c in page["items"]}
        answered, missed = calls[f"+{CLIENT}"], calls["+79031112233"]
        assert (answered["provider"], answered["direction"], answered["outcome"],
                answered["extension"]) == ("asterisk", "inbound", "answered", "101")
        assert missed["outcome"] in ("missed", "busy")
        [entry] = wait_for(lambda: call_entries(hub, card_of(hub)["id"]),
                           message="the answered call on the card")
        assert entry["data"]["provider"] == "asterisk"
        status = requests.get(f"{hub.base_url}/hooks/asterisk/status", timeout=10).json()
        assert status["connected"] is True

        placed = requests.post(f"{hub.base_url}/api/v1/calls", headers=OPERATOR, timeout=10,
                               json={"number": "+7 916 123-45-67"})
        assert placed.status_code == 201, placed.text
        originate = wait_for(lambda: [a for a in ami.actions
                                      if a.get("Action") == "Originate"], message="Originate")
        assert originate[0]["Channel"] == "PJSIP/101"
        assert originate[0]["Exten"] == CLIENT
