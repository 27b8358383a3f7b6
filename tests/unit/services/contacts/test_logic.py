"""Card rules on both database backends: dedupe, merge, search, timeline, outbox events."""
import datetime as dt
import json
import uuid

import eventlet
import pytest
import sqlalchemy as sa

from crmhub.contracts.base import new_event
from crmhub.contracts.errors import Conflict, InvalidInput, NotFound
from crmhub.contracts.events import spec
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.services.contacts import logic
from crmhub.services.contacts.models import metadata, outbox


@pytest.fixture
def db(database_config):
    engine = make_engine(database_config, "contacts")
    yield ServiceDatabase(engine, metadata, "contacts")
    engine.dispose()


def form_event(phone=None, email=None, name="Анна", key=None, form="contact-us", **extra):
    contact = {"name": name, "phones": [phone] if phone else [], "emails": [email] if email else []}
    return FormSubmittedSchema().load(new_event(
        FormSubmittedSchema, idempotency_key=key or f"forms:{uuid.uuid4().hex}",
        connector="forms", form=form, form_name="Contact us", contact=contact,
        message=extra.get("message"), fields=extra.get("fields", {}),
        tracking=extra.get("tracking", {}), received_at=dt.datetime.now(dt.timezone.utc)))


def ingest(db, event):
    with db.transaction() as tx:
        return logic.ingest_form(tx, event)


def card(db, contact_id):
    with db.connect() as conn:
        return logic.load_card(conn, contact_id)


def test_one_number_however_written(db):
    first = ingest(db, form_event(phone="8 (916) 123-45-67"))
    assert first["created"]
    for written in ("+7 916 1234567", "79161234567", "9161234567"):
        again = ingest(db, form_event(phone=written))
        assert again == {"contact_id": first["contact_id"], "created": False}
    with db.connect() as conn:
        found = logic.search(conn, phone="+7 (916) 123 45 67")
    assert [c["id"] for c in found["items"]] == [first["contact_id"]]
    assert len(card(db, first["contact_id"])["timeline"]) == 4


def test_redelivered_submission_has_no_second_effect(db):
    event = form_event(phone="+79990001122", key="tilda:12345")
    assert ingest(db, event)["created"]
    assert ingest(db, event) is None
    # The same provider id with a new event id (a webhook retried by the provider).
    assert ingest(db, form_event(phone="+79990001122", key="tilda:12345")) is None
    with db.connect() as conn:
        cards = logic.search(conn)
    assert cards["total"] == 1
    timeline = card(db, cards["items"][0]["id"])["timeline"]
    assert [e["kind"] for e in timeline] == ["form_submitted"]


def test_dedupe_by_email_when_no_phone_matches(db):
    first = ingest(db, form_event(email="Client@Example.com"))
    second = ingest(db, form_event(email="client@example.com", phone="+79161112233"))
    assert second["contact_id"] == first["contact_id"]
    got = card(db, first["contact_id"])
    assert got["emails"] == ["client@example.com"]
    assert [p["e164"] for p in got["phones"]] == ["+79161112233"]


def test_form_entry_keeps_form_fields_and_utm(db):
    event = form_event(phone="+79161234567", message="Call me", fields={"tel": "+79161234567"},
                       tracking={"utm_source": "yandex", "utm_campaign": "spring", "yclid": "42"})
    cid = ingest(db, event)["contact_id"]
    got = card(db, cid)
    entry = got["timeline"][0]
    assert entry["title"] == "Form «Contact us» submitted"
    assert entry["data"]["tracking"]["utm_campaign"] == "spring"
    assert entry["data"]["message"] == "Call me"
    assert got["source"]["tracking"]["utm_source"] == "yandex"
    assert got["source"]["form"] == "contact-us"


def test_concurrent_submissions_with_one_phone_make_one_card(db):
    events = [form_event(phone="+7 903 555-00-11" if i % 2 else "89035550011") for i in range(20)]
    results = [r for r in eventlet.GreenPool(20).imap(lambda e: ingest(db, e), events)]
    ids = {r["contact_id"] for r in results}
    assert len(ids) == 1
    assert sum(r["created"] for r in results) == 1
    assert len(card(db, ids.pop())["timeline"]) == 20
    with db.connect() as conn:
        assert logic.search(conn)["total"] == 1


def test_merge_moves_everything_and_the_old_id_keeps_resolving(db):
    a = ingest(db, form_event(phone="+79161230001", name="Пётр"))["contact_id"]
    b = ingest(db, form_event(phone="+79161230002", email="p@example.com", name=None))["contact_id"]
    with db.transaction() as tx:
        merged = logic.merge_contacts(tx, source_id=a, target_id=b)
    assert merged["id"] == b
    assert merged["name"] == "Пётр"  # filled from the source, the target had none
    assert {p["e164"] for p in merged["phones"]} == {"+79161230001", "+79161230002"}
    assert card(db, a)["id"] == b
    assert card(db, a)["merged_ids"] == [a]
    kinds = [e["kind"] for e in card(db, b)["timeline"]]
    assert kinds.count("form_submitted") == 2 and "contacts_merged" in kinds
    # A form with the old card's phone now lands on the surviving card.
    assert ingest(db, form_event(phone="+79161230001"))["contact_id"] == b
    with db.connect() as conn:
        assert [c["id"] for c in logic.search(conn)["items"]] == [b]
    with db.transaction() as tx:  # merging again changes nothing
        assert logic.merge_contacts(tx, a, b)["id"] == b
    with pytest.raises(InvalidInput), db.transaction() as tx:
        logic.merge_contacts(tx, b, b)


def test_a_lookup_by_number_reads_the_whole_card_as_the_card_by_id_does(db):
    """The lookup by number reads a card with its parts in one query: several phones and
    emails, and ids merged into it, come out as loading the card by id gives them."""
    a = ingest(db, form_event(phone="+79161230001", email="a@example.com"))["contact_id"]
    b = ingest(db, form_event(phone="+79161230002", email="b@example.com"))["contact_id"]
    ingest(db, form_event(phone="+79161230003", name="Другой"))
    with db.transaction() as tx:
        logic.merge_contacts(tx, source_id=a, target_id=b)
    with db.connect() as conn:
        for written in ("8 916 123-00-01", "+79161230002", "89161230002", "+7 916 123 00 02"):
            found = logic.search(conn, phone=written)
            assert found["items"] == logic.load_contacts(conn, [b]), written
        card_b = found["items"][0]
        assert [p["e164"] for p in card_b["phones"]] == ["+79161230002", "+79161230001"]
        assert sorted(card_b["emails"]) == ["a@example.com", "b@example.com"]
        assert card_b["merged_ids"] == [a]
        assert logic.search(conn, phone="+79161230009")["items"] == []


def test_phone_lookup_pages_and_combines_with_a_substring(db):
    cid = ingest(db, form_event(phone="+79161234567", name="Ольга"))["contact_id"]
    ingest(db, form_event(phone="+79260000000", name="Ольга тоже"))
    with db.connect() as conn:
        first = logic.search(conn, phone="8 916 123-45-67", limit=1)
        assert ([c["id"] for c in first["items"]], first["total"]) == ([cid], 1)
        assert first["items"][0]["phones"][0]["e164"] == "+79161234567"
        second = logic.search(conn, phone="8 916 123-45-67", limit=1, offset=1)
        assert (second["items"], second["total"]) == ([], 1)
        assert logic.search(conn, phone="+79000000000")["total"] == 0
        assert [c["id"] for c in logic.search(conn, phone="89161234567", q="ольга")["items"]] == [cid]
        assert logic.search(conn, phone="89161234567", q="тоже")["total"] == 0


def test_search_by_substring_of_name_phone_and_email(db):
    cid = ingest(db, form_event(phone="+79161234567", email="olga.smirnova@mail.ru",
                                name="Ольга Смирнова"))["contact_id"]
    ingest(db, form_event(phone="+79260000000", name="Someone Else"))
    with db.connect() as conn:
        for q in ("смирн", "ОЛЬГА", "smirnova@", "123-45", "916 123", "+7 916"):
            assert [c["id"] for c in logic.search(conn, q=q)["items"]] == [cid], q
        assert logic.search(conn, q="nobody here")["total"] == 0
        assert logic.search(conn, q="%")["total"] == 0
        with pytest.raises(InvalidInput):
            logic.search(conn, phone="not a phone")


def test_api_create_refuses_a_phone_of_another_card(db):
    with db.transaction() as tx:
        first = logic.create_contact(tx, {"name": "A", "phones": ["+79161234567"]})
    with pytest.raises(Conflict) as err, db.transaction() as tx:
        logic.create_contact(tx, {"name": "B", "phones": ["8 916 123 45 67"]})
    assert err.value.details == {"contact_id": first["id"]}
    with db.transaction() as tx:
        second = logic.create_contact(tx, {"name": "B", "phones": ["+79160000000"]})
    with pytest.raises(Conflict), db.transaction() as tx:
        logic.update_contact(tx, second["id"], {"phones": ["+79161234567"]})
    assert card(db, second["id"])["phones"][0]["e164"] == "+79160000000"  # rolled back


def test_update_changes_only_given_fields(db):
    with db.transaction() as tx:
        cid = logic.create_contact(tx, {"name": "A", "phones": ["+79161234567"], "tags": ["vip"]})["id"]
    with db.transaction() as tx:
        logic.update_contact(tx, cid, {"manager": "olga", "custom_fields": {"inn": "7700000000"}})
    got = card(db, cid)
    assert (got["name"], got["manager"], got["tags"]) == ("A", "olga", ["vip"])
    assert got["custom_fields"] == {"inn": "7700000000"}
    with pytest.raises(NotFound), db.connect() as conn:
        logic.load_card(conn, "missing")


def test_every_change_is_an_outbox_event_that_honours_its_contract(db):
    ingest(db, form_event(phone="+79161234567"))
    with db.connect() as conn:
        rows = conn.execute(sa.select(outbox.c.event_type, outbox.c.payload)
                            .order_by(outbox.c.id)).all()
    assert [r.event_type for r in rows] == ["contact_created", "timeline_entry_added"]
    for row in rows:
        spec(row.event_type).schema().load(json.loads(row.payload))


def test_a_rolled_back_change_publishes_nothing(db):
    with pytest.raises(RuntimeError), db.transaction() as tx:
        logic.ingest_form(tx, form_event(phone="+79161234567"))
        raise RuntimeError("crash before commit")
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() == 0
        assert logic.search(conn)["total"] == 0


def ingest_batch(db, events):
    with db.transaction() as tx:
        return logic.ingest_forms(tx, [(e, f"req-{i}") for i, e in enumerate(events)])


def test_a_batch_dedupes_within_itself_and_against_stored_cards(db):
    known = ingest(db, form_event(phone="+79160000001", name=None))["contact_id"]
    batch = [
        form_event(phone="8 916 000-00-01", name="Known now named"),   # existing card
        form_event(phone="+7 903 111-22-33", name="New"),              # new card
        form_event(phone="79031112233", email="new@example.com"),      # same new card
        form_event(email="NEW@example.com"),                           # same, by email
        form_event(phone="+79035550000", email="other@example.com", name="Other"),
    ]
    batch.append(batch[1])  # the same submission twice in one batch
    results = ingest_batch(db, batch)
    assert len(results) == 5
    assert results[0] == {"contact_id": known, "created": False}
    assert results[1]["created"] and not results[2]["created"] and not results[3]["created"]
    assert results[1]["contact_id"] == results[2]["contact_id"] == results[3]["contact_id"]
    assert results[4]["created"] and results[4]["contact_id"] != results[1]["contact_id"]
    assert card(db, known)["name"] == "Known now named"
    new = card(db, results[1]["contact_id"])
    assert [p["e164"] for p in new["phones"]] == ["+79031112233"]
    assert new["emails"] == ["new@example.com"]
    assert len(new["timeline"]) == 3
    with db.connect() as conn:
        assert logic.search(conn)["total"] == 3
        assert logic.search(conn, q="named")["items"][0]["id"] == known
    assert ingest_batch(db, batch) == []  # redelivered batch: nothing happens


def test_a_batch_emits_the_same_contract_events_as_single_ingest(db):
    ingest_batch(db, [form_event(phone="+79161234567"), form_event(phone="+79161234568")])
    with db.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    assert sorted(r.event_type for r in rows) == ["contact_created"] * 2 + ["timeline_entry_added"] * 2
    for row in rows:
        event = spec(row.event_type).schema().load(json.loads(row.payload))
        # Every event carries the request id of the submission behind it.
        phone = (event["contact"]["phones"][0]["e164"] if "contact" in event
                 else event["entry"]["data"]["contact"]["phones"][0])
        expected = "req-0" if phone.endswith("4567") else "req-1"
        assert json.loads(row.headers)["request_id"] == expected


def test_a_batch_that_loses_a_race_for_a_phone_reports_it(db):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers: no concurrent claims")
    first = db.engine.connect()
    tx = first.begin()
    first.execute(sa.text("INSERT INTO contact_phones (contact_id, e164, raw, position) "
                          "VALUES ('other', '+79161234567', 'x', 0)"))

    def commit_soon():
        eventlet.sleep(0.2)
        tx.commit()

    eventlet.spawn(commit_soon)
    with pytest.raises(logic.ConcurrentClaim):
        ingest_batch(db, [form_event(phone="+79161234567")])
    first.close()
