"""The sales funnel as users meet it: `crmhub run` on real RabbitMQ and PostgreSQL; a website
form becomes a card with a deal in the configured pipeline and a first task, read and moved
through the REST API."""
import pytest
import requests

from support import OPERATOR_KEY, fresh_schema, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]


@pytest.fixture
def hub(start_hub, pg_url):
    for service in ("contacts", "deals"):
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, LEAD_RULES=[
        {"connector": "forms", "form": "contact-us", "pipeline": "b2b-sales"}])


def test_a_form_becomes_a_card_with_a_deal_and_a_first_task(hub):
    assert hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Ольга"}).status_code == 200
    loaded = hub.api("POST", "/api/v1/pipelines/templates/b2b-sales")
    assert loaded.status_code == 201 and loaded.json()["created"]
    assert hub.api("POST", "/api/v1/pipelines/templates/b2b-sales").status_code == 200
    assert len(hub.api("GET", "/api/v1/pipelines").json()["items"]) == 1
    assert hub.api("PUT", "/api/v1/pipelines/b2b-sales/managers",
                   json={"managers": ["Olga"]}).json()["managers"] == ["Olga"]

    resp = requests.post(f"{hub.base_url}/hooks/forms/contact-us", timeout=10, data={
        "name": "Мария Иванова", "phone": "8 (916) 123-45-67", "utm_source": "yandex"})
    assert resp.status_code == 200, resp.text
    card = wait_for(lambda: (p := hub.api("GET", "/api/v1/contacts",
                                          params={"phone": "+79161234567"}).json())["total"]
                    and p["items"][0], message="card")
    page = wait_for(lambda: (p := hub.api("GET", "/api/v1/deals",
                                          params={"contact_id": card["id"]}).json())["total"]
                    and p, timeout=15, message="a deal for the new card")
    [deal] = page["items"]
    assert (deal["pipeline_id"], deal["stage_name"], deal["manager"], deal["title"]) == (
        "b2b-sales", "Lead", "Olga", "Мария Иванова")
    assert deal["source"]["tracking"]["utm_source"] == "yandex"
    [task] = hub.api("GET", "/api/v1/tasks", params={"manager": "Olga", "done": "false"}
                     ).json()["items"]
    assert (task["title"], task["deal_id"]) == ("Call back within 15 minutes", deal["id"])

    # The operator moves it on; the move is recorded with who did it and shows on the card.
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    stages = {s["name"]: s["id"] for s in hub.api("GET", "/api/v1/pipelines/b2b-sales")
              .json()["stages"]}
    moved = requests.post(f"{hub.base_url}/api/v1/deals/{deal['id']}/move", headers=operator,
                          json={"stage_id": stages["Qualified"], "expected_version": 1},
                          timeout=10)
    assert moved.status_code == 200, moved.text
    assert [(h["to_stage_name"], h["actor"]) for h in moved.json()["history"]] == [
        ("Lead", "lead_rule:config-1"), ("Qualified", "Olga")]
    board = requests.get(f"{hub.base_url}/api/v1/pipelines/b2b-sales/board", headers=operator,
                         params={"per_stage": 5}, timeout=10)
    assert board.status_code == 200, board.text
    columns = {c["stage"]["name"]: c for c in board.json()["columns"]}
    assert [(d["id"], d["contact_name"]) for d in columns["Qualified"]["deals"]] == [
        (deal["id"], "Мария Иванова")]
    assert (columns["Qualified"]["count"], columns["Lead"]["count"]) == (1, 0)
    more = hub.api("GET", "/api/v1/deals", params={
        "pipeline_id": "b2b-sales", "stage_id": stages["Qualified"], "status": "open",
        "limit": 5, "offset": 5}).json()
    assert (more["items"], more["total"]) == ([], 1)
    done = requests.patch(f"{hub.base_url}/api/v1/tasks/{task['id']}", headers=operator,
                          json={"done": True}, timeout=10)
    assert done.json()["done"] is True
    wait_for(lambda: {"deal_created", "deal_stage_changed", "task_created", "task_completed"}
             <= {e["kind"] for e in hub.api("GET", f"/api/v1/contacts/{card['id']}")
                 .json()["timeline"]}, timeout=15, message="the deal on the card's timeline")


def test_bad_deal_input_gets_a_clear_4xx(hub):
    hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Ольга"})
    b2b = hub.api("POST", "/api/v1/pipelines/templates/b2b-sales").json()["pipeline"]
    school = hub.api("POST", "/api/v1/pipelines/templates/language-school").json()["pipeline"]
    card = hub.api("POST", "/api/v1/contacts", json={"name": "Пётр",
                                                     "phones": ["+79990001122"]}).json()
    created = hub.api("POST", "/api/v1/deals", json={"contact_id": card["id"],
                                                     "pipeline_id": "b2b-sales", "amount": 1000})
    assert created.status_code == 201, created.text
    deal = created.json()
    operator = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    cases = [
        (hub.api("POST", f"/api/v1/deals/{deal['id']}/move",
                 json={"stage_id": school["stages"][1]["id"]}), 400, "stage_id"),
        (hub.api("POST", f"/api/v1/deals/{deal['id']}/move", json={"stage_id": 999999}), 400,
         "stage_id"),
        (hub.api("POST", f"/api/v1/deals/{deal['id']}/move",
                 json={"stage_id": b2b["stages"][1]["id"], "expected_version": 7}), 409, None),
        (hub.api("PATCH", f"/api/v1/deals/{deal['id']}", json={"amount": -5}), 400, "amount"),
        (hub.api("POST", "/api/v1/deals", json={"contact_id": card["id"],
                                                "pipeline_id": "nope"}), 400, "pipeline_id"),
        (hub.api("POST", "/api/v1/deals", json={"contact_id": "ghost",
                                                "pipeline_id": "b2b-sales"}), 400, "contact_id"),
        (hub.api("POST", "/api/v1/tasks", json={"title": "x", "manager": "Olga",
                                                "due_at": "2026-13-01T10:00:00+03:00"}), 400,
         "due_at"),
        (hub.api("POST", "/api/v1/tasks", json={"title": "x", "manager": "Olga",
                                                "due_at": "2026-12-01T10:00:00"}), 400, "due_at"),
        (hub.api("GET", "/api/v1/deals", params={"stage": "1"}), 400, "stage"),
        (hub.api("GET", "/api/v1/deals/nope"), 404, None),
        (hub.api("GET", "/api/v1/pipelines/nope"), 404, None),
        (hub.api("POST", "/api/v1/pipelines/templates/nope"), 404, None),
        (requests.post(f"{hub.base_url}/api/v1/pipelines/templates/b2b-sales", headers=operator,
                       timeout=10), 403, None),
    ]
    for resp, status, field in cases:
        assert resp.status_code == status, (resp.request.method, resp.request.url, resp.text)
        body = resp.json()
        assert body["error"] and body["message"], body
        if field:
            assert field in body["details"], body
    history = hub.api("GET", f"/api/v1/deals/{deal['id']}").json()["history"]
    assert len(history) == 1
    assert "belongs to pipeline 'language-school', not to 'b2b-sales'" in (
        cases[0][0].json()["message"])
