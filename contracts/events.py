"""The event catalog: every event crmhub publishes, its owner, schema and version.

An event ``name`` is published by its ``owner`` service on the exchange ``<owner>.events``
with routing key ``name``; its body is ``schema().dump(...)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from crmhub.contracts import contacts, forms
from crmhub.contracts.base import EventSchema

FORM_SUBMITTED = "form_submitted"
CONTACT_CREATED = "contact_created"
CONTACT_UPDATED = "contact_updated"
CONTACTS_MERGED = "contacts_merged"
TIMELINE_ENTRY_ADDED = "timeline_entry_added"


@dataclass(frozen=True)
class EventSpec:
    name: str
    owner: str
    schema: type[EventSchema]
    schema_version: int
    description: str


CATALOG: dict[str, EventSpec] = {spec.name: spec for spec in (
    EventSpec(FORM_SUBMITTED, "gateway", forms.FormSubmittedSchema, 1,
              "A website form was submitted (forms, Tilda connectors)."),
    EventSpec(CONTACT_CREATED, "contacts", contacts.ContactCreatedSchema, 1,
              "A client card was created."),
    EventSpec(CONTACT_UPDATED, "contacts", contacts.ContactUpdatedSchema, 1,
              "A client card changed."),
    EventSpec(CONTACTS_MERGED, "contacts", contacts.ContactsMergedSchema, 1,
              "One card was merged into another; the source id now resolves to the target."),
    EventSpec(TIMELINE_ENTRY_ADDED, "contacts", contacts.TimelineEntryAddedSchema, 1,
              "An entry was appended to a card's timeline."),
)}


def spec(name: str) -> EventSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown event {name!r}; known: {sorted(CATALOG)}") from None
