"""Email campaigns at the edge: the REST API under /api/v1 (campaigns, client consent) and the
public tracking links of campaign emails under /t/ (open pixel, click redirect, unsubscribe).

The tracking links need no API key: their signed token (services/email/tracking.py) is the
proof, checked here against the ``TRACKING_SECRET``; a bad or forged token is a 404. What they
saw goes to the email service as gateway events (broker-confirmed; its handlers retry, then
dead-letter). An open or a click that cannot be published still answers the client (the pixel,
the redirect: a metric is lost, not the client's way); an unsubscribe that cannot be published
answers 503, so the client tries again.
"""
from __future__ import annotations

import structlog
from werkzeug.wrappers import Response

from crmhub.contracts import campaigns as schemas
from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.runtime.messaging import PublishError
from crmhub.services.email.tracking import (
    CLICK,
    OPEN,
    PIXEL_GIF,
    UNSUBSCRIBE,
    tracking_secret,
    verify,
)
from crmhub.services.gateway.http import http, json_body, json_response
from crmhub.services.gateway.openapi import operation
from crmhub.services.gateway.ui import TEMPLATES

log = structlog.get_logger(__name__)
READ, WRITE = "campaigns:read", "campaigns:write"
NO_STORE = {"Cache-Control": "no-store, private", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


class CampaignsApi:
    """Mixed into GatewayService, which provides ``email`` (the email service's RPC proxy),
    ``events`` (confirmed publishing), ``config`` and ``_principal``."""

    # -- consent ---------------------------------------------------------------------------------
    @http("GET", "/api/v1/contacts/<string:contact_id>/consents")
    @operation(summary="A client's consent per channel, and its history", tags=["campaigns"],
               response=schemas.ConsentsSchema, permission="contacts:read")
    def get_consents(self, request, contact_id):
        self._principal(request, "contacts:read")
        return self.email.get_consents(contact_id)

    @http("PUT", "/api/v1/contacts/<string:contact_id>/consents")
    @operation(summary="Record a client's consent (or its withdrawal) on a channel",
               tags=["campaigns"], request=schemas.ConsentInputSchema,
               response=schemas.ConsentsSchema, permission="contacts:write",
               description="Kept with its time and source; the latest statement by time is in "
                           "force. A campaign email goes only to a client whose email consent "
                           "is granted when it is queued.")
    def put_consent(self, request, contact_id):
        self._principal(request, "contacts:write")
        body = json_body(request)
        if "contact_id" in body:
            raise InvalidInput("contact_id is in the URL", {"contact_id": ["Unknown field."]})
        return self.email.set_consent({**body, "contact_id": contact_id})

    # -- campaigns -------------------------------------------------------------------------------
    @http("GET", "/api/v1/campaigns")
    @operation(summary="Email campaigns, newest first", tags=["campaigns"],
               response=schemas.CampaignListSchema, permission=READ)
    def list_campaigns(self, request):
        self._principal(request, READ)
        return self.email.list_campaigns()

    @http("POST", "/api/v1/campaigns")
    @operation(summary="Create a campaign (a draft): segment, template and rate",
               tags=["campaigns"], status=201, request=schemas.CampaignInputSchema,
               response=schemas.CampaignSchema, permission=WRITE)
    def create_campaign(self, request):
        principal = self._principal(request, WRITE)
        body = json_body(request)
        if "created_by" in body:
            raise InvalidInput("created_by is the API key's name", {"created_by": ["Unknown field."]})
        campaign = self.email.create_campaign({**body, "created_by": principal.name})
        return json_response(campaign, 201, {"Location": f"/api/v1/campaigns/{campaign['id']}"})

    @http("GET", "/api/v1/campaigns/<string:campaign_id>")
    @operation(summary="A campaign with its counters", tags=["campaigns"],
               response=schemas.CampaignSchema, permission=READ)
    def get_campaign(self, request, campaign_id):
        self._principal(request, READ)
        return self.email.get_campaign(campaign_id)

    @http("POST", "/api/v1/campaigns/<string:campaign_id>/preview")
    @operation(summary="Who would get the campaign now, and the email of the first of them",
               tags=["campaigns"], response=schemas.CampaignPreviewSchema, permission=READ)
    def preview_campaign(self, request, campaign_id):
        self._principal(request, READ)
        return self.email.preview_campaign(campaign_id)

    @http("POST", "/api/v1/campaigns/<string:campaign_id>/send")
    @operation(summary="Send a draft: its consenting recipients are queued at its rate",
               tags=["campaigns"], status=202, response=schemas.CampaignSchema,
               permission=WRITE, errors=[409],
               description="Answers at once with the campaign `sending`; the email service "
                           "then lists the segment's consenting clients (`counters.recipients`)"
                           " and queues their emails at `rate_per_minute`, each once. Sending "
                           "a campaign that is already sending changes nothing.")
    def send_campaign(self, request, campaign_id):
        self._principal(request, WRITE)
        return json_response(self.email.send_campaign(campaign_id), 202)

    @http("POST", "/api/v1/campaigns/<string:campaign_id>/cancel")
    @operation(summary="Stop a campaign: nothing more is queued", tags=["campaigns"],
               response=schemas.CampaignSchema, permission=WRITE, errors=[409])
    def cancel_campaign(self, request, campaign_id):
        self._principal(request, WRITE)
        return self.email.cancel_campaign(campaign_id)

    @http("GET", "/api/v1/campaigns/<string:campaign_id>/metrics")
    @operation(summary="Sent, bounced, opened, clicked per link, unsubscribed",
               tags=["campaigns"], response=schemas.CampaignMetricsSchema, permission=READ)
    def campaign_metrics(self, request, campaign_id):
        self._principal(request, READ)
        return self.email.campaign_metrics(campaign_id)

    # -- tracking links (public) -----------------------------------------------------------------
    def _verified(self, token: str, kind: str):
        tracked = verify(tracking_secret(self.config), token, kind)
        if tracked is None:
            raise NotFound("no such link")
        return tracked

    def _publish(self, event_type: str, schema, tracked, **extra) -> None:
        self.events.publish([(event_type, new_event(
            schema, campaign_id=tracked.campaign_id, contact_id=tracked.contact_id, **extra))])

    @http("GET", "/t/o/<string:token>.gif")
    @operation(summary="The open pixel of a campaign email (a 1x1 GIF)", tags=["tracking"])
    def track_open(self, request, token):
        tracked = self._verified(token, OPEN)
        try:
            self._publish(ev.CAMPAIGN_EMAIL_OPENED, schemas.TrackedEmailSchema, tracked)
        except PublishError as exc:
            log.warning("open not recorded: broker unavailable", error=str(exc))
        return Response(PIXEL_GIF, content_type="image/gif", headers=NO_STORE)

    @http("GET", "/t/c/<string:token>")
    @operation(summary="A link of a campaign email: recorded, then redirected (302) to its URL",
               tags=["tracking"])
    def track_click(self, request, token):
        tracked = self._verified(token, CLICK)
        try:
            self._publish(ev.CAMPAIGN_LINK_CLICKED, schemas.LinkClickedSchema, tracked,
                          url=tracked.url)
        except PublishError as exc:
            log.warning("click not recorded: broker unavailable", error=str(exc))
        return Response("", status=302, headers={"Location": tracked.url, **NO_STORE})

    @http("GET,POST", "/t/u/<string:token>")
    @operation(summary="The unsubscribe link of a campaign email (RFC 8058 one-click by POST)",
               tags=["tracking"], errors=[503],
               description="GET shows a page asking to confirm (a link scanner does not "
                           "unsubscribe anybody); POST, from that page or a mail program's "
                           "one-click `List-Unsubscribe=One-Click`, withdraws the client's "
                           "email consent.")
    def track_unsubscribe(self, request, token):
        tracked = self._verified(token, UNSUBSCRIBE)
        if request.method == "GET":
            return _page("ask", request.path)
        try:
            self._publish(ev.CAMPAIGN_UNSUBSCRIBE_REQUESTED, schemas.TrackedEmailSchema, tracked)
        except PublishError:
            return _page("retry", request.path, 503)
        return _page("done", request.path)


def _page(state: str, action: str, status: int = 200) -> Response:
    html = TEMPLATES.get_template("unsubscribe.html").render(state=state, action=action)
    return Response(html, status=status, content_type="text/html; charset=utf-8",
                    headers=NO_STORE)
