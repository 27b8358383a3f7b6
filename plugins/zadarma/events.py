"""Zadarma's call notifications as ``call_signal`` events (PROTOCOLS.md §1.2 and §7).

Zadarma reports a call by its ``pbx_call_id``, constant across transfers and menus; it has no
leg ids and no sequence numbers. Its only time is ``call_start`` (``YYYY-MM-DD HH:MM:SS`` in
the account's time zone), the start of the whole call, so every signal of a call carries that
moment as ``at``: the receive time would differ between redeliveries of one webhook.
Numbers stay as Zadarma sends them (``79161234567``, ``100``, a SIP name); the telephony
service normalizes them.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from crmhub.plugins.api import BadPayload
from crmhub.plugins.calls import Q850_OUTCOMES, as_int, call_signal, from_epoch, text

PROVIDER = "zadarma"

# Zadarma's dispositions (lib/Webhook/NotifyEnd.php), written without punctuation: the SDK
# lists "no money, no limit", PROTOCOLS.md "no money no limit".
DISPOSITION_OUTCOMES = {
    "answered": "answered",
    "busy": "busy",
    "cancel": "missed",
    "no answer": "missed",
    "failed": "failed",
    "no money": "failed",
    "unallocated number": "failed",
    "no limit": "failed",
    "no day limit": "failed",
    "line limit": "failed",
    "no money no limit": "failed",
}

# Fields without which a notification cannot become a signal (others may be empty: an
# anonymous caller has no caller_id, an answer may come without its extension).
REQUIRED = {
    "NOTIFY_START": ("pbx_call_id", "call_start"),
    "NOTIFY_IVR": ("pbx_call_id", "call_start"),
    "NOTIFY_INTERNAL": ("pbx_call_id", "call_start", "internal"),
    "NOTIFY_ANSWER": ("pbx_call_id", "call_start"),
    "NOTIFY_END": ("pbx_call_id", "call_start", "disposition"),
    "NOTIFY_OUT_START": ("pbx_call_id", "call_start"),
    "NOTIFY_OUT_END": ("pbx_call_id", "call_start", "disposition"),
    "NOTIFY_RECORD": ("pbx_call_id", "call_id_with_rec"),
}
EVENTS = frozenset(REQUIRED)


def parse_call_start(value: str, zone: ZoneInfo) -> dt.datetime:
    """``call_start`` in UTC. Zadarma writes the account's local time without an offset; an
    offset, if one ever comes, wins, and a bare number is read as Unix time."""
    if value.isdigit():
        return from_epoch(value, "call_start")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise BadPayload(f"call_start: not a date and time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.timezone.utc)


def outcome_of(disposition: str, status_code: int | None) -> str:
    """The outcome of an ended call; an unknown disposition falls back on the Q.931 code."""
    key = " ".join(disposition.lower().replace(",", " ").split())
    return DISPOSITION_OUTCOMES.get(key) or Q850_OUTCOMES.get(status_code) or "failed"


def check_complete(event: str, fields: dict[str, str | None]) -> None:
    missing = [name for name in REQUIRED[event] if not text(fields.get(name))]
    if missing:
        raise BadPayload(f"{event} without {', '.join(missing)}: not a complete Zadarma "
                         "notification", {"missing": missing})


def signal(event: str, fields: dict[str, str | None], zone: ZoneInfo,
           received_at: dt.datetime) -> tuple[str, dict]:
    """The ``call_signal`` of one authenticated notification. ``received_at`` is used only by
    NOTIFY_RECORD, which carries no time of its own."""
    check_complete(event, fields)
    get = fields.get
    call_id, internal = text(get("pbx_call_id")), text(get("internal"))

    def make(kind: str, at: dt.datetime, key_suffix: str | None = internal, **more):
        return call_signal(provider=PROVIDER, event_key=f"{event}:{call_id}:{key_suffix or ''}",
                           call_key=call_id, kind=kind, at=at, **more)

    if event == "NOTIFY_RECORD":
        rec = text(get("call_id_with_rec"))
        return make("recording", received_at, key_suffix=rec, recording_ref=rec)
    at = parse_call_start(text(get("call_start")), zone)
    if event in ("NOTIFY_START", "NOTIFY_IVR", "NOTIFY_INTERNAL"):
        ringing_extension = internal if event == "NOTIFY_INTERNAL" else None
        return make("ringing", at, direction="inbound", extension=ringing_extension,
                    client_number=text(get("caller_id")), line=text(get("called_did")),
                    details=_kept(fields, "wait_dtmf"))
    if event == "NOTIFY_ANSWER":
        # Whether Zadarma also sends it for outgoing calls is not documented: the direction
        # is left to START/OUT_START.
        return make("answered", at, extension=internal, client_number=text(get("caller_id")),
                    details=_kept(fields, "destination"))
    if event == "NOTIFY_OUT_START":
        return make("ringing", at, direction="outbound", extension=internal,
                    client_number=text(get("destination")))
    inbound = event == "NOTIFY_END"
    status_code = as_int(get("status_code"), "status_code")
    disposition = text(get("disposition"))
    duration = as_int(get("duration"), "duration")
    if duration is not None and duration < 0:
        raise BadPayload(f"duration: negative: {duration}")
    return make("finished", at, final=True, direction="inbound" if inbound else "outbound",
                extension=internal, started_at=at,
                client_number=text(get("caller_id") if inbound else get("destination")),
                line=text(get("called_did")) if inbound else None,
                duration_s=duration,
                outcome=outcome_of(disposition, status_code),
                cause=disposition if status_code is None else f"{disposition} (Q.931 {status_code})",
                details=_kept(fields, "disposition", "status_code", "is_recorded",
                              "call_id_with_rec", "caller_id" if not inbound else "destination"))


def _kept(fields: dict[str, str | None], *prefixes: str) -> dict[str, str]:
    """Vendor fields kept in ``details``: those named (or, for ``wait_dtmf``, the nested
    ``wait_dtmf[name]`` style fields of NOTIFY_IVR), when not empty."""
    return {name: value for name, value in fields.items()
            if value and any(name == p or name.startswith(p + "[") for p in prefixes)}
