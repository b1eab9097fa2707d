"""Backorders filled as stock arrives — or is released by a cancellation or an expiry — in
the transaction that brings it.

Every arrival that may fill backorders — an adjustment `received`/`correction` upwards
(`services/inventory.adjust`), a replenishment received (`services/replenishments`), a
resellable return (`services/returns.receive`) — does, in one transaction:

1. `lock_waiting_orders`: the orders with backordered lines of the arriving products whose
   channel sells from the location (`scoping.sells_from_sql`, the one rule), locked in id
   order *before* the stock levels — orders before levels, the order every path locks in;
2. the arrival itself, through the one stock path;
3. `fill_backorders`: the location's available units go to those lines, oldest order
   first (`domain/backorders.plan_fills`); each filled unit is reserved there (a ledger
   row, `cause_type=order`, reason `backorder_filled`), the line's `quantity_backordered`
   falls as its `quantity_reserved` rises, the order records `order.backorder_filled`, and a
   confirmed order is allocated if auto-allocation is on (`services/automation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from oms_api.domain import events as E
from oms_api.domain.backorders import WAITING_STATUSES, Waiting, plan_fills
from oms_api.domain.shipments import ReservationBook
from oms_api.services.automation import allocate_if_automatic
from oms_api.services.order_state import record_order_events
from oms_api.services.reservations import change_lines, load_held, write_book
from oms_api.services.scoping import sells_from_sql
from oms_api.services.stock import lock_levels, move_stock, stock_move

# The waiting orders, locked. `FOR UPDATE` re-checks the status of an order that changed
# while this waited for it (a cancelled one is skipped). `{lock}`: `FOR UPDATE`, or with
# `SKIP LOCKED` where the caller already holds stock levels (released units, below).
WAITING_ORDERS_SQL = f"""
SELECT o.id FROM orders o
WHERE o.id IN (
    SELECT l.order_id FROM order_lines l JOIN orders w ON w.id = l.order_id
    WHERE l.product_id = ANY($2::text[]) AND l.quantity_backordered > 0
      AND w.status = ANY($3::text[]) AND {sells_from_sql("w.channel_id", "$1")}
) AND o.status = ANY($3::text[])
ORDER BY o.id
FOR UPDATE OF o{{skip}}
"""

# Their backordered lines of those products: oldest order first (ids are time-ordered),
# each order's lines in order.
WAITING_LINES_SQL = """
SELECT l.id, l.order_id, l.product_id, l.sku, l.quantity_backordered, o.status
FROM order_lines l JOIN orders o ON o.id = l.order_id
WHERE l.order_id = ANY($1::text[]) AND l.product_id = ANY($2::text[])
  AND l.quantity_backordered > 0
ORDER BY l.order_id, l.position
"""


WAIT_FOR_LOCKED = WAITING_ORDERS_SQL.format(skip="")
SKIP_LOCKED = WAITING_ORDERS_SQL.format(skip=" SKIP LOCKED")


async def lock_waiting_orders(
    conn: asyncpg.Connection, location_id: str, product_ids: Sequence[str], *,
    skip_locked: bool = False,
) -> list[str]:  # fmt: skip
    """Step 1: the orders whose backorders stock of `product_ids` arriving at
    `location_id` may fill, locked. Call it before the arrival locks the levels — or, when
    the levels are locked already, with `skip_locked` (an order busy elsewhere waits for
    the next arrival: waiting for it here could deadlock)."""
    if not product_ids:
        return []
    rows = await conn.fetch(
        SKIP_LOCKED if skip_locked else WAIT_FOR_LOCKED, location_id, sorted(set(product_ids)),
        list(WAITING_STATUSES),
    )  # fmt: skip
    return [r["id"] for r in rows]


async def fill_backorders(
    conn: asyncpg.Connection, location_id: str, product_ids: Sequence[str], waiting: list[str]
) -> list[str]:
    """Step 3, once the stock has arrived: reserve the location's available units of
    `product_ids` for the `waiting` orders' backordered lines; the ids of the orders
    filled (each has recorded `order.backorder_filled`)."""
    if not waiting:
        return []
    products = sorted(set(product_ids))
    lines = await conn.fetch(WAITING_LINES_SQL, waiting, products)
    levels = await lock_levels(conn, [(p, location_id) for p in products])  # held already
    fills: list[tuple[Any, int]] = []
    for product_id in products:
        on_hand, reserved = levels.get((product_id, location_id), (0, 0))
        of_product = {r["id"]: r for r in lines if r["product_id"] == product_id}
        planned = plan_fills(
            on_hand - reserved,
            [
                Waiting(r["order_id"], r["id"], r["quantity_backordered"])
                for r in of_product.values()
            ],
        )
        fills += [(of_product[f.line_id], f.quantity) for f in planned]
    if not fills:
        return []
    await move_stock(conn, [
        stock_move(product_id=line["product_id"], location_id=location_id, sku=line["sku"],
                   reserved=quantity, reason="backorder_filled", cause_type="order",
                   cause_id=line["order_id"])
        for line, quantity in fills
    ])  # fmt: skip
    await change_lines(conn, [(line["id"], quantity, -quantity, 0) for line, quantity in fills])
    filled = sorted({line["order_id"] for line, _ in fills})
    for order_id in filled:
        book = ReservationBook(await load_held(conn, order_id))
        for line, quantity in fills:
            if line["order_id"] == order_id:
                book.reserve(line["id"], location_id, line["product_id"], quantity)
        await write_book(conn, book)
    statuses = {line["order_id"]: line["status"] for line, _ in fills}
    for order_id in filled:
        await record_order_events(conn, order_id, [E.ORDER_BACKORDER_FILLED])
        await allocate_if_automatic(conn, order_id, statuses[order_id])
    return filled


async def fill_from_released(conn: asyncpg.Connection, released: Sequence[tuple[str, str]]) -> None:
    """Units a cancellation or an expiry released at (product, location) `released` (their
    levels locked by the release) go to the backorders waiting there, as an arrival's do.
    Waiting orders locked elsewhere are passed over (they take the next arrival)."""
    by_location: dict[str, list[str]] = {}
    for product_id, location_id in released:
        by_location.setdefault(location_id, []).append(product_id)
    for location_id, product_ids in sorted(by_location.items()):
        waiting = await lock_waiting_orders(conn, location_id, product_ids, skip_locked=True)
        await fill_backorders(conn, location_id, product_ids, waiting)
