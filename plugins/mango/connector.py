"""Mango Office virtual PBX: ``/hooks/mango/...`` (PROTOCOLS.md §1.1).

Mango posts every notification as a form with ``vpbx_api_key``, ``sign`` and ``json``, to the
address set in its account (Integrations → API) followed by the notification's path:
``/events/call`` per leg state change, ``/events/summary`` once per call, ``/events/recording``,
``/result/<command>`` for our commands, ``/ping`` for the account's "check connection" button;
and others (``/events/dtmf``, ``/events/sms``, ...) this connector accepts and ignores, so Mango
does not retry them. The signature is checked on the ``json`` text as received, before it is
parsed. Each notification gives at most one ``call_signal`` (see :mod:`.mapping`).

Outwards, the connector places click-to-call commands and says where a recording is.
"""
from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING

from werkzeug.exceptions import RequestEntityTooLarge

from crmhub.plugins.api import (
    BadPayload,
    CallRequest,
    Forbidden,
    PayloadTooLarge,
    PbxConnector,
    PbxError,
    RecordingLocation,
    Route,
    Unauthorized,
    UnsupportedMediaType,
    WebhookRequest,
    WebhookResult,
)
from crmhub.plugins.mango import commands, mapping, samples
from crmhub.plugins.mango.signing import sign_matches, signed_form

if TYPE_CHECKING:
    import requests

DEFAULT_API_URL = "https://app.mango-office.ru/vpbx/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def answer(signal: mapping.Signal | None = None) -> WebhookResult:
    # Mango's own SDK answers {"success": true}; any 200 will do.
    return WebhookResult(events=[signal] if signal else [], body={"success": True})


class MangoConnector(PbxConnector):
    name = "mango"
    title = "Mango Office"
    version = "1.0"
    sample_module = samples
    supports_calls = supports_recordings = True
    recording_hosts = ("files.mango-office.ru", "app.mango-office.ru")
    routes = (
        Route("/events/call", "call_event", description="A call leg appeared, connected or ended"),
        Route("/events/summary", "summary_event", description="A call ended: times and outcome"),
        Route("/events/recording", "recording_event", description="A call recording's state"),
        Route("/events/<path:kind>", "ignored", description="Other notifications: 200, ignored"),
        Route("/result/callback", "callback_result", description="Mango's verdict on a click-to-call"),
        Route("/result/<path:kind>", "ignored", description="Other command results: 200, ignored"),
        Route("/ping", "ping", methods=("GET", "POST"), description="The account's connection check"),
    )

    def __init__(self, settings: dict | None = None):
        super().__init__(settings)
        self.api_key: str | None = str(self.settings.get("api_key") or "") or None
        self.api_salt: str | None = str(self.settings.get("api_salt") or "") or None
        url = str(self.settings.get("api_url") or DEFAULT_API_URL)
        self.api_url = url if url.endswith("/") else url + "/"

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.api_salt)

    def signed(self, payload: dict) -> dict[str, str]:
        """The form of a request to Mango's API carrying ``payload``."""
        if not self.configured:
            raise PbxError("the Mango Office connector has no api_key and api_salt configured")
        return signed_form(self.api_key, self.api_salt, payload)

    # Webhooks ----------------------------------------------------------------------------
    def call_event(self, request: WebhookRequest) -> WebhookResult:
        payload = self.payload(request)
        if "call_state" not in payload and "entry_result" in payload:
            # Mango's documentation posts its summary examples to /events/call.
            return answer(mapping.summary_event(payload))
        return answer(mapping.call_event(payload))

    def summary_event(self, request: WebhookRequest) -> WebhookResult:
        return answer(mapping.summary_event(self.payload(request)))

    def recording_event(self, request: WebhookRequest) -> WebhookResult:
        return answer(mapping.recording_event(self.payload(request)))

    def callback_result(self, request: WebhookRequest) -> WebhookResult:
        return answer(mapping.callback_result(self.payload(request)))

    def ignored(self, request: WebhookRequest, kind: str) -> WebhookResult:
        """A notification crmhub has no use for (dtmf, sms, results of other commands):
        still only from Mango, and acknowledged so that Mango does not retry it."""
        self.payload(request)
        return answer()

    def ping(self, request: WebhookRequest) -> WebhookResult:
        """The connection check may come unsigned; signed, it must be right, so that the
        check also proves the key and salt."""
        fields = self.form(request) if request.content_type in FORM_TYPES else {}
        if fields.get("sign") or fields.get("vpbx_api_key"):
            self.verified_json(request)
        return answer()

    # Authentication and parsing ------------------------------------------------------------
    def form(self, request: WebhookRequest) -> dict[str, list[str]]:
        if request.content_type not in FORM_TYPES:
            raise UnsupportedMediaType(
                f"Mango posts forms (vpbx_api_key, sign, json), not {request.content_type or 'this'}")
        try:
            return request.form()
        except RequestEntityTooLarge:
            raise PayloadTooLarge("the form is too large") from None

    def verified_json(self, request: WebhookRequest) -> str:
        """The ``json`` field of a post that Mango signed with this account's key and salt."""
        fields = self.form(request)
        if not self.configured:
            raise Forbidden("the Mango Office connector has no api_key and api_salt configured")
        key, sign = request.first(fields, "vpbx_api_key"), request.first(fields, "sign")
        if not key or not sign:
            raise Unauthorized("vpbx_api_key and sign are required")
        pairs = [(k, s) for k, s in self.signing_pairs()
                 if hmac.compare_digest(key.encode(), k.encode())]
        if not pairs:
            raise Unauthorized("vpbx_api_key is not the key of this Mango account")
        json_text = request.first(fields, "json")
        if json_text is None:
            raise BadPayload("the json field is missing")
        if not any(sign_matches(k, json_text, s, sign) for k, s in pairs):
            raise Unauthorized("sign does not match sha256(vpbx_api_key + json + api_salt)")
        return json_text

    def signing_pairs(self) -> list[tuple[str, str]]:
        """(key, salt) pairs a webhook may be signed with: the current ones and, while a
        rotation is under way, the previous ones (``previous_api_key``/``previous_api_salt``;
        one given alone pairs with the other's current value)."""
        pairs = [(self.api_key, self.api_salt)]
        old_key, old_salt = (self.settings.get("previous_api_key"),
                             self.settings.get("previous_api_salt"))
        if old_key or old_salt:
            pairs.append((str(old_key or self.api_key), str(old_salt or self.api_salt)))
        return pairs

    def payload(self, request: WebhookRequest) -> dict:
        json_text = self.verified_json(request)
        try:
            payload = json.loads(json_text)
        except ValueError as exc:
            raise BadPayload(f"json is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise BadPayload("json is not a JSON object")
        return payload

    # Click-to-call and recordings ----------------------------------------------------------
    def place_call(self, api: requests.Session, request: CallRequest) -> dict:
        """``commands/callback``: Mango rings ``request.extension``, then the client. The
        outcome follows as ``/result/callback`` and events carrying our ``command_id``."""
        number = commands.digits(request.number)
        if not number:
            raise PbxError(f"{request.number!r} is not a phone number")
        command = {"command_id": request.command_id, "from": {"extension": request.extension},
                   "to_number": number}
        if request.line:
            command["line_number"] = commands.digits(request.line) or request.line
        form = self.signed(command)
        response = commands.send(api, self.api_url + "commands/callback", form, self.timeout)
        return commands.read_answer(response, "Mango refused the call")

    def recording_location(self, api: requests.Session, ref: str) -> RecordingLocation:
        """``queries/recording/post`` answers 302 to a one-time link on files.mango-office.ru:
        the telephony service posts this form and follows the redirect."""
        return RecordingLocation(
            url=self.api_url + "queries/recording/post", method="POST",
            data=self.signed({"recording_id": ref, "action": "download"}))
