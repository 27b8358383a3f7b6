"""reporting: read models fed by the other services' events, and the reports served from them.

One batch handler per consumed event type (the types every projection's ``HANDLES`` names,
added to the class below), each journaling its batch and applying the new events.
"""
from nameko.dependency_providers import Config
from nameko.rpc import rpc

from crmhub.contracts import events as ev
from crmhub.contracts import reporting as schemas
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.errors import CrmhubError
from crmhub.runtime.db import Database
from crmhub.runtime.handlers import batch_handler
from crmhub.runtime.logs import LogContext
from crmhub.services.reporting import journal, projections, reports
from crmhub.services.reporting.models import metadata
from crmhub.services.reporting.projections import managers

EXPECTED = (CrmhubError,)


class ReportingService:
    name = "reporting"

    config = Config()
    db = Database(metadata)
    log_ctx = LogContext()

    def _ingest(self, event_type, deliveries):
        with self.db.transaction() as tx:
            fresh = journal.ingest(tx, event_type, [d.payload for d in deliveries])
        reports.count_ingested(event_type, len(deliveries), fresh)

    @rpc(expected_exceptions=EXPECTED)
    def list_reports(self):
        return instance(schemas.ReportListSchema).dump({"reports": reports.catalog()})

    @rpc(expected_exceptions=EXPECTED)
    def report(self, name, filters=None):
        filters = load_input(schemas.ReportFiltersSchema, filters)
        with self.db.connect() as conn:
            return instance(schemas.ReportSchema).dump(reports.build(conn, str(name), filters))

    @rpc(expected_exceptions=EXPECTED)
    def put_plan(self, manager, month, plan):
        key = load_input(schemas.PlanKeySchema, {"manager": manager, "month": month})
        plan = load_input(schemas.PlanInputSchema, plan)
        with self.db.transaction() as tx:
            saved = managers.put_plan(tx, key["manager"], key["month"], plan)
        return instance(schemas.PlanSchema).dump(saved)

    @rpc(expected_exceptions=EXPECTED)
    def list_plans(self, month):
        month = load_input(schemas.PlanKeySchema, {"manager": "-", "month": month})["month"]
        with self.db.connect() as conn:
            return instance(schemas.PlanListSchema).dump({"plans": managers.list_plans(conn, month)})

    @rpc(expected_exceptions=EXPECTED)
    def put_ad_spend(self, entry):
        from crmhub.services.reporting.projections import sources

        entry = load_input(schemas.AdSpendInputSchema, entry)
        with self.db.transaction() as tx:
            return instance(schemas.AdSpendSchema).dump(sources.put_ad_spend(tx, entry))

    @rpc(expected_exceptions=EXPECTED)
    def list_ad_spend(self):
        from crmhub.services.reporting.projections import sources

        with self.db.connect() as conn:
            return instance(schemas.AdSpendListSchema).dump(
                {"entries": sources.list_ad_spend(conn)})


def _handler(event_type: str):
    @batch_handler(ev.spec(event_type).owner, event_type, max_batch=1000, max_wait=0.1)
    def handle(self, deliveries):
        self._ingest(event_type, deliveries)

    handle.__name__ = f"on_{event_type}"
    return handle


for _event_type in projections.handled_event_types():
    setattr(ReportingService, f"on_{_event_type}", _handler(_event_type))
