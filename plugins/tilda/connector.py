"""Tilda's form webhook (Site settings → Forms → Webhook; one URL per site): ``/hooks/tilda``.

What Tilda sends, and where that is known from:

* Tilda's help page on the webhook (help-ru.tilda.cc/forms/webhook; the copy in our search
  index is its Kazakh translation, kk.help-ru.tilda.cc/forms/webhook): submissions arrive by
  POST; a checkbox adds the visitor's cookies; on connecting, Tilda POSTs ``test=test`` and
  expects 200; a script that does not answer within five seconds gets two more attempts, a
  minute apart (hence the dedupe on ``tranid``); the script must be served over HTTPS.
* API key: that help text, as indexed, does not say how the optional key travels. Receivers
  written for Tilda in public code read it from the ``X-Tilda-Api-Key`` request header, one
  also lists ``X-Tilda-Api-Key`` among the technical POST fields of a submission, and an
  integration README names the webhook dialog's "Api Method" option, i.e. the transport is
  selectable. So the key is accepted in the ``X-Tilda-Api-Key`` header or in a body field of
  that name (the name is the ``api_key_name`` setting, for accounts that differ). Not
  verified on a live account.
* ``TILDAUTM``: Tilda's own forms script stores the landing page's ``utm_*`` pairs in this
  cookie as ``encodeURIComponent("utm_source=…|||utm_medium=…|||")``, lower-cased.
"""
from __future__ import annotations

import hmac
from urllib.parse import unquote

from crmhub.plugins.api import (
    BadPayload,
    Connector,
    Route,
    Unauthorized,
    WebhookRequest,
    WebhookResult,
)
from crmhub.plugins.forms.fields import (
    FieldMap,
    Fields,
    cookies,
    first,
    flatten,
    form_submitted,
    read_fields,
    tracking_from,
)
from crmhub.plugins.tilda import payment as cart
from crmhub.plugins.tilda import samples

DEFAULT_API_KEY_NAME = "X-Tilda-Api-Key"


def tilda_utm(visitor_cookies: dict[str, str]) -> dict[str, str]:
    """The UTM tags Tilda kept in its ``TILDAUTM`` cookie."""
    pairs = unquote(visitor_cookies.get("TILDAUTM", "")).split("|||")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


class TildaConnector(Connector):
    name = "tilda"
    title = "Tilda"
    version = "1.0"
    sample_module = samples
    routes = (Route("", "receive", description="Tilda form webhook (one URL per site)"),)

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self.api_key: str | None = str(self.settings.get("api_key") or "") or None
        self.api_key_name: str = self.settings.get("api_key_name") or DEFAULT_API_KEY_NAME
        self.field_map = FieldMap(self.settings.get("fields"))

    def receive(self, request: WebhookRequest) -> WebhookResult:
        fields = read_fields(request)
        handshake = first(fields, "test") == "test" and "tranid" not in fields
        self._authenticate(request, fields, handshake)
        if handshake:
            return WebhookResult(body="ok", content_type="text/plain")
        tranid = first(fields, "tranid")
        if not tranid:
            raise BadPayload("no tranid: not a Tilda form submission")
        contact = self.field_map.contact(fields)
        order = cart.read_payment(first(fields, "payment"))
        if order and not contact.message:
            contact.message = cart.summary(order)
        formid = first(fields, "formid") or "unknown"
        visitor_cookies = cookies(first(fields, "COOKIES"))
        event = form_submitted(
            connector=self.name, form=formid, form_name=first(fields, "formname") or formid,
            idempotency_key=f"tilda:{tranid}", contact=contact,
            # COOKIES holds every cookie of the visitor: only its tracking ids are kept.
            fields={**flatten(fields, without=("COOKIES", self.api_key_name)),
                    **cart.payment_fields(order)},
            tracking=tracking_from(fields, visitor_cookies, tilda_utm(visitor_cookies)),
            remote_addr=None)  # Tilda's server posts, not the visitor: no address to keep
        return WebhookResult(events=[event], body="ok", content_type="text/plain")

    def _authenticate(self, request: WebhookRequest, fields: Fields, handshake: bool) -> None:
        if not self.api_key:
            return
        presented = request.headers.get(self.api_key_name) or first(fields, self.api_key_name)
        if presented is None and handshake:
            return  # a connection test may come without the key; it publishes nothing
        if not presented:
            raise Unauthorized(f"this webhook requires Tilda's API key ({self.api_key_name})")
        if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
            raise Unauthorized(f"wrong Tilda API key in {self.api_key_name}")
