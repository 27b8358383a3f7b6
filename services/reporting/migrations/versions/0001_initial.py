"""reporting: the journal, card merges, plans, the funnel and managers read models

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
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
FUNNEL_COUNTS = ["reached", "advanced", "won"]


def _funnel_counters(name: str, period: str, times: bool = False) -> None:
    if times:
        columns = [sa.Column("bucket", sa.SmallInteger, primary_key=True),
                   sa.Column("deals", sa.Integer, nullable=False, server_default="0")]
    else:
        columns = [sa.Column(c, sa.Integer, nullable=False, server_default="0")
                   for c in FUNNEL_COUNTS]
    op.create_table(
        name,
        sa.Column("manager", sa.String(100), primary_key=True),
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column(period, sa.Date, primary_key=True),
        sa.Column("pipeline_id", sa.String(64), primary_key=True),
        sa.Column("stage_id", sa.Integer, primary_key=True),
        *columns,
    )


def upgrade():
    op.create_table(
        "journal",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.String(200), nullable=False, unique=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
    )
    op.create_index("ix_journal_replay", "journal", ["occurred_at", "id"])
    op.create_table(
        "card_aliases",
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("target_id", sa.String(64), nullable=False),
        sa.Column("merged_at", TIME, nullable=False),
    )
    op.create_table(
        "manager_plans",
        sa.Column("manager", sa.String(100), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("calls", sa.Integer),
        sa.Column("deals_won", sa.Integer),
        sa.Column("revenue_cents", sa.BigInteger),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "funnel_deals",
        sa.Column("deal_id", sa.String(64), primary_key=True),
        sa.Column("pipeline_id", sa.String(64), nullable=False),
        sa.Column("manager", sa.String(100), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("contact_id", sa.String(64)),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("created_day", sa.Date, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("amount_cents", sa.BigInteger),
        sa.Column("closed_at", TIME),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("visits", sa.JSON, nullable=False),
        sa.Column("stages", sa.JSON, nullable=False),
        sa.Column("counted", sa.JSON),
    )
    op.create_index("ix_funnel_deals_manager", "funnel_deals", ["manager", "created_at"])
    op.create_index("ix_funnel_deals_created", "funnel_deals", ["created_at"])
    op.create_index("ix_funnel_deals_closed", "funnel_deals", ["closed_at"])
    op.create_table(
        "funnel_stages",
        sa.Column("pipeline_id", sa.String(64), primary_key=True),
        sa.Column("stage_id", sa.Integer, primary_key=True),
        sa.Column("pipeline_name", sa.String(200), nullable=False),
        sa.Column("stage_name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("seen_at", TIME, nullable=False),
    )
    _funnel_counters("funnel_daily", "day")
    _funnel_counters("funnel_monthly", "month")
    _funnel_counters("funnel_times_daily", "day", times=True)
    _funnel_counters("funnel_times_monthly", "month", times=True)
    op.create_table(
        "manager_calls",
        sa.Column("call_id", sa.String(64), primary_key=True),
        sa.Column("manager", sa.String(100), nullable=False),
        sa.Column("direction", sa.String(10)),
        sa.Column("outcome", sa.String(10)),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("talk_s", sa.Integer, nullable=False),
        sa.Column("order_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_manager_calls_started", "manager_calls", ["started_at", "manager"])
    op.create_table(
        "outbox",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
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
    for table in ("inbox", "outbox", "manager_calls", "funnel_times_monthly", "funnel_times_daily",
                  "funnel_monthly", "funnel_daily",
                  "funnel_stages", "funnel_deals", "manager_plans", "card_aliases", "journal"):
        op.drop_table(table)
