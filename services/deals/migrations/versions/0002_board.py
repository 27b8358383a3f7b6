"""deals: the client's name on each deal (for the board), the board's index

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = sa.text("status = 'open'")


def upgrade():
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("contact_name", sa.String(300)))
        batch.add_column(sa.Column("contact_synced_at", sa.DateTime(timezone=True)))
    # Open deals of a stage, latest activity first: the board's first page of each column
    # and the pages after it are ranges of this index.
    op.create_index("ix_deals_open_board", "deals",
                    ["pipeline_id", "stage_id", sa.text("updated_at DESC"), "id"],
                    postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade():
    op.drop_index("ix_deals_open_board", "deals")
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("contact_synced_at")
        batch.drop_column("contact_name")
