"""The sales pages of the operator UI without a browser or a broker: a gateway worker
(worker_factory) with a stand-in deals service, fed werkzeug requests (as test_ui.py)."""
import datetime as dt
import json
import re
from urllib.parse import urlencode

import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from crmhub.contracts.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from crmhub.services.gateway import openapi, ui_deals
from crmhub.services.gateway.auth import SESSION_COOKIE
from crmhub.services.gateway.service import GatewayService

KEYS = {"op-key": {"name": "Olga", "role": "operator"},
        "admin-key": {"name": "Admin", "role": "admin"}}
NOW = "2026-11-23T15:04:05+00:00"
SAME_SITE = {"Origin": "http://localhost"}


def ago(**delta) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(**delta)).isoformat()


def stage(id, name, kind="open", position=0):
    return {"id": id, "key": f"s{id}", "name": name, "kind": kind, "position": position,
            "task": f"What to do at {name}", "result": "", "key_steps": []}


STAGES = [stage(1, "Планируемый заказ"), stage(2, "Счёт выставлен", position=1),
          stage(3, "Успешно реализовано", "won", 2), stage(4, "Не реализовано", "lost", 3)]


def pipeline(**fields):
    return {"id": "distribution", "name": "Дистрибуция", "template": "distribution",
            "stages": STAGES, "managers": ["Olga"], "created_at": NOW, **fields}


def deal(id="d1", stage_id=1, **fields):
    names = {s["id"]: s["name"] for s in STAGES}
    kinds = {s["id"]: s["kind"] for s in STAGES}
    return {"id": id, "title": "Мария Иванова", "contact_id": "c1",
            "contact_name": "Мария Иванова", "pipeline_id": "distribution",
            "pipeline_name": "Дистрибуция", "stage_id": stage_id,
            "stage_name": names[stage_id], "status": kinds[stage_id], "manager": "Olga",
            "amount": "150000.00", "currency": "RUB", "source": None, "products": [],
            "close_reason": None, "version": 1, "created_at": NOW, "updated_at": NOW,
            "closed_at": None, **fields}


def task(id="t1", **fields):
    return {"id": id, "title": "Перезвонить в течение 15 минут", "due_at": NOW,
            "manager": "Olga", "contact_id": "c1", "deal_id": "d1", "done": False,
            "done_at": None, "reminded_at": None, "created_by": None, "created_at": NOW,
            **fields}


def page(*items, total=None):
    return {"items": list(items), "total": len(items) if total is None else total,
            "limit": 50, "offset": 0}


def total(amount, currency="RUB", count=1):
    return {"currency": currency, "amount": amount, "count": count}


def board(columns=None, manager=None):
    columns = columns or {1: ([deal()], [total("150000.00")], 1)}
    cols = [{"stage": s, "count": columns.get(s["id"], ([], [], 0))[2],
             "totals": columns.get(s["id"], ([], [], 0))[1],
             "deals": columns.get(s["id"], ([], [], 0))[0]} for s in STAGES]
    return {"pipeline_id": "distribution", "pipeline_name": "Дистрибуция", "manager": manager,
            "per_stage": 20, "count": sum(c["count"] for c in cols),
            "totals": [t for c in cols for t in c["totals"]], "columns": cols}


@pytest.fixture
def gateway():
    worker = worker_factory(GatewayService, api_keys=KEYS)
    worker.deals.list_pipelines.return_value = {"items": [pipeline()]}
    worker.deals.get_pipeline.return_value = pipeline()
    worker.deals.list_managers.return_value = {"items": [
        {"id": "Olga", "name": "Ольга", "role": "manager", "email": None, "active": True}]}
    worker.deals.board.return_value = board()
    worker.deals.search_deals.return_value = page(deal())
    worker.deals.search_tasks.return_value = page()
    worker.deals.get_deal.return_value = {**deal(), "history": [], "tasks": []}
    return worker


def request(path="/", method="GET", key="op-key", **kwargs):
    headers = kwargs.pop("headers", {})
    if key:
        headers["Cookie"] = f"{SESSION_COOKIE}={key}"
    return EnvironBuilder(path=path, method=method, headers=headers, **kwargs).get_request()


def html(response, status=200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.content_type == "text/html; charset=utf-8"
    return response.get_data(as_text=True)


def as_json(response, status=200):
    assert response.status_code == status
    assert response.content_type == "application/json; charset=utf-8"
    return json.loads(response.get_data(as_text=True))


# -- routes -----------------------------------------------------------------------------------

def test_sales_routes_win_over_the_catch_all_and_stay_out_of_the_api():
    rules = Map([Rule(ep.url, methods=ep.method.split(","), endpoint=name)
                 for name, _, ep in openapi.entrypoints(GatewayService)]).bind("hub")
    assert rules.match("/pipelines", "GET")[0] == "ui_pipelines"
    assert rules.match("/pipelines/b2b", "GET") == ("ui_board", {"pipeline_id": "b2b"})
    assert rules.match("/pipelines/b2b/stages/7", "GET") == (
        "ui_stage", {"pipeline_id": "b2b", "stage_id": 7})
    assert rules.match("/deals/d1", "GET")[0] == "ui_deal"
    assert rules.match("/deals/d1/move", "POST")[0] == "ui_deal_move"
    assert rules.match("/tasks", "GET")[0] == "ui_tasks"
    assert rules.match("/tasks/t1", "POST")[0] == "ui_task_update"
    assert rules.match("/ui/deals/d1/move", "POST")[0] == "ui_board_move"
    assert rules.match("/ui/reminders", "GET")[0] == "ui_reminders"
    assert rules.match("/api/v1/deals/d1/move", "POST")[0] == "move_deal"
    spec = openapi.build_spec(GatewayService, "1")
    assert not [p for p in spec["paths"] if p.startswith(("/pipelines", "/deals", "/tasks", "/ui"))]


def test_every_page_has_the_navigation(gateway):
    body = html(gateway.ui_tasks(request("/tasks")))
    assert 'href="/pipelines"' in body and 'href="/tasks" aria-current="page"' in body
    assert 'data-reminders="/ui/reminders" data-user="Olga"' in body and 'id="toasts"' in body
    assert "data-reminders" not in html(gateway.ui_login_form(request("/login", key=None)))


def test_strangers_go_to_the_login(gateway):
    response = gateway.ui_board(request("/pipelines/distribution", key=None),
                                pipeline_id="distribution")
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=%2Fpipelines%2Fdistribution"
    # A form posted with an expired session goes back to the page it was posted from.
    response = gateway.ui_task_update(request("/tasks/t1", "POST", key="old",
                                              data={"done": "true", "next": "/contacts/c1"}),
                                      task_id="t1")
    assert response.headers["Location"] == "/login?next=%2Fcontacts%2Fc1"
    gateway.deals.update_task.assert_not_called()


# -- pipelines and the board --------------------------------------------------------------------

def test_the_pipelines_are_listed_with_their_stages(gateway):
    gateway.deals.search_deals.return_value = page(deal(), total=12)
    body = html(gateway.ui_pipelines(request("/pipelines")))
    assert 'href="/pipelines/distribution"' in body and "Дистрибуция" in body
    assert "12 open deals" in body
    assert '<li class="kind-won">Успешно реализовано</li>' in body
    gateway.deals.search_deals.assert_called_once_with(
        {"pipeline_id": "distribution", "status": "open", "limit": 1})


def test_no_pipelines_says_how_to_load_one(gateway):
    gateway.deals.list_pipelines.return_value = {"items": []}
    assert "crmhub pipelines load" in html(gateway.ui_pipelines(request("/pipelines")))


def test_the_board_has_a_column_per_stage_with_counts_sums_and_cards(gateway):
    gateway.deals.board.return_value = board({
        1: ([deal(amount="1500.50"), deal("d2", title="Поставка", contact_name="ООО «Ромашка»",
                                          manager=None, amount=None, version=4)],
            [total("1500.50", count=2), total("2000.00", "USD")], 45),
        2: ([], [], 0)})
    body = html(gateway.ui_board(request("/pipelines/distribution"),
                                 pipeline_id="distribution"))
    gateway.deals.board.assert_called_once_with("distribution", per_stage=20, manager=None)
    names = [s["name"] for s in STAGES]
    assert [body.index(f">{n} ") for n in names] == sorted(body.index(f">{n} ") for n in names)
    assert 'data-stage-kind="won"' in body and '<span class="badge won">won</span>' in body
    assert '<span class="badge lost">lost</span>' in body
    assert ">45</span>" in body and "1\u202f500.50\u00a0₽ + 2\u202f000\u00a0USD" in body
    assert 'id="deal-d2" draggable="true" data-deal-id="d2"' in body
    assert 'data-version="4"' in body and "ООО «Ромашка»" in body and "Поставка" in body
    assert "no manager" in body
    # 2 of 45 shown: more of the first column; the empty ones need none.
    assert 'href="/pipelines/distribution/stages/1?offset=2"' in body
    more = {m.group(1): m.group(2) for m in re.finditer(
        r'<a class="load-more" href="/pipelines/distribution/stages/(\d)\?offset=\d+"\s*(hidden)?',
        body)}
    assert more == {"1": None, "2": "hidden", "3": "hidden", "4": "hidden"}
    assert "Open deals: <span data-board-count>45</span>" in body


def test_the_board_filters_by_manager(gateway):
    gateway.deals.board.return_value = board(manager="Olga")
    body = html(gateway.ui_board(request("/pipelines/distribution?manager=Olga"),
                                 pipeline_id="distribution"))
    gateway.deals.board.assert_called_once_with("distribution", per_stage=20, manager="Olga")
    assert 'data-manager="Olga"' in body and '<option value="Olga" selected>' in body
    assert "Show everyone" in body
    assert "stages/1?offset=1&amp;manager=Olga" in body
    everyone = html(gateway.ui_board(request("/pipelines/distribution"),
                                     pipeline_id="distribution"))
    assert 'href="?manager=Olga">Only mine' in everyone


def test_the_board_escapes_what_people_typed(gateway):
    gateway.deals.board.return_value = board({1: ([deal(contact_name="<img src=x onerror=1>",
                                                         title="<b>x</b>")], [], 1)})
    body = html(gateway.ui_board(request("/pipelines/distribution"),
                                 pipeline_id="distribution"))
    assert "<img src=x" not in body and "&lt;img src=x onerror=1&gt;" in body
    assert "<b>x</b>" not in body


def test_an_unknown_pipeline_is_a_404_page(gateway):
    gateway.deals.board.side_effect = NotFound("no pipeline 'nope'")
    body = html(gateway.ui_board(request("/pipelines/nope"), pipeline_id="nope"), 404)
    assert "no pipeline" in body


def test_more_of_a_column_is_a_page_of_cards(gateway):
    gateway.deals.search_deals.return_value = {**page(deal("d21"), deal("d22"), total=45),
                                               "offset": 20}
    body = html(gateway.ui_stage(request("/pipelines/distribution/stages/1?offset=20"),
                                 pipeline_id="distribution", stage_id=1))
    gateway.deals.search_deals.assert_called_once_with({
        "pipeline_id": "distribution", "stage_id": 1, "status": "open", "manager": None,
        "limit": 20, "offset": 20})
    assert 'id="stage-deals"' in body and 'id="deal-d21"' in body and 'id="deal-d22"' in body
    assert "21–22 of 45" in body and "stages/1?offset=22" in body
    assert 'href="/pipelines/distribution">← Back to the board' in body
    missing = gateway.ui_stage(request("/pipelines/distribution/stages/99"),
                               pipeline_id="distribution", stage_id=99)
    assert missing.status_code == 404


# -- moving a deal from the board ---------------------------------------------------------------

def move_request(body, headers=SAME_SITE, key="op-key", content_type="application/json"):
    return request("/ui/deals/d1/move", "POST", key=key, headers=dict(headers),
                   data=json.dumps(body), content_type=content_type)


def test_a_dropped_card_moves_the_deal_and_answers_the_fresh_counts(gateway):
    gateway.deals.move_deal.return_value = {**deal(stage_id=2, version=2), "history": [],
                                            "tasks": []}
    gateway.deals.board.return_value = board({2: ([deal(stage_id=2)], [total("150000.00")], 1)},
                                             manager="Olga")
    body = as_json(gateway.ui_board_move(move_request(
        {"stage_id": 2, "expected_version": 1, "reason": None, "manager": "Olga"}),
        deal_id="d1"))
    gateway.deals.move_deal.assert_called_once_with(
        "d1", {"stage_id": 2, "expected_version": 1}, "Olga")
    gateway.deals.board.assert_called_once_with("distribution", per_stage=1, manager="Olga")
    assert body["deal"] == {"id": "d1", "stage_id": 2, "stage_name": "Счёт выставлен",
                            "status": "open", "version": 2, "title": "Мария Иванова",
                            "contact_name": "Мария Иванова"}
    assert body["board"]["count"] == 1
    assert body["board"]["columns"][:2] == [
        {"stage_id": 1, "count": 0, "totals": "—"},
        {"stage_id": 2, "count": 1, "totals": "150\u202f000\u00a0₽"}]


def test_a_closing_move_passes_the_reason(gateway):
    gateway.deals.move_deal.return_value = {**deal(stage_id=4, version=2), "history": [],
                                            "tasks": []}
    body = as_json(gateway.ui_board_move(move_request(
        {"stage_id": 4, "expected_version": 1, "reason": "Дорого"}), deal_id="d1"))
    assert gateway.deals.move_deal.call_args.args[1]["reason"] == "Дорого"
    assert body["deal"]["status"] == "lost"
    gateway.deals.board.assert_called_once_with("distribution", per_stage=1, manager=None)


@pytest.mark.parametrize("error", [Conflict("deal d1 changed since version 1 (now 2)"),
                                   InvalidInput("stage_id: not of this pipeline")])
def test_a_refused_move_is_an_error_the_script_shows(gateway, error):
    """409 and 400 reach ui.js as JSON through the gateway's handler (which turns a
    CrmhubError into its status and body): the card goes back."""
    gateway.deals.move_deal.side_effect = error
    with pytest.raises(type(error)):
        gateway.ui_board_move(move_request({"stage_id": 2, "expected_version": 1}),
                              deal_id="d1")
    gateway.deals.board.assert_not_called()


@pytest.mark.parametrize("headers, content_type", [
    ({"Origin": "https://evil.example"}, "application/json"),
    (SAME_SITE, "application/x-www-form-urlencoded"),
    (SAME_SITE, "text/plain")])
def test_a_move_from_another_site_is_refused(gateway, headers, content_type):
    with pytest.raises(PermissionDenied):
        gateway.ui_board_move(move_request({"stage_id": 2}, headers, content_type=content_type),
                              deal_id="d1")
    gateway.deals.move_deal.assert_not_called()


def test_a_move_without_a_session_is_a_401_for_the_script(gateway):
    with pytest.raises(Unauthenticated):
        gateway.ui_board_move(move_request({"stage_id": 2}, key=None), deal_id="d1")


# -- a deal's page ---------------------------------------------------------------------------

def test_a_deal_page_shows_history_tasks_and_a_move_form(gateway):
    gateway.deals.get_deal.return_value = {
        **deal(stage_id=2, version=3, source={"channel": "form", "connector": "forms",
                                              "tracking": {"utm_source": "yandex"}}),
        "history": [{"id": 1, "deal_id": "d1", "from_stage_id": None, "from_stage_name": None,
                     "to_stage_id": 1, "to_stage_name": "Планируемый заказ",
                     "actor": "lead_rule:config-1", "reason": None, "version": 1,
                     "changed_at": NOW},
                    {"id": 2, "deal_id": "d1", "from_stage_id": 1,
                     "from_stage_name": "Планируемый заказ", "to_stage_id": 2,
                     "to_stage_name": "Счёт выставлен", "actor": "Olga", "reason": None,
                     "version": 2, "changed_at": NOW}],
        "tasks": [task(due_at=ago(hours=1))]}
    body = html(gateway.ui_deal(request("/deals/d1"), deal_id="d1"))
    assert "Планируемый заказ → <strong>Счёт выставлен</strong>" in body
    assert body.index("Счёт выставлен</strong>") < body.index("Opened at")  # newest first
    assert 'action="/deals/d1/move"' in body and 'name="expected_version" value="3"' in body
    assert '<option value="2" selected>Счёт выставлен</option>' in body
    assert "Успешно реализовано (won)" in body
    assert 'class="task overdue"' in body and "overdue</span>" in body
    assert 'href="/pipelines/distribution#deal-d1"' in body
    assert 'href="/contacts/c1"' in body and "yandex" in body


def test_the_move_form_moves_and_goes_back_to_the_deal(gateway):
    response = gateway.ui_deal_move(request("/deals/d1/move", "POST", headers=SAME_SITE, data={
        "stage_id": "3", "expected_version": "2", "reason": " Подписали "}), deal_id="d1")
    assert (response.status_code, response.headers["Location"]) == (303, "/deals/d1")
    gateway.deals.move_deal.assert_called_once_with(
        "d1", {"stage_id": "3", "reason": "Подписали", "expected_version": "2"}, "Olga")


def test_a_refused_move_form_shows_the_deal_as_it_is_now(gateway):
    gateway.deals.move_deal.side_effect = Conflict("changed")
    body = html(gateway.ui_deal_move(request("/deals/d1/move", "POST", data={
        "stage_id": "2", "expected_version": "1"}), deal_id="d1"), 409)
    assert "Someone changed this deal" in body and 'action="/deals/d1/move"' in body
    gateway.deals.move_deal.side_effect = InvalidInput("stage_id: no stage 99")
    body = html(gateway.ui_deal_move(request("/deals/d1/move", "POST", data={
        "stage_id": "99"}), deal_id="d1"), 400)
    assert "no stage 99" in body


def test_a_form_from_another_site_changes_nothing(gateway):
    response = gateway.ui_deal_move(request("/deals/d1/move", "POST", data={"stage_id": "2"},
                                            headers={"Origin": "https://evil.example"}),
                                    deal_id="d1")
    assert response.status_code == 403
    response = gateway.ui_task_update(request("/tasks/t1", "POST", data={"done": "true"},
                                              headers={"Origin": "https://evil.example"}),
                                      task_id="t1")
    assert response.status_code == 403
    gateway.deals.move_deal.assert_not_called()
    gateway.deals.update_task.assert_not_called()


# -- the card's deals and tasks, and the timeline's sales entries --------------------------------

def card(**fields):
    return {"id": "c1", "kind": "person", "name": "Мария Иванова", "company": None,
            "phones": [], "emails": [], "source": None, "manager": None, "tags": [],
            "custom_fields": {}, "created_at": NOW, "updated_at": NOW, "merged_ids": [],
            "timeline": [], **fields}


def entry(kind, title, **data):
    return {"id": 1, "contact_id": "c1", "kind": kind, "occurred_at": NOW, "title": title,
            "source_key": f"{kind}:1", "data": data}


def test_the_card_shows_its_deals_and_tasks(gateway):
    gateway.contacts.get.return_value = card()
    gateway.deals.search_deals.return_value = page(
        deal(), deal("d2", stage_id=3, title="Повторный заказ", status="won"))
    gateway.deals.search_tasks.return_value = page(
        task("t1", done=True, done_at=NOW), task("t2", title="Отправить счёт", due_at=ago(hours=2)),
        task("t3", title="Позвонить", due_at="2099-01-01T09:00:00+00:00", deal_id=None))
    body = html(gateway.ui_card(request("/contacts/c1"), contact_id="c1"))
    gateway.deals.search_deals.assert_called_once_with({"contact_id": "c1", "limit": 50})
    gateway.deals.search_tasks.assert_called_once_with({"contact_id": "c1", "limit": 100})
    deals = body[body.index('id="deals"'):body.index('id="tasks"')]
    assert 'href="/deals/d1"' in deals and 'href="/pipelines/distribution#deal-d1"' in deals
    assert 'href="/pipelines/distribution" title' in deals  # a closed deal is off the board
    assert "Планируемый заказ" in deals and "150\u202f000\u00a0₽" in deals and "Olga" in deals
    assert '<span class="badge status-won">won</span>' in deals
    tasks = body[body.index('id="tasks"'):body.index("Timeline")]
    # open ones first (overdue highlighted), then the done one, each with its button
    assert tasks.index("Отправить счёт") < tasks.index("Позвонить") < tasks.index(
        "Перезвонить")
    assert 'class="task overdue"' in tasks and 'class="task done"' in tasks
    assert 'action="/tasks/t2"' in tasks and 'name="next" value="/contacts/c1#tasks"' in tasks
    assert tasks.count('name="done" value="true"') == 2
    assert tasks.count('name="done" value="false"') == 1


def test_the_card_survives_a_failing_deals_service(gateway):
    gateway.contacts.get.return_value = card()
    gateway.deals.search_deals.side_effect = RemoteError("OperationalError", "db down")
    body = html(gateway.ui_card(request("/contacts/c1"), contact_id="c1"))
    assert "deals and tasks are not shown" in body and "Мария Иванова" in body


def test_the_timeline_shows_sales_entries(gateway):
    gateway.contacts.get.return_value = card(timeline=[
        entry("deal_lost", "Deal «Мария» lost: Дорого", deal_id="d1", stage_id=4,
              stage_name="Не реализовано", status="lost", manager="Olga", amount="150000.00",
              currency="RUB", actor="Olga"),
        entry("deal_stage_changed", "Deal «Мария»: «Планируемый заказ» → «Счёт выставлен»",
              deal_id="d1", stage_id=2, stage_name="Счёт выставлен", status="open",
              manager="Olga", amount=None, currency="RUB", actor="Olga"),
        entry("task_completed", "Task done: «Перезвонить»", task_id="t1", deal_id="d1",
              manager="Olga", due_at=NOW, actor="Olga"),
        entry("task_created", "Task for Olga: «Перезвонить», due 2026-11-23 15:04 UTC",
              task_id="t1", deal_id="d1", manager="Olga", due_at=NOW, actor=None)])
    body = html(gateway.ui_card(request("/contacts/c1"), contact_id="c1"))
    timeline = body[body.index('class="timeline"'):]
    assert "«Планируемый заказ» → «Счёт выставлен»" in timeline
    assert "lost: Дорого" in timeline and '<span class="badge lost">lost</span>' in timeline
    assert "Done by</dt><dd>Olga" in timeline
    assert 'Due</dt><dd><time datetime="2026-11-23T15:04:05+00:00"' in timeline
    assert timeline.count('href="/deals/d1">Open the deal') == 4
    assert "stage id" not in timeline and "task id" not in timeline  # no raw dump


# -- my tasks -------------------------------------------------------------------------------

def test_my_tasks_lists_the_managers_open_tasks_overdue_first(gateway):
    gateway.deals.search_tasks.return_value = page(
        task("t1", title="Давно пора", due_at=ago(days=1)),
        task("t2", title="Скоро", due_at="2099-01-01T09:00:00+00:00", deal_id="d9"))
    body = html(gateway.ui_tasks(request("/tasks")))
    gateway.deals.search_tasks.assert_called_once_with(
        {"manager": "Olga", "done": False, "limit": 200})
    gateway.deals.search_deals.assert_called_once_with({"manager": "Olga", "limit": 500})
    assert body.index("Overdue") < body.index("Давно пора") < body.index("Coming up") < (
        body.index("Скоро"))
    assert 'class="task overdue"' in body
    assert 'href="/deals/d1">Мария Иванова</a>' in body  # its deal, by the client's name
    assert 'href="/deals/d9">the deal</a>' in body and 'href="/contacts/c1"' in body
    assert 'name="next" value="/tasks?done=t1"' in body


def test_a_task_done_from_my_tasks_can_be_taken_back(gateway):
    response = gateway.ui_task_update(request("/tasks/t1", "POST", headers=SAME_SITE, data={
        "done": "true", "next": "/tasks?done=t1"}), task_id="t1")
    assert (response.status_code, response.headers["Location"]) == (303, "/tasks?done=t1")
    gateway.deals.update_task.assert_called_once_with("t1", {"done": True}, "Olga")
    gateway.deals.get_task.return_value = task(done=True, done_at=NOW)
    body = html(gateway.ui_tasks(request("/tasks?done=t1")))
    banner = body[body.index('class="banner banner-row"'):]
    assert "Done: «Перезвонить в течение 15 минут»" in banner
    assert 'name="done" value="false"' in banner


def test_undone_and_bad_values(gateway):
    gateway.ui_task_update(request("/tasks/t1", "POST", data={"done": "false",
                                                              "next": "https://evil.example"}),
                           task_id="t1")
    gateway.deals.update_task.assert_called_once_with("t1", {"done": False}, "Olga")
    response = gateway.ui_task_update(request("/tasks/t1", "POST", data={"done": "maybe"}),
                                      task_id="t1")
    assert response.status_code == 400
    assert gateway.ui_task_update(request("/tasks/t1", "POST", data={
        "done": "true", "next": "//evil.example"}), task_id="t1").headers["Location"] == "/"


def test_done_tasks_latest_first(gateway):
    gateway.deals.search_tasks.side_effect = [page(task(), total=230), page(
        task("t1", done=True, title="Раньше"), task("t2", done=True, title="Позже"))]
    body = html(gateway.ui_tasks(request("/tasks?show=done")))
    assert gateway.deals.search_tasks.call_args.args[0] == {
        "manager": "Olga", "done": True, "limit": 200, "offset": 30}
    assert body.index("Позже") < body.index("Раньше")
    assert 'href="/tasks?show=done" aria-current="page"' in body


# -- reminders ------------------------------------------------------------------------------

def test_reminders_are_the_managers_tasks_reminded_since_the_last_answer(gateway):
    since = ago(seconds=40)
    gateway.deals.search_tasks.return_value = page(
        task("old", reminded_at=ago(minutes=5), due_at=ago(minutes=5)),
        task("new", reminded_at=ago(seconds=2), due_at=ago(seconds=2)),
        task("card", reminded_at=ago(seconds=1), due_at=ago(seconds=1), deal_id=None),
        task("not-yet", due_at=ago(seconds=0)))
    gateway.deals.get_deal.return_value = {**deal(contact_name="ООО «Ромашка»"), "history": [],
                                           "tasks": []}
    response = gateway.ui_reminders(request("/ui/reminders?" + urlencode({"since": since})))
    body = as_json(response)
    assert response.headers["Cache-Control"] == "no-store"
    query = gateway.deals.search_tasks.call_args.args[0]
    assert (query["manager"], query["done"], query["limit"]) == ("Olga", False, 100)
    assert [(r["id"], r["about"], r["url"]) for r in body["items"]] == [
        ("new", "ООО «Ромашка»", "/deals/d1"), ("card", None, "/contacts/c1")]
    assert body["overdue"] == 4
    # The next answer overlaps this one (ui.js drops what it showed).
    now, next_ = (dt.datetime.fromisoformat(body[k]) for k in ("now", "next"))
    assert now - next_ == ui_deals.REMINDER_OVERLAP


def test_reminders_read_the_latest_page_of_a_long_overdue_list(gateway):
    gateway.deals.search_tasks.side_effect = [
        page(task("t0", reminded_at=ago(days=3)), total=250),
        page(task("t249", reminded_at=ago(seconds=3)), total=250)]
    body = as_json(gateway.ui_reminders(request("/ui/reminders")))
    assert gateway.deals.search_tasks.call_args.args[0]["offset"] == 150
    assert [r["id"] for r in body["items"]] == ["t249"] and body["overdue"] == 250


def test_reminders_without_since_start_a_little_back_and_bad_ones_are_clamped(gateway):
    gateway.deals.search_tasks.return_value = page(
        task("a", reminded_at=ago(seconds=10)), task("b", reminded_at=ago(minutes=2)),
        task("c", reminded_at=ago(hours=20)))
    first = as_json(gateway.ui_reminders(request("/ui/reminders")))
    assert [r["id"] for r in first["items"]] == ["a"]
    for since in ("nonsense", "1970-01-01T00:00:00+00:00"):
        query = urlencode({"since": since})
        clamped = as_json(gateway.ui_reminders(request(f"/ui/reminders?{query}")))
        assert {r["id"] for r in clamped["items"]} == (
            {"a"} if since == "nonsense" else {"a", "b"})


def test_a_poll_gives_up_on_a_deals_service_that_does_not_answer(gateway, monkeypatch):
    import eventlet

    from crmhub.contracts.errors import Unavailable

    monkeypatch.setattr(ui_deals, "REMINDER_WAIT_SECONDS", 0.05)
    gateway.deals.search_tasks.side_effect = lambda query: eventlet.sleep(5)
    with pytest.raises(Unavailable):
        gateway.ui_reminders(request("/ui/reminders"))


def test_reminders_need_a_session(gateway):
    with pytest.raises(Unauthenticated):
        gateway.ui_reminders(request("/ui/reminders", key=None))


# -- helpers --------------------------------------------------------------------------------

@pytest.mark.parametrize("amount, currency, text", [
    ("150000.00", "RUB", "150\u202f000\u00a0₽"), ("1500.5", "USD", "1\u202f500.50\u00a0USD"),
    ("0.00", "EUR", "0\u00a0EUR"), (None, "RUB", "")])
def test_money(amount, currency, text):
    assert ui_deals.money(amount, currency) == text
