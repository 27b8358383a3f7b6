"""email: outgoing emails, mailboxes' sync state, received emails, templates, outbox, inbox

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "outgoing_emails",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
        sa.Column("contact_id", sa.String(32)),
        sa.Column("campaign_id", sa.String(32)),
        sa.Column("from_addr", sa.String(320)),
        sa.Column("to_addr", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("text_body", sa.Text, nullable=False),
        sa.Column("html_body", sa.Text),
        sa.Column("headers", sa.JSON, nullable=False),
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
    )
    op.create_index("ix_outgoing_emails_campaign_id", "outgoing_emails", ["campaign_id"])
    op.create_index("ix_outgoing_status", "outgoing_emails", ["status", "created_at"])
    op.create_index("ix_outgoing_contact", "outgoing_emails", ["contact_id", "created_at"])
    op.create_index("ix_outgoing_to", "outgoing_emails", ["to_addr"])
    op.create_index("ix_outgoing_thread", "outgoing_emails", ["thread_id"])
    op.create_table(
        "mailboxes",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("uidvalidity", sa.BigInteger),
        sa.Column("last_uid", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("messages", sa.Integer, nullable=False, server_default="0"),
        sa.Column("synced_at", TIME),
        sa.Column("last_error", sa.Text),
        sa.Column("resyncs", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "received_emails",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("mailbox", sa.String(100), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
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
        sa.Column("attachments", sa.JSON, nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.UniqueConstraint("mailbox", "dedupe_key", name="uq_received_mailbox_key"),
    )
    op.create_index("ix_received_message_id", "received_emails", ["message_id"])
    op.create_index("ix_received_from", "received_emails", ["from_addr", "received_at"])
    op.create_index("ix_received_thread", "received_emails", ["thread_id"])
    op.create_table(
        "email_templates",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("text_body", sa.Text, nullable=False),
        sa.Column("html_body", sa.Text),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("headers", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("handled_at", TIME, nullable=False),
    )


def downgrade():
    for table in ("inbox", "outbox", "email_templates", "received_emails", "mailboxes",
                  "outgoing_emails"):
        op.drop_table(table)
