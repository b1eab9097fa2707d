"""Where each line's units are held (`order_reservations`), changed only here and only
together with the stock levels (through `services.stock`), so that per line the
reservations sum to `quantity_reserved` and per (product, location) to the level's
`reserved` — what `oms-api inventory verify` checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from oms_api.domain.inventory import StockMove
from oms_api.domain.shipments import Held, ReservationBook
from oms_api.services.stock import stock_move

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


async def release_unshipped(
    conn: asyncpg.Connection, *, order_id: str, reason: str
) -> list[StockMove]:
    """The moves that release every unit of the order reserved and not shipped (ledger
    `reason`, cause the order), its reservations and their levels locked. Apply them (with
    what they make possible: `services/backorders.plan_release_fills`), then
    `cancel_unshipped`. Open shipments must have been cancelled first (their units are back
    in reservations)."""
    held = await lock_order_reservations(conn, order_id)
    return [
        stock_move(
            product_id=r["product_id"], location_id=r["location_id"], sku=r["sku"],
            reserved=-r["quantity"], reason=reason, cause_type="order", cause_id=order_id,
        )
        for r in held
    ]  # fmt: skip


async def cancel_unshipped(conn: asyncpg.Connection, order_id: str) -> None:
    """Every unit of the order not shipped counts as cancelled, reserved (released by
    `release_unshipped`'s moves) or backordered; its reservations are gone."""
    await conn.execute(CANCEL_UNSHIPPED_SQL, order_id)


HELD_SQL = """
SELECT r.line_id, r.location_id, r.product_id, r.quantity, r.quantity_in_shipments,
       loc.priority
FROM order_lines l
JOIN order_reservations r ON r.line_id = l.id
JOIN locations loc ON loc.id = r.location_id
WHERE l.order_id = $1
ORDER BY l.position, r.location_id
"""

WRITE_RESERVATIONS_SQL = """
INSERT INTO order_reservations AS r (line_id, location_id, product_id, quantity,
                                     quantity_in_shipments)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[])
ON CONFLICT (line_id, location_id) DO UPDATE
SET quantity = excluded.quantity, quantity_in_shipments = excluded.quantity_in_shipments
"""

DELETE_RESERVATIONS_SQL = """
DELETE FROM order_reservations r
USING unnest($1::text[], $2::text[]) AS k(line_id, location_id)
WHERE r.line_id = k.line_id AND r.location_id = k.location_id
"""

# Units change place on their lines: reserved → shipped, or between reserved and
# backordered; the CHECK keeps every unit counted once. A line may come more than once (a
# backorder filled at two locations): its changes are summed first, as UPDATE … FROM would
# apply only one of them.
CHANGE_LINES_SQL = """
UPDATE order_lines l
SET quantity_reserved = l.quantity_reserved + d.reserved,
    quantity_backordered = l.quantity_backordered + d.backordered,
    quantity_shipped = l.quantity_shipped + d.shipped
FROM (
    SELECT line_id, sum(reserved) AS reserved, sum(backordered) AS backordered,
           sum(shipped) AS shipped
    FROM unnest($1::text[], $2::int[], $3::int[], $4::int[]) AS u(line_id, reserved,
                                                                  backordered, shipped)
    GROUP BY line_id
) AS d
WHERE l.id = d.line_id
"""


async def load_held(conn: asyncpg.Connection, order_id: str) -> list[Held]:
    """The order's reservations (the order's row lock keeps them from changing)."""
    return [
        Held(r["line_id"], r["location_id"], r["product_id"], r["quantity"],
             r["quantity_in_shipments"], r["priority"])
        for r in await conn.fetch(HELD_SQL, order_id)
    ]  # fmt: skip


async def write_book(conn: asyncpg.Connection, book: ReservationBook) -> None:
    upserts, deletes = book.changes()
    if deletes:
        await conn.execute(
            DELETE_RESERVATIONS_SQL, [k[0] for k in deletes], [k[1] for k in deletes]
        )
    if upserts:
        columns = ("line_id", "location_id", "product_id", "quantity", "quantity_in_shipments")
        await conn.execute(WRITE_RESERVATIONS_SQL, *([u[c] for u in upserts] for c in columns))


async def change_lines(
    conn: asyncpg.Connection, deltas: Sequence[tuple[str, int, int, int]]
) -> None:
    """`deltas`: (line_id, reserved, backordered, shipped) changes."""
    if deltas:
        await conn.execute(CHANGE_LINES_SQL, *([d[i] for d in deltas] for i in range(4)))
