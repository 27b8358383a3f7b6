"""`crmhub reports rebuild|show`: straight to the reporting database, hub running or not."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager

from crmhub.contracts import reporting as schemas
from crmhub.contracts.base import instance, load_input
from crmhub.runtime.db import ServiceDatabase, make_engine
from crmhub.runtime.migrate import upgrade
from crmhub.services.reporting import journal, reports
from crmhub.services.reporting.models import metadata


@contextmanager
def reporting_database(config: dict):
    upgrade(config, "reporting")
    engine = make_engine(config, "reporting")
    try:
        yield ServiceDatabase(engine, metadata, "reporting")
    finally:
        engine.dispose()


def rebuild(config: dict, out=sys.stderr, workers: int | None = None) -> dict:
    with reporting_database(config) as db:
        def progress(done):
            print(f"\rreplayed {done} events", end="", file=out, flush=True)
        result = journal.rebuild(db, progress=progress, workers=workers)
    print(file=out)
    return result


def show(config: dict, name: str, filters: dict, fmt: str = "json") -> str:
    from crmhub.services.gateway.report_render import report_csv

    filters = load_input(schemas.ReportFiltersSchema, filters)
    with reporting_database(config) as db, db.connect() as conn:
        report = instance(schemas.ReportSchema).dump(reports.build(conn, name, filters))
    return report_csv(report) if fmt == "csv" else json.dumps(report, indent=2, ensure_ascii=False)
