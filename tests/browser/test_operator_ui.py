"""The operator UI as an operator meets it: `crmhub run` on real RabbitMQ and PostgreSQL, website
forms posted over HTTP, then headless Chromium signs in, searches and reads a client card
(operator_session.py, in a process of its own: see its docstring for why)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from support import OPERATOR_KEY, fresh_schema, wait_for

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SESSION = Path(__file__).with_name("operator_session.py")
SCREENSHOT = "/tmp/crmhub-operator-card.png"

pytestmark = [
    pytest.mark.browser, pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres,
    pytest.mark.skipif(not os.path.exists(CHROMIUM),
                       reason=f"no Chromium at {CHROMIUM} (`make test` installs it with apt)"),
]

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
    session = subprocess.run(
        [sys.executable, str(SESSION), hub.base_url, OPERATOR_KEY, SCREENSHOT],
        capture_output=True, text=True, timeout=180, env={**os.environ, "CHROMIUM": CHROMIUM})
    assert session.returncode == 0, f"{session.stdout}\n{session.stderr}"
    assert "operator session passed" in session.stdout
    assert os.path.getsize(SCREENSHOT) > 0
