"""The one path for stock: every change of `on_hand` or `reserved` is a list of moves
applied by `oms_move_stock` (`sql/functions/oms_move_stock.sql`), which changes the levels
and writes one ledger row per move in one statement — so the ledger always sums to the levels.

Callers that decide from the levels (is it available? is it there?) lock them first with
`lock_levels`, in (product, location) order: the order every path locks in, so
concurrent changes never deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg

from oms_api.domain.inventory import StockMove
from oms_api.ids import new_id
from oms_api.jsonutil import dumps

MOVE_STOCK_SQL = "SELECT oms_move_stock($1::jsonb)"

LOCK_LEVELS_SQL = """
SELECT il.product_id, il.location_id, il.on_hand, il.reserved
FROM inventory_levels il
JOIN unnest($1::text[], $2::text[]) AS k(product_id, location_id)
  ON il.product_id = k.product_id AND il.location_id = k.location_id
ORDER BY il.product_id, il.location_id
FOR UPDATE OF il
"""


# Empty levels for pairs without one (`sql/functions/oms_open_levels.sql`): no Python
# writes `inventory_levels`.
OPEN_LEVELS_SQL = "SELECT oms_open_levels($1::text[], $2::text[])"


def stock_move(
    *, product_id: str, location_id: str, sku: str, on_hand: int = 0, reserved: int = 0,
    reason: str, cause_type: str, cause_id: str | None, note: str | None = None,
) -> StockMove:  # fmt: skip
    return StockMove(
        id=new_id("mov"), product_id=product_id, location_id=location_id, sku=sku,
        on_hand_delta=on_hand, reserved_delta=reserved, reason=reason, cause_type=cause_type,
        cause_id=cause_id, note=note,
    )  # fmt: skip


async def move_stock(conn: asyncpg.Connection, moves: Sequence[StockMove]) -> None:
    if moves:
        await conn.execute(MOVE_STOCK_SQL, dumps(list(moves)).decode())


async def lock_levels(
    conn: asyncpg.Connection, keys: Iterable[tuple[str, str]], *, create_missing: bool = False
) -> dict[tuple[str, str], tuple[int, int]]:
    """Lock the levels of (product, location) `keys` in key order; their (on_hand,
    reserved). A key with no level is absent from the answer — or, with `create_missing`,
    gets an empty level first (nothing on hand: no ledger row), so that a decision about a
    place that never held the product is serialised like any other."""
    ordered = sorted(set(keys))
    if create_missing:
        await conn.execute(OPEN_LEVELS_SQL, [k[0] for k in ordered], [k[1] for k in ordered])
    rows = await conn.fetch(LOCK_LEVELS_SQL, [k[0] for k in ordered], [k[1] for k in ordered])
    return {(r["product_id"], r["location_id"]): (r["on_hand"], r["reserved"]) for r in rows}
