"""Folding the AMI event stream into ``call_signal`` events.

AMI reports channels, not calls: every leg is a channel with its ``Uniqueid``, and Asterisk 12+
stamps all channels of one call with the ``Linkedid`` of the first. Asterisk 11 and older do
not (the capture in this package has no Linkedid outside CEL), so their channels are joined to
a call by the events that relate them: ``Dial`` (caller → destination), ``LocalBridge`` (the two
halves of a Local channel) and ``Bridge``. Both generations' event names are understood:

==================  ==================================  ===========================
signal              Asterisk 12+                        Asterisk 11 and older
==================  ==================================  ===========================
ringing             DialBegin                           Dial SubEvent: Begin
answered            DialEnd ANSWER, BridgeEnter,        Dial SubEvent: End ANSWER,
                    Newstate 6 (Up) of a dialed leg     Bridge Link, Newstate 6
leg_ended           Hangup of a leg, others still up    same
finished            Hangup of the last leg              same
finished, final     Cdr (all records of the call)       same
==================  ==================================  ===========================

Only dialed legs ring and answer: a caller's channel is also "Up" when an IVR picks up. Nor
does the caller's own phone when Asterisk rings it first (Originate, click-to-call): it places
the call. A call that has told nothing yet and never had a direction (a Local channel half, a
queue's agent channel under Asterisk 11) ends silently, so PBX plumbing does not become missed
calls. A call nobody answered takes its outcome from the Q.850 cause of its last hangup.

One tracker serves one listener, across reconnects; memory stays bounded: finished calls are
forgotten, and only the most recent ``max_calls`` live and ended calls are kept.
"""
from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections import OrderedDict
from dataclasses import dataclass, field

import structlog

from crmhub.plugins.asterisk.ami import AmiMessage
from crmhub.plugins.asterisk.cdr import CdrSummary, read_cdr
from crmhub.plugins.asterisk.channels import (
    Opening,
    Party,
    classify_call,
    dialed_number,
    dialed_party,
)
from crmhub.plugins.calls import Q850_OUTCOMES, call_signal, from_epoch

log = structlog.get_logger(__name__)

# The channel variable place_call sets, echoed by VarSet: links the call to its command.
COMMAND_VARIABLE = "CRM_COMMAND_ID"
UP = "6"
CDR_EVENT = AmiMessage([("Event", "Cdr")])

Signal = tuple[str, dict]


@dataclass
class Call:
    key: str
    opening: Opening
    started_at: dt.datetime
    legs: dict[str, Leg] = field(default_factory=dict)
    command_id: str | None = None
    answered_at: dt.datetime | None = None
    extension: str | None = None  # the one that answered, or last rang
    sequence: int = 0

    @property
    def reported(self) -> bool:
        return self.sequence > 0


@dataclass
class Leg:
    uid: str
    call: Call
    channel: str | None = None
    caller: str | None = None  # the channel's own CallerIDNum
    dialed_by: str | None = None
    party: Party | None = None  # set once the leg is dialed
    up: bool = False
    rang: bool = False
    answered: bool = False


def _cause(message: AmiMessage) -> str | None:
    return " ".join(filter(None, (message.text("Cause"), message.text("Cause-txt")))) or None


def _unanswered_outcome(message: AmiMessage) -> str:
    """The outcome of a call nobody answered, from the Q.850 cause of its last hangup; 16
    "normal clearing" then only means the caller hung up."""
    try:
        outcome = Q850_OUTCOMES.get(int(message.text("Cause") or ""))
    except ValueError:
        outcome = None
    return outcome if outcome and outcome != "answered" else "missed"


class CallTracker:
    def __init__(self, provider: str = "asterisk", *, inbound_contexts=(),
                 timezone: str = "Europe/Moscow", cdr_settle_seconds: float = 1.0,
                 max_calls: int = 10_000, clock=time.monotonic):
        self.provider = provider
        self.inbound_contexts = tuple(inbound_contexts)
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.cdr_settle_seconds = cdr_settle_seconds
        self.max_calls = max_calls
        self.clock = clock
        self._calls: OrderedDict[str, Call] = OrderedDict()
        self._legs: dict[str, Leg] = {}
        self._ended: OrderedDict[str, Call] = OrderedDict()  # Uniqueid → its call, for Cdr
        self._cdrs: dict[str, CdrSummary] = {}
        self._handlers = {
            "newchannel": self._newchannel, "varset": self._varset,
            "dialbegin": self._dial_begin, "dialend": self._dial_end, "dial": self._dial_v11,
            "newstate": self._newstate, "bridgeenter": self._bridge_enter,
            "bridge": self._bridge_v11, "localbridge": self._local_bridge_v11,
            "hangup": self._hangup, "cdr": self._cdr}

    # -- entry points -----------------------------------------------------------------------
    def feed(self, message: AmiMessage) -> list[Signal]:
        """The signals one AMI message gives (with any call summaries now due). A message
        that cannot be understood is logged and skipped: one bad event must not stop the
        stream."""
        handler = self._handlers.get((message.event or "").lower())
        signals: list[Signal] = []
        if handler is not None:
            try:
                signals = handler(message, self._at(message))
            except Exception as exc:  # noqa: BLE001 - logged, the stream goes on
                log.warning("asterisk event skipped", ami_event=message.event, error=str(exc),
                            uniqueid=message.get("Uniqueid"))
        return signals + self.flush()

    def flush(self, force: bool = False) -> list[Signal]:
        """Final signals of calls whose Cdr records stopped coming (all of them if ``force``:
        the listener stops)."""
        due = [key for key, summary in self._cdrs.items()
               if force or self.clock() - summary.last_seen >= self.cdr_settle_seconds]
        return [self._final(self._cdrs.pop(key)) for key in due]

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    # -- calls and legs ---------------------------------------------------------------------
    @staticmethod
    def _at(message: AmiMessage) -> dt.datetime:
        """When the event happened: its ``Timestamp`` (manager.conf ``timestampevents``),
        else now."""
        try:
            stamp = from_epoch(message.text("Timestamp"), "Timestamp")
        except Exception:  # noqa: BLE001 - a bad stamp is no reason to lose the event
            stamp = None
        return stamp or dt.datetime.now(dt.timezone.utc)

    def _open(self, key: str, opening: Opening, at: dt.datetime) -> Call:
        call = Call(key, opening, started_at=at)
        self._calls[key] = call
        while len(self._calls) > self.max_calls:
            _, evicted = self._calls.popitem(last=False)
            for uid in evicted.legs:
                self._legs.pop(uid, None)
        return call

    def _add_leg(self, call: Call, uid: str, **fields) -> Leg:
        leg = Leg(uid, call, **fields)
        call.legs[uid] = leg
        self._legs[uid] = leg
        return leg

    def _join(self, leg: Leg, call: Call) -> None:
        """Move ``leg`` into ``call`` (Asterisk 11: a channel first seen on its own turns out
        to belong to a call). A call that already reported keeps its legs."""
        old = leg.call
        if old is call or old.reported:
            return
        del old.legs[leg.uid]
        if not old.legs:
            self._calls.pop(old.key, None)
        leg.call = call
        call.legs[leg.uid] = leg

    def _leg(self, uid: str | None, call_hint: Call | None = None, **fields) -> Leg | None:
        """The leg ``uid``; one is made (in ``call_hint``) for a channel whose Newchannel came
        before we connected."""
        if not uid:
            return None
        leg = self._legs.get(uid)
        if leg is None and call_hint is not None:
            leg = self._add_leg(call_hint, uid, **fields)
        return leg

    # -- signals ----------------------------------------------------------------------------
    def _signal(self, call: Call, kind: str, message: AmiMessage, at: dt.datetime,
                leg: Leg | None = None, key_leg: str | None = None, **fields) -> Signal:
        """The signal of ``call``; its event key names the AMI event, so the same event
        seen again (after a reconnect, by a second listener) dedupes."""
        call.sequence += 1
        opening = call.opening
        key_leg = key_leg or (leg.uid if leg else "-")
        fields.setdefault("details", {"ami_event": message.event or "",
                                      **({"channel": leg.channel} if leg and leg.channel else {})})
        return call_signal(
            provider=self.provider, kind=kind, at=at, call_key=call.key,
            event_key=f"{call.key}:{key_leg}:{message.event}:{kind}",
            leg_id=leg.uid if leg else None, sequence=call.sequence,
            direction=opening.direction, client_number=opening.client_number,
            line=opening.line, command_id=call.command_id, **fields)

    def _answer(self, leg: Leg | None, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        if leg is None or leg.party is None or leg.answered:
            return []
        leg.answered = True
        call = leg.call
        extension = leg.party.extension or call.opening.own_extension
        call.answered_at = call.answered_at or at
        call.extension = extension or call.extension
        return [self._signal(call, "answered", message, at, leg, extension=extension)]

    def _classify(self, message: AmiMessage) -> Opening:
        """What a channel's fields (Newchannel, or the caller's in DialBegin) tell of its call."""
        return classify_call(context=message.text("Context"), caller=message.text("CallerIDNum"),
                             channel=message.text("Channel"), exten=message.text("Exten"),
                             inbound_contexts=self.inbound_contexts)

    # -- channels ---------------------------------------------------------------------------
    def _newchannel(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        uid = message.text("Uniqueid")
        if not uid or uid in self._legs:
            return []
        key = message.text("Linkedid") or uid
        call = self._calls.get(key) or self._open(key, self._classify(message), at)
        self._add_leg(call, uid, channel=message.text("Channel"),
                      caller=message.text("CallerIDNum"))
        return []

    def _varset(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        leg = self._legs.get(message.text("Uniqueid") or "")
        if leg is not None and message.text("Variable") == COMMAND_VARIABLE:
            leg.call.command_id = message.text("Value")
            leg.call.opening.direction = leg.call.opening.direction or "outbound"
        return []

    def _newstate(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        leg = self._legs.get(message.text("Uniqueid") or "")
        if leg is None or message.text("ChannelState") != UP:
            return []
        leg.up = True
        return self._answer(leg, message, at)

    def _hangup(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        leg = self._legs.pop(message.text("Uniqueid") or "", None)
        if leg is None:
            return []
        call = leg.call
        call.legs.pop(leg.uid, None)
        self._remember_ended(leg.uid, call)
        if call.legs:
            if not call.reported:
                return []
            extension = leg.party.extension if leg.party else None
            return [self._signal(call, "leg_ended", message, at, leg, extension=extension,
                                 cause=_cause(message))]
        self._calls.pop(call.key, None)
        if not (call.reported or call.opening.direction):
            return []
        return [self._signal(
            call, "finished", message, at, leg,
            outcome="answered" if call.answered_at else _unanswered_outcome(message),
            cause=_cause(message), extension=call.extension, started_at=call.started_at,
            answered_at=call.answered_at, ended_at=at)]

    def _remember_ended(self, uid: str, call: Call) -> None:
        self._ended[uid] = call
        while len(self._ended) > self.max_calls:
            self._ended.popitem(last=False)

    # -- dialing (12+) ----------------------------------------------------------------------
    def _dial_begin(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        dest_leg = self._legs.get(message.text("DestUniqueid") or "")
        return self._dialed(
            message, at, caller_uid=message.text("Uniqueid"),
            dest_uid=message.text("DestUniqueid"), dest_channel=message.text("DestChannel"),
            call_key=message.text("DestLinkedid") or message.text("Linkedid"),
            numbers=(message.text("DestCallerIDNum"), dialed_number(message.text("DialString")),
                     dest_leg.caller if dest_leg else None))

    def _dial_end(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        if (message.text("DialStatus") or "").upper() != "ANSWER":
            return []
        return self._answer(self._legs.get(message.text("DestUniqueid") or ""), message, at)

    def _bridge_enter(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        return self._answer(self._legs.get(message.text("Uniqueid") or ""), message, at)

    def _dialed(self, message: AmiMessage, at: dt.datetime, *, caller_uid: str | None,
                dest_uid: str | None, dest_channel: str | None, call_key: str | None,
                numbers: tuple[str | None, ...]) -> list[Signal]:
        if not dest_uid:
            return []
        caller = self._legs.get(caller_uid or "")
        call = caller.call if caller else self._calls.get(call_key or "")
        if call is None:  # we connected after the call began
            call = self._open(call_key or caller_uid or dest_uid, self._classify(message), at)
        if caller is None and caller_uid:
            self._add_leg(call, caller_uid, channel=message.text("Channel"),
                          caller=message.text("CallerIDNum"))
        dest = self._leg(dest_uid, call, channel=dest_channel)
        self._join(dest, call)
        call, opening = dest.call, dest.call.opening
        party = dialed_party(dest_channel, *numbers)
        if caller_uid is None or (party.extension and party.extension == opening.own_extension):
            # The caller's own phone: Originate rings it first (with no caller channel in 12+,
            # through a Local channel in 11). It places the call; it does not answer it.
            opening.own_extension = opening.own_extension or party.extension
            return []
        dest.dialed_by, dest.party = caller_uid, party
        if party.number and opening.direction in (None, "outbound"):
            opening.direction = "outbound"
            opening.client_number = opening.client_number or party.number
        elif opening.direction is None and party.extension and opening.own_extension:
            opening.direction = "internal"
        if dest.rang:
            return []
        dest.rang = True
        extension = party.extension or opening.own_extension
        call.extension = call.extension if call.answered_at else extension
        return [self._signal(call, "ringing", message, at, dest, extension=extension)]

    # -- Asterisk 11 and older --------------------------------------------------------------
    def _dial_v11(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        sub_event = (message.text("SubEvent") or "").lower()
        caller_uid = message.text("UniqueID")
        if sub_event == "begin":
            dest_leg = self._legs.get(message.text("DestUniqueID") or "")
            return self._dialed(
                message, at, caller_uid=caller_uid, dest_uid=message.text("DestUniqueID"),
                dest_channel=message.text("Destination"), call_key=None,
                numbers=(dialed_number(message.text("Dialstring")),
                         message.text("ConnectedLineNum"), dest_leg.caller if dest_leg else None))
        if sub_event != "end" or (message.text("DialStatus") or "").upper() != "ANSWER":
            return []
        caller = self._legs.get(caller_uid or "")
        if caller is None:
            return []
        # The End names only the caller: the answered leg is the one it dialed that is up.
        dialed = [leg for leg in caller.call.legs.values()
                  if leg.dialed_by == caller_uid and not leg.answered]
        answering = dialed if len(dialed) == 1 else [leg for leg in dialed if leg.up]
        return [signal for leg in answering for signal in self._answer(leg, message, at)]

    def _bridge_v11(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        if (message.text("Bridgestate") or "").lower() != "link":
            return []
        legs = self._link(message.text("Uniqueid1"), message.text("Uniqueid2"))
        return [signal for leg in legs for signal in self._answer(leg, message, at)]

    def _local_bridge_v11(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        self._link(message.text("Uniqueid1"), message.text("Uniqueid2"))
        return []

    def _link(self, first_uid: str | None, second_uid: str | None) -> list[Leg]:
        first, second = self._legs.get(first_uid or ""), self._legs.get(second_uid or "")
        if first and second:
            self._join(second, first.call)
        return [leg for leg in (first, second) if leg]

    # -- call detail records ----------------------------------------------------------------
    def _cdr(self, message: AmiMessage, at: dt.datetime) -> list[Signal]:
        record = read_cdr(message, self.zone)
        call = self._call_of(record.unique_id)
        key = message.text("LinkedID") or (call.key if call else record.unique_id)
        summary = self._cdrs.setdefault(key, CdrSummary(key, last_seen=self.clock()))
        summary.records.append(record)
        summary.last_seen = self.clock()
        return []

    def _call_of(self, uid: str) -> Call | None:
        leg = self._legs.get(uid)
        return leg.call if leg else self._ended.get(uid)

    def _final(self, summary: CdrSummary) -> Signal:
        first = summary.records[0]
        call = self._call_of(first.unique_id)
        if call is None:  # its channels came and went before we connected
            opening = classify_call(context=first.destination_context, caller=first.source,
                                    channel=first.channel, exten=first.destination,
                                    inbound_contexts=self.inbound_contexts)
            call = Call(summary.call_key, opening,
                        started_at=summary.started_at or dt.datetime.now(dt.timezone.utc))
        dispositions = ",".join(dict.fromkeys(r.disposition for r in summary.records))
        return self._signal(
            call, "finished", CDR_EVENT, summary.ended_at or dt.datetime.now(dt.timezone.utc),
            key_leg=first.unique_id, final=True, outcome=summary.outcome,
            started_at=summary.started_at, answered_at=summary.answered_at,
            ended_at=summary.ended_at, duration_s=summary.duration_s,
            extension=summary.extension or call.extension,
            details={"ami_event": "Cdr", "records": len(summary.records),
                     "dispositions": dispositions})
