"""Reports in the operator UI: the dashboard (/reports: a filter form and one panel per report,
each a chart drawn on the server as SVG above its table), one report in full (/reports/<name>),
its CSV for the signed-in user, and the churn report's "Create task" button.

The pages ask the reporting service through the same filters contract as the REST API
(reports_api.py); a bad filter is shown on the form rather than as an error page.
"""
from __future__ import annotations

import datetime as dt
from urllib.parse import quote, urlencode

from nameko.exceptions import RemoteError
from werkzeug.utils import redirect

from crmhub.contracts.errors import CrmhubError, InvalidInput
from crmhub.services.gateway.http import http
from crmhub.services.gateway.openapi import html_page
from crmhub.services.gateway.report_render import (
    chart_svg,
    format_cell,
    sections,
    summary_value,
)
from crmhub.services.gateway.reports_api import READ, csv_response, report_filters
from crmhub.services.gateway.ui import TEMPLATES, render, safe_next, ui_page

COMMON_FILTERS = ("period_from", "period_to", "pipeline_id", "manager", "source")
# Filters only some reports read, offered on that report's own page.
EXTRA_FILTERS = {"calls": ("callback_minutes",), "churn": ("factor", "limit"),
                 "sources": ("limit",)}
DASHBOARD_ROWS = 10
TASK_PERMISSION = "deals:write"
# A win-back call is worth making soon, not this minute: the task falls due in a day.
CHURN_TASK_DELAY = dt.timedelta(days=1)

TEMPLATES.globals.update(chart_svg=chart_svg, report_sections=sections)
TEMPLATES.filters.update(cell=format_cell, summary_value=summary_value)


def form_values(args, names) -> dict:
    return {name: (args.get(name) or "").strip() for name in names}


def filter_errors(exc: InvalidInput) -> list[str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    lines = [f"{field}: {' '.join(map(str, problems if isinstance(problems, list) else [problems]))}"
             for field, problems in details.items()]
    return lines or [exc.message]


def churn_task(contact_id: str, name: str, manager: str, now: dt.datetime) -> dict:
    """The task a "Create task" button of the churn report asks for."""
    who = (name or "").strip()[:200] or "the client"
    return {"title": f"Win back {who}: no purchase for longer than usual",
            "due_at": (now + CHURN_TASK_DELAY).isoformat(), "manager": manager,
            "contact_id": contact_id}


class ReportsUi:
    """Pages of the reports; mixed into GatewayService (``reporting`` and ``deals`` RPC
    proxies)."""

    @http("GET", "/reports")
    @html_page
    @ui_page(permission=READ)
    def ui_reports(self, request, principal):
        values = form_values(request.args, COMMON_FILTERS)
        errors, panels = [], []
        try:
            filters = report_filters(values)
        except InvalidInput as exc:
            errors, filters = filter_errors(exc), None
        if filters is not None:
            # Asked all at once: the page waits for the slowest report, not for their sum.
            asked = [(entry["name"], self.reporting.report.call_async(entry["name"], filters))
                     for entry in self.reporting.list_reports()["reports"]]
            panels = [self._panel(name, reply.result) for name, reply in asked]
        return render("reports.html", 400 if errors else 200, principal=principal,
                      nav="reports", values=values, errors=errors, panels=panels,
                      query=_query(values), here=_here(request), notice=self._notice(request),
                      rows_shown=DASHBOARD_ROWS, **self._choices())

    @http("GET", "/reports/<string:name>")
    @html_page
    @ui_page(permission=READ)
    def ui_report(self, request, principal, name):
        entry = self._entry(name)
        names = COMMON_FILTERS + EXTRA_FILTERS.get(name, ())
        values = form_values(request.args, names)
        errors, panel = [], None
        try:
            filters = report_filters(values)
        except InvalidInput as exc:
            errors = filter_errors(exc)
        else:
            panel = self._panel(name, lambda: self.reporting.report(name, filters))
        extra = [f for f in names if f not in COMMON_FILTERS]
        return render("report.html", 400 if errors else 200, principal=principal,
                      nav="reports", entry=entry, values=values, errors=errors, panel=panel,
                      extra_filters=extra, query=_query(values), here=_here(request),
                      notice=self._notice(request), rows_shown=None, **self._choices())

    @http("GET", "/reports/<string:name>/csv")
    @html_page
    @ui_page(permission=READ)
    def ui_report_csv(self, request, principal, name):
        return csv_response(self.reporting.report(name, report_filters(request.args)))

    @http("POST", "/ui/reports/churn/<string:contact_id>/task")
    @html_page
    @ui_page(permission=TASK_PERMISSION)
    def ui_churn_task(self, request, principal, contact_id):
        # The client's own manager (of their last purchase) gets it, else whoever clicked.
        manager = (request.form.get("manager") or "").strip()[:100] or principal.name
        task = self.deals.create_task(
            churn_task(contact_id, request.form.get("name", ""), manager,
                       dt.datetime.now(dt.timezone.utc)), actor=principal.name)
        back = safe_next(request.form.get("next") or "/reports")
        joiner = "&" if "?" in back else "?"
        return redirect(f"{back}{joiner}{urlencode({'task_created': task['id']})}", 303)

    # -- helpers ------------------------------------------------------------------------------------
    def _entry(self, name: str) -> dict:
        for entry in self.reporting.list_reports()["reports"]:
            if entry["name"] == name:
                return entry
        # The reporting service names the unknown report itself.
        self.reporting.report(name, {})
        return {"name": name, "title": name}

    @staticmethod
    def _panel(name: str, answer) -> dict:
        """Report ``name`` for a page, as ``answer()`` gives it; a report that fails shows its
        error in its panel, so one broken read model does not take the dashboard with it."""
        try:
            return {"name": name, "report": answer()}
        except CrmhubError as exc:
            return {"name": name, "error": exc.message}
        except RemoteError:
            return {"name": name, "error": "The reporting service failed on this report."}

    def _choices(self) -> dict:
        return {"pipelines": self.deals.list_pipelines()["items"],
                "managers": self.deals.list_managers()["items"]}

    def _notice(self, request) -> dict | None:
        task_id = request.args.get("task_created")
        if not task_id:
            return None
        try:
            return self.deals.get_task(task_id)
        except CrmhubError:
            return None


def _query(values: dict) -> str:
    """The filters as a query string for links (CSV, one report in full)."""
    given = {k: v for k, v in values.items() if v}
    return ("?" + urlencode(given)) if given else ""


def _here(request) -> str:
    """This page's path with its filters, without a notice, for a form to come back to."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "task_created"]
    return quote(request.path) + (("?" + urlencode(args)) if args else "")
