"""Email campaigns: per campaign, emails sent, delivered (sent minus bounced), bounced, and
the clients who opened, clicked or unsubscribed (each client once, merged cards as one).

A campaign counts in the period when its first email was sent; all its opens, clicks and
unsubscribes count with it.
"""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.runtime.db import insert_ignoring_conflicts
from crmhub.services.reporting.models import TIME, metadata
from crmhub.services.reporting.projections import aliases
from crmhub.services.reporting.projections.snapshots import (
    epoch_us,
    period_bounds,
    ratio,
    resolve_aliases,
    upsert_latest,
    utc,
    within,
)

TITLE = "Email campaigns"
DESCRIPTION = ("Per campaign: emails sent, delivered, bounced, and the clients who opened, "
               "clicked or unsubscribed.")
ID = sa.String(64)
# A bounce notice carries the sent email too: it outranks the sent snapshot in any order.
STAGES = {"email_sent": 1, "email_bounced": 2}
ACTIONS = {"campaign_email_opened": "opened", "campaign_link_clicked": "clicked",
           "campaign_unsubscribe_requested": "unsubscribed"}

emails = sa.Table(
    "campaign_emails", metadata,
    sa.Column("email_id", ID, primary_key=True),
    sa.Column("campaign_id", ID, nullable=False),
    sa.Column("contact_id", ID),
    sa.Column("sent_at", TIME),
    sa.Column("bounced", sa.Boolean, nullable=False),
    sa.Column("stage", sa.SmallInteger, nullable=False),
    sa.Column("updated_us", sa.BigInteger, nullable=False),
)
sa.Index("ix_campaign_emails_campaign", emails.c.campaign_id)

# Who acted on a campaign's email: one row per campaign, client and action.
actions = sa.Table(
    "campaign_actions", metadata,
    sa.Column("campaign_id", ID, primary_key=True),
    sa.Column("contact_id", ID, primary_key=True),
    sa.Column("action", sa.String(20), primary_key=True),
)

TABLES = [emails, actions]


def _apply_email(event_type: str):
    def apply(tx, events: list[dict]) -> None:
        rows = []
        for event in events:
            email = event["email"]
            if not email.get("campaign_id"):
                continue  # one email sent from a card: no campaign to count it in
            rows.append({
                "email_id": email["id"], "campaign_id": email["campaign_id"],
                "contact_id": email.get("contact_id"),
                "sent_at": utc(email.get("sent_at") or event["occurred_at"]),
                "bounced": event_type == "email_bounced" or email.get("status") == "bounced",
                "stage": STAGES[event_type], "updated_us": epoch_us(event["occurred_at"]),
            })
        upsert_latest(tx.conn, emails, rows, ["email_id"], ["stage", "updated_us"])
    apply.__name__ = f"apply_{event_type}"
    return apply


def _apply_action(event_type: str):
    def apply(tx, events: list[dict]) -> None:
        rows = sorted({(e["campaign_id"], e["contact_id"]) for e in events})
        if rows:
            insert_ignoring_conflicts(tx.conn, actions, [
                {"campaign_id": c, "contact_id": p, "action": ACTIONS[event_type]}
                for c, p in rows])
    apply.__name__ = f"apply_{event_type}"
    return apply


HANDLES = {
    **{event_type: _apply_email(event_type) for event_type in STAGES},
    **{event_type: _apply_action(event_type) for event_type in ACTIONS},
}


# -- report ------------------------------------------------------------------------------------

COLUMNS = [
    {"key": "campaign_id", "title": "Campaign", "kind": "text"},
    {"key": "first_sent_at", "title": "First sent", "kind": "date"},
    {"key": "sent", "title": "Sent", "kind": "int"},
    {"key": "delivered", "title": "Delivered", "kind": "int"},
    {"key": "bounced", "title": "Bounced", "kind": "int"},
    {"key": "opened", "title": "Opened", "kind": "int"},
    {"key": "clicked", "title": "Clicked", "kind": "int"},
    {"key": "unsubscribed", "title": "Unsubscribed", "kind": "int"},
    {"key": "open_rate", "title": "Open rate", "kind": "percent"},
    {"key": "click_rate", "title": "Click rate", "kind": "percent"},
]


def report(conn, filters: dict) -> dict:
    start, end = period_bounds(filters)
    first_sent = sa.func.min(emails.c.sent_at)
    query = (sa.select(emails.c.campaign_id, first_sent.label("first_sent_at"),
                       sa.func.count().label("sent"),
                       sa.func.sum(sa.case((emails.c.bounced, 1), else_=0)).label("bounced"))
             .group_by(emails.c.campaign_id))
    if start is not None or end is not None:
        query = query.having(sa.and_(*within(first_sent, start, end)))
    sent = {r.campaign_id: r for r in conn.execute(query)}

    merges = aliases.merges(conn)
    who: dict[tuple, set] = {}
    for campaign_id, contact_id, action in conn.execute(
            sa.select(actions).where(actions.c.campaign_id.in_(sorted(sent)))):
        client = resolve_aliases(merges, [contact_id])[contact_id]
        who.setdefault((campaign_id, action), set()).add(client)

    rows = []
    for campaign_id, r in sorted(sent.items(), key=lambda item: (item[1].first_sent_at,
                                                                  item[0]), reverse=True):
        delivered = r.sent - (r.bounced or 0)
        counts = {a: len(who.get((campaign_id, a), ())) for a in ACTIONS.values()}
        rows.append({
            "campaign_id": campaign_id,
            "first_sent_at": utc(r.first_sent_at).date().isoformat() if r.first_sent_at else None,
            "sent": r.sent, "delivered": delivered, "bounced": r.bounced or 0, **counts,
            "open_rate": ratio(counts["opened"], delivered),
            "click_rate": ratio(counts["clicked"], delivered),
        })
    totals = {k: sum(r[k] for r in rows) for k in
              ("sent", "delivered", "bounced", "opened", "clicked", "unsubscribed")}
    return {
        "report": "campaigns", "title": TITLE, "filters": filters,
        "columns": COLUMNS, "rows": rows[:int(filters.get("limit") or len(rows))],
        "chart": {"type": "bar", "x": "campaign_id",
                  "y": ["delivered", "opened", "clicked", "bounced", "unsubscribed"]},
        "summary": {**totals, "campaigns": len(rows),
                    "open_rate": ratio(totals["opened"], totals["delivered"]),
                    "click_rate": ratio(totals["clicked"], totals["delivered"])},
    }
