"""The sales funnel's REST routes on a gateway worker (worker_factory) with a stand-in deals
service: routing, roles, who is recorded as the actor, and refused query parameters."""
import pytest
from nameko.testing.services import worker_factory
from werkzeug.routing import Map, Rule
from werkzeug.test import EnvironBuilder

from crmhub.contracts.errors import InvalidInput, PermissionDenied
from crmhub.services.gateway import openapi
from crmhub.services.gateway.service import GatewayService

KEYS = {"op-key": {"name": "Olga", "role": "operator"},
        "admin-key": {"name": "Admin", "role": "admin"}}


@pytest.fixture
def gateway():
    return worker_factory(GatewayService, api_keys=KEYS)


def request(path, method="GET", key="op-key", **kwargs):
    return EnvironBuilder(path=path, method=method, headers={"Authorization": f"Bearer {key}"},
                          **kwargs).get_request()


def test_template_routes_win_over_a_pipeline_id():
    rules = Map([Rule(ep.url, methods=ep.method.split(","), endpoint=name)
                 for name, _, ep in openapi.entrypoints(GatewayService)]).bind("hub")
    assert rules.match("/api/v1/pipelines/templates", "GET")[0] == "list_pipeline_templates"
    assert rules.match("/api/v1/pipelines/templates/b2b-sales", "POST") == (
        "load_pipeline_template", {"name": "b2b-sales"})
    assert rules.match("/api/v1/pipelines/b2b-sales", "GET") == (
        "get_pipeline", {"pipeline_id": "b2b-sales"})
    assert rules.match("/api/v1/deals/d1/move", "POST") == ("move_deal", {"deal_id": "d1"})
    assert rules.match("/api/v1/pipelines/b2b-sales/board", "GET") == (
        "get_pipeline_board", {"pipeline_id": "b2b-sales"})


def test_the_board_passes_its_query_to_the_deals_service(gateway):
    gateway.deals.board.return_value = {"pipeline_id": "b2b-sales", "columns": []}
    body = gateway.get_pipeline_board(
        request("/api/v1/pipelines/b2b-sales/board?per_stage=10&manager=olga"), "b2b-sales")
    assert body == {"pipeline_id": "b2b-sales", "columns": []}
    gateway.deals.board.assert_called_once_with("b2b-sales", per_stage="10", manager="olga")
    gateway.get_pipeline_board(request("/api/v1/pipelines/b2b-sales/board"), "b2b-sales")
    gateway.deals.board.assert_called_with("b2b-sales")
    with pytest.raises(InvalidInput) as err:
        gateway.get_pipeline_board(request("/api/v1/pipelines/x/board?stage_id=3"), "x")
    assert err.value.details == {"stage_id": ["Unknown field."]}


def test_the_caller_is_recorded_as_who_moved_the_deal(gateway):
    gateway.deals.move_deal.return_value = {"id": "d1"}
    gateway.move_deal(request("/api/v1/deals/d1/move", "POST", json={"stage_id": 3}), "d1")
    gateway.deals.move_deal.assert_called_once_with("d1", {"stage_id": 3}, "Olga")


def test_a_new_deal_answers_201_with_its_location(gateway):
    gateway.deals.create_deal.return_value = {"id": "d9"}
    response = gateway.create_deal(request("/api/v1/deals", "POST", json={"contact_id": "c"}))
    assert response.status_code == 201 and response.headers["Location"] == "/api/v1/deals/d9"


def test_loading_a_template_twice_answers_200_the_second_time(gateway):
    gateway.deals.load_template.return_value = {"pipeline": {"id": "b2b-sales"}, "created": False}
    response = gateway.load_pipeline_template(
        request("/api/v1/pipelines/templates/b2b-sales", "POST", key="admin-key"), "b2b-sales")
    assert response.status_code == 200


def test_setting_up_the_funnel_needs_the_admin_role(gateway):
    with pytest.raises(PermissionDenied):
        gateway.load_pipeline_template(
            request("/api/v1/pipelines/templates/b2b-sales", "POST"), "b2b-sales")
    with pytest.raises(PermissionDenied):
        gateway.put_lead_rule(request("/api/v1/lead-rules", "PUT", json={}))
    gateway.deals.load_template.assert_not_called()


def test_unknown_query_parameters_are_refused(gateway):
    with pytest.raises(InvalidInput) as err:
        gateway.list_deals(request("/api/v1/deals?stage=3&status=open"))
    assert err.value.details == {"stage": ["Unknown field."]}
    gateway.list_tasks(request("/api/v1/tasks?manager=olga&done=false"))
    gateway.deals.search_tasks.assert_called_once_with({"manager": "olga", "done": "false"})
