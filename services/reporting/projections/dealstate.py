"""Per-deal state shared by the funnel and managers projections.

A deal's record holds every stage change seen for it (keyed by change id, so a replayed or
repeated event changes nothing) and the attributes of its newest snapshot (greatest deal
``version``), so the record is the same whatever order the events came in.
"""
from __future__ import annotations

from crmhub.services.reporting.projections.snapshots import cents, utc

CREATION = "c"  # the key of the visit a deal_created event records


def source_key(source: dict | None) -> str:
    """The one source a deal or card is counted under: utm_source, else the connector, else
    the channel ('' when unknown)."""
    source = source or {}
    tracking = source.get("tracking") or {}
    return tracking.get("utm_source") or source.get("connector") or source.get("channel") or ""


def visit_of(event: dict) -> tuple[str, list] | None:
    """(change key, [stage_id, at epoch seconds]) of the stage visit the event records."""
    deal, change = event["deal"], event.get("change")
    if change is not None:
        return str(change["id"]), [change["to_stage_id"], utc(change["changed_at"]).timestamp()]
    if "cause" in event:  # deal_created (deal_updated records no visit)
        return CREATION, [deal["stage_id"], utc(deal["created_at"]).timestamp()]
    return None


def stage_of(deal: dict) -> tuple[str, list]:
    """(stage id, [position, kind]) of the deal's current stage, as its snapshot tells."""
    position = deal.get("stage_position")
    return str(deal["stage_id"]), [deal["stage_id"] if position is None else position,
                                   deal["status"]]


def attributes(deal: dict) -> dict:
    created = utc(deal["created_at"])
    return {
        "pipeline_id": deal["pipeline_id"], "manager": deal.get("manager") or "",
        "source": source_key(deal.get("source")), "contact_id": deal.get("contact_id"),
        "created_at": created, "created_day": created.date(), "status": deal["status"],
        "amount_cents": cents(deal.get("amount")), "closed_at": utc(deal.get("closed_at")),
        "version": deal["version"],
    }


def merge(record: dict | None, events: list[dict]) -> dict:
    """The record after ``events`` (all of one deal)."""
    record = dict(record) if record else {"visits": {}, "stages": {}, "version": -1}
    visits, stages = dict(record["visits"]), dict(record["stages"])
    for event in events:
        visit = visit_of(event)
        if visit is not None:
            visits.setdefault(*visit)
        stage, place = stage_of(event["deal"])
        stages.setdefault(stage, place)
        if event["deal"]["version"] > record["version"]:
            record.update(attributes(event["deal"]))
    record["visits"], record["stages"] = visits, stages
    return record


def ordered_visits(visits: dict) -> list[list]:
    """Visits by time; the creation first among equals, then by change id."""
    def order(item):
        key, value = item
        return value[1], key != CREATION, int(key) if key != CREATION else 0
    return [value for _, value in sorted(visits.items(), key=order)]
