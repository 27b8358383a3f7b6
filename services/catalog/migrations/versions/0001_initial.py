"""catalog: products, offers, prices, stock, warehouses, price types, groups, properties,
import jobs, outbox, inbox

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
ID = sa.String(200)


def upgrade():
    op.create_table(
        "products",
        sa.Column("id", ID, primary_key=True),
        sa.Column("article", sa.String(200)),
        sa.Column("barcode", sa.String(200)),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("unit", sa.String(100)),
        sa.Column("group_ids", sa.Text),
        sa.Column("properties", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "offers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("product_id", ID, nullable=False),
        sa.Column("characteristic_id", ID),
        sa.Column("article", sa.String(200)),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("characteristics", sa.Text),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_index("ix_offers_product", "offers", ["product_id"])
    if op.get_bind().dialect.name == "postgresql":
        # The picker looks an article up exactly or by its beginning, whatever its case.
        op.execute("CREATE INDEX ix_offers_article ON offers (lower(article) text_pattern_ops)")
    else:
        op.execute("CREATE INDEX ix_offers_article ON offers (lower(article))")
    op.create_table(
        "prices",
        sa.Column("offer_id", ID, primary_key=True),
        sa.Column("price_type_id", ID, primary_key=True),
        sa.Column("amount", sa.Numeric(18, 2), nullable=False),
        sa.Column("currency", sa.String(10)),
        sa.Column("updated_at", TIME, nullable=False),
    )
    op.create_table(
        "stock",
        sa.Column("offer_id", ID, primary_key=True),
        sa.Column("warehouse_id", ID, primary_key=True),
        sa.Column("quantity", sa.Numeric(18, 3), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Prices and stock change in place all day: room left on each page lets PostgreSQL
        # update a row there without touching the primary key (a heap-only update).
        for table in ("prices", "stock"):
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 80)")
    op.create_table(
        "price_types",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("currency", sa.String(10)),
    )
    op.create_table(
        "warehouses",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(300), nullable=False),
    )
    op.create_table(
        "groups",
        sa.Column("id", ID, primary_key=True),
        sa.Column("parent_id", ID),
        sa.Column("name", sa.String(500), nullable=False),
    )
    op.create_table(
        "properties",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("vals", sa.JSON, nullable=False),
    )
    op.create_table(
        "block_digests",
        sa.Column("kind", sa.String(10), primary_key=True),
        sa.Column("block_key", ID, primary_key=True),
        sa.Column("digest", sa.String(32), nullable=False),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "digest_generations",
        sa.Column("grp", sa.String(10), primary_key=True),
        sa.Column("generation", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("session", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(10)),
        sa.Column("source", sa.String(50), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_read", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("bytes_total", sa.BigInteger),
        sa.Column("counts", sa.JSON),
        sa.Column("worker", sa.String(200)),
        sa.Column("request_id", sa.String(100)),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("heartbeat_at", TIME),
        sa.Column("finished_at", TIME),
        sa.UniqueConstraint("session", "filename", name="uq_import_jobs_file"),
    )
    op.create_index("ix_import_jobs_state", "import_jobs", ["state", "created_at"])
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
    for table in ("inbox", "outbox", "import_jobs", "block_digests", "digest_generations",
                  "properties", "groups", "warehouses",
                  "price_types", "stock", "prices", "offers", "products"):
        op.drop_table(table)
