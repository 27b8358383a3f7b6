"""The Mango connector's webhooks: signatures, and each Mango notification → call_signal rule
(PROTOCOLS.md §1.1, §7), through a real ConnectorHost."""
import hashlib
import json
from urllib.parse import urlencode

import pytest
from marshmallow import ValidationError

from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.api import (
    BadPayload,
    Forbidden,
    Unauthorized,
    UnsupportedMediaType,
    WebhookError,
    make_request,
)
from crmhub.plugins.conformance import host_for
from crmhub.plugins.mango import MangoConnector
from crmhub.plugins.mango.signing import sign
from crmhub.plugins.mango.simulator import FORM, webhook

API_KEY, API_SALT = "5f4dcc3b5aa765d61d8327deb882cf99", "test-salt"
CLIENT, LINE = "79161234567", "74951234567"


def leg(state="Appeared", caller=None, callee=None, **extra):
    return {"entry_id": "E1", "call_id": "L1", "timestamp": 1700000000, "seq": 1,
            "call_state": state, "location": "abonent", "from": caller or {"number": CLIENT},
            "to": callee or {"extension": "101", "line_number": LINE}, **extra}


def summary(**extra):
    return {"entry_id": "E1", "call_direction": 1, "from": {"number": CLIENT},
            "to": {"extension": "101", "number": "sip:101@x.mangosip.ru"}, "line_number": LINE,
            "create_time": 1700000000, "forward_time": 1700000002, "talk_time": 1700000010,
            "end_time": 1700000070, "entry_result": 1, "disconnect_reason": 1100, **extra}


def raw_post(host, path, fields, content_type=FORM):
    body = urlencode(fields) if content_type == FORM else fields
    return host.handle(make_request(path=f"/hooks/mango{path}", body=body,
                                    headers={"Content-Type": content_type}))[1]


# -- signatures -----------------------------------------------------------------------------

def test_a_post_signed_with_the_account_key_and_salt_is_accepted(signal):
    assert signal("/events/call", leg())["kind"] == "ringing"


@pytest.mark.parametrize("change", [
    {"sign": "0" * 64}, {"sign": ""}, {"vpbx_api_key": "another-key"}, {"vpbx_api_key": ""}])
def test_a_wrong_or_missing_key_or_sign_is_401_and_publishes_nothing(host, change):
    fields = {**webhook("/events/call", leg(), API_KEY, API_SALT).fields, **change}
    with pytest.raises(Unauthorized) as refused:
        raw_post(host, "/events/call", fields)
    assert refused.value.status == 401 and refused.value.message


def test_the_sign_covers_the_json_text_exactly_as_sent(host, send):
    pretty = json.dumps(leg(), indent=4, ensure_ascii=False).replace('"L1"', '"Лег"')
    assert send("/events/call", pretty).events  # signed as sent: any spacing, Cyrillic
    fields = webhook("/events/call", pretty, API_KEY, API_SALT).fields
    for altered in (json.dumps(json.loads(pretty)), pretty + " "):
        with pytest.raises(Unauthorized, match="sign"):
            raw_post(host, "/events/call", {**fields, "json": altered})


def test_the_sign_is_the_sha256_hex_of_key_json_salt():
    assert sign("k", '{"a":"б"}', "s") == hashlib.sha256('k{"a":"б"}s'.encode()).hexdigest()


def test_without_key_and_salt_every_notification_is_403():
    host = host_for(MangoConnector, {"api_key": API_KEY})
    with pytest.raises(Forbidden, match="api_key and api_salt"):
        host.handle(webhook("/events/call", leg(), API_KEY, API_SALT).request())


def test_a_body_that_is_not_a_form_is_415(host):
    with pytest.raises(UnsupportedMediaType):
        raw_post(host, "/events/call", json.dumps(leg()), "application/json")


@pytest.mark.parametrize("text", ["{broken", "[1, 2]", '"a string"', ""])
def test_json_that_is_not_an_object_is_400_with_a_message(send, text):
    with pytest.raises(BadPayload, match="json is not"):
        send("/events/call", text)


# -- events/call ----------------------------------------------------------------------------

def test_an_incoming_leg_rings_the_callee_extension(signal):
    event = signal("/events/call", leg(seq="7", command_id=None))
    assert {k: event[k] for k in ("provider", "call_key", "leg_id", "sequence", "kind",
                                  "direction", "client_number", "line", "extension")} == {
        "provider": "mango", "call_key": "E1", "leg_id": "L1", "sequence": 7, "kind": "ringing",
        "direction": "inbound", "client_number": CLIENT, "line": LINE, "extension": "101"}
    assert event["at"] == "2023-11-14T22:13:20+00:00"
    assert event["idempotency_key"] == "mango:call:L1:7:Appeared"


def test_an_outgoing_leg_rings_as_the_dialling_employee(signal):
    event = signal("/events/call", leg(caller={"extension": "102", "number": "sip:u@x.mangosip.ru"},
                                       callee={"number": CLIENT, "line_number": LINE}))
    assert (event["direction"], event["extension"], event["client_number"]) == (
        "outbound", "102", CLIENT)


def test_extension_to_extension_is_internal_without_a_client_number(signal):
    event = signal("/events/call", leg(caller={"extension": "101"}, callee={"extension": "102"}))
    assert (event["direction"], event["extension"], event["client_number"]) == (
        "internal", "102", None)


def test_legs_that_cannot_tell_the_call_direction_leave_it_open(signal):
    consultation = leg(caller={"extension": "101", "taken_from_call_id": "L0"},
                       callee={"extension": "102"})
    assert signal("/events/call", consultation)["direction"] is None
    # A click-to-call first rings the employee, as if the client called in.
    first_leg = leg(callee={"extension": "101"}, command_id="cmd-1")
    event = signal("/events/call", first_leg)
    assert (event["direction"], event["command_id"]) == (None, "cmd-1")


@pytest.mark.parametrize("number", ["sip:user1@xyz.mangosip.ru", "sip:клиент@хyz.mangosip.ru"])
def test_a_sip_uri_is_kept_as_the_client_number(signal, number):
    assert signal("/events/call", leg(caller={"number": number}))["client_number"] == number


@pytest.mark.parametrize("seq, expected", [("1", 1), (2, 2), ("", None), (None, None)])
def test_seq_is_read_as_a_number_from_text_or_number(signal, seq, expected):
    assert signal("/events/call", leg(seq=seq))["sequence"] == expected


def test_seq_that_is_not_a_number_is_400(send):
    with pytest.raises(BadPayload, match="seq"):
        send("/events/call", leg(seq="first"))


def test_connected_is_answered_by_the_callee(signal):
    event = signal("/events/call", leg("Connected", seq=2))
    assert (event["kind"], event["extension"]) == ("answered", "101")


def test_the_ivr_or_a_queue_picking_up_is_not_an_answer(signal):
    at_ivr = leg("Connected", callee={"number": LINE, "line_number": LINE}, location="ivr")
    assert signal("/events/call", at_ivr) is None
    assert signal("/events/call", leg("Connected", location="queue")) is None
    assert signal("/events/call", leg("Appeared", location="ivr"))["kind"] == "ringing"


@pytest.mark.parametrize("reason, cause", [
    ("1121", "1121 busy"), (1110, "1110 by caller"), ("1124", "1124 by callee"),
    ("1164", "1164 all operators busy"), ("3201", "3201 wrong number"), ("9999", "9999"),
    (None, None)])
def test_disconnected_ends_the_leg_with_its_reason_in_words(signal, reason, cause):
    event = signal("/events/call", leg("Disconnected", seq=3, disconnect_reason=reason))
    assert (event["kind"], event["cause"], event["extension"]) == ("leg_ended", cause, "101")


@pytest.mark.parametrize("state", ["OnHold", "Transferring"])
def test_on_hold_and_unknown_states_publish_nothing(signal, state):
    assert signal("/events/call", leg(state)) is None


def test_the_line_is_the_callee_line_number_or_the_top_level_one(signal):
    assert signal("/events/call", leg(callee={"extension": "101"}, line_number="7495000"))[
        "line"] == "7495000"


def test_a_redelivered_notification_keeps_its_key_and_another_state_gets_another(signal):
    first, again = signal("/events/call", leg()), signal("/events/call", leg())
    assert first["idempotency_key"] == again["idempotency_key"]
    assert first["event_id"] != again["event_id"]
    later = signal("/events/call", leg("Connected", seq=2))
    assert later["idempotency_key"] != first["idempotency_key"]


def test_without_seq_the_timestamp_orders_the_key(signal):
    assert signal("/events/call", leg(seq=None))["idempotency_key"] == (
        "mango:call:L1:1700000000:Appeared")


@pytest.mark.parametrize("missing", ["entry_id", "call_id", "call_state", "timestamp"])
def test_a_call_event_without_its_ids_state_or_time_is_400(send, missing):
    with pytest.raises(BadPayload, match=missing):
        send("/events/call", {k: v for k, v in leg().items() if k != missing})


def test_vendor_details_are_kept_for_reference(signal):
    event = signal("/events/call", leg(caller={"number": CLIENT, "taken_from_call_id": "L0"},
                                       callee={"extension": "101", "acd_group": "22"},
                                       callback_initiator="API"))
    assert event["details"] == {"location": "abonent", "acd_group": "22",
                                "taken_from_call_id": "L0", "callback_initiator": "API"}


# -- events/summary -------------------------------------------------------------------------

def test_a_summary_finishes_the_call_with_its_times(signal):
    event = signal("/events/summary", summary())
    assert {k: event[k] for k in ("kind", "final", "call_key", "direction", "client_number",
                                  "line", "extension", "outcome", "cause", "duration_s")} == {
        "kind": "finished", "final": True, "call_key": "E1", "direction": "inbound",
        "client_number": CLIENT, "line": LINE, "extension": "101", "outcome": "answered",
        "cause": "1100 normal", "duration_s": 60}
    assert (event["started_at"], event["answered_at"], event["ended_at"], event["at"]) == (
        "2023-11-14T22:13:20+00:00", "2023-11-14T22:13:30+00:00", "2023-11-14T22:14:30+00:00",
        "2023-11-14T22:14:30+00:00")
    assert event["idempotency_key"] == "mango:summary:E1"


@pytest.mark.parametrize("entry_result, talk_time, reason, outcome", [
    (1, 1700000010, 1100, "answered"),
    (1, 0, 1170, "missed"),   # the documentation's missed call with entry_result 1
    (0, 0, "1121", "busy"), (0, 0, 1122, "busy"), (0, 0, 1123, "busy"),
    (0, 0, 3200, "failed"), (0, 0, 4201, "failed"), (0, 0, 5001, "failed"), (0, 0, 2010, "failed"),
    (0, 0, 1110, "missed"), (0, 0, 1164, "missed"), (0, 0, None, "missed"),
])
def test_the_outcome_comes_from_entry_result_talk_time_and_disconnect_reason(
        signal, entry_result, talk_time, reason, outcome):
    event = signal("/events/summary", summary(entry_result=entry_result, talk_time=talk_time,
                                              disconnect_reason=reason))
    assert event["outcome"] == outcome
    if not talk_time:
        assert event["answered_at"] is None and event["duration_s"] is None


@pytest.mark.parametrize("call_direction, direction", [(0, "internal"), (1, "inbound"),
                                                       ("2", "outbound")])
def test_call_direction_decides_the_direction(signal, call_direction, direction):
    assert signal("/events/summary", summary(call_direction=call_direction))[
        "direction"] == direction


def test_an_outgoing_summary_names_the_dialling_employee_and_the_client(signal):
    event = signal("/events/summary", summary(
        call_direction=2, **{"from": {"extension": "102", "number": "sip:u@x.mangosip.ru"},
                             "to": {"number": CLIENT}}))
    assert (event["extension"], event["client_number"]) == ("102", CLIENT)


def test_an_internal_summary_has_no_client(signal):
    event = signal("/events/summary", summary(
        call_direction=0, **{"from": {"extension": "101"}, "to": {"extension": "102"}}))
    assert (event["extension"], event["client_number"]) == ("102", None)


def test_a_summary_posted_to_events_call_as_in_mangos_documentation_is_read(signal):
    assert signal("/events/call", summary())["kind"] == "finished"


@pytest.mark.parametrize("missing", ["entry_id", "end_time"])
def test_a_summary_without_its_id_or_times_is_400(send, missing):
    payload = {k: v for k, v in summary().items() if k not in (missing, "create_time")}
    with pytest.raises(BadPayload, match=missing):
        send("/events/summary", payload)


# -- events/recording -----------------------------------------------------------------------

def recording(state="Completed", **extra):
    return {"recording_id": "R1", "recording_state": state, "seq": 2, "entry_id": "E1",
            "call_id": "L1", "extension": "101", "timestamp": "1700000100", **extra}


def test_a_completed_saved_recording_can_be_fetched_by_its_id(signal):
    event = signal("/events/recording", recording(completion_code="1000", command_id="cmd-9"))
    assert {k: event[k] for k in ("kind", "recording_ref", "call_key", "leg_id", "extension",
                                  "command_id")} == {
        "kind": "recording", "recording_ref": "R1", "call_key": "E1", "leg_id": "L1",
        "extension": "101", "command_id": "cmd-9"}
    assert event["idempotency_key"] == "mango:recording:R1"


def test_a_recording_signal_is_not_ordered_against_its_leg(signal):
    """Its seq (2 for Completed) counts the recording's events: beside the leg's Disconnected
    (seq 3) the telephony service would take it for stale."""
    assert signal("/events/recording", recording(seq=2))["sequence"] is None


@pytest.mark.parametrize("payload", [
    recording("Started"), recording("Continued"), recording(completion_code=4002),
    recording(completion_code="2201")])
def test_recordings_not_completed_or_not_saved_publish_nothing(signal, payload):
    assert signal("/events/recording", payload) is None


def test_a_completed_recording_without_a_completion_code_is_taken_as_saved(signal):
    assert signal("/events/recording", recording())["kind"] == "recording"


def test_a_completed_recording_without_its_ids_is_400(send):
    with pytest.raises(BadPayload, match="recording_id"):
        send("/events/recording", {k: v for k, v in recording().items() if k != "recording_id"})


# -- result/callback ------------------------------------------------------------------------

@pytest.mark.parametrize("result", ["1000", 1000, 1090])
def test_an_accepted_callback_publishes_nothing(signal, result):
    assert signal("/result/callback", {"command_id": "cmd-1", "result": result}) is None


@pytest.mark.parametrize("result, cause", [
    ("3102", "3102 wrong parameter"), (2001, "2001 billing restriction"),
    ("3310", "3310 no such object"), ("4001", "4001 command cannot be carried out"),
    ("5003", "5003 Mango server error")])
def test_a_refused_callback_finishes_the_pending_call_as_failed(signal, result, cause):
    event = signal("/result/callback", {"command_id": "cmd-1", "result": result})
    assert {k: event[k] for k in ("kind", "call_key", "command_id", "outcome", "cause",
                                  "direction")} == {
        "kind": "finished", "call_key": "command:cmd-1", "command_id": "cmd-1",
        "outcome": "failed", "cause": cause, "direction": "outbound"}
    again = signal("/result/callback", {"command_id": "cmd-1", "result": result})
    assert again["idempotency_key"] == event["idempotency_key"]


@pytest.mark.parametrize("payload", [{"result": "1000"}, {"command_id": "c"},
                                     {"command_id": "c", "result": "ok"}])
def test_a_callback_result_without_command_id_or_a_numeric_result_is_400(send, payload):
    with pytest.raises(BadPayload):
        send("/result/callback", payload)


# -- other notifications and the connection check -------------------------------------------

@pytest.mark.parametrize("path", ["/events/dtmf", "/events/sms", "/events/something/new",
                                  "/result/call/hangup", "/result/recording/start",
                                  "/result/stats", "/events/call/"])
def test_other_notifications_are_accepted_and_publish_nothing(send, path):
    payload = leg("OnHold") if path == "/events/call/" else {"command_id": "c", "result": "1000"}
    result = send(path, payload)
    assert (result.status, result.body, result.events) == (200, {"success": True}, [])


@pytest.mark.parametrize("path", ["/events/dtmf", "/result/call/hangup"])
def test_other_notifications_must_still_be_signed(send, path):
    with pytest.raises(Unauthorized):
        send(path, {"seq": 1}, api_salt="guess")


@pytest.mark.parametrize("method, body, content_type", [
    ("POST", b"", None), ("GET", b"", None), ("POST", b"check=1", FORM),
    ("POST", b"{}", "application/json")])
def test_the_connection_check_answers_success_unsigned(host, method, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    result = host.handle(make_request(method=method, path="/hooks/mango/ping", body=body,
                                      headers=headers))[1]
    assert (result.status, result.body, result.events) == (200, {"success": True}, [])


def test_a_signed_connection_check_proves_the_key_and_salt(send):
    assert send("/ping", {}).body == {"success": True}
    with pytest.raises(Unauthorized):
        send("/ping", {}, api_salt="wrong")


# -- robustness -----------------------------------------------------------------------------

GARBAGE = [None, 0, -1, 1.5e300, True, "", "x" * 300, [], {}, {"a": [1]}, "1e400", "sip:"]
FIELDS = ["entry_id", "call_id", "timestamp", "seq", "call_state", "location", "from", "to",
          "disconnect_reason", "command_id", "call_direction", "create_time", "talk_time",
          "end_time", "entry_result", "recording_id", "recording_state", "completion_code",
          "result", "line_number"]
ROUTES = {"/events/call": leg("Disconnected", disconnect_reason=1121),
          "/events/summary": summary(),
          "/events/recording": recording(completion_code=1000),
          "/result/callback": {"command_id": "c", "result": 3102}}


@pytest.mark.parametrize("path", ROUTES)
def test_malformed_fields_are_refused_with_a_4xx_never_an_exception(send, path):
    for field in FIELDS:
        for value in GARBAGE:
            try:
                result = send(path, {**ROUTES[path], field: value})
            except WebhookError as exc:
                assert 400 <= exc.status < 500 and exc.message, (field, value)
                continue
            for _, event in result.events:
                try:
                    CallSignalSchema().load(event)
                except ValidationError:
                    pass  # the gateway refuses such an event with a 400 before publishing


def test_while_the_key_and_salt_rotate_webhooks_signed_with_either_are_accepted():
    rotating = host_for(MangoConnector, {"api_key": "new-key", "api_salt": "new-salt",
                                         "previous_api_key": API_KEY,
                                         "previous_api_salt": API_SALT})
    for key, salt in (("new-key", "new-salt"), (API_KEY, API_SALT)):
        fields = webhook("/events/call", leg(), key, salt).fields
        assert raw_post(rotating, "/events/call", fields).events
    # A mix of the two, or a salt nobody configured, is still refused.
    for key, salt in (("new-key", API_SALT), (API_KEY, "new-salt"), ("new-key", "guess")):
        with pytest.raises(Unauthorized):
            raw_post(rotating, "/events/call", webhook("/events/call", leg(), key, salt).fields)


def test_a_previous_salt_alone_pairs_with_the_current_key():
    rotating = host_for(MangoConnector, {"api_key": API_KEY, "api_salt": "new-salt",
                                         "previous_api_salt": API_SALT})
    assert raw_post(rotating, "/events/call", webhook("/events/call", leg(), API_KEY,
                                                      API_SALT).fields).events
    # Without the previous salt configured, the old signature is refused.
    with pytest.raises(Unauthorized):
        raw_post(host_for(MangoConnector, {"api_key": API_KEY, "api_salt": "new-salt"}),
                 "/events/call", webhook("/events/call", leg(), API_KEY, API_SALT).fields)
