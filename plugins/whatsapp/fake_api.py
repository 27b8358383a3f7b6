"""A fake WhatsApp Cloud (Graph) API on 127.0.0.1 for tests, demos and benchmarks: point the
connector's ``api_url`` at ``FakeGraphApi.url``.

It answers ``POST /v21.0/<phone_number_id>/messages`` as the Graph API does: ``{"messages":
[{"id": "wamid..."}]}`` for the right bearer token, ``{"error": {...}}`` with HTTP 401 for a
wrong one, and after ``refuse(...)`` that error. ``down = True`` drops every connection
unanswered. ``post_status(hub_url, wamid, status)`` plays Meta's status webhook, signed with
the app secret.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import requests

from crmhub.plugins.chatfake import FakeApi
from crmhub.plugins.whatsapp import samples
from crmhub.plugins.whatsapp.signing import HEADER, signature

VERSION = "v21.0"
ACCESS_TOKEN = "EAAG-fake-system-user-token"
APP_SECRET = "fake-app-secret"
VERIFY_TOKEN = "fake-verify-token"
PHONE_NUMBER_ID = samples.METADATA["phone_number_id"]


@dataclass
class SentMessage:
    phone_number_id: str
    to: str
    text: str
    wamid: str


class FakeGraphApi(FakeApi):
    def __init__(self):
        super().__init__()
        self.sent: list[SentMessage] = []
        self.refusal: tuple[int, dict] | None = None

    @property
    def url(self) -> str:
        return f"{self.origin}/{VERSION}"

    def settings(self, **extra) -> dict:
        """A ``CONNECTORS.whatsapp`` block for a connector talking to this fake."""
        return {"api_url": self.url, "timeout": 2, "access_token": ACCESS_TOKEN,
                "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN,
                "phone_number_id": PHONE_NUMBER_ID, **extra}

    def refuse(self, status: int = 400, code: int = 131026,
               message: str = "Message undeliverable") -> None:
        self.refusal = (status, {"message": message, "type": "OAuthException", "code": code,
                                 "fbtrace_id": "AbCdEf"})

    def accept(self) -> None:
        self.refusal = None

    def answer(self, method, path, headers, body):
        parts = path.split("?", 1)[0].strip("/").split("/")
        if headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return 401, {"error": {"message": "Invalid OAuth access token.", "code": 190,
                                   "type": "OAuthException"}}
        if method != "POST" or len(parts) != 3 or parts[0] != VERSION or parts[2] != "messages":
            return 400, {"error": {"message": "Unsupported request", "code": 100}}
        if self.refusal:
            status, error = self.refusal
            return status, {"error": error}
        try:
            params = json.loads(body or b"{}")
            text = params["text"]["body"]
            to = params["to"]
        except (ValueError, KeyError, TypeError):
            return 400, {"error": {"message": "(#100) Invalid parameter", "code": 100}}
        wamid = "wamid." + uuid.uuid4().hex
        self.sent.append(SentMessage(parts[1], to, text, wamid))
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                     "messages": [{"id": wamid}]}

    @staticmethod
    def post_webhook(hub_url: str, payload: dict, app_secret: str = APP_SECRET) -> requests.Response:
        raw = json.dumps(payload).encode()
        return requests.post(f"{hub_url}/hooks/whatsapp", data=raw, timeout=10, headers={
            "Content-Type": "application/json", HEADER: signature(app_secret, raw)})

    def post_status(self, hub_url: str, wamid: str, status: str, errors=None) -> requests.Response:
        """Meta's status webhook about a message this fake accepted."""
        sent = next((m for m in self.sent if m.wamid == wamid), None)
        item = {**samples.delivery(status, wamid, errors),
                "recipient_id": sent.to if sent else samples.CLIENT["wa_id"],
                "timestamp": str(int(time.time()))}
        return self.post_webhook(hub_url, samples.body(statuses=[item], phone_number_id=(
            sent.phone_number_id if sent else PHONE_NUMBER_ID)))
