"""Calls on client cards: who is calling (the popup's card summary, a new card for an unknown
number) and one timeline entry per finished call, with its recording once stored."""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.errors import NotFound
from crmhub.contracts.phones import normalize
from crmhub.services.contacts.logic import (
    add_timeline_entry,
    find_ids_by_phones,
    load_contacts,
    load_timeline,
    resolve_id,
    upsert_by_identity,
)
from crmhub.services.contacts.models import timeline

LAST_INTERACTIONS = 5
DIRECTION_WORDS = {"inbound": "Incoming call", "outbound": "Outgoing call",
                   "internal": "Internal call"}
OUTCOME_WORDS = {"missed": "missed", "busy": "busy", "failed": "failed",
                 "voicemail": "voicemail left"}


def identify_caller(tx, request: dict, region: str) -> dict:
    """The card of a calling number as the popup shows it (:class:`CallerSchema`, without
    open deals); with ``create``, an unknown valid number gets a new card whose source is the
    call (channel "call", the connector, and the line as its form: lead rules tell lines
    apart). A number that is no phone number (an extension, a SIP URI) gets no card."""
    phone = normalize(request["number"], region)
    caller = {"contact_id": None, "known": False, "name": None, "company": None,
              "manager": None, "number": phone.e164 or request["number"], "open_deals": [],
              "last_interactions": []}
    if phone.e164 is None:
        return caller
    ids = find_ids_by_phones(tx.conn, [phone.e164])
    if ids:
        # A phone belongs to a live card (a merge moves it): no merge chain to follow.
        contact_id, known = ids[0], True
    elif request.get("create"):
        line = request.get("line")
        source = {"channel": "call", "connector": request.get("provider"),
                  "form": (normalize(line, region).e164 or line) if line else None,
                  "tracking": {}}
        cause = f"call:{request.get('call_id') or phone.e164}"
        contact_id, created = upsert_by_identity(tx, None, None, [request["number"]], [],
                                                 source, region, cause)
        known = not created
    else:
        return caller
    caller.update(contact_id=contact_id, known=known)
    if not request.get("summary", True):
        return caller
    [contact] = load_contacts(tx.conn, [contact_id])
    caller.update(contact_id=contact["id"], known=known, name=contact["name"],
                  company=contact["company"], manager=contact["manager"],
                  last_interactions=[
                      {"kind": e["kind"], "title": e["title"], "occurred_at": e["occurred_at"]}
                      for e in load_timeline(tx.conn, contact["id"], LAST_INTERACTIONS)])
    return caller


def _minutes(seconds: int | None) -> str:
    seconds = seconds or 0
    return f"{seconds // 60}:{seconds % 60:02d}"


def call_title(call: dict) -> str:
    title = DIRECTION_WORDS.get(call.get("direction") or "", "Call")
    if call.get("outcome") == "answered":
        title += f", {_minutes(call.get('duration_s'))}"
        if call.get("manager") or call.get("extension"):
            title += f", {call.get('manager') or 'extension ' + call['extension']}"
        return title
    return f"{title}: {OUTCOME_WORDS.get(call.get('outcome') or '', call.get('outcome') or '')}"


def call_entry_data(call: dict) -> dict:
    recording = call.get("recording") or {}
    return {"call_id": call["id"], "provider": call["provider"],
            "direction": call.get("direction"), "outcome": call.get("outcome"),
            "cause": call.get("cause"), "duration_s": call.get("duration_s"),
            "manager": call.get("manager"), "extension": call.get("extension"),
            "line": call.get("line"), "client_number": call.get("client_number"),
            "answered_at": call["answered_at"].isoformat() if call.get("answered_at") else None,
            "recording_url": recording.get("url") if recording.get("stored") else None}


def _card_of(tx, call: dict) -> str | None:
    """The card a call belongs to: its linked card (or the one it was merged into), else the
    card of its number."""
    if call.get("contact_id"):
        try:
            return resolve_id(tx.conn, call["contact_id"])
        except NotFound:
            pass
    ids = find_ids_by_phones(tx.conn, [call.get("client_number")])
    return ids[0] if ids else None


def add_call_entry(tx, kind: str, event: dict) -> dict | None:
    """call_finished / call_missed: the call's entry on the card (one per call); recording_ready:
    the entry gains its player (or is written now, if the recording came first)."""
    call = event["call"]
    source_key = f"call:{call['id']}"
    if kind == ev.RECORDING_READY and call.get("status") != "finished":
        return None  # its call_finished / call_missed writes the entry, with the recording
    contact_id = _card_of(tx, call)
    if contact_id is None:
        return None  # an internal call or a number that is no phone: no card to write on
    entry = add_timeline_entry(tx, contact_id, "call", call_title(call), source_key,
                               occurred_at=call.get("ended_at") or call["created_at"],
                               data=call_entry_data(call))
    if entry is None and kind == ev.RECORDING_READY:
        # The entry was there (or its call_finished committed meanwhile: the insert waited
        # for it): it gains the player.
        existing = tx.execute(sa.select(timeline.c.id, timeline.c.data)
                              .where(timeline.c.source_key == source_key)).first()
        data = {**(existing.data or {}), "recording_url": call_entry_data(call)["recording_url"]}
        tx.execute(timeline.update().where(timeline.c.id == existing.id).values(data=data))
    return entry
