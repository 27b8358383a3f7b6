"""The deals service's RPC methods without a broker (worker_factory, real SQLite): payloads are
checked by the contracts, bad input comes back as typed errors naming the field, results are
in wire form."""
import datetime as dt

import pytest
from nameko.testing.services import worker_factory

from crmhub.contracts.base import new_event
from crmhub.contracts.contacts import ContactSchema, ContactUpdatedSchema
from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.deals.models import metadata
from crmhub.services.deals.service import DealsService

CARD = {"id": "c-1", "kind": "company", "name": "ООО Ромашка", "company": None,
        "created_at": "2026-03-14T09:00:00+00:00", "updated_at": "2026-03-14T09:05:00+00:00"}


def get_card(contact_id):
    """contacts.get_contact: "merged-c" was merged into "c-1"; any other id is unknown."""
    if contact_id in ("c-1", "merged-c"):
        return CARD
    raise NotFound(f"contact {contact_id} not found")


@pytest.fixture
def deals(tmp_path):
    config = {"DATA_DIR": str(tmp_path), "DATABASE_URL": "",
              "LEAD_RULES": [{"connector": "forms", "pipeline": "b2b-sales"}]}
    upgrade(config, "deals")
    engine = make_engine(config, "deals")
    worker = worker_factory(DealsService, config=config,
                            db=ServiceDatabase(engine, metadata, "deals"))
    worker.contacts.get_contact.side_effect = get_card
    worker.put_manager("olga", {"name": "Ольга"})
    worker.load_template("b2b-sales")
    yield worker
    engine.dispose()


def test_a_deal_is_opened_on_the_surviving_card_and_named_after_the_client(deals):
    deal = deals.create_deal({"contact_id": "merged-c", "pipeline_id": "b2b-sales",
                              "amount": 1500, "manager": "olga"}, "olga")
    assert (deal["contact_id"], deal["title"], deal["amount"]) == ("c-1", "ООО Ромашка", "1500.00")
    assert deal["history"][0]["actor"] == "olga"
    assert isinstance(deal["created_at"], str)
    stages = {s["name"]: s["id"] for s in deals.get_pipeline("b2b-sales")["stages"]}
    moved = deals.move_deal(deal["id"], {"stage_id": stages["Won"], "reason": "бюджет есть"},
                            "olga")
    assert (moved["status"], moved["version"], len(moved["history"])) == ("won", 2, 2)
    assert deals.search_deals({"status": "won"})["total"] == 1


@pytest.mark.parametrize("data, field", [
    ({"contact_id": "c-1", "pipeline_id": "b2b-sales", "amount": -5}, "amount"),
    ({"contact_id": "c-1", "pipeline_id": "b2b-sales", "amount": "много"}, "amount"),
    ({"contact_id": "c-1", "pipeline_id": "b2b-sales", "currency": "rubles"}, "currency"),
    ({"contact_id": "c-1", "pipeline_id": "nope"}, "pipeline_id"),
    ({"contact_id": "c-1", "pipeline_id": "b2b-sales", "stage_id": 99999}, "stage_id"),
    ({"contact_id": "ghost", "pipeline_id": "b2b-sales"}, "contact_id"),
    ({"contact_id": "c-1", "pipeline_id": "b2b-sales",
      "products": [{"sku": "A", "quantity": 0, "price": 1}]}, "products"),
])
def test_bad_deal_input_names_the_field(deals, data, field):
    with pytest.raises(InvalidInput) as err:
        deals.create_deal(data, "olga")
    assert field in err.value.details
    assert deals.search_deals({})["total"] == 0


@pytest.mark.parametrize("due_at", ["2026-03-14T10:00:00", "2026-02-30T10:00:00+03:00",
                                    "tomorrow", "10:00"])
def test_a_task_due_at_an_invalid_time_is_refused(deals, due_at):
    with pytest.raises(InvalidInput) as err:
        deals.create_task({"title": "Позвонить", "due_at": due_at, "manager": "olga"}, "olga")
    assert set(err.value.details) == {"due_at"}


def test_the_timer_publishes_every_due_reminder_and_tells_when_the_next_is_due(deals):
    now = dt.datetime.now(dt.timezone.utc)
    past = (now - dt.timedelta(minutes=1)).isoformat()
    for i in range(3):
        deals.create_task({"title": f"t{i}", "due_at": past, "manager": "olga"}, "olga")
    later = deals.create_task({"title": "later", "due_at": "2099-03-16T10:00:00+03:00",
                               "manager": "olga"}, "olga")
    assert deals.fire_reminders() == dt.datetime(2099, 3, 16, 7, tzinfo=dt.timezone.utc)
    page = deals.search_tasks({"manager": "olga", "done": False})
    assert [bool(t["reminded_at"]) for t in page["items"]] == [True, True, True, False]
    deals.update_task(later["id"], {"done": True}, "olga")
    assert deals.fire_reminders() is None


def test_a_new_or_rescheduled_task_wakes_the_reminder_timer_after_commit(deals):
    task = deals.create_task({"title": "Позвонить", "due_at": "2026-03-16T10:00:00+03:00",
                              "manager": "olga"}, "olga")
    deals.wake_reminders.assert_called_once_with(
        dt.datetime(2026, 3, 16, 7, tzinfo=dt.timezone.utc))
    deals.update_task(task["id"], {"due_at": "2026-03-16T09:00:00+03:00"}, "olga")
    deals.wake_reminders.assert_called_with(dt.datetime(2026, 3, 16, 6, tzinfo=dt.timezone.utc))
    deals.wake_reminders.reset_mock()
    deals.update_task(task["id"], {"done": True}, "olga")
    deals.update_task(task["id"], {"title": "Перезвонить"}, "olga")
    deals.wake_reminders.assert_not_called()  # done: no reminder to bring forward


def test_the_board_comes_in_wire_form_and_checks_its_query(deals):
    deal = deals.create_deal({"contact_id": "c-1", "pipeline_id": "b2b-sales", "amount": 1500},
                             "olga")
    board = deals.board("b2b-sales", per_stage="5")
    assert board["per_stage"] == 5 and board["totals"] == [
        {"currency": "RUB", "amount": "1500.00", "count": 1}]
    lead = board["columns"][0]
    assert lead["stage"]["name"] == "Lead" and lead["count"] == 1
    assert [(d["id"], d["contact_name"]) for d in lead["deals"]] == [(deal["id"], "ООО Ромашка")]
    with pytest.raises(InvalidInput) as err:
        deals.board("b2b-sales", per_stage=0)
    assert set(err.value.details) == {"per_stage"}
    with pytest.raises(NotFound):
        deals.board("nope")


def test_a_renamed_client_is_renamed_on_its_deals(deals):
    deal = deals.create_deal({"contact_id": "c-1", "pipeline_id": "b2b-sales"}, "olga")
    assert deal["contact_name"] == "ООО Ромашка"
    card = ContactSchema().load(CARD)
    deals.on_contact_updated(new_event(ContactUpdatedSchema, changed=["name"], contact={
        **card, "name": "АО Ромашка", "updated_at": card["updated_at"] + dt.timedelta(hours=1)}))
    assert deals.get_deal(deal["id"])["contact_name"] == "АО Ромашка"


def test_lead_rules_list_config_and_api_rules(deals):
    deals.put_lead_rule({"connector": "tilda", "pipeline": "b2b-sales"})
    rules = deals.list_lead_rules()["items"]
    assert [(r["connector"], r["origin"]) for r in rules] == [("tilda", "api"), ("forms", "config")]
    assert rules[0]["task_title"] == "Call back within 15 minutes"
