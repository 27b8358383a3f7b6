"""The call log: reading calls, extensions, recordings, click-to-call records (signals are
folded into calls in folding.py).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.calls import CallEventSchema
from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.contracts.phones import normalize
from crmhub.runtime.db import as_utc, new_id, utcnow
from crmhub.services.telephony.models import calls, extensions, inbox

STATUS_RANK = {"dialing": 0, "ringing": 1, "answered": 2, "finished": 3}
# A click-to-call the PBX never reported within this time is closed as failed.
DIALING_TIMEOUT = dt.timedelta(minutes=3)
# A call the PBX stopped reporting on (its end lost on the vendor's side) is closed after this:
# no call of a call center lasts so long, and the card must still get it.
UNREPORTED_END = dt.timedelta(hours=4)
# How long after a click-to-call an outgoing call from the same extension to the same number
# is taken to be its result (PBXs that do not echo our command id).
ADOPTION_WINDOW = dt.timedelta(minutes=2)
RECORDING_URL = "/api/v1/calls/{id}/recording"
CALL_COLUMNS = ("id", "provider", "call_key", "direction", "status", "outcome", "cause",
                "client_number", "client_number_raw", "line", "extension", "manager",
                "contact_id", "duration_s", "command_id", "requested_by")
CALL_TIMES = ("created_at", "answered_at", "ended_at", "updated_at")


# -- reading -----------------------------------------------------------------------------------

def call_view(row) -> dict:
    """A calls row (or its state as a dict) as :class:`crmhub.contracts.calls.CallSchema`."""
    r = row if isinstance(row, dict) else row._mapping
    recording = None
    if r["recording_ref"] or r["recording_key"]:
        stored = r["recording_key"] is not None
        recording = {"ref": r["recording_ref"] or "", "stored": stored,
                     "content_type": r["recording_content_type"], "size": r["recording_size"],
                     "url": RECORDING_URL.format(id=r["id"]) if stored else None}
    legs = [{"leg_id": leg_id, "extension": leg.get("extension"), "state": leg["state"],
             "sequence": leg.get("sequence"), "at": dt.datetime.fromisoformat(leg["at"])}
            for leg_id, leg in (r["legs"] or {}).items()]
    view = {column: r[column] for column in CALL_COLUMNS}
    view.update({column: as_utc(r[column]) for column in CALL_TIMES})
    view.update(legs=legs, recording=recording)
    return view


def load_call(conn, call_id: str) -> dict:
    row = conn.execute(sa.select(calls).where(calls.c.id == call_id)).first()
    if row is None:
        raise NotFound(f"no call {call_id!r}")
    return call_view(row)


def handled_keys(conn, keys) -> set[str]:
    """Which of the message ``keys`` were already handled (the inbox holds them)."""
    keys = list({k[:300] for k in keys})
    if not keys:
        return set()
    return set(conn.execute(sa.select(inbox.c.key).where(inbox.c.key.in_(keys))).scalars())


def signal_key(signal: dict) -> str:
    return f"signal:{signal['idempotency_key']}"


def find_calls(conn, provider_keys) -> dict[tuple[str, str], object]:
    """The calls rows of ``(provider, call_key)`` pairs, by pair (absent pairs left out)."""
    by_provider: dict[str, set[str]] = {}
    for provider, call_key in provider_keys:
        by_provider.setdefault(provider, set()).add(call_key)
    rows = {}
    for provider, call_keys in by_provider.items():
        for row in conn.execute(sa.select(calls).where(calls.c.provider == provider,
                                                        calls.c.call_key.in_(call_keys))):
            rows[provider, row.call_key] = row
    return rows


def caller_need(signal: dict, row) -> str | None:
    """What the client's card is needed for when this signal is folded: "popup" (an extension
    starts ringing for an incoming call: the card summary and open deals), "link" (the call
    is seen with a client number and no card yet: find or create it), or None."""
    direction = signal.get("direction") or (row.direction if row else None)
    number = signal.get("client_number") or (row.client_number_raw if row else None)
    if direction == "internal" or not number or signal["kind"] in ("leg_ended", "recording"):
        return None
    ext = signal.get("extension")
    if (signal["kind"] == "ringing" and ext and direction != "outbound"
            and (row is None or (STATUS_RANK[row.status] <= STATUS_RANK["ringing"]
                                 and ext not in (row.announced or [])))):
        return "popup"
    # A call is linked to its card when first seen: its ringing, or its end if that came first;
    # a call still at the IVR is linked by the popup of the extension it reaches (or its end).
    if signal["kind"] not in ("ringing", "finished") or (row is not None and row.contact_id):
        return None
    if signal["kind"] == "ringing" and not ext and direction != "outbound":
        return None
    return "link"


def popups_first(batch: list, rows: dict) -> tuple[list, list]:
    """``batch`` (pairs of signal and request id) in two parts: the signals that ring an
    extension with a popup (``caller_need``) of calls with no earlier signal in the batch,
    then the others in arrival order. ``rows``: the calls' rows before the batch."""
    seen, popups, rest = set(), [], []
    for item in batch:
        signal = item[0]
        call = (signal["provider"], signal["call_key"])
        if call not in seen and caller_need(signal, rows.get(call)) == "popup":
            popups.append(item)
        else:
            rest.append(item)
        seen.add(call)
    return popups, rest


def search_calls(conn, contact_id=None, manager=None, status=None, outcome=None, limit=50,
                 offset=0) -> dict:
    where = [column == value for column, value in (
        (calls.c.contact_id, contact_id), (calls.c.manager, manager), (calls.c.status, status),
        (calls.c.outcome, outcome)) if value is not None]
    total = conn.execute(sa.select(sa.func.count()).select_from(calls).where(*where)).scalar()
    rows = conn.execute(sa.select(calls).where(*where)
                        .order_by(calls.c.created_at.desc(), calls.c.id)
                        .limit(limit).offset(offset)).all()
    return {"items": [call_view(r) for r in rows], "total": total, "limit": limit,
            "offset": offset}


# -- extensions --------------------------------------------------------------------------------

def list_extensions(conn) -> list[dict]:
    return [{"extension": r.extension, "manager": r.manager, "provider": r.provider}
            for r in conn.execute(sa.select(extensions).order_by(extensions.c.extension))]


def put_extension(tx, extension: str, data: dict) -> dict:
    values = {"manager": data["manager"], "provider": data.get("provider"),
              "updated_at": utcnow()}
    if not tx.execute(extensions.update().where(extensions.c.extension == extension)
                      .values(**values)).rowcount:
        tx.execute(extensions.insert().values(extension=extension, **values))
    return {"extension": extension, "manager": values["manager"],
            "provider": values["provider"]}


def delete_extension(tx, extension: str) -> None:
    if not tx.execute(extensions.delete().where(extensions.c.extension == extension)).rowcount:
        raise NotFound(f"no extension {extension!r}")


def seating(conn) -> dict[str, dict]:
    """Every extension with its manager and provider, by extension."""
    return {r.extension: {"extension": r.extension, "manager": r.manager,
                          "provider": r.provider}
            for r in conn.execute(sa.select(extensions.c.extension, extensions.c.manager,
                                            extensions.c.provider))}


def managers_of(seats: dict[str, dict], exts) -> dict[str, str]:
    """The managers of the extensions ``exts`` that have one (``seats``: see ``seating``)."""
    return {e: seats[e]["manager"] for e in exts if e in seats}


def seat(seats: dict[str, dict], *, extension: str | None = None,
         manager: str | None = None) -> dict | None:
    """An extension with its manager and provider: this extension, or the manager's first."""
    if extension is not None:
        return seats.get(extension)
    mine = sorted(e for e, s in seats.items() if s["manager"] == manager)
    return seats[mine[0]] if mine else None


# -- recordings --------------------------------------------------------------------------------

def recording_key(call_id: str) -> str:
    return f"call-{call_id}"


def attach_recording(tx, call_id: str, stored) -> dict:
    """Record the stored file of a call's recording and announce it (recording_ready)."""
    tx.execute(calls.update().where(calls.c.id == call_id).values(
        recording_key=stored.key, recording_content_type=stored.content_type,
        recording_size=stored.size, updated_at=utcnow()))
    call = load_call(tx.conn, call_id)
    tx.emit(ev.RECORDING_READY, new_event(CallEventSchema, call=call))
    return call


def recording_file(conn, call_id: str) -> dict:
    row = conn.execute(sa.select(calls).where(calls.c.id == call_id)).first()
    if row is None:
        raise NotFound(f"no call {call_id!r}")
    if row.recording_key is None:
        raise NotFound(f"call {call_id} has no recording"
                       + (" yet" if row.recording_ref else ""))
    return {"call_id": row.id, "key": row.recording_key,
            "content_type": row.recording_content_type or "application/octet-stream",
            "size": row.recording_size or 0}


# -- click-to-call -----------------------------------------------------------------------------

def client_number(number: str, region: str) -> str:
    e164 = normalize(number, region).e164
    if e164 is None:
        raise InvalidInput(f"number: {number!r} is not a phone number",
                           {"number": [f"{number!r} is not a phone number"]})
    return e164


def open_dialing(conn, *, provider, extension, manager, client_e164, contact_id, requested_by,
                 line=None) -> dict:
    """The call record of a click-to-call, before the PBX is asked."""
    now = utcnow()
    call_id = new_id()
    return call_view(conn.execute(calls.insert().values(
        id=call_id, provider=provider, call_key=None, direction="outbound", status="dialing",
        client_number=client_e164, client_number_raw=client_e164, line=line,
        extension=extension, manager=manager, contact_id=contact_id, created_at=now,
        legs={}, announced=[], command_id=call_id, requested_by=requested_by, updated_at=now)
        .returning(*calls.c)).one())


def fail_dialing(conn, call_id: str, cause: str) -> None:
    """A click-to-call the PBX refused: closed at once, not left dialing."""
    conn.execute(calls.update().where(calls.c.id == call_id, calls.c.status == "dialing").values(
        status="finished", outcome="failed", cause=cause[:300], ended_at=utcnow(),
        duration_s=0, updated_at=utcnow()))


def _close_unreported(tx, status: str, older_than: dt.datetime, now: dt.datetime,
                      **values) -> list[dict]:
    ids = [r.id for r in tx.execute(sa.select(calls.c.id).where(
        calls.c.status == status, calls.c.updated_at < older_than).limit(100))]
    closed = []
    for call_id in ids:
        if tx.execute(calls.update().where(calls.c.id == call_id, calls.c.status == status)
                      .values(status="finished", ended_at=now, updated_at=now, **values)).rowcount:
            call = load_call(tx.conn, call_id)
            tx.emit(ev.CALL_FINISHED if call["outcome"] == "answered" else ev.CALL_MISSED,
                    new_event(CallEventSchema, call=call))
            closed.append(call)
    return closed


def close_unreported_calls(tx, now: dt.datetime | None = None) -> list[dict]:
    """Close the calls the PBX stopped reporting on, so none stays open for ever and each still
    reaches the card: a click-to-call never reported (failed), a call whose end never came
    (missed if it only rang, answered if it was answered, its talk time unknown)."""
    now = now or utcnow()
    return [
        *_close_unreported(tx, "dialing", now - DIALING_TIMEOUT, now, outcome="failed",
                           duration_s=0, cause="the PBX never reported the call"),
        *_close_unreported(tx, "ringing", now - UNREPORTED_END, now, outcome="missed",
                           duration_s=0, cause="the PBX never reported the end"),
        *_close_unreported(tx, "answered", now - UNREPORTED_END, now, outcome="answered",
                           cause="the PBX never reported the end"),
    ]
