"""deals: pipelines with their stages, deals and their stage history, tasks with reminders,
managers and lead rules."""
from nameko.dependency_providers import Config
from nameko.rpc import rpc

from crmhub.contracts import deals as schemas
from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.calls import CallEventSchema
from crmhub.contracts.campaigns import DealSegmentPageSchema, DealSegmentRequestSchema
from crmhub.contracts.catalog import StockChangedSchema
from crmhub.contracts.contacts import (
    ContactCreatedSchema,
    ContactListSchema,
    ContactSchema,
    ContactsMergedSchema,
    ContactUpdatedSchema,
)
from crmhub.contracts.errors import CrmhubError, InvalidInput, NotFound
from crmhub.runtime.db import Database
from crmhub.runtime.handlers import batch_handler, reliable_handler
from crmhub.runtime.logs import LogContext
from crmhub.runtime.rpc import RpcProxy
from crmhub.runtime.timer import DueTimerWakeup, due_timer
from crmhub.services.deals import arrivals, callbacks, erp, logic, segments
from crmhub.services.deals.models import metadata

EXPECTED = (CrmhubError,)



def _dump(schema_cls, value):
    return instance(schema_cls).dump(value)


class DealsService:
    name = "deals"

    config = Config()
    db = Database(metadata)
    contacts = RpcProxy("contacts")
    log_ctx = LogContext()
    # Wakes fire_reminders early when this process schedules a task sooner than it sleeps.
    wake_reminders = DueTimerWakeup()

    def _lead_rules(self):
        return logic.config_rules(self.config.get("LEAD_RULES"))

    def _card(self, contact_id):
        """The client card (a merged id resolves to the surviving card); InvalidInput if none."""
        try:
            return instance(ContactSchema).load(self.contacts.get_contact(contact_id))
        except NotFound:
            raise InvalidInput(f"contact_id: no client card {contact_id!r}",
                               {"contact_id": [f"no client card {contact_id!r}"]}) from None

    # -- pipelines -----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_pipelines(self):
        with self.db.connect() as conn:
            return _dump(schemas.PipelineListSchema, {"items": logic.list_pipelines(conn)})

    @rpc(expected_exceptions=EXPECTED)
    def get_pipeline(self, pipeline_id):
        with self.db.connect() as conn:
            return _dump(schemas.PipelineSchema, logic.load_pipeline(conn, str(pipeline_id)))

    @rpc(expected_exceptions=EXPECTED)
    def create_pipeline(self, data):
        data = load_input(schemas.PipelineInputSchema, data)
        with self.db.transaction() as tx:
            return _dump(schemas.PipelineSchema, logic.create_pipeline(tx, data))

    @rpc(expected_exceptions=EXPECTED)
    def list_templates(self):
        with self.db.connect() as conn:
            return _dump(schemas.TemplateListSchema, {"items": logic.list_templates(conn)})

    @rpc(expected_exceptions=EXPECTED)
    def load_template(self, name):
        with self.db.transaction() as tx:
            pipeline, created = logic.load_template(tx, str(name))
        return _dump(schemas.TemplateLoadedSchema, {"pipeline": pipeline, "created": created})

    @rpc(expected_exceptions=EXPECTED)
    def set_pipeline_managers(self, pipeline_id, request):
        request = load_input(schemas.PipelineManagersSchema, request)
        with self.db.transaction() as tx:
            pipeline = logic.set_pipeline_managers(tx, str(pipeline_id), request["managers"])
        return _dump(schemas.PipelineSchema, pipeline)

    # -- managers ------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_managers(self):
        with self.db.connect() as conn:
            return _dump(schemas.ManagerListSchema, {"items": logic.list_managers(conn)})

    @rpc(expected_exceptions=EXPECTED)
    def put_manager(self, manager_id, data):
        data = load_input(schemas.ManagerInputSchema, data)
        with self.db.transaction() as tx:
            return _dump(schemas.ManagerSchema, logic.put_manager(tx, str(manager_id), data))

    # -- deals ---------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def search_deals(self, query=None):
        params = load_input(schemas.DealQuerySchema, query)
        with self.db.connect() as conn:
            return _dump(schemas.DealPageSchema, logic.search_deals(conn, **params))

    @rpc(expected_exceptions=EXPECTED)
    def open_deals(self, request=None):
        params = load_input(schemas.OpenDealsRequestSchema, request)
        with self.db.connect() as conn:
            return _dump(schemas.OpenDealsPageSchema, logic.open_deals(conn, **params))

    @rpc(expected_exceptions=EXPECTED)
    def board(self, pipeline_id, per_stage=20, manager=None):
        params = load_input(schemas.BoardQuerySchema, {"per_stage": per_stage, "manager": manager})
        with self.db.connect() as conn:
            return _dump(schemas.BoardSchema, logic.board(conn, str(pipeline_id), **params))

    @rpc(expected_exceptions=EXPECTED)
    def segment_contacts(self, request):
        """Card ids with an open deal in a pipeline (and stage): a campaign segment's part."""
        request = load_input(DealSegmentRequestSchema, request)
        with self.db.connect() as conn:
            page = segments.contacts_with_open_deal(conn, request["pipeline_id"],
                                                    request["stage_key"], request["after_id"],
                                                    request["limit"])
        return _dump(DealSegmentPageSchema, page)

    @rpc(expected_exceptions=EXPECTED)
    def get_deal(self, deal_id):
        with self.db.connect() as conn:
            return _dump(schemas.DealCardSchema, logic.load_deal_card(conn, str(deal_id)))

    @rpc(expected_exceptions=EXPECTED)
    def create_deal(self, data, actor=None):
        data = load_input(schemas.DealInputSchema, data)
        card = self._card(data["contact_id"])
        data.update(contact_id=card["id"], title=data.get("title") or logic.contact_name(card),
                    contact_name=logic.contact_name(card), contact_synced_at=card["updated_at"])
        with self.db.transaction() as tx:
            deal_id = logic.create_deal(tx, data, actor=actor)["id"]
        return self.get_deal(deal_id)

    @rpc(expected_exceptions=EXPECTED)
    def update_deal(self, deal_id, patch, actor=None):
        patch = load_input(schemas.DealPatchSchema, patch)
        with self.db.transaction() as tx:
            logic.update_deal(tx, str(deal_id), patch, actor=actor)
        return self.get_deal(deal_id)

    @rpc(expected_exceptions=EXPECTED)
    def move_deal(self, deal_id, request, actor=None):
        request = load_input(schemas.MoveSchema, request)
        with self.db.transaction() as tx:
            logic.move_deal(tx, str(deal_id), request["stage_id"], actor=actor,
                            reason=request["reason"], expected_version=request["expected_version"])
        return self.get_deal(deal_id)

    # -- tasks ---------------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def search_tasks(self, query=None):
        params = load_input(schemas.TaskQuerySchema, query)
        with self.db.connect() as conn:
            return _dump(schemas.TaskPageSchema, logic.search_tasks(conn, **params))

    @rpc(expected_exceptions=EXPECTED)
    def get_task(self, task_id):
        with self.db.connect() as conn:
            return _dump(schemas.TaskSchema, logic.load_task(conn, str(task_id)))

    @rpc(expected_exceptions=EXPECTED)
    def create_task(self, data, actor=None):
        data = load_input(schemas.TaskInputSchema, data)
        if data.get("contact_id"):
            data["contact_id"] = self._card(data["contact_id"])["id"]
        with self.db.transaction() as tx:
            task = logic.create_task(tx, data, actor=actor)
        self.wake_reminders(task["due_at"])
        return _dump(schemas.TaskSchema, task)

    @rpc(expected_exceptions=EXPECTED)
    def update_task(self, task_id, patch, actor=None):
        patch = load_input(schemas.TaskPatchSchema, patch)
        with self.db.transaction() as tx:
            task = logic.update_task(tx, str(task_id), patch, actor)
        if task["reminded_at"] is None and not task["done"]:
            self.wake_reminders(task["due_at"])
        return _dump(schemas.TaskSchema, task)

    @due_timer("REMINDER_INTERVAL_SECONDS", default=5.0)
    def fire_reminders(self):
        """Publish task_due for every task that fell due (also while the service was down);
        returns when the next one falls due, which is when this runs again (or sooner if
        woken, or after REMINDER_INTERVAL_SECONDS at the latest: tasks of other processes)."""
        while True:
            with self.db.transaction() as tx:
                if len(logic.fire_due_reminders(tx)) < logic.REMINDER_BATCH:
                    break
        with self.db.connect() as conn:
            return logic.next_reminder_due(conn)

    # -- lead rules ----------------------------------------------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def list_lead_rules(self):
        with self.db.connect() as conn:
            rules = logic.list_lead_rules(conn, self._lead_rules())
        return _dump(schemas.LeadRuleListSchema, {"items": rules})

    @rpc(expected_exceptions=EXPECTED)
    def put_lead_rule(self, data):
        data = load_input(schemas.LeadRuleInputSchema, data)
        with self.db.transaction() as tx:
            return _dump(schemas.LeadRuleSchema, logic.put_lead_rule(tx, data))

    # New clients, not form submissions: contact_created carries the card id a deal needs
    # and fires once per client (a form from a known client is no new lead), whatever the
    # channel (form today, calls and messengers later, all through the card's source).
    # A batch per transaction: every new card passes here and most match no rule; a worker
    # and a transaction per card held a one-gateway mesh to ~520 forms/s instead of ~760/s.
    @batch_handler("contacts", ev.CONTACT_CREATED)
    def on_contact_created(self, deliveries):
        schema = instance(ContactCreatedSchema)
        events = [(schema.load(d.payload), d.request_id) for d in deliveries]
        rules = self._lead_rules()
        with self.db.transaction() as tx:
            api_rules = logic.api_lead_rules(tx.conn)
            opened = 0
            for event, request_id in events:
                tx.request_id = request_id
                opened += logic.apply_lead_rules(tx, event, rules, api_rules=api_rules) is not None
        if opened:
            self.wake_reminders()  # a first task may be due at once

    # The client's name on the deals (the board shows it without asking the contacts service).
    @reliable_handler("contacts", ev.CONTACT_UPDATED)
    def on_contact_updated(self, payload):
        event = instance(ContactUpdatedSchema).load(payload)
        with self.db.transaction() as tx:
            logic.sync_contact(tx, event["contact"])

    @reliable_handler("contacts", ev.CONTACTS_MERGED)
    def on_contacts_merged(self, payload):
        event = instance(ContactsMergedSchema).load(payload)
        with self.db.transaction() as tx:
            logic.move_contact(tx, event["source_id"], event["target_id"])

    # -- calls ---------------------------------------------------------------------------------
    @reliable_handler("telephony", ev.CALL_MISSED)
    def on_call_missed(self, payload):
        """A missed incoming call: a call-back task for the client's manager (or the line's
        queue), due soon, with its reminder."""
        event = instance(CallEventSchema).load(payload)
        call = event["call"]
        if call.get("direction") != "inbound" or not call.get("contact_id"):
            return
        try:
            card = self._card(call["contact_id"])
        except InvalidInput:
            card = {"manager": None}  # the card is gone: the call back still matters
        with self.db.transaction() as tx:
            task = callbacks.create_callback_task(tx, event, card.get("manager"),
                                                  self.config.get("TELEPHONY") or {})
        if task is not None:
            self.wake_reminders(task["due_at"])

    # -- goods arrival: deals waiting for a product move on when it comes in stock ------------
    @reliable_handler("catalog", ev.STOCK_CHANGED)
    def on_stock_changed(self, payload):
        """An import from 1C changed stock: the open deals waiting (a stage with
        on_goods_arrival) for a product that arrived move on, their managers get a task to
        tell the client, and goods_arrived is published; once per event and deal."""
        event = instance(StockChangedSchema).load(payload)
        if not any(item["arrived"] for item in event["items"]):
            return  # most stock changes are sales: no transaction for them
        with self.db.transaction() as tx:
            created = arrivals.handle_stock_changed(tx, event, self.config.get("CATALOG") or {})
        if created:
            self.wake_reminders(min(task["due_at"] for task in created))

    # -- orders exchanged with 1C (CommerceML 2, type=sale) -------------------------------------
    @rpc(expected_exceptions=EXPECTED)
    def orders_for_erp(self, limit=500):
        """Open deals with product lines changed since 1C last took them, as orders (the shape
        crmhub.plugins.onec.orders.orders_document takes once loaded with ErpOrderPageSchema),
        each with the version to confirm through mark_orders_exported."""
        params = load_input(schemas.ErpOrdersQuerySchema, {"limit": limit})
        zone = erp.time_zone(self.config.get("ERP"))
        with self.db.connect() as conn:
            orders = erp.pending_orders(conn, params["limit"], zone)
        contact_ids = list(dict.fromkeys(order["client"]["id"] for order in orders))
        if contact_ids:  # phones and emails: one call to the contacts service for them all
            erp.attach_clients(orders, instance(ContactListSchema).load(
                self.contacts.get_many(contact_ids)))
        return _dump(schemas.ErpOrderPageSchema, {"items": orders})

    @rpc(expected_exceptions=EXPECTED)
    def mark_orders_exported(self, items):
        """1C confirmed the orders sent (``[{"id", "version"}]``, or ``{"items": [...]}``): each
        deal still at that version is marked exported; one changed since goes out again."""
        request = load_input(schemas.ErpExportedSchema,
                             {"items": items} if isinstance(items, list) else items)
        with self.db.transaction() as tx:
            result = erp.mark_exported(tx, request["items"])
        return _dump(schemas.ErpExportResultSchema, result)

    @rpc(expected_exceptions=EXPECTED)
    def apply_erp_order_changes(self, request):
        """Order states 1C uploaded (``{"changes": [asdict(OrderChange), ...]}``)."""
        request = load_input(schemas.ErpOrderChangesSchema, request)
        with self.db.transaction() as tx:
            result = erp.apply_changes(tx, request["changes"], self.config.get("ERP") or {})
        return _dump(schemas.ErpChangesAppliedSchema, result)
