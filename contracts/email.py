"""Email: the email service's RPC payloads (send from a card, templates, threads) and its
events (emails_queued, email_sent, email_received, email_bounced)."""
from marshmallow import fields as mf
from marshmallow import validate

from crmhub.contracts.base import Contract, EventSchema

OUTGOING_STATUSES = ("queued", "sending", "sent", "failed", "bounced")
TEMPLATE_NAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$",
                                error="1 to 100 letters, digits, '_', '.', '-'")
ADDRESS = validate.Length(min=3, max=320)


class SendEmailSchema(Contract):
    """POST /api/v1/contacts/<id>/emails: a template by name, or a subject and a body.
    Subject and bodies are Jinja2 templates rendered with the card's fields either way."""

    contact_id = mf.String(required=True, validate=validate.Length(min=1, max=32))
    to = mf.Email(load_default=None, metadata={
        "description": "Recipient; the card's first email address when left out"})
    template = mf.String(load_default=None, validate=TEMPLATE_NAME, metadata={
        "description": "Name of a stored template (GET /api/v1/email-templates)"})
    subject = mf.String(load_default=None, validate=validate.Length(min=1, max=998))
    text_body = mf.String(load_default=None, validate=validate.Length(min=1, max=1_000_000))
    html_body = mf.String(load_default=None, validate=validate.Length(max=2_000_000))
    variables = mf.Dict(keys=mf.String(), load_default=dict, metadata={
        "description": "Extra values for the template, next to the card's fields"})
    in_reply_to = mf.String(load_default=None, validate=validate.Length(max=300), metadata={
        "description": "Message-ID this email answers: it joins that thread"})
    idempotency_key = mf.String(load_default=None, validate=validate.Length(min=8, max=160),
                                metadata={"description": "Chosen by the client per email: the "
                                          "same key twice sends once. Without one, every request "
                                          "is a new email (a retried request may send twice)"})


class OutgoingEmailSchema(Contract):
    id = mf.String(required=True)
    contact_id = mf.String(allow_none=True)
    campaign_id = mf.String(allow_none=True)
    from_addr = mf.String(allow_none=True)
    to_addr = mf.String(required=True)
    subject = mf.String(required=True)
    message_id = mf.String(required=True)
    thread_id = mf.String(required=True)
    in_reply_to = mf.String(allow_none=True)
    template = mf.String(allow_none=True)
    status = mf.String(required=True, validate=validate.OneOf(OUTGOING_STATUSES))
    attempts = mf.Integer(required=True)
    last_error = mf.String(allow_none=True)
    created_at = mf.AwareDateTime(required=True)
    sent_at = mf.AwareDateTime(allow_none=True)
    bounced_at = mf.AwareDateTime(allow_none=True)
    bounce_reason = mf.String(allow_none=True)


class EmailAttachmentSchema(Contract):
    filename = mf.String(allow_none=True)
    content_type = mf.String(required=True)
    size = mf.Integer(required=True)
    key = mf.String(allow_none=True, metadata={"description": "Where the file is stored"})
    skipped = mf.String(allow_none=True, metadata={"description": "Why it was not stored"})


class ReceivedEmailSchema(Contract):
    id = mf.String(required=True)
    mailbox = mf.String(required=True)
    message_id = mf.String(allow_none=True)
    in_reply_to = mf.String(allow_none=True)
    thread_id = mf.String(required=True)
    from_addr = mf.String(allow_none=True)
    from_name = mf.String(allow_none=True)
    to_addrs = mf.List(mf.String(), required=True)
    subject = mf.String(allow_none=True)
    sent_date = mf.AwareDateTime(allow_none=True)
    received_at = mf.AwareDateTime(required=True)
    snippet = mf.String(allow_none=True, metadata={"description": "Start of the text body"})
    attachments = mf.List(mf.Nested(EmailAttachmentSchema), required=True)
    problems = mf.List(mf.String(), required=True)


class EmailsQueuedSchema(EventSchema):
    """emails_queued: outgoing emails to deliver now (internal to the email service)."""

    email_ids = mf.List(mf.String(), required=True, validate=validate.Length(min=1, max=5000))


class EmailSentSchema(EventSchema):
    """email_sent and email_bounced."""

    email = mf.Nested(OutgoingEmailSchema, required=True)


class EmailReceivedSchema(EventSchema):
    """email_received: a client's email arrived (bounces are not announced as such)."""

    email = mf.Nested(ReceivedEmailSchema, required=True)


class EmailTemplateInputSchema(Contract):
    subject = mf.String(required=True, validate=validate.Length(min=1, max=998))
    text_body = mf.String(required=True, validate=validate.Length(min=1, max=1_000_000))
    html_body = mf.String(load_default=None, validate=validate.Length(max=2_000_000))


class EmailTemplateSchema(Contract):
    name = mf.String(required=True)
    subject = mf.String(required=True)
    text_body = mf.String(required=True)
    html_body = mf.String(allow_none=True)
    created_at = mf.AwareDateTime(required=True)
    updated_at = mf.AwareDateTime(required=True)


class EmailTemplateListSchema(Contract):
    items = mf.List(mf.Nested(EmailTemplateSchema), required=True)


class EmailThreadQuerySchema(Contract):
    contact_id = mf.String(load_default=None)
    addresses = mf.List(mf.String(validate=ADDRESS), required=True,
                        validate=validate.Length(max=50))
    limit = mf.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class EmailThreadMessageSchema(Contract):
    id = mf.String(required=True)
    direction = mf.String(required=True, validate=validate.OneOf(("in", "out")))
    from_addr = mf.String(allow_none=True)
    to_addrs = mf.List(mf.String(), required=True)
    subject = mf.String(allow_none=True)
    text_body = mf.String(allow_none=True)
    at = mf.AwareDateTime(required=True)
    message_id = mf.String(allow_none=True)
    status = mf.String(allow_none=True, metadata={"description": "Outgoing: its delivery"})
    last_error = mf.String(allow_none=True)
    bounce_reason = mf.String(allow_none=True)
    attachments = mf.List(mf.Nested(EmailAttachmentSchema), required=True)
    problems = mf.List(mf.String(), required=True)


class EmailThreadSchema(Contract):
    thread_id = mf.String(required=True)
    subject = mf.String(allow_none=True)
    last_at = mf.AwareDateTime(required=True)
    messages = mf.List(mf.Nested(EmailThreadMessageSchema), required=True)


class EmailThreadListSchema(Contract):
    items = mf.List(mf.Nested(EmailThreadSchema), required=True)


class MailboxStatusSchema(Contract):
    name = mf.String(required=True)
    uidvalidity = mf.Integer(allow_none=True)
    last_uid = mf.Integer(required=True)
    messages = mf.Integer(required=True)
    synced_at = mf.AwareDateTime(allow_none=True)
    last_error = mf.String(allow_none=True)
    resyncs = mf.Integer(required=True)


class MailboxListSchema(Contract):
    items = mf.List(mf.Nested(MailboxStatusSchema), required=True)


class MailboxSyncResultSchema(Contract):
    """What one sync of a mailbox did."""

    fetched = mf.Integer(required=True, metadata={"description": "Messages downloaded"})
    stored = mf.Integer(required=True, metadata={"description": "New messages stored"})
    bounces = mf.Integer(required=True, metadata={"description": "Outgoing emails marked bounced"})
    resynced = mf.Boolean(required=True, metadata={"description": "UIDVALIDITY changed: read again"})
    searched = mf.Boolean(required=True, metadata={
        "description": "False when UIDNEXT showed nothing new (no SEARCH, no FETCH)"})
