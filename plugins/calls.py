"""What PBX connectors share: building ``call_signal`` events, vendor times, and the Q.850
causes most PBXs report."""
from __future__ import annotations

import datetime as dt

from crmhub.contracts.base import new_event
from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.api import BadPayload

CALL_SIGNAL = "call_signal"

# Q.850 cause codes (Asterisk Hangup Cause, Zadarma status_code) -> our outcome.
Q850_OUTCOMES = {16: "answered", 17: "busy", 21: "busy", 18: "missed", 19: "missed",
                 1: "failed", 3: "failed", 27: "failed", 28: "failed", 34: "failed",
                 38: "failed", 41: "failed", 42: "failed"}


def call_signal(*, provider: str, event_key: str, call_key: str, kind: str, at: dt.datetime,
                **fields) -> tuple[str, dict]:
    """The ``call_signal`` event of one vendor event. ``event_key`` identifies the vendor event
    (the same webhook delivered twice gives the same key); ``fields`` are the other fields of
    :class:`crmhub.contracts.calls.CallSignalSchema`."""
    fields = {key: value for key, value in fields.items() if value is not None}
    return CALL_SIGNAL, new_event(CallSignalSchema, idempotency_key=f"{provider}:{event_key}",
                                  provider=provider, call_key=str(call_key), kind=kind, at=at,
                                  **fields)


def from_epoch(value, field: str) -> dt.datetime | None:
    """A vendor's Unix time (seconds, as a number or a string); None for 0 or empty."""
    if value in (None, "", 0, "0"):
        return None
    try:
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise BadPayload(f"{field}: not a Unix time: {value!r}") from None


def as_int(value, field: str) -> int | None:
    """A vendor number that may come as a string ("seq": "1" and "seq": 1 both occur)."""
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadPayload(f"{field}: not a whole number: {value!r}") from None


def text(value) -> str | None:
    """A vendor id or number as text; None when absent or empty."""
    if value is None:
        return None
    value = str(value).strip()
    return value or None
