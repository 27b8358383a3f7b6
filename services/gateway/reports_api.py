"""Reports at the edge: the REST API under /api/v1/reports (every report as JSON or CSV, the
managers' monthly plans, the ad spend per source), answered by the reporting service.

The gateway checks the filters against the contract (a bad one is a 400 naming it) and sends
them on as the contract dumps them; the reporting service answers from its own read models.
"""
from __future__ import annotations

from werkzeug.wrappers import Response

from crmhub.contracts import reporting as schemas
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.services.gateway.http import http, json_body, refuse_unknown_args
from crmhub.services.gateway.openapi import operation
from crmhub.services.gateway.report_render import csv_filename, report_csv

READ, WRITE = "reports:read", "reports:write"
CSV_TYPE = "text/csv"
# Query parameters about the answer itself, not filters of the report.
FORMAT_PARAM = "format"


def report_filters(args) -> dict:
    """The report filters of a query string (or form), checked by the contract and dumped as
    the reporting service expects them; empty values count as not given."""
    given = {k: v for k, v in args.items() if k != FORMAT_PARAM and v not in ("", None)}
    return instance(schemas.ReportFiltersSchema).dump(
        load_input(schemas.ReportFiltersSchema, given))


def wants_csv(request) -> bool:
    fmt = (request.args.get(FORMAT_PARAM) or "").lower()
    if fmt and fmt not in ("csv", "json"):
        raise InvalidInput("format: csv or json", {FORMAT_PARAM: ["Must be csv or json."]})
    if fmt:
        return fmt == "csv"
    accept = request.accept_mimetypes
    return accept.best_match(["application/json", CSV_TYPE]) == CSV_TYPE and \
        accept[CSV_TYPE] > accept["application/json"]


def csv_response(report: dict) -> Response:
    # A BOM so that spreadsheet programs read the UTF-8 (client names, sources) as UTF-8.
    response = Response("\ufeff" + report_csv(report), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{csv_filename(report)}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def check_month(month: str) -> str:
    # The contract's pattern; fullmatch, as its "$" would let a trailing newline by.
    if not schemas.MONTH.regex.fullmatch(month or ""):
        raise InvalidInput("month: use YYYY-MM", {"month": ["Use YYYY-MM, e.g. 2026-03."]})
    return month


class ReportsApi:
    """Mixed into GatewayService, which provides ``reporting`` (the reporting service's RPC
    proxy) and ``_principal``."""

    @http("GET", "/api/v1/reports")
    @operation(summary="The reports there are, with their filters", tags=["reports"],
               response=schemas.ReportListSchema, permission=READ)
    def list_reports(self, request):
        self._principal(request, READ)
        return self.reporting.list_reports()

    @http("GET", "/api/v1/reports/<string:name>")
    @operation(summary="A report, as JSON or (`?format=csv` or `Accept: text/csv`) CSV",
               tags=["reports"], query=schemas.ReportFiltersSchema,
               response=schemas.ReportSchema, permission=READ,
               description="Reports: `funnel`, `managers`, `sources`, `calls`, `campaigns`, "
                           "`churn` (`GET /api/v1/reports` lists them). The CSV has the "
                           "columns' keys as its header, one line per row; a report in groups "
                           "(the funnel: one per pipeline) has the group's key first. Add "
                           "`format=csv` to the query (or send `Accept: text/csv`) for it.")
    def get_report(self, request, name):
        self._principal(request, READ)
        as_csv = wants_csv(request)
        report = self.reporting.report(name, report_filters(request.args))
        return csv_response(report) if as_csv else report

    # -- monthly plans per manager ----------------------------------------------------------------
    @http("GET", "/api/v1/reports/plans")
    @operation(summary="The managers' plans of a month (`?month=YYYY-MM`)", tags=["reports"],
               response=schemas.PlanListSchema, permission=READ)
    def list_plans(self, request):
        self._principal(request, READ)
        refuse_unknown_args(request, ("month",))
        return self.reporting.list_plans(check_month(request.args.get("month", "")))

    @http("GET", "/api/v1/reports/plans/<string:manager>/<string:month>")
    @operation(summary="A manager's plan for a month", tags=["reports"],
               response=schemas.PlanSchema, permission=READ)
    def get_plan(self, request, manager, month):
        self._principal(request, READ)
        plans = self.reporting.list_plans(check_month(month))
        for plan in plans["plans"]:
            if plan["manager"] == manager:
                return plan
        raise NotFound(f"no plan of {manager} for {month}")

    @http("PUT", "/api/v1/reports/plans/<string:manager>/<string:month>")
    @operation(summary="Set a manager's plan for a month (replaces the one set before)",
               tags=["reports"], request=schemas.PlanInputSchema, response=schemas.PlanSchema,
               permission=WRITE)
    def put_plan(self, request, manager, month):
        self._principal(request, WRITE)
        plan = instance(schemas.PlanInputSchema).dump(
            load_input(schemas.PlanInputSchema, json_body(request)))
        return self.reporting.put_plan(manager, check_month(month), plan)

    # -- ad spend per source and period -----------------------------------------------------------
    @http("GET", "/api/v1/reports/ad-spend")
    @operation(summary="Ad spend entered per source and period", tags=["reports"],
               response=schemas.AdSpendListSchema, permission=READ)
    def list_ad_spend(self, request):
        self._principal(request, READ)
        return self.reporting.list_ad_spend()

    @http("PUT", "/api/v1/reports/ad-spend")
    @operation(summary="Enter the ad spend of a source for a period (replaces the entry of "
                       "the same source and period)", tags=["reports"],
               request=schemas.AdSpendInputSchema, response=schemas.AdSpendSchema,
               permission=WRITE,
               description="The lead sources report divides it by the leads and the won deals "
                           "of that source in the period: cost per lead and per sale.")
    def put_ad_spend(self, request):
        self._principal(request, WRITE)
        entry = instance(schemas.AdSpendInputSchema).dump(
            load_input(schemas.AdSpendInputSchema, json_body(request)))
        return self.reporting.put_ad_spend(entry)
