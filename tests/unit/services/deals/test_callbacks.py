"""Missed incoming calls become call-back tasks, on both database backends: for the client's
manager, else their open deal's, else the line's queue; once per call."""
import datetime as dt

import pytest

from crmhub.contracts.base import instance, new_event
from crmhub.contracts.calls import CallEventSchema
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.deals import callbacks, logic
from crmhub.services.deals.models import metadata

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
SETTINGS = {"lines": {"+74951234567": {"queue": "sales-queue"}}, "callback_due_minutes": 10}


@pytest.fixture
def db(migrated_database):
    engine = make_engine(migrated_database("deals"), "deals")
    yield ServiceDatabase(engine, metadata, "deals")
    engine.dispose()


def missed(call_id="k1", contact_id="c1", **call):
    body = {"id": call_id, "provider": "mango", "call_key": call_id, "direction": "inbound",
            "status": "finished", "outcome": "missed", "cause": None,
            "client_number": "+79161234567", "client_number_raw": "79161234567",
            "line": "+74951234567", "extension": "101", "manager": "olga",
            "contact_id": contact_id, "created_at": T0, "answered_at": None, "ended_at": T0,
            "duration_s": 0, "legs": [], "recording": None, "command_id": None,
            "requested_by": None, "updated_at": T0}
    body.update(call)
    return instance(CallEventSchema).load(new_event(CallEventSchema, call=body))


def callback(db, event, card_manager=None):
    with db.transaction() as tx:
        return callbacks.create_callback_task(tx, event, card_manager, SETTINGS, now=T0)


def test_the_card_manager_calls_back_once_per_missed_call(db):
    task = callback(db, missed(), card_manager="pavel")
    assert callback(db, missed(), card_manager="pavel") is None  # redelivered
    assert (task["manager"], task["contact_id"], task["title"]) == (
        "pavel", "c1", "Call back: missed call from +79161234567")
    assert task["due_at"] == T0 + dt.timedelta(minutes=10)


def test_without_a_card_manager_the_open_deal_then_the_line_queue_calls_back(db):
    assert callback(db, missed("k1"))["manager"] == "sales-queue"
    with db.transaction() as tx:
        logic.load_template(tx, "b2b-sales")
        logic.put_manager(tx, "irina", {"name": "Ирина", "role": "manager", "email": None,
                                        "active": True})
        deal = logic.create_deal(tx, {"contact_id": "c1", "pipeline_id": "b2b-sales",
                                      "title": "Поставка", "manager": "irina"})
    task = callback(db, missed("k2"))
    assert (task["manager"], task["deal_id"]) == ("irina", deal["id"])
    assert callback(db, missed("k3", contact_id="c9", line="+70000000000"))["manager"] == "olga"


def test_outgoing_calls_and_callers_without_a_card_get_no_task(db):
    assert callback(db, missed("k1", direction="outbound")) is None
    assert callback(db, missed("k2", contact_id=None)) is None
