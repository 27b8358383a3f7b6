"""Calls on client cards: who is calling (the popup's card summary, a new card for an unknown
number) and one timeline entry per finished call, with its recording once stored."""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.errors import NotFound
from crmhub.contracts.phones import normalize
from crmhub.runtime.prepared import PreparedRead
from crmhub.services.contacts import card_deals
from crmhub.services.contacts.logic import (
    add_timeline_entry,
    find_ids_by_phones,
    load_timeline,
    resolve_id,
    upsert_by_identity,
)
from crmhub.services.contacts.models import contact_phones, contacts, timeline

LAST_INTERACTIONS = 5
OPEN_DEALS_SHOWN = 5
DIRECTION_WORDS = {"inbound": "Incoming call", "outbound": "Outgoing call",
                   "internal": "Internal call"}
OUTCOME_WORDS = {"missed": "missed", "busy": "busy", "failed": "failed",
                 "voicemail": "voicemail left"}


# The popup's card: its summary columns, found by a phone it holds (a merge moves phones to the
# live card, so there is no merge chain to follow) or by id.
_CARD = sa.select(contacts.c.id, contacts.c.name, contacts.c.company, contacts.c.manager)
_CARD_BY_PHONE = PreparedRead("caller_card", _CARD.join_from(
    contact_phones, contacts, contacts.c.id == contact_phones.c.contact_id)
    .where(contact_phones.c.e164 == sa.bindparam("e164")))
_CARD_BY_ID = _CARD.where(contacts.c.id == sa.bindparam("id"))


def known_caller(conn, request: dict, region: str) -> dict | None:
    """The card of a calling number as the popup shows it (:class:`CallerSchema`), read
    without writing: None when the number is a phone number with no card
    yet (see ``identify_caller``). A number that is no phone number (an extension, a SIP URI)
    gets no card."""
    phone = normalize(request["number"], region)
    if phone.e164 is None:
        return _caller(request, phone)
    card = _CARD_BY_PHONE.execute(conn, {"e164": phone.e164}).first()
    return None if card is None else _caller(request, phone, conn, card, known=True)


def identify_caller(tx, request: dict, region: str) -> dict:
    """``known_caller``, and with ``create`` an unknown valid number gets a new card whose
    source is the call (channel "call", the connector, and the line as its form: lead rules
    tell lines apart)."""
    caller = known_caller(tx.conn, request, region)
    if caller is not None:
        return caller
    phone = normalize(request["number"], region)
    if not request.get("create"):
        return _caller(request, phone)
    line = request.get("line")
    source = {"channel": "call", "connector": request.get("provider"),
              "form": (normalize(line, region).e164 or line) if line else None,
              "tracking": {}}
    cause = f"call:{request.get('call_id') or phone.e164}"
    contact_id, created = upsert_by_identity(tx, None, None, [request["number"]], [],
                                             source, region, cause)
    card = tx.execute(_CARD_BY_ID, {"id": contact_id}).first()
    return _caller(request, phone, tx.conn, card, known=not created)


def _caller(request: dict, phone, conn=None, card=None, known=False) -> dict:
    """The popup's caller: no card, or ``card`` with (when the request asks for the summary)
    its name, company, manager, open deals and last interactions."""
    caller = {"contact_id": card.id if card else None, "known": known, "name": None,
              "company": None, "manager": None, "number": phone.e164 or request["number"],
              "open_deals": [], "last_interactions": []}
    if card is not None and request.get("summary", True):
        caller.update(name=card.name, company=card.company, manager=card.manager,
                      open_deals=card_deals.open_deals(conn, card.id, OPEN_DEALS_SHOWN),
                      last_interactions=[
                          {"kind": e["kind"], "title": e["title"], "occurred_at": e["occurred_at"]}
                          for e in load_timeline(conn, card.id, LAST_INTERACTIONS)])
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
