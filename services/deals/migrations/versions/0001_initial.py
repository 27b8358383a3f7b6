"""deals: pipelines, stages, managers, deals, stage history, tasks, lead rules, outbox, inbox

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
TIME = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("template", sa.String(64)),
        sa.Column("turn", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_table(
        "stages",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("pipeline_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("task", sa.Text, nullable=False),
        sa.Column("result", sa.Text, nullable=False),
        sa.Column("key_steps", sa.JSON, nullable=False),
        sa.UniqueConstraint("pipeline_id", "key", name="uq_stages_pipeline_key"),
    )
    op.create_table(
        "managers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "pipeline_managers",
        sa.Column("pipeline_id", sa.String(64), primary_key=True),
        sa.Column("manager_id", sa.String(100), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "deals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("contact_id", sa.String(32), nullable=False),
        sa.Column("pipeline_id", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("manager", sa.String(100)),
        sa.Column("amount_minor", sa.BigInteger),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("source", sa.JSON),
        sa.Column("products", sa.JSON, nullable=False),
        sa.Column("close_reason", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("closed_at", TIME),
    )
    op.create_index("ix_deals_contact_pipeline", "deals", ["contact_id", "pipeline_id", "status"])
    op.create_index("ix_deals_pipeline_stage", "deals", ["pipeline_id", "stage_id"])
    op.create_index("ix_deals_manager", "deals", ["manager"])
    op.create_table(
        "stage_changes",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("deal_id", sa.String(32), nullable=False),
        sa.Column("from_stage_id", sa.BigInteger),
        sa.Column("to_stage_id", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("reason", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_at", TIME, nullable=False),
        sa.UniqueConstraint("deal_id", "version", name="uq_stage_changes_deal_version"),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("manager", sa.String(100)),
        sa.Column("contact_id", sa.String(32)),
        sa.Column("deal_id", sa.String(32)),
        sa.Column("done", sa.Boolean, nullable=False),
        sa.Column("done_at", TIME),
        sa.Column("reminded_at", TIME),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_at", TIME, nullable=False),
    )
    op.create_index("ix_tasks_manager_due", "tasks", ["manager", "due_at"])
    op.create_index("ix_tasks_deal", "tasks", ["deal_id"])
    op.create_index("ix_tasks_contact", "tasks", ["contact_id"])
    pending = sa.text("NOT done AND reminded_at IS NULL")
    op.create_index("ix_tasks_to_remind", "tasks", ["due_at"], postgresql_where=pending,
                    sqlite_where=pending)
    op.create_table(
        "lead_rules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("connector", sa.String(100), nullable=False),
        sa.Column("form", sa.String(200), nullable=False, server_default=""),
        sa.Column("pipeline", sa.String(64), nullable=False),
        sa.Column("task_title", sa.String(500), nullable=False),
        sa.Column("task_due_minutes", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("connector", "form", name="uq_lead_rules_source"),
    )
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
    for table in ("inbox", "outbox", "lead_rules", "tasks", "stage_changes", "deals",
                  "pipeline_managers", "managers", "stages", "pipelines"):
        op.drop_table(table)
