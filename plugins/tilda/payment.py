"""Tilda cart orders: the ``payment`` field, a JSON string with ``orderid``, ``amount`` and
``products`` (objects with ``name``, ``quantity``, ``price``, ``amount``; older shops send
plain strings)."""
from __future__ import annotations

import json


def read_payment(raw: str | None) -> dict | None:
    """The order of a cart form; None when absent or unreadable (the lead is kept anyway)."""
    if not raw:
        return None
    try:
        payment = json.loads(raw)
    except ValueError:
        return None
    return payment if isinstance(payment, dict) else None


def payment_fields(payment: dict | None) -> dict[str, str]:
    """The order's amount and products, as extra ``fields`` of the submission."""
    if not payment:
        return {}
    fields = {}
    if payment.get("amount") is not None:
        fields["payment_amount"] = str(payment["amount"])
    if payment.get("products"):
        fields["payment_products"] = json.dumps(payment["products"], ensure_ascii=False)
    return fields


def summary(payment: dict) -> str:
    """One line for a manager: ``Order 1234: Coffee × 2; Tea × 1. Total: 1500``."""
    text = f"Order {payment['orderid']}" if payment.get("orderid") else "Order"
    items = [_item(product) for product in payment.get("products") or []]
    if items:
        text += ": " + "; ".join(items)
    if payment.get("amount") is not None:
        text += f". Total: {payment['amount']}"
    return text


def _item(product) -> str:
    if isinstance(product, dict):
        name = product.get("name") or product.get("sku") or "item"
        return f"{name} × {product.get('quantity', 1)}"
    return str(product)
