"""A website form submission, as every form connector normalizes it."""
from marshmallow import ValidationError, fields, validate, validates_schema

from crmhub.contracts.base import Contract, EventSchema
from crmhub.contracts.tracking import TrackingSchema


class FormContactSchema(Contract):
    name = fields.String(allow_none=True, validate=validate.Length(max=300))
    company = fields.String(allow_none=True, validate=validate.Length(max=300))
    phones = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list)
    emails = fields.List(fields.Email(), load_default=list)


class FormSubmittedSchema(EventSchema):
    idempotency_key = fields.String(
        required=True, validate=validate.Length(min=3, max=300),
        metadata={"description": "'<connector>:<provider submission id>'; the same submission "
                                 "delivered twice carries the same key"})
    connector = fields.String(required=True)
    form = fields.String(required=True, metadata={"description": "Form id (URL slug, Tilda formid)"})
    form_name = fields.String(allow_none=True)
    contact = fields.Nested(FormContactSchema, required=True)
    message = fields.String(allow_none=True, validate=validate.Length(max=20000))
    fields = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict,
                         metadata={"description": "Every submitted field as sent"})
    tracking = fields.Nested(TrackingSchema, load_default=dict)
    remote_addr = fields.String(allow_none=True)
    received_at = fields.AwareDateTime(required=True)

    @validates_schema
    def _reachable(self, data, **_):
        contact = data.get("contact") or {}
        if not contact.get("phones") and not contact.get("emails"):
            raise ValidationError("a submission needs a phone or an email", "contact")
