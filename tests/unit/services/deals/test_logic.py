"""Sales funnel rules on both database backends: templates, moves and their history, tasks and
reminders, lead rules with round-robin, and the events each change puts in the outbox."""
import datetime as dt
import json
import uuid
from decimal import Decimal

import eventlet
import pytest
import sqlalchemy as sa

from crmhub.contracts.base import new_event
from crmhub.contracts.contacts import ContactCreatedSchema
from crmhub.contracts.deals import DEFAULT_FIRST_TASK
from crmhub.contracts.errors import Conflict, InvalidInput, NotFound, PermanentError
from crmhub.runtime.db import ServiceDatabase, make_engine, utcnow
from crmhub.services.deals import logic
from crmhub.services.deals.models import metadata, outbox, tasks

DISTRIBUTION = [
    "Планируемый заказ", "Заказ согласован", "Сформирована заявка на закупку",
    "Получен счет от поставщика", "Товар поступил на склад", "Товар поставлен в резерв",
    "Выставлен счет клиенту", "Товар поставлен к отгрузке", "Товар отгружен",
    "Успешно реализовано", "Закрыто и не реализовано"]
CLEANING = [
    "Потенциальный клиент", "Установлен контакт", "Согласована встреча",
    "Определен перечень работ", "Начали готовить КП", "Начали обсуждение КП с клиентом",
    "Получено предварительное согласие", "Получено устное подтверждение сделки",
    "Подписан договор", "Проект передан на реализацию", "Подписаны акты (проект выполнен)",
    "Получена полная оплата"]


@pytest.fixture
def db(migrated_database):
    engine = make_engine(migrated_database("deals"), "deals")
    yield ServiceDatabase(engine, metadata, "deals")
    engine.dispose()


def run(db, fn, *args, **kwargs):
    with db.transaction() as tx:
        return fn(tx, *args, **kwargs)


def outbox_events(db, event_type=None) -> list[dict]:
    with db.connect() as conn:
        rows = conn.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    return [json.loads(r.payload) | {"_type": r.event_type} for r in rows
            if event_type in (None, r.event_type)]


def stage(pipeline, name):
    return next(s["id"] for s in pipeline["stages"] if s["name"] == name)


@pytest.fixture
def b2b(db):
    for manager in ("anna", "boris"):
        run(db, logic.put_manager, manager, {"name": manager.title(), "role": "manager",
                                             "email": None, "active": True})
    return run(db, logic.load_template, "b2b-sales")[0]


def open_deal(db, pipeline, contact_id="c1", **extra):
    return run(db, logic.create_deal, {"contact_id": contact_id, "pipeline_id": pipeline["id"],
                                       "title": "Поставка", **extra}, actor="anna")


# -- pipelines and templates ------------------------------------------------------------------

@pytest.mark.parametrize("name, stages", [("distribution", DISTRIBUTION),
                                          ("cleaning-services", CLEANING)])
def test_templates_keep_stage_names_as_written_and_load_once(db, name, stages):
    pipeline, created = run(db, logic.load_template, name)
    assert created
    names = [s["name"] for s in pipeline["stages"]]
    assert names[:len(stages)] == stages
    assert all(s["task"] and s["result"] and s["key_steps"] for s in pipeline["stages"])
    assert {s["kind"] for s in pipeline["stages"]} == {"open", "won", "lost"}
    again, created = run(db, logic.load_template, name)
    assert not created and again["id"] == pipeline["id"]
    with db.connect() as conn:
        assert [p["id"] for p in logic.list_pipelines(conn)] == [pipeline["id"]]
        listed = {t["name"]: t["loaded"] for t in logic.list_templates(conn)}
    assert listed == {"b2b-sales": False, "cleaning-services": name == "cleaning-services",
                      "distribution": name == "distribution", "language-school": False}


def test_every_template_is_loadable(db):
    for name in logic.template_names():
        pipeline, _ = run(db, logic.load_template, name)
        assert pipeline["stages"][0]["kind"] == "open"
        assert [s["position"] for s in pipeline["stages"]] == list(range(len(pipeline["stages"])))
    with pytest.raises(NotFound), db.transaction() as tx:
        logic.load_template(tx, "../../etc/passwd")


def test_custom_pipeline_is_checked(db):
    pipeline = run(db, logic.create_pipeline, {"id": "repairs", "name": "Ремонт", "stages": [
        {"name": "Заявка", "kind": "open"}, {"name": "Готово", "kind": "won"}]})
    assert [s["key"] for s in pipeline["stages"]] == ["stage-1", "stage-2"]
    with pytest.raises(Conflict), db.transaction() as tx:
        logic.create_pipeline(tx, {"id": "repairs", "name": "x", "stages": [
            {"name": "a", "kind": "open"}]})
    with pytest.raises(InvalidInput) as err, db.transaction() as tx:
        logic.create_pipeline(tx, {"name": "x", "stages": [{"name": "a", "kind": "lost"}]})
    assert "must be open" in err.value.message
    with pytest.raises(InvalidInput), db.transaction() as tx:
        logic.create_pipeline(tx, {"name": "x", "stages": [
            {"name": "a", "key": "k", "kind": "open"}, {"name": "b", "key": "k", "kind": "open"}]})


# -- deals and their history --------------------------------------------------------------------

def test_a_deal_moves_forwards_and_backwards_and_every_move_is_recorded(db, b2b):
    deal = open_deal(db, b2b, amount=None, manager="anna")
    assert (deal["stage_name"], deal["status"], deal["version"]) == ("Lead", "open", 1)
    run(db, logic.move_deal, deal["id"], stage(b2b, "Proposal"), actor="anna")
    run(db, logic.move_deal, deal["id"], stage(b2b, "Qualified"), actor="boris")
    won = run(db, logic.move_deal, deal["id"], stage(b2b, "Won"), actor="anna",
              reason="лучшая цена")
    assert (won["status"], won["close_reason"], won["version"]) == ("won", "лучшая цена", 4)
    assert won["closed_at"] is not None
    reopened = run(db, logic.move_deal, deal["id"], stage(b2b, "Negotiation"), actor="anna")
    assert (reopened["status"], reopened["closed_at"], reopened["close_reason"]) == (
        "open", None, None)

    with db.connect() as conn:
        history = logic.load_deal_card(conn, deal["id"])["history"]
    assert [(h["from_stage_name"], h["to_stage_name"], h["actor"]) for h in history] == [
        (None, "Lead", "anna"), ("Lead", "Proposal", "anna"), ("Proposal", "Qualified", "boris"),
        ("Qualified", "Won", "anna"), ("Won", "Negotiation", "anna")]
    assert all(h["changed_at"].tzinfo for h in history)
    assert [e["_type"] for e in outbox_events(db) if e["_type"].startswith("deal")] == [
        "deal_created", "deal_stage_changed", "deal_stage_changed", "deal_stage_changed",
        "deal_won", "deal_stage_changed"]
    [won_event] = outbox_events(db, "deal_won")
    assert won_event["change"]["to_stage_name"] == "Won"
    assert won_event["deal"]["close_reason"] == "лучшая цена"


def test_lost_with_a_reason_and_moving_to_the_same_stage_changes_nothing(db, b2b):
    deal = open_deal(db, b2b)
    lost = run(db, logic.move_deal, deal["id"], stage(b2b, "Lost"), reason="нет бюджета")
    assert (lost["status"], lost["close_reason"]) == ("lost", "нет бюджета")
    same = run(db, logic.move_deal, deal["id"], stage(b2b, "Lost"))
    assert same["version"] == lost["version"]
    assert len(outbox_events(db, "deal_lost")) == 1


def test_a_stage_of_another_pipeline_or_an_unknown_one_is_refused(db, b2b):
    school = run(db, logic.load_template, "language-school")[0]
    deal = open_deal(db, b2b)
    with pytest.raises(InvalidInput) as err, db.transaction() as tx:
        logic.move_deal(tx, deal["id"], stage(school, "Trial done"))
    assert "belongs to pipeline 'language-school', not to 'b2b-sales'" in err.value.message
    assert set(err.value.details) == {"stage_id"}
    with pytest.raises(InvalidInput), db.transaction() as tx:
        logic.move_deal(tx, deal["id"], 987654)
    with pytest.raises(NotFound), db.transaction() as tx:
        logic.move_deal(tx, "no-such-deal", stage(b2b, "Won"))
    with pytest.raises(InvalidInput), db.transaction() as tx:
        logic.create_deal(tx, {"contact_id": "c1", "pipeline_id": "b2b-sales",
                               "stage_id": stage(school, "Request")})
    with pytest.raises(InvalidInput) as err, db.transaction() as tx:
        logic.create_deal(tx, {"contact_id": "c1", "pipeline_id": "nope"})
    assert err.value.details == {"pipeline_id": ["no pipeline 'nope'"]}
    with pytest.raises(InvalidInput), db.transaction() as tx:
        logic.create_deal(tx, {"contact_id": "c1", "pipeline_id": "b2b-sales", "manager": "x"})
    with db.connect() as conn:
        assert len(logic.load_deal_card(conn, deal["id"])["history"]) == 1


def test_a_stale_version_is_refused_with_a_conflict(db, b2b):
    deal = open_deal(db, b2b)
    run(db, logic.move_deal, deal["id"], stage(b2b, "Qualified"), expected_version=1)
    with pytest.raises(Conflict) as err, db.transaction() as tx:
        logic.move_deal(tx, deal["id"], stage(b2b, "Proposal"), expected_version=1)
    assert err.value.details == {"version": 2}
    with pytest.raises(Conflict), db.transaction() as tx:
        logic.update_deal(tx, deal["id"], {"title": "x", "expected_version": 1})
    with db.connect() as conn:
        card = logic.load_deal_card(conn, deal["id"])
    assert (card["stage_name"], card["title"], len(card["history"])) == ("Qualified", "Поставка", 2)


def test_concurrent_moves_lose_no_history_row(db, b2b):
    deal = open_deal(db, b2b)
    targets = [stage(b2b, name) for name in ("Qualified", "Proposal", "Negotiation", "Lead")] * 5

    def move(stage_id):
        return run(db, logic.move_deal, deal["id"], stage_id, actor="anna")

    list(eventlet.GreenPool(10).imap(move, targets))
    with db.connect() as conn:
        card = logic.load_deal_card(conn, deal["id"])
    history = card["history"]
    # Moves to the stage the deal is already at are no-ops; all others are recorded.
    assert [h["version"] for h in history] == list(range(1, len(history) + 1))
    assert len(history) == card["version"] > 5
    for before, after in zip(history, history[1:]):
        assert after["from_stage_id"] == before["to_stage_id"]  # an unbroken chain
    assert card["stage_id"] == history[-1]["to_stage_id"]
    assert len(outbox_events(db, "deal_stage_changed")) == len(history) - 1


def test_update_changes_fields_and_tells_what_changed(db, b2b):
    from decimal import Decimal

    deal = open_deal(db, b2b)
    updated = run(db, logic.update_deal, deal["id"], {
        "amount": Decimal("150000.50"), "manager": "boris",
        "products": [{"sku": "A-1", "name": "Стол", "quantity": Decimal("2"),
                      "price": Decimal("75000.25")}]})
    assert (updated["amount"], updated["manager"], updated["version"]) == (
        Decimal("150000.50"), "boris", 2)
    assert updated["products"][0]["price"] == "75000.25"
    [event] = outbox_events(db, "deal_updated")
    assert event["changed"] == ["amount", "manager", "products"]
    assert event["deal"]["amount"] == "150000.50"
    same = run(db, logic.update_deal, deal["id"], {"amount": Decimal("150000.5")})
    assert same["version"] == 2


# -- the board --------------------------------------------------------------------------------

def test_the_board_counts_sums_and_shows_the_latest_deals_of_each_stage(db, b2b):
    lead, qualified = stage(b2b, "Lead"), stage(b2b, "Qualified")
    leads = [open_deal(db, b2b, contact_id=f"c{i}", amount=100 * i, manager="anna")
             for i in range(1, 6)]
    dollars = open_deal(db, b2b, amount=Decimal("12.50"), currency="USD", manager="boris")
    unpriced = open_deal(db, b2b, manager="boris")
    for deal in (dollars, unpriced):
        run(db, logic.move_deal, deal["id"], qualified)
    won = open_deal(db, b2b, amount=999)
    run(db, logic.move_deal, won["id"], stage(b2b, "Won"))
    # Activity brings a deal to the top of its column.
    run(db, logic.update_deal, leads[1]["id"], {"title": "Поставка, срочно"})

    with db.connect() as conn:
        board = logic.board(conn, "b2b-sales", per_stage=3)
    assert [c["stage"]["name"] for c in board["columns"]] == [
        "Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
    columns = {c["stage"]["id"]: c for c in board["columns"]}
    assert columns[lead]["count"] == 5
    assert columns[lead]["totals"] == [{"currency": "RUB", "count": 5,
                                        "amount": Decimal("1500.00")}]
    assert [d["id"] for d in columns[lead]["deals"]] == [
        leads[1]["id"], leads[4]["id"], leads[3]["id"]]
    assert columns[lead]["deals"][0]["title"] == "Поставка, срочно"
    assert columns[qualified]["count"] == 2
    assert columns[qualified]["totals"] == [
        {"currency": "RUB", "count": 1, "amount": Decimal("0.00")},
        {"currency": "USD", "count": 1, "amount": Decimal("12.50")}]
    assert [d["id"] for d in columns[qualified]["deals"]] == [unpriced["id"], dollars["id"]]
    # A closed deal leaves the board: won and lost columns are empty drop targets.
    won_column = columns[stage(b2b, "Won")]
    assert (won_column["count"], won_column["totals"], won_column["deals"]) == (0, [], [])
    assert board["count"] == 7
    assert board["totals"] == [{"currency": "RUB", "count": 6, "amount": Decimal("1500.00")},
                               {"currency": "USD", "count": 1, "amount": Decimal("12.50")}]

    # "More of this column" is search_deals with the column's filters, in the same order.
    with db.connect() as conn:
        rest = logic.search_deals(conn, pipeline_id="b2b-sales", stage_id=lead, status="open",
                                  limit=3, offset=3)
        mine = logic.board(conn, "b2b-sales", manager="boris")
    assert [d["id"] for d in rest["items"]] == [leads[2]["id"], leads[0]["id"]]
    assert rest["total"] == 5
    assert [c["count"] for c in mine["columns"]][:2] == [0, 2]
    assert mine["manager"] == "boris" and mine["count"] == 2


def test_open_deals_page_through_in_id_order_while_deals_close(db, b2b):
    ids = sorted(open_deal(db, b2b, contact_id=f"c{i}")["id"] for i in range(5))
    first = run(db, logic.open_deals, None, 2)
    assert ([d["id"] for d in first["items"]], first["next_after"]) == (ids[:2], ids[1])
    run(db, logic.move_deal, ids[0], stage(b2b, "Lost"))  # closed behind the cursor
    run(db, logic.move_deal, ids[3], stage(b2b, "Lost"))  # closed ahead of it: not seen
    second = run(db, logic.open_deals, first["next_after"], 2)
    assert ([d["id"] for d in second["items"]], second["next_after"]) == ([ids[2], ids[4]],
                                                                           ids[4])
    assert run(db, logic.open_deals, ids[4], 2) == {"items": [], "next_after": None}


def test_the_board_of_an_unknown_pipeline_is_not_found(db, b2b):
    with pytest.raises(NotFound), db.connect() as conn:
        logic.board(conn, "nope")
    with db.connect() as conn:
        empty = logic.board(conn, "b2b-sales")
    assert empty["count"] == 0 and empty["totals"] == []
    assert all(c["deals"] == [] and c["count"] == 0 for c in empty["columns"])


def card(contact_id, name, updated_at, company=None, merged_ids=()):
    return {"id": contact_id, "name": name, "company": company, "updated_at": updated_at,
            "merged_ids": list(merged_ids)}


def test_deals_keep_the_latest_name_of_their_client(db, b2b):
    t0 = utcnow()
    event = contact_created(name="Анна")
    deal = run(db, logic.apply_lead_rules, event, CONFIG_RULES)
    assert deal["contact_name"] == "Анна"
    other = open_deal(db, b2b, contact_id="c-old", contact_name="Борис",
                      contact_synced_at=t0)
    cid = event["contact"]["id"]

    def names():
        with db.connect() as conn:
            return {d["id"]: d["contact_name"] for d in logic.load_deals(
                conn, [deal["id"], other["id"]])}

    later = event["contact"]["updated_at"] + dt.timedelta(seconds=10)
    assert run(db, logic.sync_contact, card(cid, "Анна Петрова", later)) == 1
    # An older event handled late changes nothing.
    run(db, logic.sync_contact, card(cid, "Аня", later - dt.timedelta(seconds=5)))
    assert names()[deal["id"]] == "Анна Петрова"
    # A card without a name shows its company. A card merged into this one, whose deals
    # have not followed yet (contacts_merged still queued), takes its name too.
    run(db, logic.sync_contact, card(cid, None, later + dt.timedelta(seconds=1),
                                     company="ООО Ромашка", merged_ids=["c-old"]))
    assert names() == {deal["id"]: "ООО Ромашка", other["id"]: "ООО Ромашка"}
    # Events are what change the name, not the deal's activity.
    with db.connect() as conn:
        assert logic.load_deal(conn, deal["id"])["version"] == 1


# -- tasks and reminders ----------------------------------------------------------------------

def new_task(db, due_at, manager="anna", **extra):
    return run(db, logic.create_task, {"title": "Позвонить", "due_at": due_at,
                                       "manager": manager, **extra}, actor="boris")


def test_a_reminder_fires_once_when_the_task_is_due(db, b2b):
    deal = open_deal(db, b2b, contact_id="card-7")
    moscow = dt.timezone(dt.timedelta(hours=3))
    due = dt.datetime.now(moscow) + dt.timedelta(minutes=30)
    task = new_task(db, due, deal_id=deal["id"])
    assert task["due_at"] == due and task["contact_id"] == "card-7"
    assert run(db, logic.fire_due_reminders, utcnow()) == []
    [fired] = run(db, logic.fire_due_reminders, due + dt.timedelta(seconds=1))
    assert fired["id"] == task["id"] and fired["reminded_at"] is not None
    assert run(db, logic.fire_due_reminders, due + dt.timedelta(hours=1)) == []
    [event] = outbox_events(db, "task_due")
    assert (event["task"]["id"], event["task"]["manager"]) == (task["id"], "anna")

    # Rescheduling arms the reminder again; a done task is not reminded.
    later = due + dt.timedelta(days=1)
    run(db, logic.update_task, task["id"], {"due_at": later})
    assert [t["id"] for t in run(db, logic.fire_due_reminders, later)] == [task["id"]]
    other = new_task(db, due)
    done = run(db, logic.update_task, other["id"], {"done": True}, "anna")
    assert done["done"] and done["done_at"]
    assert run(db, logic.fire_due_reminders, later) == []
    assert [e["task"]["id"] for e in outbox_events(db, "task_completed")] == [other["id"]]


def test_the_next_reminder_due_is_the_earliest_task_not_reminded_nor_done(db, b2b):
    with db.connect() as conn:
        assert logic.next_reminder_due(conn) is None
    now = utcnow()
    first, second = now + dt.timedelta(minutes=1), now + dt.timedelta(minutes=2)
    soonest = new_task(db, now + dt.timedelta(seconds=30))
    new_task(db, second)
    early = new_task(db, first)
    run(db, logic.update_task, soonest["id"], {"done": True}, "anna")
    with db.connect() as conn:
        assert logic.next_reminder_due(conn) == first
    run(db, logic.fire_due_reminders, first)
    with db.connect() as conn:
        assert logic.next_reminder_due(conn) == second
    # Rescheduled sooner: that is the next one.
    run(db, logic.update_task, early["id"], {"due_at": now + dt.timedelta(seconds=5)})
    with db.connect() as conn:
        assert logic.next_reminder_due(conn) == now + dt.timedelta(seconds=5)


def test_concurrent_timers_claim_each_due_task_once(db, b2b):
    past = utcnow() - dt.timedelta(minutes=5)
    ids = {new_task(db, past)["id"] for _ in range(30)}

    def tick(_):
        return [t["id"] for t in run(db, logic.fire_due_reminders, limit=7)]

    fired = [i for batch in eventlet.GreenPool(6).imap(tick, range(12)) for i in batch]
    assert sorted(fired) == sorted(ids)
    assert sorted(e["task"]["id"] for e in outbox_events(db, "task_due")) == sorted(ids)


def test_task_input_is_checked(db, b2b):
    soon = utcnow() + dt.timedelta(hours=1)
    with pytest.raises(InvalidInput) as err, db.transaction() as tx:
        logic.create_task(tx, {"title": "x", "due_at": soon, "manager": "nobody"})
    assert err.value.details == {"manager": ["no manager 'nobody'"]}
    with pytest.raises(InvalidInput), db.transaction() as tx:
        logic.create_task(tx, {"title": "x", "due_at": soon, "manager": "anna", "deal_id": "x"})
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tasks)).scalar() == 0


def test_tasks_are_listed_per_manager_soonest_first(db, b2b):
    now = utcnow()
    late, early = new_task(db, now + dt.timedelta(hours=2)), new_task(db, now + dt.timedelta(hours=1))
    new_task(db, now, manager="boris")
    with db.connect() as conn:
        page = logic.search_tasks(conn, manager="anna", done=False)
        assert [t["id"] for t in page["items"]] == [early["id"], late["id"]]
        assert logic.search_tasks(conn, due_before=now + dt.timedelta(minutes=90),
                                  manager="anna")["total"] == 1


# -- lead rules -------------------------------------------------------------------------------

def contact_created(connector="forms", form="contact-us", name="Анна", contact_id=None):
    now = utcnow()
    contact = {"id": contact_id or uuid.uuid4().hex, "kind": "person", "name": name,
               "phones": [{"raw": "+7 916 123-45-67", "e164": "+79161234567"}],
               "source": {"channel": "form", "connector": connector, "form": form,
                          "tracking": {"utm_source": "yandex"}},
               "created_at": now, "updated_at": now}
    return ContactCreatedSchema().load(new_event(ContactCreatedSchema, contact=contact,
                                                 cause="form"))


CONFIG_RULES = logic.config_rules([{"connector": "forms", "pipeline": "b2b-sales"}])


def test_a_new_client_from_a_form_gets_a_deal_and_its_manager_a_first_task(db):
    for manager, active in (("anna", True), ("boris", True), ("vera", False)):
        run(db, logic.put_manager, manager, {"name": manager, "role": "manager", "email": None,
                                             "active": active})
    run(db, logic.load_template, "b2b-sales")
    run(db, logic.set_pipeline_managers, "b2b-sales", ["anna", "vera", "boris"])
    before = utcnow()
    event = contact_created()
    deal = run(db, logic.apply_lead_rules, event, CONFIG_RULES)
    assert (deal["pipeline_id"], deal["stage_name"], deal["manager"]) == ("b2b-sales", "Lead", "anna")
    assert (deal["title"], deal["contact_id"]) == ("Анна", event["contact"]["id"])
    assert deal["source"]["tracking"]["utm_source"] == "yandex"
    with db.connect() as conn:
        [task] = logic.load_deal_card(conn, deal["id"])["tasks"]
    assert (task["title"], task["manager"]) == (DEFAULT_FIRST_TASK, "anna")
    assert dt.timedelta(minutes=14) < task["due_at"] - before < dt.timedelta(minutes=16)

    # Redelivered: nothing new. The same client again: already has an open deal there.
    assert run(db, logic.apply_lead_rules, event, CONFIG_RULES) is None
    again = contact_created(contact_id=event["contact"]["id"])
    assert run(db, logic.apply_lead_rules, again, CONFIG_RULES) is None
    # Managers take turns; the inactive one is skipped.
    turns = [run(db, logic.apply_lead_rules, contact_created(), CONFIG_RULES)["manager"]
             for _ in range(3)]
    assert turns == ["boris", "anna", "boris"]
    # Another connector has no rule.
    assert run(db, logic.apply_lead_rules, contact_created(connector="tilda"), CONFIG_RULES) is None
    assert len(outbox_events(db, "deal_created")) == 4
    assert len(outbox_events(db, "task_created")) == 4


def test_a_closed_deal_does_not_stop_a_new_one(db, b2b):
    event = contact_created()
    deal = run(db, logic.apply_lead_rules, event, CONFIG_RULES)
    run(db, logic.move_deal, deal["id"], stage(b2b, "Lost"))
    again = contact_created(contact_id=event["contact"]["id"])
    assert run(db, logic.apply_lead_rules, again, CONFIG_RULES)["id"] != deal["id"]


def test_api_rules_override_config_rules_and_forms_override_connectors(db, b2b):
    run(db, logic.load_template, "language-school")
    run(db, logic.put_lead_rule, {"connector": "forms", "form": "trial", "pipeline":
                                  "language-school", "task_title": "Записать на пробный урок",
                                  "task_due_minutes": 60, "enabled": True})
    trial = run(db, logic.apply_lead_rules, contact_created(form="trial"), CONFIG_RULES)
    assert trial["pipeline_id"] == "language-school" and trial["manager"] is None
    other = run(db, logic.apply_lead_rules, contact_created(form="contact-us"), CONFIG_RULES)
    assert other["pipeline_id"] == "b2b-sales"
    # A disabled API rule for the connector switches the config rule off.
    run(db, logic.put_lead_rule, {"connector": "forms", "form": None, "pipeline": "b2b-sales",
                                  "task_title": "x", "task_due_minutes": 15, "enabled": False})
    assert run(db, logic.apply_lead_rules, contact_created(), CONFIG_RULES) is None
    with db.connect() as conn:
        rules = logic.list_lead_rules(conn, CONFIG_RULES)
    assert [(r["origin"], r["form"], r["enabled"]) for r in rules] == [
        ("api", None, False), ("api", "trial", True), ("config", None, True)]
    with pytest.raises(InvalidInput), db.transaction() as tx:
        logic.put_lead_rule(tx, {"connector": "forms", "pipeline": "nope", "task_title": "x",
                                 "task_due_minutes": 1, "enabled": True})


def test_a_rule_naming_a_template_loads_it_and_one_naming_nothing_is_parked(db):
    deal = run(db, logic.apply_lead_rules, contact_created(), CONFIG_RULES)
    assert deal["pipeline_name"] == "B2B sales"
    broken = logic.config_rules([{"connector": "forms", "pipeline": "gone"}])
    with pytest.raises(PermanentError), db.transaction() as tx:
        logic.apply_lead_rules(tx, contact_created(), broken)
    with pytest.raises(ValueError):
        logic.config_rules([{"connector": "forms"}])


def test_concurrent_leads_take_turns_without_skipping_a_manager(db, b2b):
    run(db, logic.set_pipeline_managers, "b2b-sales", ["anna", "boris"])
    events = [contact_created() for _ in range(20)]
    deals = list(eventlet.GreenPool(10).imap(
        lambda e: run(db, logic.apply_lead_rules, e, CONFIG_RULES), events))
    managers = [d["manager"] for d in deals]
    assert managers.count("anna") == managers.count("boris") == 10


def test_merged_cards_take_their_deals_and_tasks_along(db, b2b):
    deal = open_deal(db, b2b, contact_id="old")
    new_task(db, utcnow(), deal_id=deal["id"])
    run(db, logic.move_contact, "old", "new")
    with db.connect() as conn:
        assert logic.search_deals(conn, contact_id="new")["total"] == 1
        assert logic.search_tasks(conn, contact_id="new")["total"] == 1
