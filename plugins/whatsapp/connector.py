"""WhatsApp Cloud API: ``GET|POST /hooks/whatsapp`` (PROTOCOLS.md §5.2).

In the Meta app's WhatsApp configuration the callback URL is ``https://<hub>/hooks/whatsapp``
with our ``verify_token``: Meta checks it with a GET that must echo ``hub.challenge``, then
posts messages and statuses signed with the app secret. Replies go through the Graph API's
``/<phone_number_id>/messages`` with the system user's ``access_token``.
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
    UnsupportedMediaType,
    WebhookRequest,
    WebhookResult,
)
from crmhub.plugins.chatapi import post_json, retry_later
from crmhub.plugins.whatsapp import events, samples
from crmhub.plugins.whatsapp.signing import HEADER, signature_matches

if TYPE_CHECKING:
    import requests

DEFAULT_API_URL = "https://graph.facebook.com/v21.0"


class WhatsAppConnector(MessengerConnector):
    name = "whatsapp"
    title = "WhatsApp"
    version = "1.0"
    api_version = "1.3"
    sample_module = samples
    routes = (
        Route("", "verify", methods=("GET",), description="Meta's callback URL check"),
        Route("", "notification", description="Messages from clients, statuses of ours"),
    )

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self.verify_token = str(self.settings.get("verify_token") or "")
        self.app_secret = str(self.settings.get("app_secret") or "")
        self.access_token = str(self.settings.get("access_token") or "")
        self.phone_number_id = str(self.settings.get("phone_number_id") or "")
        self.api_url = str(self.settings.get("api_url") or DEFAULT_API_URL).rstrip("/")

    def accounts(self) -> list[str]:
        return [self.phone_number_id] if self.phone_number_id else []

    # Webhooks ------------------------------------------------------------------------------
    def verify(self, request: WebhookRequest) -> WebhookResult:
        mode = request.first(request.query, "hub.mode")
        token = request.first(request.query, "hub.verify_token") or ""
        challenge = request.first(request.query, "hub.challenge")
        if not self.verify_token:
            raise Forbidden("the WhatsApp connector has no verify_token configured")
        if mode != "subscribe" or challenge is None:
            raise Forbidden("expected hub.mode=subscribe with a hub.challenge")
        if not hmac.compare_digest(token.encode(), self.verify_token.encode()):
            raise Forbidden("hub.verify_token is not this hub's verify_token")
        return WebhookResult(body=challenge, content_type="text/plain")

    def notification(self, request: WebhookRequest) -> WebhookResult:
        if not self.app_secret:
            raise Forbidden("the WhatsApp connector has no app_secret configured")
        presented = request.headers.get(HEADER)
        if not presented:
            raise Unauthorized(f"the {HEADER} header is missing")
        if not any(signature_matches(secret, request.body, presented)
                   for secret in self.accepted_secrets("app_secret")):
            raise Unauthorized(f"{HEADER} does not match the body signed with the app secret")
        if request.content_type != "application/json":
            raise UnsupportedMediaType(
                f"WhatsApp posts application/json, not {request.content_type or 'this'}")
        return WebhookResult(events=events.parse(request.json()))

    # Replies -------------------------------------------------------------------------------
    def send_message(self, api: requests.Session, message: OutgoingMessage) -> str:
        if not self.access_token:
            raise MessengerError("the WhatsApp connector has no access_token configured")
        account = message.account or self.phone_number_id
        status, body, raw = post_json(
            api, f"{self.api_url}/{account}/messages",
            {"messaging_product": "whatsapp", "recipient_type": "individual",
             "to": message.chat_id, "type": "text", "text": {"body": message.text}},
            self.timeout, "WhatsApp", headers={"Authorization": f"Bearer {self.access_token}"})
        if status == 200 and body:
            sent = body.get("messages") or [{}]
            if not sent[0].get("id"):
                raise MessengerError("WhatsApp's answer has no message id", details=raw)
            return str(sent[0]["id"])
        error = (body or {}).get("error") or {}
        reason = error.get("message") or f"HTTP {status}"
        if error.get("code") is not None:
            reason = f"{reason} (code {error['code']})"
        raise MessengerError(f"WhatsApp refused the message: {reason}",
                             unavailable=retry_later(status), details=body or raw)
