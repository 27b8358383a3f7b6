"""Email campaigns, client consent per channel and campaign tracking: the payloads of the
email service's campaign RPCs, of the contacts and deals segment RPCs, and their events."""
from marshmallow import ValidationError, fields, validate, validates_schema

from crmhub.contracts.base import Contract, EventSchema

CHANNELS = ("email", "telegram", "whatsapp", "sms")
CONSENT_STATUSES = ("granted", "withdrawn")
CAMPAIGN_STATUSES = ("draft", "sending", "done", "cancelled")
ID = validate.Length(min=1, max=64)
SOURCE = validate.Length(min=1, max=200)
TAG = fields.String(validate=validate.Length(min=1, max=100))


# -- consent -------------------------------------------------------------------------------------

class ConsentInputSchema(Contract):
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    status = fields.String(required=True, validate=validate.OneOf(CONSENT_STATUSES))
    source = fields.String(load_default="api", validate=SOURCE, metadata={
        "description": "Where the client said so: \"form:contact-us\", \"api\", "
                       "\"unsubscribe-link\", ..."})
    at = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "When the client said so (now if not given)"})


class ConsentRequestSchema(ConsentInputSchema):
    """The email service's ``set_consent`` argument: a consent of one card."""

    contact_id = fields.String(required=True, validate=ID)


class ConsentSchema(Contract):
    contact_id = fields.String(required=True)
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    status = fields.String(required=True, validate=validate.OneOf(CONSENT_STATUSES))
    at = fields.AwareDateTime(required=True, metadata={"description": "When the client said so"})
    source = fields.String(required=True)


class ConsentsSchema(Contract):
    contact_id = fields.String(required=True)
    consents = fields.List(fields.Nested(ConsentSchema), required=True, metadata={
        "description": "The consent in force per channel; a channel not listed has none"})
    history = fields.List(fields.Nested(ConsentSchema), required=True, metadata={
        "description": "Every consent recorded, newest first"})


# -- segments ------------------------------------------------------------------------------------

class SegmentSchema(Contract):
    """Which client cards a campaign goes to. Every filter given must hold; a card also needs
    an email address and, when the campaign is sent, granted email consent."""

    tags_any = fields.List(TAG, load_default=list, metadata={
        "description": "The card has at least one of these tags"})
    tags_all = fields.List(TAG, load_default=list, metadata={
        "description": "The card has every one of these tags"})
    pipeline_id = fields.String(load_default=None, allow_none=True, validate=ID, metadata={
        "description": "The client has an open deal in this pipeline"})
    stage_key = fields.String(load_default=None, allow_none=True, validate=ID, metadata={
        "description": "... at this stage (key) of the pipeline; needs pipeline_id"})
    source_channel = fields.String(load_default=None, allow_none=True, validate=ID, metadata={
        "description": "The card's source channel: form, call, messenger, email, api"})
    source_connector = fields.String(load_default=None, allow_none=True, validate=ID)
    last_activity_after = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "The newest timeline entry of the card is at or after this time"})
    last_activity_before = fields.AwareDateTime(load_default=None, allow_none=True, metadata={
        "description": "The newest timeline entry of the card is before this time"})

    @validates_schema
    def _stage_needs_pipeline(self, data, **kwargs):
        if data.get("stage_key") and not data.get("pipeline_id"):
            raise ValidationError("needs pipeline_id", "stage_key")


class ContactSegmentRequestSchema(Contract):
    """``contacts.segment``: one page of the cards a segment's card filters select."""

    filter = fields.Nested(SegmentSchema, load_default=dict)
    after_id = fields.String(load_default=None, allow_none=True, metadata={
        "description": "Continue after this card id (cards come in id order)"})
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10000))


class SegmentMemberSchema(Contract):
    id = fields.String(required=True)
    email = fields.String(required=True, metadata={"description": "The card's first email"})
    name = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    manager = fields.String(allow_none=True)
    tags = fields.List(fields.String(), load_default=list)
    custom_fields = fields.Dict(keys=fields.String(), load_default=dict)


class ContactSegmentPageSchema(Contract):
    items = fields.List(fields.Nested(SegmentMemberSchema), required=True)
    next_after = fields.String(allow_none=True, required=True, metadata={
        "description": "Pass as after_id for the next page; null when every card was seen"})


class DealSegmentRequestSchema(Contract):
    """``deals.segment_contacts``: card ids with an open deal in a pipeline (and stage)."""

    pipeline_id = fields.String(required=True, validate=ID)
    stage_key = fields.String(load_default=None, allow_none=True, validate=ID)
    after_id = fields.String(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=10000, validate=validate.Range(min=1, max=50000))


class DealSegmentPageSchema(Contract):
    contact_ids = fields.List(fields.String(), required=True, metadata={
        "description": "In id order, each once"})
    next_after = fields.String(allow_none=True, required=True)


# -- campaigns -----------------------------------------------------------------------------------

class CampaignTemplateSchema(Contract):
    """Jinja2 text (sandboxed) with the client's fields: ``name``, ``company``, ``email``,
    ``manager``, ``tags``, ``custom_fields``."""

    subject = fields.String(required=True, validate=validate.Length(min=1, max=500))
    text = fields.String(required=True, validate=validate.Length(min=1, max=100000))
    html = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500000),
                         metadata={"description": "Links in it are tracked; an open pixel is "
                                                  "added"})


class CampaignInputSchema(Contract):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    segment = fields.Nested(SegmentSchema, load_default=dict)
    template = fields.Nested(CampaignTemplateSchema, required=True)
    rate_per_minute = fields.Integer(load_default=600, validate=validate.Range(min=1, max=100000),
                                     metadata={"description": "Emails handed to the mail "
                                                              "server per minute, at most"})


class CampaignCountersSchema(Contract):
    recipients = fields.Integer(required=True, metadata={
        "description": "Consenting clients of the segment when it was sent"})
    excluded_no_consent = fields.Integer(required=True, metadata={
        "description": "Clients of the segment left out: no granted email consent"})
    queued = fields.Integer(required=True, metadata={"description": "Emails queued for sending"})
    skipped = fields.Integer(required=True, metadata={
        "description": "Recipients who withdrew consent before their email was queued"})
    pending = fields.Integer(required=True, metadata={"description": "Still to be queued"})


class CampaignSchema(CampaignInputSchema):
    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CAMPAIGN_STATUSES))
    created_by = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    started_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    counters = fields.Nested(CampaignCountersSchema, required=True)


class CampaignCreateSchema(CampaignInputSchema):
    """``email.create_campaign``: the campaign and who creates it."""

    created_by = fields.String(load_default=None, allow_none=True)


class CampaignListSchema(Contract):
    items = fields.List(fields.Nested(CampaignSchema), required=True, metadata={
        "description": "Newest first"})


class RenderedEmailSchema(Contract):
    to = fields.String(required=True)
    subject = fields.String(required=True)
    text = fields.String(required=True)
    html = fields.String(allow_none=True)
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class CampaignPreviewSchema(Contract):
    matching = fields.Integer(required=True, metadata={
        "description": "Clients of the segment with an email and granted email consent"})
    excluded_no_consent = fields.Integer(required=True, metadata={
        "description": "Clients of the segment with an email but no granted email consent"})
    sample_contact_id = fields.String(allow_none=True, required=True)
    sample = fields.Nested(RenderedEmailSchema, allow_none=True, required=True, metadata={
        "description": "The email as the first matching client would get it"})


class LinkClicksSchema(Contract):
    url = fields.String(required=True)
    clicks = fields.Integer(required=True, metadata={"description": "Every click"})
    clients = fields.Integer(required=True, metadata={"description": "Clients who clicked"})


class CampaignMetricsSchema(Contract):
    campaign_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CAMPAIGN_STATUSES))
    recipients = fields.Integer(required=True)
    queued = fields.Integer(required=True)
    sent = fields.Integer(required=True)
    failed = fields.Integer(required=True)
    bounced = fields.Integer(required=True)
    opened = fields.Integer(required=True, metadata={"description": "Clients who opened (once each)"})
    open_rate = fields.Float(required=True, metadata={"description": "opened / delivered "
                                                                     "(sent - bounced)"})
    bounce_rate = fields.Float(required=True, metadata={"description": "bounced / sent"})
    unsubscribed = fields.Integer(required=True, metadata={
        "description": "Clients who used this campaign's unsubscribe link"})
    clicks = fields.List(fields.Nested(LinkClicksSchema), required=True, metadata={
        "description": "Per link of the email, most clicked first"})


# -- events --------------------------------------------------------------------------------------

class TrackedEmailSchema(EventSchema):
    """What a tracking link proved: which client's email of which campaign was acted on."""

    campaign_id = fields.String(required=True, validate=ID)
    contact_id = fields.String(required=True, validate=ID)


class LinkClickedSchema(TrackedEmailSchema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class ConsentChangedSchema(EventSchema):
    consent = fields.Nested(ConsentSchema, required=True)
    previous_status = fields.String(allow_none=True, metadata={
        "description": "The status before (null: none was recorded)"})
