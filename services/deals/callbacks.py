"""Missed calls become call-back tasks: the one thing a call center must not lose."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crmhub.runtime.db import utcnow
from crmhub.services.deals.logic import create_task
from crmhub.services.deals.models import deals

DEFAULT_TITLE = "Call back: missed call from {number}"
DEFAULT_DUE_MINUTES = 15


def _open_deal(conn, contact_id: str):
    """The client's most recently active open deal."""
    return conn.execute(sa.select(deals.c.id, deals.c.manager).where(
        deals.c.contact_id == contact_id, deals.c.status == "open")
        .order_by(deals.c.updated_at.desc()).limit(1)).first()


def callback_manager(call: dict, card_manager: str | None, deal_manager: str | None,
                     settings: dict) -> str | None:
    """Who calls back: the client's responsible manager, else the manager of their open deal,
    else the queue of the line the call came in on (TELEPHONY.lines), else the default queue
    (TELEPHONY.missed_call_queue), else the manager whose extension rang."""
    line_settings = (settings.get("lines") or {}).get(call.get("line") or "") or {}
    return (card_manager or deal_manager or line_settings.get("queue")
            or settings.get("missed_call_queue") or call.get("manager"))


def create_callback_task(tx, event: dict, card_manager: str | None, settings: dict,
                         now: dt.datetime | None = None) -> dict | None:
    """A call-back task for a missed incoming call from a client with a card; once per call
    (a redelivered call_missed creates nothing). Returns the task or None."""
    call = event["call"]
    if call.get("direction") != "inbound" or not call.get("contact_id"):
        return None
    if not tx.claim(f"callback:{call['id']}"):
        return None
    deal = _open_deal(tx.conn, call["contact_id"])
    manager = callback_manager(call, card_manager, deal.manager if deal else None, settings)
    number = call.get("client_number") or call.get("client_number_raw") or "unknown number"
    due = (now or utcnow()) + dt.timedelta(
        minutes=int(settings.get("callback_due_minutes", DEFAULT_DUE_MINUTES)))
    title = (settings.get("callback_task_title") or DEFAULT_TITLE).format(number=number)
    return create_task(tx, {"title": title, "manager": manager, "due_at": due,
                            "contact_id": call["contact_id"],
                            "deal_id": deal.id if deal else None},
                       actor=f"missed_call:{call['id']}", check_manager=False)
