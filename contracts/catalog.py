"""Catalog: products, prices and stock from 1C (CommerceML 2), their change events and the
catalog service's RPC payloads.

An offer is what can be sold: a product (1C ``Товар``) or one characteristic of it (a size, a
colour), with the id ``<product id>#<characteristic id>``. Prices are per price type, stock per
warehouse. Events carry only what changed, many rows per event.
"""
from marshmallow import fields, validate

from crmhub.contracts.base import Contract, EventSchema
from crmhub.contracts.deals import DecimalString

ID = validate.Length(min=1, max=200)
IMPORT_STATES = ("queued", "running", "done", "failed")
FILE_KINDS = ("import", "offers", "prices", "rests")


class PriceSchema(Contract):
    price_type_id = fields.String(required=True)
    price_type = fields.String(allow_none=True, metadata={"description": "Its name, e.g. Розничная"})
    amount = DecimalString(places=2, required=True)
    currency = fields.String(allow_none=True)


class StockSchema(Contract):
    warehouse_id = fields.String(required=True, metadata={
        "description": "Empty when 1C sent only a total"})
    warehouse = fields.String(allow_none=True, metadata={"description": "Its name"})
    quantity = DecimalString(places=3, required=True)


class ProductSchema(Contract):
    """An offer with its product's data, prices and stock."""

    id = fields.String(required=True, metadata={
        "description": "1C id of the offer: '<product>' or '<product>#<characteristic>'"})
    product_id = fields.String(required=True)
    characteristic_id = fields.String(allow_none=True)
    article = fields.String(allow_none=True, metadata={"description": "Артикул"})
    barcode = fields.String(allow_none=True)
    name = fields.String(required=True)
    unit = fields.String(allow_none=True)
    characteristics = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    groups = fields.List(fields.String(), load_default=list, metadata={"description": "Group names"})
    properties = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    active = fields.Boolean(required=True, metadata={
        "description": "False once 1C deleted it or left it out of a full export"})
    prices = fields.List(fields.Nested(PriceSchema), required=True)
    stock = fields.List(fields.Nested(StockSchema), required=True)
    in_stock = DecimalString(places=3, required=True, metadata={"description": "Sum over warehouses"})
    updated_at = fields.AwareDateTime(required=True)


class ProductQuerySchema(Contract):
    q = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200),
                      metadata={"description": "Part of the name, or the article (exact or prefix)"})
    ids = fields.List(fields.String(validate=ID), load_default=None, allow_none=True,
                      validate=validate.Length(max=500), metadata={"description": "These offers"})
    in_stock = fields.Boolean(load_default=False, metadata={"description": "Only offers in stock"})
    include_inactive = fields.Boolean(load_default=False)
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=100_000))


class ProductPageSchema(Contract):
    items = fields.List(fields.Nested(ProductSchema), required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)
    more = fields.Boolean(required=True, metadata={"description": "Whether a next page exists"})


# -- imports -------------------------------------------------------------------------------------

class ImportRequestSchema(Contract):
    """Import one exchange file from the shared exchange directory."""

    session = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z0-9_-]{1,64}$"),
                            metadata={"description": "Folder under EXCHANGE_DIR holding the file"})
    filename = fields.String(required=True, validate=validate.Length(min=1, max=300))
    source = fields.String(load_default="1c", validate=validate.Length(max=50))


class ImportCountsSchema(Contract):
    products = fields.Integer(load_default=0, metadata={"description": "Product rows read"})
    offers = fields.Integer(load_default=0, metadata={"description": "Offer rows read"})
    unchanged = fields.Integer(load_default=0, metadata={
        "description": "Records of a big file not parsed: their bytes are those last applied"})
    changed_products = fields.Integer(load_default=0)
    changed_offers = fields.Integer(load_default=0)
    changed_prices = fields.Integer(load_default=0)
    changed_stock = fields.Integer(load_default=0)
    deactivated = fields.Integer(load_default=0)
    arrivals = fields.Integer(load_default=0, metadata={
        "description": "Stock rows that went from zero (or none) to positive"})


class ImportJobSchema(Contract):
    id = fields.String(required=True)
    session = fields.String(required=True)
    filename = fields.String(required=True)
    kind = fields.String(allow_none=True, validate=validate.OneOf(FILE_KINDS))
    source = fields.String(required=True)
    state = fields.String(required=True, validate=validate.OneOf(IMPORT_STATES))
    error = fields.String(allow_none=True, metadata={"description": "Why it failed"})
    read = fields.Integer(required=True, metadata={"description": "Records read so far"})
    bytes_read = fields.Integer(load_default=0, metadata={"description": "Bytes of the file read so far"})
    bytes_total = fields.Integer(allow_none=True, metadata={"description": "Size of the file"})
    counts = fields.Nested(ImportCountsSchema, allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    finished_at = fields.AwareDateTime(allow_none=True)


class ImportJobListSchema(Contract):
    items = fields.List(fields.Nested(ImportJobSchema), required=True)


# -- events --------------------------------------------------------------------------------------

class StockChangeSchema(Contract):
    offer_id = fields.String(required=True)
    product_id = fields.String(required=True)
    warehouse_id = fields.String(required=True)
    quantity = fields.String(required=True, metadata={"description": "Decimal, as a string"})
    previous = fields.String(allow_none=True, metadata={"description": "null: no stock row before"})
    arrived = fields.Boolean(required=True, metadata={
        "description": "It went from zero (or none) to positive: goods arrived"})


class StockChangedSchema(EventSchema):
    """Stock rows an import changed (up to 1,000 per event; rows it left as they were are not
    sent)."""

    import_id = fields.String(required=True)
    items = fields.List(fields.Nested(StockChangeSchema), required=True,
                        validate=validate.Length(min=1, max=1000))


class PriceChangeSchema(Contract):
    offer_id = fields.String(required=True)
    product_id = fields.String(required=True)
    price_type_id = fields.String(required=True)
    amount = fields.String(required=True, metadata={"description": "Decimal, as a string"})
    previous = fields.String(allow_none=True)
    currency = fields.String(allow_none=True)


class PriceChangedSchema(EventSchema):
    """Prices an import changed (up to 1,000 per event)."""

    import_id = fields.String(required=True)
    items = fields.List(fields.Nested(PriceChangeSchema), required=True,
                        validate=validate.Length(min=1, max=1000))


class CatalogImportedSchema(EventSchema):
    """An exchange file was imported (or refused: nothing of it was applied)."""

    job = fields.Nested(ImportJobSchema, required=True)
