"""WhatsApp webhook bodies for the conformance kit, tests and the fake Graph API. The messages
and statuses are those of the pywa project's recorded webhooks (tests/data/updates/
message.json and message_status.json @0bcf2f1, MIT; shared/samples/whatsapp), wrapped in
the envelope Meta posts; the bodies are signed with the configured app secret."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from crmhub.plugins.api import Sample, make_request
from crmhub.plugins.whatsapp.signing import HEADER, signature

if TYPE_CHECKING:
    from crmhub.plugins.whatsapp.connector import WhatsAppConnector

WABA_ID = "5467539754836534"
METADATA = {"display_phone_number": "972123456789", "phone_number_id": "1122334455667"}
CLIENT = {"profile": {"name": "Test Name"}, "wa_id": "972987654321"}

TEXT = {"from": "972987654321", "id": "wamid.xyzxyz", "timestamp": "1697043223",
        "text": {"body": "Body Text"}, "type": "text"}
IMAGE = {"from": "972987654321", "id": "wamid.image1", "timestamp": "1697043379",
         "type": "image", "image": {"mime_type": "image/jpeg", "sha256": "4654+8g=",
                                    "id": "65463453"}}
DOCUMENT = {"context": {"forwarded": True}, "from": "972987654321", "id": "wamid.document1",
            "timestamp": "1697043666", "type": "document", "document": {
                "caption": "caption", "filename": "filename.pdf", "mime_type": "application/pdf",
                "sha256": "grwfwe/ZPx0wAbdfbdeFUNItPZ0RylL8gGUvdt3YFqc18SY=",
                "id": "1234567890987654321"}}
UNSUPPORTED = {"from": "972987654321", "id": "wamid.unsupported1", "timestamp": "1697044706",
               "errors": [{"code": 131051, "title": "Message type unknown"}],
               "type": "unsupported"}


def delivery(status: str, message_id: str = "wamid.xyzxyz", errors=None) -> dict:
    item = {"id": message_id, "status": status, "timestamp": "1698266945",
            "recipient_id": "972987654321"}
    if errors:
        item["errors"] = errors
    return item


FAILED_ERRORS = [{"code": 130472, "title": "User's number is part of an experiment",
                  "message": "User's number is part of an experiment", "error_data": {
                      "details": "Failed to send message because this user's phone number is "
                                 "part of an experiment"}}]


def body(messages=(), statuses=(), phone_number_id: str = METADATA["phone_number_id"]) -> dict:
    """A webhook body as Meta posts it, with these messages and statuses."""
    value = {"messaging_product": "whatsapp",
             "metadata": {**METADATA, "phone_number_id": phone_number_id}}
    if messages:
        value["contacts"] = [CLIENT]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {"object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}]}


def notification_request(app_secret: str | None, payload: bytes | str | dict,
                         content_type: str = "application/json", signed_with: str | None = None):
    raw = json.dumps(payload).encode() if isinstance(payload, dict) else payload
    raw = raw.encode() if isinstance(raw, str) else raw
    headers = {"Content-Type": content_type}
    secret = signed_with if signed_with is not None else app_secret
    if secret:
        headers[HEADER] = signature(secret, raw)
    return make_request(path="/hooks/whatsapp", body=raw, headers=headers)


VALID = [
    ("text", body([TEXT]), ["message_incoming"]),
    ("image", body([IMAGE]), ["message_incoming"]),
    ("forwarded document", body([DOCUMENT]), ["message_incoming"]),
    ("unsupported type", body([UNSUPPORTED]), ["message_incoming"]),
    ("sent", body(statuses=[delivery("sent")]), ["message_status"]),
    ("delivered and read", body(statuses=[delivery("delivered"), delivery("read")]),
     ["message_status", "message_status"]),
    ("failed", body(statuses=[delivery("failed", errors=FAILED_ERRORS)]), ["message_status"]),
    ("another field", {"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "changes": [
        {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}]}]}, []),
]


def valid(connector: WhatsAppConnector) -> list[Sample]:
    if not connector.app_secret:
        return []
    found = [Sample(name, notification_request(connector.app_secret, payload), expect)
             for name, payload, expect in VALID]
    if connector.verify_token:
        found.append(Sample("callback URL check", make_request(
            "GET", "/hooks/whatsapp", query={"hub.mode": "subscribe", "hub.challenge": "1158201444",
                                             "hub.verify_token": connector.verify_token}),
            [], signed=False))
    return found


def forged(connector: WhatsAppConnector, sample: Sample) -> Sample:
    return Sample(f"{sample.name} (signed with another secret)", notification_request(
        connector.app_secret, sample.request.body, signed_with="not-the-app-secret"), [])


def bad(connector: WhatsAppConnector) -> list[Sample]:
    secret = connector.app_secret or None
    found = [Sample(name, notification_request(secret, payload, *extra), []) for name, payload, *extra in (
        ("not JSON", b'{"object": '),
        ("another object", {"object": "page", "entry": []}),
        ("entry not a list", {"object": "whatsapp_business_account", "entry": {}}),
        ("message without id", body([{**TEXT, "id": None}])),
        ("bad timestamp", body([{**TEXT, "timestamp": "yesterday"}])),
        ("a form", b"object=whatsapp_business_account", "application/x-www-form-urlencoded"))]
    found.append(Sample("unsigned", notification_request(None, body([TEXT])), []))
    found.append(Sample("wrong verify token", make_request("GET", "/hooks/whatsapp", query={
        "hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": "guess"}), []))
    return found
