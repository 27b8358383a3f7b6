"""messenger: conversations with clients in Telegram and WhatsApp, replies from the card and
their delivery."""
import structlog
from nameko.dependency_providers import Config
from nameko.rpc import rpc

from crmhub.contracts import events as ev
from crmhub.contracts import messages as schemas
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.errors import CrmhubError
from crmhub.plugins.api import MessengerError, OutgoingMessage
from crmhub.runtime.db import Database
from crmhub.runtime.handlers import reliable_handler
from crmhub.runtime.logs import LogContext
from crmhub.runtime.rpc import RpcProxy
from crmhub.services.messenger import logic
from crmhub.services.messenger.dependencies import MESSAGES, UNMATCHED_STATUSES, Messengers
from crmhub.services.messenger.models import metadata

EXPECTED = (CrmhubError,)
log = structlog.get_logger(__name__)


class MessengerService:
    name = "messenger"

    config = Config()
    db = Database(metadata)
    contacts = RpcProxy("contacts")
    messengers = Messengers()
    log_ctx = LogContext()

    # -- a client writes ---------------------------------------------------------------------
    @reliable_handler("gateway", ev.MESSAGE_INCOMING)
    def on_message_incoming(self, payload):
        """Store the message in its conversation, in one transaction that holds the
        conversation's row: a first message from an unknown sender gets a card from contacts
        (found by phone, else new) meanwhile, and a new client's messages arriving together
        wait for that one card instead of making one each."""
        event = instance(schemas.MessageIncomingSchema).load(payload)
        with self.db.transaction() as tx:
            if not tx.claim(f"in:{event['idempotency_key']}"):
                return
            conversation = logic.lock_conversation(tx, event)
            contact_id = conversation["contact_id"]
            if contact_id is None:
                card = instance(schemas.SenderCardSchema).load(self.contacts.identify_sender(
                    instance(schemas.IdentifySenderSchema).dump(
                        {key: event[key] for key in ("provider", "account", "sender")})))
                contact_id = card["contact_id"]
            logic.record_incoming(tx, event, {**conversation, "contact_id": contact_id})
        MESSAGES.labels(event["provider"], "inbound").inc()

    @reliable_handler("gateway", ev.MESSAGE_STATUS)
    def on_message_status(self, payload):
        event = instance(schemas.MessageStatusSchema).load(payload)
        with self.db.transaction() as tx:
            if tx.claim(f"status:{event['idempotency_key']}") and \
                    logic.apply_status(tx, event) is None:
                UNMATCHED_STATUSES.labels(event["provider"]).inc()
                log.info("status of a message not sent by the hub (or not recorded yet): kept "
                         "aside", provider=event["provider"], status=event["status"],
                         provider_message_id=event["provider_message_id"])

    # -- a manager replies -------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def send_message(self, request, actor=None):
        """Queue a manager's message; returns it (status queued). Delivery follows."""
        request = load_input(schemas.SendRequestSchema, request)
        with self.db.transaction() as tx:
            message = logic.queue_outgoing(tx, request, actor)
        return instance(schemas.MessageSchema).dump(message)

    @reliable_handler("messenger", ev.MESSAGE_SENT)
    def on_message_sent(self, payload):
        """Deliver a queued message. A messenger that is down: raise, so the message is
        retried with backoff, then parked in the dead-letter queue (still queued, the last
        error on the card). A refusal is final: failed. A redelivery finds it no longer
        queued (sending or sent) and sends nothing."""
        message_id = instance(schemas.MessageEventSchema).load(payload)["message"]["id"]
        with self.db.transaction() as tx:
            if not logic.start_sending(tx, message_id):
                return
            message, conversation = logic.load_message(tx.conn, message_id)
        outgoing = OutgoingMessage(message_id=message["id"], account=conversation["account"],
                                   chat_id=conversation["chat_id"], text=message["text"])
        try:
            provider_id = self.messengers.send(conversation["provider"], outgoing)
        except MessengerError as exc:
            with self.db.transaction() as tx:
                if exc.unavailable:
                    logic.note_failed_attempt(tx, message_id, exc.message)
                else:
                    logic.mark_failed(tx, message_id, exc.message)
            if exc.unavailable:
                raise
            return
        with self.db.transaction() as tx:
            logic.mark_sent(tx, message_id, provider_id)
        MESSAGES.labels(conversation["provider"], "outbound").inc()

    # -- reading -----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def conversations(self, query):
        """A card's conversations with their latest messages."""
        query = load_input(schemas.ConversationsQuerySchema, query)
        with self.db.connect() as conn:
            found = logic.conversations_of(conn, query["contact_ids"], query["messages"])
        return instance(schemas.ConversationListSchema).dump({"items": found})

    @rpc(expected_exceptions=EXPECTED)
    def get_message(self, message_id):
        with self.db.connect() as conn:
            return instance(schemas.MessageSchema).dump(logic.load_message(conn, str(message_id))[0])
