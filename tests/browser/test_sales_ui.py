"""The sales funnel in the operator UI as a manager meets it: `crmhub run` on real RabbitMQ and
PostgreSQL with a lead rule, website forms posted over HTTP; then headless Chromium reads the
card's deal and first task, drags the deal on the pipeline board, reads "my tasks" and gets a
reminder without reloading (sales_session.py, in a process of its own: see
operator_session.py for why)."""
import json
import os

import pytest
import requests
from browser_runs import BROWSER_MARKS, run_browser_session

from support import ADMIN_KEY, OPERATOR_KEY, fresh_schema, wait_for

SCREENSHOTS = "/tmp/crmhub-sales"
FIRST_TASK = "Перезвонить в течение 15 минут"

pytestmark = BROWSER_MARKS

# A pipeline of the installation's own, with its stages named as the sales team says them.
PIPELINE = {"id": "sales", "name": "Продажи", "stages": [
    {"name": "Новая заявка"}, {"name": "Квалификация"}, {"name": "КП отправлено"},
    {"name": "Успешно реализовано", "kind": "won"},
    {"name": "Закрыто и не реализовано", "kind": "lost"}]}
FORMS = [
    ({"name": "Мария Иванова", "phone": "+7 (916) 123-45-67", "comment": "Нужна поставка"},
     "150000"),
    ({"name": "John Smith", "company": "Acme Ltd", "phone": "+7 903 555-00-11"}, "2500.50"),
    ({"name": "Пётр Сидоров", "phone": "8 (495) 765-43-21"}, None),
]


@pytest.fixture
def hub(start_hub, pg_url):
    for service in ("contacts", "deals"):
        fresh_schema(pg_url, service)
    hub = start_hub(database_url=pg_url, REMINDER_INTERVAL_SECONDS=1, CONNECTORS={"forms": {
        "allow_unknown_forms": False, "rate_limit_per_minute": 100000,
        "forms": {"contact-us": {"title": "Contact us"}}}}, LEAD_RULES=[
        {"connector": "forms", "form": "contact-us", "pipeline": "sales",
         "task_title": FIRST_TASK, "task_due_minutes": 15}])
    assert hub.api("PUT", "/api/v1/managers/Olga", json={"name": "Ольга"}).status_code == 200
    assert hub.api("POST", "/api/v1/pipelines", json=PIPELINE).status_code == 201
    assert hub.api("PUT", "/api/v1/pipelines/sales/managers",
                   json={"managers": ["Olga"]}).status_code == 200
    return hub


def post_forms(hub) -> dict:
    """The forms, each a new client with a deal (and its amount, as a manager would set it)."""
    deals = {}
    for fields, amount in FORMS:
        resp = requests.post(f"{hub.base_url}/hooks/forms/contact-us", data=fields, timeout=10)
        assert resp.status_code == 200, resp.text
        deal = wait_for(lambda: (p := hub.api("GET", "/api/v1/deals", params={
            "pipeline_id": "sales"}).json())["items"] and next(
            (d for d in p["items"] if d["title"] == fields["name"]), None),
            timeout=15, message=f"a deal for {fields['name']}")
        if amount:
            assert hub.api("PATCH", f"/api/v1/deals/{deal['id']}",
                           json={"amount": amount}).status_code == 200
        deals[fields["name"]] = deal["id"]
    wait_for(lambda: hub.api("GET", "/api/v1/tasks", params={"manager": "Olga"}
                             ).json()["total"] == len(FORMS), message="the first tasks")
    return deals


def long_column(hub, contact_id: str, size: int) -> None:
    """A pipeline whose first column holds more deals than the board shows at once."""
    assert hub.api("POST", "/api/v1/pipelines", json={"id": "wholesale", "name": "Опт", "stages": [
        {"name": "Заявка"}, {"name": "Отгрузка"}]}).status_code == 201
    for i in range(size):
        resp = hub.api("POST", "/api/v1/deals", json={
            "contact_id": contact_id, "pipeline_id": "wholesale", "title": f"Заказ №{i + 1}",
            "amount": "1000", "manager": "Olga"})
        assert resp.status_code == 201, resp.text


def test_a_manager_works_the_funnel_in_the_browser(hub):
    deals = post_forms(hub)
    john = hub.api("GET", f"/api/v1/deals/{deals['John Smith']}").json()
    long_column(hub, john["contact_id"], 23)
    stages = {s["name"]: s["id"] for s in hub.api("GET", "/api/v1/pipelines/sales")
              .json()["stages"]}
    os.makedirs(SCREENSHOTS, exist_ok=True)
    facts = {"deals": deals, "stages": stages, "first_task": FIRST_TASK,
             "screenshots": SCREENSHOTS}
    run_browser_session("sales_session.py", hub.base_url, OPERATOR_KEY, ADMIN_KEY, json.dumps(facts),
                        passed="sales session passed", timeout=240)

    # What the browser did is what the database holds.
    maria = hub.api("GET", f"/api/v1/deals/{deals['Мария Иванова']}").json()
    assert [(h["to_stage_name"], h["actor"]) for h in maria["history"]] == [
        ("Новая заявка", "lead_rule:config-1"), ("Квалификация", "Olga")]
    john = hub.api("GET", f"/api/v1/deals/{deals['John Smith']}").json()
    assert (john["status"], john["close_reason"]) == ("won", "Договор подписан")
    peter = hub.api("GET", f"/api/v1/deals/{deals['Пётр Сидоров']}").json()
    assert [h["actor"] for h in peter["history"]][1:] == ["Admin"]  # the refused drag: no row
    done = hub.api("GET", "/api/v1/tasks", params={"manager": "Olga", "done": "true"}
                   ).json()["items"]
    assert sorted((t["title"], t["reminded_at"] is not None) for t in done) == [
        ("Отправить КП", True), (FIRST_TASK, False)]
