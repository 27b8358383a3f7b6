"""Scripted histories for the reporting projections: events dumped by their contracts, fed
through the live path (``journal.ingest``) in the order a test chooses, and reports read back
before and after ``crmhub reports rebuild`` (``journal.rebuild``)."""
from __future__ import annotations

import datetime as dt
import json
import uuid

from crmhub.contracts import events as ev
from crmhub.contracts.base import instance, load_input
from crmhub.contracts.reporting import ReportFiltersSchema, ReportSchema
from crmhub.runtime.db import ServiceDatabase, make_engine

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(days=0, hours=0, minutes=0, seconds=0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def event(event_type: str, when: dt.datetime, event_id: str | None = None, **body) -> tuple:
    """(event type, payload) as the owner publishes it."""
    payload = instance(ev.spec(event_type).schema).dump(
        {"event_id": event_id or uuid.uuid4().hex, "occurred_at": when, **body})
    return event_type, payload


def contact(cid, created, source=None, name=None, manager=None, updated=None,
            event_type=ev.CONTACT_CREATED):
    body = {"contact": {"id": cid, "kind": "person", "name": name, "manager": manager,
                        "source": source, "created_at": created, "updated_at": updated or created}}
    body["cause" if event_type == ev.CONTACT_CREATED else "changed"] = (
        None if event_type == ev.CONTACT_CREATED else ["source"])
    return event(event_type, updated or created, **body)


def merged(source_id, target_id, when):
    return event(ev.CONTACTS_MERGED, when, source_id=source_id, target_id=target_id)


def deal(event_type, did, contact_id, version, created, when=None, status="open", amount=None,
         source=None, manager="anna", pipeline="sales", closed=None, stage_id=1):
    when = when or created
    body = {"deal": {
        "id": did, "title": f"Deal {did}", "contact_id": contact_id, "pipeline_id": pipeline,
        "pipeline_name": pipeline, "stage_id": stage_id, "stage_name": f"stage {stage_id}",
        "status": status, "manager": manager, "amount": amount, "currency": "RUB",
        "source": source, "version": version, "created_at": created, "updated_at": when,
        "closed_at": closed}}
    if event_type == ev.DEAL_CREATED:
        body["cause"] = "api"
    elif event_type == ev.DEAL_UPDATED:
        body["changed"] = ["amount"]
    else:
        body["change"] = {"id": version, "deal_id": did, "to_stage_id": stage_id,
                          "to_stage_name": f"stage {stage_id}", "version": version,
                          "changed_at": when}
    return event(event_type, when, **body)


def call(event_type, cid, started, number, direction="inbound", answered=None, ended=None,
         outcome=None, duration=None, manager="anna", updated=None):
    status = {ev.CALL_RINGING: "ringing", ev.CALL_ANSWERED: "answered"}.get(event_type, "finished")
    body = {"call": {
        "id": cid, "provider": "mango", "call_key": cid, "direction": direction,
        "status": status, "outcome": outcome, "client_number": number, "manager": manager,
        "created_at": started, "answered_at": answered, "ended_at": ended,
        "duration_s": duration, "updated_at": updated or ended or answered or started}}
    if event_type == ev.CALL_RINGING:
        body.update(extensions=["101"], managers=[manager],
                    caller={"contact_id": None, "known": False, "number": number})
    return event(event_type, updated or ended or answered or started, **body)


def email(event_type, eid, campaign_id, contact_id, sent, bounced=None):
    body = {"email": {
        "id": eid, "contact_id": contact_id, "campaign_id": campaign_id,
        "to_addr": f"{contact_id}@example.com", "subject": "Spring sale",
        "message_id": f"<{eid}@hub>", "thread_id": eid,
        "status": "bounced" if event_type == ev.EMAIL_BOUNCED else "sent", "attempts": 1,
        "created_at": sent, "sent_at": sent, "bounced_at": bounced}}
    return event(event_type, bounced or sent, **body)


def tracked(event_type, campaign_id, contact_id, when, url=None):
    body = {"campaign_id": campaign_id, "contact_id": contact_id}
    if event_type == ev.CAMPAIGN_LINK_CLICKED:
        body["url"] = url or "https://shop.example/sale"
    return event(event_type, when, **body)


class ReportingDb:
    """The reporting service's database, migrated, driven the way the service drives it."""

    def __init__(self, config: dict):
        from crmhub.services.reporting.models import metadata

        self.config = config
        self.engine = make_engine(config, "reporting")
        self.db = ServiceDatabase(self.engine, metadata, "reporting")

    def feed(self, events) -> int:
        """Deliver events one batch per consecutive run of a type, as the live handlers do."""
        from crmhub.services.reporting import journal

        fresh = 0
        batch: list = []
        for event_type, payload in list(events) + [(None, None)]:
            if batch and event_type != batch[0][0]:
                with self.db.transaction() as tx:
                    fresh += journal.ingest(tx, batch[0][0], [p for _, p in batch])
                batch = []
            if event_type is not None:
                batch.append((event_type, payload))
        return fresh

    def report(self, name: str, **filters) -> dict:
        from crmhub.services.reporting import reports

        loaded = load_input(ReportFiltersSchema, filters)
        with self.db.connect() as conn:
            # Through the contract, as the RPC answers it: plain JSON (no Decimal, no datetime).
            dumped = instance(ReportSchema).dump(reports.build(conn, name, loaded))
        return json.loads(json.dumps(dumped))

    def rebuild(self, **options) -> dict:
        from crmhub.services.reporting import journal

        return journal.rebuild(self.db, **options)

    def dispose(self):
        self.engine.dispose()


def rows_by(report: dict, key: str) -> dict:
    return {row[key]: row for row in report["rows"]}
