"""A fake Telegram Bot API on 127.0.0.1 for tests, demos and benchmarks: point the
connector's ``api_url`` at ``FakeTelegramApi.origin``.

It answers ``POST /bot<token>/sendMessage`` as Telegram does: ``{"ok": true, "result":
Message}`` for a known token and chat, ``{"ok": false, "error_code": 401, "description":
"Unauthorized"}`` for an unknown token, and after ``refuse(code, description)`` that error.
``down = True`` drops every connection unanswered. Received messages are in ``sent``.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from crmhub.plugins.chatfake import FakeApi

TOKEN = "7001234567:AAH-fake-token-for-tests"
SECRET = "fake-webhook-secret"


@dataclass
class SentMessage:
    token: str
    chat_id: str
    text: str
    message_id: int


class FakeTelegramApi(FakeApi):
    def __init__(self, tokens: dict[str, str] | None = None):
        super().__init__()
        self.tokens = tokens or {"shop": TOKEN}  # bot name -> token
        self.sent: list[SentMessage] = []
        self.refusal: tuple[int, str] | None = None
        self._next_id = 1000

    def settings(self, **extra) -> dict:
        """A ``CONNECTORS.telegram`` block for a connector talking to this fake."""
        return {"api_url": self.origin, "timeout": 2,
                "bots": {name: {"token": token, "secret_token": SECRET}
                         for name, token in self.tokens.items()}, **extra}

    def refuse(self, code: int = 403, description: str = "Forbidden: bot was blocked by the user"):
        self.refusal = (code, description)

    def accept(self) -> None:
        self.refusal = None

    def answer(self, method, path, headers, body):
        token, _, api_method = path.split("?", 1)[0].removeprefix("/bot").partition("/")
        if method != "POST" or token not in self.tokens.values():
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if api_method != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: bad JSON"}
        if self.refusal:
            code, description = self.refusal
            return code, {"ok": False, "error_code": code, "description": description}
        if not params.get("chat_id") or not params.get("text"):
            return 400, {"ok": False, "error_code": 400,
                         "description": "Bad Request: message text is empty"}
        self._next_id += 1
        self.sent.append(SentMessage(token, str(params["chat_id"]), params["text"], self._next_id))
        return 200, {"ok": True, "result": {
            "message_id": self._next_id, "date": int(time.time()), "text": params["text"],
            "chat": {"id": params["chat_id"], "type": "private"},
            "from": {"id": int(token.split(":")[0]), "is_bot": True, "first_name": "Shop"}}}
