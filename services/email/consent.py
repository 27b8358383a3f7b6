"""Client consent per channel: the status in force and every change, for the record.

A campaign asks :func:`granted` both when its recipients are materialised and again when each
email is queued: a client who withdrew in between gets nothing.
"""
from __future__ import annotations

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.campaigns import ConsentChangedSchema
from crmhub.runtime.db import as_utc, utcnow
from crmhub.services.email.campaign_models import consent_history, consents

UNSUBSCRIBE_SOURCE = "unsubscribe-link"


def _public(row) -> dict:
    return {"contact_id": row.contact_id, "channel": row.channel, "status": row.status,
            "at": as_utc(row.at), "source": row.source}


def record(tx, contact_id: str, channel: str, status: str, source: str, at=None) -> dict:
    """Record what the client said; the history keeps every statement, the status in force is
    the latest by ``at`` (a statement dated before the one in force changes only the history)."""
    at = at or utcnow()
    now = utcnow()
    tx.execute(consent_history.insert().values(
        contact_id=contact_id, channel=channel, status=status, at=at, source=source,
        recorded_at=now))
    current = tx.execute(sa.select(consents).where(
        consents.c.contact_id == contact_id, consents.c.channel == channel)
        .with_for_update()).first()
    consent = {"contact_id": contact_id, "channel": channel, "status": status, "at": at,
               "source": source}
    if current is None:
        tx.execute(consents.insert().values(**consent))
    elif as_utc(current.at) <= at:
        tx.execute(consents.update().where(consents.c.contact_id == contact_id,
                                           consents.c.channel == channel)
                   .values(status=status, at=at, source=source))
    else:
        return _public(current)
    previous = current.status if current is not None else None
    if previous != status:
        tx.emit(ev.CONSENT_CHANGED, new_event(ConsentChangedSchema, consent=consent,
                                              previous_status=previous))
    return consent


def move_to_merged_card(tx, source_id: str, target_id: str) -> None:
    """Card ``source_id`` was merged into ``target_id``: its statements become the target's.
    Per channel the latest statement of the two cards is in force. Running it again finds
    nothing left on the source card."""
    tx.execute(consent_history.update().where(consent_history.c.contact_id == source_id)
               .values(contact_id=target_id))
    moved = tx.execute(sa.select(consents).where(consents.c.contact_id == source_id)).all()
    tx.execute(consents.delete().where(consents.c.contact_id == source_id))
    for row in moved:
        current = tx.execute(sa.select(consents).where(
            consents.c.contact_id == target_id, consents.c.channel == row.channel)).first()
        if current is not None and as_utc(current.at) >= as_utc(row.at):
            continue
        statement = {"status": row.status, "at": as_utc(row.at), "source": row.source}
        if current is None:
            tx.execute(consents.insert().values(contact_id=target_id, channel=row.channel,
                                                **statement))
        else:
            tx.execute(consents.update().where(consents.c.contact_id == target_id,
                                               consents.c.channel == row.channel)
                       .values(**statement))
        previous = current.status if current is not None else None
        if previous != row.status:
            tx.emit(ev.CONSENT_CHANGED, new_event(
                ConsentChangedSchema, previous_status=previous,
                consent={"contact_id": target_id, "channel": row.channel, **statement}))


def of_contact(conn, contact_id: str) -> dict:
    current = conn.execute(sa.select(consents).where(consents.c.contact_id == contact_id)
                           .order_by(consents.c.channel)).all()
    history = conn.execute(sa.select(consent_history)
                           .where(consent_history.c.contact_id == contact_id)
                           .order_by(consent_history.c.id.desc())).all()
    return {"contact_id": contact_id, "consents": [_public(r) for r in current],
            "history": [_public(r) for r in history]}


def granted(conn, contact_ids: list[str], channel: str = "email") -> set[str]:
    """Those of ``contact_ids`` whose consent on ``channel`` is granted now."""
    found: set[str] = set()
    ids = list(contact_ids)
    for start in range(0, len(ids), 5000):
        found.update(conn.execute(sa.select(consents.c.contact_id).where(
            consents.c.channel == channel, consents.c.status == "granted",
            consents.c.contact_id.in_(ids[start:start + 5000]))).scalars())
    return found


def granted_clause(contact_id_column, channel: str = "email"):
    """SQL: the card in ``contact_id_column`` has granted consent on ``channel``."""
    return sa.exists().where(consents.c.contact_id == contact_id_column,
                             consents.c.channel == channel, consents.c.status == "granted")
