"""deploy/grafana/crmhub-dashboard.json: parses, uses its datasource variable, and queries only
metrics (and labels) that crmhub.runtime.metrics exports (plus RabbitMQ's own rabbitmq_*)."""
import json
import re
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from crmhub.runtime import metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "crmhub-dashboard.json"
# The queue depth gauge of the runtime's queue work: taken as announced while the runtime does
# not define it yet; once it does, the runtime's own definition counts.
EXPECTED = {"crmhub_queue_messages": ("gauge", ("service", "queue"))}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("", "_sum", "_count")}
METRIC = re.compile(r"\bcrmhub_[a-z0-9_]+")
# RabbitMQ's Prometheus plugin (aggregated endpoint :15692/metrics).
BROKER_METRIC = re.compile(r"\brabbitmq_(?:queue_messages_ready|queue_messages_unacked)\b")


def exported() -> dict[str, tuple[str, set[str]]]:
    """``{series name: (base name, label names)}`` of every crmhub metric, as /metrics shows them."""
    known = {name: kind_labels for name, kind_labels in EXPECTED.items()}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            known[value._name] = (value._type, tuple(value._labelnames))
    series = {}
    for base, (kind, labels) in known.items():
        for suffix in SUFFIXES[kind]:
            extra = {"le"} if suffix == "_bucket" else set()
            series[base + suffix] = (base, set(labels) | extra)
    return series


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard):
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if variable["type"] == "query":
            yield variable["name"], query["query"] if isinstance(query, dict) else query


def test_dashboard_is_a_grafana_dashboard_with_a_datasource_variable(dashboard):
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"


def test_every_crmhub_metric_queried_is_exported(dashboard):
    series = exported()
    for where, expr in expressions(dashboard):
        names = METRIC.findall(expr)
        assert names or BROKER_METRIC.search(expr), f"{where}: {expr} queries no known metric"
        unknown = [n for n in names if n not in series]
        assert not unknown, f"{where}: crmhub.runtime.metrics exports no {unknown}"


def test_every_label_filtered_or_grouped_on_exists_on_its_metric(dashboard):
    series = exported()
    for where, expr in expressions(dashboard):
        for name, matchers in re.findall(r"(crmhub_[a-z0-9_]+)\{([^}]*)\}", expr):
            used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
            assert used <= series[name][1], f"{where}: {name} has no label {used - series[name][1]}"
        names = set(METRIC.findall(expr))
        if len(names) == 1:
            labels = series[names.pop()][1]
            for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
                grouped = {g.strip() for g in group.split(",") if g.strip()}
                assert grouped <= labels, f"{where}: grouped by {grouped - labels}, not a label"


def test_dashboard_covers_what_an_operator_watches(dashboard):
    queries = "\n".join(expr for _, expr in expressions(dashboard))
    for needed in ("crmhub_http_requests_total", "crmhub_webhooks_total", "crmhub_handler_retries_total",
                   "crmhub_dead_letters_total", "crmhub_queue_messages", "crmhub_outbox_backlog",
                   "crmhub_popups_delivered_total", "crmhub_popup_streams"):
        assert needed in queries, needed
    for histogram in ("crmhub_worker_seconds_bucket", "crmhub_pbx_command_seconds_bucket"):
        for quantile in ("0.5", "0.99"):
            found = re.search(rf"histogram_quantile\({quantile},[^\n]*{histogram}", queries)
            assert found, (histogram, quantile)
    per_service = (r"histogram_quantile\(0\.99, sum by \([^)]*\bservice\b[^)]*\) "
                   r"\(rate\(crmhub_worker_seconds_bucket")
    assert re.search(per_service, queries), "handler p99 per service"


def test_the_metric_check_notices_a_name_the_runtime_does_not_export():
    series = exported()
    assert "crmhub_worker_seconds_bucket" in series and "crmhub_http_requests_total" in series
    assert "crmhub_worker_seconds_total" not in series and "crmhub_webhooks" not in series
