"""Messenger conversations in the operator UI: `crmhub run` on real RabbitMQ and PostgreSQL
with the Telegram connector (its Bot API played by plugins/telegram/fake_api.py); headless
Chromium reads the client's message on the card and replies from it (messenger_session.py, in
a process of its own: see operator_session.py for why)."""
import json
import os

import pytest
import requests
from browser_runs import BROWSER_MARKS, run_browser_session

from crmhub.plugins.telegram import samples
from crmhub.plugins.telegram.fake_api import SECRET, FakeTelegramApi
from support import OPERATOR_KEY, fresh_schema, wait_for

SCREENSHOTS = "/tmp/crmhub-messenger"

pytestmark = BROWSER_MARKS


@pytest.fixture
def telegram():
    with FakeTelegramApi() as fake:
        yield fake


@pytest.fixture
def hub(start_hub, pg_url, telegram):
    for service in ("contacts", "deals", "messenger"):
        fresh_schema(pg_url, service)
    return start_hub(database_url=pg_url, CONNECTORS={"telegram": telegram.settings()})


def run_session(hub, mode: str, facts: dict) -> None:
    run_browser_session("messenger_session.py", mode, hub.base_url, OPERATOR_KEY, json.dumps(facts),
                        passed=f"{mode} session passed", timeout=240)


def test_a_manager_replies_from_the_card_and_sees_delivery(hub, telegram):
    posted = requests.post(f"{hub.base_url}/hooks/telegram/shop", timeout=10,
                           data=json.dumps(samples.TEXT).encode(),
                           headers={"Content-Type": "application/json",
                                    "X-Telegram-Bot-Api-Secret-Token": SECRET})
    assert posted.status_code == 200
    card = wait_for(lambda: (p := hub.api("GET", "/api/v1/contacts", params={"q": "Смирнова"})
                             .json())["total"] and p["items"][0], message="the client's card")
    wait_for(lambda: any(e["kind"] == "message" for e in
                         hub.api("GET", f"/api/v1/contacts/{card['id']}").json()["timeline"]),
             message="the message on the card")
    os.makedirs(SCREENSHOTS, exist_ok=True)
    facts = {"card": card["id"], "screenshots": SCREENSHOTS,
             "reply": "Доставка в Казань — 500 ₽, завтра", "refused_reply": "Вы здесь?"}
    run_session(hub, "reply", facts)
    assert [(m.chat_id, m.text) for m in telegram.sent] == [("412345678", facts["reply"])]

    telegram.refuse(403, "Forbidden: bot was blocked by the user")
    run_session(hub, "refused", facts)
    assert len(telegram.sent) == 1
