"""telephony: the call log, extensions, outbox, inbox

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


def upgrade():
    op.create_table(
        "calls",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("call_key", sa.String(200)),
        sa.Column("direction", sa.String(10)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("outcome", sa.String(10)),
        sa.Column("cause", sa.String(300)),
        sa.Column("client_number", sa.String(32)),
        sa.Column("client_number_raw", sa.String(200)),
        sa.Column("line", sa.String(200)),
        sa.Column("extension", sa.String(100)),
        sa.Column("manager", sa.String(100)),
        sa.Column("contact_id", sa.String(32)),
        sa.Column("caller_known", sa.Boolean),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("answered_at", TIME),
        sa.Column("ended_at", TIME),
        sa.Column("duration_s", sa.Integer),
        sa.Column("final", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("legs", sa.JSON, nullable=False),
        sa.Column("announced", sa.JSON, nullable=False),
        sa.Column("command_id", sa.String(200)),
        sa.Column("requested_by", sa.String(200)),
        sa.Column("recording_ref", sa.String(500)),
        sa.Column("recording_key", sa.String(100)),
        sa.Column("recording_content_type", sa.String(100)),
        sa.Column("recording_size", sa.BigInteger),
        sa.Column("updated_at", TIME, nullable=False),
        sa.UniqueConstraint("provider", "call_key", name="uq_calls_provider_key"),
    )
    op.create_index("ix_calls_contact", "calls", ["contact_id", "created_at"])
    op.create_index("ix_calls_manager", "calls", ["manager", "created_at"])
    op.create_index("ix_calls_command", "calls", ["command_id"])
    op.create_index("ix_calls_status", "calls", ["status", "created_at"])
    op.create_table(
        "extensions",
        sa.Column("extension", sa.String(50), primary_key=True),
        sa.Column("manager", sa.String(100), nullable=False),
        sa.Column("provider", sa.String(100)),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_index("ix_extensions_manager", "extensions", ["manager"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
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
    for table in ("inbox", "outbox", "extensions", "calls"):
        op.drop_table(table)
