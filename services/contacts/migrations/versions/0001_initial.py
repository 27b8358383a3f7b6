"""contacts: cards, phones, emails, timeline, outbox, inbox

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "contacts",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(300)),
        sa.Column("company", sa.String(300)),
        sa.Column("manager", sa.String(200)),
        sa.Column("source", sa.JSON),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("custom_fields", sa.JSON, nullable=False),
        sa.Column("search_text", sa.Text, nullable=False, server_default=""),
        sa.Column("merged_into", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_contacts_merged_into", "contacts", ["merged_into"])
    op.create_index("ix_contacts_updated_at", "contacts", ["updated_at"])
    op.create_table(
        "contact_phones",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("e164", sa.String(32), unique=True),
        sa.Column("raw", sa.String(64), nullable=False),
        sa.Column("extension", sa.String(16)),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_contact_phones_contact_id", "contact_phones", ["contact_id"])
    op.create_table(
        "contact_emails",
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_contact_emails_contact_id", "contact_emails", ["contact_id"])
    op.create_table(
        "timeline",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("source_key", sa.String(300), nullable=False, unique=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_timeline_contact_time", "timeline", ["contact_id", "occurred_at"])
    op.create_table(
        "outbox",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("headers", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("key", sa.String(300), primary_key=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Substring search over name, company, emails and phone digits.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
        op.execute("CREATE INDEX ix_contacts_search_trgm ON contacts "
                   "USING gin (search_text public.gin_trgm_ops)")


def downgrade():
    for table in ("inbox", "outbox", "timeline", "contact_emails", "contact_phones", "contacts"):
        op.drop_table(table)
