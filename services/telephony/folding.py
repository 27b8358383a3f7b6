"""Signals folded into calls, a batch at a time.

Vendor events arrive duplicated and out of order. A call only moves forwards
(dialing → ringing → answered → finished); a signal older than one already seen for the same
leg (by the vendor's sequence) is stale; a finished call takes no more state changes, except
that the vendor's own summary or CDR (``final``) corrects its times and outcome once. Each
transition publishes its event exactly once: call_ringing (once per extension), call_answered,
then call_finished (answered calls) or call_missed (every other outcome).

A batch takes a fixed number of statements whatever its size: its calls are created (or
adopted from a click-to-call) and locked together, each signal is folded into its call's
state in memory, in the order the signals came, and the changed calls are written at the end.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.calls import CallEventSchema, CallRingingSchema, RecordingFoundSchema
from crmhub.contracts.phones import normalize
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, is_postgres, new_id, utcnow
from crmhub.services.telephony.logic import (
    ADOPTION_WINDOW,
    STATUS_RANK,
    call_view,
)
from crmhub.services.telephony.models import calls

# What folding may change: written back for every call a batch touched.
WRITTEN = ("direction", "status", "outcome", "cause", "client_number", "client_number_raw",
           "line", "extension", "manager", "contact_id", "caller_known", "created_at",
           "answered_at", "ended_at", "duration_s", "final", "legs", "announced", "command_id",
           "recording_ref", "updated_at")
# Built once: constructing it per batch cost about as much as running it.
_WRITE_BACK = (calls.update().where(calls.c.id == sa.bindparam("b_id"))
               .values({column: sa.bindparam(f"b_{column}") for column in WRITTEN}))
LEG_STATES = {"ringing": "ringing", "answered": "answered", "leg_ended": "ended",
              "finished": "ended"}


@dataclass
class Folded:
    """What a signal did to its call."""

    call: dict | None = None
    stale: bool = False
    events: list[str] = field(default_factory=list)


@dataclass
class Item:
    """A signal to fold, with the caller's card summary the service fetched for it (or None)
    and the request id its events carry."""

    signal: dict
    caller: dict | None = None
    request_id: str | None = None


def fold_signal(tx, signal: dict, *, region: str, ext_managers: dict[str, str],
                caller: dict | None = None) -> Folded:
    """Fold one signal (see ``fold_signals``)."""
    return fold_signals(tx, [Item(signal, caller)], region=region, ext_managers=ext_managers)[0]


def fold_signals(tx, items: list[Item], *, region: str, ext_managers: dict[str, str],
                 existing: frozenset = frozenset()) -> list[Folded]:
    """Fold each item's signal into its call, in order, and emit what changed. ``ext_managers``
    maps the extensions involved to their managers; ``existing`` holds (provider, call_key)
    pairs whose calls are known to exist (calls are never deleted): not looked for again."""
    clients = [_client(item.signal, region) for item in items]
    states = _locked_states(tx, items, clients, existing)
    now = utcnow()
    results, touched = [], {}
    for item, (client_e164, client_raw) in zip(items, clients):
        state = states[item.signal["provider"], item.signal["call_key"]]
        if _is_stale(state, item.signal):
            results.append(Folded(call=call_view(state), stale=True))
            continue
        caller = item.caller
        if caller is not None and state["caller_known"] is not None:
            # Whether the card existed before the call was settled by the call's first lookup
            # (a concurrent batch may have created the card this lookup found).
            caller = {**caller, "known": state["caller_known"]}
        events, ringing = _apply(state, item.signal, client_e164, client_raw, ext_managers,
                                 caller)
        state["updated_at"] = now
        touched[state["id"]] = state
        call = call_view(state)
        for event_type in events:
            if event_type == ev.CALL_RINGING:
                body = new_event(CallRingingSchema, call=call, extensions=ringing,
                                 managers=sorted({m for m in map(ext_managers.get, ringing) if m}),
                                 caller=caller or unknown_caller(call))
            elif event_type == ev.RECORDING_FOUND:
                body = new_event(RecordingFoundSchema, call=call,
                                 recording_ref=item.signal["recording_ref"])
            else:
                body = new_event(CallEventSchema, call=call)
            tx.emit(event_type, body, request_id=item.request_id)
        results.append(Folded(call=call, events=events))
    if touched:
        tx.execute(_WRITE_BACK, [{"b_id": call_id, **{f"b_{c}": state[c] for c in WRITTEN}}
                                 for call_id, state in touched.items()])
    return results


def unknown_caller(call: dict) -> dict:
    return {"contact_id": call.get("contact_id"), "known": False, "name": None,
            "company": None, "manager": None,
            "number": call.get("client_number") or call.get("client_number_raw"),
            "open_deals": [], "last_interactions": []}


# -- the batch's calls -------------------------------------------------------------------------

def _client(signal: dict, region: str) -> tuple[str | None, str | None]:
    raw = signal.get("client_number")
    if not raw:
        return None, None
    return normalize(raw, region).e164, raw[:200]


def _may_adopt(signal: dict, client_e164: str | None) -> bool:
    """Whether a call's first signal may answer a click-to-call: it echoes our command id,
    or it is an outgoing call of a known extension to a known number."""
    return bool(signal.get("command_id") or (
        signal.get("direction") == "outbound" and signal.get("extension") and client_e164))


def _adopt_dialing(tx, signal: dict, client_e164: str | None) -> bool:
    """Give a call's first signal the click-to-call record it answers, if any."""
    if not _may_adopt(signal, client_e164):
        return False
    pending = sa.select(calls.c.id).where(
        calls.c.provider == signal["provider"], calls.c.call_key.is_(None),
        calls.c.status == "dialing")
    if signal.get("command_id"):
        pending = pending.where(calls.c.command_id == signal["command_id"])
    else:
        pending = pending.where(
            calls.c.extension == signal["extension"], calls.c.client_number == client_e164,
            calls.c.created_at >= utcnow() - ADOPTION_WINDOW)
    call_id = tx.execute(pending.order_by(calls.c.created_at).limit(1)).scalar()
    return call_id is not None and bool(tx.execute(
        calls.update().where(calls.c.id == call_id, calls.c.call_key.is_(None))
        .values(call_key=signal["call_key"])).rowcount)


def _locked_states(tx, items: list[Item], clients, existing=frozenset()
                   ) -> dict[tuple[str, str], dict]:
    """The batch's calls as mutable states, locked; the calls seen for the first time are
    created (or adopted from a click-to-call) first, race-safe against other batches.

    Creating before locking, and locking every call in one statement in id order, is what
    keeps two batches from deadlocking: a batch holds no call's lock while it waits on a new
    call another batch is inserting (locking the known calls first cost a deadlock a second
    under load)."""
    pairs = list(dict.fromkeys((i.signal["provider"], i.signal["call_key"]) for i in items))
    key = sa.tuple_(calls.c.provider, calls.c.call_key)
    known = set(pairs) & existing
    unsure = [pair for pair in pairs if pair not in known]
    # Only a call that may adopt a click-to-call must be known to be new before it is
    # created: any other is inserted ignoring the one a concurrent batch made meanwhile.
    if any(_may_adopt(i.signal, e164) for i, (e164, _) in zip(items, clients)
           if (i.signal["provider"], i.signal["call_key"]) in unsure):
        known |= {(r.provider, r.call_key) for r in tx.execute(
            sa.select(calls.c.provider, calls.c.call_key).where(key.in_(unsure)))}
    firsts = {}
    for item, (client_e164, _) in zip(items, clients):
        pair = (item.signal["provider"], item.signal["call_key"])
        if pair not in known and pair not in firsts:
            firsts[pair] = item.signal
            if _adopt_dialing(tx, item.signal, client_e164):
                known.add(pair)
    # Sorted: batches inserting the same new calls in different orders would deadlock.
    new = [{"id": new_id(), "provider": p, "call_key": k, "status": "ringing",
            "created_at": s.get("started_at") or s["at"], "legs": {}, "announced": [],
            "updated_at": utcnow()} for (p, k), s in sorted(firsts.items())
           if (p, k) not in known]
    if new:
        insert_ignoring_conflicts(tx.conn, calls, new, ["provider", "call_key"])
    query = sa.select(calls).where(key.in_(pairs)).order_by(calls.c.id)
    if is_postgres(tx.conn):
        query = query.with_for_update()
    return {(r.provider, r.call_key): dict(r._mapping) for r in tx.execute(query)}


# -- one signal --------------------------------------------------------------------------------

def _is_stale(state: dict, signal: dict) -> bool:
    """A leg's state change older than one already applied to that leg (by the vendor's
    sequence). Recordings and summaries keep counters of their own: never stale."""
    if signal["kind"] not in ("ringing", "answered", "leg_ended"):
        return False
    leg = (state["legs"] or {}).get(signal.get("leg_id") or "")
    seq = signal.get("sequence")
    return bool(leg and seq is not None and leg.get("sequence") is not None
                and leg["sequence"] >= seq)


def _with_leg(state: dict, signal: dict) -> dict:
    legs = dict(state["legs"] or {})
    leg_state = LEG_STATES.get(signal["kind"])
    if signal.get("leg_id") and leg_state:
        previous = legs.get(signal["leg_id"]) or {}
        legs[signal["leg_id"]] = {
            "extension": signal.get("extension") or previous.get("extension"),
            "state": leg_state, "sequence": signal.get("sequence", previous.get("sequence")),
            "at": signal["at"].isoformat()}
    return legs


def _duration(answered_at, ended_at, signal: dict) -> int | None:
    if signal.get("duration_s") is not None:
        return signal["duration_s"]
    if answered_at and ended_at:
        return max(0, int((as_utc(ended_at) - as_utc(answered_at)).total_seconds()))
    return None


def _finish(state: dict, signal: dict, manager_of) -> None:
    """The call's end as the signal tells it (first end, or the vendor's correction)."""
    answered_at = signal.get("answered_at") or as_utc(state["answered_at"])
    if signal["outcome"] != "answered" and signal.get("final"):
        answered_at = signal.get("answered_at")
    ended_at = signal.get("ended_at") or signal["at"]
    extension = signal.get("extension") or state["extension"]
    state.update(status="finished", outcome=signal["outcome"], cause=signal.get("cause"),
                 answered_at=answered_at, ended_at=ended_at, extension=extension,
                 manager=manager_of(extension) or state["manager"],
                 duration_s=_duration(answered_at, ended_at, signal)
                 if signal["outcome"] == "answered" else 0,
                 final=bool(signal.get("final")))
    if signal.get("started_at"):
        state["created_at"] = signal["started_at"]


def _apply(state: dict, signal: dict, client_e164, client_raw, ext_managers: dict,
           caller: dict | None) -> tuple[list[str], list[str]]:
    """Fold one signal into ``state``; returns (events to publish, extensions now ringing)."""
    kind, status = signal["kind"], state["status"]
    state["legs"] = _with_leg(state, signal)
    # What the vendor tells about the call itself is kept the first time it is told.
    for column, value in (("direction", signal.get("direction")), ("line", signal.get("line")),
                          ("client_number", client_e164), ("client_number_raw", client_raw),
                          ("command_id", signal.get("command_id")),
                          ("contact_id", (caller or {}).get("contact_id"))):
        if value and not state[column]:
            state[column] = value
    if caller is not None and state["caller_known"] is None and caller.get("contact_id"):
        state["caller_known"] = bool(caller.get("known"))
    manager_of = ext_managers.get
    if kind == "ringing" and STATUS_RANK[status] <= STATUS_RANK["ringing"]:
        state["status"] = "ringing"
        ext = signal.get("extension")
        if not ext:
            return [], []
        state.update(extension=ext, manager=manager_of(ext) or state["manager"])
        if state["direction"] != "outbound" and ext not in (state["announced"] or []):
            state["announced"] = [*(state["announced"] or []), ext]
            return [ev.CALL_RINGING], [ext]
    elif kind == "answered":
        ext = signal.get("extension") or state["extension"]
        if STATUS_RANK[status] < STATUS_RANK["answered"]:
            state.update(status="answered", answered_at=signal["at"], extension=ext,
                         manager=manager_of(ext) or state["manager"])
            return [ev.CALL_ANSWERED], []
        if status == "answered" and ext:  # a transfer: the call is now this extension's
            state.update(extension=ext, manager=manager_of(ext) or state["manager"])
        elif state["answered_at"] is None:
            state["answered_at"] = signal["at"]
    elif kind == "finished":
        if status != "finished":
            _finish(state, signal, manager_of)
            return [ev.CALL_FINISHED if signal["outcome"] == "answered" else ev.CALL_MISSED], []
        if signal.get("final") and not state["final"]:
            _finish(state, signal, manager_of)
    elif kind == "recording" and state["recording_key"] is None:
        # Downloaded by the service's own handler: a slow vendor does not hold up the calls.
        state["recording_ref"] = signal["recording_ref"]
        return [ev.RECORDING_FOUND], []
    return [], []
