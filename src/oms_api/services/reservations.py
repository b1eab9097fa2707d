"""Where each line's units are held (`order_reservations`), changed only here and only
together with the stock levels (through `services.stock`), so that per line the
reservations sum to `quantity_reserved` and per (product, location) to the level's
`reserved` — what `oms-api inventory verify` checks.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from oms_api.services.stock import move_stock, stock_move

# The order's reservations with their stock levels, both locked in (product, location)
# order — the order every stock path locks in.
LOCK_ORDER_RESERVATIONS_SQL = """
SELECT r.line_id, r.location_id, r.product_id, r.quantity, r.quantity_in_shipments, l.sku
FROM order_reservations r
JOIN order_lines l ON l.id = r.line_id
JOIN inventory_levels il ON il.product_id = r.product_id AND il.location_id = r.location_id
WHERE l.order_id = $1
ORDER BY r.product_id, r.location_id, r.line_id
FOR UPDATE OF il, r
"""

CANCEL_UNSHIPPED_SQL = """
WITH gone AS (
    DELETE FROM order_reservations r USING order_lines l WHERE l.id = r.line_id AND l.order_id = $1
)
UPDATE order_lines
SET quantity_cancelled = quantity_cancelled + quantity_reserved + quantity_backordered,
    quantity_reserved = 0, quantity_backordered = 0
WHERE order_id = $1 AND (quantity_reserved > 0 OR quantity_backordered > 0)
"""


async def lock_order_reservations(conn: asyncpg.Connection, order_id: str) -> list[Any]:
    return list(await conn.fetch(LOCK_ORDER_RESERVATIONS_SQL, order_id))


async def cancel_unshipped(conn: asyncpg.Connection, *, order_id: str, reason: str) -> None:
    """Cancel every unit of the order not shipped: its reservations are released (ledger
    `reason`, cause the order) and they, with the backordered units, count as cancelled.
    Open shipments must have been cancelled first (their units are back in reservations)."""
    held = await lock_order_reservations(conn, order_id)
    await move_stock(
        conn,
        [
            stock_move(
                product_id=r["product_id"], location_id=r["location_id"], sku=r["sku"],
                reserved=-r["quantity"], reason=reason, cause_type="order", cause_id=order_id,
            )
            for r in held
        ],
    )  # fmt: skip
    await conn.execute(CANCEL_UNSHIPPED_SQL, order_id)
