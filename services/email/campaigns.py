"""The rules of email campaigns: drafts, sending (recipients materialised from the segment,
then queued at the campaign's rate), cancelling, and the metrics.

Plain functions over a ``Transaction`` or a connection; the segment comes in as pages (see
campaign_segments.py), so they run without a broker in tests.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import math

import sqlalchemy as sa
import structlog

from crmhub.contracts.base import instance
from crmhub.contracts.campaigns import SegmentSchema
from crmhub.contracts.errors import Conflict, InvalidInput, NotFound
from crmhub.runtime.db import as_utc, insert_ignoring_conflicts, insert_new_rows, new_id, utcnow
from crmhub.services.email import consent
from crmhub.services.email.campaign_models import (
    campaign_clicks,
    campaign_opens,
    campaign_recipients,
    campaign_unsubscribes,
    campaigns,
)
from crmhub.services.email.campaign_render import CampaignTemplate, campaign_email
from crmhub.services.email.models import outgoing_emails
from crmhub.services.email.outgoing import queue_emails
from crmhub.services.email.tracking import Links

log = structlog.get_logger(__name__)

#: How many seconds of the rate may be queued at once after a pause (a restart, a slow run on
#: a busy machine): enough to make up a late run, too little to flood after an outage.
BURST_SECONDS = 5.0
#: Recipients rendered and queued per transaction at most.
DISPATCH_BATCH = 2000


def idempotency_key(campaign_id: str, contact_id: str) -> str:
    return f"campaign:{campaign_id}:{contact_id}"


# -- reading ---------------------------------------------------------------------------------

def _public(row) -> dict:
    pending = row.recipients - row.queued - row.skipped
    return {
        "id": row.id, "name": row.name, "segment": row.segment,
        "template": {"subject": row.subject, "text": row.text_body, "html": row.html_body},
        "rate_per_minute": row.rate_per_minute, "status": row.status,
        "created_by": row.created_by, "created_at": as_utc(row.created_at),
        "started_at": as_utc(row.started_at), "finished_at": as_utc(row.finished_at),
        "counters": {"recipients": row.recipients, "excluded_no_consent": row.excluded_no_consent,
                     "queued": row.queued, "skipped": row.skipped,
                     "pending": pending if row.status == "sending" else 0},
    }


def _row(conn, campaign_id: str, lock: bool = False):
    query = sa.select(campaigns).where(campaigns.c.id == campaign_id)
    row = conn.execute(query.with_for_update() if lock else query).first()
    if row is None:
        raise NotFound(f"campaign {campaign_id} not found")
    return row


def load(conn, campaign_id: str) -> dict:
    return _public(_row(conn, campaign_id))


def list_all(conn) -> list[dict]:
    rows = conn.execute(sa.select(campaigns).order_by(campaigns.c.created_at.desc(),
                                                      campaigns.c.id)).all()
    return [_public(row) for row in rows]


def as_template_source(campaign: dict) -> dict:
    """A campaign (public form) as campaign_render reads it."""
    template = campaign["template"]
    return {"subject": template["subject"], "text_body": template["text"],
            "html_body": template.get("html")}


# -- drafts ----------------------------------------------------------------------------------

def create(tx, data: dict) -> dict:
    template = data["template"]
    CampaignTemplate(as_template_source(data))  # refuses a broken template now
    campaign_id = new_id()
    tx.execute(campaigns.insert().values(
        id=campaign_id, name=data["name"], segment=instance(SegmentSchema).dump(data["segment"]),
        subject=template["subject"], text_body=template["text"], html_body=template.get("html"),
        rate_per_minute=data["rate_per_minute"], status="draft",
        created_by=data.get("created_by"), created_at=utcnow()))
    return load(tx.conn, campaign_id)


def preview(conn, segment_pages) -> dict:
    """How many clients of the segment would get it now, how many lack consent, and the
    first of them (``sample_member``: whose email the preview shows)."""
    matching = excluded = 0
    sample_member = None
    for members, _ in segment_pages:
        allowed = consent.granted(conn, [m["id"] for m in members])
        matching += len(allowed)
        excluded += len(members) - len(allowed)
        if sample_member is None:
            sample_member = next((m for m in members if m["id"] in allowed), None)
    return {"matching": matching, "excluded_no_consent": excluded,
            "sample_member": sample_member}


def render_sample(campaign: dict, member: dict, links: Links) -> dict:
    email = campaign_email(CampaignTemplate(as_template_source(campaign)), member, links)
    return {"to": member["email"], "subject": email["subject"], "text": email["text"],
            "html": email["html"], "headers": email["headers"]}


def start(tx, campaign_id: str) -> dict:
    """draft -> sending: the dispatcher materialises the recipients and queues them."""
    row = _row(tx.conn, campaign_id, lock=True)
    if row.status == "sending":
        return _public(row)  # a repeated click sends nothing twice
    if row.status != "draft":
        raise Conflict(f"campaign {campaign_id} is {row.status}; only a draft can be sent")
    now = utcnow()
    tx.execute(campaigns.update().where(campaigns.c.id == campaign_id)
               .values(status="sending", started_at=now, credit=0.0, credit_at=now))
    return load(tx.conn, campaign_id)


def cancel(tx, campaign_id: str) -> dict:
    """Stop queuing: what is pending stays unsent (what was queued already goes out)."""
    row = _row(tx.conn, campaign_id, lock=True)
    if row.status in ("done", "cancelled"):
        raise Conflict(f"campaign {campaign_id} is already {row.status}")
    tx.execute(campaigns.update().where(campaigns.c.id == campaign_id)
               .values(status="cancelled", finished_at=utcnow()))
    return load(tx.conn, campaign_id)


# -- materialising the recipients -------------------------------------------------------------

def campaigns_to_materialize(conn) -> list[dict]:
    rows = conn.execute(sa.select(campaigns.c.id, campaigns.c.segment, campaigns.c.materialize_after)
                        .where(campaigns.c.status == "sending", campaigns.c.materialized.is_(False))
                        .order_by(campaigns.c.started_at)).all()
    return [{"id": r.id, "segment": r.segment, "after": r.materialize_after} for r in rows]


def add_recipients(tx, campaign_id: str, expected_after: str | None, members: list[dict],
                   next_after: str | None) -> bool:
    """Store one page of the segment (consenting clients only) and move the cursor; False if
    another worker took this page meanwhile (the cursor moved) or the campaign stopped."""
    row = _row(tx.conn, campaign_id, lock=True)
    if row.status != "sending" or row.materialized or row.materialize_after != expected_after:
        return False
    allowed = consent.granted(tx.conn, [m["id"] for m in members])
    rows = [{"campaign_id": campaign_id, "contact_id": m["id"], "email": m["email"],
             "fields": {k: m.get(k) for k in ("name", "company", "manager", "tags", "custom_fields")},
             "state": "pending"} for m in members if m["id"] in allowed]
    # Multi-row INSERTs (RETURNING what was new): a page is a few statements, not 5,000.
    added = len(insert_new_rows(tx.conn, campaign_recipients, rows,
                                ["campaign_id", "contact_id"], campaign_recipients.c.contact_id))
    values = {"recipients": campaigns.c.recipients + added,
              "excluded_no_consent": campaigns.c.excluded_no_consent + len(members) - len(allowed),
              "materialize_after": next_after if next_after is not None else expected_after,
              "materialized": next_after is None}
    if next_after is None:  # queuing starts now, with an empty bucket
        values.update(credit=0.0, credit_at=utcnow())
    tx.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(**values))
    return True


# -- queuing at the rate -----------------------------------------------------------------------

def refill(credit: float, credit_at: dt.datetime | None, now: dt.datetime, rate_per_minute: int,
           burst_seconds: float = BURST_SECONDS) -> float:
    """Token bucket: the emails that may be queued now. It fills at the rate and holds at most
    ``burst_seconds`` of it (at least one email), so a pause is not made up in a flood."""
    per_second = rate_per_minute / 60.0
    elapsed = max(0.0, (now - credit_at).total_seconds()) if credit_at else 0.0
    return min(max(1.0, per_second * burst_seconds), credit + elapsed * per_second)


def sending_campaign_ids(conn) -> list[str]:
    """Campaigns ready to queue: sending, with every recipient materialised (queuing waits for
    the whole list, so the counts are final and the two never contend for the campaign row)."""
    return list(conn.execute(sa.select(campaigns.c.id).where(
        campaigns.c.status == "sending", campaigns.c.materialized.is_(True))
        .order_by(campaigns.c.started_at)).scalars())


def dispatch(tx, campaign_id: str, links_for, now: dt.datetime | None = None,
             burst_seconds: float = BURST_SECONDS, from_addr: str | None = None) -> dict:
    """Queue as many pending recipients of one campaign as its rate allows now, each checked
    for consent again (withdrawn: skipped), rendered and tracked; the idempotency key per
    recipient makes a repeated run queue nothing twice. ``links_for(campaign_id, contact_id)``
    gives the tracking links. Finishes the campaign when every recipient is through."""
    now = now or utcnow()
    row = _row(tx.conn, campaign_id, lock=True)
    if row.status != "sending" or not row.materialized:
        return {"queued": 0, "skipped": 0, "finished": False}
    credit = refill(row.credit, as_utc(row.credit_at), now, row.rate_per_minute, burst_seconds)
    take = min(int(math.floor(credit)), DISPATCH_BATCH)
    batch = []
    if take > 0:
        has_consent = consent.granted_clause(campaign_recipients.c.contact_id).label("consent")
        query = (sa.select(campaign_recipients.c.contact_id, campaign_recipients.c.email,
                           campaign_recipients.c.fields, has_consent)
                 .where(campaign_recipients.c.campaign_id == campaign_id,
                        campaign_recipients.c.state == "pending")
                 .order_by(campaign_recipients.c.contact_id).limit(take))
        batch = tx.execute(query).all()
    withdrawn = [r.contact_id for r in batch if not r.consent]
    template = CampaignTemplate(row._mapping) if len(withdrawn) < len(batch) else None
    emails, queued_ids, failed = [], [], []
    for recipient in batch:
        if not recipient.consent:
            continue
        member = {"id": recipient.contact_id, "email": recipient.email, **recipient.fields}
        try:
            email = campaign_email(template, member, links_for(campaign_id, recipient.contact_id))
        except InvalidInput as exc:  # this client's fields break the template: not sent
            log.warning("campaign email not rendered", campaign_id=campaign_id,
                        contact_id=recipient.contact_id, error=exc.message)
            failed.append(recipient.contact_id)
            continue
        queued_ids.append(recipient.contact_id)
        emails.append({"to_addr": recipient.email, "subject": email["subject"],
                       "text_body": email["text"], "html_body": email["html"],
                       "headers": email["headers"], "contact_id": recipient.contact_id,
                       "campaign_id": campaign_id, "from_addr": from_addr,
                       "idempotency_key": idempotency_key(campaign_id, recipient.contact_id)})
    if emails:
        queue_emails(tx, emails)
    _set_state(tx, campaign_id, queued_ids, "queued", now)
    _set_state(tx, campaign_id, withdrawn + failed, "skipped", None)
    values = {"credit": max(0.0, credit - len(queued_ids)), "credit_at": now,
              "queued": campaigns.c.queued + len(queued_ids),
              "skipped": campaigns.c.skipped + len(withdrawn) + len(failed)}
    if len(batch) < take:
        left = tx.execute(sa.select(sa.func.count()).select_from(campaign_recipients).where(
            campaign_recipients.c.campaign_id == campaign_id,
            campaign_recipients.c.state == "pending")).scalar()
        if not left:
            values.update(status="done", finished_at=now)
    tx.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(**values))
    return {"queued": len(queued_ids), "skipped": len(withdrawn) + len(failed),
            "finished": values.get("status") == "done"}


def _set_state(tx, campaign_id: str, contact_ids: list[str], state: str, at) -> None:
    for start_at in range(0, len(contact_ids), 5000):
        tx.execute(campaign_recipients.update().where(
            campaign_recipients.c.campaign_id == campaign_id,
            campaign_recipients.c.contact_id.in_(contact_ids[start_at:start_at + 5000]))
            .values(state=state, queued_at=at))


# -- tracking --------------------------------------------------------------------------------

def record_open(tx, campaign_id: str, contact_id: str, at: dt.datetime) -> None:
    first = insert_ignoring_conflicts(tx.conn, campaign_opens, [{
        "campaign_id": campaign_id, "contact_id": contact_id, "first_at": at, "count": 1}])
    if not first:
        tx.execute(campaign_opens.update().where(campaign_opens.c.campaign_id == campaign_id,
                                                 campaign_opens.c.contact_id == contact_id)
                   .values(count=campaign_opens.c.count + 1))


def record_click(tx, campaign_id: str, contact_id: str, url: str, at: dt.datetime) -> None:
    digest = hashlib.sha256(url.encode()).hexdigest()
    first = insert_ignoring_conflicts(tx.conn, campaign_clicks, [{
        "campaign_id": campaign_id, "url_digest": digest, "contact_id": contact_id, "url": url,
        "first_at": at, "count": 1}])
    if not first:
        tx.execute(campaign_clicks.update().where(
            campaign_clicks.c.campaign_id == campaign_id, campaign_clicks.c.url_digest == digest,
            campaign_clicks.c.contact_id == contact_id).values(count=campaign_clicks.c.count + 1))
    # A click proves the email was opened, images blocked or not.
    insert_ignoring_conflicts(tx.conn, campaign_opens, [{
        "campaign_id": campaign_id, "contact_id": contact_id, "first_at": at, "count": 1}])


def record_unsubscribe(tx, campaign_id: str, contact_id: str, at: dt.datetime) -> None:
    consent.record(tx, contact_id, "email", "withdrawn", consent.UNSUBSCRIBE_SOURCE, at)
    insert_ignoring_conflicts(tx.conn, campaign_unsubscribes, [{
        "campaign_id": campaign_id, "contact_id": contact_id, "at": at}])


# -- metrics ---------------------------------------------------------------------------------

def metrics(conn, campaign_id: str) -> dict:
    row = _row(conn, campaign_id)
    by_status = dict(conn.execute(
        sa.select(outgoing_emails.c.status, sa.func.count())
        .where(outgoing_emails.c.campaign_id == campaign_id)
        .group_by(outgoing_emails.c.status)).all())
    bounced = by_status.get("bounced", 0)
    sent = by_status.get("sent", 0) + bounced  # a bounce was sent first
    opened = conn.execute(sa.select(sa.func.count()).select_from(campaign_opens)
                          .where(campaign_opens.c.campaign_id == campaign_id)).scalar()
    unsubscribed = conn.execute(sa.select(sa.func.count()).select_from(campaign_unsubscribes)
                                .where(campaign_unsubscribes.c.campaign_id == campaign_id)).scalar()
    clicks = conn.execute(
        sa.select(sa.func.min(campaign_clicks.c.url).label("url"),
                  sa.func.sum(campaign_clicks.c.count).label("clicks"),
                  sa.func.count().label("clients"))
        .where(campaign_clicks.c.campaign_id == campaign_id)
        .group_by(campaign_clicks.c.url_digest)).all()
    delivered = sent - bounced
    return {
        "campaign_id": campaign_id, "status": row.status, "recipients": row.recipients,
        "queued": row.queued, "sent": sent, "failed": by_status.get("failed", 0),
        "bounced": bounced, "opened": opened, "unsubscribed": unsubscribed,
        "open_rate": round(opened / delivered, 4) if delivered else 0.0,
        "bounce_rate": round(bounced / sent, 4) if sent else 0.0,
        "clicks": sorted(({"url": c.url, "clicks": int(c.clicks), "clients": c.clients}
                          for c in clicks), key=lambda c: (-c["clicks"], c["url"])),
    }
