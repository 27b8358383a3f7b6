"""Email campaigns in the operator UI: the list, a form for a new campaign (segment, template,
rate), its preview (who gets it, the email of the first of them), sending and cancelling, and
its metrics. Built like the rest of the UI (ui.py: sessions, templates, error pages)."""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote

from werkzeug.utils import redirect

from crmhub.contracts.errors import InvalidInput
from crmhub.services.gateway.campaigns_api import READ, WRITE
from crmhub.services.gateway.http import http
from crmhub.services.gateway.openapi import html_page
from crmhub.services.gateway.ui import render, ui_page

TEXT_FIELDS = ("name", "subject", "text", "html", "pipeline_id", "stage_key", "source_channel",
               "source_connector", "tags_any", "tags_all", "last_activity_after",
               "last_activity_before", "rate_per_minute")
NEW_CAMPAIGN = {"rate_per_minute": "600",
                "text": "Dear {{ client.name }},\n\n",
                "html": "<p>Dear {{ client.name }},</p>\n"}


def _tags(text: str) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _day(text: str, field: str) -> str | None:
    """A date of the form (YYYY-MM-DD) as the start of that day, UTC."""
    if not text:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{field}: not a date", {field: ["use YYYY-MM-DD"]}) from None
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc).isoformat()


def campaign_from_form(form: dict) -> dict:
    """The REST body of a new campaign from the form's fields (empty fields left out)."""
    segment = {"tags_any": _tags(form.get("tags_any")), "tags_all": _tags(form.get("tags_all"))}
    for key in ("pipeline_id", "stage_key", "source_channel", "source_connector"):
        if form.get(key, "").strip():
            segment[key] = form[key].strip()
    for key in ("last_activity_after", "last_activity_before"):
        if form.get(key):
            segment[key] = _day(form[key], key)
    rate = (form.get("rate_per_minute") or "").strip()
    body = {"name": form.get("name", "").strip(), "segment": segment,
            "template": {"subject": form.get("subject", ""), "text": form.get("text", ""),
                         "html": form.get("html") or None}}
    if rate:
        if not rate.isdigit():
            raise InvalidInput("rate_per_minute: not a number", {"rate_per_minute": ["a number"]})
        body["rate_per_minute"] = int(rate)
    return body


def _messages(details) -> list[str]:
    """Flat "field: problem" lines from a contract's error details."""
    lines = []

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        elif isinstance(value, list):
            for item in value:
                walk(prefix, item)
        else:
            lines.append(f"{prefix}: {value}" if prefix else str(value))

    walk("", details or {})
    return lines


class CampaignsUi:
    """Pages of the campaigns; mixed into GatewayService (``email`` and ``deals`` RPC proxies)."""

    @http("GET", "/campaigns")
    @html_page
    @ui_page(permission=READ)
    def ui_campaigns(self, request, principal):
        items = self.email.list_campaigns()["items"]
        return render("campaigns.html", principal=principal, campaigns=items, nav="campaigns")

    @http("GET", "/campaigns/new")
    @html_page
    @ui_page(permission=WRITE)
    def ui_campaign_form(self, request, principal):
        return self._form(principal, dict(NEW_CAMPAIGN))

    def _form(self, principal, values, errors=(), status=200):
        pipelines = self.deals.list_pipelines()["items"]
        return render("campaign_form.html", status, principal=principal, values=values,
                      errors=list(errors), pipelines=pipelines, nav="campaigns")

    @http("POST", "/campaigns")
    @html_page
    @ui_page(permission=WRITE)
    def ui_campaign_create(self, request, principal):
        values = {key: request.form.get(key, "") for key in TEXT_FIELDS}
        try:
            campaign = self.email.create_campaign({**campaign_from_form(values),
                                                   "created_by": principal.name})
        except InvalidInput as exc:
            return self._form(principal, values, _messages(exc.details) or [exc.message], 400)
        return redirect(f"/campaigns/{quote(campaign['id'])}", 303)

    @http("GET", "/campaigns/<string:campaign_id>")
    @html_page
    @ui_page(permission=READ)
    def ui_campaign(self, request, principal, campaign_id):
        campaign = self.email.get_campaign(campaign_id)
        metrics = self.email.campaign_metrics(campaign_id)
        return render("campaign.html", principal=principal, campaign=campaign, metrics=metrics,
                      nav="campaigns")

    @http("GET", "/campaigns/<string:campaign_id>/preview")
    @html_page
    @ui_page(permission=READ)
    def ui_campaign_preview(self, request, principal, campaign_id):
        campaign = self.email.get_campaign(campaign_id)
        preview = self.email.preview_campaign(campaign_id)
        return render("campaign_preview.html", principal=principal, campaign=campaign,
                      preview=preview, nav="campaigns")

    @http("POST", "/campaigns/<string:campaign_id>/send")
    @html_page
    @ui_page(permission=WRITE)
    def ui_campaign_send(self, request, principal, campaign_id):
        self.email.send_campaign(campaign_id)
        return redirect(f"/campaigns/{quote(campaign_id)}", 303)

    @http("POST", "/campaigns/<string:campaign_id>/cancel")
    @html_page
    @ui_page(permission=WRITE)
    def ui_campaign_cancel(self, request, principal, campaign_id):
        self.email.cancel_campaign(campaign_id)
        return redirect(f"/campaigns/{quote(campaign_id)}", 303)
