"""Messengers as a sales desk meets them: `crmhub run` on real RabbitMQ and PostgreSQL with the
Telegram and WhatsApp connectors, whose clouds are played by local servers speaking the Bot
API and the Graph API (plugins/*/fake_api.py).

A client who writes gets a card (and a deal, by the lead rules) with the message on its
timeline; the manager replies from the card and the client's messenger gets it once; an
outage keeps the reply queued, retried, then dead-lettered and visible, and replayed later;
WhatsApp's receipts move the reply to delivered and read; forged and malformed webhooks get
clear refusals."""
import json
import subprocess
import time

import pytest
import requests
import yaml

from crmhub.plugins.telegram import samples as telegram_samples
from crmhub.plugins.telegram.fake_api import SECRET, FakeTelegramApi
from crmhub.plugins.whatsapp import samples as whatsapp_samples
from crmhub.plugins.whatsapp.fake_api import VERIFY_TOKEN, FakeGraphApi
from support import OPERATOR_KEY, REPO, fresh_schema, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.rabbit, pytest.mark.postgres]
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
WA_CLIENT = "79161234567"


@pytest.fixture
def telegram():
    with FakeTelegramApi() as fake:
        yield fake


@pytest.fixture
def whatsapp():
    with FakeGraphApi() as fake:
        yield fake


@pytest.fixture
def hub(start_hub, pg_url, telegram, whatsapp):
    for service in ("contacts", "deals", "messenger"):
        fresh_schema(pg_url, service)
    hub = start_hub(
        database_url=pg_url,
        CONNECTORS={"telegram": telegram.settings(), "whatsapp": whatsapp.settings()},
        LEAD_RULES=[{"connector": "telegram", "pipeline": "b2b-sales"}],
        RETRY_DELAYS_MS=[100, 200])
    assert hub.api("POST", "/api/v1/pipelines/templates/b2b-sales").status_code == 201
    return hub


def post_update(hub, update, secret=SECRET, bot="shop") -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return requests.post(f"{hub.base_url}/hooks/telegram/{bot}", timeout=10, headers=headers,
                         data=json.dumps(update, ensure_ascii=False).encode())


def card_named(hub, text) -> dict:
    return wait_for(lambda: (p := hub.api("GET", "/api/v1/contacts", params={"q": text}).json())
                    ["total"] and p["items"][0], message=f"a card for {text}")


def message_entries(hub, contact_id) -> list[dict]:
    card = hub.api("GET", f"/api/v1/contacts/{contact_id}").json()
    return [e for e in card["timeline"] if e["kind"] == "message"]


def conversation(hub, contact_id) -> dict:
    [found] = hub.api("GET", f"/api/v1/contacts/{contact_id}/conversations").json()["items"]
    return found


def reply(hub, contact_id, text, key) -> requests.Response:
    return requests.post(f"{hub.base_url}/api/v1/contacts/{contact_id}/messages", timeout=10,
                         headers=OPERATOR, json={"text": text, "idempotency_key": key})


def test_a_telegram_client_gets_a_card_a_deal_and_one_reply(hub, telegram):
    assert post_update(hub, telegram_samples.TEXT).status_code == 200
    assert post_update(hub, telegram_samples.TEXT).status_code == 200  # Telegram retried
    assert post_update(hub, telegram_samples.PHOTO).status_code == 200
    card = card_named(hub, "Смирнова")
    assert card["source"]["channel"] == "messenger" and card["source"]["connector"] == "telegram"
    assert card["custom_fields"] == {"Telegram": "@anna_s"}
    entries = wait_for(lambda: len(e := message_entries(hub, card["id"])) == 2 and e,
                       message="both messages on the card")
    assert sorted(e["data"]["text"] for e in entries) == [
        "Вот такой диван нужен", "Здравствуйте! Сколько стоит доставка в Казань?"]
    photo = next(e for e in entries if e["data"]["attachments"])
    assert photo["data"]["attachments"][0]["size"] == 182044
    deals = wait_for(lambda: hub.api("GET", "/api/v1/deals", params={"contact_id": card["id"]})
                     .json()["items"], message="a deal by the lead rule")
    assert deals[0]["pipeline_id"] == "b2b-sales"

    first = reply(hub, card["id"], "Доставка в Казань — 500 ₽", "reply-000001")
    again = reply(hub, card["id"], "Доставка в Казань — 500 ₽", "reply-000001")
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["id"] == again.json()["id"] and first.json()["status"] == "queued"
    [sent] = telegram.wait_for_sent(1)
    assert (sent.chat_id, sent.text) == ("412345678", "Доставка в Казань — 500 ₽")
    wait_for(lambda: conversation(hub, card["id"])["messages"][-1]["status"] == "sent",
             message="the reply marked sent")
    outgoing = wait_for(lambda: [e for e in message_entries(hub, card["id"])
                                 if e["data"]["direction"] == "outbound"
                                 and e["data"]["status"] == "sent"], message="the reply on the card")
    assert outgoing[0]["title"] == "Telegram message to the client from Olga"
    time.sleep(0.5)
    assert len(telegram.sent) == 1


def test_refused_webhooks_say_why_and_leave_no_trace(hub):
    forged = post_update(hub, telegram_samples.TEXT, secret="guess")
    assert forged.status_code == 401 and "secret_token" in forged.json()["message"]
    assert post_update(hub, telegram_samples.TEXT, secret=None).status_code == 401
    assert post_update(hub, telegram_samples.TEXT, bot="ghost").status_code == 404
    malformed = post_update(hub, {"message": {"text": "hi"}})
    assert malformed.status_code == 400 and "update_id" in malformed.json()["message"]
    huge = post_update(hub, {**telegram_samples.TEXT, "padding": "x" * 2_000_000})
    assert huge.status_code == 413 and huge.json()["message"]
    unsigned = requests.post(f"{hub.base_url}/hooks/whatsapp", timeout=10,
                             json=whatsapp_samples.body([whatsapp_samples.TEXT]))
    assert unsigned.status_code == 401 and "X-Hub-Signature-256" in unsigned.json()["message"]
    assert hub.api("GET", "/api/v1/contacts").json()["total"] == 0
    assert hub.api("GET", "/health").status_code == 200


def test_a_reply_during_an_outage_is_retried_dead_lettered_and_replayed_once(
        hub, telegram, tmp_path):
    assert post_update(hub, telegram_samples.TEXT).status_code == 200
    card = card_named(hub, "Смирнова")
    telegram.down = True
    assert reply(hub, card["id"], "Мы на связи", "reply-000002").status_code == 202
    cli = [str(REPO / ".venv/bin/crmhub"), "dlq"]
    config = tmp_path / "cli.yaml"
    config.write_text(yaml.safe_dump({"AMQP_URI": hub.config["AMQP_URI"], "LOG_LEVEL": "WARNING"}))

    def dead_letters():
        listed = subprocess.run(cli + ["list", "--config", str(config), "--service", "messenger",
                                       "--json"], capture_output=True, text=True, check=True)
        return json.loads(listed.stdout)

    [letter] = wait_for(dead_letters, timeout=20, interval=0.3, message="the reply dead-lettered")
    assert letter["origin"] == "messenger/message_sent" and letter["attempts"] == 3
    assert "Telegram is not reachable" in letter["error"]
    queued = conversation(hub, card["id"])["messages"][-1]
    assert (queued["status"], queued["attempts"]) == ("queued", 3)
    assert "not reachable" in queued["error"] and telegram.dropped == 3
    page = requests.get(f"{hub.base_url}/contacts/{card['id']}", timeout=10,
                        cookies={"crmhub_key": OPERATOR_KEY})
    assert "Telegram is not reachable" in page.text and "retrying" in page.text

    telegram.down = False
    replayed = subprocess.run(cli + ["replay", "--config", str(config), "--service", "messenger",
                                     "--all"], capture_output=True, text=True, check=True)
    assert "replayed 1" in replayed.stdout
    [sent] = telegram.wait_for_sent(1)
    assert sent.text == "Мы на связи"
    wait_for(lambda: conversation(hub, card["id"])["messages"][-1]["status"] == "sent",
             message="the replayed reply sent")
    subprocess.run(cli + ["replay", "--config", str(config), "--service", "messenger", "--all"],
                   capture_output=True, text=True, check=True)
    time.sleep(0.5)
    assert len(telegram.sent) == 1


def test_whatsapp_client_by_number_and_receipts_on_the_reply(hub, whatsapp):
    check = requests.get(f"{hub.base_url}/hooks/whatsapp", timeout=10, params={
        "hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN})
    assert (check.status_code, check.text) == (200, "1158201444")
    incoming = {**whatsapp_samples.TEXT, "from": WA_CLIENT, "id": "wamid.in-1"}
    body = whatsapp_samples.body([incoming])
    body["entry"][0]["changes"][0]["value"]["contacts"] = [
        {"profile": {"name": "Иван"}, "wa_id": WA_CLIENT}]
    assert whatsapp.post_webhook(hub.base_url, body).status_code == 200
    card = wait_for(lambda: (p := hub.api("GET", "/api/v1/contacts",
                                          params={"phone": WA_CLIENT}).json())["total"]
                    and p["items"][0], message="a card for the WhatsApp number")
    assert card["name"] == "Иван" and card["source"]["connector"] == "whatsapp"

    assert reply(hub, card["id"], "Здравствуйте, Иван!", "reply-000003").status_code == 202
    [sent] = whatsapp.wait_for_sent(1)
    assert (sent.to, sent.text) == (WA_CLIENT, "Здравствуйте, Иван!")
    wait_for(lambda: conversation(hub, card["id"])["messages"][-1]["status"] == "sent",
             message="the reply sent")
    for status in ("delivered", "read", "delivered"):  # the last one late: read stays
        assert whatsapp.post_status(hub.base_url, sent.wamid, status).status_code == 200
    stranger = whatsapp.post_status(hub.base_url, "wamid.sent-by-someone-else", "read")
    assert stranger.status_code == 200
    wait_for(lambda: conversation(hub, card["id"])["messages"][-1]["status"] == "read",
             message="the reply read")
    wait_for(lambda: any(e["data"]["status"] == "read" for e in message_entries(hub, card["id"])),
             message="read shown on the card")
    time.sleep(0.3)
    assert conversation(hub, card["id"])["messages"][-1]["status"] == "read"
