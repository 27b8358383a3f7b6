"""The operator UI as an operator meets it: `crmhub run` on real RabbitMQ and PostgreSQL, website
forms posted over HTTP, then headless Chromium signs in, searches and reads a client card
(operator_session.py, in a process of its own: see its docstring for why)."""
import os

import pytest
import requests
from browser_runs import BROWSER_MARKS, run_browser_session

from support import OPERATOR_KEY, fresh_schema, wait_for

SCREENSHOT = "/tmp/crmhub-operator-card.png"

pytestmark = BROWSER_MARKS

FORMS = [
    {"name": "Мария Иванова", "phone": "+7 (916) 123-45-67", "email": "maria@example.com",
     "comment": "Перезвоните после 18:00, пожалуйста", "utm_source": "yandex",
     "utm_medium": "cpc", "utm_campaign": "winter"},
    {"name": "John Smith", "company": "Acme Ltd", "phone": "+7 903 555-00-11",
     "email": "john@acme.example", "comment": "Need a quote for 40 seats"},
    {"name": "Пётр Сидоров", "phone": "8 (495) 765-43-21", "comment": "Доставка в Казань?",
     "utm_source": "vk"},
]


@pytest.fixture
def hub(start_hub, pg_url):
    fresh_schema(pg_url, "contacts")
    hub = start_hub(database_url=pg_url, CONNECTORS={"forms": {
        "allow_unknown_forms": False, "rate_limit_per_minute": 100000,
        "forms": {"contact-us": {"title": "Contact us"}}}})
    for fields in FORMS:
        resp = requests.post(f"{hub.base_url}/hooks/forms/contact-us", data=fields, timeout=10)
        assert resp.status_code == 200, resp.text
    wait_for(lambda: hub.api("GET", "/api/v1/contacts").json()["total"] == len(FORMS),
             message="every form became a card")
    return hub


def test_operator_signs_in_searches_and_reads_a_card(hub):
    run_browser_session("operator_session.py", hub.base_url, OPERATOR_KEY, SCREENSHOT,
                        passed="operator session passed")
    assert os.path.getsize(SCREENSHOT) > 0
