"""Tables owned by the contacts service."""
import sqlalchemy as sa

from crmhub.runtime.db import reliability_tables

metadata = sa.MetaData()
outbox, inbox = reliability_tables(metadata)

contacts = sa.Table(
    "contacts", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(300)),
    sa.Column("company", sa.String(300)),
    sa.Column("manager", sa.String(200)),
    sa.Column("source", sa.JSON),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("custom_fields", sa.JSON, nullable=False),
    # Lower-cased name, company, emails and phone digits: what substring search looks in.
    sa.Column("search_text", sa.Text, nullable=False, server_default=""),
    sa.Column("merged_into", sa.String(32), index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# A phone (and an email) belongs to one card: the unique key is what makes ingest dedupe
# race-safe, since two concurrent inserts of one number cannot both succeed.
contact_phones = sa.Table(
    "contact_phones", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("contact_id", sa.String(32), nullable=False, index=True),
    sa.Column("e164", sa.String(32), unique=True),
    sa.Column("raw", sa.String(64), nullable=False),
    sa.Column("extension", sa.String(16)),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)

contact_emails = sa.Table(
    "contact_emails", metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("contact_id", sa.String(32), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)

timeline = sa.Table(
    "timeline", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("contact_id", sa.String(32), nullable=False),
    sa.Column("source_key", sa.String(300), nullable=False, unique=True),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Index("ix_timeline_contact_time", "contact_id", "occurred_at"),
)

# Each card's deals as the deals service last announced them (its events, the newest version
# kept), so the incoming-call popup shows a caller's open deals without asking that service.
# Closed deals stay, with their version: an older event arriving late cannot reopen them.
OPEN_DEAL = sa.text("status = 'open'")
card_deals = sa.Table(
    "card_deals", metadata,
    sa.Column("deal_id", sa.String(32), primary_key=True),
    sa.Column("contact_id", sa.String(32), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("pipeline_name", sa.String(200)),
    sa.Column("stage_name", sa.String(200)),
    sa.Column("amount", sa.String(32)),
    sa.Column("currency", sa.String(3)),
    sa.Column("manager", sa.String(100)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
# A card's open deals, latest activity first (the deals service's own order).
sa.Index("ix_card_deals_open", card_deals.c.contact_id, card_deals.c.updated_at.desc(),
         card_deals.c.deal_id, postgresql_where=OPEN_DEAL, sqlite_where=OPEN_DEAL)

# One-off jobs done (name: when), e.g. copying the deals that existed before card_deals did.
backfills = sa.Table(
    "backfills", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
)
