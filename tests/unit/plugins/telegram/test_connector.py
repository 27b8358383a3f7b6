"""Telegram updates through a real connector host: what a manager will see of each kind of
message, who is refused and why, and replies through a local Bot API."""
import json

import pytest
import requests

from crmhub.plugins.api import (
    BadPayload,
    Forbidden,
    MessengerError,
    OutgoingMessage,
    Unauthorized,
    UnknownTarget,
)
from crmhub.plugins.conformance import host_for
from crmhub.plugins.telegram import TelegramConnector, samples
from crmhub.plugins.telegram.fake_api import FakeTelegramApi

SETTINGS = {"bots": {"shop": {"token": "123:abc", "secret_token": "s3cret"},
                     "lazy": {"token": "456:def"}}, "max_attachment_bytes": 1_000_000}


@pytest.fixture
def host():
    return host_for(TelegramConnector, SETTINGS)


def deliver(host, update, bot="shop", secret="s3cret"):
    request = samples.update_request(bot, secret, json.dumps(update, ensure_ascii=False))
    return host.handle(request)[1].events


def only_event(host, update) -> dict:
    [(event_type, event)] = deliver(host, update)
    assert event_type == "message_incoming"
    return event


def test_a_text_message_names_its_sender_and_dedupes_by_update_id(host):
    event = only_event(host, samples.TEXT)
    assert event["idempotency_key"] == "telegram:shop:804113001"
    assert (event["provider"], event["account"], event["chat_id"]) == ("telegram", "shop", "412345678")
    assert event["text"] == "Здравствуйте! Сколько стоит доставка в Казань?"
    assert event["sender"] == {"id": "412345678", "username": "anna_s", "name": "Анна Смирнова",
                               "phone": None}
    assert event["sent_at"].startswith("2024-11-26T")
    assert only_event(host, samples.TEXT)["idempotency_key"] == event["idempotency_key"]


def test_a_photo_keeps_its_largest_size_and_its_caption(host):
    event = only_event(host, samples.PHOTO)
    assert event["text"] == "Вот такой диван нужен"
    assert event["attachments"] == [{
        "kind": "photo", "file_id": "AgACAgIAAxkBAAIBsmF-large", "mime": None, "size": 182044,
        "name": None, "width": 1280, "height": 960, "too_large": False}]


def test_a_document_keeps_name_type_and_size(host):
    [attachment] = only_event(host, samples.DOCUMENT)["attachments"]
    assert (attachment["kind"], attachment["name"], attachment["mime"], attachment["size"]) == (
        "document", "ТЗ.pdf", "application/pdf", 48213)


def test_an_attachment_over_the_cap_is_flagged_not_refused(host):
    [attachment] = only_event(host, samples.HUGE_VIDEO)["attachments"]
    assert attachment["too_large"] is True and attachment["size"] == 1_500_000_000


def test_a_shared_own_contact_gives_the_phone_someone_elses_does_not(host):
    own = only_event(host, samples.OWN_CONTACT)
    assert own["sender"]["phone"] == "79161234567"
    assert own["text"] == "Shared a contact: Анна Смирнова 79161234567"
    other = only_event(host, samples.OTHER_CONTACT)
    assert other["sender"]["phone"] is None and "+79035550000" in other["text"]


def test_updates_without_a_private_message_are_acknowledged_with_no_event(host):
    assert deliver(host, samples.CALLBACK_QUERY) == []
    assert deliver(host, samples.GROUP_MESSAGE) == []


@pytest.mark.parametrize("secret, refusal", [(None, Unauthorized), ("guess", Unauthorized)])
def test_a_wrong_or_missing_secret_token_is_refused(host, secret, refusal):
    with pytest.raises(refusal) as caught:
        deliver(host, samples.TEXT, secret=secret)
    assert caught.value.status == 401 and "X-Telegram-Bot-Api-Secret-Token" in caught.value.message


def test_a_bot_without_secret_token_or_not_configured_takes_no_updates(host):
    with pytest.raises(Forbidden, match="no secret_token"):
        deliver(host, samples.TEXT, bot="lazy", secret="")
    with pytest.raises(UnknownTarget, match="no Telegram bot 'ghost'"):
        deliver(host, samples.TEXT, bot="ghost")


@pytest.mark.parametrize("update, complaint", [
    ({"message": samples.TEXT["message"]}, "update_id"),
    ({"update_id": 1, "message": {**samples.TEXT["message"], "chat": None}}, "message.chat"),
    ({"update_id": 1, "message": {**samples.TEXT["message"], "photo": []}}, "message.photo"),
    ({"update_id": 1, "message": {**samples.TEXT["message"], "date": "today"}}, "message.date"),
    ({"update_id": 1, "message": {**samples.TEXT["message"], "text": {"a": 1}}}, "text"),
])
def test_malformed_updates_say_what_is_wrong(host, update, complaint):
    with pytest.raises(BadPayload) as caught:
        deliver(host, update)
    assert caught.value.status == 400 and complaint in caught.value.message


# -- replies through the Bot API ----------------------------------------------------------------

@pytest.fixture
def bot_api():
    with FakeTelegramApi() as fake:
        yield fake


def reply(connector, text="Доставка 500 ₽"):
    with requests.Session() as api:
        return connector.send_message(api, OutgoingMessage("m1", "shop", "412345678", text))


def test_a_reply_goes_through_send_message_and_gets_telegrams_id(bot_api):
    connector = TelegramConnector(bot_api.settings())
    assert reply(connector) == "1001"
    [sent] = bot_api.sent
    assert (sent.chat_id, sent.text) == ("412345678", "Доставка 500 ₽")


def test_a_refusal_is_final_an_outage_or_rate_limit_is_worth_retrying(bot_api):
    connector = TelegramConnector(bot_api.settings())
    bot_api.refuse(403, "Forbidden: bot was blocked by the user")
    with pytest.raises(MessengerError) as refused:
        reply(connector)
    assert not refused.value.unavailable and "bot was blocked by the user" in refused.value.message
    bot_api.refuse(429, "Too Many Requests: retry after 5")
    with pytest.raises(MessengerError) as limited:
        reply(connector)
    assert limited.value.unavailable
    bot_api.accept()
    bot_api.down = True
    with pytest.raises(MessengerError) as down:
        reply(connector)
    assert down.value.unavailable and "not reachable" in down.value.message
    assert bot_api.sent == []


def test_a_bot_without_token_cannot_reply(bot_api):
    connector = TelegramConnector({"api_url": bot_api.origin, "bots": {"shop": {}}})
    with pytest.raises(MessengerError, match="no token"):
        reply(connector)
