"""Serving reports: the catalog, filters in, the common report shape out; ingestion metrics."""
from __future__ import annotations

from prometheus_client import Counter

from crmhub.contracts.errors import NotFound
from crmhub.services.reporting.projections import REPORTS

EVENTS_RECEIVED = Counter("crmhub_reporting_events_total",
                          "Events delivered to the reporting service", ["event_type"])
EVENTS_APPLIED = Counter("crmhub_reporting_events_applied_total",
                         "Events journaled and applied (duplicates excluded)", ["event_type"])


def count_ingested(event_type: str, received: int, fresh: int) -> None:
    EVENTS_RECEIVED.labels(event_type).inc(received)
    EVENTS_APPLIED.labels(event_type).inc(fresh)


def catalog() -> list[dict]:
    return [{"name": name, "title": module.TITLE, "description": module.DESCRIPTION}
            for name, module in REPORTS.items()]


def build(conn, name: str, filters: dict) -> dict:
    """Report ``name`` under ``filters`` (loaded by ReportFiltersSchema)."""
    module = REPORTS.get(name)
    if module is None:
        raise NotFound(f"no report {name!r}; known: {', '.join(REPORTS)}")
    report = module.report(conn, filters)
    report.setdefault("report", name)
    report.setdefault("title", module.TITLE)
    report["filters"] = filters
    return report
