"""Calls on client cards, on both database backends: who is calling (an unknown number gets a
card whose source is the call), one timeline entry per call, and its recording added to it."""
import datetime as dt

import pytest
import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, new_event
from crmhub.contracts.calls import CallEventSchema
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.contacts import calls, logic
from crmhub.services.contacts.models import metadata, outbox

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def db(database_config):
    engine = make_engine(database_config, "contacts")
    yield ServiceDatabase(engine, metadata, "contacts")
    engine.dispose()


def identify(db, number, create=True, line="74951234567"):
    with db.transaction() as tx:
        return calls.identify_caller(tx, {"number": number, "create": create,
                                          "provider": "mango", "line": line,
                                          "call_id": "k1"}, "RU")


def call_event(kind, contact_id=None, **call):
    body = {"id": "k1", "provider": "mango", "call_key": "E1", "direction": "inbound",
            "status": "finished", "outcome": "answered", "cause": None,
            "client_number": "+79161234567", "client_number_raw": "79161234567",
            "line": "74951234567", "extension": "101", "manager": "olga",
            "contact_id": contact_id, "created_at": T0, "answered_at": T0,
            "ended_at": T0 + dt.timedelta(seconds=185), "duration_s": 185, "legs": [],
            "recording": None, "command_id": None, "requested_by": None, "updated_at": T0}
    body.update(call)
    return instance(CallEventSchema).load(new_event(CallEventSchema, call=body))


def entries(db, contact_id):
    with db.connect() as conn:
        return [e for e in logic.load_timeline(conn, contact_id) if e["kind"] == "call"]


def test_an_unknown_number_gets_a_card_whose_source_is_the_call(db):
    first = identify(db, "79161234567")
    again = identify(db, "8 (916) 123-45-67")
    assert first["contact_id"] and not first["known"]
    assert (again["contact_id"], again["known"]) == (first["contact_id"], True)
    with db.connect() as conn:
        card = logic.load_contact(conn, first["contact_id"])
        created = [r.event_type for r in conn.execute(sa.select(outbox))]
    assert card["source"] == {"channel": "call", "connector": "mango", "form": "+74951234567",
                              "tracking": {}}
    assert [p["e164"] for p in card["phones"]] == ["+79161234567"]
    assert created.count("contact_created") == 1  # what the lead rules open a deal from


def test_a_known_caller_is_shown_with_name_and_last_interactions(db):
    with db.transaction() as tx:
        card = logic.create_contact(tx, {"name": "Анна", "company": "Ромашка",
                                         "phones": ["+7 916 123-45-67"], "manager": "olga"})
        logic.add_timeline_entry(tx, card["id"], "form_submitted", "Form «Contact us» submitted",
                                 "form:x", occurred_at=T0)
    caller = identify(db, "79161234567", create=False)
    assert (caller["contact_id"], caller["known"], caller["name"], caller["company"],
            caller["manager"]) == (card["id"], True, "Анна", "Ромашка", "olga")
    assert "Form «Contact us» submitted" in [i["title"] for i in caller["last_interactions"]]


def test_a_known_caller_is_read_without_writing_and_an_unknown_one_is_left_to_create(db):
    with db.transaction() as tx:
        card = logic.create_contact(tx, {"name": "Анна", "phones": ["+7 916 123-45-67"]})
    request = {"number": "8 916 123 45 67", "create": True, "provider": "mango"}
    with db.connect() as conn:
        known = calls.known_caller(conn, request, "RU")
        unknown = calls.known_caller(conn, {**request, "number": "79035550011"}, "RU")
        extension = calls.known_caller(conn, {**request, "number": "101"}, "RU")
    assert (known["contact_id"], known["known"], known["name"]) == (card["id"], True, "Анна")
    assert unknown is None  # identify_caller creates the card, in a transaction
    with db.connect() as conn:
        assert logic.find_ids_by_phones(conn, ["+79035550011"]) == []
    assert (extension["contact_id"], extension["number"]) == (None, "101")


def test_numbers_that_are_no_phone_numbers_get_no_card(db):
    for number in ("sip:user1@vpbx400.mangosip.ru", "101", "anonymous"):
        caller = identify(db, number)
        assert (caller["contact_id"], caller["known"], caller["number"]) == (None, False, number)
    assert identify(db, "79035550011", create=False)["contact_id"] is None


def test_a_finished_call_is_one_entry_with_its_recording_added_later(db):
    contact_id = identify(db, "79161234567")["contact_id"]
    with db.transaction() as tx:
        calls.add_call_entry(tx, ev.CALL_FINISHED, call_event(ev.CALL_FINISHED, contact_id))
        calls.add_call_entry(tx, ev.CALL_FINISHED, call_event(ev.CALL_FINISHED, contact_id))
    [entry] = entries(db, contact_id)
    assert entry["title"] == "Incoming call, 3:05, olga"
    assert (entry["data"]["duration_s"], entry["data"]["recording_url"]) == (185, None)
    recorded = call_event(ev.RECORDING_READY, contact_id, recording={
        "ref": "R1", "stored": True, "content_type": "audio/mpeg", "size": 3000,
        "url": "/api/v1/calls/k1/recording"})
    with db.transaction() as tx:
        calls.add_call_entry(tx, ev.RECORDING_READY, recorded)
    [entry] = entries(db, contact_id)
    assert entry["data"]["recording_url"] == "/api/v1/calls/k1/recording"


def test_a_recording_before_the_end_event_writes_the_entry_once(db):
    contact_id = identify(db, "79161234567")["contact_id"]
    recording = {"ref": "R1", "stored": True, "content_type": "audio/mpeg", "size": 3000,
                 "url": "/api/v1/calls/k1/recording"}
    with db.transaction() as tx:
        calls.add_call_entry(tx, ev.RECORDING_READY,
                             call_event(ev.RECORDING_READY, contact_id, recording=recording))
        calls.add_call_entry(tx, ev.CALL_FINISHED, call_event(ev.CALL_FINISHED, contact_id))
    [entry] = entries(db, contact_id)
    assert entry["data"]["recording_url"] == recording["url"]


def test_a_missed_call_of_a_merged_card_lands_on_the_surviving_card(db):
    contact_id = identify(db, "79161234567")["contact_id"]
    with db.transaction() as tx:
        target = logic.create_contact(tx, {"name": "Анна", "emails": ["anna@example.com"]})
        logic.merge_contacts(tx, contact_id, target["id"])
        calls.add_call_entry(tx, ev.CALL_MISSED, call_event(
            ev.CALL_MISSED, contact_id, outcome="missed", duration_s=0, answered_at=None))
    [entry] = entries(db, target["id"])
    assert entry["title"] == "Incoming call: missed"


def test_linking_a_call_to_its_card_skips_the_summary(db):
    with db.transaction() as tx:
        card = logic.create_contact(tx, {"name": "Анна", "phones": ["+7 916 123-45-67"]})
        linked = calls.identify_caller(tx, {"number": "79161234567", "create": True,
                                            "provider": "mango", "summary": False}, "RU")
    assert (linked["contact_id"], linked["known"], linked["name"]) == (card["id"], True, None)
    assert identify(db, "79161234567")["name"] == "Анна"  # the popup's lookup has it


def test_the_number_of_a_merged_card_identifies_the_card_it_was_merged_into(db):
    first = identify(db, "79161234567")["contact_id"]
    with db.transaction() as tx:
        target = logic.create_contact(tx, {"name": "Анна", "emails": ["anna@example.com"]})
        logic.merge_contacts(tx, first, target["id"])
    caller = identify(db, "8 916 123 45 67")
    assert (caller["contact_id"], caller["known"], caller["name"]) == (target["id"], True, "Анна")
