"""The order as the API returns it: one renderer, from rows, for placement, reads, commands
and events, so a placement's response, a later GET and an event's `data` always agree.

The SQL below reads rows as they are stored (`json_agg` of whole rows); only
`order_document` gives them the API's shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg

from oms_api.domain.payments import PaymentTotals, payment_in_force
from oms_api.errors import NotFound
from oms_api.jsonutil import iso
from oms_api.services.scoping import fence_sql


def line_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"], "sku": row["sku"], "product_id": row["product_id"],
        "name": row["name"], "quantity": row["quantity"], "unit_price": row["unit_price"],
        "total": row["quantity"] * row["unit_price"],
        "quantity_reserved": row["quantity_reserved"],
        "quantity_backordered": row["quantity_backordered"],
        "quantity_shipped": row["quantity_shipped"],
        "quantity_cancelled": row["quantity_cancelled"],
        "quantity_returned": row["quantity_returned"],
    }  # fmt: skip


def payment_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "kind": row["kind"], "amount": row["amount"],
            "reference": row["reference"], "created_at": iso(row["created_at"])}  # fmt: skip


def _allocations(
    line_docs: Sequence[Mapping[str, Any]], reservations: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The reservations in the document's shape, in line order, then by location."""
    at = {line["id"]: (i, line["sku"]) for i, line in enumerate(line_docs)}
    return sorted(
        (
            {"line_id": r["line_id"], "sku": at[r["line_id"]][1], "location_id": r["location_id"],
             "quantity": r["quantity"]}
            for r in reservations
        ),
        key=lambda a: (at[a["line_id"]][0], a["location_id"]),
    )  # fmt: skip


def _can_expire(row: Mapping[str, Any]) -> bool:
    """Whether housekeeping would cancel the order at `expires_at` (`expire_pending_orders`):
    pending, with no payment in force."""
    totals = PaymentTotals(
        authorized=row["authorized"], captured=row["captured"], refunded=row["refunded"],
        voided=row["voided"],
    )  # fmt: skip
    return row["status"] == "pending" and not payment_in_force(totals)


def order_document(
    row: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    reservations: Sequence[Mapping[str, Any]],
    payments: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """`row`: the orders row plus `channel` (the channel's code); `lines` in position
    order; `reservations` and `payments` as stored, in any order."""
    line_docs = [line_document(line) for line in lines]
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
        "return_status": row["return_status"],
        "currency": row["currency"],
        "lines": line_docs,
        "allocations": _allocations(line_docs, reservations) if reservations else [],
        "totals": {"subtotal": row["subtotal"], "shipping": row["shipping"], "total": row["total"]},
        "payment_amounts": {
            "authorized": row["authorized"],
            "captured": row["captured"],
            "refunded": row["refunded"],
            "voided": row["voided"],
        },
        "payments": [payment_document(p) for p in sorted(payments, key=lambda p: str(p["id"]))],
        "risk": {"score": row["risk_score"], "reasons": list(row["risk_reasons"])},
        "shipping_address": row["shipping_address"],
        "billing_address": row["billing_address"],
        "note": row["note"],
        "metadata": row["metadata"],
        "hold_reason": row["hold_reason"],
        "cancel_reason": row["cancel_reason"],
        "exchange_for_return_id": row["exchange_for_return_id"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "confirmed_at": iso(row["confirmed_at"]),
        "shipped_at": iso(row["shipped_at"]),
        "delivered_at": iso(row["delivered_at"]),
        "cancelled_at": iso(row["cancelled_at"]),
        "expires_at": iso(row["expires_at"]) if _can_expire(row) else None,
        "version": row["version"],
    }


# Every order matching a WHERE clause, with its lines, reservations and payments as stored,
# in one statement.
ORDER_SELECT = """
SELECT o.*, c.code AS channel,
  (SELECT json_agg(l ORDER BY l.position) FROM order_lines l WHERE l.order_id = o.id) AS lines_,
  (SELECT json_agg(r) FROM order_lines l JOIN order_reservations r ON r.line_id = l.id
   WHERE l.order_id = o.id) AS reservations_,
  (SELECT json_agg(p) FROM payments p WHERE p.order_id = o.id) AS payments_
FROM orders o JOIN channels c ON c.id = o.channel_id
"""


# The documents of a page of ids (`pagination.page_statement`), newest first.
ORDER_PAGE_SQL = ORDER_SELECT + " WHERE o.id = ANY(ARRAY({page})) ORDER BY o.id DESC"


def document_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return order_document(
        row, row["lines_"] or (), row["reservations_"] or (), row["payments_"] or ()
    )


async def load_order(
    conn: asyncpg.Connection, order_id: str, *, channel_id: str | None
) -> dict[str, Any]:
    """The order's document; 404 if missing or (for a channel-bound caller) not its own."""
    row = await conn.fetchrow(
        ORDER_SELECT + f" WHERE o.id = $1 AND {fence_sql('o.channel_id', 2)}",
        order_id,
        channel_id,
    )
    if row is None:
        raise NotFound(f"No order with id {order_id}.")
    return document_from_row(row)
