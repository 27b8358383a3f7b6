"""Goods arrival: a deal waiting in a stage with ``on_goods_arrival`` (the distribution
template's "supplier invoice received") moves on by itself when a product of its lines arrives
in stock, and its manager is told to call the client.

The catalog publishes ``stock_changed`` with up to 1,000 rows per event, few of them arrivals;
few deals wait at any time. So the waiting deals are read once per event (one query: open
deals of the stages that wait) and matched with the arrivals in Python.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.deals import GoodsArrivedSchema
from crmhub.runtime.db import utcnow
from crmhub.services.deals.logic import create_task, load_deal, move_deal
from crmhub.services.deals.models import deals, stages

ACTOR = "1c: goods arrived"
DEFAULT_DUE_MINUTES = 60
TASK_TITLE = "Товар поступил на склад: {products} — сообщите клиенту"
MAX_NAMES = 5  # a title names this many products, then "и ещё N"


def _base(offer_id: str) -> str:
    """The product of an offer: '<product>#<characteristic>' -> '<product>'."""
    return offer_id.partition("#")[0]


def index_arrivals(items: list[dict]) -> dict[str, list[dict]]:
    """The arrived rows of a stock_changed event by every id a deal line may hold: the offer
    (a product, or one characteristic of it) and its product (a line that names the bare
    product waits for any of its characteristics)."""
    by_id: dict[str, list[dict]] = {}
    for item in items:
        if not item.get("arrived"):
            continue
        for key in dict.fromkeys((item["offer_id"], item.get("product_id") or "",
                                  _base(item["offer_id"]))):
            if key:
                by_id.setdefault(key, []).append(item)
    return by_id


def waiting_deals(conn) -> list:
    """Open deals sitting in a stage that waits for goods, with the stage they move to: one
    query (the stages that wait are few; their open deals are ranges of ix_deals_open_board)."""
    target = stages.alias("target")
    return conn.execute(
        sa.select(deals.c.id, deals.c.stage_id, deals.c.products, deals.c.manager,
                  deals.c.contact_id, target.c.id.label("target_id"))
        .select_from(stages.join(deals, sa.and_(deals.c.pipeline_id == stages.c.pipeline_id,
                                               deals.c.stage_id == stages.c.id))
                     .join(target, sa.and_(target.c.pipeline_id == stages.c.pipeline_id,
                                           target.c.key == stages.c.on_goods_arrival)))
        .where(stages.c.on_goods_arrival.is_not(None), deals.c.status == "open")
        .order_by(deals.c.id)).all()


def match_lines(products: list[dict], by_id: dict[str, list[dict]]) -> list[dict]:
    """The arrivals a deal's lines wait for, as goods_arrived items (one per offer and
    warehouse), named after the deal's line."""
    out: dict[tuple[str, str], dict] = {}
    for line in products or []:
        for item in by_id.get(line.get("product_id") or "", ()):
            out.setdefault((item["offer_id"], item["warehouse_id"]), {
                "offer_id": item["offer_id"], "product_id": item["product_id"],
                "name": line.get("name") or line["sku"], "warehouse_id": item["warehouse_id"],
                "quantity": item["quantity"]})
    return list(out.values())


def product_names(items: list[dict]) -> str:
    names = list(dict.fromkeys(item["name"] for item in items))
    if len(names) > MAX_NAMES:
        return ", ".join(names[:MAX_NAMES]) + f" и ещё {len(names) - MAX_NAMES}"
    return ", ".join(names)


def handle_stock_changed(tx, event: dict, settings: dict | None = None,
                         now: dt.datetime | None = None) -> list[dict]:
    """Move every open deal waiting for a product that arrived (``stock_changed`` rows with
    ``arrived``) to its stage's ``on_goods_arrival`` stage, set its manager a task to tell the
    client, and publish ``goods_arrived``; all in the caller's transaction.

    Once per event and deal (claimed in the inbox), and only while the deal still waits in
    that stage: a redelivered event changes nothing. Returns the tasks created."""
    by_id = index_arrivals(event["items"])
    if not by_id:
        return []
    settings = settings or {}
    due = (now or utcnow()) + dt.timedelta(
        minutes=int(settings.get("arrival_task_due_minutes", DEFAULT_DUE_MINUTES)))
    created = []
    for row in waiting_deals(tx.conn):  # by deal id: concurrent events lock in one order
        items = match_lines(row.products, by_id)
        if not items or not tx.claim(f"goods_arrived:{event['event_id']}:{row.id}"):
            continue
        # Still waiting there? (Read without a lock: it may have moved meanwhile.)
        current = tx.execute(sa.select(deals.c.stage_id, deals.c.status)
                             .where(deals.c.id == row.id).with_for_update()).first()
        if current is None or (current.stage_id, current.status) != (row.stage_id, "open"):
            continue
        names = product_names(items)
        move_deal(tx, row.id, row.target_id, actor=ACTOR, reason=f"Товар поступил на склад: {names}")
        created.append(create_task(tx, {
            "title": TASK_TITLE.format(products=names), "manager": row.manager,
            "due_at": due, "deal_id": row.id, "contact_id": row.contact_id},
            actor=ACTOR, check_manager=False))
        tx.emit(ev.GOODS_ARRIVED, new_event(GoodsArrivedSchema, deal=load_deal(tx.conn, row.id),
                                            items=items, import_id=event["import_id"]))
    return created
