"""contacts: client cards, dedupe by phone and email, merges, search and the timeline."""
import structlog
from nameko.dependency_providers import Config
from nameko.rpc import rpc

from crmhub.contracts import contacts as schemas
from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.calls import CallerSchema, CallEventSchema, IdentifyCallerSchema
from crmhub.contracts.campaigns import ContactSegmentPageSchema, ContactSegmentRequestSchema
from crmhub.contracts.deals import OpenDealsPageSchema
from crmhub.contracts.email import EmailReceivedSchema, EmailSentSchema
from crmhub.contracts.errors import CrmhubError, Unavailable
from crmhub.contracts.forms import FormSubmittedSchema
from crmhub.contracts.messages import IdentifySenderSchema, MessageEventSchema, SenderCardSchema
from crmhub.runtime.db import Database
from crmhub.runtime.handlers import batch_handler, reliable_handler
from crmhub.runtime.logs import LogContext
from crmhub.runtime.rpc import RpcProxy
from crmhub.runtime.service import region
from crmhub.runtime.timer import timer
from crmhub.services.contacts import calls, card_deals, logic, segments
from crmhub.services.contacts import emails as email_entries
from crmhub.services.contacts import messages as messenger
from crmhub.services.contacts.models import metadata

EXPECTED = (CrmhubError,)
log = structlog.get_logger(__name__)


class ContactsService:
    name = "contacts"

    config = Config()
    db = Database(metadata)
    deals = RpcProxy("deals")
    log_ctx = LogContext()

    @rpc(expected_exceptions=EXPECTED)
    def search(self, query=None):
        params = load_input(schemas.ContactQuerySchema, query)
        with self.db.connect() as conn:
            page = logic.search(conn, region=region(self.config), **params)
        return instance(schemas.ContactPageSchema).dump(page)

    @rpc(expected_exceptions=EXPECTED)
    def get(self, contact_id):
        with self.db.connect() as conn:
            return instance(schemas.CardSchema).dump(logic.load_card(conn, str(contact_id)))

    @rpc(expected_exceptions=EXPECTED)
    def get_contact(self, contact_id):
        """A card without its timeline (a merged id resolves to the surviving card)."""
        with self.db.connect() as conn:
            return instance(schemas.ContactSchema).dump(logic.load_contact(conn, str(contact_id)))

    @rpc(expected_exceptions=EXPECTED)
    def get_many(self, ids):
        """Many cards (without timeline) in one call: ``ids`` is a list (or ``{"ids": [...]}``)."""
        request = load_input(schemas.ContactIdsSchema, {"ids": ids} if isinstance(ids, list) else ids)
        with self.db.connect() as conn:
            found = logic.load_many(conn, request["ids"])
        return instance(schemas.ContactListSchema).dump(found)

    @rpc(expected_exceptions=EXPECTED)
    def create(self, data, cause="api"):
        data = load_input(schemas.ContactInputSchema, data)
        with self.db.transaction() as tx:
            contact_id = logic.create_contact(tx, data, region(self.config), cause)["id"]
        return self.get(contact_id)

    @rpc(expected_exceptions=EXPECTED)
    def update(self, contact_id, patch):
        patch = load_input(schemas.ContactPatchSchema, patch)
        with self.db.transaction() as tx:
            contact_id = logic.update_contact(tx, str(contact_id), patch, region(self.config))["id"]
        return self.get(contact_id)

    @rpc(expected_exceptions=EXPECTED)
    def merge(self, request):
        request = load_input(schemas.MergeSchema, request)
        with self.db.transaction() as tx:
            contact_id = logic.merge_contacts(tx, request["source_id"], request["target_id"])["id"]
        return self.get(contact_id)

    @rpc(expected_exceptions=EXPECTED)
    def identify_caller(self, request):
        request = load_input(IdentifyCallerSchema, request)
        # Most callers have a card: read without a transaction (the popup waits on this).
        with self.db.connect() as conn:
            caller = calls.known_caller(conn, request, region(self.config))
        if caller is None:
            with self.db.transaction() as tx:
                caller = calls.identify_caller(tx, request, region(self.config))
        return instance(CallerSchema).dump(caller)

    @rpc(expected_exceptions=EXPECTED)
    def segment(self, filter, after_id=None, limit=1000):  # noqa: A002 - the contract's name
        """A page of the cards a campaign segment selects (see contracts/campaigns.py)."""
        request = load_input(ContactSegmentRequestSchema,
                             {"filter": filter, "after_id": after_id, "limit": limit})
        with self.db.connect() as conn:
            page = segments.segment_page(conn, request["filter"], request["after_id"],
                                         request["limit"])
        return instance(ContactSegmentPageSchema).dump(page)

    # Two batches in flight: one is in PostgreSQL (its commit waits on the WAL) while the next
    # is prepared; a lost race for a phone between them takes the one-by-one path below.
    @batch_handler("gateway", ev.FORM_SUBMITTED, max_inflight=2)
    def on_form_submitted(self, deliveries):
        schema = instance(FormSubmittedSchema)
        events = [(schema.load(d.payload), d.request_id) for d in deliveries]
        try:
            with self.db.transaction() as tx:
                logic.ingest_forms(tx, events, region(self.config))
        except logic.ConcurrentClaim:
            # Lost a race for a phone or email: one transaction per form resolves it.
            for event, request_id in events:
                with self.db.transaction() as tx:
                    logic.ingest_form(tx, event, region(self.config), request_id)

    # -- sales on the client's timeline: one entry per deals event -------------------------
    # A deal's events also keep the card's copy of the deal (card_deals), for the popup.
    def _sales_entry(self, kind, payload):
        event = instance(ev.spec(kind).schema).load(payload)
        with self.db.transaction() as tx:
            logic.add_sales_entry(tx, kind, event)
            if "deal" in event:
                card_deals.record_deals(tx.conn, [event["deal"]])

    @reliable_handler("deals", ev.DEAL_UPDATED)
    def on_deal_updated(self, payload):
        event = instance(ev.spec(ev.DEAL_UPDATED).schema).load(payload)
        with self.db.transaction() as tx:
            card_deals.record_deals(tx.conn, [event["deal"]])

    @timer("CARD_DEALS_BACKFILL_CHECK_SECONDS", default=60.0)
    def backfill_card_deals(self):
        """Once, on a database that had cards before it kept their deals (an upgrade): copy
        the open deals from the deals service, at start. Retried on the next tick while it
        does not answer."""
        with self.db.connect() as conn:
            if card_deals.backfilled(conn):
                return
        schema = instance(OpenDealsPageSchema)
        try:
            copied = card_deals.backfill(self.db, lambda after_id: schema.load(
                self.deals.open_deals({"after_id": after_id})))
        except Unavailable as exc:
            log.warning("open deals not copied yet: the deals service does not answer",
                        error=str(exc))
            return
        log.info("open deals copied onto the cards", deals=copied)

    @reliable_handler("deals", ev.DEAL_CREATED)
    def on_deal_created(self, payload):
        self._sales_entry(ev.DEAL_CREATED, payload)

    @reliable_handler("deals", ev.DEAL_STAGE_CHANGED)
    def on_deal_stage_changed(self, payload):
        self._sales_entry(ev.DEAL_STAGE_CHANGED, payload)

    @reliable_handler("deals", ev.DEAL_WON)
    def on_deal_won(self, payload):
        self._sales_entry(ev.DEAL_WON, payload)

    @reliable_handler("deals", ev.DEAL_LOST)
    def on_deal_lost(self, payload):
        self._sales_entry(ev.DEAL_LOST, payload)

    @reliable_handler("deals", ev.TASK_CREATED)
    def on_task_created(self, payload):
        self._sales_entry(ev.TASK_CREATED, payload)

    @reliable_handler("deals", ev.TASK_COMPLETED)
    def on_task_completed(self, payload):
        self._sales_entry(ev.TASK_COMPLETED, payload)

    @reliable_handler("deals", ev.GOODS_ARRIVED)
    def on_goods_arrived(self, payload):
        self._sales_entry(ev.GOODS_ARRIVED, payload)

    # -- calls on the client's timeline: one entry per call, its recording added later ----
    # In batches, one transaction each: a call center's calls come by the hundred a second.
    def _call_entries(self, kind, deliveries):
        schema = instance(CallEventSchema)
        events = [(schema.load(d.payload), d.request_id) for d in deliveries]
        # By call: two batches writing the entries of the same calls (a call's end and its
        # recording) take them in one order and cannot deadlock.
        events.sort(key=lambda item: item[0]["call"]["id"])
        with self.db.transaction() as tx:
            for event, request_id in events:
                tx.request_id = request_id
                calls.add_call_entry(tx, kind, event)

    @batch_handler("telephony", ev.CALL_FINISHED, max_inflight=2)
    def on_call_finished(self, deliveries):
        self._call_entries(ev.CALL_FINISHED, deliveries)

    @batch_handler("telephony", ev.CALL_MISSED, max_inflight=2)
    def on_call_missed(self, deliveries):
        self._call_entries(ev.CALL_MISSED, deliveries)

    @batch_handler("telephony", ev.RECORDING_READY, max_inflight=2)
    def on_recording_ready(self, deliveries):
        self._call_entries(ev.RECORDING_READY, deliveries)

    # -- messenger conversations: a card for a new sender, one entry per message -------------
    @rpc(expected_exceptions=EXPECTED)
    def identify_sender(self, request):
        request = load_input(IdentifySenderSchema, request)
        with self.db.transaction() as tx:
            card = messenger.identify_sender(tx, request, region(self.config))
        return instance(SenderCardSchema).dump(card)

    def _message_entry(self, payload):
        event = instance(MessageEventSchema).load(payload)
        with self.db.transaction() as tx:
            messenger.add_message_entry(tx, event)

    @reliable_handler("messenger", ev.MESSAGE_RECEIVED)
    def on_message_received(self, payload):
        self._message_entry(payload)

    @reliable_handler("messenger", ev.MESSAGE_SENT)
    def on_message_sent(self, payload):
        self._message_entry(payload)

    @reliable_handler("messenger", ev.MESSAGE_STATUS_CHANGED)
    def on_message_status_changed(self, payload):
        self._message_entry(payload)

    # -- emails: a card for an unknown sender, one entry per email and per bounce ------------
    @reliable_handler("email", ev.EMAIL_SENT)
    def on_email_sent(self, payload):
        event = instance(EmailSentSchema).load(payload)
        with self.db.transaction() as tx:
            email_entries.add_sent_entry(tx, event)

    @reliable_handler("email", ev.EMAIL_BOUNCED)
    def on_email_bounced(self, payload):
        event = instance(EmailSentSchema).load(payload)
        with self.db.transaction() as tx:
            email_entries.add_bounce_entry(tx, event)

    @reliable_handler("email", ev.EMAIL_RECEIVED)
    def on_email_received(self, payload):
        event = instance(EmailReceivedSchema).load(payload)
        with self.db.transaction() as tx:
            email_entries.add_received_entry(tx, event, region(self.config))
