"""email: sending through SMTP from templates, IMAP sync of mailboxes into threads, bounces.

Entrypoints only; the rules are in sender, outgoing, imap_sync, threads and templates.
"""
import structlog
from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.rpc import rpc

from crmhub.contracts import email as schemas
from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.errors import CrmhubError, InvalidInput, NotFound, Unavailable
from crmhub.runtime.db import Database, new_id
from crmhub.runtime.handlers import reliable_handler
from crmhub.runtime.logs import LogContext
from crmhub.runtime.rpc import RpcProxy
from crmhub.runtime.timer import timer
from crmhub.services.email import outgoing, sender, templates, threads
from crmhub.services.email.campaign_service import CampaignEntrypoints
from crmhub.services.email.dependencies import MailboxesProvider
from crmhub.services.email.imap_sync import SyncError
from crmhub.services.email.models import mailboxes, metadata
from crmhub.services.email.smtp import Smtp

EXPECTED = (CrmhubError,)
log = structlog.get_logger(__name__)


def _dump(schema_cls, value):
    return instance(schema_cls).dump(value)


class EmailService(CampaignEntrypoints):
    name = "email"

    config = Config()
    db = Database(metadata)
    contacts = RpcProxy("contacts")
    smtp = Smtp()
    mailboxes = MailboxesProvider()
    log_ctx = LogContext()

    # -- sending ---------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def send_email(self, request, actor=None):
        """Queue an email to a card's client; it is sent at once by ``deliver``. The same
        idempotency key again returns the email queued first."""
        request = load_input(schemas.SendEmailSchema, request)
        try:
            card = self.contacts.get_contact(request["contact_id"])
        except NotFound:
            raise NotFound(f"no client card {request['contact_id']!r}") from None
        with self.db.connect() as conn:
            email = sender.compose(conn, card, request)
        with self.db.transaction() as tx:
            queued = outgoing.queue_email(
                tx, idempotency_key=f"card:{card['id']}:{request['idempotency_key'] or new_id()}",
                contact_id=card["id"], from_addr=self.smtp.from_addr, requested_by=actor,
                in_reply_to=request["in_reply_to"], **email)
        return outgoing.public(queued)

    @reliable_handler("email", ev.EMAILS_QUEUED)
    def deliver(self, payload):
        event = instance(schemas.EmailsQueuedSchema).load(payload)
        counts = sender.deliver(self.db, self.smtp, event["email_ids"])
        log.info("emails delivered", **counts)

    @rpc(expected_exceptions=EXPECTED)
    def get_email(self, email_id):
        with self.db.connect() as conn:
            email = outgoing.load(conn, str(email_id))
        if email is None:
            raise NotFound(f"no outgoing email {email_id!r}")
        return outgoing.public(email)

    # -- threads -------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_threads(self, query):
        query = load_input(schemas.EmailThreadQuerySchema, query)
        with self.db.connect() as conn:
            found = threads.list_threads(conn, query["addresses"], query["contact_id"],
                                         query["limit"])
        return _dump(schemas.EmailThreadListSchema, {"items": found})

    # -- templates -----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_templates(self):
        with self.db.connect() as conn:
            return _dump(schemas.EmailTemplateListSchema, {"items": templates.list_all(conn)})

    @rpc(expected_exceptions=EXPECTED)
    def get_template(self, name):
        with self.db.connect() as conn:
            return _dump(schemas.EmailTemplateSchema, templates.get(conn, str(name)))

    @rpc(expected_exceptions=EXPECTED)
    def put_template(self, name, data):
        data = load_input(schemas.EmailTemplateInputSchema, data)
        try:
            schemas.TEMPLATE_NAME(str(name))
        except ValidationError:
            raise InvalidInput("name: 1 to 100 letters, digits, '_', '.', '-'",
                               {"name": ["bad template name"]}) from None
        with self.db.transaction() as tx:
            return _dump(schemas.EmailTemplateSchema, templates.put(tx, str(name), data))

    @rpc(expected_exceptions=EXPECTED)
    def delete_template(self, name):
        with self.db.transaction() as tx:
            templates.delete(tx, str(name))
        return self.list_templates()

    # -- mailboxes -----------------------------------------------------------------------------
    @timer("EMAIL_SYNC_CHECK_SECONDS", default=5.0)
    def sync_mailboxes(self):
        """Sync each mailbox whose poll_seconds have passed; one failing does not stop the rest."""
        for name in self.mailboxes.due():
            try:
                self.mailboxes.syncer(self.db, name).sync()
            except (OSError, SyncError) as exc:
                log.warning("mailbox sync failed", mailbox=name, error=repr(exc))

    @rpc(expected_exceptions=EXPECTED)
    def sync_mailbox(self, name):
        """Sync one mailbox now; returns what was fetched (the CLI and tests use it)."""
        try:
            return _dump(schemas.MailboxSyncResultSchema, self.mailboxes.syncer(self.db, str(name)).sync())
        except (OSError, SyncError) as exc:
            raise Unavailable(f"mailbox {name}: {exc}") from None

    @rpc(expected_exceptions=EXPECTED)
    def list_mailboxes(self):
        with self.db.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(mailboxes.select().order_by(mailboxes.c.name))]
        return _dump(schemas.MailboxListSchema, {"items": rows})
