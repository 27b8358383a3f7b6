"""Tables owned by the reporting service: the journal of every consumed event, card merges,
the managers' plans, and (defined in each projection module on this ``metadata``) the read
models the reports are served from."""
import sqlalchemy as sa

from crmhub.runtime.db import reliability_tables

metadata = sa.MetaData()
outbox, inbox = reliability_tables(metadata)
TIME = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# History: every event once ("<event_type>:<event_id>"), replayed by `crmhub reports rebuild`.
journal = sa.Table(
    "journal", metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    sa.Column("event_type", sa.String(100), nullable=False),
    sa.Column("occurred_at", TIME, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", TIME, nullable=False),
)
sa.Index("ix_journal_replay", journal.c.occurred_at, journal.c.id)

# contacts_merged: the source card's history counts as the target's (resolved at report time).
card_aliases = sa.Table(
    "card_aliases", metadata,
    sa.Column("source_id", sa.String(64), primary_key=True),
    sa.Column("target_id", sa.String(64), nullable=False),
    sa.Column("merged_at", TIME, nullable=False),
)

# Entered through the API, not derived from events: a rebuild keeps them.
manager_plans = sa.Table(
    "manager_plans", metadata,
    sa.Column("manager", sa.String(100), primary_key=True),
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("calls", sa.Integer),
    sa.Column("deals_won", sa.Integer),
    sa.Column("revenue_cents", sa.BigInteger),
    sa.Column("updated_at", TIME, nullable=False),
)
