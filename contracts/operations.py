"""Operations at the edge: the dead letters an operator lists and replays (``/api/v1/dead-letters``
and the ``/dead-letters`` page), as ``crmhub dlq`` shows them."""
from marshmallow import ValidationError, fields, validate, validates_schema

from crmhub.contracts.base import Contract

SERVICE = validate.Regexp(r"^[a-z][a-z0-9_-]{0,63}$", error="a service name, e.g. contacts")


class DeadLetterSchema(Contract):
    service = fields.String(required=True)
    message_id = fields.String(allow_none=True, metadata={
        "description": "What `replay` names it by (null: replay it with `all`)"})
    queue = fields.String(allow_none=True, metadata={"description": "The queue it failed in"})
    origin = fields.String(allow_none=True, metadata={"description": "<service>/<event type>"})
    attempts = fields.Integer(allow_none=True)
    failed_at = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    body = fields.Raw(allow_none=True, metadata={"description": "The message as published"})


class DeadLetterListSchema(Contract):
    dead_letters = fields.List(fields.Nested(DeadLetterSchema), required=True)
    total = fields.Integer(required=True)


class DeadLetterReplaySchema(Contract):
    service = fields.String(required=True, validate=SERVICE)
    message_ids = fields.List(fields.String(validate=validate.Length(min=1, max=200)),
                              validate=validate.Length(min=1, max=1000), load_default=None)
    all = fields.Boolean(load_default=False, metadata={
        "description": "Replay every dead letter of the service"})

    @validates_schema
    def _one_choice(self, data, **_):
        if bool(data.get("message_ids")) == bool(data.get("all")):
            raise ValidationError("give message_ids, or all: true", "message_ids")


class DeadLetterReplayResultSchema(Contract):
    service = fields.String(required=True)
    replayed = fields.Integer(required=True)
