"""Telegram updates for the conformance kit, tests and the bench, shaped as the Bot API
documents ``Update`` and ``Message`` (core.telegram.org/bots/api; PROTOCOLS.md §5.1). The
values are made up; the first configured bot receives them, with its secret_token."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from crmhub.plugins.api import Sample, make_request

if TYPE_CHECKING:
    from crmhub.plugins.telegram.connector import TelegramConnector

USER = {"id": 412345678, "is_bot": False, "first_name": "Анна", "last_name": "Смирнова",
        "username": "anna_s", "language_code": "ru"}
CHAT = {"id": 412345678, "first_name": "Анна", "last_name": "Смирнова", "username": "anna_s",
        "type": "private"}


def message(update_id: int, message_id: int, user: dict = USER, **content) -> dict:
    chat = {**CHAT, "id": user["id"], "first_name": user.get("first_name"),
            "username": user.get("username")}
    return {"update_id": update_id, "message": {
        "message_id": message_id, "from": user, "chat": chat, "date": 1732600000, **content}}


TEXT = message(804113001, 17, text="Здравствуйте! Сколько стоит доставка в Казань?")
START = message(804113002, 18, text="/start",
                entities=[{"type": "bot_command", "offset": 0, "length": 6}])
PHOTO = message(804113003, 19, caption="Вот такой диван нужен", photo=[
    {"file_id": "AgACAgIAAxkBAAIBsmF-small", "file_unique_id": "AQADs1", "file_size": 1450,
     "width": 90, "height": 67},
    {"file_id": "AgACAgIAAxkBAAIBsmF-large", "file_unique_id": "AQADs2", "file_size": 182044,
     "width": 1280, "height": 960}])
DOCUMENT = message(804113004, 20, document={
    "file_id": "BQACAgIAAxkBAAIBs2F-doc", "file_unique_id": "AgADtA", "file_name": "ТЗ.pdf",
    "mime_type": "application/pdf", "file_size": 48213})
HUGE_VIDEO = message(804113005, 21, video={
    "file_id": "BAACAgIAAxkBAAIBtGF-video", "file_unique_id": "AgADtQ", "width": 1920,
    "height": 1080, "duration": 600, "mime_type": "video/mp4", "file_size": 1_500_000_000})
OWN_CONTACT = message(804113006, 22, contact={
    "phone_number": "79161234567", "first_name": "Анна", "last_name": "Смирнова",
    "user_id": USER["id"]})
# Someone else's card, shared by our user: not the sender's phone.
OTHER_CONTACT = message(804113007, 23, contact={"phone_number": "+79035550000",
                                                "first_name": "Пётр"})
CALLBACK_QUERY = {"update_id": 804113008, "callback_query": {
    "id": "4382bfdwdsb323b2d9", "from": USER, "data": "price", "chat_instance": "-8271"}}
GROUP_MESSAGE = {"update_id": 804113009, "message": {
    "message_id": 5, "from": USER, "date": 1732600000, "text": "всем привет",
    "chat": {"id": -1001234567890, "title": "Покупатели", "type": "supergroup"}}}

VALID = [("text", TEXT, True), ("start command", START, True), ("photo", PHOTO, True),
         ("document", DOCUMENT, True), ("huge video", HUGE_VIDEO, True),
         ("own contact", OWN_CONTACT, True), ("someone else's contact", OTHER_CONTACT, True),
         ("callback query", CALLBACK_QUERY, False), ("group message", GROUP_MESSAGE, False)]


def first_bot(connector: TelegramConnector) -> tuple[str, str]:
    for name, bot in sorted(connector.bots.items()):
        if bot.get("secret_token"):
            return name, str(bot["secret_token"])
    return "", ""


def update_request(bot: str, secret: str | None, body: bytes | str,
                   content_type: str = "application/json"):
    headers = {"Content-Type": content_type}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return make_request(path=f"/hooks/telegram/{bot}", body=body, headers=headers)


def valid(connector: TelegramConnector) -> list[Sample]:
    bot, secret = first_bot(connector)
    if not bot:
        return []
    return [Sample(name, update_request(bot, secret, json.dumps(update, ensure_ascii=False)),
                   ["message_incoming"] if produces else [], route_args={"bot": bot})
            for name, update, produces in VALID]


def forged(connector: TelegramConnector, sample: Sample) -> Sample:
    bot = sample.route_args["bot"]
    return Sample(f"{sample.name} (wrong secret)",
                  update_request(bot, "not-the-secret", sample.request.body), [],
                  route_args=sample.route_args)


def bad(connector: TelegramConnector) -> list[Sample]:
    bot, secret = first_bot(connector)
    if not bot:
        return [Sample("unknown bot", update_request("nobody", "x", "{}"), [])]
    return [Sample(name, update_request(bot, secret, body, *extra), [])
            for name, body, *extra in (
                ("not JSON", "{update_id: 1"),
                ("no update_id", json.dumps({"message": TEXT["message"]})),
                ("a list", "[1, 2]"),
                ("message without chat", json.dumps({"update_id": 1, "message": {
                    "message_id": 1, "from": USER, "date": 1}})),
                ("a form", "update_id=1", "application/x-www-form-urlencoded"))] + [
        Sample("no secret", update_request(bot, None, json.dumps(TEXT)), []),
        Sample("unknown bot", update_request("nobody", secret, json.dumps(TEXT)), [])]
