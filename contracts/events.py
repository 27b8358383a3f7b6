"""The event catalog: every event crmhub publishes, its owner, schema and version.

An event ``name`` is published by its ``owner`` service on the exchange ``<owner>.events``
with routing key ``name``; its body is ``schema().dump(...)``.
"""
from __future__ import annotations

from dataclasses import dataclass

from crmhub.contracts import calls, campaigns, catalog, contacts, deals, forms
from crmhub.contracts import email as emails
from crmhub.contracts import messages as messaging
from crmhub.contracts.base import EventSchema

FORM_SUBMITTED = "form_submitted"
CONTACT_CREATED = "contact_created"
CONTACT_UPDATED = "contact_updated"
CONTACTS_MERGED = "contacts_merged"
TIMELINE_ENTRY_ADDED = "timeline_entry_added"
DEAL_CREATED = "deal_created"
DEAL_UPDATED = "deal_updated"
DEAL_STAGE_CHANGED = "deal_stage_changed"
DEAL_WON = "deal_won"
DEAL_LOST = "deal_lost"
TASK_CREATED = "task_created"
TASK_UPDATED = "task_updated"
TASK_COMPLETED = "task_completed"
TASK_DUE = "task_due"
GOODS_ARRIVED = "goods_arrived"
CALL_SIGNAL = "call_signal"
CALL_RINGING = "call_ringing"
CALL_ANSWERED = "call_answered"
CALL_FINISHED = "call_finished"
CALL_MISSED = "call_missed"
RECORDING_FOUND = "recording_found"
RECORDING_READY = "recording_ready"
STOCK_CHANGED = "stock_changed"
PRICE_CHANGED = "price_changed"
CATALOG_IMPORTED = "catalog_imported"
MESSAGE_INCOMING = "message_incoming"
MESSAGE_STATUS = "message_status"
MESSAGE_RECEIVED = "message_received"
MESSAGE_SENT = "message_sent"
MESSAGE_STATUS_CHANGED = "message_status_changed"
EMAILS_QUEUED = "emails_queued"
EMAIL_SENT = "email_sent"
EMAIL_RECEIVED = "email_received"
EMAIL_BOUNCED = "email_bounced"
CAMPAIGN_EMAIL_OPENED = "campaign_email_opened"
CAMPAIGN_LINK_CLICKED = "campaign_link_clicked"
CAMPAIGN_UNSUBSCRIBE_REQUESTED = "campaign_unsubscribe_requested"
CONSENT_CHANGED = "consent_changed"


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
    EventSpec(DEAL_CREATED, "deals", deals.DealCreatedSchema, 1,
              "A deal was opened for a client (through the API or by a lead rule)."),
    EventSpec(DEAL_UPDATED, "deals", deals.DealUpdatedSchema, 1,
              "Fields of a deal changed (title, manager, amount, products)."),
    EventSpec(DEAL_STAGE_CHANGED, "deals", deals.DealStageChangedSchema, 1,
              "A deal moved to another stage of its pipeline (forwards or backwards)."),
    EventSpec(DEAL_WON, "deals", deals.DealClosedSchema, 1,
              "A deal reached a won stage."),
    EventSpec(DEAL_LOST, "deals", deals.DealClosedSchema, 1,
              "A deal reached a lost stage."),
    EventSpec(TASK_CREATED, "deals", deals.TaskEventSchema, 1,
              "A task was set for a manager."),
    EventSpec(TASK_UPDATED, "deals", deals.TaskUpdatedSchema, 1,
              "A task was renamed, rescheduled, reassigned or marked undone."),
    EventSpec(TASK_COMPLETED, "deals", deals.TaskEventSchema, 1,
              "A task was marked done."),
    EventSpec(TASK_DUE, "deals", deals.TaskEventSchema, 1,
              "A task fell due: the reminder for its manager (published once per due time)."),
    EventSpec(GOODS_ARRIVED, "deals", deals.GoodsArrivedSchema, 1,
              "Goods a deal waited for arrived in stock (stock_changed from the catalog): the "
              "deal moved to its stage's on_goods_arrival stage, its manager got a task."),
    EventSpec(CALL_SIGNAL, "gateway", calls.CallSignalSchema, 1,
              "A PBX reported a change of a call (Mango, Zadarma, Asterisk connectors); the "
              "telephony service folds the signals of one call into the call."),
    EventSpec(CALL_RINGING, "telephony", calls.CallRingingSchema, 1,
              "Extensions started ringing for a call: the incoming-call popup, with the caller's "
              "card summary, for their managers."),
    EventSpec(CALL_ANSWERED, "telephony", calls.CallEventSchema, 1,
              "A call was answered (once per call)."),
    EventSpec(CALL_FINISHED, "telephony", calls.CallEventSchema, 1,
              "A call that was answered ended (once per call)."),
    EventSpec(CALL_MISSED, "telephony", calls.CallEventSchema, 1,
              "A call ended without being answered: missed, busy, failed or voicemail (once "
              "per call)."),
    EventSpec(RECORDING_FOUND, "telephony", calls.RecordingFoundSchema, 1,
              "The PBX announced a call's recording; the telephony service downloads it (in "
              "a handler of its own, retried, then dead-lettered with the call kept)."),
    EventSpec(RECORDING_READY, "telephony", calls.CallEventSchema, 1,
              "A call's recording was fetched and stored; it can be played."),
    EventSpec(STOCK_CHANGED, "catalog", catalog.StockChangedSchema, 1,
              "An import from 1C changed stock rows (only those that changed, up to 1,000 per "
              "event); ``arrived`` marks goods that came in (zero or none before)."),
    EventSpec(PRICE_CHANGED, "catalog", catalog.PriceChangedSchema, 1,
              "An import from 1C changed prices (only those that changed, up to 1,000 per event)."),
    EventSpec(CATALOG_IMPORTED, "catalog", catalog.CatalogImportedSchema, 1,
              "An exchange file from 1C was imported whole, or refused with nothing applied."),
    EventSpec(MESSAGE_INCOMING, "gateway", messaging.MessageIncomingSchema, 1,
              "A client wrote to a bot or business number (Telegram, WhatsApp connectors)."),
    EventSpec(MESSAGE_STATUS, "gateway", messaging.MessageStatusSchema, 1,
              "A messenger reported an outgoing message sent, delivered, read or failed."),
    EventSpec(MESSAGE_RECEIVED, "messenger", messaging.MessageEventSchema, 1,
              "A client's message was stored in its conversation (the card found or created)."),
    EventSpec(MESSAGE_SENT, "messenger", messaging.MessageEventSchema, 1,
              "A manager sent a message: stored as queued; the messenger service delivers it "
              "(retried while the messenger is down, then dead-lettered)."),
    EventSpec(MESSAGE_STATUS_CHANGED, "messenger", messaging.MessageEventSchema, 1,
              "An outgoing message moved on (sent, delivered, read or failed), or an attempt "
              "to deliver it failed and will be retried (still queued, with the error)."),
    EventSpec(EMAILS_QUEUED, "email", emails.EmailsQueuedSchema, 1,
              "Outgoing emails were queued (one event per batch of ids): the email service's "
              "sender delivers them through SMTP."),
    EventSpec(EMAIL_SENT, "email", emails.EmailSentSchema, 1,
              "The SMTP server accepted an outgoing email (it goes on the card's timeline)."),
    EventSpec(EMAIL_RECEIVED, "email", emails.EmailReceivedSchema, 1,
              "The IMAP sync found a new email from a client (not a bounce); an unknown sender "
              "gets a card and a lead."),
    EventSpec(EMAIL_BOUNCED, "email", emails.EmailSentSchema, 1,
              "A delivery status notification in a synced mailbox reported an outgoing email "
              "as undeliverable."),
    EventSpec(CAMPAIGN_EMAIL_OPENED, "gateway", campaigns.TrackedEmailSchema, 1,
              "A client's mail program loaded the open pixel of a campaign email (every load)."),
    EventSpec(CAMPAIGN_LINK_CLICKED, "gateway", campaigns.LinkClickedSchema, 1,
              "A client followed a link of a campaign email (every click; the token proves the "
              "URL was in the email)."),
    EventSpec(CAMPAIGN_UNSUBSCRIBE_REQUESTED, "gateway", campaigns.TrackedEmailSchema, 1,
              "A client used the unsubscribe link (or one-click List-Unsubscribe) of a campaign "
              "email: the email service withdraws their email consent."),
    EventSpec(CONSENT_CHANGED, "email", campaigns.ConsentChangedSchema, 1,
              "A client's consent on a channel changed (granted or withdrawn), with its source."),
)}


def spec(name: str) -> EventSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise KeyError(f"unknown event {name!r}; known: {sorted(CATALOG)}") from None
