"""Tables owned by the email service.

``outgoing_emails`` is shared with the campaigns module (services/email/campaign_models.py adds
its own tables to this ``metadata``): a campaign queues its messages there through
``outgoing.queue_emails`` and the sender delivers them like any other.
"""
import sqlalchemy as sa

from crmhub.runtime.db import reliability_tables

metadata = sa.MetaData()
outbox, inbox = reliability_tables(metadata)
TIME = sa.DateTime(timezone=True)

# queued -> sending -> sent (-> bounced); failed when the server refused it for good.
OUTGOING_STATUSES = ("queued", "sending", "sent", "failed", "bounced")

outgoing_emails = sa.Table(
    "outgoing_emails", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # One send per key: the caller's retry, a redelivered event or a double click send once.
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("contact_id", sa.String(32)),
    sa.Column("campaign_id", sa.String(32), index=True),
    sa.Column("from_addr", sa.String(320)),
    sa.Column("to_addr", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(998), nullable=False),
    sa.Column("text_body", sa.Text, nullable=False),
    sa.Column("html_body", sa.Text),
    # Extra headers, e.g. List-Unsubscribe: {name: value}.
    sa.Column("headers", sa.JSON, nullable=False),
    # Our Message-ID, fixed at queue time: replies and bounces are matched on it.
    sa.Column("message_id", sa.String(300), nullable=False, unique=True),
    sa.Column("in_reply_to", sa.String(300)),
    sa.Column("thread_id", sa.String(32), nullable=False),
    sa.Column("template", sa.String(100)),
    sa.Column("requested_by", sa.String(200)),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("sent_at", TIME),
    sa.Column("bounced_at", TIME),
    sa.Column("bounce_reason", sa.Text),
    sa.Index("ix_outgoing_status", "status", "created_at"),
    sa.Index("ix_outgoing_contact", "contact_id", "created_at"),
    sa.Index("ix_outgoing_to", "to_addr"),
    sa.Index("ix_outgoing_thread", "thread_id"),
)

# Where the IMAP sync of each configured mailbox stands.
mailboxes = sa.Table(
    "mailboxes", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("uidvalidity", sa.BigInteger),
    sa.Column("last_uid", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("messages", sa.Integer, nullable=False, server_default="0"),
    sa.Column("synced_at", TIME),
    sa.Column("last_error", sa.Text),
    sa.Column("resyncs", sa.Integer, nullable=False, server_default="0"),
)

received_emails = sa.Table(
    "received_emails", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("mailbox", sa.String(100), nullable=False),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("uid", sa.BigInteger, nullable=False),
    # The Message-ID, or a digest of the headers when there is none: a resync after a
    # UIDVALIDITY change stores nothing twice.
    sa.Column("dedupe_key", sa.String(300), nullable=False),
    sa.Column("message_id", sa.String(300)),
    sa.Column("in_reply_to", sa.String(300)),
    sa.Column("references", sa.Text),
    sa.Column("thread_id", sa.String(32), nullable=False),
    sa.Column("from_addr", sa.String(320)),
    sa.Column("from_name", sa.String(300)),
    sa.Column("to_addrs", sa.JSON, nullable=False),
    sa.Column("subject", sa.Text),
    sa.Column("sent_date", TIME),
    sa.Column("received_at", TIME, nullable=False),
    sa.Column("text_body", sa.Text),
    sa.Column("html_body", sa.Text),
    # [{filename, content_type, size, key}] or {..., skipped: why}: files live outside the DB.
    sa.Column("attachments", sa.JSON, nullable=False),
    # What could not be read as sent (unknown charset, broken MIME): shown with the message.
    sa.Column("problems", sa.JSON, nullable=False),
    # "message", or "bounce" for a delivery status notification (never a client's email).
    sa.Column("kind", sa.String(10), nullable=False),
    sa.UniqueConstraint("mailbox", "dedupe_key", name="uq_received_mailbox_key"),
    sa.Index("ix_received_message_id", "message_id"),
    sa.Index("ix_received_from", "from_addr", "received_at"),
    sa.Index("ix_received_thread", "thread_id"),
)

templates = sa.Table(
    "email_templates", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text_body", sa.Text, nullable=False),
    sa.Column("html_body", sa.Text),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
)
