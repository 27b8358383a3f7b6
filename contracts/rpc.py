"""The RPC catalog: every ``service.method`` with its argument and result schemas."""
from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema

from crmhub.contracts import contacts


@dataclass(frozen=True)
class RpcSpec:
    service: str
    method: str
    request: type[Schema] | None
    response: type[Schema] | None
    description: str


CATALOG: dict[str, RpcSpec] = {f"{s.service}.{s.method}": s for s in (
    RpcSpec("contacts", "search", contacts.ContactQuerySchema, contacts.ContactPageSchema,
            "List or search cards by substring, or find by phone in any format."),
    RpcSpec("contacts", "get", None, contacts.CardSchema,
            "A card with its timeline, by id (a merged id resolves to the surviving card)."),
    RpcSpec("contacts", "create", contacts.ContactInputSchema, contacts.CardSchema,
            "Create a card; refused with Conflict if a phone or email belongs to another card."),
    RpcSpec("contacts", "update", contacts.ContactPatchSchema, contacts.CardSchema,
            "Change some fields of a card."),
    RpcSpec("contacts", "merge", contacts.MergeSchema, contacts.CardSchema,
            "Merge one card into another."),
)}
