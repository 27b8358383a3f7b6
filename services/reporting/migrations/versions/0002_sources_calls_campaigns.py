"""reporting: read models of lead sources (cards, deals, ad spend), the call center and
email campaigns (churn reads the sources tables)

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)
KEY = sa.String(200)
ID = sa.String(64)


def upgrade():
    op.create_table(
        "sources_cards",
        sa.Column("contact_id", ID, primary_key=True),
        sa.Column("name", sa.String(300)),
        sa.Column("manager", sa.String(100)),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("source", KEY, nullable=False),
        sa.Column("medium", KEY, nullable=False),
        sa.Column("campaign", KEY, nullable=False),
        sa.Column("utm_source", KEY),
        sa.Column("connector", KEY),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sources_cards_created", "sources_cards", ["created_at"])
    op.create_table(
        "sources_deals",
        sa.Column("deal_id", ID, primary_key=True),
        sa.Column("contact_id", ID, nullable=False),
        sa.Column("pipeline_id", ID),
        sa.Column("manager", sa.String(100)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("closed_at", TIME),
        sa.Column("amount_cents", sa.BigInteger),
        sa.Column("source", KEY),
        sa.Column("medium", KEY),
        sa.Column("campaign", KEY),
        sa.Column("utm_source", KEY),
        sa.Column("connector", KEY),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sources_deals_created", "sources_deals", ["created_at"])
    op.create_index("ix_sources_deals_contact", "sources_deals", ["contact_id", "status"])
    op.create_table(
        "ad_spend",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", KEY, nullable=False),
        sa.Column("medium", KEY, nullable=False, server_default=""),
        sa.Column("campaign", KEY, nullable=False, server_default=""),
        sa.Column("period_from", sa.Date, nullable=False),
        sa.Column("period_to", sa.Date, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.UniqueConstraint("source", "medium", "campaign", "period_from", "period_to",
                            name="uq_ad_spend_period"),
    )
    op.create_table(
        "calls_log",
        sa.Column("call_id", ID, primary_key=True),
        sa.Column("direction", sa.String(10)),
        sa.Column("outcome", sa.String(10)),
        sa.Column("client_number", ID),
        sa.Column("manager", sa.String(100)),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("ended_ms", sa.BigInteger, nullable=False),
        sa.Column("answered", sa.Boolean, nullable=False),
        sa.Column("missed", sa.Boolean, nullable=False),
        sa.Column("wait_ms", sa.BigInteger),
        sa.Column("talk_s", sa.Integer),
        sa.Column("stage", sa.SmallInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_calls_log_started", "calls_log", ["started_at"])
    op.create_index("ix_calls_log_number", "calls_log", ["client_number", "started_ms"])
    op.create_table(
        "campaign_emails",
        sa.Column("email_id", ID, primary_key=True),
        sa.Column("campaign_id", ID, nullable=False),
        sa.Column("contact_id", ID),
        sa.Column("sent_at", TIME),
        sa.Column("bounced", sa.Boolean, nullable=False),
        sa.Column("stage", sa.SmallInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_campaign_emails_campaign", "campaign_emails", ["campaign_id"])
    op.create_table(
        "campaign_actions",
        sa.Column("campaign_id", ID, primary_key=True),
        sa.Column("contact_id", ID, primary_key=True),
        sa.Column("action", sa.String(20), primary_key=True),
    )


def downgrade():
    for table in ("campaign_actions", "campaign_emails", "calls_log", "ad_spend",
                  "sources_deals", "sources_cards"):
        op.drop_table(table)
