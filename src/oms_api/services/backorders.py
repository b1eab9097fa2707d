"""Backorders filled as stock arrives — or is released by a cancellation or an expiry — in
the transaction that brings it.

Every arrival that may fill backorders — an adjustment `received`/`correction` upwards
(`services/inventory.adjust`), a replenishment received (`services/replenishments`), a
resellable return (`services/returns.receive`) — does, in one transaction:

1. `lock_waiting_orders`: the orders with backordered lines of the arriving products whose
   channel sells from the location (`scoping.sells_from_sql`, the one rule), locked in id
   order *before* the stock levels — orders before levels, the order every path locks in;
2. `plan_fills_at`: the levels locked, the waiting orders are read again — an order placed
   while this waited for the levels (its read held them, and saw none of the arrival) is
   committed by now, and found (`SKIP LOCKED`, the levels being held: one another request
   holds leaves the pair in `backorder_checks`); the location's available units, counting
   those arriving, go to those lines, oldest order first (`domain/backorders.plan_fills`);
3. the arrival and the reservations it makes possible, in one call of the stock path
   (`receive_stock`), so that the product's total available changes once, by the net
   amount: units that arrive and are reserved at once never look like a rise and a fall
   through the reorder point;
4. `record_fills`: each line's `quantity_backordered` falls as its `quantity_reserved`
   rises, the reservations are written, the order's version rises, it records
   `order.backorder_filled`, and a confirmed one is allocated if auto-allocation is on
   (`services/automation`).

A cancellation or an expiry does the same with the units it releases
(`plan_release_fills`), in the call of the stock path that releases them: it holds the
levels already, so it does step 2 alone.

An order placed while stock arrives at a location of its channel where its read found no
level (none existed yet, or one was made after it read) cannot see that stock, nor can the
arrival see it when it commits after the arrival's step 2: a placement that backorders
notes those places in `backorder_checks` before it writes (`note_unseen_places`).

Housekeeping fills from what is still available at each noted place (`fill_passed_over`),
and waits for nothing while it holds the pairs it claimed (a busy level or order: the pair
is noted again) — so a request that notes a pair never waits for a pass that waits for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from oms_api.domain import events as E
from oms_api.domain.backorders import WAITING_STATUSES, Waiting, plan_fills
from oms_api.domain.inventory import StockMove
from oms_api.domain.shipments import ReservationBook
from oms_api.services.automation import allocate_if_automatic
from oms_api.services.order_state import record_order_events
from oms_api.services.reservations import change_lines, load_held, write_book
from oms_api.services.scoping import sells_from_sql
from oms_api.services.stock import lock_levels, move_stock, stock_move

# The orders with backordered lines of these products ($2) whose channel sells from the
# location ($1), in a waiting state ($3).
WAITING_IDS_SQL = f"""
SELECT DISTINCT l.order_id FROM order_lines l JOIN orders w ON w.id = l.order_id
WHERE l.product_id = ANY($2::text[]) AND l.quantity_backordered > 0
  AND w.status = ANY($3::text[]) AND {sells_from_sql("w.channel_id", "$1")}
"""
# The same orders, locked in id order. `FOR UPDATE` re-checks the status of an order that
# changed while this waited for it (a cancelled one is skipped).
WAITING_ORDERS_SQL = f"""
SELECT o.id FROM orders o
WHERE o.id IN ({WAITING_IDS_SQL}) AND o.status = ANY($3::text[])
ORDER BY o.id
FOR UPDATE OF o
"""
CHECK_LATER_SQL = """
INSERT INTO backorder_checks (product_id, location_id)
SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING
"""
CLAIM_CHECKS_SQL = """
DELETE FROM backorder_checks c
WHERE (c.product_id, c.location_id) IN (
    SELECT product_id, location_id FROM backorder_checks
    ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING c.product_id, c.location_id
"""

# The waiting orders (step 2), the levels held: every one there is now, locked unless
# another request holds it (`passed_over`). The orders this holds already are among those
# locked.
LATECOMERS_SQL = f"""
WITH every AS MATERIALIZED ({WAITING_IDS_SQL}),
locked AS MATERIALIZED (
    SELECT o.id FROM orders o
    WHERE o.id IN (SELECT order_id FROM every) AND o.status = ANY($3::text[])
    ORDER BY o.id
    FOR UPDATE OF o SKIP LOCKED
)
SELECT coalesce((SELECT array_agg(id ORDER BY id) FROM locked), '{{}}') AS locked,
       EXISTS (SELECT FROM every WHERE order_id NOT IN (SELECT id FROM locked)) AS passed_over
"""
# A placement's unseen places: each of the products ($1) at each location its channel
# ($2) sells from where its read locked no level ($3, $4: the pairs it locked).
NOTE_UNSEEN_SQL = f"""
INSERT INTO backorder_checks (product_id, location_id)
SELECT p.id, loc.id FROM unnest($1::text[]) AS p(id) CROSS JOIN locations loc
WHERE {sells_from_sql("$2", "loc.id")}
  AND (p.id, loc.id) NOT IN (SELECT * FROM unnest($3::text[], $4::text[]))
ORDER BY 1, 2
ON CONFLICT DO NOTHING
"""
# Housekeeping's place, without waiting: its level and the product's total (which the
# fills change), locked unless another request holds either — or no row, when one does, or
# when the product was never in stock there (no level, or no total).
TRY_LOCK_PLACE_SQL = """
SELECT il.on_hand - il.reserved AS available
FROM inventory_levels il JOIN stock_totals t ON t.product_id = il.product_id
WHERE il.product_id = $1 AND il.location_id = $2
FOR UPDATE OF il, t SKIP LOCKED
"""
# The pair again, for the next pass, when its place was busy (it exists: see above).
NOTE_IF_BUSY_SQL = """
INSERT INTO backorder_checks (product_id, location_id)
SELECT il.product_id, il.location_id
FROM inventory_levels il JOIN stock_totals t ON t.product_id = il.product_id
WHERE il.product_id = $1 AND il.location_id = $2
ON CONFLICT DO NOTHING
"""

TOUCH_ORDERS_SQL = (
    "UPDATE orders SET version = version + 1, updated_at = now() WHERE id = ANY($1::text[])"
)

# Their backordered lines of those products: oldest order first (ids are time-ordered),
# each order's lines in order.
WAITING_LINES_SQL = """
SELECT l.id, l.order_id, l.product_id, l.sku, l.quantity_backordered, o.status
FROM order_lines l JOIN orders o ON o.id = l.order_id
WHERE l.order_id = ANY($1::text[]) AND l.product_id = ANY($2::text[])
  AND l.quantity_backordered > 0
ORDER BY l.order_id, l.position
"""


async def lock_waiting_orders(
    conn: asyncpg.Connection, location_id: str, product_ids: Sequence[str]
) -> list[str]:
    """Step 1: the orders whose backorders stock of `product_ids` arriving at
    `location_id` may fill, locked. Call it before the arrival locks the levels (once they
    are held, `plan_fills_at` finds the orders that began waiting since)."""
    if not product_ids:
        return []
    rows = await conn.fetch(
        WAITING_ORDERS_SQL, location_id, sorted(set(product_ids)), list(WAITING_STATUSES)
    )
    return [r["id"] for r in rows]


@dataclass(slots=True)
class Fills:
    """What the units coming in at a location fill: each waiting line's share."""

    location_id: str
    lines: list[tuple[Any, int]] = field(default_factory=list)  # (waiting line, units)

    def moves(self) -> list[StockMove]:
        """The reservations, to apply in the same call of the stock path as the units that
        make them possible (after them: the stock path keeps the order of moves on a
        level), so that no step between shows the product's stock higher than it ends."""
        return [
            stock_move(product_id=line["product_id"], location_id=self.location_id,
                       sku=line["sku"], reserved=quantity, reason="backorder_filled",
                       cause_type="order", cause_id=line["order_id"])
            for line, quantity in self.lines
        ]  # fmt: skip


async def lock_latecomers(
    conn: asyncpg.Connection, location_id: str, product_ids: Sequence[str]
) -> list[str]:
    """Step 2, the levels held: the orders waiting for `product_ids` at `location_id` as
    they are now — those locked in step 1 and any that began waiting since (placed while
    this waited for the levels, or before a level existed there) — locked, `SKIP LOCKED`
    (waiting for an order while holding levels could deadlock). When another request holds
    one, the pair is noted in `backorder_checks` for housekeeping."""
    products = sorted(set(product_ids))
    row = await conn.fetchrow(LATECOMERS_SQL, location_id, products, list(WAITING_STATUSES))
    if row is None:  # a SELECT without FROM always answers one row
        raise RuntimeError("the waiting orders' read answered no row")
    if row["passed_over"]:
        await conn.execute(CHECK_LATER_SQL, products, location_id)
    return list(row["locked"])


async def plan_fills_at(
    conn: asyncpg.Connection, location_id: str, arriving: Mapping[str, int], waiting: list[str],
    *, elsewhere: Mapping[str, int] | None = None,
) -> Fills:  # fmt: skip
    """Step 2: the levels locked (an empty one where the product was never kept), what the
    orders waiting there — `waiting`, locked in step 1, and those found once the levels are
    held (`lock_latecomers`) — take of the location's available units once `arriving`
    (product → units coming in, or released, there) are counted: oldest order first.
    `elsewhere` (line → units): fills already planned at other locations in this
    transaction, not yet written, which those lines no longer wait for."""
    taken = elsewhere or {}
    fills = Fills(location_id)
    if not arriving:
        return fills
    products = sorted(arriving)
    levels = await lock_levels(conn, [(p, location_id) for p in products], create_missing=True)
    waiting = sorted({*waiting, *await lock_latecomers(conn, location_id, products)})
    if not waiting:
        return fills
    lines = await conn.fetch(WAITING_LINES_SQL, waiting, products)
    for product_id in products:
        on_hand, reserved = levels.get((product_id, location_id), (0, 0))
        of_product = {r["id"]: r for r in lines if r["product_id"] == product_id}
        planned = plan_fills(
            on_hand - reserved + arriving[product_id],
            [Waiting(r["order_id"], r["id"], r["quantity_backordered"] - taken.get(r["id"], 0))
             for r in of_product.values()
             if r["quantity_backordered"] > taken.get(r["id"], 0)],
        )  # fmt: skip
        fills.lines += [(of_product[f.line_id], f.quantity) for f in planned]
    return fills


async def record_fills(conn: asyncpg.Connection, all_fills: Sequence[Fills]) -> list[str]:
    """Step 4, once the stock has moved: the lines' units move from backordered to
    reserved, the reservations are written, each filled order's version rises and it
    records `order.backorder_filled`; a confirmed one is allocated if auto-allocation is
    on. The ids of the orders filled."""
    fills = [(f.location_id, line, quantity) for f in all_fills for line, quantity in f.lines]
    if not fills:
        return []
    await change_lines(conn, [(line["id"], quantity, -quantity, 0) for _, line, quantity in fills])
    filled = sorted({line["order_id"] for _, line, _ in fills})
    for order_id in filled:
        book = ReservationBook(await load_held(conn, order_id))
        for location_id, line, quantity in fills:
            if line["order_id"] == order_id:
                book.reserve(line["id"], location_id, line["product_id"], quantity)
        await write_book(conn, book)
    await conn.execute(TOUCH_ORDERS_SQL, filled)
    statuses = {line["order_id"]: line["status"] for _, line, _ in fills}
    for order_id in filled:
        await record_order_events(conn, order_id, [E.ORDER_BACKORDER_FILLED])
        await allocate_if_automatic(conn, order_id, statuses[order_id])
    return filled


async def receive_stock(
    conn: asyncpg.Connection, location_id: str, arrivals: Sequence[StockMove], waiting: list[str]
) -> list[str]:
    """Units arriving at `location_id` (`arrivals`: moves of `on_hand` up there), with the
    backorders of the `waiting` orders (step 1) filled from them in the same call of the
    stock path; the ids of the orders filled."""
    arriving: dict[str, int] = {}
    for move in arrivals:
        arriving[move["product_id"]] = arriving.get(move["product_id"], 0) + move["on_hand_delta"]
    fills = await plan_fills_at(conn, location_id, arriving, waiting)
    await move_stock(conn, [*arrivals, *fills.moves()])
    return await record_fills(conn, [fills])


async def plan_release_fills(
    conn: asyncpg.Connection, releases: Sequence[StockMove]
) -> list[Fills]:
    """What units an order's cancellation or expiry releases (`releases`: moves of
    `reserved` down, their levels locked) fill of the backorders waiting where they are.
    The levels being held already, a waiting order another request holds is passed over
    (`SKIP LOCKED`: waiting for it could deadlock); it takes the next arrival. Units
    released at several locations fill each waiting unit once: what one location fills,
    the next no longer offers to."""
    by_location: dict[str, dict[str, int]] = {}
    for move in releases:
        units = by_location.setdefault(move["location_id"], {})
        units[move["product_id"]] = units.get(move["product_id"], 0) - move["reserved_delta"]
    all_fills: list[Fills] = []
    planned: dict[str, int] = {}
    for location_id, arriving in sorted(by_location.items()):
        fills = await plan_fills_at(conn, location_id, arriving, [], elsewhere=planned)
        for line, quantity in fills.lines:
            planned[line["id"]] = planned.get(line["id"], 0) + quantity
        all_fills.append(fills)
    return all_fills


async def note_unseen_places(
    conn: asyncpg.Connection, channel_id: str, product_ids: Sequence[str],
    seen: Sequence[tuple[str, str]],
) -> None:  # fmt: skip
    """A placement that backorders `product_ids`, before it writes: the places of its
    channel where its read locked no level of them (`seen`: the pairs it locked) are noted
    in `backorder_checks`, committed with the order. Stock arriving there now, or made
    there since the read, was not seen by the order, and the arrival may not see the order
    (it is committed after the arrival reads the waiting orders again): housekeeping fills
    it from what is available there."""
    if product_ids:
        await conn.execute(
            NOTE_UNSEEN_SQL, sorted(set(product_ids)), channel_id,
            [p for p, _ in seen], [loc for _, loc in seen],
        )  # fmt: skip


async def fill_passed_over(conn: asyncpg.Connection, *, limit: int = 100) -> int:
    """Housekeeping: where a waiting order was passed over or may not have been seen
    (`backorder_checks`), fill what is still available there, as an arrival of nothing
    would. It holds the pairs it claimed (a request noting one of them waits for it), so it
    waits for nothing: when another request holds the level, the product's total or a
    waiting order (`lock_latecomers`), the pair is noted again for the next pass. Where
    nothing is available, there is nothing to do: units that arrive later are given by
    their arrival, which finds every order waiting by then. Safe from many processes at
    once (each claims its pairs with SKIP LOCKED); the pairs handled."""
    pairs = await conn.fetch(CLAIM_CHECKS_SQL, limit)
    for pair in sorted(pairs, key=lambda r: (r["product_id"], r["location_id"])):
        product_id, location_id = pair["product_id"], pair["location_id"]
        place = await conn.fetchrow(TRY_LOCK_PLACE_SQL, product_id, location_id)
        if place is None:
            await conn.execute(NOTE_IF_BUSY_SQL, product_id, location_id)
            continue
        if place["available"] <= 0:  # nothing to fill from: whoever brings units fills
            continue
        fills = await plan_fills_at(conn, location_id, {product_id: 0}, [])
        await move_stock(conn, fills.moves())
        await record_fills(conn, [fills])
    return len(pairs)
