"""The simulator's scenarios are accepted by the connector and give the signals a CRM expects,
in order; the fake Mango API reports a click-to-call to a hub as Mango would."""
import datetime as dt
import io
import json
import time
from urllib.parse import parse_qs

import eventlet
import eventlet.wsgi
import pytest
import requests
from werkzeug.wrappers import Request

from crmhub.plugins.api import CallRequest, PbxError, Unauthorized, WebhookError, make_request
from crmhub.plugins.conformance import host_for
from crmhub.plugins.mango import MangoConnector, simulator
from crmhub.plugins.mango.fake_api import FakeMangoApi
from crmhub.plugins.mango.simulator import SIM_API_KEY, SIM_API_SALT

START = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.timezone.utc)


@pytest.fixture
def sim_host():
    return host_for(MangoConnector, {"api_key": SIM_API_KEY, "api_salt": SIM_API_SALT})


def signals(host, webhooks) -> list[dict]:
    events = []
    for hook in webhooks:
        result = host.handle(hook.request())[1]
        assert (result.status, result.body) == (200, {"success": True}), hook.path
        events += [event for _, event in result.events]
    return events


RINGING, ANSWERED, LEG_ENDED, FINISHED, RECORDING = (
    "ringing", "answered", "leg_ended", "finished", "recording")


@pytest.mark.parametrize("scenario, params, kinds", [
    ("answered", {}, [RINGING, RINGING, ANSWERED, LEG_ENDED, LEG_ENDED, FINISHED, RECORDING]),
    ("answered", {"recorded": False}, [RINGING, RINGING, ANSWERED, LEG_ENDED, LEG_ENDED, FINISHED]),
    ("missed", {}, [RINGING, RINGING, LEG_ENDED, LEG_ENDED, FINISHED]),
    ("missed", {"extensions": ("103",)}, [RINGING, LEG_ENDED, FINISHED]),
    ("outgoing", {}, [RINGING, ANSWERED, LEG_ENDED, FINISHED]),
    ("outgoing", {"answered": False}, [RINGING, LEG_ENDED, FINISHED]),
    ("outgoing", {"command_id": "cmd-1"}, [RINGING, ANSWERED, LEG_ENDED, FINISHED]),
    ("transfer", {}, [RINGING, ANSWERED, RINGING, LEG_ENDED, ANSWERED, LEG_ENDED, FINISHED]),
    ("recording", {}, [RECORDING]),
    ("recording", {"completion_code": 4002}, []),
])
def test_every_scenario_gives_its_signals_in_order_for_one_call(
        sim_host, scenario, params, kinds):
    webhooks = simulator.build(scenario, entry_id="entry-1", **params)
    events = signals(sim_host, webhooks)
    assert [event["kind"] for event in events] == kinds
    assert {event["call_key"] for event in events} <= {"entry-1"}
    assert [event["kind"] for event in signals(sim_host, webhooks)] == kinds  # redelivered
    keys = [event["idempotency_key"] for event in events]
    assert len(set(keys)) == len(keys)


def test_an_answered_incoming_call(sim_host):
    events = signals(sim_host, simulator.answered_incoming(
        client="79035550011", line="74950001122", extension="105", start=START))
    ivr, ringing, answered, *_, finished, recording = events
    assert ivr["at"] == "2024-03-01T09:30:00+00:00" and "extension" not in ivr
    assert (ringing["extension"], answered["extension"], finished["extension"]) == ("105",) * 3
    assert {e["direction"] for e in events if e["kind"] != RECORDING} == {"inbound"}
    assert {e["client_number"] for e in events if e["kind"] != RECORDING} == {"79035550011"}
    assert {e["line"] for e in events if e["kind"] != RECORDING} == {"74950001122"}
    assert (finished["outcome"], finished["final"], finished["duration_s"]) == ("answered", True, 42)
    assert finished["answered_at"] == answered["at"]
    assert recording["recording_ref"] and recording["leg_id"] == answered["leg_id"]


def test_recording_events_count_their_own_seq_as_mango_does():
    hooks = [h for h in simulator.answered_incoming() if h.path == "/events/recording"]
    assert [json.loads(h.payload_text)["seq"] for h in hooks] == [1, 2]


def test_a_missed_call_rings_every_extension(sim_host):
    events = signals(sim_host, simulator.missed_incoming(extensions=("101", "102")))
    assert [e.get("extension") for e in events] == ["101", "102", "101", "102", "101"]
    assert (events[-1]["outcome"], events[-1]["cause"]) == ("missed", "1110 by caller")
    assert "answered_at" not in events[-1]


def test_an_outgoing_call_the_client_does_not_take_is_busy(sim_host):
    events = signals(sim_host, simulator.outgoing(extension="104", client="79161112233",
                                                  answered=False))
    assert {(e["direction"], e["extension"], e["client_number"]) for e in events} == {
        ("outbound", "104", "79161112233")}
    assert (events[1]["cause"], events[-1]["outcome"]) == ("1121 busy", "busy")


def test_a_click_to_call_reports_its_result_first_and_its_id_on_every_signal(sim_host):
    webhooks = simulator.outgoing(command_id="cmd-9")
    assert webhooks[0].path == "/result/callback"
    events = signals(sim_host, webhooks)
    assert {e["command_id"] for e in events} == {"cmd-9"}


def test_a_transfer_moves_the_call_from_the_first_extension_to_the_second(sim_host):
    events = signals(sim_host, simulator.transfer(extensions=("101", "102")))
    assert [(e["kind"], e["extension"]) for e in events] == [
        (RINGING, "101"), (ANSWERED, "101"), (RINGING, "102"), (LEG_ENDED, "101"),
        (ANSWERED, "102"), (LEG_ENDED, "102"), (FINISHED, "102")]
    assert events[-1]["outcome"] == "answered"


def test_a_transfer_given_one_extension_goes_to_the_next_one(sim_host):
    events = signals(sim_host, simulator.transfer(extensions=("105",)))
    assert [e.get("extension") for e in events if e["kind"] == ANSWERED] == ["105", "106"]
    with pytest.raises(ValueError, match="at least one extension"):
        simulator.missed_incoming(extensions=())


def test_each_call_gets_its_own_entry_id():
    first, second = simulator.answered_incoming(), simulator.answered_incoming()
    assert first[0].payload_text != second[0].payload_text
    assert simulator.new_entry_id() != simulator.new_entry_id()


def test_webhooks_are_signed_with_the_given_key_and_salt(sim_host):
    webhooks = simulator.outgoing(api_key="acct-key", api_salt="acct-salt")
    with pytest.raises(Unauthorized):
        sim_host.handle(webhooks[0].request())
    own_host = host_for(MangoConnector, {"api_key": "acct-key", "api_salt": "acct-salt"})
    assert len(signals(own_host, webhooks)) == 4


def test_a_webhook_is_a_path_and_its_form_ready_to_send():
    path, fields = hook = simulator.outgoing()[0]
    assert path == "/events/call" and set(fields) == {"vpbx_api_key", "sign", "json"}
    assert {k: v[0] for k, v in parse_qs(hook.body.decode()).items()} == fields
    assert hook.headers == {"Content-Type": "application/x-www-form-urlencoded"}
    assert hook.url("http://hub:8000/") == "http://hub:8000/hooks/mango/events/call"


def test_an_unknown_scenario_names_the_known_ones():
    with pytest.raises(ValueError, match="answered, missed, outgoing, transfer, recording"):
        simulator.build("conference")


# -- the fake Mango API reports a click-to-call to a hub ----------------------------------------

@pytest.fixture
def hub(sim_host):
    """A stand-in for the gateway on 127.0.0.1: routes posts through the ConnectorHost and
    keeps the signals."""
    received = []

    def app(environ, start_response):
        request = Request(environ)
        incoming = make_request(method=request.method, path=request.path,
                                body=request.get_data(), headers=list(request.headers.items()))
        try:
            result = sim_host.handle(incoming)[1]
            received.extend(event for _, event in result.events)
            status = f"{result.status} OK"
        except WebhookError as exc:
            status = f"{exc.status} Refused"
        start_response(status, [("Content-Type", "application/json")])
        return [b"{}"]

    listener = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, log=io.StringIO())
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", received
    server.kill()
    listener.close()


def test_the_fake_api_reports_an_accepted_click_to_call_to_the_hub(hub):
    hub_url, received = hub
    with FakeMangoApi(hub_url=hub_url) as mango, requests.Session() as api:
        before = time.monotonic()
        MangoConnector(mango.settings()).place_call(api, CallRequest(
            "cmd-7", "101", "+79161234567", line="+74951234567"))
        posted = mango.wait_for_posts(5)
    assert before <= mango.commands[0].arrived <= time.monotonic()
    assert posted == [("/result/callback", 200)] + [("/events/call", 200)] * 3 + [
        ("/events/summary", 200)]
    assert [e["kind"] for e in received] == [RINGING, ANSWERED, LEG_ENDED, FINISHED]
    assert {(e["command_id"], e["extension"], e["client_number"], e["line"]) for e in received} == {
        ("cmd-7", "101", "79161234567", "74951234567")}


def test_a_refused_click_to_call_posts_nothing(hub):
    hub_url, received = hub
    with FakeMangoApi(hub_url=hub_url) as mango, requests.Session() as api:
        mango.refuse(3102)
        with pytest.raises(PbxError, match="3102 wrong parameter"):
            MangoConnector(mango.settings()).place_call(api, CallRequest("c", "101", "+7916"))
        assert mango.wait_for_posts(1, timeout=0.2) == []


def test_post_all_sends_a_scenario_to_a_hub(hub):
    hub_url, received = hub
    assert simulator.post_all(simulator.missed_incoming(), hub_url) == [200] * 5
    assert [e["kind"] for e in received] == [RINGING, RINGING, LEG_ENDED, LEG_ENDED, FINISHED]
