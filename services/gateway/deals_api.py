"""REST for the sales funnel under /api/v1: pipelines and their templates, deals, tasks,
managers and lead rules. Each call goes to the deals service, which checks the input against
the contracts; the caller's API key name is recorded as who did it."""
from __future__ import annotations

from crmhub.contracts import deals as schemas
from crmhub.services.gateway.http import http, json_body, json_response, refuse_unknown_args
from crmhub.services.gateway.openapi import operation


def query_args(request, schema_cls) -> dict:
    """The query string as the RPC's query payload; an unknown parameter is refused."""
    refuse_unknown_args(request, schema_cls().fields)
    return {k: v for k, v in request.args.items() if v != ""}


def _created(body: dict, location: str):
    return json_response(body, 201, {"Location": location})


class DealsApi:
    """HTTP entrypoints of the sales funnel; mixed into GatewayService (which provides
    ``deals``, the deals service's RPC proxy, and ``_principal``)."""

    # -- pipelines -----------------------------------------------------------------------------
    @http("GET", "/api/v1/pipelines")
    @operation(summary="Pipelines with their stages and managers", tags=["pipelines"],
               response=schemas.PipelineListSchema, permission="deals:read")
    def list_pipelines(self, request):
        self._principal(request, "deals:read")
        return self.deals.list_pipelines()

    @http("POST", "/api/v1/pipelines")
    @operation(summary="Create a pipeline from ordered stages", tags=["pipelines"], status=201,
               request=schemas.PipelineInputSchema, response=schemas.PipelineSchema,
               permission="deals:configure", errors=[409])
    def create_pipeline(self, request):
        self._principal(request, "deals:configure")
        pipeline = self.deals.create_pipeline(json_body(request))
        return _created(pipeline, f"/api/v1/pipelines/{pipeline['id']}")

    @http("GET", "/api/v1/pipelines/<string:pipeline_id>")
    @operation(summary="A pipeline with its stages (task, result and key steps of each)",
               tags=["pipelines"], response=schemas.PipelineSchema, permission="deals:read")
    def get_pipeline(self, request, pipeline_id):
        self._principal(request, "deals:read")
        return self.deals.get_pipeline(pipeline_id)

    @http("GET", "/api/v1/pipelines/<string:pipeline_id>/board")
    @operation(summary="The pipeline board: open deals by stage, with counts and totals",
               tags=["pipelines"], query=schemas.BoardQuerySchema,
               response=schemas.BoardSchema, permission="deals:read",
               description="One column per stage, in order: the number of open deals, the sum "
                           "of their amounts per currency, and the first `per_stage` deals, "
                           "latest activity first. Won and lost stages are columns without "
                           "deals. More of a column: `GET /api/v1/deals?pipeline_id=&stage_id="
                           "&status=open&limit=&offset=` (same order; add `manager=` if the "
                           "board was filtered).")
    def get_pipeline_board(self, request, pipeline_id):
        self._principal(request, "deals:read")
        return self.deals.board(pipeline_id, **query_args(request, schemas.BoardQuerySchema))

    @http("PUT", "/api/v1/pipelines/<string:pipeline_id>/managers")
    @operation(summary="Set the managers who receive the pipeline's new leads, in turn",
               tags=["pipelines"], request=schemas.PipelineManagersSchema,
               response=schemas.PipelineSchema, permission="deals:configure")
    def set_pipeline_managers(self, request, pipeline_id):
        self._principal(request, "deals:configure")
        return self.deals.set_pipeline_managers(pipeline_id, json_body(request))

    @http("GET", "/api/v1/pipelines/templates")
    @operation(summary="The pipeline templates shipped with crmhub", tags=["pipelines"],
               response=schemas.TemplateListSchema, permission="deals:read")
    def list_pipeline_templates(self, request):
        self._principal(request, "deals:read")
        return self.deals.list_templates()

    @http("POST", "/api/v1/pipelines/templates/<string:name>")
    @operation(summary="Create the pipeline of a template (201), or return the one loaded "
                       "before (200): loading twice duplicates nothing", tags=["pipelines"],
               status=201, response=schemas.TemplateLoadedSchema, permission="deals:configure",
               errors=[409])
    def load_pipeline_template(self, request, name):
        self._principal(request, "deals:configure")
        loaded = self.deals.load_template(name)
        location = f"/api/v1/pipelines/{loaded['pipeline']['id']}"
        return json_response(loaded, 201 if loaded["created"] else 200, {"Location": location})

    # -- deals ---------------------------------------------------------------------------------
    @http("GET", "/api/v1/deals")
    @operation(summary="List deals by pipeline, stage, status, manager or client card",
               tags=["deals"], query=schemas.DealQuerySchema, response=schemas.DealPageSchema,
               permission="deals:read")
    def list_deals(self, request):
        self._principal(request, "deals:read")
        return self.deals.search_deals(query_args(request, schemas.DealQuerySchema))

    @http("POST", "/api/v1/deals")
    @operation(summary="Open a deal for a client card", tags=["deals"], status=201,
               request=schemas.DealInputSchema, response=schemas.DealCardSchema,
               permission="deals:write")
    def create_deal(self, request):
        principal = self._principal(request, "deals:write")
        deal = self.deals.create_deal(json_body(request), principal.name)
        return _created(deal, f"/api/v1/deals/{deal['id']}")

    @http("GET", "/api/v1/deals/<string:deal_id>")
    @operation(summary="A deal with its stage history and tasks", tags=["deals"],
               response=schemas.DealCardSchema, permission="deals:read")
    def get_deal(self, request, deal_id):
        self._principal(request, "deals:read")
        return self.deals.get_deal(deal_id)

    @http("PATCH", "/api/v1/deals/<string:deal_id>")
    @operation(summary="Change the title, manager, amount or products of a deal",
               tags=["deals"], request=schemas.DealPatchSchema,
               response=schemas.DealCardSchema, permission="deals:write", errors=[409])
    def update_deal(self, request, deal_id):
        principal = self._principal(request, "deals:write")
        return self.deals.update_deal(deal_id, json_body(request), principal.name)

    @http("POST", "/api/v1/deals/<string:deal_id>/move")
    @operation(summary="Move a deal to a stage of its pipeline (backwards too)", tags=["deals"],
               description="Recorded in the deal's history with time, who, from and to. A "
                           "stage of another pipeline is refused with 400. With "
                           "`expected_version`, a deal changed meanwhile is refused with 409.",
               request=schemas.MoveSchema, response=schemas.DealCardSchema,
               permission="deals:write", errors=[409])
    def move_deal(self, request, deal_id):
        principal = self._principal(request, "deals:write")
        return self.deals.move_deal(deal_id, json_body(request), principal.name)

    # -- tasks ---------------------------------------------------------------------------------
    @http("GET", "/api/v1/tasks")
    @operation(summary="List tasks by manager, state, deal, client card or due time, soonest "
                       "first", tags=["tasks"], query=schemas.TaskQuerySchema,
               response=schemas.TaskPageSchema, permission="deals:read")
    def list_tasks(self, request):
        self._principal(request, "deals:read")
        return self.deals.search_tasks(query_args(request, schemas.TaskQuerySchema))

    @http("POST", "/api/v1/tasks")
    @operation(summary="Set a task for a manager; a reminder (task_due) fires when it is due",
               tags=["tasks"], status=201, request=schemas.TaskInputSchema,
               response=schemas.TaskSchema, permission="deals:write")
    def create_task(self, request):
        principal = self._principal(request, "deals:write")
        task = self.deals.create_task(json_body(request), principal.name)
        return _created(task, f"/api/v1/tasks/{task['id']}")

    @http("GET", "/api/v1/tasks/<string:task_id>")
    @operation(summary="A task", tags=["tasks"], response=schemas.TaskSchema,
               permission="deals:read")
    def get_task(self, request, task_id):
        self._principal(request, "deals:read")
        return self.deals.get_task(task_id)

    @http("PATCH", "/api/v1/tasks/<string:task_id>")
    @operation(summary="Rename, reschedule, reassign a task, or mark it done or undone",
               tags=["tasks"], request=schemas.TaskPatchSchema, response=schemas.TaskSchema,
               permission="deals:write")
    def update_task(self, request, task_id):
        principal = self._principal(request, "deals:write")
        return self.deals.update_task(task_id, json_body(request), principal.name)

    # -- managers and lead rules ---------------------------------------------------------------
    @http("GET", "/api/v1/managers")
    @operation(summary="Managers", tags=["managers"], response=schemas.ManagerListSchema,
               permission="deals:read")
    def list_managers(self, request):
        self._principal(request, "deals:read")
        return self.deals.list_managers()

    @http("PUT", "/api/v1/managers/<string:manager_id>")
    @operation(summary="Create or replace a manager; the id is the name of the manager's API "
                       "key", tags=["managers"], request=schemas.ManagerInputSchema,
               response=schemas.ManagerSchema, permission="deals:configure")
    def put_manager(self, request, manager_id):
        self._principal(request, "deals:configure")
        return self.deals.put_manager(manager_id, json_body(request))

    @http("GET", "/api/v1/lead-rules")
    @operation(summary="Lead rules in force, from the config (LEAD_RULES) and the API",
               tags=["lead rules"], response=schemas.LeadRuleListSchema,
               permission="deals:configure")
    def list_lead_rules(self, request):
        self._principal(request, "deals:configure")
        return self.deals.list_lead_rules()

    @http("PUT", "/api/v1/lead-rules")
    @operation(summary="Create or replace the lead rule of a connector (and form)",
               tags=["lead rules"], request=schemas.LeadRuleInputSchema,
               response=schemas.LeadRuleSchema, permission="deals:configure")
    def put_lead_rule(self, request):
        self._principal(request, "deals:configure")
        return self.deals.put_lead_rule(json_body(request))
