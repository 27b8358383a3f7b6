"""Tables owned by the messenger service."""
import sqlalchemy as sa

from crmhub.runtime.db import reliability_tables

metadata = sa.MetaData()
outbox, inbox = reliability_tables(metadata)
TIME = sa.DateTime(timezone=True)

# One client's thread with one bot (Telegram) or business number (WhatsApp).
conversations = sa.Table(
    "conversations", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("chat_id", sa.String(200), nullable=False),
    # The card, once contacts found or made it (a merged id still resolves there).
    sa.Column("contact_id", sa.String(32)),
    sa.Column("title", sa.String(300)),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("last_message_at", TIME, nullable=False),
    sa.UniqueConstraint("provider", "account", "chat_id", name="uq_conversations_chat"),
    sa.Index("ix_conversations_contact", "contact_id", "last_message_at"),
)

messages = sa.Table(
    "messages", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("conversation_id", sa.String(32), nullable=False),
    sa.Column("direction", sa.String(10), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("text", sa.Text),
    sa.Column("attachments", sa.JSON, nullable=False),
    # The messenger's id: Telegram's message_id (per chat), WhatsApp's wamid.
    sa.Column("provider_message_id", sa.String(200)),
    # An outgoing message's key: the same key again is the same message, never a second send.
    sa.Column("idempotency_key", sa.String(200), unique=True),
    sa.Column("author", sa.String(200)),
    sa.Column("error", sa.String(2000)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Index("ix_messages_conversation", "conversation_id", "created_at"),
    sa.Index("ix_messages_provider_id", "provider_message_id"),
)

# Statuses that came before the send they are about was recorded (WhatsApp may report "sent"
# before our own commit), or about messages sent by something else: applied when the message
# shows up, else left here.
early_statuses = sa.Table(
    "early_statuses", metadata,
    sa.Column("provider_message_id", sa.String(200), primary_key=True),
    sa.Column("status", sa.String(10), primary_key=True),
    sa.Column("error", sa.String(2000)),
    sa.Column("at", TIME, nullable=False),
)
