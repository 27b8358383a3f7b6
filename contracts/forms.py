"""A website form submission, as every form connector normalizes it."""
# `fields` is also a field of FormSubmittedSchema, hence the alias.
from marshmallow import ValidationError, validate, validates_schema
from marshmallow import fields as mf

from crmhub.contracts.base import Contract, EventSchema
from crmhub.contracts.tracking import TrackingSchema


class FormContactSchema(Contract):
    name = mf.String(allow_none=True, validate=validate.Length(max=300))
    company = mf.String(allow_none=True, validate=validate.Length(max=300))
    phones = mf.List(mf.String(validate=validate.Length(min=1, max=64)), load_default=list)
    emails = mf.List(mf.Email(), load_default=list)


class FormSubmittedSchema(EventSchema):
    idempotency_key = mf.String(
        required=True, validate=validate.Length(min=3, max=300),
        metadata={"description": "'<connector>:<provider submission id>'; the same submission "
                                 "delivered twice carries the same key"})
    connector = mf.String(required=True)
    form = mf.String(required=True, metadata={"description": "Form id (URL slug, Tilda formid)"})
    form_name = mf.String(allow_none=True)
    contact = mf.Nested(FormContactSchema, required=True)
    message = mf.String(allow_none=True, validate=validate.Length(max=20000))
    fields = mf.Dict(keys=mf.String(), values=mf.String(), load_default=dict,
                         metadata={"description": "Every submitted field as sent"})
    tracking = mf.Nested(TrackingSchema, load_default=dict)
    remote_addr = mf.String(allow_none=True)
    received_at = mf.AwareDateTime(required=True)

    @validates_schema
    def _reachable(self, data, **_):
        contact = data.get("contact") or {}
        if not contact.get("phones") and not contact.get("emails"):
            raise ValidationError("a submission needs a phone or an email", "contact")
