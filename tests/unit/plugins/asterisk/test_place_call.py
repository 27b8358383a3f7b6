"""Click-to-call: one short AMI session per call (Login, Originate, Logoff)."""
import socket
import threading

import pytest

from crmhub.plugins.api import CallRequest, PbxError
from crmhub.plugins.asterisk import AsteriskConnector

CALL = CallRequest(command_id="c0ffee01", extension="101", number="+79161234567")


def actions(server) -> list[str]:
    return [action["Action"] for action in server.actions]


def test_originate_rings_the_extension_then_dials_the_number(pbx):
    server = pbx([])
    connector = AsteriskConnector(server.connector_settings())
    answer = connector.place_call(None, CALL)
    assert answer == {"message": "Originate successfully queued", "action_id": "c0ffee01"}
    assert server.wait_for(lambda: actions(server) == ["Login", "Originate", "Logoff"])
    login, originate, _ = server.actions
    assert login["Events"] == "off"  # a command session needs no event stream
    assert originate.pairs == [
        ("Action", "Originate"), ("Channel", "PJSIP/101"), ("Context", "from-internal"),
        ("Exten", "79161234567"), ("Priority", "1"), ("CallerID", '"CRM" <101>'),
        ("Timeout", "30000"), ("Async", "true"), ("Variable", "CRM_COMMAND_ID=c0ffee01"),
        ("ActionID", "c0ffee01")]


def test_settings_shape_the_originate(pbx):
    server = pbx([])
    connector = AsteriskConnector(server.connector_settings(
        channel_template="SIP/{extension}", internal_context="crm-out", dial_with_plus=True))
    connector.place_call(None, CallRequest("c2", "102", "+7 916 123-45-67", line="+74951234567"))
    originate = server.actions[1]
    assert (originate["Channel"], originate["Context"], originate["Exten"]) == (
        "SIP/102", "crm-out", "+79161234567")
    assert [v for k, v in originate.pairs if k == "Variable"] == [
        "CRM_COMMAND_ID=c2", "CRM_LINE=+74951234567"]


def test_a_refusal_carries_asterisks_message_and_still_logs_off(pbx):
    server = pbx([], originate_error="Extension does not exist.")
    connector = AsteriskConnector(server.connector_settings())
    with pytest.raises(PbxError) as refused:
        connector.place_call(None, CALL)
    assert refused.value.message == "Asterisk refused the call: Extension does not exist."
    assert refused.value.unavailable is False
    assert server.wait_for(lambda: actions(server) == ["Login", "Originate", "Logoff"])


def test_a_pbx_that_is_down_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = AsteriskConnector({"host": "127.0.0.1", "port": port, "timeout": 1})
    with pytest.raises(PbxError) as down:
        connector.place_call(None, CALL)
    assert down.value.unavailable is True
    assert down.value.message.startswith("Asterisk is not reachable: ")


def test_a_refused_login_is_unavailable(pbx):
    server = pbx([], secret="right")
    connector = AsteriskConnector(server.connector_settings(secret="wrong"))
    with pytest.raises(PbxError) as refused:
        connector.place_call(None, CALL)
    assert refused.value.unavailable is True
    assert "Authentication failed" in refused.value.message
    assert actions(server) == ["Login"]


def test_a_pbx_that_never_answers_is_unavailable():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection, never says a word
        connector = AsteriskConnector({"host": "127.0.0.1", "port": silent.getsockname()[1],
                                       "timeout": 0.3})
        with pytest.raises(PbxError) as timed_out:
            connector.place_call(None, CALL)
    assert timed_out.value.unavailable is True
    assert "no answer to Login" in timed_out.value.message


@pytest.mark.parametrize("extension, number", [
    ("101&PJSIP/102", "+79161234567"), ("101\r\nAction: Command", "+79161234567"),
    ("101", "nobody")])
def test_what_cannot_be_dialed_is_refused_before_connecting(pbx, extension, number):
    server = pbx([])
    connector = AsteriskConnector(server.connector_settings())
    with pytest.raises(PbxError) as refused:
        connector.place_call(None, CallRequest("c3", extension, number))
    assert refused.value.unavailable is False
    assert server.connections == 0


def test_without_a_host_nothing_is_dialled_or_listened_to():
    connector = AsteriskConnector({})
    emitted = []
    connector.listen(lambda *event: emitted.append(event), threading.Event())  # returns at once
    assert emitted == [] and connector.connected is False
    with pytest.raises(PbxError) as info:
        connector.place_call(None, CallRequest("c1", "101", "+79161234567"))
    assert info.value.unavailable and "host" in info.value.message
