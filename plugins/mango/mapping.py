"""Mango payloads → ``call_signal`` events, one or none per webhook (PROTOCOLS.md §1.1 and §7).

Every id, number and time is read as text first: Mango sends ``"seq": "1"`` and ``"seq": 1``,
numbers as digits or SIP URIs (``sip:user@x.mangosip.ru``), and keeps them that way.
"""
from __future__ import annotations

import datetime as dt

from crmhub.plugins.api import BadPayload
from crmhub.plugins.calls import as_int, call_signal, from_epoch, text
from crmhub.plugins.mango import codes

PROVIDER = "mango"
MAX_ID = 200  # the contract's limit for call keys, leg ids, numbers and lines
MAX_EXTENSION = 100
MAX_NUMBER = 10**15  # seq, codes: far beyond any real one, short enough for an event key
DIRECTIONS = {0: "internal", 1: "inbound", 2: "outbound"}  # summary.call_direction
SIGNAL_OF_STATE = {"Appeared": "ringing", "Connected": "answered", "Disconnected": "leg_ended"}
# Where a leg is held by the PBX itself: its "Connected" is the IVR or the queue picking up,
# not a person, and must not mark the call answered.
PBX_LOCATIONS = ("ivr", "queue")
COMMAND_KEY = "command:"  # call key of a click-to-call Mango refused: it never got an entry_id
KEPT_DETAILS = ("location", "acd_group", "taken_from_call_id", "callback_initiator")

Signal = tuple[str, dict]


def optional_id(payload: dict, field: str, limit: int = MAX_ID) -> str | None:
    if isinstance(payload.get(field), (dict, list, bool)):
        raise BadPayload(f"{field} is not an id")
    value = text(payload.get(field))
    if value is not None and len(value) > limit:
        raise BadPayload(f"{field} is longer than {limit} characters")
    return value


def required_id(payload: dict, field: str, limit: int = MAX_ID) -> str:
    value = optional_id(payload, field, limit)
    if value is None:
        raise BadPayload(f"{field} is missing")
    return value


def bounded(value, field: str, limit: int = MAX_ID) -> str | None:
    """A number or name as text, refused when longer than the contract keeps."""
    value = text(value)
    if value is not None and len(value) > limit:
        raise BadPayload(f"{field} is longer than {limit} characters")
    return value


def whole(payload: dict, field: str) -> int | None:
    value = as_int(payload.get(field), field)
    if value is not None and abs(value) >= MAX_NUMBER:
        raise BadPayload(f"{field}: {value} is out of range")
    return value


def required_time(payload: dict, field: str) -> dt.datetime:
    value = from_epoch(payload.get(field), field)
    if value is None:
        raise BadPayload(f"{field} is missing")
    return value


def party(payload: dict, field: str) -> dict:
    value = payload.get(field)
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise BadPayload(f"{field} is not an object")
    return value


def leg_direction(caller: dict, callee: dict, command_id: str | None) -> str | None:
    """The call's direction as one leg shows it; None when the leg cannot tell.

    A transfer's consultation leg (extension to extension, ``taken_from_call_id``) belongs to a
    call that came from elsewhere; the first leg of a click-to-call rings the employee and looks
    like a call coming in. The summary's ``call_direction`` settles both.
    """
    caller_ext, callee_ext = text(caller.get("extension")), text(callee.get("extension"))
    if caller_ext and callee_ext:
        return None if caller.get("taken_from_call_id") else "internal"
    if caller_ext:
        return "outbound"
    return None if command_id and callee_ext else "inbound"


def external_number(caller: dict, callee: dict) -> str | None:
    """The number of the party that is not an employee, as Mango sent it."""
    if not text(caller.get("extension")):
        return bounded(caller.get("number"), "from.number")
    if not text(callee.get("extension")):
        return bounded(callee.get("number"), "to.number")
    return None


def line_of(payload: dict, callee: dict) -> str | None:
    return bounded(callee.get("line_number") or payload.get("line_number"), "line_number")


def extension_of(side: dict, field: str) -> str | None:
    return bounded(side.get("extension"), field, MAX_EXTENSION)


def reason_code(payload: dict) -> str | None:
    return bounded(payload.get("disconnect_reason"), "disconnect_reason", 20)


def details_of(payload: dict, caller: dict, callee: dict) -> dict:
    found = {**payload, "taken_from_call_id": caller.get("taken_from_call_id"),
             "acd_group": callee.get("acd_group")}
    return {key: found[key] for key in KEPT_DETAILS if text(found.get(key))}


def call_event(payload: dict) -> Signal | None:
    """events/call: one leg changed state."""
    entry_id, call_id = required_id(payload, "entry_id"), required_id(payload, "call_id")
    state = text(payload.get("call_state"))
    if state is None:
        raise BadPayload("call_state is missing")
    at = required_time(payload, "timestamp")
    sequence = whole(payload, "seq")
    kind = SIGNAL_OF_STATE.get(state)  # OnHold and states Mango may add: nothing to report
    location = text(payload.get("location")) or ""
    if kind is None or (kind == "answered" and location.lower().startswith(PBX_LOCATIONS)):
        return None
    caller, callee = party(payload, "from"), party(payload, "to")
    command_id = optional_id(payload, "command_id")
    key_order = sequence if sequence is not None else int(at.timestamp())
    return call_signal(
        provider=PROVIDER, event_key=f"call:{call_id}:{key_order}:{state}", call_key=entry_id,
        kind=kind, at=at, leg_id=call_id, sequence=sequence,
        direction=leg_direction(caller, callee, command_id),
        client_number=external_number(caller, callee),
        line=line_of(payload, callee),
        # The employee whose phone rings, answers or hangs up: the callee, or the employee
        # who dials out.
        extension=extension_of(callee, "to.extension") or extension_of(caller, "from.extension"),
        cause=codes.describe_reason(reason_code(payload)) if kind == "leg_ended" else None,
        command_id=command_id, details=details_of(payload, caller, callee))


def summary_event(payload: dict) -> Signal:
    """events/summary: the call as a whole ended; authoritative for times and outcome."""
    entry_id = required_id(payload, "entry_id")
    caller, callee = party(payload, "from"), party(payload, "to")
    direction = DIRECTIONS.get(whole(payload, "call_direction"))
    direction = direction or leg_direction(caller, callee, None)
    started_at = from_epoch(payload.get("create_time"), "create_time")
    answered_at = from_epoch(payload.get("talk_time"), "talk_time")
    ended_at = from_epoch(payload.get("end_time"), "end_time")
    at = ended_at or started_at
    if at is None:
        raise BadPayload("end_time is missing")
    talked = whole(payload, "entry_result") == 1 and answered_at is not None
    reason = reason_code(payload)
    duration = int((ended_at - answered_at).total_seconds()) if talked and ended_at else None
    employee = caller if direction == "outbound" else callee
    return call_signal(
        provider=PROVIDER, event_key=f"summary:{entry_id}", call_key=entry_id, kind="finished",
        at=at, final=True, direction=direction,
        client_number=None if direction == "internal" else external_number(caller, callee),
        line=line_of(payload, callee),
        extension=extension_of(employee, "to.extension" if employee is callee else "from.extension"),
        started_at=started_at, answered_at=answered_at, ended_at=ended_at,
        duration_s=max(duration, 0) if duration is not None else None,
        outcome="answered" if talked else codes.outcome_of_reason(reason),
        cause=codes.describe_reason(reason), command_id=optional_id(payload, "command_id"),
        details={key: payload[key] for key in ("entry_result", "call_direction")
                 if text(payload.get(key))})


def recording_event(payload: dict) -> Signal | None:
    """events/recording: only a completed, saved recording can be fetched.

    ``completion_code`` came with API 1.10; a Completed event without it (older accounts) is
    taken as saved, while 22xx (account limit) and 4002 (too short) mean nothing was kept.
    The signal has no ``sequence``: the recording's ``seq`` counts its own events (1 Started,
    2 Completed), not the leg's, and would look stale beside the leg's Disconnected.
    """
    state = text(payload.get("recording_state"))
    if state is None:
        raise BadPayload("recording_state is missing")
    if state != "Completed":
        return None
    completion = whole(payload, "completion_code")
    if completion is not None and completion != 1000:
        return None
    recording_id, entry_id = required_id(payload, "recording_id"), required_id(payload, "entry_id")
    return call_signal(
        provider=PROVIDER, event_key=f"recording:{recording_id}", call_key=entry_id,
        kind="recording", at=required_time(payload, "timestamp"), recording_ref=recording_id,
        leg_id=optional_id(payload, "call_id"), extension=extension_of(payload, "extension"),
        command_id=optional_id(payload, "command_id"))


def callback_result(payload: dict, now: dt.datetime | None = None) -> Signal | None:
    """result/callback: Mango's verdict on our click-to-call. Success is followed by the
    call's own events; a refusal is the only news the CRM will get, so it closes the pending
    call with the reason."""
    command_id = required_id(payload, "command_id", MAX_ID - len(COMMAND_KEY))
    result = whole(payload, "result")
    if result is None:
        raise BadPayload("result is missing")
    if codes.is_success(result):
        return None
    return call_signal(
        provider=PROVIDER, event_key=f"callback:{command_id}:{result}",
        call_key=COMMAND_KEY + command_id, kind="finished",
        at=now or dt.datetime.now(dt.timezone.utc), direction="outbound", outcome="failed",
        cause=codes.describe_result(result), command_id=command_id)
