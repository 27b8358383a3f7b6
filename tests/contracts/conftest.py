"""Realistic payloads for every catalog entry, as their producers put them on the wire.

A new event or RPC method in the catalogs needs an example here: the tests check that both
tables cover their catalog exactly.
"""
import copy
import datetime as dt

import pytest

from crmhub.contracts import contacts, events
from crmhub.contracts.base import instance, new_event

T0 = dt.datetime(2026, 3, 14, 9, 26, 53, 589000, tzinfo=dt.timezone.utc)
T1 = T0 + dt.timedelta(minutes=5)

TRACKING = {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "spring-sale",
            "utm_content": None, "utm_term": "crm для бизнеса", "utm_id": None,
            "yclid": "7433512345678901234", "gclid": None, "fbclid": None,
            "_ym_uid": "1700000000123456789", "_ga": "GA1.2.123456789.1700000000",
            "roistat": None, "referer": "https://yandex.ru/", "page_url": "https://shop.example/contacts"}

CONTACT = {
    "id": "c-5f2d1e0a9b",
    "kind": "person",
    "name": "Анна Петрова",
    "company": "ООО Ромашка",
    "phones": [{"raw": "8 (916) 123-45-67", "e164": "+79161234567", "extension": None},
               {"raw": "call me at work", "e164": None, "extension": None}],
    "emails": ["anna@example.com"],
    "source": {"channel": "form", "connector": "forms", "form": "contact-us",
               "tracking": TRACKING},
    "manager": "olga",
    "tags": ["vip", "spring-sale"],
    "custom_fields": {"inn": "7701234567", "segment": "b2b"},
    "created_at": T0,
    "updated_at": T1,
    "merged_ids": ["c-0a0a0a0a0a"],
}

TIMELINE_ENTRY = {"id": 42, "contact_id": "c-5f2d1e0a9b", "kind": "form_submitted",
                  "occurred_at": T0, "title": "Form «Contact us» submitted",
                  "source_key": "evt-0c8e3f1b2a4d", "data": {"form": "contact-us", "page": 3}}

EVENT_BODIES = {
    events.FORM_SUBMITTED: {
        "idempotency_key": "forms:5b9f0c1d2e3f",
        "connector": "forms",
        "form": "contact-us",
        "form_name": "Contact us",
        "contact": {"name": "Анна Петрова", "company": None, "phones": ["+7 916 123-45-67"],
                    "emails": ["anna@example.com"]},
        "message": "Перезвоните после обеда, пожалуйста",
        "fields": {"name": "Анна Петрова", "phone": "+7 916 123-45-67",
                   "email": "anna@example.com", "utm_source": "yandex"},
        "tracking": TRACKING,
        "remote_addr": "198.51.100.7",
        "received_at": T0,
    },
    events.CONTACT_CREATED: {"contact": CONTACT, "cause": "form_submitted:evt-0c8e3f1b2a4d"},
    events.CONTACT_UPDATED: {"contact": CONTACT, "changed": ["phones", "tags"]},
    events.CONTACTS_MERGED: {"source_id": "c-0a0a0a0a0a", "target_id": "c-5f2d1e0a9b"},
    events.TIMELINE_ENTRY_ADDED: {"entry": TIMELINE_ENTRY},
}

CARD = instance(contacts.CardSchema).dump({**CONTACT, "timeline": [TIMELINE_ENTRY]})
RPC_PAYLOADS = {
    ("contacts.search", "request"): {"q": "Анна", "phone": None, "limit": 20, "offset": 0},
    ("contacts.search", "response"): instance(contacts.ContactPageSchema).dump(
        {"items": [CONTACT], "total": 1, "limit": 20, "offset": 0}),
    ("contacts.get", "response"): CARD,
    ("contacts.create", "request"): {
        "kind": "company", "name": None, "company": "ООО Ромашка",
        "phones": ["+7 495 123-45-67"], "emails": ["office@romashka.example"],
        "manager": "olga", "tags": ["b2b"], "custom_fields": {"inn": "7701234567"},
        "source": {"channel": "api", "connector": None, "form": None, "tracking": {}}},
    ("contacts.create", "response"): CARD,
    ("contacts.update", "request"): {"name": "Анна Сергеевна Петрова", "tags": ["vip"],
                                     "phones": ["+79161234567", "8 800 555-35-35"]},
    ("contacts.update", "response"): CARD,
    ("contacts.merge", "request"): {"source_id": "c-0a0a0a0a0a", "target_id": "c-5f2d1e0a9b"},
    ("contacts.merge", "response"): CARD,
}


@pytest.fixture
def event_example():
    """``event_example(name)``: a fresh realistic event in wire form (dumped by its schema)."""

    def make(name: str) -> dict:
        spec = events.spec(name)
        return new_event(spec.schema, event_id="evt-0c8e3f1b2a4d", occurred_at=T0,
                         **copy.deepcopy(EVENT_BODIES[name]))

    return make


@pytest.fixture
def rpc_example():
    """``rpc_example(key, part)``: a fresh realistic RPC payload (``part``: request/response)."""

    def make(key: str, part: str) -> dict:
        return copy.deepcopy(RPC_PAYLOADS[key, part])

    return make
