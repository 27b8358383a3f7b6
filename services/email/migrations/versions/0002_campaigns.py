"""email: campaigns, their recipients and tracking, client consent per channel

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
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade():
    op.create_table(
        "consents",
        sa.Column("contact_id", sa.String(32), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
    )
    op.create_table(
        "consent_history",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("recorded_at", TIME, nullable=False),
    )
    op.create_index("ix_consent_history_contact", "consent_history", ["contact_id", "id"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("segment", sa.JSON, nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("text_body", sa.Text, nullable=False),
        sa.Column("html_body", sa.Text),
        sa.Column("rate_per_minute", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("started_at", TIME),
        sa.Column("finished_at", TIME),
        sa.Column("materialize_after", sa.String(32)),
        sa.Column("materialized", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("recipients", sa.Integer, nullable=False, server_default="0"),
        sa.Column("excluded_no_consent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queued", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("credit", sa.Float, nullable=False, server_default="0"),
        sa.Column("credit_at", TIME),
    )
    op.create_index("ix_campaigns_status", "campaigns", ["status"])
    op.create_table(
        "campaign_recipients",
        sa.Column("campaign_id", sa.String(32), primary_key=True),
        sa.Column("contact_id", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("queued_at", TIME),
    )
    op.create_index("ix_campaign_recipients_state", "campaign_recipients",
                    ["campaign_id", "state", "contact_id"])
    op.create_table(
        "campaign_opens",
        sa.Column("campaign_id", sa.String(32), primary_key=True),
        sa.Column("contact_id", sa.String(32), primary_key=True),
        sa.Column("first_at", TIME, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "campaign_clicks",
        sa.Column("campaign_id", sa.String(32), primary_key=True),
        sa.Column("url_digest", sa.String(64), primary_key=True),
        sa.Column("contact_id", sa.String(32), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("first_at", TIME, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "campaign_unsubscribes",
        sa.Column("campaign_id", sa.String(32), primary_key=True),
        sa.Column("contact_id", sa.String(32), primary_key=True),
        sa.Column("at", TIME, nullable=False),
    )


def downgrade():
    for table in ("campaign_unsubscribes", "campaign_clicks", "campaign_opens",
                  "campaign_recipients", "campaigns", "consent_history", "consents"):
        op.drop_table(table)
