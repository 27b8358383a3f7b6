"""Generic website forms: any HTML form (or script) posts to ``/hooks/forms/<form>``."""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from crmhub.plugins.api import Connector, Route, UnknownTarget, WebhookRequest, WebhookResult
from crmhub.plugins.forms import samples
from crmhub.plugins.forms.fields import (
    FORM_CONTENT_TYPES,
    FieldMap,
    cookies,
    flatten,
    form_submitted,
    read_fields,
    tracking_from,
    url_query,
)
from crmhub.plugins.forms.guards import RateLimiter, allowed_origins, check_origin, verify_signature

SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
DOUBLE_POST_WINDOW = 600  # seconds: identical posts without an id inside one window are one
MAX_ID = 200


@dataclass(frozen=True)
class FormSettings:
    """One form's block of ``CONNECTORS.forms.forms`` (an unknown form gets the defaults)."""

    slug: str
    title: str | None = None
    field_map: FieldMap = field(default_factory=FieldMap)
    secret: str | None = None
    allowed_origins: frozenset[str] = frozenset()
    redirect: str | None = None

    @classmethod
    def from_config(cls, slug: str, config: dict | None) -> FormSettings:
        config = config or {}
        return cls(slug, config.get("title"), FieldMap(config.get("fields")),
                   config.get("secret") or None,
                   allowed_origins(config.get("allowed_origins") or []),
                   config.get("redirect") or None)


class FormsConnector(Connector):
    name = "forms"
    title = "Website forms"
    version = "1.0"
    sample_module = samples
    routes = (Route("/<form>", "submit",
                    description="A website form posts here; <form> is its slug"),)

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self.forms = {slug: FormSettings.from_config(slug, config)
                      for slug, config in (self.settings.get("forms") or {}).items()}
        self.allow_unknown_forms = bool(self.settings.get("allow_unknown_forms", False))
        self.honeypot_field: str | None = self.settings.get("honeypot_field") or None
        self.rate_limiter = RateLimiter(int(self.settings.get("rate_limit_per_minute", 30)))
        self.clock = time.time

    def submit(self, request: WebhookRequest, form: str) -> WebhookResult:
        settings = self.form_settings(form)
        self.rate_limiter.check(request.remote_addr or "unknown")
        verify_signature(request, settings.secret)
        check_origin(request, settings.allowed_origins)
        fields = read_fields(request)
        if self.honeypot_field and any(v.strip() for v in fields.get(self.honeypot_field, [])):
            return self._answer(request, settings, [])  # a bot: look accepted, publish nothing
        contact = settings.field_map.contact(fields)
        submitted = flatten(fields, without=(self.honeypot_field,))
        referer = request.headers.get("Referer")
        event = form_submitted(
            connector=self.name, form=settings.slug, form_name=settings.title or settings.slug,
            idempotency_key=self._idempotency_key(request, settings.slug, submitted),
            contact=contact, fields=submitted,
            # The Referer of a form post is the page the form is on, and its query carries
            # the landing page's UTM tags: both are fallbacks after what the post states.
            tracking=tracking_from(fields, request.query, cookies(request.headers.get("Cookie")),
                                   {"page_url": referer, "referer": referer} if referer else {},
                                   url_query(referer)),
            remote_addr=request.remote_addr)
        return self._answer(request, settings, [event])

    def form_settings(self, slug: str) -> FormSettings:
        if slug in self.forms:
            return self.forms[slug]
        if self.allow_unknown_forms and SLUG.match(slug):
            return FormSettings(slug)
        raise UnknownTarget(f"no form {slug!r}; configured: {', '.join(sorted(self.forms)) or 'none'}")

    def _idempotency_key(self, request: WebhookRequest, slug: str, fields: dict[str, str]) -> str:
        given = (request.headers.get("Idempotency-Key") or fields.get("submission_id") or "")
        given = given.strip()
        if not given:  # a double click posts the same fields twice: one key for both
            bucket = int(self.clock() // DOUBLE_POST_WINDOW)
            seed = [slug, sorted(fields.items()), request.remote_addr, bucket]
            given = hashlib.sha256(json.dumps(seed, ensure_ascii=False).encode()).hexdigest()
        elif len(given) > MAX_ID:
            given = hashlib.sha256(given.encode()).hexdigest()
        return f"forms:{slug}:{given}"

    @staticmethod
    def _answer(request: WebhookRequest, settings: FormSettings,
                events: list[tuple[str, dict]]) -> WebhookResult:
        if settings.redirect and request.content_type in FORM_CONTENT_TYPES:
            # A plain HTML form navigates: send the browser on to the thank-you page.
            return WebhookResult(events=events, status=303, body="",
                                 headers={"Location": settings.redirect})
        return WebhookResult(events=events)
