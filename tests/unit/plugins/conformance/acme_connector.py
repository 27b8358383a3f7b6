"""A third-party connector as an outside package would write it, against the public API only:
Acme's lead forms post JSON signed with ``X-Acme-Signature: <hex HMAC-SHA256>``."""
import datetime as dt
import hashlib
import hmac
import json

from crmhub.contracts.base import new_event
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.plugins import hookimpl
from crmhub.plugins.api import (
    BadPayload,
    Connector,
    Route,
    Sample,
    Unauthorized,
    WebhookRequest,
    WebhookResult,
    make_request,
)


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AcmeConnector(Connector):
    name = "acme"
    title = "Acme lead forms"
    version = "0.3"
    routes = (Route("/leads", "lead", description="Acme posts one lead"),)

    def lead(self, request: WebhookRequest) -> WebhookResult:
        given = request.headers.get("X-Acme-Signature", "")
        if not hmac.compare_digest(given, signature(self.settings["secret"], request.body)):
            raise Unauthorized("X-Acme-Signature does not match the body")
        lead = request.json()
        if not isinstance(lead, dict) or not lead.get("phone") or not lead.get("id"):
            raise BadPayload("a lead needs an id and a phone")
        event = new_event(FormSubmittedSchema, idempotency_key=f"acme:{lead['id']}",
                          connector=self.name, form="leads", contact={"phones": [lead["phone"]]},
                          received_at=dt.datetime.now(dt.timezone.utc))
        return WebhookResult(events=[("form_submitted", event)])

    def _post(self, lead: dict, secret: str | None = None) -> WebhookRequest:
        body = json.dumps(lead).encode()
        return make_request(path="/hooks/acme/leads", body=body, headers={
            "Content-Type": "application/json",
            "X-Acme-Signature": signature(secret or self.settings["secret"], body)})

    def conformance_samples(self) -> list[Sample]:
        return [Sample("lead", self._post({"id": "L-1", "phone": "+79161234567"}),
                       ["form_submitted"])]

    def forge(self, sample: Sample) -> Sample:
        return Sample("forged lead", self._post(json.loads(sample.request.body), "guess"), [])

    def bad_samples(self) -> list[Sample]:
        return [Sample("lead without phone", self._post({"id": "L-2"}), [])]


class AcmePlugin:
    """What the package registers under the ``crmhub.connectors`` entry point."""

    @hookimpl
    def crmhub_register_connectors(self, register):
        register(AcmeConnector)
