"""The order as the API returns it: one renderer for placement, reads, commands and
events, so a placement's response, a later GET and an event's `data` always agree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from oms_api.errors import NotFound

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
SQL_TIME_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime(TIME_FORMAT)


def order_document(
    row: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    allocations: Sequence[Mapping[str, Any]],
    payments: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """`row`: the orders row (plus `channel`, the channel's code). `lines` in position
    order, `allocations` by (sku, location_id), `payments` by id — each already in the
    document's shape."""
    return {
        "id": row["id"],
        "number": row["number"],
        "channel": row["channel"],
        "channel_id": row["channel_id"],
        "external_id": row["external_id"],
        "customer_id": row["customer_id"],
        "email": row["email_normalized"],
        "status": row["status"],
        "payment_status": row["payment_status"],
        "payment_method": row["payment_method"],
        "currency": row["currency"],
        "lines": list(lines),
        "allocations": list(allocations),
        "totals": {"subtotal": row["subtotal"], "shipping": row["shipping"], "total": row["total"]},
        "payment_amounts": {
            "authorized": row["authorized"],
            "captured": row["captured"],
            "refunded": row["refunded"],
            "voided": row["voided"],
        },
        "payments": list(payments),
        "risk": {"score": row["risk_score"], "reasons": list(row["risk_reasons"])},
        "shipping_address": row["shipping_address"],
        "billing_address": row["billing_address"],
        "note": row["note"],
        "metadata": row["metadata"],
        "hold_reason": row["hold_reason"],
        "cancel_reason": row["cancel_reason"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "confirmed_at": iso(row["confirmed_at"]),
        "cancelled_at": iso(row["cancelled_at"]),
        "expires_at": iso(row["expires_at"]),
        "version": row["version"],
    }


def line_document(
    *, id: str, sku: str, product_id: str, name: str, quantity: int, unit_price: int,
    quantity_shipped: int = 0, quantity_returned: int = 0, quantity_backordered: int = 0,
) -> dict[str, Any]:  # fmt: skip
    return {
        "id": id, "sku": sku, "product_id": product_id, "name": name, "quantity": quantity,
        "unit_price": unit_price, "total": quantity * unit_price,
        "quantity_shipped": quantity_shipped, "quantity_returned": quantity_returned,
        "quantity_backordered": quantity_backordered,
    }  # fmt: skip


# Reads every order matching a WHERE clause with its lines, allocations and payments, in
# one statement. Shapes match `order_document` exactly (times formatted like `iso`).
ORDER_SELECT = f"""
SELECT o.*, c.code AS channel,
  (SELECT coalesce(json_agg(json_build_object(
      'id', l.id, 'sku', l.sku, 'product_id', l.product_id, 'name', l.name,
      'quantity', l.quantity, 'unit_price', l.unit_price, 'total', l.quantity * l.unit_price,
      'quantity_shipped', l.quantity_shipped, 'quantity_returned', l.quantity_returned,
      'quantity_backordered', l.quantity_backordered) ORDER BY l.position), '[]')
   FROM order_lines l WHERE l.order_id = o.id) AS lines_json,
  (SELECT coalesce(json_agg(json_build_object(
      'sku', a.sku, 'location_id', a.location_id, 'quantity', a.quantity)
      ORDER BY a.sku, a.location_id), '[]')
   FROM order_allocations a WHERE a.order_id = o.id AND a.quantity > 0) AS allocations_json,
  (SELECT coalesce(json_agg(json_build_object(
      'id', p.id, 'kind', p.kind, 'amount', p.amount, 'reference', p.reference,
      'created_at', to_char(p.created_at AT TIME ZONE 'UTC', '{SQL_TIME_FORMAT}')) ORDER BY p.id), '[]')
   FROM payments p WHERE p.order_id = o.id) AS payments_json
FROM orders o JOIN channels c ON c.id = o.channel_id
"""


def document_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return order_document(row, row["lines_json"], row["allocations_json"], row["payments_json"])


async def load_orders(conn: asyncpg.Connection, order_ids: list[str]) -> list[dict[str, Any]]:
    """The documents of `order_ids`, newest first."""
    rows = await conn.fetch(
        ORDER_SELECT + " WHERE o.id = ANY($1::text[]) ORDER BY o.id DESC", order_ids
    )
    return [document_from_row(r) for r in rows]


async def load_order(
    conn: asyncpg.Connection, order_id: str, *, channel_id: str | None
) -> dict[str, Any]:
    """The order's document; 404 if missing or (for a channel-bound caller) not its own."""
    row = await conn.fetchrow(
        ORDER_SELECT + " WHERE o.id = $1 AND ($2::text IS NULL OR o.channel_id = $2)",
        order_id,
        channel_id,
    )
    if row is None:
        raise NotFound(f"No order with id {order_id}.")
    return document_from_row(row)
