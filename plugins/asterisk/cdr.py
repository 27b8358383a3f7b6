"""Asterisk's call detail records (``Event: Cdr``, cdr_manager), summed up per call.

Asterisk 12+ writes one record per pair of parties, so one call can end with several: a ring
group gives a NO ANSWER record for every phone that rang besides the ANSWERED one, a transfer
one record per segment. The telephony service applies only the first ``final`` signal of a
call, so the records of a call are gathered for a moment and reported as one summary.

A record is ANSWERED as soon as the caller's channel was answered, by a person or by the
dialplan itself (an IVR, voicemail); only a record with a destination channel means that
somebody talked.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from crmhub.plugins.asterisk.ami import AmiMessage
from crmhub.plugins.asterisk.channels import extension_of_channel, is_extension

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DISPOSITION_OUTCOMES = {"ANSWERED": "answered", "NO ANSWER": "missed", "BUSY": "busy",
                        "FAILED": "failed", "CONGESTION": "failed"}


def cdr_time(value: str | None, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """A Cdr time (the PBX's local time, in ``zone``) in UTC; None when empty."""
    if not value or not value.strip():
        return None
    local = dt.datetime.strptime(value.strip(), TIME_FORMAT).replace(tzinfo=zone)
    return local.astimezone(dt.timezone.utc)


@dataclass
class CdrRecord:
    unique_id: str
    disposition: str
    started_at: dt.datetime | None
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    billable_s: int | None
    source: str | None
    destination: str | None
    destination_context: str | None
    channel: str | None
    destination_channel: str | None
    last_application: str | None

    @property
    def outcome(self) -> str:
        if self.disposition == "ANSWERED" and not self.destination_channel:
            return "voicemail" if (self.last_application or "").lower() == "voicemail" else "missed"
        return DISPOSITION_OUTCOMES.get(self.disposition, "missed")

    @property
    def extension(self) -> str | None:
        by_channel = extension_of_channel(self.destination_channel)
        return by_channel or (self.destination if is_extension(self.destination) else None)


def read_cdr(message: AmiMessage, zone: zoneinfo.ZoneInfo) -> CdrRecord:
    """A Cdr event as a record; ValueError if a time or number is malformed."""
    billable = message.text("BillableSeconds")
    return CdrRecord(
        unique_id=message.text("UniqueID") or "", disposition=(message.text("Disposition") or
                                                              "").upper(),
        started_at=cdr_time(message.get("StartTime"), zone),
        answered_at=cdr_time(message.get("AnswerTime"), zone),
        ended_at=cdr_time(message.get("EndTime"), zone),
        billable_s=int(billable) if billable else None,
        source=message.text("Source"), destination=message.text("Destination"),
        destination_context=message.text("DestinationContext"),
        channel=message.text("Channel"), destination_channel=message.text("DestinationChannel"),
        last_application=message.text("LastApplication"))


@dataclass
class CdrSummary:
    """The records of one call seen so far."""

    call_key: str
    last_seen: float
    records: list[CdrRecord] = field(default_factory=list)

    @property
    def answered(self) -> list[CdrRecord]:
        return [r for r in self.records if r.outcome == "answered"]

    @property
    def outcome(self) -> str:
        outcomes = {r.outcome for r in self.records}
        for decisive in ("answered", "voicemail"):
            if decisive in outcomes:
                return decisive
        return outcomes.pop() if len(outcomes) == 1 else "missed"

    @property
    def started_at(self) -> dt.datetime | None:
        return min((r.started_at for r in self.records if r.started_at), default=None)

    @property
    def answered_at(self) -> dt.datetime | None:
        return min((r.answered_at for r in self.answered if r.answered_at), default=None)

    @property
    def ended_at(self) -> dt.datetime | None:
        return max((r.ended_at for r in self.records if r.ended_at), default=None)

    @property
    def duration_s(self) -> int | None:
        """Talk time: one answered record's BillableSeconds; for several (a transfer), the span
        from the first answer to the last end, as adding them up would count twice the
        records Local channels make for one conversation."""
        answered = self.answered
        if not answered:
            return 0
        if len(answered) == 1:
            return answered[0].billable_s
        ends = [r.ended_at for r in answered if r.ended_at]
        if not ends or self.answered_at is None:
            return None
        return max(0, int((max(ends) - self.answered_at).total_seconds()))

    @property
    def extension(self) -> str | None:
        return next((r.extension for r in reversed(self.answered) if r.extension), None)
