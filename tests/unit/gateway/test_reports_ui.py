"""The reports API and pages without a broker: a gateway worker (worker_factory) with stand-in
reporting and deals services, fed werkzeug requests (as test_ui_deals.py)."""
import csv
import io
import json
from types import SimpleNamespace

import pytest
from nameko.testing.services import worker_factory
from report_samples import CHURN, FUNNEL
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from crmhub.contracts.errors import NotFound
from crmhub.services.gateway import openapi
from crmhub.services.gateway.auth import SESSION_COOKIE
from crmhub.services.gateway.service import GatewayService

KEYS = {"admin-key": {"name": "Admin", "role": "admin"},
        "manager-key": {"name": "Maria", "role": "manager"},
        "op-key": {"name": "Olga", "role": "operator"}}
CATALOG = {"reports": [{"name": "funnel", "title": "Sales funnel", "description": "."},
                       {"name": "churn", "title": "Churn risk", "description": "."}]}
SAME_SITE = {"Origin": "http://localhost"}


@pytest.fixture
def gateway():
    worker = worker_factory(GatewayService, api_keys=KEYS)
    worker.reporting.list_reports.return_value = CATALOG
    worker.reporting.report.side_effect = lambda name, filters: {
        "funnel": FUNNEL, "churn": CHURN}[name]
    # The dashboard asks for every report at once; each reply is the same call's answer.
    worker.reporting.report.call_async.side_effect = lambda name, filters: SimpleNamespace(
        result=lambda: worker.reporting.report(name, filters))
    worker.deals.list_pipelines.return_value = {"items": []}
    worker.deals.list_managers.return_value = {"items": []}
    return worker


def api(path, key="manager-key", method="GET", **kwargs):
    headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    return EnvironBuilder(path=path, method=method, headers=headers, **kwargs).get_request()


def page(path, key="manager-key", method="GET", **kwargs):
    headers = {"Cookie": f"{SESSION_COOKIE}={key}", **kwargs.pop("headers", {})}
    return EnvironBuilder(path=path, method=method, headers=headers, **kwargs).get_request()


def payload(result):
    """An entrypoint's JSON answer (the HTTP handler turns a returned dict into JSON)."""
    return result if isinstance(result, dict) else json.loads(body(result))


def body(response, status=200):
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def test_report_routes_win_over_the_catch_all():
    rules = Map([Rule(ep.url, methods=ep.method.split(","), endpoint=name)
                 for name, _, ep in openapi.entrypoints(GatewayService)]).bind("hub")
    assert rules.match("/api/v1/reports/funnel", "GET") == ("get_report", {"name": "funnel"})
    assert rules.match("/api/v1/reports/plans", "GET")[0] == "list_plans"
    assert rules.match("/api/v1/reports/plans/maria/2026-03", "PUT")[0] == "put_plan"
    assert rules.match("/api/v1/reports/ad-spend", "PUT")[0] == "put_ad_spend"
    assert rules.match("/reports/funnel/csv", "GET")[0] == "ui_report_csv"
    assert rules.match("/ui/reports/churn/c1/task", "POST")[0] == "ui_churn_task"


def test_filters_are_checked_then_sent_as_the_contract_dumps_them(gateway):
    response = gateway.get_report(api("/api/v1/reports/funnel?period_from=2026-01-01"
                                      "&pipeline_id=b2b&manager="), name="funnel")
    assert payload(response) == FUNNEL
    name, filters = gateway.reporting.report.call_args.args
    assert name == "funnel"
    assert (filters["period_from"], filters["pipeline_id"], filters["manager"]) == (
        "2026-01-01", "b2b", None)


def test_a_bad_filter_is_a_400_naming_it(gateway):
    from crmhub.services.gateway.http import JsonHttpHandler

    for query, field in (("period_from=yesterday", "period_from"), ("colour=red", "colour"),
                         ("factor=0.5", "factor"), ("format=xml", "format")):
        with pytest.raises(Exception) as raised:
            gateway.get_report(api(f"/api/v1/reports/funnel?{query}"), name="funnel")
        answer = JsonHttpHandler.response_from_exception(None, raised.value)
        assert answer.status_code == 400
        assert field in json.loads(answer.get_data())["details"]


def test_csv_by_format_or_accept_header_with_a_filename(gateway):
    for request in (api("/api/v1/reports/funnel?format=csv"),
                    api("/api/v1/reports/funnel", headers={"Accept": "text/csv"})):
        response = gateway.get_report(request, name="funnel")
        assert response.content_type == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"] == (
            'attachment; filename="funnel_2026-01-01_2026-01-31.csv"')
        lines = list(csv.reader(io.StringIO(body(response).lstrip("\ufeff"))))
        assert lines[0][0] == "group" and len(lines) == 6
    # A browser's usual Accept (HTML first, anything after) still gets JSON.
    response = gateway.get_report(api("/api/v1/reports/funnel", headers={
        "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}), name="funnel")
    assert payload(response)["report"] == "funnel"


def test_operators_may_not_read_reports_and_managers_may_not_set_plans(gateway):
    from crmhub.contracts.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        gateway.get_report(api("/api/v1/reports/funnel", key="op-key"), name="funnel")
    with pytest.raises(PermissionDenied):
        gateway.put_plan(api("/api/v1/reports/plans/maria/2026-03", method="PUT",
                             json={"deals_won": 3}), manager="maria", month="2026-03")
    gateway.reporting.put_plan.assert_not_called()


def test_plans_by_month_and_one_managers_plan(gateway):
    plan = {"manager": "maria", "month": "2026-03", "calls": None, "deals_won": 3,
            "revenue": "100000.00", "updated_at": "2026-03-01T00:00:00+00:00"}
    gateway.reporting.put_plan.return_value = plan
    gateway.reporting.list_plans.return_value = {"plans": [plan]}
    response = gateway.put_plan(api("/api/v1/reports/plans/maria/2026-03", "admin-key", "PUT",
                                    json={"deals_won": 3, "revenue": "100000"}),
                                manager="maria", month="2026-03")
    assert payload(response) == plan
    assert gateway.reporting.put_plan.call_args.args == (
        "maria", "2026-03", {"calls": None, "deals_won": 3, "revenue": "100000.00"})
    got = gateway.get_plan(api("/api/v1/reports/plans/maria/2026-03"), manager="maria",
                           month="2026-03")
    assert payload(got) == plan
    with pytest.raises(NotFound):
        gateway.get_plan(api("/api/v1/reports/plans/ivan/2026-03"), manager="ivan",
                         month="2026-03")
    from crmhub.contracts.errors import InvalidInput

    with pytest.raises(InvalidInput):
        gateway.list_plans(api("/api/v1/reports/plans?month=2026-13"))


def test_the_dashboard_draws_every_report_with_its_highlight_and_csv_links(gateway):
    html = body(gateway.ui_reports(page("/reports?period_from=2026-01-01")))
    assert 'href="/reports" aria-current="page">Reports</a>' in html
    assert html.count('data-chart="funnel"') == 2  # one per pipeline
    assert 'data-chart="bar"' in html
    assert html.count('data-highlight="true"') == 2  # the chart's bar and the table's row
    assert "Lowest conversion: 25.0 %" in html
    assert 'href="/reports/funnel/csv?period_from=2026-01-01"' in html
    assert "Anna &lt;b&gt;" in html and "Anna <b>" not in html
    assert 'action="/ui/reports/churn/c1/task"' in html
    assert 'name="next" value="/reports?period_from=2026-01-01"' in html


def test_a_bad_filter_on_the_dashboard_is_shown_on_the_form(gateway):
    html = body(gateway.ui_reports(page("/reports?period_to=soon")), 400)
    assert 'role="alert"' in html and "period_to" in html and 'value="soon"' in html
    gateway.reporting.report.assert_not_called()


def test_one_failing_report_leaves_the_others_on_the_dashboard(gateway):
    def report(name, filters):
        if name == "churn":
            raise NotFound("no report 'churn'")
        return FUNNEL

    gateway.reporting.report.side_effect = report
    html = body(gateway.ui_reports(page("/reports")))
    assert 'data-chart="funnel"' in html and "no report &#39;churn&#39;" in html


def test_create_task_from_churn_row_returns_to_the_dashboard_with_a_notice(gateway):
    gateway.deals.create_task.return_value = {"id": "t9"}
    response = gateway.ui_churn_task(page(
        "/ui/reports/churn/c1/task", method="POST", headers=SAME_SITE,
        data={"name": "Anna", "next": "/reports?period_from=2026-01-01"}), contact_id="c1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/reports?period_from=2026-01-01&task_created=t9"
    task = gateway.deals.create_task.call_args.args[0]
    assert (task["contact_id"], task["manager"]) == ("c1", "Maria")
    assert task["title"].startswith("Win back Anna")
    # The client's own manager, when the report names one, gets the task.
    gateway.ui_churn_task(page("/ui/reports/churn/c1/task", method="POST", headers=SAME_SITE,
                               data={"name": "Anna", "manager": "Olga"}), contact_id="c1")
    assert gateway.deals.create_task.call_args.args[0]["manager"] == "Olga"
    gateway.deals.get_task.return_value = {**task, "id": "t9", "due_at": task["due_at"]}
    html = body(gateway.ui_reports(page("/reports?task_created=t9")))
    assert "data-notice" in html and "Win back Anna" in html


def test_a_churn_task_from_another_site_is_refused(gateway):
    response = gateway.ui_churn_task(page("/ui/reports/churn/c1/task", method="POST",
                                          headers={"Origin": "https://evil.example"},
                                          data={"next": "https://evil.example"}),
                                     contact_id="c1")
    assert response.status_code == 403
    gateway.deals.create_task.assert_not_called()


def test_one_report_in_full_offers_its_own_filters_and_its_csv(gateway):
    html = body(gateway.ui_report(page("/reports/churn?factor=2"), name="churn"))
    assert 'name="factor" value="2"' in html and 'name="callback_minutes"' not in html
    assert gateway.reporting.report.call_args.args[1]["factor"] == 2.0
    assert 'href="/reports/churn/csv?factor=2"' in html and "Full report" not in html
    response = gateway.ui_report_csv(page("/reports/churn/csv?factor=2"), name="churn")
    assert response.headers["Content-Disposition"] == 'attachment; filename="churn.csv"'
    assert body(response).lstrip("\ufeff").splitlines()[0] == "name,last_purchase,ratio"


def test_an_unknown_report_page_is_a_404_page(gateway):
    gateway.reporting.report.side_effect = NotFound("no report 'weather'")
    html = body(gateway.ui_report(page("/reports/weather"), name="weather"), 404)
    assert "no report &#39;weather&#39;" in html
