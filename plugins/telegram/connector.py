"""Telegram Bot API: ``POST /hooks/telegram/<bot>`` (PROTOCOLS.md §5.1).

Each bot is named in the settings (``bots: {<name>: {token, secret_token}}``) and registered
with ``setWebhook(url=https://<hub>/hooks/telegram/<name>, secret_token=<secret_token>)``;
Telegram then sends that secret in ``X-Telegram-Bot-Api-Secret-Token`` with every update.
Replies go through ``sendMessage``. Telegram has no delivery receipts for bots: a reply the
API accepted is ``sent``, and stays so.
"""
from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from crmhub.plugins.api import (
    Forbidden,
    MessengerConnector,
    MessengerError,
    OutgoingMessage,
    Route,
    Unauthorized,
    UnknownTarget,
    UnsupportedMediaType,
    WebhookRequest,
    WebhookResult,
)
from crmhub.plugins.chatapi import post_json, retry_later
from crmhub.plugins.telegram import samples
from crmhub.plugins.telegram.updates import parse_update

if TYPE_CHECKING:
    import requests

DEFAULT_API_URL = "https://api.telegram.org"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class TelegramConnector(MessengerConnector):
    name = "telegram"
    title = "Telegram"
    version = "1.0"
    api_version = "1.2"
    sample_module = samples
    routes = (Route("/<bot>", "update", description="An update of the bot named in the path"),)

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self.bots: dict[str, dict] = {str(name): dict(bot or {}) for name, bot in
                                      (self.settings.get("bots") or {}).items()}
        self.api_url = str(self.settings.get("api_url") or DEFAULT_API_URL).rstrip("/")

    def accounts(self) -> list[str]:
        return sorted(self.bots)

    # Webhook -------------------------------------------------------------------------------
    def update(self, request: WebhookRequest, bot: str) -> WebhookResult:
        self.authenticate(request, bot)
        if request.content_type != "application/json":
            raise UnsupportedMediaType(
                f"Telegram posts updates as application/json, not {request.content_type or 'this'}")
        event = parse_update(bot, request.json(), self.max_attachment_bytes)
        return WebhookResult(events=[("message_incoming", event)] if event else [])

    def authenticate(self, request: WebhookRequest, bot: str) -> None:
        settings = self.bots.get(bot)
        if settings is None:
            raise UnknownTarget(f"no Telegram bot {bot!r} is configured")
        expected = str(settings.get("secret_token") or "")
        if not expected:
            raise Forbidden(f"bot {bot!r} has no secret_token: set one, and pass it to "
                            "setWebhook, before its updates are accepted")
        presented = request.headers.get(SECRET_HEADER)
        if not presented:
            raise Unauthorized(f"the {SECRET_HEADER} header is missing")
        if not hmac.compare_digest(presented.encode(), expected.encode()):
            raise Unauthorized(f"{SECRET_HEADER} is not this bot's secret_token")

    # Replies -------------------------------------------------------------------------------
    def send_message(self, api: requests.Session, message: OutgoingMessage) -> str:
        token = str((self.bots.get(message.account) or {}).get("token") or "")
        if not token:
            raise MessengerError(f"Telegram bot {message.account!r} has no token configured")
        status, body, raw = post_json(
            api, f"{self.api_url}/bot{token}/sendMessage",
            {"chat_id": message.chat_id, "text": message.text}, self.timeout, "Telegram")
        if status == 200 and body and body.get("ok"):
            result = body.get("result") or {}
            if "message_id" not in result:
                raise MessengerError("Telegram's answer has no message_id", details=raw)
            return str(result["message_id"])
        reason = (body or {}).get("description") or f"HTTP {status}"
        raise MessengerError(f"Telegram refused the message: {reason}",
                             unavailable=retry_later(status), details=body or raw)



