"""The call log's rules on both database backends: signals folded into one call per provider
call key, duplicated and out-of-order vendor events, the events each transition publishes,
click-to-call records and their adoption by the PBX's first event."""
import datetime as dt
import json

import pytest
import sqlalchemy as sa
from nameko.testing.services import worker_factory

from crmhub.contracts.base import instance
from crmhub.contracts.calls import CallSignalSchema
from crmhub.plugins.calls import call_signal
from crmhub.runtime.db import ServiceDatabase, make_engine, utcnow
from crmhub.runtime.handlers import Delivery
from crmhub.services.telephony import folding, logic
from crmhub.services.telephony.dependencies import SeatingChart
from crmhub.services.telephony.models import calls, metadata, outbox
from crmhub.services.telephony.service import TelephonyService
from support import Cards

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.timezone.utc)
CLIENT = "79161234567"
LINE = "74951234567"
MANAGERS = {"101": "olga", "102": "pavel"}


@pytest.fixture
def db(migrated_database):
    engine = make_engine(migrated_database("telephony"), "telephony")
    yield ServiceDatabase(engine, metadata, "telephony")
    engine.dispose()


def signal(kind, seconds=0, call_key="E1", event=None, **fields):
    fields.setdefault("direction", "inbound")
    fields.setdefault("client_number", CLIENT)
    fields.setdefault("line", LINE)
    _, payload = call_signal(provider="mango", event_key=event or f"{call_key}:{kind}:{seconds}",
                             call_key=call_key, kind=kind, at=T0 + dt.timedelta(seconds=seconds),
                             **fields)
    return instance(CallSignalSchema).load(payload)


def fold(db, sig, caller=None):
    with db.transaction() as tx:
        return folding.fold_signal(tx, sig, region="RU", ext_managers=MANAGERS, caller=caller)


def published(db) -> list[tuple[str, dict]]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    return [(r.event_type, json.loads(r.payload)) for r in rows]


def test_an_answered_incoming_call_publishes_each_transition_once(db):
    fold(db, signal("ringing", 0))  # at the IVR: no extension rings yet, no popup
    fold(db, signal("ringing", 2, extension="101", leg_id="L1", sequence=2))
    fold(db, signal("answered", 9, extension="101", leg_id="L1", sequence=3))
    fold(db, signal("leg_ended", 70, extension="101", leg_id="L1", sequence=4, cause="1110"))
    done = fold(db, signal("finished", 71, outcome="answered", final=True, extension="101",
                           started_at=T0, answered_at=T0 + dt.timedelta(seconds=9),
                           ended_at=T0 + dt.timedelta(seconds=70)))
    assert [e for e, _ in published(db)] == ["call_ringing", "call_answered", "call_finished"]
    call = done.call
    assert (call["status"], call["outcome"], call["direction"], call["duration_s"]) == (
        "finished", "answered", "inbound", 61)
    assert (call["client_number"], call["client_number_raw"], call["extension"],
            call["manager"]) == ("+79161234567", CLIENT, "101", "olga")
    [ringing] = [p for e, p in published(db) if e == "call_ringing"]
    assert (ringing["extensions"], ringing["managers"]) == (["101"], ["olga"])
    assert ringing["caller"]["known"] is False  # no card summary was given: unknown number


def test_each_ringing_extension_gets_one_popup_and_a_missed_call_is_missed(db):
    caller = {"contact_id": "c1", "known": True, "name": "Анна", "company": None,
              "manager": "olga", "number": "+79161234567", "open_deals": [],
              "last_interactions": []}
    fold(db, signal("ringing", 1, extension="101", leg_id="L1", sequence=1), caller)
    fold(db, signal("ringing", 1, extension="101", leg_id="L1", sequence=1, event="dup"), caller)
    fold(db, signal("ringing", 3, extension="102", leg_id="L2", sequence=2), caller)
    fold(db, signal("finished", 30, outcome="missed", cause="1110 caller hung up"))
    kinds = [(e, p.get("extensions")) for e, p in published(db)]
    assert kinds == [("call_ringing", ["101"]), ("call_ringing", ["102"]), ("call_missed", None)]
    missed = published(db)[-1][1]["call"]
    assert (missed["outcome"], missed["duration_s"], missed["contact_id"], missed["cause"]) == (
        "missed", 0, "c1", "1110 caller hung up")
    assert published(db)[0][1]["caller"]["name"] == "Анна"


def test_events_out_of_order_never_take_a_finished_call_back(db):
    fold(db, signal("finished", 60, outcome="answered", answered_at=T0 + dt.timedelta(seconds=5),
                    extension="101"))
    fold(db, signal("ringing", 1, extension="101", leg_id="L1", sequence=1))
    fold(db, signal("answered", 5, extension="101", leg_id="L1", sequence=2))
    assert [e for e, _ in published(db)] == ["call_finished"]
    with db.connect() as conn:
        [row] = conn.execute(sa.select(calls)).all()
    assert (row.status, row.outcome) == ("finished", "answered")


def test_a_stale_sequence_on_a_leg_is_ignored(db):
    fold(db, signal("answered", 5, extension="101", leg_id="L1", sequence=5))
    stale = fold(db, signal("ringing", 2, extension="102", leg_id="L1", sequence=3))
    assert stale.stale and stale.events == []
    assert stale.call["status"] == "answered"


def test_the_vendor_summary_corrects_the_end_once_without_a_second_event(db):
    fold(db, signal("answered", 5, extension="101"))
    fold(db, signal("finished", 65, outcome="answered"))
    corrected = fold(db, signal("finished", 80, outcome="answered", final=True, duration_s=42,
                                ended_at=T0 + dt.timedelta(seconds=47)))
    again = fold(db, signal("finished", 90, outcome="missed", final=True))
    assert [e for e, _ in published(db)] == ["call_answered", "call_finished"]
    assert corrected.call["duration_s"] == 42
    assert again.call["outcome"] == "answered"  # a second summary changes nothing


def test_a_transfer_moves_the_call_to_the_new_extension(db):
    fold(db, signal("answered", 5, extension="101", leg_id="L1", sequence=3))
    fold(db, signal("answered", 30, extension="102", leg_id="L2", sequence=6))
    done = fold(db, signal("finished", 90, outcome="answered"))
    assert (done.call["extension"], done.call["manager"]) == ("102", "pavel")
    assert {leg["leg_id"]: leg["extension"] for leg in done.call["legs"]} == {
        "L1": "101", "L2": "102"}


def test_a_click_to_call_is_adopted_by_its_command_id_or_by_extension_and_number(db):
    with db.transaction() as tx:
        by_command = logic.open_dialing(tx, provider="mango", extension="101", manager="olga",
                                        client_e164="+79161234567", contact_id="c1",
                                        requested_by="olga")
        by_match = logic.open_dialing(tx, provider="mango", extension="102", manager="pavel",
                                      client_e164="+79035550011", contact_id="c2",
                                      requested_by="pavel")
    first = fold(db, signal("ringing", 1, call_key="E7", direction="outbound", extension="101",
                            command_id=by_command["command_id"]))
    second = fold(db, signal("ringing", 1, call_key="E8", direction="outbound", extension="102",
                             client_number="89035550011"))
    assert (first.call["id"], first.call["call_key"], first.call["contact_id"]) == (
        by_command["id"], "E7", "c1")
    assert (second.call["id"], second.call["requested_by"]) == (by_match["id"], "pavel")
    assert published(db) == []  # ringing of an outgoing call shows no popup


def test_a_refused_or_never_reported_click_to_call_is_closed_as_failed(db):
    with db.transaction() as tx:
        refused = logic.open_dialing(tx, provider="mango", extension="101", manager="olga",
                                     client_e164="+79161234567", contact_id=None,
                                     requested_by="olga")
        silent = logic.open_dialing(tx, provider="mango", extension="102", manager="pavel",
                                    client_e164="+79035550011", contact_id=None,
                                    requested_by="pavel")
        logic.fail_dialing(tx, refused["id"], "Mango refused the call: 3102 wrong parameter")
    with db.transaction() as tx:
        assert logic.close_unreported_calls(tx, now=utcnow() + dt.timedelta(minutes=1)) == []
        [expired] = logic.close_unreported_calls(tx, now=utcnow() + logic.DIALING_TIMEOUT * 2)
    with db.connect() as conn:
        failed = logic.load_call(conn, refused["id"])
    assert (failed["status"], failed["outcome"], failed["cause"]) == (
        "finished", "failed", "Mango refused the call: 3102 wrong parameter")
    assert (expired["id"], expired["outcome"]) == (silent["id"], "failed")
    assert [e for e, _ in published(db)] == ["call_missed"]


def test_extensions_map_to_managers(db):
    with db.transaction() as tx:
        logic.put_extension(tx, "101", {"manager": "olga", "provider": "mango"})
        logic.put_extension(tx, "101", {"manager": "pavel", "provider": "mango"})
        logic.put_extension(tx, "205", {"manager": "olga", "provider": None})
        logic.put_extension(tx, "100", {"manager": "pavel", "provider": "asterisk"})
    with db.connect() as conn:
        seats = logic.seating(conn)
        assert [e["extension"] for e in logic.list_extensions(conn)] == ["100", "101", "205"]
    assert logic.managers_of(seats, ["101", "205", "999"]) == {"101": "pavel", "205": "olga"}
    assert logic.seat(seats, manager="olga") == {"extension": "205", "manager": "olga",
                                                 "provider": None}
    assert logic.seat(seats, manager="pavel")["extension"] == "100"  # the manager's first
    # An extension's own provider, not its manager's first extension's.
    assert logic.seat(seats, extension="101") == {"extension": "101", "manager": "pavel",
                                                  "provider": "mango"}
    assert logic.seat(seats, extension="999") is None


def test_the_seating_chart_is_read_once_until_it_is_changed_or_too_old(db):
    """A signal batch reads the chart, not the table; a change made through this instance
    shows at once, and one made elsewhere once the chart is older than its age."""
    chart = SeatingChart(max_age=3600)
    assert chart.seats(db) == {}
    with db.transaction() as tx:  # as another telephony instance would
        logic.put_extension(tx, "101", {"manager": "olga", "provider": "mango"})
    assert chart.seats(db) == {}
    chart.changed()
    assert logic.managers_of(chart.seats(db), ["101"]) == {"101": "olga"}
    with db.transaction() as tx:
        logic.put_extension(tx, "101", {"manager": "pavel", "provider": "mango"})
    chart.max_age = 0
    assert logic.managers_of(chart.seats(db), ["101"]) == {"101": "pavel"}


def test_signals_of_a_new_call_arriving_at_once_make_one_call(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no race to lose")
    import eventlet

    sigs = [signal("ringing", i, call_key="E-race", extension=ext, leg_id=f"L{i}", sequence=1)
            for i, ext in enumerate(("101", "102", "101", "102", "101", "102"))]
    pool = eventlet.GreenPool()
    results = list(pool.imap(lambda s: fold(db, s), sigs))
    assert len({r.call["id"] for r in results}) == 1
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(calls)).scalar() == 1
    assert sorted(p["extensions"][0] for e, p in published(db) if e == "call_ringing") == [
        "101", "102"]


def test_calls_whose_end_never_came_are_closed_and_still_reach_the_card(db):
    fold(db, signal("ringing", 1, call_key="E-rang", extension="101"))
    fold(db, signal("answered", 5, call_key="E-talked", extension="102"))
    later = utcnow() + logic.UNREPORTED_END + dt.timedelta(minutes=1)
    with db.transaction() as tx:
        assert logic.close_unreported_calls(tx, now=utcnow() + dt.timedelta(hours=1)) == []
        closed = {c["call_key"]: c for c in logic.close_unreported_calls(tx, now=later)}
    assert (closed["E-rang"]["outcome"], closed["E-talked"]["outcome"]) == ("missed", "answered")
    assert {c["status"] for c in closed.values()} == {"finished"}
    assert [e for e, _ in published(db)][-2:] == ["call_missed", "call_finished"]


def test_a_batch_folds_its_calls_in_the_order_their_signals_came(db):
    items = [folding.Item(signal("ringing", 1, call_key="A", extension="101", leg_id="a1",
                                 sequence=1), request_id="req-a"),
             folding.Item(signal("ringing", 1, call_key="B", extension="102", leg_id="b1",
                                 sequence=1)),
             folding.Item(signal("answered", 4, call_key="A", extension="101", leg_id="a1",
                                 sequence=2)),
             folding.Item(signal("finished", 9, call_key="B", outcome="missed")),
             folding.Item(signal("finished", 40, call_key="A", outcome="answered"))]
    with db.transaction() as tx:
        results = folding.fold_signals(tx, items, region="RU", ext_managers=MANAGERS)
    assert [r.events for r in results] == [["call_ringing"], ["call_ringing"], ["call_answered"],
                                           ["call_missed"], ["call_finished"]]
    assert [(p["call"]["call_key"], e) for e, p in published(db)] == [
        ("A", "call_ringing"), ("B", "call_ringing"), ("A", "call_answered"),
        ("B", "call_missed"), ("A", "call_finished")]
    with db.connect() as conn:
        rows = {r.call_key: r for r in conn.execute(sa.select(calls))}
        request_ids = [json.loads(r.headers).get("request_id")
                       for r in conn.execute(sa.select(outbox).order_by(outbox.c.id))]
    assert (rows["A"].status, rows["A"].duration_s, rows["B"].outcome) == ("finished", 36, "missed")
    assert request_ids[0] == "req-a"


def run_batch(db, cards, signals):
    worker = worker_factory(TelephonyService, db=db, contacts=cards, seating=SeatingChart(0),
                            config={"TELEPHONY": {}})
    worker.on_call_signals([Delivery(instance(CallSignalSchema).dump(s), None) for s in signals])


def test_a_batch_pops_up_its_ringing_extensions_before_folding_its_other_signals(db):
    run_batch(db, Cards(), [signal("ringing", 0, call_key="A", extension="101")])
    run_batch(db, Cards(), [signal("answered", 3, call_key="A", extension="101"),
                            signal("finished", 4, call_key="B", outcome="missed"),
                            signal("ringing", 5, call_key="C", extension="102")])
    assert [(e, p["call"]["call_key"]) for e, p in published(db)] == [
        ("call_ringing", "A"), ("call_ringing", "C"), ("call_answered", "A"),
        ("call_missed", "B")]


def test_a_new_caller_ringing_two_extensions_in_one_batch_is_looked_up_once(db):
    cards = Cards()
    run_batch(db, cards, [signal("ringing", 0, extension="101", leg_id="L1"),
                          signal("ringing", 1, extension="102", leg_id="L2")])
    popups = [p for e, p in published(db) if e == "call_ringing"]
    assert [(p["call"]["extension"], p["caller"]["known"]) for p in popups] == [
        ("101", False), ("102", False)]
    assert len(cards.asked) == 1


def test_a_caller_new_at_the_calls_first_lookup_stays_unknown_in_its_popups(db):
    """The IVR leg's lookup created the card; the extension's lookup, racing it, found the card
    and took it for known: the popup still says "unknown number"."""
    new = {"contact_id": "c1", "known": False, "name": None, "company": None, "manager": None,
           "number": "+79161234567", "open_deals": [], "last_interactions": []}
    fold(db, signal("ringing", 0), caller=new)
    fold(db, signal("ringing", 5, extension="101", leg_id="L2", sequence=1),
         caller={**new, "known": True})
    [popup] = [p for e, p in published(db) if e == "call_ringing"]
    assert popup["caller"]["known"] is False


def test_the_card_is_looked_up_for_popups_and_when_a_call_is_first_seen():
    class Row:
        direction, client_number_raw, status, announced = "inbound", CLIENT, "ringing", ["101"]
        contact_id = "c1"

    need = logic.caller_need
    assert need(signal("ringing", 1, extension="101"), None) == "popup"
    assert need(signal("ringing", 1, extension="101"), Row()) is None  # its popup was shown
    assert need(signal("ringing", 1, extension="102"), Row()) == "popup"
    assert need(signal("ringing", 0), None) is None  # at the IVR: the extension's ringing links it
    assert need(signal("ringing", 0, direction="outbound", extension="101"), None) == "link"
    assert need(signal("finished", 9, outcome="missed"), None) == "link"
    assert need(signal("answered", 5, extension="101"), None) is None
    assert need(signal("ringing", 1, extension="101", direction="internal"), None) is None
    assert need(signal("ringing", 1, extension="101", client_number=None), None) is None
