"""A card's open deals as the incoming-call popup shows them, kept by contacts from the deals
service's events (on both database backends): updated by every deal event, never set back by
an older one arriving late, following merges, and the deals from before copied once."""
import datetime as dt

import pytest
import sqlalchemy as sa
from nameko.testing.services import worker_factory

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, new_event
from crmhub.contracts.deals import OpenDealsPageSchema
from crmhub.contracts.errors import Unavailable
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.contacts import calls, card_deals, logic
from crmhub.services.contacts.models import backfills, metadata
from crmhub.services.contacts.service import ContactsService

T0 = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.timezone.utc)
ANNA = "+79161234567"


@pytest.fixture
def db(database_config):
    engine = make_engine(database_config, "contacts")
    yield ServiceDatabase(engine, metadata, "contacts")
    engine.dispose()


def deal(contact_id, deal_id="d1", version=1, **changes):
    return {"id": deal_id, "title": "Поставка кофе", "contact_id": contact_id,
            "contact_name": None, "pipeline_id": "b2b-sales", "pipeline_name": "B2B",
            "stage_id": 1, "stage_name": "Новый лид", "stage_position": 0, "status": "open",
            "manager": "olga", "amount": "1500.00", "currency": "RUB", "source": None,
            "products": [], "close_reason": None, "version": version,
            "created_at": T0, "updated_at": T0 + dt.timedelta(minutes=version),
            "closed_at": None, "erp": None, **changes}


def payload(kind, deal_body):
    """A deals event as it comes off the broker (dumped JSON)."""
    fields = {"deal": deal_body}
    if kind in (ev.DEAL_STAGE_CHANGED, ev.DEAL_WON, ev.DEAL_LOST):
        fields["change"] = {"id": deal_body["version"], "deal_id": deal_body["id"],
                            "from_stage_id": 1, "from_stage_name": "Новый лид",
                            "to_stage_id": deal_body["stage_id"],
                            "to_stage_name": deal_body["stage_name"], "actor": "olga",
                            "reason": None, "version": deal_body["version"],
                            "changed_at": deal_body["updated_at"]}
    schema = ev.spec(kind).schema
    return new_event(schema, **fields)


def contacts_worker(db, deals=None):
    return worker_factory(ContactsService, db=db, config={},
                          **({"deals": deals} if deals is not None else {}))


def popup_deals(db, number=ANNA):
    with db.connect() as conn:
        caller = calls.known_caller(conn, {"number": number, "summary": True}, "RU")
    return [(d["title"], d["stage_name"], d["amount"]) for d in caller["open_deals"]]


def card(db, name="Анна", phone=ANNA):
    with db.transaction() as tx:
        return logic.create_contact(tx, {"name": name, "phones": [phone]})["id"]


def test_the_popup_shows_the_open_deals_as_the_last_deal_event_left_them(db):
    anna = card(db)
    worker = contacts_worker(db)
    worker.on_deal_created(payload(ev.DEAL_CREATED, deal(anna)))
    assert popup_deals(db) == [("Поставка кофе", "Новый лид", "1500.00")]

    worker.on_deal_updated(payload(ev.DEAL_UPDATED, deal(anna, version=2, amount="2400.00")))
    worker.on_deal_stage_changed(payload(ev.DEAL_STAGE_CHANGED, deal(
        anna, version=3, amount="2400.00", stage_id=2, stage_name="Переговоры")))
    worker.on_deal_created(payload(ev.DEAL_CREATED, deal(
        anna, deal_id="d2", title="Кофемашина", updated_at=T0 + dt.timedelta(hours=1))))
    # Latest activity first, as the deals service lists them.
    assert popup_deals(db) == [("Кофемашина", "Новый лид", "1500.00"),
                               ("Поставка кофе", "Переговоры", "2400.00")]

    worker.on_deal_won(payload(ev.DEAL_WON, deal(anna, version=4, status="won",
                                                 stage_id=3, stage_name="Успешно")))
    assert popup_deals(db) == [("Кофемашина", "Новый лид", "1500.00")]


def test_an_older_deal_event_arriving_late_does_not_set_the_deal_back(db):
    anna = card(db)
    worker = contacts_worker(db)
    worker.on_deal_lost(payload(ev.DEAL_LOST, deal(anna, version=3, status="lost",
                                                   stage_id=4, stage_name="Отказ")))
    worker.on_deal_updated(payload(ev.DEAL_UPDATED, deal(anna, version=2, title="Старое")))
    worker.on_deal_created(payload(ev.DEAL_CREATED, deal(anna, version=1)))
    assert popup_deals(db) == []  # lost stays lost
    worker.on_deal_stage_changed(payload(ev.DEAL_STAGE_CHANGED, deal(
        anna, version=5, stage_id=2, stage_name="Переговоры")))  # reopened by a later move
    assert popup_deals(db) == [("Поставка кофе", "Переговоры", "1500.00")]


def test_a_merged_cards_deals_pop_up_on_the_card_that_holds_it_now(db):
    anna = card(db)
    other = card(db, "Анна П.", "+79035550011")
    worker = contacts_worker(db)
    worker.on_deal_created(payload(ev.DEAL_CREATED, deal(other)))
    with db.transaction() as tx:
        logic.merge_contacts(tx, other, anna)
    # A deal event sent before the deals service moved the deal still names the old card.
    worker.on_deal_created(payload(ev.DEAL_CREATED, deal(other, deal_id="d2", title="Второй")))
    assert sorted(popup_deals(db)) == [("Второй", "Новый лид", "1500.00"),
                                       ("Поставка кофе", "Новый лид", "1500.00")]


class DealsService:
    """The deals service as contacts' backfill calls it: its open deals in pages of two, or
    not answering."""

    def __init__(self, deals, down=False):
        self.deals, self.down, self.asked = sorted(deals, key=lambda d: d["id"]), down, []

    def open_deals(self, request):
        self.asked.append(request["after_id"])
        if self.down:
            raise Unavailable("the deals service did not answer open_deals within 30 s")
        after = [d for d in self.deals if request["after_id"] is None or d["id"] > request["after_id"]]
        page = after[:2]
        return instance(OpenDealsPageSchema).dump({
            "items": page, "next_after": page[-1]["id"] if len(after) > 2 else None})


def pending_backfill(db):
    with db.transaction() as tx:
        tx.execute(backfills.delete())


def test_an_upgraded_hub_copies_the_open_deals_from_before_once(db):
    anna = card(db)
    pending_backfill(db)  # cards from before contacts kept deals
    older = [deal(anna, deal_id=f"d{i}", title=f"Сделка {i}", version=i) for i in range(1, 6)]
    down = DealsService(older, down=True)
    contacts_worker(db, down).backfill_card_deals()
    assert popup_deals(db) == []  # deals not answering: tried again on the next tick
    # Meanwhile d5 moved on: its newer version is kept, whatever the copy brings.
    contacts_worker(db).on_deal_stage_changed(payload(ev.DEAL_STAGE_CHANGED, deal(
        anna, deal_id="d5", title="Сделка 5", version=9, stage_id=2, stage_name="Переговоры")))

    deals = DealsService(older)
    contacts_worker(db, deals).backfill_card_deals()
    assert deals.asked == [None, "d2", "d4"]
    assert popup_deals(db) == [("Сделка 5", "Переговоры", "1500.00"),
                               *[(f"Сделка {i}", "Новый лид", "1500.00") for i in (4, 3, 2, 1)]]
    contacts_worker(db, deals).backfill_card_deals()
    assert deals.asked == [None, "d2", "d4"]  # done once


def test_a_new_database_has_no_deals_from_before_to_copy(database_config, tmp_path):
    engine = make_engine(database_config, "contacts")
    with engine.connect() as conn:
        assert card_deals.backfilled(conn)
    engine.dispose()
    # A database that had cards before the copy existed waits for the backfill.
    config = {"DATABASE_URL": "", "DATA_DIR": str(tmp_path / "old")}
    (tmp_path / "old").mkdir()
    upgrade(config, "contacts", "0001")
    engine = make_engine(config, "contacts")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO contacts (id, kind, tags, custom_fields, search_text, created_at, "
            "updated_at) VALUES ('c1', 'person', '[]', '{}', '', :t, :t)"), {"t": T0})
    upgrade(config, "contacts")
    with engine.connect() as conn:
        assert not card_deals.backfilled(conn)
    engine.dispose()
