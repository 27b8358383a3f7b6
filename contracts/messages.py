"""Messenger conversations: what a messenger connector reports (``message_incoming``,
``message_status``, both published by the gateway), the messages the messenger service keeps,
its events and its RPC payloads.

A conversation is one client's thread with one bot or business number of one messenger; each
message belongs to one conversation and has a direction. Outgoing messages move
queued -> sending -> sent -> delivered -> read, or end as failed; a status never goes back
(but for sending -> queued when the messenger could not be reached, to be retried).
"""
from marshmallow import fields, validate

from crmhub.contracts.base import Contract, EventSchema

PROVIDERS = ("telegram", "whatsapp")
DIRECTIONS = ("inbound", "outbound")
# received: an inbound message; the others follow an outgoing message's delivery.
STATUSES = ("received", "queued", "sending", "sent", "delivered", "read", "failed")
DELIVERY_STATUSES = ("sent", "delivered", "read", "failed")
# A status moves forwards only. failed ranks above sent (the messenger gave up after taking it)
# and below delivered (a receipt of delivery, even late, is the truer word).
STATUS_RANK = {"received": 0, "queued": 0, "sending": 0, "sent": 1, "failed": 2, "delivered": 3,
               "read": 4}
ATTACHMENT_KINDS = ("photo", "document", "image", "video", "audio", "voice", "sticker",
                    "animation", "video_note", "file")
KEY = validate.Length(min=1, max=200)
TEXT = validate.Length(max=4096)  # Telegram's limit for one message; WhatsApp's is 4096 too


class MessageAttachmentSchema(Contract):
    """A file sent with a message, by the messenger's reference (the hub does not fetch it)."""

    kind = fields.String(required=True, validate=validate.OneOf(ATTACHMENT_KINDS))
    file_id = fields.String(required=True, validate=validate.Length(min=1, max=300), metadata={
        "description": "Telegram file_id or WhatsApp media id"})
    mime = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    size = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0))
    name = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=500))
    width = fields.Integer(allow_none=True, load_default=None)
    height = fields.Integer(allow_none=True, load_default=None)
    too_large = fields.Boolean(load_default=False, metadata={
        "description": "Bigger than the connector's max_attachment_bytes: kept as a "
                       "reference, never to be downloaded"})


class MessengerSenderSchema(Contract):
    """Who wrote: the messenger's identity of the client and what it tells about them."""

    id = fields.String(required=True, validate=KEY, metadata={
        "description": "Telegram user (chat) id, or WhatsApp wa_id"})
    username = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    name = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))
    phone = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=64),
                          metadata={"description": "As the messenger gave it: WhatsApp wa_id, "
                                                   "or a contact the Telegram user shared"})


class MessageIncomingSchema(EventSchema):
    """A client's message, normalized by its connector (gateway -> messenger)."""

    idempotency_key = fields.String(required=True, validate=validate.Length(min=3, max=300),
                                    metadata={"description": "'<provider>:<account>:<update or "
                                                             "message id>'"})
    provider = fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    account = fields.String(required=True, validate=KEY, metadata={
        "description": "Our side: the Telegram bot's name in the config, or the WhatsApp "
                       "phone_number_id"})
    chat_id = fields.String(required=True, validate=KEY, metadata={
        "description": "Where replies go: Telegram chat id, WhatsApp wa_id"})
    provider_message_id = fields.String(required=True, validate=KEY)
    sender = fields.Nested(MessengerSenderSchema, required=True)
    text = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=65536))
    attachments = fields.List(fields.Nested(MessageAttachmentSchema), load_default=list)
    sent_at = fields.AwareDateTime(required=True, metadata={"description": "The messenger's time"})


class MessageStatusSchema(EventSchema):
    """The messenger's word on an outgoing message (gateway -> messenger)."""

    idempotency_key = fields.String(required=True, validate=validate.Length(min=3, max=300))
    provider = fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    account = fields.String(required=True, validate=KEY)
    provider_message_id = fields.String(required=True, validate=KEY)
    status = fields.String(required=True, validate=validate.OneOf(DELIVERY_STATUSES))
    error = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=2000))
    at = fields.AwareDateTime(required=True)


class MessageSchema(Contract):
    """A message as the messenger service keeps it."""

    id = fields.String(required=True)
    conversation_id = fields.String(required=True)
    contact_id = fields.String(allow_none=True, required=True)
    provider = fields.String(required=True)
    account = fields.String(required=True)
    direction = fields.String(required=True, validate=validate.OneOf(DIRECTIONS))
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    text = fields.String(allow_none=True)
    attachments = fields.List(fields.Nested(MessageAttachmentSchema), load_default=list)
    provider_message_id = fields.String(allow_none=True)
    idempotency_key = fields.String(allow_none=True)
    author = fields.String(allow_none=True, metadata={
        "description": "The manager who sent an outgoing message"})
    error = fields.String(allow_none=True, metadata={
        "description": "Why it failed, or the last delivery attempt's error while it is retried"})
    attempts = fields.Integer(load_default=0, metadata={"description": "Delivery attempts so far"})
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)


class ConversationSchema(Contract):
    id = fields.String(required=True)
    contact_id = fields.String(allow_none=True, required=True)
    provider = fields.String(required=True)
    account = fields.String(required=True)
    chat_id = fields.String(required=True)
    title = fields.String(allow_none=True, metadata={"description": "The client's name or handle"})
    last_message_at = fields.AwareDateTime(allow_none=True)
    messages = fields.List(fields.Nested(MessageSchema), load_default=list, metadata={
        "description": "The latest messages, oldest first"})


class ConversationListSchema(Contract):
    items = fields.List(fields.Nested(ConversationSchema), required=True)


class ConversationsQuerySchema(Contract):
    contact_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                              required=True, validate=validate.Length(min=1, max=50))
    messages = fields.Integer(load_default=50, validate=validate.Range(min=0, max=500), metadata={
        "description": "How many of each conversation's latest messages to include"})


class SendMessageSchema(Contract):
    """A manager's message to a client, from the card (REST or UI)."""

    text = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    conversation_id = fields.String(allow_none=True, load_default=None, metadata={
        "description": "Which conversation; default: the client's latest (of ``provider``)"})
    provider = fields.String(allow_none=True, load_default=None,
                             validate=validate.OneOf(PROVIDERS))
    idempotency_key = fields.String(allow_none=True, load_default=None,
                                    validate=validate.Length(min=8, max=200), metadata={
        "description": "The same key again returns the first message instead of sending twice"})


class SendRequestSchema(SendMessageSchema):
    """send_message's RPC argument: the card comes from the URL."""

    contact_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    contact_ids = fields.List(fields.String(), load_default=list, metadata={
        "description": "The card's merged ids: their conversations are the card's too"})


class IdentifySenderSchema(Contract):
    """messenger -> contacts: the card of a messenger sender, created if unknown."""

    provider = fields.String(required=True, validate=validate.OneOf(PROVIDERS))
    account = fields.String(required=True, validate=KEY)
    sender = fields.Nested(MessengerSenderSchema, required=True)


class SenderCardSchema(Contract):
    contact_id = fields.String(required=True)
    created = fields.Boolean(required=True)


class MessageEventSchema(EventSchema):
    """message_received, message_sent, message_status_changed: the message as it now is."""

    message = fields.Nested(MessageSchema, required=True)
    conversation_title = fields.String(allow_none=True, load_default=None)
