"""contacts: each card's deals as announced by the deals service (the popup's open deals)

Revision ID: 0002
Revises: 0001
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN_DEAL = sa.text("status = 'open'")


def upgrade():
    op.create_table(
        "card_deals",
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
    op.create_index("ix_card_deals_open", "card_deals",
                    ["contact_id", sa.text("updated_at DESC"), "deal_id"],
                    postgresql_where=OPEN_DEAL, sqlite_where=OPEN_DEAL)
    # The deals that existed before this table are copied by the service once it runs
    # (card_deals.backfill, through the deals service): a migration cannot ask that service.
    # A database without cards has no such deals.
    backfills = op.create_table(
        "backfills",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_bind().execute(sa.text("SELECT 1 FROM contacts LIMIT 1")).first() is None:
        op.bulk_insert(backfills, [{"name": "card_deals",
                                    "done_at": dt.datetime.now(dt.timezone.utc)}])


def downgrade():
    op.drop_table("backfills")
    op.drop_index("ix_card_deals_open", "card_deals")
    op.drop_table("card_deals")
