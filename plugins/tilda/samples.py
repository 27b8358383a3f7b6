"""Conformance samples of the Tilda connector, built from the field names Tilda is documented
to send (PROTOCOLS.md §4.1: ``Name``, ``Email``, ``Phone``, ``Textarea``, ``tranid``,
``formid``, ``COOKIES``, ``payment``). No recorded Tilda payload was found to replay, so the
bodies are synthesized here, in Tilda's wire formats (urlencoded, or JSON in newer settings).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from crmhub.plugins.api import Sample, WebhookRequest, make_request
from crmhub.plugins.host import HOOK_PREFIX

if TYPE_CHECKING:
    from crmhub.plugins.tilda.connector import TildaConnector

TILDA_SERVER_ADDR = "185.165.123.36"
URLENCODED = "application/x-www-form-urlencoded"

COOKIES = ("_ym_uid=1699999999123; _ga=GA1.2.1.2; roistat_visit=48211; "
           "TILDAUTM=" + quote("utm_source=yandex|||utm_medium=cpc|||utm_campaign=spring|||"))
CONTACT_FORM = {"Name": "Олег Петров", "Phone": "+7 (999) 111-22-33",
                "Email": "oleg@example.com", "Textarea": "Нужна консультация",
                "Checkbox": "yes", "tranid": "6512345:1234567890", "formid": "form512345678",
                "formname": "Консультация", "COOKIES": COOKIES}
CART_ORDER = {"Name": "Анна", "Phone": "89035550011", "tranid": "6512345:1234567891",
              "formid": "form512345679", "payment": json.dumps({
                  "orderid": "1782049373", "amount": "3200", "products": [
                      {"name": "Кофе в зёрнах", "quantity": 2, "price": "1200", "amount": 2400},
                      {"name": "Фильтры", "quantity": 1, "price": "800", "amount": 800}]},
                  ensure_ascii=False)}


def post(connector: TildaConnector, body: bytes, content_type: str = URLENCODED,
         api_key: str | None = None) -> WebhookRequest:
    """A post as Tilda's server makes it, with the configured API key unless told another."""
    headers = {"Content-Type": content_type}
    if api_key or connector.api_key:
        headers[connector.api_key_name] = api_key or connector.api_key
    return make_request(path=f"{HOOK_PREFIX}/tilda", body=body, headers=headers,
                        remote_addr=TILDA_SERVER_ADDR)


def valid(connector: TildaConnector) -> list[Sample]:
    signed = bool(connector.api_key)
    as_json = {**CONTACT_FORM, "tranid": "6512345:1234567892", "Checkbox": ["a", "b"]}
    return [
        Sample("connection test", post(connector, b"test=test"), [], signed),
        Sample("contact form with cookies", post(connector, urlencode(CONTACT_FORM).encode()),
               ["form_submitted"], signed),
        Sample("cart order", post(connector, urlencode(CART_ORDER).encode()),
               ["form_submitted"], signed),
        Sample("contact form as JSON", post(
            connector, json.dumps(as_json, ensure_ascii=False).encode(), "application/json"),
            ["form_submitted"], signed),
    ]


def forged(connector: TildaConnector, sample: Sample) -> Sample | None:
    """``sample`` carrying a wrong API key."""
    if not connector.api_key:
        return None
    request = post(connector, sample.request.body, sample.request.content_type,
                   api_key=connector.api_key + "-forged")
    return Sample(f"{sample.name} (forged)", request, [], signed=False)


def bad(connector: TildaConnector) -> list[Sample]:
    no_tranid = {k: v for k, v in CONTACT_FORM.items() if k != "tranid"}
    no_contact = {"Name": "Олег", "tranid": "6512345:1", "formid": "form512345678"}
    return [
        Sample("submission without tranid", post(connector, urlencode(no_tranid).encode()), []),
        Sample("no phone and no email", post(connector, urlencode(no_contact).encode()), []),
        Sample("malformed JSON", post(connector, b"{broken", "application/json"), []),
        Sample("a body that is not a form", post(connector, b"test", "text/plain"), []),
    ]
