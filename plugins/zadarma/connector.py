"""Zadarma's virtual PBX (RU brand Novofon): ``/hooks/zadarma``.

Where the wire format is known from: PROTOCOLS.md §1.2, checked against Zadarma's official PHP
SDK (zadarma/user-api-v1: lib/Webhook/*.php for the events, their fields and signed strings;
lib/Client.php and lib/Api.php for the REST signature, ``format=json`` and the callback and
record-request parameters) and zadarma.com/en/support/api.

* Zadarma checks the URL first with ``GET ?zd_echo=<x>`` and wants ``<x>`` back, bare.
* Notifications are urlencoded POSTs; ``event`` names the type and the ``Signature`` header
  signs a few fields (see ``signing``). Event types this connector does not map (SMS, speech
  recognition, new ones) are answered 200 and publish nothing, but only when signed, since
  their signed string is unknown and so cannot be checked.
* The answer to NOTIFY_START/IVR is read by Zadarma as a call-steering command (redirect,
  hangup, caller name): an empty answer lets the call follow the PBX's own scenario.
* Zadarma's documentation allow-lists its notifying address 185.45.152.42; ``allowed_ips``
  makes that a rule (the check sees the address the gateway sees, so behind a proxy it needs
  the proxy to pass the client address on).
"""
from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crmhub.plugins.api import (
    BadPayload,
    CallRequest,
    Forbidden,
    PbxConnector,
    PbxError,
    RecordingLocation,
    Route,
    Unauthorized,
    UnsupportedMediaType,
    WebhookRequest,
    WebhookResult,
)
from crmhub.plugins.calls import text
from crmhub.plugins.zadarma import events, samples
from crmhub.plugins.zadarma.rest import ZadarmaApi
from crmhub.plugins.zadarma.signing import SIGNED_FIELDS, webhook_signature

if TYPE_CHECKING:
    import requests

DEFAULT_API_URL = "https://api.zadarma.com"
DEFAULT_TIMEZONE = "Europe/Moscow"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "")
CALLBACK = "/v1/request/callback/"
RECORD_REQUEST = "/v1/pbx/record/request/"


class ZadarmaConnector(PbxConnector):
    name = "zadarma"
    title = "Zadarma"
    version = "1.0"
    sample_module = samples
    routes = (Route("", "receive", methods=("GET", "POST"),
                    description="Zadarma PBX notifications (GET ?zd_echo=: the URL check)"),)
    supports_calls = True
    supports_recordings = True
    recording_hosts = ("api.zadarma.com", "*.zadarma.com")

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self.api_secret = str(self.settings.get("api_secret") or "")
        self.api_url = str(self.settings.get("api_url") or DEFAULT_API_URL).rstrip("/")
        self.zone = _zone(self.settings.get("timezone") or DEFAULT_TIMEZONE)
        self.allowed_networks = _networks(self.settings.get("allowed_ips"))
        self.predicted = bool(self.settings.get("predicted"))
        self.api = ZadarmaApi(self.api_url, str(self.settings.get("api_key") or ""),
                              self.api_secret, self.timeout)

    # Webhooks ----------------------------------------------------------------------------
    def receive(self, request: WebhookRequest) -> WebhookResult:
        self._check_source(request.remote_addr)
        if request.method == "GET":
            echo = request.first(request.query, "zd_echo")
            if echo is None:
                raise BadPayload("a GET is Zadarma's URL check and needs ?zd_echo=<value>")
            return WebhookResult(body=echo, content_type="text/plain")
        fields = self._fields(request)
        event = fields.get("event")
        if not event:
            raise BadPayload("no event field: not a Zadarma notification")
        presented = (request.headers.get("Signature") or "").strip()
        if not presented:
            raise Unauthorized("a Zadarma notification needs its Signature header")
        if event not in SIGNED_FIELDS:
            return WebhookResult(body={"ok": True, "ignored": event})
        self._check_signature(event, fields, presented)
        signal = events.signal(event, fields, self.zone, self.now())
        return WebhookResult(events=[signal], body="", content_type="text/plain")

    def now(self) -> dt.datetime:
        """The receive time: NOTIFY_RECORD's ``at``, since it carries no time of its own."""
        return dt.datetime.now(dt.timezone.utc)

    def _check_source(self, remote_addr: str | None) -> None:
        if not self.allowed_networks:
            return
        try:
            address = ipaddress.ip_address(remote_addr or "")
        except ValueError:
            address = None
        if address is None or not any(address in net for net in self.allowed_networks):
            raise Forbidden(f"{remote_addr or 'an unknown address'} is not one of Zadarma's "
                            "addresses (allowed_ips)")

    @staticmethod
    def _fields(request: WebhookRequest) -> dict[str, str]:
        """The first value of each form field (Zadarma sends each once)."""
        if request.content_type not in FORM_TYPES:
            raise UnsupportedMediaType(f"Zadarma posts urlencoded forms, not {request.content_type}")
        try:
            if request.content_type:
                parsed = request.form()
            else:
                parsed = parse_qs(request.body.decode(), keep_blank_values=True)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadPayload(f"the body is not a readable form: {exc}") from None
        return {name: values[0] for name, values in parsed.items() if values}

    def _check_signature(self, event: str, fields: dict[str, str], presented: str) -> None:
        if not self.api_secret:
            raise Unauthorized("api_secret is not configured: Zadarma's signature cannot be "
                               "checked")
        if not any(hmac.compare_digest(presented.encode(),
                                       webhook_signature(secret, event, fields).encode())
                   for secret in self.accepted_secrets("api_secret")):
            raise Unauthorized(f"wrong Signature for {event}")

    # Click-to-call and recordings --------------------------------------------------------
    def place_call(self, api: requests.Session, request: CallRequest) -> dict:
        """Zadarma's callback: it rings ``from`` (the extension), then ``to``. The API has no
        way to choose the line the client sees: that is the extension's CallerID setting."""
        digits = "".join(ch for ch in request.number if ch.isdigit())
        if not digits:
            raise PbxError(f"{request.number!r} is not a phone number")
        params = {"from": request.extension, "to": digits}
        if self.predicted:
            params["predicted"] = "predicted"
        return self.api.get(api, CALLBACK, params, "Zadarma refused the call")

    def recording_location(self, api: requests.Session, ref: str) -> RecordingLocation:
        """A one-time link for the recording ``call_id_with_rec``. Zadarma saves a recording
        some time after NOTIFY_RECORD (it advises waiting 40 s): too early is a PbxError."""
        answer = self.api.get(api, RECORD_REQUEST, {"call_id": ref},
                              f"Zadarma has no recording {ref}")
        links = [answer.get("link"), *(answer.get("links") or [])]
        link = next((text(link) for link in links if text(link)), None)
        if not link:
            raise PbxError(f"Zadarma gave no link for recording {ref}", details=answer)
        return RecordingLocation(url=link)



def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"CONNECTORS.zadarma.timezone: unknown time zone {name!r}") from exc


def _networks(value) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``allowed_ips``: addresses or networks, as a list or a comma-separated string."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    try:
        return tuple(ipaddress.ip_network(str(item).strip(), strict=False)
                     for item in items if str(item).strip())
    except ValueError as exc:
        raise ValueError(f"CONNECTORS.zadarma.allowed_ips: {exc}") from exc
