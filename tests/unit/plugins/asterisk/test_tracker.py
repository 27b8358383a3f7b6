"""Folding AMI events into call signals, fed straight to the tracker (no sockets)."""
import datetime as dt

from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.asterisk import scenarios
from crmhub.plugins.asterisk.ami import AmiMessage
from crmhub.plugins.asterisk.connector import DEFAULT_INBOUND_CONTEXTS
from crmhub.plugins.asterisk.tracker import CallTracker

UTC = dt.timezone.utc


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def tracker(**options) -> CallTracker:
    options.setdefault("cdr_settle_seconds", 0)
    return CallTracker(inbound_contexts=DEFAULT_INBOUND_CONTEXTS, **options)


def fold(events, into: CallTracker | None = None) -> list[dict]:
    into = into or tracker()
    signals = []
    for event in events:
        message = event if isinstance(event, AmiMessage) else AmiMessage(event.items())
        signals += into.feed(message)
    for event_type, signal in signals:
        assert event_type == "call_signal"
        CallSignalSchema().load(signal)
    return [signal for _, signal in signals]


def summary(signals):
    return [(s["kind"], s.get("extension"), s.get("outcome")) for s in signals]


def test_the_real_capture_is_one_internal_call_from_259_answered_by_254():
    """The capture is an Originate of Local/259 to extension 254: Asterisk rings 259 first
    (the caller's own phone, which places the call and is no answer), then dials 254."""
    signals = fold(scenarios.capture_events())
    assert {s["call_key"] for s in signals} == {scenarios.CAPTURE_CALL_KEY}
    assert summary(signals) == [("ringing", "254", None), ("answered", "254", None),
                                ("leg_ended", "254", None), ("finished", "254", "answered")]
    assert {s["direction"] for s in signals} == {"internal"}
    assert [s["leg_id"] for s in signals] == ["1414510609.3"] * 3 + ["1414510600.0"]
    assert signals[2]["cause"] == "16 Normal Clearing"
    assert [s["sequence"] for s in signals] == [1, 2, 3, 4]


def test_an_answered_incoming_call():
    signals = fold(scenarios.answered_incoming())
    assert summary(signals) == [("ringing", "101", None), ("answered", "101", None),
                                ("leg_ended", "101", None), ("finished", "101", "answered"),
                                ("finished", "101", "answered")]
    first = signals[0]
    assert (first["call_key"], first["leg_id"], first["direction"], first["client_number"],
            first["line"]) == ("1718000000.10", "1718000000.11", "inbound", "79161234567",
                               "74951234567")
    assert (signals[3].get("final"), signals[4]["final"]) == (None, True)


def test_the_cdr_is_final_with_its_times_read_in_the_pbx_time_zone():
    final = fold(scenarios.answered_incoming())[-1]
    assert final["final"] is True
    assert (final["started_at"], final["answered_at"], final["ended_at"]) == (
        "2024-06-10T09:00:00+00:00", "2024-06-10T09:00:07+00:00", "2024-06-10T09:01:07+00:00")
    assert final["duration_s"] == 60
    in_utc = fold(scenarios.answered_incoming(), tracker(timezone="UTC"))[-1]
    assert in_utc["started_at"] == "2024-06-10T12:00:00+00:00"


def test_a_missed_call_through_a_ring_group_gives_one_summary_of_its_records():
    clock = Clock()
    calls = tracker(cdr_settle_seconds=1.0, clock=clock)
    signals = fold(scenarios.missed_incoming(), calls)
    assert summary(signals) == [("ringing", "101", None), ("ringing", "102", None),
                                ("leg_ended", "101", None), ("leg_ended", "102", None),
                                ("finished", "102", "missed")]
    assert calls.flush() == []  # the records may still be coming
    clock.now = 1.5
    [(_, final)] = calls.flush()
    assert (final["outcome"], final["final"], final.get("answered_at"), final["duration_s"]) == (
        "missed", True, None, 0)
    assert final["details"] == {"ami_event": "Cdr", "records": 2, "dispositions": "NO ANSWER"}


def test_one_answered_record_among_several_makes_the_call_answered():
    events = scenarios.missed_incoming()
    events[-1] = {**events[-1], "Disposition": "ANSWERED", "AnswerTime": "2024-06-10 12:05:10",
                  "BillableSeconds": "15"}
    calls = tracker(cdr_settle_seconds=60)
    fold(events, calls)
    [(_, final)] = calls.flush(force=True)
    assert (final["outcome"], final["extension"], final["duration_s"]) == ("answered", "102", 15)


def test_the_pbx_answering_by_itself_is_no_answered_call():
    """An IVR or voicemail answers the caller's channel: the record is ANSWERED, with no
    destination channel."""
    cdr = {**scenarios.missed_incoming()[-1], "Disposition": "ANSWERED",
           "DestinationChannel": "", "LastApplication": "VoiceMail",
           "AnswerTime": "2024-06-10 12:05:01"}
    [final] = fold([cdr])
    assert final["outcome"] == "voicemail"
    [final] = fold([{**cdr, "LastApplication": "Playback"}])
    assert final["outcome"] == "missed"


def test_a_click_to_call_is_outbound_with_its_command_id_and_the_client_number():
    signals = fold(scenarios.outgoing(command_id="cmd-42"))
    assert summary(signals) == [("ringing", "101", None), ("answered", "101", None),
                                ("leg_ended", None, None), ("finished", "101", "answered"),
                                ("finished", "101", "answered")]
    assert {(s["direction"], s["client_number"], s["command_id"]) for s in signals} == {
        ("outbound", "79161234567", "cmd-42")}
    assert signals[0]["leg_id"] == "1718000200.31"  # the client's leg, not our own phone


def test_asterisk_11_event_names():
    signals = fold(scenarios.answered_incoming_v11())
    assert summary(signals) == [("ringing", "101", None), ("answered", "101", None),
                                ("leg_ended", "101", None), ("finished", "101", "answered")]
    assert {s["call_key"] for s in signals} == {"1400000000.5"}
    assert signals[0]["direction"] == "inbound"


def test_an_unanswered_call_takes_its_outcome_from_the_q850_cause():
    events = scenarios.missed_incoming(extensions=("101",))
    busy = [{**e, "Cause": "17", "Cause-txt": "User busy"} if e["Event"] == "Hangup" else e
            for e in events if e["Event"] != "Cdr"]
    assert fold(busy)[-1]["outcome"] == "busy"
    odd = [{**e, "Cause": "99"} if e["Event"] == "Hangup" else e
           for e in events if e["Event"] != "Cdr"]
    assert fold(odd)[-1]["outcome"] == "missed"


def test_the_same_events_give_the_same_keys_in_another_listener():
    first = fold(scenarios.answered_incoming())
    again = fold(scenarios.answered_incoming())
    assert [s["idempotency_key"] for s in first] == [s["idempotency_key"] for s in again]
    assert len({s["idempotency_key"] for s in first}) == len(first)
    assert first[0]["idempotency_key"] == "asterisk:1718000000.10:1718000000.11:DialBegin:ringing"


def test_a_cdr_of_an_unknown_call_is_keyed_by_its_uniqueid():
    cdr = scenarios.answered_incoming(linkedid="1700000000.1")[-1]
    [final] = fold([cdr])
    assert (final["call_key"], final["direction"], final["client_number"]) == (
        "1700000000.1", "inbound", "79161234567")


def test_plumbing_that_never_became_a_call_ends_silently_and_memory_is_freed():
    calls = tracker()
    lonely = {"Event": "Newchannel", "Channel": "Local/s@macro-x-00000001;2", "Context": "x",
              "Exten": "s", "CallerIDNum": "", "Uniqueid": "9.1", "Linkedid": "9.1"}
    assert fold([lonely, {"Event": "Hangup", "Uniqueid": "9.1", "Cause": "16"}], calls) == []
    fold(scenarios.answered_incoming() + scenarios.outgoing(), calls)
    assert calls.live_calls == 0


def test_live_calls_are_bounded():
    calls = tracker(max_calls=3)
    for n in range(10):
        fold([{"Event": "Newchannel", "Channel": f"PJSIP/trunk-{n:08x}", "Context": "from-trunk",
               "Exten": "74951234567", "CallerIDNum": "79161234567", "Uniqueid": f"5.{n}",
               "Linkedid": f"5.{n}"}], calls)
    assert calls.live_calls == 3


def test_a_malformed_event_is_skipped_and_the_stream_goes_on():
    events = scenarios.answered_incoming()
    events[-1] = {**events[-1], "StartTime": "yesterday"}
    signals = fold(events)
    assert [s["kind"] for s in signals] == ["ringing", "answered", "leg_ended", "finished"]


def test_unknown_events_are_ignored():
    assert fold([{"Event": "PeerStatus", "Peer": "PJSIP/101", "PeerStatus": "Reachable"},
                 {"Event": "FullyBooted"}, {"Response": "Success"}]) == []
