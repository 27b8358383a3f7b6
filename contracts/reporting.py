"""Reports: filters, the one report shape every report shares, plans and ad spend.

Values in report rows are plain JSON: ``int`` counts, ``money`` as a number rounded to cents,
``percent`` as a share between 0 and 1 (rounded to 4 places, null when there is nothing to
divide by), ``seconds`` as a number, ``date`` as an ISO string.
"""
from zoneinfo import available_timezones

from marshmallow import fields, validate

from crmhub.contracts.base import Contract
from crmhub.contracts.deals import money

COLUMN_KINDS = ("text", "int", "money", "percent", "seconds", "date")
CHART_TYPES = ("bar", "funnel", "line")
MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="use YYYY-MM")
NAME = validate.Length(min=1, max=100)


# An enumeration rather than a function, so the exported JSON Schema carries the check too.
KNOWN_TIME_ZONE = validate.OneOf(sorted(available_timezones()),
                                 error="not a known IANA time zone, e.g. Europe/Moscow")


class ReportFiltersSchema(Contract):
    period_from = fields.Date(allow_none=True, load_default=None, metadata={
        "description": "First day included (ISO date); each report says which time it filters on"})
    period_to = fields.Date(allow_none=True, load_default=None, metadata={
        "description": "Last day included (ISO date)"})
    pipeline_id = fields.String(allow_none=True, load_default=None, validate=NAME)
    manager = fields.String(allow_none=True, load_default=None, validate=NAME)
    source = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200),
                           metadata={"description": "A connector or utm_source"})
    callback_minutes = fields.Integer(load_default=15, validate=validate.Range(min=1, max=10080),
                                      metadata={"description": "calls: a missed call counts as "
                                                               "called back within this time"})
    factor = fields.Float(load_default=1.5, validate=validate.Range(min=1, max=100),
                          metadata={"description": "churn: how many usual intervals make a risk"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=10000))
    time_zone = fields.String(allow_none=True, load_default=None, validate=KNOWN_TIME_ZONE,
                              metadata={"description": "calls: hours of the day in this IANA "
                                                       "time zone, e.g. Europe/Moscow (UTC)"})


class ColumnSchema(Contract):
    key = fields.String(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(COLUMN_KINDS))


class HighlightSchema(Contract):
    row = fields.Raw(required=True, metadata={"description": "Row index, or a row's key"})
    group = fields.String(allow_none=True, load_default=None,
                          metadata={"description": "The group the row is in, if grouped"})
    why = fields.String(required=True)


class GroupSchema(Contract):
    key = fields.String(required=True)
    title = fields.String(required=True)
    rows = fields.List(fields.Dict(), required=True)
    highlight = fields.Nested(HighlightSchema, allow_none=True, load_default=None)


class ChartSchema(Contract):
    type = fields.String(required=True, validate=validate.OneOf(CHART_TYPES))
    x = fields.String(required=True, metadata={"description": "Column key of the categories"})
    y = fields.List(fields.String(), required=True, metadata={"description": "Column keys drawn"})


class ReportSchema(Contract):
    """The shape of every report: a table (``rows``, or ``rows`` per group), how to chart it,
    what to highlight and a few totals."""

    report = fields.String(required=True)
    title = fields.String(required=True)
    filters = fields.Nested(ReportFiltersSchema, required=True)
    columns = fields.List(fields.Nested(ColumnSchema), required=True)
    rows = fields.List(fields.Dict(), required=True)
    groups = fields.List(fields.Nested(GroupSchema), allow_none=True, load_default=None)
    chart = fields.Nested(ChartSchema, required=True)
    highlight = fields.Nested(HighlightSchema, allow_none=True, load_default=None)
    summary = fields.Dict(load_default=dict)


class ReportInfoSchema(Contract):
    name = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(required=True)


class ReportListSchema(Contract):
    reports = fields.List(fields.Nested(ReportInfoSchema), required=True)


# -- plans -------------------------------------------------------------------------------------

class PlanInputSchema(Contract):
    calls = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0))
    deals_won = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=0))
    revenue = money(allow_none=True, load_default=None)


class PlanSchema(PlanInputSchema):
    manager = fields.String(required=True, validate=NAME)
    month = fields.String(required=True, validate=MONTH)
    updated_at = fields.AwareDateTime(required=True)


class PlanKeySchema(Contract):
    manager = fields.String(required=True, validate=NAME)
    month = fields.String(required=True, validate=MONTH)


class PlanListSchema(Contract):
    plans = fields.List(fields.Nested(PlanSchema), required=True)


# -- ad spend ----------------------------------------------------------------------------------

class AdSpendInputSchema(Contract):
    source = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "utm_source or connector the money was spent on"})
    medium = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    campaign = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=200))
    period_from = fields.Date(required=True)
    period_to = fields.Date(required=True)
    amount = money(required=True)


class AdSpendSchema(AdSpendInputSchema):
    id = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)


class AdSpendListSchema(Contract):
    entries = fields.List(fields.Nested(AdSpendSchema), required=True)
