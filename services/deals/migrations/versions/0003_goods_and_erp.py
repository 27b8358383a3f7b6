"""deals: stages that wait for goods (on_goods_arrival), orders exchanged with 1C (erp,
erp_exported_version)

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("stages") as batch:
        batch.add_column(sa.Column("on_goods_arrival", sa.String(64)))
    with op.batch_alter_table("deals") as batch:
        batch.add_column(sa.Column("erp_exported_version", sa.Integer))
        batch.add_column(sa.Column("erp", sa.JSON))
    # A distribution pipeline loaded before this revision: its "supplier invoice received" stage
    # waits for the goods, as the template now says (a stage set by hand is left alone).
    op.execute(sa.text(
        "UPDATE stages SET on_goods_arrival = 'goods-received' "
        "WHERE key = 'supplier-invoice' AND on_goods_arrival IS NULL "
        "AND pipeline_id IN (SELECT id FROM pipelines WHERE template = 'distribution') "
        "AND EXISTS (SELECT 1 FROM stages AS target WHERE target.pipeline_id = stages.pipeline_id "
        "AND target.key = 'goods-received')"))


def downgrade():
    with op.batch_alter_table("deals") as batch:
        batch.drop_column("erp")
        batch.drop_column("erp_exported_version")
    with op.batch_alter_table("stages") as batch:
        batch.drop_column("on_goods_arrival")
