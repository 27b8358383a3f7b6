"""The reporting service on a real RabbitMQ: deal events published out of order and twice
reach the funnel through the batch handlers, a payload breaking its contract is parked in the
dead-letter queue, and the RPCs answer reports and plans (bad input refused)."""
import random

import pytest
from funnel_history import history
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

from crmhub.contracts.errors import InvalidInput, NotFound
from crmhub.runtime.messaging import get_publisher
from crmhub.runtime.migrate import upgrade
from crmhub.runtime.topology import dead_letter_queue_name, declare_topology
from crmhub.services.reporting.service import ReportingService
from support import queue_depth, wait_for

pytestmark = pytest.mark.rabbit


@pytest.fixture
def reporting(amqp_uri, tmp_path, container_factory):
    config = {"AMQP_URI": amqp_uri, "DATA_DIR": str(tmp_path), "DATABASE_URL": "",
              "RETRY_DELAYS_MS": [50], "max_workers": 5}
    upgrade(config, "reporting")
    declare_topology(config, [ReportingService])
    container_factory(ReportingService, config).start()
    with ServiceRpcProxy("reporting", config) as proxy:
        yield proxy, config


def funnel_reached(proxy) -> dict:
    report = proxy.report("funnel", {})
    return {row["stage"]: row["reached"] for g in report["groups"] for row in g["rows"]}


def test_published_events_reach_the_funnel_once(reporting, amqp_uri):
    proxy, _ = reporting
    events = history() * 2
    random.Random(3).shuffle(events)
    publisher = get_publisher(amqp_uri)
    for event_type, payload in events:
        publisher.publish_json("deals.events", event_type, payload)
    expected = {"New": 5, "Qualified": 3, "Proposal": 1, "Won": 1, "Lost": 2}
    wait_for(lambda: funnel_reached(proxy) == expected, timeout=20,
             message="the funnel never showed the scripted history")
    names = [r["name"] for r in proxy.list_reports()["reports"]]
    assert names[:2] == ["funnel", "managers"]


def test_a_payload_breaking_its_contract_is_parked(reporting, amqp_uri):
    get_publisher(amqp_uri).publish_json("deals.events", "deal_created", {"event_id": "broken"})
    wait_for(lambda: queue_depth(amqp_uri, dead_letter_queue_name("reporting")) == 1,
             timeout=15, message="the broken event was not dead-lettered")


def test_plans_and_bad_input(reporting):
    proxy, _ = reporting
    saved = proxy.put_plan("anna", "2026-03", {"revenue": "1500.5", "deals_won": 3})
    assert saved["revenue"] == "1500.50" and saved["calls"] is None
    assert [p["manager"] for p in proxy.list_plans("2026-03")["plans"]] == ["anna"]
    assert proxy.list_plans("2026-04")["plans"] == []
    with pytest.raises((InvalidInput, RemoteError)) as bad_month:
        proxy.put_plan("anna", "2026-13", {})
    assert "month" in str(bad_month.value)
    with pytest.raises((InvalidInput, RemoteError)) as bad_plan:
        proxy.put_plan("anna", "2026-03", {"revenue": "-1"})
    assert "revenue" in str(bad_plan.value)
    with pytest.raises((InvalidInput, RemoteError)) as bad_filter:
        proxy.report("funnel", {"period_from": "last week"})
    assert "period_from" in str(bad_filter.value)
    with pytest.raises((NotFound, RemoteError)) as unknown:
        proxy.report("nonsense", {})
    assert "funnel" in str(unknown.value)
