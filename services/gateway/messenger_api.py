"""Messenger conversations at the edge: a card's conversations and replies to the client,
over REST (bearer keys) and from the card page (its cookie session)."""
from __future__ import annotations

import uuid
from urllib.parse import quote

import structlog
from nameko.exceptions import RemoteError
from werkzeug.utils import redirect

from crmhub.contracts import messages as schemas
from crmhub.contracts.auth import allowed
from crmhub.contracts.base import load_input
from crmhub.contracts.errors import CrmhubError, InvalidInput
from crmhub.services.gateway.http import http, json_body, json_response, refuse_unknown_args
from crmhub.services.gateway.openapi import operation
from crmhub.services.gateway.ui import html_page, ui_page

log = structlog.get_logger(__name__)
CARD_MESSAGES = 30
STATUS_WORDS = {"received": "received", "queued": "queued", "sending": "sending", "sent": "sent",
                "delivered": "delivered", "read": "read", "failed": "not delivered"}


def _send_request(card: dict, body: dict) -> dict:
    request = load_input(schemas.SendMessageSchema, body)
    return {**request, "contact_id": card["id"], "contact_ids": card.get("merged_ids") or []}


class MessengerApi:
    """HTTP entrypoints of the messenger service; mixed into GatewayService (which provides
    ``messenger``, ``contacts``, ``api_keys`` and ``_principal``)."""

    def _card_conversations(self, card: dict, latest: int) -> dict:
        return self.messenger.conversations(
            {"contact_ids": [card["id"], *(card.get("merged_ids") or [])], "messages": latest})

    @http("GET", "/api/v1/contacts/<string:contact_id>/conversations")
    @operation(summary="A client's messenger conversations with their latest messages",
               tags=["messages"], response=schemas.ConversationListSchema,
               permission="messages:read",
               description="Telegram and WhatsApp threads of the card (and of the cards merged "
                           "into it), newest first; each carries its latest `messages` (query "
                           "parameter, default 50), oldest first, with their delivery status.")
    def list_conversations(self, request, contact_id):
        self._principal(request, "messages:read")
        refuse_unknown_args(request, ("messages",))
        card = self.contacts.get_contact(contact_id)
        return self._card_conversations(card, request.args.get("messages", 50))

    @http("POST", "/api/v1/contacts/<string:contact_id>/messages")
    @operation(summary="Send a message to the client in their messenger", tags=["messages"],
               status=202, request=schemas.SendMessageSchema, response=schemas.MessageSchema,
               permission="messages:send",
               description="Goes to the client's latest conversation (or `conversation_id`, or "
                           "the latest of `provider`), queued: the answer is 202 with status "
                           "`queued`, delivery follows (`sent`, `delivered`, `read` or "
                           "`failed` on the card). While the messenger is down the message is "
                           "retried with backoff, then dead-lettered. The same "
                           "`idempotency_key` again answers the first message; it is sent once. "
                           "A client who never wrote cannot be written to: 400.")
    def send_message(self, request, contact_id):
        principal = self._principal(request, "messages:send")
        card = self.contacts.get_contact(contact_id)
        message = self.messenger.send_message(_send_request(card, json_body(request)),
                                              principal.name)
        return json_response(message, 202)

    # -- the card page -------------------------------------------------------------------------
    def _ui_card_conversations(self, principal, card: dict) -> dict | None:
        """The card's conversations block; None for a role that may not read them."""
        if not allowed(principal.role, "messages:read"):
            return None
        try:
            found = self._card_conversations(card, CARD_MESSAGES)["items"]
        except RemoteError as exc:  # the card itself is still worth showing
            log.error("messenger service failed", error=str(exc))
            return {"error": "The messenger service failed: conversations are not shown. "
                             "Reload in a moment.", "items": []}
        return {"items": found, "may_send": allowed(principal.role, "messages:send"),
                "reply_key": uuid.uuid4().hex, "status_words": STATUS_WORDS}

    @http("POST", "/contacts/<string:contact_id>/messages")
    @html_page
    @ui_page(permission="messages:send")
    def ui_send_message(self, request, principal, contact_id):
        """The card's reply form: queue the message, then back to the card (the form's key
        makes a double click one message)."""
        card = self.contacts.get_contact(contact_id)
        form = {key: request.form.get(key) or None
                for key in ("text", "conversation_id", "idempotency_key")}
        form["text"] = (form["text"] or "").strip()
        try:
            self.messenger.send_message(_send_request(card, form), principal.name)
        except CrmhubError as exc:
            detail = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in (
                exc.details or {}).items()) if isinstance(exc.details, dict) else ""
            raise InvalidInput(f"The message was not sent: {exc.message}"
                               + (f" ({detail})" if detail else "")) from None
        return redirect(f"/contacts/{quote(card['id'])}#conversations", 303)
