"""Tables owned by the deals service."""
import sqlalchemy as sa

from crmhub.runtime.db import reliability_tables

metadata = sa.MetaData()
outbox, inbox = reliability_tables(metadata)
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

pipelines = sa.Table(
    "pipelines", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("template", sa.String(64)),
    # Round-robin position: incremented in place (the row lock makes turns race-free).
    sa.Column("turn", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

stages = sa.Table(
    "stages", metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("pipeline_id", sa.String(64), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("task", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("key_steps", sa.JSON, nullable=False),
    # A stage that waits for goods: the key of the stage (same pipeline) its open deals move
    # to when a product of their lines arrives in stock (stock_changed from the catalog).
    sa.Column("on_goods_arrival", sa.String(64)),
    sa.UniqueConstraint("pipeline_id", "key", name="uq_stages_pipeline_key"),
)

managers = sa.Table(
    "managers", metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("email", sa.String(320)),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

pipeline_managers = sa.Table(
    "pipeline_managers", metadata,
    sa.Column("pipeline_id", sa.String(64), primary_key=True),
    sa.Column("manager_id", sa.String(100), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)

deals = sa.Table(
    "deals", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.String(300), nullable=False),
    sa.Column("contact_id", sa.String(32), nullable=False),
    # The client's name, copied from the contacts service (when the deal is opened, then from
    # contact_updated) so a board shows it without asking that service; contact_synced_at is
    # the card's updated_at it came from: an older event never overwrites a newer name.
    sa.Column("contact_name", sa.String(300)),
    sa.Column("contact_synced_at", sa.DateTime(timezone=True)),
    sa.Column("pipeline_id", sa.String(64), nullable=False),
    sa.Column("stage_id", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(8), nullable=False),
    sa.Column("manager", sa.String(100)),
    # Minor units (kopecks): exact, and the same on PostgreSQL and SQLite.
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("source", sa.JSON),
    sa.Column("products", sa.JSON, nullable=False),
    sa.Column("close_reason", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    # The 1C exchange (type=sale): the version 1C last confirmed it took (null: never sent; a
    # deal whose version differs goes out again), and what 1C last said of the order.
    sa.Column("erp_exported_version", sa.Integer),
    sa.Column("erp", sa.JSON),
    sa.Index("ix_deals_contact_pipeline", "contact_id", "pipeline_id", "status"),
    sa.Index("ix_deals_pipeline_stage", "pipeline_id", "stage_id"),
    sa.Index("ix_deals_manager", "manager"),
)
# The board: the open deals of each stage, latest activity first (also what pages a column).
OPEN = sa.text("status = 'open'")
sa.Index("ix_deals_open_board", deals.c.pipeline_id, deals.c.stage_id, deals.c.updated_at.desc(),
         deals.c.id, postgresql_where=OPEN, sqlite_where=OPEN)

# One row per move; (deal_id, version) is unique, so two moves can never both claim to
# follow the same state of a deal.
stage_changes = sa.Table(
    "stage_changes", metadata,
    sa.Column("id", BIGID, primary_key=True, autoincrement=True),
    sa.Column("deal_id", sa.String(32), nullable=False),
    sa.Column("from_stage_id", sa.BigInteger),
    sa.Column("to_stage_id", sa.BigInteger, nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Column("reason", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("deal_id", "version", name="uq_stage_changes_deal_version"),
)

tasks = sa.Table(
    "tasks", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("manager", sa.String(100)),
    sa.Column("contact_id", sa.String(32)),
    sa.Column("deal_id", sa.String(32)),
    sa.Column("done", sa.Boolean, nullable=False),
    sa.Column("done_at", sa.DateTime(timezone=True)),
    sa.Column("reminded_at", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_tasks_manager_due", "manager", "due_at"),
    sa.Index("ix_tasks_deal", "deal_id"),
    sa.Index("ix_tasks_contact", "contact_id"),
    # What the reminder timer scans: only tasks still to remind.
    sa.Index("ix_tasks_to_remind", "due_at",
             postgresql_where=sa.text("NOT done AND reminded_at IS NULL"),
             sqlite_where=sa.text("NOT done AND reminded_at IS NULL")),
)

lead_rules = sa.Table(
    "lead_rules", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("connector", sa.String(100), nullable=False),
    sa.Column("form", sa.String(200), nullable=False, server_default=""),  # "": any form
    sa.Column("pipeline", sa.String(64), nullable=False),
    sa.Column("task_title", sa.String(500), nullable=False),
    sa.Column("task_due_minutes", sa.Integer, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("connector", "form", name="uq_lead_rules_source"),
)
