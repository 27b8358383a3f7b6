"""The simulator's scenarios are accepted by the connector and produce the signals of a real
call, in order; the fake API server shuts down cleanly."""
import datetime as dt

import pytest
import requests
from unit.plugins.zadarma.payloads import SECRET

from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.zadarma import simulator
from crmhub.plugins.zadarma.fake_api import FakeZadarmaApi


def signals(host, notifications):
    loaded = []
    for sent in notifications:
        result = host.handle(sent.request())[1]
        assert result.status == 200
        loaded += [CallSignalSchema().load(event) for _, event in result.events]
    return loaded


def kinds(loaded):
    return [(s["kind"], s["extension"]) for s in loaded]


def test_answered_incoming(host):
    loaded = signals(host, simulator.answered_incoming(secret=SECRET))
    assert kinds(loaded) == [("ringing", None), ("ringing", "101"), ("answered", "101"),
                             ("finished", "101"), ("recording", None)]
    assert len({s["call_key"] for s in loaded}) == 1
    assert loaded[3]["outcome"] == "answered" and loaded[3]["details"]["is_recorded"] == "1"
    assert loaded[4]["recording_ref"] == loaded[3]["details"]["call_id_with_rec"]


@pytest.mark.parametrize("disposition", ["no answer", "cancel"])
def test_missed_incoming(host, disposition):
    loaded = signals(host, simulator.missed_incoming(secret=SECRET, disposition=disposition))
    assert kinds(loaded) == [("ringing", None), ("ringing", "101"), ("ringing", "102"),
                             ("finished", "102")]
    assert (loaded[-1]["outcome"], loaded[-1]["duration_s"]) == ("missed", 0)


def test_outgoing(host):
    loaded = signals(host, simulator.outgoing(secret=SECRET, client="79031112233", extension="105"))
    assert kinds(loaded) == [("ringing", "105"), ("finished", "105")]
    assert {s["direction"] for s in loaded} == {"outbound"}
    assert loaded[0]["client_number"] == "79031112233" and loaded[1]["outcome"] == "answered"


def test_transfer_keeps_one_call_key(host):
    loaded = signals(host, simulator.transfer(secret=SECRET, extensions=("101", "102")))
    assert kinds(loaded) == [("ringing", None), ("ringing", "101"), ("answered", "101"),
                             ("ringing", "102"), ("answered", "102"), ("finished", "102"),
                             ("recording", None)]
    assert len({s["call_key"] for s in loaded}) == 1
    assert len({s["idempotency_key"] for s in loaded}) == len(loaded)


def test_recording(host):
    [signal] = signals(host, simulator.recording(secret=SECRET, pbx_call_id="in_x",
                                                 call_id_with_rec="17.1"))
    assert (signal["kind"], signal["call_key"], signal["recording_ref"]) == ("recording", "in_x", "17.1")


def test_parameters_reach_the_notifications(host):
    start = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
    sent = simulator.answered_incoming(secret=SECRET, client="100", line="74990001122",
                                       extensions=("201", "202"), pbx_call_id="in_fixed",
                                       start=start, recorded=False)
    loaded = signals(host, sent)
    assert [s["kind"] for s in loaded] == ["ringing", "ringing", "ringing", "answered", "finished"]
    assert {s["call_key"] for s in loaded} == {"in_fixed"}
    assert {s["at"] for s in loaded} == {start}
    assert (loaded[0]["client_number"], loaded[0]["line"]) == ("100", "74990001122")
    assert loaded[3]["extension"] == "202"


def test_every_call_gets_its_own_pbx_call_id_and_scenarios_are_found_by_name(host):
    first, second = (simulator.build("answered", secret=SECRET) for _ in range(2))
    assert signals(host, first[:1])[0]["call_key"] != signals(host, second[:1])[0]["call_key"]
    assert set(simulator.SCENARIOS) == {"answered", "missed", "outgoing", "transfer", "recording"}
    with pytest.raises(ValueError, match="unknown Zadarma scenario"):
        simulator.build("conference", secret=SECRET)


def test_notifications_are_plain_tuples_signed_with_the_given_secret(host):
    method, path, body, headers = simulator.outgoing(secret="other")[0]
    assert (method, path) == ("POST", "/hooks/zadarma")
    assert body.startswith(b"event=NOTIFY_OUT_START&")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded" and headers["Signature"]
    method, path, body, headers = simulator.echo_check("abc")
    assert (method, path, body) == ("GET", "/hooks/zadarma?zd_echo=abc", b"")


def test_the_fake_api_stops_and_frees_its_port():
    fake = FakeZadarmaApi().start()
    url = fake.url
    assert requests.get(f"{url}/files/x.mp3", timeout=5).status_code == 200
    assert requests.get(f"{url}/v1/info/balance/", timeout=5).status_code == 401
    fake.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/files/x.mp3", timeout=2)


def test_post_all_sends_each_request_in_order_to_the_hub(host):
    class HostSession:
        """Hands each HTTP request to the ConnectorHost, as the gateway would."""

        def __init__(self):
            self.sent = []

        def request(self, method, url, data, headers, timeout):
            path, _, query = url.removeprefix("http://hub.test").partition("?")
            self.sent.append((method, url))
            notification = simulator.Notification(method, f"{path}?{query}" if query else path,
                                                  data or b"", headers)
            result = host.handle(notification.request())[1]
            return type("Response", (), {"status_code": result.status})()

    session = HostSession()
    calls = [simulator.echo_check("e1"), *simulator.outgoing(secret=SECRET)]
    assert simulator.post_all(calls, "http://hub.test/", session=session) == [200, 200, 200]
    assert session.sent == [("GET", "http://hub.test/hooks/zadarma?zd_echo=e1"),
                            ("POST", "http://hub.test/hooks/zadarma"),
                            ("POST", "http://hub.test/hooks/zadarma")]
