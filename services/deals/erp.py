"""Orders exchanged with 1C (CommerceML 2, ``type=sale``): open deals with product lines go to
1C as orders, and what 1C says of them (its number, status, paid, shipped, cancelled) comes
back onto the deals.

Which deals go out: open ones with lines whose ``version`` is not the one 1C last confirmed
(``erp_exported_version``; null: never sent). 1C confirms what it took (``mark_orders_exported``
with the versions sent), so a deal changed between the query and the confirmation goes out again.
A change that came from 1C itself (its state stored, a move its status maps to) is not sent
back: the exported version follows it when the deal had nothing else pending.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

import sqlalchemy as sa

from crmhub.contracts import events as ev
from crmhub.contracts.base import new_event
from crmhub.contracts.deals import DealUpdatedSchema
from crmhub.runtime.db import as_utc, utcnow
from crmhub.services.deals.logic import _bump, _lock_deal, load_deal, load_deals, move_deal
from crmhub.services.deals.models import deals, managers, stage_changes, stages

ACTOR = "1c"
STATE_FIELDS = ("number", "status", "paid", "shipped", "cancelled")


def time_zone(settings: dict | None) -> dt.tzinfo:
    """``ERP.time_zone``: the shop's zone, in which 1C reads the orders' wall times."""
    name = (settings or {}).get("time_zone") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"ERP.time_zone: unknown time zone {name!r}") from None


# -- our orders for 1C -----------------------------------------------------------------------

def pending_orders(conn, limit: int = 500, zone: dt.tzinfo = dt.timezone.utc) -> list[dict]:
    """Open deals with product lines changed since 1C last took them (least recently changed
    first), as orders in the shape ``orders_document`` takes (``client`` holds the card id
    and the name the deal knows: see :func:`attach_clients`). Three queries."""
    ids = conn.execute(
        sa.select(deals.c.id)
        .where(deals.c.status == "open",
               sa.or_(deals.c.erp_exported_version.is_(None),
                      deals.c.erp_exported_version != deals.c.version),
               sa.func.json_array_length(deals.c.products) > 0)
        .order_by(deals.c.updated_at, deals.c.id).limit(limit)).scalars().all()
    found = load_deals(conn, ids)
    if not found:
        return []
    # The deal's first history row (its creation) gives a short number that never changes;
    # the last one, when it entered its stage.
    history = {r.deal_id: (r.first, as_utc(r.last)) for r in conn.execute(
        sa.select(stage_changes.c.deal_id, sa.func.min(stage_changes.c.id).label("first"),
                  sa.func.max(stage_changes.c.changed_at).label("last"))
        .where(stage_changes.c.deal_id.in_(ids)).group_by(stage_changes.c.deal_id))}
    names = dict(conn.execute(sa.select(managers.c.id, managers.c.name).where(
        managers.c.id.in_({d["manager"] for d in found if d["manager"]}))).all())
    orders = []
    for deal in found:
        first, entered = history.get(deal["id"], (None, None))
        orders.append({
            "id": deal["id"],
            "number": f"CRM-{first}" if first is not None else f"CRM-{deal['id'][:8].upper()}",
            "created_at": deal["created_at"].astimezone(zone),
            "currency": deal["currency"],
            "amount": deal["amount"],
            "comment": deal["title"],
            "status": deal["stage_name"],
            "status_changed_at": entered.astimezone(zone) if entered else None,
            "manager": names.get(deal["manager"], deal["manager"]),
            "client": {"id": deal["contact_id"], "name": deal["contact_name"] or deal["title"],
                       "phones": [], "emails": []},
            "lines": [{"product_id": line.get("product_id"), "sku": line["sku"],
                       "name": line.get("name"), "quantity": line["quantity"],
                       "price": line["price"]} for line in deal["products"]],
            "version": deal["version"],
        })
    return orders


def attach_clients(orders: list[dict], cards: dict) -> list[dict]:
    """Fill each order's client from ``contacts.get_many`` (loaded ContactListSchema): the
    card's name (or company), phones and emails. A card that is gone keeps the deal's name."""
    by_id = {card["id"]: card for card in cards.get("items") or []}
    resolved = cards.get("resolved") or {}
    for order in orders:
        client = order["client"]
        card = by_id.get(resolved.get(client["id"], client["id"]))
        if card is None:
            continue
        client.update(
            id=card["id"],
            name=card.get("name") or card.get("company") or client["name"],
            phones=[p.get("e164") or p["raw"] for p in card.get("phones") or [] if p.get("raw")
                    or p.get("e164")],
            emails=list(card.get("emails") or []))
    return orders


def mark_exported(tx, items: list[dict]) -> dict:
    """1C took these orders: each deal still at the version sent is marked exported at it; one
    that changed since (or is unknown) is returned as stale and goes out again."""
    marked, stale = 0, []
    for item in sorted(items, key=lambda i: i["id"]):
        done = tx.execute(deals.update().where(deals.c.id == item["id"],
                                               deals.c.version == item["version"])
                          .values(erp_exported_version=item["version"])).rowcount
        if done:
            marked += 1
        else:
            stale.append(item["id"])
    return {"marked": marked, "stale": stale}


# -- what 1C says of them --------------------------------------------------------------------

def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def status_stages(settings: dict | None) -> dict[str, str]:
    """``ERP.order_status_stages``: 1C status (text or id) -> stage key, keys normalized."""
    mapping = (settings or {}).get("order_status_stages") or {}
    if not isinstance(mapping, dict):
        raise ValueError("ERP.order_status_stages must map 1C statuses to stage keys")
    return {_norm(status): str(key) for status, key in mapping.items() if key}


def erp_state(change: dict, previous: dict | None) -> dict:
    """What 1C says of an order, over what it said before (a flag the file leaves out keeps
    its value)."""
    state = {name: (previous or {}).get(name) for name in STATE_FIELDS}
    said = {"number": change.get("erp_number") or change.get("number"),
            "status": change.get("status") or change.get("status_id"),
            "paid": change.get("paid"), "shipped": change.get("shipped"),
            "cancelled": change.get("cancelled")}
    state.update({name: value for name, value in said.items() if value is not None})
    return state


def _mapped_stage(conn, pipeline_id: str, change: dict, mapping: dict[str, str]):
    for said in (change.get("status"), change.get("status_id")):
        key = mapping.get(_norm(said)) if said else None
        if key is None:
            continue
        stage = conn.execute(sa.select(stages.c.id).where(stages.c.pipeline_id == pipeline_id,
                                                          stages.c.key == key)).first()
        if stage is not None:  # a key of another pipeline: not for this deal
            return stage.id
    return None


def apply_changes(tx, changes: list[dict], settings: dict | None = None,
                  now: dt.datetime | None = None) -> dict:
    """Order states 1C uploaded (``OrderChange`` dicts). For a deal: store 1C's number, status
    and flags in ``erp`` (``deal_updated`` with ``erp`` when that changed), and when its status
    is new and ``ERP.order_status_stages`` maps it to a stage of the deal's pipeline, move the
    deal there. Orders made in 1C (no such deal) are skipped and returned. A file applied twice
    changes nothing the second time."""
    mapping = status_stages(settings)
    now = now or utcnow()
    wanted = {c["order_id"] for c in changes if c.get("order_id") and len(c["order_id"]) <= 32}
    known = set(tx.execute(sa.select(deals.c.id).where(deals.c.id.in_(wanted))).scalars()) \
        if wanted else set()
    applied, unknown = 0, []
    # By deal: two uploads lock their deals in one order (the sort keeps a deal's own order).
    for change in sorted(changes, key=lambda c: c.get("order_id") or ""):
        deal_id = change.get("order_id")
        if deal_id not in known:
            label = deal_id or change.get("number")
            if label and label not in unknown:
                unknown.append(label)
            continue
        applied += 1
        _apply(tx, deal_id, change, mapping, now)
    return {"applied": applied, "unknown": unknown}


def _apply(tx, deal_id: str, change: dict, mapping: dict[str, str], now: dt.datetime) -> None:
    row = _lock_deal(tx, deal_id)
    nothing_pending = row.erp_exported_version == row.version
    previous = row.erp or {}
    state = erp_state(change, previous)
    if state != {name: previous.get(name) for name in STATE_FIELDS}:
        _bump(tx, row, now=now, erp={**state, "updated_at": now.isoformat()})
        tx.emit(ev.DEAL_UPDATED, new_event(DealUpdatedSchema, deal=load_deal(tx.conn, deal_id),
                                           changed=["erp"]))
    if state["status"] is not None and state["status"] != previous.get("status"):
        stage_id = _mapped_stage(tx.conn, row.pipeline_id, change, mapping)
        current = tx.execute(sa.select(deals.c.stage_id).where(deals.c.id == deal_id)).scalar()
        if stage_id is not None and stage_id != current:
            move_deal(tx, deal_id, stage_id, actor=ACTOR, reason=f"1C: {state['status']}")
    if nothing_pending:  # 1C knows what it told us: nothing to send back
        tx.execute(deals.update().where(deals.c.id == deal_id)
                   .values(erp_exported_version=deals.c.version))
