"""Client cards, their timeline, and the contacts service's RPC payloads and events."""
from marshmallow import fields, validate

from crmhub.contracts.base import Contract, EventSchema
from crmhub.contracts.tracking import SourceSchema

KINDS = ("person", "company")
NAME = validate.Length(max=300)


class PhoneSchema(Contract):
    e164 = fields.String(allow_none=True, metadata={
        "description": "Normalized number, null if the raw text is not a valid number"})
    raw = fields.String(required=True, metadata={"description": "The number as it was given"})
    extension = fields.String(allow_none=True)


class TimelineEntrySchema(Contract):
    id = fields.Integer(required=True)
    contact_id = fields.String(required=True)
    kind = fields.String(required=True, metadata={
        "description": "form_submitted, contact_created, contacts_merged, ..."})
    occurred_at = fields.AwareDateTime(required=True)
    title = fields.String(required=True)
    source_key = fields.String(required=True, metadata={
        "description": "Id of the source event; one entry per source event"})
    data = fields.Dict(keys=fields.String(), load_default=dict)


class ContactSchema(Contract):
    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    name = fields.String(allow_none=True, validate=NAME)
    company = fields.String(allow_none=True, validate=NAME)
    phones = fields.List(fields.Nested(PhoneSchema), load_default=list)
    emails = fields.List(fields.Email(), load_default=list)
    source = fields.Nested(SourceSchema, allow_none=True)
    manager = fields.String(allow_none=True, metadata={"description": "Responsible manager"})
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=list)
    custom_fields = fields.Dict(keys=fields.String(), load_default=dict)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    merged_ids = fields.List(fields.String(), load_default=list,
                             metadata={"description": "Ids of cards merged into this one; they resolve here"})


class CardSchema(ContactSchema):
    """A contact with its timeline, newest first."""

    timeline = fields.List(fields.Nested(TimelineEntrySchema), load_default=list)


class ContactInputSchema(Contract):
    """Fields a client of the API may set. Phones are given as text in any format."""

    kind = fields.String(load_default="person", validate=validate.OneOf(KINDS))
    name = fields.String(allow_none=True, validate=NAME)
    company = fields.String(allow_none=True, validate=NAME)
    phones = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list)
    emails = fields.List(fields.Email(), load_default=list)
    manager = fields.String(allow_none=True)
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=100)), load_default=list)
    custom_fields = fields.Dict(keys=fields.String(), load_default=dict)
    source = fields.Nested(SourceSchema, allow_none=True)


class ContactPatchSchema(Contract):
    """A partial update: only the fields given change. Lists replace the stored list."""

    kind = fields.String(validate=validate.OneOf(KINDS))
    name = fields.String(allow_none=True, validate=NAME)
    company = fields.String(allow_none=True, validate=NAME)
    phones = fields.List(fields.String(validate=validate.Length(min=1, max=64)))
    emails = fields.List(fields.Email())
    manager = fields.String(allow_none=True)
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=100)))
    custom_fields = fields.Dict(keys=fields.String())


class MergeSchema(Contract):
    source_id = fields.String(required=True, metadata={"description": "The card that disappears"})
    target_id = fields.String(required=True, metadata={"description": "The card that stays"})


class ContactQuerySchema(Contract):
    q = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200),
                      metadata={"description": "Substring of name, company, phone or email"})
    phone = fields.String(load_default=None, allow_none=True,
                          metadata={"description": "Exact phone in any format"})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class ContactPageSchema(Contract):
    items = fields.List(fields.Nested(ContactSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class ContactIdsSchema(Contract):
    ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                      validate=validate.Length(max=5000), metadata={
                          "description": "Card ids; a merged id resolves to the surviving card"})


class ContactListSchema(Contract):
    items = fields.List(fields.Nested(ContactSchema), required=True, metadata={
        "description": "The cards (without timeline), each once, in the order first asked"})
    resolved = fields.Dict(keys=fields.String(), values=fields.String(), required=True, metadata={
        "description": "Each id asked for that is a card: the id of the card holding it now "
                       "(itself, or the card it was merged into)"})
    missing = fields.List(fields.String(), required=True, metadata={
        "description": "Ids that are no card"})


class ContactCreatedSchema(EventSchema):
    contact = fields.Nested(ContactSchema, required=True)
    cause = fields.String(allow_none=True, metadata={"description": "Event or request that created it"})


class ContactUpdatedSchema(EventSchema):
    contact = fields.Nested(ContactSchema, required=True)
    changed = fields.List(fields.String(), load_default=list)


class ContactsMergedSchema(EventSchema):
    source_id = fields.String(required=True)
    target_id = fields.String(required=True)


class TimelineEntryAddedSchema(EventSchema):
    entry = fields.Nested(TimelineEntrySchema, required=True)
