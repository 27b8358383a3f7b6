"""messenger: conversations, messages, early statuses, outbox, inbox

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
        "conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("provider", sa.String(50), nullable=False),
        sa.Column("account", sa.String(200), nullable=False),
        sa.Column("chat_id", sa.String(200), nullable=False),
        sa.Column("contact_id", sa.String(32)),
        sa.Column("title", sa.String(300)),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("last_message_at", TIME, nullable=False),
        sa.UniqueConstraint("provider", "account", "chat_id", name="uq_conversations_chat"),
    )
    op.create_index("ix_conversations_contact", "conversations", ["contact_id", "last_message_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("attachments", sa.JSON, nullable=False),
        sa.Column("provider_message_id", sa.String(200)),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("author", sa.String(200)),
        sa.Column("error", sa.String(2000)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "created_at"])
    op.create_index("ix_messages_provider_id", "messages", ["provider_message_id"])
    op.create_table(
        "early_statuses",
        sa.Column("provider_message_id", sa.String(200), primary_key=True),
        sa.Column("status", sa.String(10), primary_key=True),
        sa.Column("error", sa.String(2000)),
        sa.Column("at", TIME, nullable=False),
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
    for table in ("inbox", "outbox", "early_statuses", "messages", "conversations"):
        op.drop_table(table)
