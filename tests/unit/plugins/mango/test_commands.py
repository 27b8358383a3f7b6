"""Click-to-call (``place_call``) and recordings (``recording_location``) against the fake Mango
API on 127.0.0.1."""
import json

import pytest
import requests

from crmhub.plugins.api import CallRequest, PbxError
from crmhub.plugins.mango import MangoConnector
from crmhub.plugins.mango.fake_api import FAKE_MP3, FakeMangoApi
from crmhub.plugins.mango.signing import sign

CALL = CallRequest(command_id="cmd-42", extension="101", number="+7 (916) 123-45-67",
                   line="+74951234567")


@pytest.fixture
def connector(fake_mango):
    return MangoConnector(fake_mango.settings())


@pytest.fixture
def api():
    with requests.Session() as session:
        yield session


def test_defaults_and_settings():
    connector = MangoConnector({"api_url": "https://mango.example/vpbx", "timeout": "2.5"})
    assert (connector.api_url, connector.timeout) == ("https://mango.example/vpbx/", 2.5)
    assert MangoConnector().api_url == "https://app.mango-office.ru/vpbx/"
    assert MangoConnector().allowed_recording_hosts() == (
        "files.mango-office.ru", "app.mango-office.ru")
    assert MangoConnector({"recording_hosts": ["x.example"]}).allowed_recording_hosts() == (
        "x.example",)
    assert MangoConnector.supports_calls and MangoConnector.supports_recordings
    assert not MangoConnector.listens()


def test_a_call_is_a_signed_callback_command_with_digits_only(connector, api, fake_mango):
    answer = connector.place_call(api, CALL)
    assert answer == {"result": 1000}
    [command] = fake_mango.commands  # the fake checked the signature
    assert command.path == "commands/callback"
    assert command.payload == {"command_id": "cmd-42", "from": {"extension": "101"},
                               "to_number": "79161234567", "line_number": "74951234567"}
    assert " " not in command.json_text  # compact JSON, as Mango's examples


def test_a_call_without_a_line_sends_none(connector, api, fake_mango):
    connector.place_call(api, CallRequest("cmd-1", "101", "+79161234567"))
    assert "line_number" not in fake_mango.commands[0].payload


@pytest.mark.parametrize("code, message", [
    (3102, "Mango refused the call: 3102 wrong parameter"),
    (2001, "Mango refused the call: 2001 billing restriction"),
    (3310, "Mango refused the call: 3310 no such object"),
    (4001, "Mango refused the call: 4001 command cannot be carried out"),
    (5001, "Mango refused the call: 5001 Mango server error")])
def test_a_420_refusal_is_a_readable_pbx_error(connector, api, fake_mango, code, message):
    fake_mango.refuse(code)
    with pytest.raises(PbxError) as refused:
        connector.place_call(api, CALL)
    assert refused.value.message == message and not refused.value.unavailable
    assert refused.value.details == {"code": code}


def test_a_result_outside_the_1000_class_is_a_refusal(connector, api, fake_mango):
    fake_mango.result = 3300
    with pytest.raises(PbxError, match="Mango refused the call: 3300 no such object"):
        connector.place_call(api, CALL)
    fake_mango.result = 1090  # undocumented, but of the success class
    assert connector.place_call(api, CALL) == {"result": 1090}


def test_a_wrong_salt_is_refused_by_mango(fake_mango, api):
    connector = MangoConnector(fake_mango.settings(api_salt="not-the-salt"))
    with pytest.raises(PbxError, match="3102 wrong parameter"):
        connector.place_call(api, CALL)
    assert fake_mango.commands == []


def test_mango_down_is_unavailable(connector, api, fake_mango):
    fake_mango.down = True
    with pytest.raises(PbxError) as refused:
        connector.place_call(api, CALL)
    assert refused.value.unavailable
    assert refused.value.message.startswith("Mango Office is not reachable: ")


def test_nothing_listening_is_unavailable(api):
    with FakeMangoApi() as fake:
        settings = fake.settings()
    with pytest.raises(PbxError, match="not reachable: cannot connect to 127.0.0.1") as refused:
        MangoConnector(settings).place_call(api, CALL)
    assert refused.value.unavailable


def test_a_slow_mango_times_out_as_unavailable(fake_mango, api):
    fake_mango.delay = 0.5
    connector = MangoConnector(fake_mango.settings(timeout=0.1))
    with pytest.raises(PbxError, match=r"no answer within 0.1 s") as refused:
        connector.place_call(api, CALL)
    assert refused.value.unavailable


class RecordingSession:
    """Stands in for requests.Session: keeps the arguments and answers ``response``."""

    def __init__(self, status=200, body=b'{"result":1000}'):
        self.calls, self.response = [], requests.Response()
        self.response.status_code, self.response._content = status, body

    def post(self, url, **kwargs):
        self.calls.append((url, kwargs))
        return self.response


def test_the_request_uses_the_configured_timeout_and_no_redirects():
    session = RecordingSession()
    MangoConnector({"api_key": "k", "api_salt": "s", "timeout": 3}).place_call(session, CALL)
    [(url, kwargs)] = session.calls
    assert url == "https://app.mango-office.ru/vpbx/commands/callback"
    assert (kwargs["timeout"], kwargs["allow_redirects"]) == (3.0, False)
    form = kwargs["data"]
    assert form["vpbx_api_key"] == "k" and form["sign"] == sign("k", form["json"], "s")


@pytest.mark.parametrize("status, body, message, unavailable", [
    (503, b"busy", "Mango Office is not available: HTTP 503", True),
    (401, b"", "Mango refused the call: HTTP 401", False),
    (200, b"<html>", "Mango refused the call: its answer is not a JSON object", False),
    (420, b"not json", "Mango refused the call: no reason given", False)])
def test_other_answers_are_readable_pbx_errors(status, body, message, unavailable):
    connector = MangoConnector({"api_key": "k", "api_salt": "s"})
    with pytest.raises(PbxError) as refused:
        connector.place_call(RecordingSession(status, body), CALL)
    assert (refused.value.message, refused.value.unavailable) == (message, unavailable)


def test_a_number_without_digits_or_missing_credentials_is_refused_before_sending():
    session = RecordingSession()
    with pytest.raises(PbxError, match="not a phone number"):
        MangoConnector({"api_key": "k", "api_salt": "s"}).place_call(
            session, CallRequest("c", "101", "client"))
    with pytest.raises(PbxError, match="api_key and api_salt"):
        MangoConnector({}).place_call(session, CALL)
    assert session.calls == []


def test_the_recording_location_is_a_signed_download_query():
    connector = MangoConnector({"api_key": "k", "api_salt": "s"})
    location = connector.recording_location(RecordingSession(), "r100:777:500:256")
    assert (location.url, location.method, location.headers) == (
        "https://app.mango-office.ru/vpbx/queries/recording/post", "POST", {})
    assert json.loads(location.data["json"]) == {"recording_id": "r100:777:500:256",
                                                 "action": "download"}
    assert location.data["sign"] == sign("k", location.data["json"], "s")
    assert location.data["vpbx_api_key"] == "k"


def test_the_recording_location_leads_to_the_file(connector, api, fake_mango):
    location = connector.recording_location(api, "r100:777:500:256")
    first = api.request(location.method, location.url, data=location.data, allow_redirects=False)
    assert first.status_code == 302
    assert first.headers["Location"] == f"{fake_mango.origin}/files/r100%3A777%3A500%3A256.mp3"
    audio = api.request(location.method, location.url, data=location.data)
    assert audio.status_code == 200 and audio.headers["Content-Type"] == "audio/mpeg"
    assert audio.content == FAKE_MP3 and 2048 < len(audio.content) < 8192
    assert fake_mango.downloads == ["r100:777:500:256"]


def test_no_recording_without_credentials():
    with pytest.raises(PbxError, match="api_key and api_salt"):
        MangoConnector({}).recording_location(RecordingSession(), "r1")
