"""Reading the catalog: offers with their product's data, prices and stock."""
from __future__ import annotations

import json
from decimal import Decimal

import sqlalchemy as sa

from crmhub.runtime.db import as_utc, is_postgres
from crmhub.services.catalog.models import (
    groups,
    offers,
    price_types,
    prices,
    products,
    properties,
    stock,
    warehouses,
)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_products(conn, q=None, ids=None, in_stock=False, include_inactive=False, limit=20,
                    offset=0) -> dict:
    """A page of offers: by part of the name or by article (exact or prefix), or by ids."""
    query = sa.select(offers.c.id).order_by(offers.c.name, offers.c.id)
    if ids is not None:
        query = query.where(offers.c.id.in_(ids))
    if not include_inactive:
        query = query.where(offers.c.active)
    if q and q.strip():
        text = _like_escape(q.strip().lower())
        name = (offers.c.name.ilike(f"%{text}%", escape="\\") if is_postgres(conn)
                else sa.func.casefold(offers.c.name).like(f"%{text}%", escape="\\"))
        query = query.where(sa.or_(sa.func.lower(offers.c.article).like(f"{text}%", escape="\\"), name))
    if in_stock:
        query = query.where(sa.exists().where(stock.c.offer_id == offers.c.id, stock.c.quantity > 0))
    found = conn.execute(query.limit(limit + 1).offset(offset)).scalars().all()
    return {"items": load_offers(conn, found[:limit]), "limit": limit, "offset": offset,
            "more": len(found) > limit}


def load_offers(conn, ids: list[str]) -> list[dict]:
    """Offers in the order of ``ids`` (unknown ids are left out), four queries in all."""
    if not ids:
        return []
    rows = conn.execute(
        sa.select(offers, products.c.barcode, products.c.unit, products.c.group_ids,
                  products.c.properties, products.c.name.label("product_name"))
        .select_from(offers.outerjoin(products, products.c.id == offers.c.product_id))
        .where(offers.c.id.in_(ids))).all()
    price_rows = conn.execute(
        sa.select(prices, price_types.c.name.label("price_type"))
        .select_from(prices.outerjoin(price_types, price_types.c.id == prices.c.price_type_id))
        .where(prices.c.offer_id.in_(ids)).order_by(prices.c.price_type_id)).all()
    stock_rows = conn.execute(
        sa.select(stock, warehouses.c.name.label("warehouse"))
        .select_from(stock.outerjoin(warehouses, warehouses.c.id == stock.c.warehouse_id))
        .where(stock.c.offer_id.in_(ids)).order_by(stock.c.warehouse_id)).all()
    names = _reference_names(conn, rows)
    by_id = {}
    for row in rows:
        by_id[row.id] = {
            "id": row.id, "product_id": row.product_id, "characteristic_id": row.characteristic_id,
            "article": row.article, "barcode": row.barcode, "name": row.name, "unit": row.unit,
            "characteristics": json.loads(row.characteristics or "{}"),
            "groups": [names["groups"].get(g, g) for g in json.loads(row.group_ids or "[]")],
            "properties": _property_values(json.loads(row.properties or "{}"), names["properties"]),
            "active": row.active, "prices": [], "stock": [], "in_stock": Decimal(0),
            "updated_at": as_utc(row.updated_at)}
    for row in price_rows:
        by_id[row.offer_id]["prices"].append({"price_type_id": row.price_type_id,
                                              "price_type": row.price_type, "amount": row.amount,
                                              "currency": row.currency})
    for row in stock_rows:
        offer = by_id[row.offer_id]
        offer["stock"].append({"warehouse_id": row.warehouse_id, "warehouse": row.warehouse,
                               "quantity": row.quantity})
        offer["in_stock"] += Decimal(row.quantity)
    return [by_id[i] for i in ids if i in by_id]


def _reference_names(conn, rows) -> dict:
    group_ids = {g for row in rows for g in json.loads(row.group_ids or "[]")}
    property_ids = {p for row in rows for p in json.loads(row.properties or "{}")}
    group_names = dict(conn.execute(sa.select(groups.c.id, groups.c.name)
                                    .where(groups.c.id.in_(group_ids))).all()) if group_ids else {}
    props = {row.id: row for row in conn.execute(
        sa.select(properties).where(properties.c.id.in_(property_ids)))} if property_ids else {}
    return {"groups": group_names, "properties": props}


def _property_values(raw: dict, props: dict) -> dict:
    """Property id -> raw value, as name -> text (directory values resolved to their text)."""
    shown = {}
    for prop_id, value in raw.items():
        prop = props.get(prop_id)
        if prop is None:
            shown[prop_id] = value
        else:
            shown[prop.name] = (prop.vals or {}).get(value, value)
    return shown
