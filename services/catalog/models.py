"""Tables owned by the catalog service. Ids are 1C's (``Ид``), so a re-import finds its rows."""
import sqlalchemy as sa

from crmhub.runtime.db import reliability_tables

metadata = sa.MetaData()
outbox, inbox = reliability_tables(metadata)
TIME = sa.DateTime(timezone=True)
QUANTITY = sa.Numeric(18, 3)
AMOUNT = sa.Numeric(18, 2)

products = sa.Table(
    "products", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("article", sa.String(200)),
    sa.Column("barcode", sa.String(200)),
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("unit", sa.String(100)),
    sa.Column("group_ids", sa.Text),   # JSON list, compared as text by the bulk upsert
    sa.Column("properties", sa.Text),  # JSON object: property id -> value
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
)

offers = sa.Table(
    "offers", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("product_id", sa.String(200), nullable=False),
    sa.Column("characteristic_id", sa.String(200)),
    sa.Column("article", sa.String(200)),
    sa.Column("name", sa.String(1000), nullable=False),
    sa.Column("characteristics", sa.Text),  # JSON object: name -> value
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
    sa.Index("ix_offers_product", "product_id"),
)

prices = sa.Table(
    "prices", metadata,
    sa.Column("offer_id", sa.String(200), primary_key=True),
    sa.Column("price_type_id", sa.String(200), primary_key=True),
    sa.Column("amount", AMOUNT, nullable=False),
    sa.Column("currency", sa.String(10)),
    sa.Column("updated_at", TIME, nullable=False),
)

stock = sa.Table(
    "stock", metadata,
    sa.Column("offer_id", sa.String(200), primary_key=True),
    sa.Column("warehouse_id", sa.String(200), primary_key=True),  # "": a total without warehouse
    sa.Column("quantity", QUANTITY, nullable=False),
    sa.Column("updated_at", TIME, nullable=False),
)

price_types = sa.Table(
    "price_types", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("currency", sa.String(10)),
)

warehouses = sa.Table(
    "warehouses", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
)

groups = sa.Table(
    "groups", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("parent_id", sa.String(200)),
    sa.Column("name", sa.String(500), nullable=False),
)

properties = sa.Table(
    "properties", metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("vals", sa.JSON, nullable=False),  # value id -> text, for directory properties
)

# What each block of records of a big file looked like when it was last applied (a hash of
# its bytes): a block whose bytes did not change since is not parsed again. Blocks are cut where
# a record's id hashes to a boundary, so a record added or removed changes only its own block.
# A digest holds only for the generation it was taken in: an import that changes what another
# file describes starts a new generation of its group (the catalog files, or the products).
block_digests = sa.Table(
    "block_digests", metadata,
    sa.Column("kind", sa.String(10), primary_key=True),
    sa.Column("block_key", sa.String(200), primary_key=True),
    sa.Column("digest", sa.String(32), nullable=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
)

digest_generations = sa.Table(
    "digest_generations", metadata,
    sa.Column("grp", sa.String(10), primary_key=True),
    sa.Column("generation", sa.BigInteger, nullable=False),
)

import_jobs = sa.Table(
    "import_jobs", metadata,
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
    sa.Column("worker", sa.String(200)),  # host:pid of the process importing it
    sa.Column("request_id", sa.String(100)),
    sa.Column("created_at", TIME, nullable=False),
    sa.Column("heartbeat_at", TIME),
    sa.Column("finished_at", TIME),
    # 1C asks again and again for the same file of a session: one job answers all of them.
    sa.UniqueConstraint("session", "filename", name="uq_import_jobs_file"),
)
