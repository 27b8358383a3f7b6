"""Zadarma notifications through a real host: the URL check, authentication, and the mapping of
each event to a call_signal (PROTOCOLS.md §1.2)."""
import datetime as dt

import pytest
from unit.plugins.zadarma.payloads import CALL, SECRET

from crmhub.plugins.api import BadPayload, Forbidden, Unauthorized, UnsupportedMediaType, make_request
from crmhub.plugins.conformance import host_for
from crmhub.plugins.host import MethodNotAllowedError
from crmhub.plugins.zadarma import ZadarmaConnector
from crmhub.plugins.zadarma.events import DISPOSITION_OUTCOMES, outcome_of
from crmhub.plugins.zadarma.simulator import echo_check, notification

UTC = dt.timezone.utc
START_UTC = dt.datetime(2024, 5, 14, 7, 30, 5, tzinfo=UTC)  # 10:30:05 in Moscow (UTC+3)
END = {**CALL, "internal": "101", "duration": "37", "disposition": "answered",
       "status_code": "16", "is_recorded": "1", "call_id_with_rec": "1715671805.4411"}
OUT = {"call_start": "2024-05-14 10:30:05", "pbx_call_id": "out_abc", "internal": "102",
       "destination": "79031112233"}


# -- the URL check ---------------------------------------------------------------------------

def test_the_url_check_echoes_zd_echo_bare(host):
    result = host.handle(echo_check("Xy-12.z").request())[1]
    assert (result.status, result.body, result.content_type, result.events) == (
        200, "Xy-12.z", "text/plain", [])


def test_a_get_without_zd_echo_is_400(host):
    with pytest.raises(BadPayload, match="zd_echo"):
        host.handle(make_request("GET", "/hooks/zadarma"))


def test_other_methods_are_405(host):
    with pytest.raises(MethodNotAllowedError):
        host.handle(make_request("PUT", "/hooks/zadarma"))


# -- authentication ----------------------------------------------------------------------------

@pytest.mark.parametrize("secret", [None, "another-secret", ""])
def test_a_missing_or_wrong_signature_is_401_and_emits_nothing(send, secret):
    with pytest.raises(Unauthorized):
        send("NOTIFY_START", CALL, secret=secret)


def test_a_signature_over_other_field_values_is_401(host):
    request = notification("NOTIFY_START", CALL, secret=SECRET).request()
    request.body = request.body.replace(b"79161234567", b"79169999999")
    with pytest.raises(Unauthorized, match="wrong Signature for NOTIFY_START"):
        host.handle(request)


def test_without_a_configured_secret_every_notification_is_401(send):
    bare = host_for(ZadarmaConnector, {})
    with pytest.raises(Unauthorized, match="api_secret is not configured"):
        send("NOTIFY_START", CALL, to=bare)
    assert bare.handle(echo_check("ok").request())[1].body == "ok"


def test_unknown_event_types_are_accepted_without_events_but_only_when_signed(send):
    result = send("NOTIFY_SMS", {"caller_id": "79161234567", "text": "hi"})
    assert (result.status, result.events, result.body) == (
        200, [], {"ok": True, "ignored": "NOTIFY_SMS"})
    with pytest.raises(Unauthorized):
        send("NOTIFY_SMS", {"caller_id": "79161234567"}, secret=None)


def test_allowed_ips_refuse_other_addresses_with_403(send):
    guarded = host_for(ZadarmaConnector, {"api_secret": SECRET,
                                          "allowed_ips": "185.45.152.42, 10.1.0.0/16"})
    assert send("NOTIFY_START", CALL, to=guarded).events
    assert send("NOTIFY_START", CALL, to=guarded, remote_addr="10.1.2.3").events
    for address in ("8.8.8.8", None, "not-an-ip"):
        with pytest.raises(Forbidden, match="allowed_ips"):
            send("NOTIFY_START", CALL, to=guarded, remote_addr=address)
    with pytest.raises(Forbidden):
        guarded.handle(echo_check("x").request("8.8.8.8"))


def test_bad_settings_stop_the_start_up_with_a_message():
    with pytest.raises(ValueError, match="timezone"):
        ZadarmaConnector({"timezone": "Mars/Olympus"})
    with pytest.raises(ValueError, match="allowed_ips"):
        ZadarmaConnector({"allowed_ips": ["185.45.152.300"]})


# -- payload errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("event, fields, message", [
    ("NOTIFY_END", {k: v for k, v in END.items() if k != "disposition"},
     "NOTIFY_END without disposition"),
    ("NOTIFY_OUT_END", {**OUT, "duration": "3"}, "NOTIFY_OUT_END without disposition"),
    ("NOTIFY_INTERNAL", CALL, "NOTIFY_INTERNAL without internal"),
    ("NOTIFY_RECORD", {"pbx_call_id": "in_abc"}, "NOTIFY_RECORD without call_id_with_rec"),
    ("NOTIFY_START", {"caller_id": "7916", "called_did": "7495"},
     "NOTIFY_START without pbx_call_id, call_start"),
    ("NOTIFY_START", {**CALL, "call_start": "14.05.2024"}, "call_start: not a date"),
    ("NOTIFY_END", {**END, "status_code": "x"}, "status_code: not a whole number"),
    ("NOTIFY_END", {**END, "duration": "-4"}, "duration: negative"),
    ("", CALL, "no event field"),
])
def test_incomplete_notifications_are_400_with_a_readable_message(send, event, fields, message):
    with pytest.raises(BadPayload, match=message):
        send(event, fields)


def test_a_body_that_is_not_a_form_is_415(host):
    request = make_request(path="/hooks/zadarma", body=b'{"event":"NOTIFY_START"}',
                           headers={"Content-Type": "application/json", "Signature": "x"})
    with pytest.raises(UnsupportedMediaType):
        host.handle(request)


def test_a_form_without_content_type_is_still_read(host):
    request = notification("NOTIFY_START", CALL, secret=SECRET).request()
    del request.headers["Content-Type"]
    assert host.handle(request)[1].events


# -- mapping -----------------------------------------------------------------------------------

def test_start_is_an_inbound_ringing_without_extension(signal_of):
    signal = signal_of("NOTIFY_START", CALL)
    assert signal["idempotency_key"] == "zadarma:NOTIFY_START:in_abc:"
    assert (signal["provider"], signal["call_key"], signal["kind"], signal["direction"]) == (
        "zadarma", "in_abc", "ringing", "inbound")
    assert (signal["client_number"], signal["line"], signal["extension"]) == (
        "79161234567", "74951234567", None)
    assert signal["at"] == START_UTC
    assert signal["sequence"] is None and signal["leg_id"] is None


def test_ivr_is_like_start_and_keeps_the_dtmf_choice(signal_of):
    signal = signal_of("NOTIFY_IVR", {**CALL, "wait_dtmf[name]": "menu",
                                      "wait_dtmf[digits]": "2"})
    assert (signal["kind"], signal["direction"], signal["extension"]) == ("ringing", "inbound", None)
    assert signal["details"] == {"wait_dtmf[name]": "menu", "wait_dtmf[digits]": "2"}


def test_internal_rings_an_extension(signal_of):
    signal = signal_of("NOTIFY_INTERNAL", {**CALL, "internal": "101"})
    assert (signal["kind"], signal["direction"], signal["extension"], signal["client_number"]) == (
        "ringing", "inbound", "101", "79161234567")
    assert signal["idempotency_key"] == "zadarma:NOTIFY_INTERNAL:in_abc:101"


def test_answer_names_the_extension_that_answered(signal_of):
    signal = signal_of("NOTIFY_ANSWER", {"caller_id": "79161234567", "destination": "101",
                                         "call_start": CALL["call_start"], "pbx_call_id": "in_abc",
                                         "internal": "101"})
    assert (signal["kind"], signal["extension"], signal["client_number"]) == (
        "answered", "101", "79161234567")
    assert signal["details"] == {"destination": "101"}
    assert signal["at"] == START_UTC


def test_end_is_final_with_outcome_cause_duration_and_recording_details(signal_of):
    signal = signal_of("NOTIFY_END", END)
    assert (signal["kind"], signal["final"], signal["direction"], signal["extension"]) == (
        "finished", True, "inbound", "101")
    assert (signal["outcome"], signal["cause"], signal["duration_s"]) == (
        "answered", "answered (Q.931 16)", 37)
    assert signal["started_at"] == signal["at"] == START_UTC
    assert signal["ended_at"] is None and signal["answered_at"] is None
    assert (signal["client_number"], signal["line"]) == ("79161234567", "74951234567")
    assert signal["details"]["is_recorded"] == "1"
    assert signal["details"]["call_id_with_rec"] == "1715671805.4411"


def test_out_start_rings_the_client_from_an_extension(signal_of):
    signal = signal_of("NOTIFY_OUT_START", OUT)
    assert (signal["kind"], signal["direction"], signal["extension"], signal["client_number"]) == (
        "ringing", "outbound", "102", "79031112233")
    assert signal["call_key"] == "out_abc"


def test_out_end_is_final_and_outbound(signal_of):
    signal = signal_of("NOTIFY_OUT_END", {**OUT, "caller_id": "74951234567", "duration": "0",
                                          "disposition": "busy", "status_code": "17",
                                          "is_recorded": "0", "call_id_with_rec": ""})
    assert (signal["kind"], signal["final"], signal["direction"], signal["outcome"]) == (
        "finished", True, "outbound", "busy")
    assert (signal["extension"], signal["client_number"], signal["cause"]) == (
        "102", "79031112233", "busy (Q.931 17)")
    assert signal["details"]["caller_id"] == "74951234567"
    assert "call_id_with_rec" not in signal["details"]


def test_record_is_a_recording_signal_keyed_by_the_recorded_leg(signal_of):
    signal = signal_of("NOTIFY_RECORD", {"call_id_with_rec": "1715671805.4411",
                                         "pbx_call_id": "in_abc"})
    assert (signal["kind"], signal["call_key"], signal["recording_ref"]) == (
        "recording", "in_abc", "1715671805.4411")
    assert signal["idempotency_key"] == "zadarma:NOTIFY_RECORD:in_abc:1715671805.4411"


def test_record_carries_no_time_so_its_at_is_the_receive_time(host, signal_of):
    received = dt.datetime(2024, 5, 14, 7, 33, 0, tzinfo=UTC)
    host.connectors["zadarma"].instance.now = lambda: received
    signal = signal_of("NOTIFY_RECORD", {"call_id_with_rec": "17.1", "pbx_call_id": "in_abc"})
    assert signal["at"] == received


def test_a_redelivered_notification_gives_an_identical_signal_apart_from_its_event_id(send):
    first, again = (send("NOTIFY_END", END).events[0][1] for _ in range(2))
    differing = {key for key in first if first[key] != again[key]}
    assert differing <= {"event_id", "occurred_at"}


def test_numbers_are_kept_as_text(signal_of):
    signal = signal_of("NOTIFY_START", {**CALL, "caller_id": "100", "called_did": "sip-user"})
    assert (signal["client_number"], signal["line"]) == ("100", "sip-user")


@pytest.mark.parametrize("disposition, outcome", [
    ("answered", "answered"), ("busy", "busy"), ("cancel", "missed"), ("no answer", "missed"),
    ("failed", "failed"), ("no money", "failed"), ("unallocated number", "failed"),
    ("no limit", "failed"), ("no day limit", "failed"), ("line limit", "failed"),
    ("no money no limit", "failed"), ("no money, no limit", "failed"), ("No Answer", "missed"),
])
def test_dispositions_map_to_outcomes(signal_of, disposition, outcome):
    signal = signal_of("NOTIFY_END", {**END, "disposition": disposition, "status_code": "1"})
    assert signal["outcome"] == outcome
    assert signal["cause"] == f"{disposition} (Q.931 1)"


def test_every_documented_disposition_is_mapped_and_unknown_ones_fall_back_on_q931():
    assert len(DISPOSITION_OUTCOMES) == 11
    assert outcome_of("something new", 17) == "busy"
    assert outcome_of("something new", None) == "failed"


def test_a_missing_status_code_leaves_the_bare_disposition_as_cause(signal_of):
    signal = signal_of("NOTIFY_END", {**END, "status_code": ""})
    assert signal["cause"] == "answered"


@pytest.mark.parametrize("timezone, expected_hour", [
    ("Europe/Moscow", 7), ("Asia/Yekaterinburg", 5), ("UTC", 10),
    ("Europe/Berlin", 8),  # summer time, UTC+2
])
def test_call_start_is_read_in_the_account_time_zone(send, timezone, expected_hour):
    zoned = host_for(ZadarmaConnector, {"api_secret": SECRET, "timezone": timezone})
    event = send("NOTIFY_START", CALL, to=zoned).events[0][1]
    assert event["at"] == f"2024-05-14T{expected_hour:02d}:30:05+00:00"


def test_the_default_time_zone_is_moscow_and_winter_time_is_handled(send):
    assert ZadarmaConnector({}).zone.key == "Europe/Moscow"
    berlin = host_for(ZadarmaConnector, {"api_secret": SECRET, "timezone": "Europe/Berlin"})
    event = send("NOTIFY_START", {**CALL, "call_start": "2024-01-10 10:00:00"}, to=berlin)
    assert event.events[0][1]["at"] == "2024-01-10T09:00:00+00:00"  # winter: UTC+1


def test_while_the_secret_rotates_notifications_signed_with_either_are_accepted(send):
    rotating = host_for(ZadarmaConnector, {"api_key": "test-key", "api_secret": "new-secret",
                                           "previous_api_secret": SECRET})
    for secret in ("new-secret", SECRET):
        assert send("NOTIFY_START", CALL, secret=secret, to=rotating).events
    with pytest.raises(Unauthorized):
        send("NOTIFY_START", CALL, secret="a-guess", to=rotating)
    # Once the rotation is over (no previous secret), the old one is refused.
    done = host_for(ZadarmaConnector, {"api_key": "test-key", "api_secret": "new-secret"})
    with pytest.raises(Unauthorized):
        send("NOTIFY_START", CALL, secret=SECRET, to=done)
