"""Click-to-call and recordings against the fake Zadarma API, which checks the Authorization
signature as Zadarma does."""
import json
import socket
import time

import pytest
import requests

from crmhub.plugins.api import CallRequest, PbxError, RecordingLocation
from crmhub.plugins.zadarma import ZadarmaConnector

CALL_101 = CallRequest(command_id="cmd-1", extension="101", number="+7 (916) 123-45-67")


class CannedSession:
    """A requests session stand-in answering one canned response and keeping what it got."""

    def __init__(self, answer, status=200):
        self.answer, self.status, self.seen = answer, status, []

    def get(self, url, **kwargs):
        self.seen.append((url, kwargs))
        response = requests.Response()
        response.status_code = self.status
        response._content = json.dumps(self.answer).encode()
        return response


def test_it_declares_calls_recordings_and_recording_hosts():
    assert ZadarmaConnector.supports_calls and ZadarmaConnector.supports_recordings
    assert ZadarmaConnector({}).allowed_recording_hosts() == ("api.zadarma.com", "*.zadarma.com")
    assert ZadarmaConnector({"recording_hosts": ["files.example"]}).allowed_recording_hosts() == (
        "files.example",)
    assert ZadarmaConnector({}).api_url == "https://api.zadarma.com"


def test_place_call_rings_the_extension_then_the_number_with_a_valid_signature(fake_api):
    connector = ZadarmaConnector(fake_api.settings())
    before = time.monotonic()
    answer = connector.place_call(requests.Session(), CALL_101)
    assert answer["status"] == "success" and (answer["from"], answer["to"]) == ("101", "79161234567")
    [callback] = fake_api.callbacks
    assert callback.params == {"from": "101", "to": "79161234567", "format": "json"}
    assert callback.authorized and before <= callback.at <= time.monotonic()


def test_place_call_can_ask_for_a_predicted_call(fake_api):
    ZadarmaConnector(fake_api.settings(predicted=True)).place_call(requests.Session(), CALL_101)
    assert fake_api.callbacks[0].params["predicted"] == "predicted"


def test_place_call_sends_exactly_the_signed_query_with_the_configured_timeout():
    session = CannedSession({"status": "success"})
    connector = ZadarmaConnector({"api_key": "k", "api_secret": "s", "timeout": 2.5,
                                  "api_url": "https://zadarma.test/"})
    assert connector.place_call(session, CALL_101) == {"status": "success"}
    [(url, kwargs)] = session.seen
    assert url == "https://zadarma.test/v1/request/callback/?format=json&from=101&to=79161234567"
    assert kwargs["timeout"] == 2.5
    assert kwargs["headers"]["Authorization"].startswith("k:")


@pytest.mark.parametrize("http_status", [200, 400])
def test_a_refusal_is_a_pbx_error_with_zadarmas_message(fake_api, http_status):
    fake_api.refuse("Wrong number format.", http_status)
    with pytest.raises(PbxError) as refused:
        ZadarmaConnector(fake_api.settings()).place_call(requests.Session(), CALL_101)
    assert refused.value.message == "Zadarma refused the call: Wrong number format."
    assert not refused.value.unavailable


def test_a_wrong_secret_is_refused_by_the_api(fake_api):
    connector = ZadarmaConnector(fake_api.settings(api_secret="wrong"))
    with pytest.raises(PbxError, match="Zadarma refused the call: Not authorized"):
        connector.place_call(requests.Session(), CALL_101)
    assert not fake_api.callbacks and not fake_api.calls[-1].authorized


def test_a_server_that_drops_connections_is_unavailable(fake_api):
    fake_api.down = True
    with pytest.raises(PbxError) as refused:
        ZadarmaConnector(fake_api.settings()).place_call(requests.Session(), CALL_101)
    assert refused.value.unavailable
    assert refused.value.message.startswith("Zadarma is not reachable: ")


def test_a_closed_port_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = ZadarmaConnector({"api_key": "k", "api_secret": "s",
                                 "api_url": f"http://127.0.0.1:{port}"})
    with pytest.raises(PbxError) as refused:
        connector.place_call(requests.Session(), CALL_101)
    assert refused.value.unavailable


def test_a_server_error_is_unavailable():
    connector = ZadarmaConnector({"api_key": "k", "api_secret": "s"})
    with pytest.raises(PbxError) as refused:
        connector.place_call(CannedSession({}, status=502), CALL_101)
    assert refused.value.unavailable and "HTTP 502" in refused.value.message


def test_without_credentials_or_digits_nothing_is_sent():
    session = CannedSession({"status": "success"})
    with pytest.raises(PbxError, match="api_key and api_secret are not configured"):
        ZadarmaConnector({}).place_call(session, CALL_101)
    with pytest.raises(PbxError, match="not a phone number"):
        ZadarmaConnector({"api_key": "k", "api_secret": "s"}).place_call(
            session, CallRequest("c", "101", "anonymous"))
    assert session.seen == []


def test_recording_location_is_a_link_served_as_audio(fake_api):
    connector = ZadarmaConnector(fake_api.settings())
    location = connector.recording_location(requests.Session(), "1715671805.4411")
    assert location == RecordingLocation(url=f"{fake_api.url}/files/1715671805.4411.mp3")
    assert fake_api.calls[-1].params == {"call_id": "1715671805.4411", "format": "json"}
    assert fake_api.calls[-1].authorized
    audio = requests.get(location.url, timeout=5)
    assert audio.headers["Content-Type"] == "audio/mpeg" and 1000 < len(audio.content) < 10000


def test_recording_location_takes_the_first_of_several_links():
    session = CannedSession({"status": "success", "links": ["https://api.zadarma.com/a.mp3",
                                                            "https://api.zadarma.com/b.mp3"]})
    location = ZadarmaConnector({"api_key": "k", "api_secret": "s"}).recording_location(session, "r1")
    assert location.url == "https://api.zadarma.com/a.mp3"


def test_recording_errors_are_pbx_errors(fake_api):
    connector = ZadarmaConnector(fake_api.settings())
    fake_api.refuse("Record not found", 404)
    with pytest.raises(PbxError, match="Zadarma has no recording r1: Record not found"):
        connector.recording_location(requests.Session(), "r1")
    with pytest.raises(PbxError, match="gave no link"):
        ZadarmaConnector({"api_key": "k", "api_secret": "s"}).recording_location(
            CannedSession({"status": "success"}), "r1")
