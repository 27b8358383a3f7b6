"""Pipelines with their stages, deals and their stage history, tasks, managers and lead rules:
the deals service's RPC payloads and events."""
import decimal

from marshmallow import fields, validate

from crmhub.contracts.auth import ROLES
from crmhub.contracts.base import Contract, EventSchema
from crmhub.contracts.tracking import SourceSchema

STAGE_KINDS = ("open", "won", "lost")
DEAL_STATUSES = STAGE_KINDS
KEY = validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,63}$",
                      error="use 1-64 lower-case latin letters, digits, '-' or '_'")
TEXT = validate.Length(max=4000)


class DecimalString(fields.String):
    """An exact decimal: accepted as a JSON number or a string, sent as a string ("1500.00"),
    so it stays plain JSON and never goes through a float."""

    default_error_messages = {"invalid": "Not a valid number."}

    def __init__(self, places: int = 2, **kwargs):
        self.quantum = decimal.Decimal(1).scaleb(-places)
        digits = r"\d{1,15}" + (rf"(\.\d{{1,{places}}})?" if places else "")
        kwargs.setdefault("metadata", {}).setdefault("pattern", f"^{digits}$")
        super().__init__(**kwargs)

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return str(decimal.Decimal(value).quantize(self.quantum))

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.make_error("invalid")
        try:
            number = decimal.Decimal(str(value).strip())
        except decimal.InvalidOperation:
            raise self.make_error("invalid") from None
        if not number.is_finite():
            raise self.make_error("invalid")
        return number.quantize(self.quantum, rounding=decimal.ROUND_HALF_UP)


def money(description: str = "A non-negative amount, e.g. \"1500.00\"", **kwargs):
    return DecimalString(places=2, validate=[
        validate.Range(min=0, error="must not be negative"),
        validate.Range(max=10**12, error="must be at most {max}")],
        metadata={"description": description}, **kwargs)


class StageInputSchema(Contract):
    key = fields.String(validate=KEY, metadata={
        "description": "Stable id of the stage within its pipeline; made from the position "
                       "if not given"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=200),
                         metadata={"description": "Shown as written (any language)"})
    kind = fields.String(load_default="open", validate=validate.OneOf(STAGE_KINDS),
                         metadata={"description": "open, or a closing stage: won or lost"})
    task = fields.String(load_default="", validate=TEXT,
                         metadata={"description": "What must be done at this stage"})
    result = fields.String(load_default="", validate=TEXT,
                           metadata={"description": "What must be obtained to move on"})
    key_steps = fields.List(fields.String(validate=validate.Length(min=1, max=1000)),
                            load_default=list, metadata={"description": "Who does what"})
    on_goods_arrival = fields.String(allow_none=True, load_default=None, validate=KEY, metadata={
        "description": "A stage that waits for goods: the key of the stage of the same pipeline "
                       "an open deal moves to when a product of its lines arrives in stock "
                       "(stock_changed from the catalog); null: the stage waits for nothing"})


class StageSchema(StageInputSchema):
    id = fields.Integer(required=True)
    key = fields.String(required=True, validate=KEY)
    position = fields.Integer(required=True, metadata={"description": "0 is the first stage"})


class PipelineInputSchema(Contract):
    id = fields.String(validate=KEY, metadata={"description": "Made up if not given"})
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    stages = fields.List(fields.Nested(StageInputSchema), required=True,
                         validate=validate.Length(min=1, max=50),
                         metadata={"description": "In order; the first receives new deals"})


class PipelineSchema(Contract):
    id = fields.String(required=True)
    name = fields.String(required=True)
    template = fields.String(allow_none=True, metadata={
        "description": "The template it was loaded from, or null"})
    stages = fields.List(fields.Nested(StageSchema), required=True)
    managers = fields.List(fields.String(), load_default=list, metadata={
        "description": "Managers who receive new deals of this pipeline in turn"})
    created_at = fields.AwareDateTime(required=True)


class PipelineListSchema(Contract):
    items = fields.List(fields.Nested(PipelineSchema), required=True)


class TemplateSchema(Contract):
    name = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(load_default="")
    stages = fields.List(fields.String(), required=True, metadata={"description": "Stage names"})
    loaded = fields.Boolean(required=True, metadata={
        "description": "A pipeline was already loaded from it"})


class TemplateListSchema(Contract):
    items = fields.List(fields.Nested(TemplateSchema), required=True)


class TemplateLoadedSchema(Contract):
    pipeline = fields.Nested(PipelineSchema, required=True)
    created = fields.Boolean(required=True, metadata={
        "description": "False if the template was loaded before: nothing was duplicated"})


class PipelineManagersSchema(Contract):
    managers = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                           required=True, metadata={"description": "Manager ids, in turn order"})


class ManagerInputSchema(Contract):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    role = fields.String(load_default="manager", validate=validate.OneOf(sorted(ROLES)))
    email = fields.Email(allow_none=True, load_default=None)
    active = fields.Boolean(load_default=True, metadata={
        "description": "Inactive managers receive no new deals"})


class ManagerSchema(ManagerInputSchema):
    id = fields.String(required=True, metadata={
        "description": "Login; the name of the manager's API key"})


class ManagerListSchema(Contract):
    items = fields.List(fields.Nested(ManagerSchema), required=True)


class ProductLineSchema(Contract):
    sku = fields.String(required=True, validate=validate.Length(min=1, max=100))
    product_id = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200),
                               metadata={"description": "The catalog offer (1C id) this line "
                                                        "sells; set by the product picker"})
    name = fields.String(allow_none=True, validate=validate.Length(max=300))
    quantity = DecimalString(places=3, required=True, validate=[
        validate.Range(min=0, min_inclusive=False, error="must be positive"),
        validate.Range(max=10**9, error="must be at most {max}")])
    price = money(required=True, description="Price of one unit")


CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="an ISO 4217 code such as RUB")


class DealInputSchema(Contract):
    contact_id = fields.String(required=True, metadata={"description": "The client card"})
    pipeline_id = fields.String(required=True)
    stage_id = fields.Integer(allow_none=True, load_default=None, metadata={
        "description": "A stage of the pipeline; its first stage if not given"})
    title = fields.String(allow_none=True, validate=validate.Length(max=300),
                          metadata={"description": "The client's name if not given"})
    manager = fields.String(allow_none=True, validate=validate.Length(max=100))
    amount = money(allow_none=True, load_default=None)
    currency = fields.String(load_default="RUB", validate=CURRENCY)
    source = fields.Nested(SourceSchema, allow_none=True, load_default=None)
    products = fields.List(fields.Nested(ProductLineSchema), load_default=list)


class DealPatchSchema(Contract):
    """A partial update: only the fields given change."""
    title = fields.String(validate=validate.Length(min=1, max=300))
    manager = fields.String(allow_none=True, validate=validate.Length(max=100))
    amount = money(allow_none=True)
    currency = fields.String(validate=CURRENCY)
    products = fields.List(fields.Nested(ProductLineSchema))
    expected_version = fields.Integer(metadata={
        "description": "Refuse with 409 if the deal changed since this version"})


class MoveSchema(Contract):
    stage_id = fields.Integer(required=True, metadata={
        "description": "A stage of the deal's pipeline; backwards is allowed"})
    reason = fields.String(allow_none=True, load_default=None, validate=TEXT, metadata={
        "description": "Why (kept as the won or lost reason on a closing stage)"})
    expected_version = fields.Integer(allow_none=True, load_default=None, metadata={
        "description": "Refuse with 409 if the deal changed since this version; without it "
                       "the last move committed wins (every move stays in the history)"})


class ErpStateSchema(Contract):
    """What 1C last said of a deal's order (its own number, status and flags)."""
    number = fields.String(allow_none=True, metadata={"description": "1C's document number"})
    status = fields.String(allow_none=True, metadata={"description": "Order status in 1C"})
    paid = fields.Boolean(allow_none=True, metadata={"description": "null: 1C did not say"})
    shipped = fields.Boolean(allow_none=True)
    cancelled = fields.Boolean(allow_none=True)
    updated_at = fields.AwareDateTime(required=True, metadata={
        "description": "When this changed last"})


class DealSchema(Contract):
    id = fields.String(required=True)
    title = fields.String(required=True)
    contact_id = fields.String(required=True)
    contact_name = fields.String(allow_none=True, metadata={
        "description": "The client's name (or company) as the deals service last heard it "
                       "from the contacts service; null if unknown"})
    pipeline_id = fields.String(required=True)
    pipeline_name = fields.String(required=True)
    stage_id = fields.Integer(required=True)
    stage_name = fields.String(required=True)
    stage_position = fields.Integer(allow_none=True, metadata={
        "description": "The stage's place in its pipeline (0 first); absent from older senders"})
    status = fields.String(required=True, validate=validate.OneOf(DEAL_STATUSES),
                           metadata={"description": "The kind of its stage"})
    manager = fields.String(allow_none=True, metadata={"description": "Responsible manager"})
    amount = money(allow_none=True)
    currency = fields.String(required=True)
    source = fields.Nested(SourceSchema, allow_none=True)
    products = fields.List(fields.Nested(ProductLineSchema), load_default=list)
    close_reason = fields.String(allow_none=True, metadata={
        "description": "Why it was won or lost"})
    version = fields.Integer(required=True, metadata={"description": "Grows with every change"})
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    closed_at = fields.AwareDateTime(allow_none=True)
    erp = fields.Nested(ErpStateSchema, allow_none=True, metadata={
        "description": "The order as 1C last reported it (type=sale exchange), null if 1C "
                       "said nothing of it; optional, added within version 1"})


class StageChangeSchema(Contract):
    id = fields.Integer(required=True)
    deal_id = fields.String(required=True)
    from_stage_id = fields.Integer(allow_none=True, metadata={"description": "Null on creation"})
    from_stage_name = fields.String(allow_none=True)
    to_stage_id = fields.Integer(required=True)
    to_stage_name = fields.String(required=True)
    actor = fields.String(allow_none=True, metadata={"description": "Who moved it"})
    reason = fields.String(allow_none=True)
    version = fields.Integer(required=True, metadata={"description": "Deal version it made"})
    changed_at = fields.AwareDateTime(required=True)


class TaskInputSchema(Contract):
    title = fields.String(required=True, validate=validate.Length(min=1, max=500))
    due_at = fields.AwareDateTime(required=True, metadata={
        "description": "With a time zone offset; a reminder fires then"})
    manager = fields.String(required=True, validate=validate.Length(min=1, max=100))
    contact_id = fields.String(allow_none=True, load_default=None)
    deal_id = fields.String(allow_none=True, load_default=None)


class TaskPatchSchema(Contract):
    title = fields.String(validate=validate.Length(min=1, max=500))
    due_at = fields.AwareDateTime(metadata={"description": "A new time reminds again"})
    manager = fields.String(validate=validate.Length(min=1, max=100))
    done = fields.Boolean(metadata={"description": "true: done; false: undone again"})


class TaskSchema(Contract):
    id = fields.String(required=True)
    title = fields.String(required=True)
    due_at = fields.AwareDateTime(required=True)
    manager = fields.String(allow_none=True)
    contact_id = fields.String(allow_none=True)
    deal_id = fields.String(allow_none=True)
    done = fields.Boolean(required=True)
    done_at = fields.AwareDateTime(allow_none=True)
    reminded_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When task_due was published, null until then"})
    created_by = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)


class DealCardSchema(DealSchema):
    """A deal with its stage history (oldest first) and its tasks."""
    history = fields.List(fields.Nested(StageChangeSchema), load_default=list)
    tasks = fields.List(fields.Nested(TaskSchema), load_default=list)


class DealQuerySchema(Contract):
    pipeline_id = fields.String(load_default=None, allow_none=True)
    stage_id = fields.Integer(load_default=None, allow_none=True)
    status = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(DEAL_STATUSES))
    manager = fields.String(load_default=None, allow_none=True)
    contact_id = fields.String(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class DealPageSchema(Contract):
    items = fields.List(fields.Nested(DealSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class OpenDealsRequestSchema(Contract):
    """``deals.open_deals``: every open deal, in id order, a page at a time (a copy's sync)."""

    after_id = fields.String(load_default=None, allow_none=True, metadata={
        "description": "The previous page's next_after; null for the first page"})
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=5000))


class OpenDealsPageSchema(Contract):
    items = fields.List(fields.Nested(DealSchema), required=True, metadata={
        "description": "In id order"})
    next_after = fields.String(allow_none=True, required=True, metadata={
        "description": "Pass as after_id for the next page; null when every deal was seen"})


class TaskQuerySchema(Contract):
    manager = fields.String(load_default=None, allow_none=True)
    done = fields.Boolean(load_default=None, allow_none=True)
    deal_id = fields.String(load_default=None, allow_none=True)
    contact_id = fields.String(load_default=None, allow_none=True)
    due_before = fields.AwareDateTime(load_default=None, allow_none=True)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


class TaskPageSchema(Contract):
    items = fields.List(fields.Nested(TaskSchema), required=True)
    total = fields.Integer(required=True)
    limit = fields.Integer(required=True)
    offset = fields.Integer(required=True)


class BoardQuerySchema(Contract):
    per_stage = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100),
                               metadata={"description": "Deals shown in each column (the "
                                                        "first page; more with GET /api/v1/"
                                                        "deals?pipeline_id=&stage_id=&"
                                                        "status=open&offset=)"})
    manager = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100),
                            metadata={"description": "Only this manager's deals"})


class AmountTotalSchema(Contract):
    currency = fields.String(required=True)
    amount = DecimalString(places=2, required=True, metadata={
        "description": "Sum of the amounts in this currency (deals without one count as 0)"})
    count = fields.Integer(required=True, metadata={"description": "Deals in this currency"})


class BoardColumnSchema(Contract):
    stage = fields.Nested(StageSchema, required=True)
    count = fields.Integer(required=True, metadata={"description": "Open deals in the stage"})
    totals = fields.List(fields.Nested(AmountTotalSchema), required=True, metadata={
        "description": "Sum of their amounts, per currency"})
    deals = fields.List(fields.Nested(DealSchema), required=True, metadata={
        "description": "The first per_stage of them, latest activity (updated_at) first"})


class BoardSchema(Contract):
    """A pipeline's open deals by stage: one column per stage, in order. Won and lost stages
    are columns too (where a deal is dropped to close it) but hold no deals: a closed deal
    leaves the board."""
    pipeline_id = fields.String(required=True)
    pipeline_name = fields.String(required=True)
    manager = fields.String(allow_none=True, metadata={"description": "The filter, or null"})
    per_stage = fields.Integer(required=True)
    count = fields.Integer(required=True, metadata={"description": "Open deals on the board"})
    totals = fields.List(fields.Nested(AmountTotalSchema), required=True)
    columns = fields.List(fields.Nested(BoardColumnSchema), required=True)


DEFAULT_FIRST_TASK = "Call back within 15 minutes"


class LeadRuleInputSchema(Contract):
    connector = fields.String(required=True, validate=validate.Length(min=1, max=100),
                              metadata={"description": "Connector the new client came from"})
    form = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200),
                         metadata={"description": "Only this form; null: any"})
    pipeline = fields.String(required=True, validate=validate.Length(min=1, max=64), metadata={
        "description": "Pipeline id, or a template name (loaded on first use)"})
    task_title = fields.String(load_default=DEFAULT_FIRST_TASK,
                               validate=validate.Length(min=1, max=500))
    task_due_minutes = fields.Integer(load_default=15, validate=validate.Range(min=0, max=43200))
    enabled = fields.Boolean(load_default=True)


class LeadRuleSchema(LeadRuleInputSchema):
    id = fields.String(required=True)
    origin = fields.String(required=True, validate=validate.OneOf(("config", "api")),
                           metadata={"description": "config (LEAD_RULES) or api; an api rule "
                                                    "overrides a config rule of the same source"})


class LeadRuleListSchema(Contract):
    items = fields.List(fields.Nested(LeadRuleSchema), required=True)


# -- orders to and from 1C (CommerceML 2, type=sale) ------------------------------------------

class ErpOrdersQuerySchema(Contract):
    limit = fields.Integer(load_default=500, validate=validate.Range(min=1, max=5000),
                           metadata={"description": "At most this many orders, least recently "
                                                    "changed first"})


class ErpClientSchema(Contract):
    id = fields.String(required=True, metadata={"description": "The client card"})
    name = fields.String(allow_none=True, metadata={
        "description": "The client's name, else company, else the deal's copy of it"})
    phones = fields.List(fields.String(), load_default=list, metadata={
        "description": "E.164 where known, else as typed"})
    emails = fields.List(fields.String(), load_default=list)


class ErpOrderLineSchema(Contract):
    product_id = fields.String(allow_none=True, metadata={
        "description": "The catalog offer (1C id), null for a line typed by hand"})
    sku = fields.String(required=True)
    name = fields.String(allow_none=True)
    quantity = DecimalString(places=3, required=True)
    price = money(required=True, description="Price of one unit")


class ErpOrderSchema(Contract):
    """One open deal as an order for 1C: the shape ``crmhub.plugins.onec.orders.orders_document``
    takes (once loaded: datetimes and decimals), plus the ``version`` it was made from."""
    id = fields.String(required=True, metadata={"description": "The deal id (Документ/Ид)"})
    number = fields.String(required=True, metadata={
        "description": "Short stable number shown in 1C, e.g. CRM-1042"})
    created_at = fields.AwareDateTime(required=True, metadata={
        "description": "In the shop's time zone (ERP.time_zone): 1C reads the wall time"})
    currency = fields.String(required=True)
    amount = money(allow_none=True, description="The deal's amount; null: the sum of the lines")
    comment = fields.String(allow_none=True, metadata={"description": "The deal's title"})
    status = fields.String(allow_none=True, metadata={"description": "The deal's stage name"})
    status_changed_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "When the deal entered its stage"})
    manager = fields.String(allow_none=True, metadata={
        "description": "The responsible manager's name (or id)"})
    client = fields.Nested(ErpClientSchema, required=True)
    lines = fields.List(fields.Nested(ErpOrderLineSchema), required=True)
    version = fields.Integer(required=True, metadata={
        "description": "The deal version this order shows: pass it back to mark_orders_exported"})


class ErpOrderPageSchema(Contract):
    items = fields.List(fields.Nested(ErpOrderSchema), required=True)


class ErpExportedItemSchema(Contract):
    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    version = fields.Integer(required=True, validate=validate.Range(min=1))


class ErpExportedSchema(Contract):
    """The orders 1C confirmed (``mode=success``), each with the version it was sent at."""
    items = fields.List(fields.Nested(ErpExportedItemSchema), required=True,
                        validate=validate.Length(max=10000))


class ErpExportResultSchema(Contract):
    marked = fields.Integer(required=True, metadata={"description": "Orders marked as exported"})
    stale = fields.List(fields.String(), required=True, metadata={
        "description": "Ids not marked: the deal changed since (it goes out again) or is unknown"})


class ErpOrderChangeSchema(Contract):
    """``dataclasses.asdict`` of ``crmhub.plugins.onec.orders.OrderChange``: one order as 1C
    reports it."""
    order_id = fields.String(allow_none=True, metadata={
        "description": "Our deal id for an order we sent; a 1C id for 1C's own orders"})
    number = fields.String(allow_none=True)
    erp_number = fields.String(allow_none=True, metadata={"description": "1C's own number"})
    operation = fields.String(allow_none=True)
    status = fields.String(allow_none=True)
    status_id = fields.String(allow_none=True)
    paid = fields.Boolean(allow_none=True)
    shipped = fields.Boolean(allow_none=True)
    cancelled = fields.Boolean(allow_none=True)
    posted = fields.Boolean(allow_none=True)
    deleted = fields.Boolean(load_default=False)
    amount = fields.String(allow_none=True, metadata={"description": "Decimal, as a string"})
    requisites = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)


class ErpOrderChangesSchema(Contract):
    changes = fields.List(fields.Nested(ErpOrderChangeSchema), required=True)


class ErpChangesAppliedSchema(Contract):
    applied = fields.Integer(required=True, metadata={
        "description": "Changes of known deals (whether or not they changed anything)"})
    unknown = fields.List(fields.String(), required=True, metadata={
        "description": "Order ids that are no deal (orders made in 1C): skipped"})


# -- events -----------------------------------------------------------------------------------

class DealCreatedSchema(EventSchema):
    deal = fields.Nested(DealSchema, required=True)
    cause = fields.String(allow_none=True, metadata={
        "description": "lead_rule:<rule id>, or who created it through the API"})


class DealUpdatedSchema(EventSchema):
    deal = fields.Nested(DealSchema, required=True)
    changed = fields.List(fields.String(), load_default=list)


class DealStageChangedSchema(EventSchema):
    deal = fields.Nested(DealSchema, required=True)
    change = fields.Nested(StageChangeSchema, required=True)


class DealClosedSchema(EventSchema):
    """deal_won and deal_lost: the deal reached a closing stage."""
    deal = fields.Nested(DealSchema, required=True)
    change = fields.Nested(StageChangeSchema, required=True)


class TaskEventSchema(EventSchema):
    task = fields.Nested(TaskSchema, required=True)
    actor = fields.String(allow_none=True, metadata={
        "description": "Who did it; null for the reminder timer"})


class TaskUpdatedSchema(TaskEventSchema):
    changed = fields.List(fields.String(), load_default=list)


class GoodsArrivedItemSchema(Contract):
    offer_id = fields.String(required=True, metadata={
        "description": "The catalog offer that arrived: '<product>' or '<product>#<characteristic>'"})
    product_id = fields.String(required=True, metadata={"description": "Its product (1C id)"})
    name = fields.String(required=True, metadata={"description": "The deal line's name, or its SKU"})
    warehouse_id = fields.String(required=True, metadata={
        "description": "Empty when 1C sent only a total"})
    quantity = fields.String(required=True, metadata={
        "description": "In stock now, decimal as a string (as the catalog reported it)"})


class GoodsArrivedSchema(EventSchema):
    """A product a deal waits for arrived in stock: the deal moved on."""

    deal = fields.Nested(DealSchema, required=True, metadata={"description": "After the move"})
    items = fields.List(fields.Nested(GoodsArrivedItemSchema), required=True,
                        validate=validate.Length(min=1))
    import_id = fields.String(required=True, metadata={
        "description": "The catalog import that saw the goods come in"})
