"""Campaign rules on each database: consent history, segments over real card tables, the
recipients materialised with consent, queued at the rate and each once, and the metrics."""
import datetime as dt

import pytest
import sqlalchemy as sa

from crmhub.contracts.errors import Conflict
from crmhub.runtime.db import ServiceDatabase, make_engine, utcnow
from crmhub.services.contacts import logic as contacts_logic
from crmhub.services.contacts import segments
from crmhub.services.contacts.models import metadata as contacts_metadata
from crmhub.services.email import campaigns, consent
from crmhub.services.email.campaign_models import campaign_recipients
from crmhub.services.email.models import metadata as email_metadata
from crmhub.services.email.models import outgoing_emails
from crmhub.services.email.tracking import Links

SECRET = b"integration-secret"
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
TEMPLATE = {"subject": "Hi {{ client.name }}", "text": "Sale for {{ client.name }}",
            "html": '<p>Sale</p><a href="https://shop.example/a">A</a>'
                    '<a href="https://shop.example/b">B</a>'}


@pytest.fixture
def dbs(migrated_database):
    contacts_config = migrated_database("contacts")
    email_config = migrated_database("email")
    contacts_db = ServiceDatabase(make_engine(contacts_config, "contacts"), contacts_metadata,
                                  "contacts")
    email_db = ServiceDatabase(make_engine(email_config, "email"), email_metadata, "email")
    yield contacts_db, email_db
    contacts_db.engine.dispose()
    email_db.engine.dispose()


def add_card(db, name, tags=(), email=True, source=None):
    data = {"kind": "person", "name": name, "tags": list(tags),
            "emails": [f"{name.lower()}@example.com"] if email else [], "source": source}
    with db.transaction() as tx:
        return contacts_logic.create_contact(tx, data)["id"]


def links_for(campaign_id, contact_id):
    return Links(SECRET, "https://hub.example", campaign_id, contact_id)


def page_source(contacts_db, segment):
    """The segment's pages read straight from the card tables (what the RPC returns)."""
    after = None
    while True:
        with contacts_db.connect() as conn:
            page = segments.segment_page(conn, segment, after, 2)  # small pages: paging works
        yield page["items"], page["next_after"]
        after = page["next_after"]
        if after is None:
            return


def grant(email_db, *ids, status="granted"):
    with email_db.transaction() as tx:
        for contact_id in ids:
            consent.record(tx, contact_id, "email", status, "form:contact-us")


def materialize(email_db, contacts_db, campaign):
    after = None
    for members, next_after in page_source(contacts_db, campaign["segment"]):
        with email_db.transaction() as tx:
            assert campaigns.add_recipients(tx, campaign["id"], after, members, next_after)
        after = next_after


def create(email_db, segment=None, rate=60):
    with email_db.transaction() as tx:
        return campaigns.create(tx, {"name": "Spring", "segment": segment or {},
                                     "template": TEMPLATE, "rate_per_minute": rate})


# -- consent ------------------------------------------------------------------------------------

def test_consent_keeps_history_and_the_latest_statement_wins(dbs):
    _, email_db = dbs
    with email_db.transaction() as tx:
        consent.record(tx, "c1", "email", "granted", "form:contact-us", T0)
        consent.record(tx, "c1", "email", "withdrawn", "unsubscribe-link", T0 + dt.timedelta(days=1))
        # A statement dated before the one in force goes to the history only.
        consent.record(tx, "c1", "email", "granted", "api", T0 + dt.timedelta(hours=1))
        consent.record(tx, "c1", "sms", "granted", "api", T0)
    with email_db.connect() as conn:
        found = consent.of_contact(conn, "c1")
        assert consent.granted(conn, ["c1"]) == set()
        assert consent.granted(conn, ["c1"], "sms") == {"c1"}
    by_channel = {c["channel"]: c for c in found["consents"]}
    assert by_channel["email"]["status"] == "withdrawn"
    assert by_channel["email"]["source"] == "unsubscribe-link"
    assert [h["source"] for h in found["history"]] == ["api", "api", "unsubscribe-link",
                                                       "form:contact-us"]


def test_consent_of_a_merged_away_card_holds_for_the_card_that_stays(dbs):
    _, email_db = dbs
    with email_db.transaction() as tx:
        consent.record(tx, "old", "email", "granted", "form:contact-us", T0 + dt.timedelta(days=2))
        consent.record(tx, "old", "sms", "granted", "api", T0)
        consent.record(tx, "kept", "email", "withdrawn", "unsubscribe-link", T0)
        consent.record(tx, "kept", "sms", "withdrawn", "api", T0 + dt.timedelta(days=1))
    for _ in range(2):  # a redelivered merge event changes nothing more
        with email_db.transaction() as tx:
            consent.move_to_merged_card(tx, "old", "kept")
    with email_db.connect() as conn:
        kept = consent.of_contact(conn, "kept")
        assert consent.of_contact(conn, "old")["consents"] == []
        assert consent.granted(conn, ["kept"]) == {"kept"}  # the newer grant wins
        assert consent.granted(conn, ["kept"], "sms") == set()  # the newer withdrawal stays
    assert len(kept["history"]) == 4


# -- segments -----------------------------------------------------------------------------------

def test_segment_pages_filter_by_tags_source_and_email(dbs):
    contacts_db, _ = dbs
    anna = add_card(contacts_db, "Anna", ["vip"], source={"channel": "form", "connector": "tilda"})
    add_card(contacts_db, "Boris", ["vip"], email=False)
    carl = add_card(contacts_db, "Carl", ["vip", "moscow"], source={"channel": "call"})
    add_card(contacts_db, "Dina", ["moscow"])
    seen = [m["id"] for members, _ in page_source(contacts_db, {"tags_any": ["vip"]})
            for m in members]
    assert sorted(seen) == sorted([anna, carl])  # Boris has no email
    formed = [m for members, _ in page_source(contacts_db, {"source_channel": "form"})
              for m in members]
    assert [(m["id"], m["email"]) for m in formed] == [(anna, "anna@example.com")]


def test_last_activity_is_the_newest_timeline_entry(dbs):
    contacts_db, _ = dbs
    old, fresh = add_card(contacts_db, "Old"), add_card(contacts_db, "Fresh")
    with contacts_db.transaction() as tx:
        tx.execute(sa.text("UPDATE timeline SET occurred_at = :at WHERE contact_id = :c"),
                   {"at": T0 - dt.timedelta(days=400), "c": old})
        contacts_logic.add_timeline_entry(tx, fresh, "note", "Called", "note:1", utcnow())
    recent = {"last_activity_after": utcnow() - dt.timedelta(days=30)}
    stale = {"last_activity_before": T0 - dt.timedelta(days=300)}
    assert [m["id"] for ms, _ in page_source(contacts_db, recent) for m in ms] == [fresh]
    assert [m["id"] for ms, _ in page_source(contacts_db, stale) for m in ms] == [old]


# -- sending ------------------------------------------------------------------------------------

def test_only_consenting_clients_are_recipients_and_each_is_queued_once(dbs):
    contacts_db, email_db = dbs
    ids = [add_card(contacts_db, name, ["vip"]) for name in ("Anna", "Boris", "Carl", "Dina", "Eva")]
    anna, boris, carl, dina, eva = ids
    grant(email_db, anna, boris, carl, dina)
    grant(email_db, eva, status="withdrawn")
    campaign = create(email_db, {"tags_any": ["vip"]}, rate=120)  # 2 a second
    with email_db.transaction() as tx:
        campaigns.start(tx, campaign["id"])
    with email_db.transaction() as tx:  # nothing is queued before the list is complete
        assert campaigns.dispatch(tx, campaign["id"], links_for,
                                  now=utcnow() + dt.timedelta(seconds=5))["queued"] == 0
    materialize(email_db, contacts_db, campaign)
    with email_db.connect() as conn:
        counters = campaigns.load(conn, campaign["id"])["counters"]
    assert (counters["recipients"], counters["excluded_no_consent"]) == (4, 1)

    grant(email_db, dina, status="withdrawn")  # after it was sent: checked again when queued
    start = utcnow()
    with email_db.transaction() as tx:  # the bucket starts empty: one second's worth
        first = campaigns.dispatch(tx, campaign["id"], links_for, now=start + dt.timedelta(seconds=1),
                                   burst_seconds=1)  # the bucket holds two at most
    assert first["queued"] + first["skipped"] == 2  # Dina, withdrawn, may be among them
    for second in (2, 3, 4):  # the same run repeated queues nothing twice
        with email_db.transaction() as tx:
            campaigns.dispatch(tx, campaign["id"], links_for,
                               now=start + dt.timedelta(seconds=second))
    with email_db.connect() as conn:
        rows = conn.execute(sa.select(outgoing_emails).where(
            outgoing_emails.c.campaign_id == campaign["id"])).all()
        states = dict(conn.execute(sa.select(campaign_recipients.c.contact_id,
                                             campaign_recipients.c.state)).all())
        final = campaigns.load(conn, campaign["id"])
    assert sorted(r.contact_id for r in rows) == sorted([anna, boris, carl])
    assert states[dina] == "skipped"
    assert final["status"] == "done" and final["counters"]["queued"] == 3
    email = next(r for r in rows if r.contact_id == anna)
    assert email.subject == "Hi Anna" and email.to_addr == "anna@example.com"
    assert email.idempotency_key == f"campaign:{campaign['id']}:{anna}"
    assert email.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "https://hub.example/t/c/" in email.html_body


def test_a_cancelled_campaign_queues_nothing_more(dbs):
    contacts_db, email_db = dbs
    grant(email_db, add_card(contacts_db, "Anna"), add_card(contacts_db, "Boris"))
    campaign = create(email_db, rate=60)
    with email_db.transaction() as tx:
        campaigns.start(tx, campaign["id"])
    materialize(email_db, contacts_db, campaign)
    with email_db.transaction() as tx:
        campaigns.cancel(tx, campaign["id"])
    with email_db.transaction() as tx:
        assert campaigns.dispatch(tx, campaign["id"], links_for,
                                  now=utcnow() + dt.timedelta(minutes=1))["queued"] == 0
    with pytest.raises(Conflict, match="only a draft"):
        with email_db.transaction() as tx:
            campaigns.start(tx, campaign["id"])


def test_metrics_count_unique_opens_clicks_per_link_and_unsubscribes(dbs):
    contacts_db, email_db = dbs
    anna, boris = add_card(contacts_db, "Anna"), add_card(contacts_db, "Boris")
    grant(email_db, anna, boris)
    campaign = create(email_db, rate=6000)
    cid = campaign["id"]
    with email_db.transaction() as tx:
        campaigns.start(tx, cid)
    materialize(email_db, contacts_db, campaign)
    with email_db.transaction() as tx:
        campaigns.dispatch(tx, cid, links_for, now=utcnow() + dt.timedelta(seconds=5))
        tx.execute(outgoing_emails.update().values(status="sent"))
        tx.execute(outgoing_emails.update().where(outgoing_emails.c.contact_id == boris)
                   .values(status="bounced"))
    with email_db.transaction() as tx:
        campaigns.record_open(tx, cid, anna, T0)
        campaigns.record_open(tx, cid, anna, T0)
        campaigns.record_click(tx, cid, anna, "https://shop.example/a", T0)
        campaigns.record_click(tx, cid, anna, "https://shop.example/a", T0)
        campaigns.record_click(tx, cid, anna, "https://shop.example/b", T0)
        campaigns.record_unsubscribe(tx, cid, anna, utcnow())
    with email_db.connect() as conn:
        metrics = campaigns.metrics(conn, cid)
        assert consent.granted(conn, [anna, boris]) == {boris}
    assert (metrics["sent"], metrics["bounced"], metrics["opened"]) == (2, 1, 1)
    assert metrics["open_rate"] == 1.0 and metrics["bounce_rate"] == 0.5
    assert metrics["unsubscribed"] == 1
    assert metrics["clicks"] == [{"url": "https://shop.example/a", "clicks": 2, "clients": 1},
                                 {"url": "https://shop.example/b", "clicks": 1, "clients": 1}]
