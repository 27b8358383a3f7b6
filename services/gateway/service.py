"""gateway: the HTTP edge. REST under /api/v1, webhooks under /hooks, the operator UI."""
from __future__ import annotations

import json

import prometheus_client
import structlog
from nameko.dependency_providers import Config
from nameko.events import BROADCAST, EventHandler
from werkzeug.wrappers import Response

import crmhub
from crmhub.contracts import contacts as schemas
from crmhub.contracts import events as ev
from crmhub.contracts.base import instance
from crmhub.contracts.errors import NotFound
from crmhub.plugins.api import make_request
from crmhub.runtime.handlers import SettledOnDelivery
from crmhub.runtime.logs import LogContext
from crmhub.runtime.metrics import WEBHOOKS
from crmhub.runtime.rpc import RpcProxy
from crmhub.services.gateway.auth import authenticate, presented_key, require
from crmhub.services.gateway.calls_api import CallsApi
from crmhub.services.gateway.campaigns_api import CampaignsApi
from crmhub.services.gateway.catalog_api import CatalogApi
from crmhub.services.gateway.dead_letters import DeadLettersApi
from crmhub.services.gateway.deals_api import DealsApi
from crmhub.services.gateway.dependencies import ApiKeys, Connectors, DeadLetters, Events
from crmhub.services.gateway.email_api import EmailApi
from crmhub.services.gateway.http import http, json_body, json_response, refuse_unknown_args
from crmhub.services.gateway.messenger_api import MessengerApi
from crmhub.services.gateway.onec_api import OneCExchangeApi
from crmhub.services.gateway.openapi import build_spec, operation
from crmhub.services.gateway.popups import Popups
from crmhub.services.gateway.reports_api import ReportsApi
from crmhub.services.gateway.ui import OperatorUi
from crmhub.services.gateway.ui_campaigns import CampaignsUi
from crmhub.services.gateway.ui_deals import SalesUi
from crmhub.services.gateway.ui_reports import ReportsUi
from crmhub.services.telephony.dependencies import Recordings

log = structlog.get_logger(__name__)
WEBHOOK_METHODS = "GET,POST,PUT"


class PopupEventHandler(SettledOnDelivery, EventHandler):
    """A broadcast handler: every gateway instance gets the event for its own browsers. Not
    reliable, and not acked: a popup is only worth showing now, and a stopped instance has
    no browsers."""

    def __init__(self, event_type: str):
        super().__init__("telephony", event_type, handler_type=BROADCAST,
                         reliable_delivery=False)


popup_handler = PopupEventHandler.decorator


class GatewayService(OperatorUi, SalesUi, DealsApi, CallsApi, CatalogApi, OneCExchangeApi,
                     MessengerApi, CampaignsApi, EmailApi, CampaignsUi, ReportsApi, ReportsUi,
                     DeadLettersApi):
    name = "gateway"

    config = Config()
    contacts = RpcProxy("contacts")
    deals = RpcProxy("deals")
    telephony = RpcProxy("telephony")
    catalog = RpcProxy("catalog")
    messenger = RpcProxy("messenger")
    email = RpcProxy("email")
    reporting = RpcProxy("reporting")
    connectors = Connectors()
    popups = Popups()
    recordings = Recordings()
    events = Events()
    api_keys = ApiKeys()
    dead_letters = DeadLetters()
    log_ctx = LogContext()

    def _principal(self, request, permission: str):
        principal = authenticate(self.api_keys, presented_key(request))
        require(principal, permission)
        return principal

    # -- ops -----------------------------------------------------------------------------------
    @http("GET", "/health")
    def health(self, request):
        return {"status": "ok", "service": self.name, "version": crmhub.__version__}

    @http("GET", "/metrics")
    def metrics(self, request):
        return Response(prometheus_client.generate_latest(),
                        content_type=prometheus_client.CONTENT_TYPE_LATEST)

    @http("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return build_spec(type(self), crmhub.__version__)

    # -- contacts ------------------------------------------------------------------------------
    @http("GET", "/api/v1/contacts")
    @operation(summary="List or search client cards", tags=["contacts"],
               query=schemas.ContactQuerySchema, response=schemas.ContactPageSchema,
               permission="contacts:read")
    def list_contacts(self, request):
        self._principal(request, "contacts:read")
        refuse_unknown_args(request, ("q", "phone", "limit", "offset"))
        return self.contacts.search(dict(request.args.items()))

    @http("POST", "/api/v1/contacts")
    @operation(summary="Create a client card", tags=["contacts"], status=201,
               request=schemas.ContactInputSchema, response=schemas.CardSchema,
               permission="contacts:write")
    def create_contact(self, request):
        self._principal(request, "contacts:write")
        card = self.contacts.create(json_body(request))
        return json_response(card, 201, {"Location": f"/api/v1/contacts/{card['id']}"})

    @http("GET", "/api/v1/contacts/<string:contact_id>")
    @operation(summary="A client card with its timeline (a merged id resolves to the card "
                       "it was merged into)", tags=["contacts"], response=schemas.CardSchema,
               permission="contacts:read")
    def get_contact(self, request, contact_id):
        self._principal(request, "contacts:read")
        return self.contacts.get(contact_id)

    @http("PATCH", "/api/v1/contacts/<string:contact_id>")
    @operation(summary="Change fields of a client card", tags=["contacts"],
               request=schemas.ContactPatchSchema, response=schemas.CardSchema,
               permission="contacts:write")
    def update_contact(self, request, contact_id):
        self._principal(request, "contacts:write")
        return self.contacts.update(contact_id, json_body(request))

    @http("POST", "/api/v1/contacts/merge")
    @operation(summary="Merge one client card into another", tags=["contacts"],
               request=schemas.MergeSchema, response=schemas.CardSchema,
               permission="contacts:merge")
    def merge_contacts(self, request):
        self._principal(request, "contacts:merge")
        return self.contacts.merge(json_body(request))

    # -- connectors ----------------------------------------------------------------------------
    @http("GET", "/api/v1/connectors")
    @operation(summary="Loaded connector plugins and their webhook routes", tags=["connectors"],
               permission="ops:read")
    def list_connectors(self, request):
        self._principal(request, "ops:read")
        return {"items": self.connectors.describe()}

    @http(WEBHOOK_METHODS, "/hooks/<path:rest>")
    def webhook(self, request, rest):
        """Verify, normalize, publish (confirmed by the broker), then answer the provider."""
        status = 500
        connector = rest.split("/", 1)[0]
        if connector not in self.connectors.connectors:
            connector = "unknown"  # keep the metric's label set bounded
        try:
            incoming = make_request(
                method=request.method, path=request.path, body=request.get_data(cache=True),
                headers=list(request.headers.items()),
                query={k: request.args.getlist(k) for k in request.args},
                remote_addr=request.remote_addr, url=lambda: request.url)
            connector, result = self.connectors.handle(incoming)
            self.events.publish(result.events)
            status = result.status
            return _webhook_response(result)
        except Exception as exc:
            status = getattr(exc, "status", 500)
            raise
        finally:
            WEBHOOKS.labels(connector, str(status)).inc()

    # -- the incoming-call popup: telephony's events to this instance's browsers ---------------
    @popup_handler(ev.CALL_RINGING)
    def on_call_ringing(self, payload):
        self._pass_on(ev.CALL_RINGING, payload)

    @popup_handler(ev.CALL_ANSWERED)
    def on_call_answered(self, payload):
        self._pass_on(ev.CALL_ANSWERED, payload)

    @popup_handler(ev.CALL_FINISHED)
    def on_call_finished(self, payload):
        self._pass_on(ev.CALL_FINISHED, payload)

    @popup_handler(ev.CALL_MISSED)
    def on_call_missed(self, payload):
        self._pass_on(ev.CALL_MISSED, payload)

    def _pass_on(self, event_type, payload):
        # Checked against the contract, then passed on as received (it is already JSON).
        errors = instance(ev.spec(event_type).schema).validate(payload)
        if errors:
            log.warning("call event breaks its contract, not shown", event_type=event_type,
                        errors=errors)
            return
        self.popups.publish(event_type, payload)

    # -- anything else: a JSON 404 rather than werkzeug's HTML page ---------------------------
    @http("GET,POST,PUT,PATCH,DELETE", "/<path:rest>")
    def not_found(self, request, rest):
        raise NotFound(f"no route {request.method} {request.path}")


def _webhook_response(result) -> Response:
    body, content_type = result.body, result.content_type
    if content_type is None:
        content_type = "application/json" if isinstance(body, (dict, list)) else "text/plain"
    if isinstance(body, (dict, list)):
        body = json.dumps(body, ensure_ascii=False)
    response = Response(body if body is not None else "", status=result.status,
                        content_type=f"{content_type}; charset=utf-8")
    for key, value in result.headers.items():
        response.headers[key] = value
    return response
