"""Email at the edge: send an email from a client's card, read their threads, manage the
templates; over REST (bearer keys) and from the card page (its cookie session)."""
from __future__ import annotations

import uuid
from urllib.parse import quote

import structlog
from nameko.exceptions import RemoteError
from werkzeug.utils import redirect

from crmhub.contracts import email as schemas
from crmhub.contracts.auth import allowed
from crmhub.contracts.errors import CrmhubError, InvalidInput
from crmhub.services.gateway.http import http, json_body, json_response, refuse_unknown_args
from crmhub.services.gateway.openapi import operation
from crmhub.services.gateway.ui import html_page, ui_page

log = structlog.get_logger(__name__)
CARD_THREADS = 20
STATUS_WORDS = {"queued": "queued", "sending": "sending", "sent": "sent",
                "failed": "not delivered", "bounced": "bounced"}




class EmailApi:
    """HTTP entrypoints of the email service; mixed into GatewayService (which provides
    ``email``, ``contacts`` and ``_principal``)."""

    def _card_threads(self, card: dict, limit: int = CARD_THREADS) -> dict:
        return self.email.list_threads({"contact_id": card["id"], "addresses": card["emails"],
                                        "limit": limit})

    @http("POST", "/api/v1/contacts/<string:contact_id>/emails")
    @operation(summary="Send an email to the client", tags=["email"], status=202,
               request=schemas.SendEmailSchema, response=schemas.OutgoingEmailSchema,
               permission="email:send",
               description="From a stored `template` or a `subject` and `text_body` (and "
                           "optional `html_body`), all Jinja2 rendered with the card's fields "
                           "(`client.name`, `client.email`, custom fields, and `variables`). "
                           "Queued: the answer is 202 with status `queued`; the email goes out "
                           "at once through SMTP and lands on the card's timeline. While the "
                           "SMTP server is down it is retried with backoff, then dead-lettered. "
                           "The same `idempotency_key` again answers the first email, sent "
                           "once. A template error (unknown field, syntax) is 400 naming where.")
    def send_email(self, request, contact_id):
        principal = self._principal(request, "email:send")
        body = json_body(request)
        if isinstance(body, dict):
            body = {**body, "contact_id": contact_id}
        return json_response(self.email.send_email(body, principal.name), 202)

    @http("GET", "/api/v1/contacts/<string:contact_id>/emails")
    @operation(summary="The client's email threads", tags=["email"],
               response=schemas.EmailThreadListSchema, permission="email:read",
               description="Emails sent to the card and received from its addresses, grouped "
                           "in threads (Message-ID / In-Reply-To / References), newest thread "
                           "first; outgoing emails carry their delivery status and bounce.")
    def list_emails(self, request, contact_id):
        self._principal(request, "email:read")
        refuse_unknown_args(request, ("limit",))
        card = self.contacts.get_contact(contact_id)
        return self._card_threads(card, request.args.get("limit", CARD_THREADS))

    @http("GET", "/api/v1/emails/<string:email_id>")
    @operation(summary="An outgoing email and its delivery", tags=["email"],
               response=schemas.OutgoingEmailSchema, permission="email:read")
    def get_email(self, request, email_id):
        self._principal(request, "email:read")
        return self.email.get_email(email_id)

    # -- templates -------------------------------------------------------------------------------
    @http("GET", "/api/v1/email-templates")
    @operation(summary="Email templates", tags=["email"], response=schemas.EmailTemplateListSchema,
               permission="email:read")
    def list_email_templates(self, request):
        self._principal(request, "email:read")
        return self.email.list_templates()

    @http("GET", "/api/v1/email-templates/<string:name>")
    @operation(summary="An email template", tags=["email"], response=schemas.EmailTemplateSchema,
               permission="email:read")
    def get_email_template(self, request, name):
        self._principal(request, "email:read")
        return self.email.get_template(name)

    @http("PUT", "/api/v1/email-templates/<string:name>")
    @operation(summary="Create or replace an email template", tags=["email"],
               request=schemas.EmailTemplateInputSchema, response=schemas.EmailTemplateSchema,
               permission="email:templates",
               description="Subject and bodies are Jinja2 (sandboxed) with the card as "
                           "`client`; a syntax error is 400 naming the part and line.")
    def put_email_template(self, request, name):
        self._principal(request, "email:templates")
        return self.email.put_template(name, json_body(request))

    @http("DELETE", "/api/v1/email-templates/<string:name>")
    @operation(summary="Delete an email template", tags=["email"],
               response=schemas.EmailTemplateListSchema, permission="email:templates")
    def delete_email_template(self, request, name):
        self._principal(request, "email:templates")
        return self.email.delete_template(name)

    # -- the card page -----------------------------------------------------------------------------
    def _ui_card_emails(self, principal, card: dict) -> dict | None:
        """The card's email block; None for a role that may not read emails."""
        if not allowed(principal.role, "email:read"):
            return None
        templates = []
        try:
            found = self._card_threads(card)["items"]
            if allowed(principal.role, "email:send"):
                templates = [t["name"] for t in self.email.list_templates()["items"]]
        except RemoteError as exc:  # the card itself is still worth showing
            log.error("email service failed", error=str(exc))
            return {"error": "The email service failed: emails are not shown. Reload in a "
                             "moment.", "items": [], "may_send": False}
        return {"items": found, "may_send": allowed(principal.role, "email:send"),
                "templates": templates, "send_key": uuid.uuid4().hex,
                "status_words": STATUS_WORDS}

    @http("POST", "/contacts/<string:contact_id>/emails")
    @html_page
    @ui_page(permission="email:send")
    def ui_send_email(self, request, principal, contact_id):
        """The card's email form: queue the email, then back to the card."""
        form = {key: (request.form.get(key) or "").strip() or None
                for key in ("to", "template", "subject", "text_body", "in_reply_to",
                            "idempotency_key")}
        try:
            self.email.send_email({**form, "contact_id": contact_id}, principal.name)
        except CrmhubError as exc:
            detail = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in (
                exc.details or {}).items()) if isinstance(exc.details, dict) else ""
            raise InvalidInput(f"The email was not sent: {exc.message}"
                               + (f" ({detail})" if detail else "")) from None
        return redirect(f"/contacts/{quote(contact_id)}#emails", 303)
