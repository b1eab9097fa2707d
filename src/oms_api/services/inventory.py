"""Stock levels, adjustments and the movement ledger.

Every change of `on_hand` or `reserved` anywhere in the service writes an
`inventory_movements` row in the same transaction, so the ledger summed per product and
location equals the levels. `verify_ledger` checks that on a live database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, and_, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.db import driver_connection
from oms_api.domain.access import Principal
from oms_api.domain.backorders import fills_backorders
from oms_api.domain.inventory import check_adjustment
from oms_api.errors import NotFound, Unprocessable
from oms_api.models import (
    Channel,
    InventoryLevel,
    InventoryMovement,
    Location,
    Order,
    Product,
    Return,
    Shipment,
)
from oms_api.services.backorders import lock_waiting_orders, receive_stock
from oms_api.services.pagination import Page, paginate
from oms_api.services.scoping import scope_to_channel
from oms_api.services.stock import lock_levels, move_stock, stock_move

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")

# What a movement's cause can be that belongs to a channel: its `cause_type`, its table.
_CHANNEL_CAUSES: tuple[tuple[str, Any], ...] = (
    ("order", Order), ("shipment", Shipment), ("return", Return),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Level:
    sku: str
    product_id: str
    location_id: str
    on_hand: int
    reserved: int
    available: int
    updated_at: Any


async def at_visible_locations(
    session: AsyncSession, stmt: S, principal: Principal, location_column: Any
) -> S:
    """`stmt` limited to the locations a channel-bound caller may see and adjust stock at:
    those its channel sells from (its `location_ids`; all when that is empty or the key is
    not bound)."""
    if principal.channel_id is None:
        return stmt
    ids = await session.scalar(
        scope_to_channel(select(Channel.location_ids), principal, Channel.id)
    )
    return stmt.where(location_column.in_(list(ids))) if ids else stmt


async def _product(session: AsyncSession, sku: str, *, in_body: bool) -> Product:
    product = await session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        if in_body:
            raise Unprocessable(
                f"No product with sku {sku}.", code="unknown_sku",
                errors=[{"loc": ["body", "sku"], "msg": "unknown sku"}],
            )  # fmt: skip
        raise NotFound(f"No product with sku {sku}.")
    return product


async def adjust(
    session: AsyncSession,
    *,
    principal: Principal,
    sku: str,
    location_id: str,
    delta: int,
    reason: str,
    note: str | None,
    expected_on_hand: int | None,
) -> tuple[InventoryMovement, Level]:
    if delta == 0:
        raise Unprocessable(
            "delta must not be 0.", errors=[{"loc": ["body", "delta"], "msg": "must not be 0"}]
        )
    product = await _product(session, sku, in_body=True)
    # A channel-bound key adjusts only where its channel sells from: to it, any other
    # location is absent (404), exactly as one that does not exist.
    where = await at_visible_locations(
        session, select(Location.id).where(Location.id == location_id), principal, Location.id
    )
    if await session.scalar(where) is None:
        if principal.channel_id is not None:
            raise NotFound(
                f"No location with id {location_id}.",
                errors=[{"loc": ["body", "location_id"], "msg": "no such location"}],
            )
        raise Unprocessable(
            f"No location with id {location_id}.", code="unknown_location",
            errors=[{"loc": ["body", "location_id"], "msg": "unknown location"}],
        )  # fmt: skip
    conn = await driver_connection(session)
    key = (product.id, location_id)
    # Units arriving may fill backorders: their orders are locked before the level.
    fills = fills_backorders(reason, delta)
    waiting = await lock_waiting_orders(conn, location_id, [product.id]) if fills else []
    on_hand, reserved = (await lock_levels(conn, [key], create_missing=True))[key]
    check_adjustment(on_hand, reserved, delta, expected_on_hand)
    move = stock_move(
        product_id=product.id, location_id=location_id, sku=product.sku, on_hand=delta,
        reason=reason, cause_type="adjustment", cause_id=None, note=note,
    )  # fmt: skip
    move["cause_id"] = move["id"]
    if fills:
        await receive_stock(conn, location_id, [move], waiting)
    else:
        await move_stock(conn, [move])
    movement = await session.get_one(InventoryMovement, move["id"])
    level = await session.get_one(InventoryLevel, key)
    return movement, Level(
        product.sku, product.id, location_id, level.on_hand, level.reserved,
        level.on_hand - level.reserved, level.updated_at,
    )  # fmt: skip


async def list_levels(
    session: AsyncSession,
    *,
    principal: Principal,
    sku: str | None,
    location_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Level]:
    """Levels ordered by product, then location."""
    stmt = select(
        Product.sku, InventoryLevel.product_id, InventoryLevel.location_id,
        InventoryLevel.on_hand, InventoryLevel.reserved, InventoryLevel.updated_at,
    ).join(Product, Product.id == InventoryLevel.product_id)  # fmt: skip
    if sku is not None:
        stmt = stmt.where(Product.sku == sku)
    if location_id is not None:
        stmt = stmt.where(InventoryLevel.location_id == location_id)
    stmt = await at_visible_locations(session, stmt, principal, InventoryLevel.location_id)
    page = await paginate(
        session, stmt, keys=[InventoryLevel.product_id, InventoryLevel.location_id],
        limit=limit, cursor=cursor, descending=False,
    )  # fmt: skip
    levels = [
        Level(r.sku, r.product_id, r.location_id, r.on_hand, r.reserved, r.on_hand - r.reserved,
              r.updated_at)
        for r in page.items
    ]  # fmt: skip
    return Page(levels, page.next_cursor)


async def summary(session: AsyncSession, *, principal: Principal, sku: str) -> dict[str, Any]:
    product = await _product(session, sku, in_body=False)
    stmt = select(InventoryLevel).where(InventoryLevel.product_id == product.id)
    stmt = await at_visible_locations(session, stmt, principal, InventoryLevel.location_id)
    levels = (await session.scalars(stmt.order_by(InventoryLevel.location_id))).all()
    briefs = [
        {"location_id": lv.location_id, "on_hand": lv.on_hand, "reserved": lv.reserved,
         "available": lv.on_hand - lv.reserved}
        for lv in levels
    ]  # fmt: skip
    return {
        "sku": product.sku,
        "product_id": product.id,
        "on_hand": sum(b["on_hand"] for b in briefs),
        "reserved": sum(b["reserved"] for b in briefs),
        "available": sum(b["available"] for b in briefs),
        "levels": briefs,
    }


async def list_movements(
    session: AsyncSession,
    *,
    principal: Principal,
    sku: str | None,
    location_id: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Any]:
    """Newest first. A channel-bound key sees every movement at the locations its channel
    sells from (the stock is shared), but a movement's `cause_id` and `note` only when its
    cause is an order, shipment or return of its own channel (an adjustment keeps its
    `cause_id`, the movement's own id, and loses its note: the ledger does not record which
    key made it). Of another channel's, nothing but the quantities and the reason."""
    stmt: Any = select(InventoryMovement)
    if principal.channel_id is not None:
        m = InventoryMovement
        own = or_(*(
            and_(m.cause_type == cause_type, scope_to_channel(
                select(model.id).where(model.id == m.cause_id), principal, model.channel_id
            ).exists())
            for cause_type, model in _CHANNEL_CAUSES
        ))  # fmt: skip
        stmt = select(
            m.id, m.sku, m.product_id, m.location_id, m.on_hand_delta, m.reserved_delta,
            m.reason, m.cause_type,
            case((or_(own, m.cause_id == m.id), m.cause_id)).label("cause_id"),
            case((own, m.note)).label("note"), m.created_at,
        )  # fmt: skip
    if sku is not None:
        stmt = stmt.where(InventoryMovement.sku == sku)
    if location_id is not None:
        stmt = stmt.where(InventoryMovement.location_id == location_id)
    stmt = await at_visible_locations(session, stmt, principal, InventoryMovement.location_id)
    return await paginate(session, stmt, keys=[InventoryMovement.id], limit=limit, cursor=cursor)


@dataclass(frozen=True, slots=True)
class Drift:
    """A level the ledger does not sum to."""

    product_id: str
    location_id: str
    on_hand: int
    reserved: int
    ledger_on_hand: int
    ledger_reserved: int


@dataclass(frozen=True, slots=True)
class ReservationDrift:
    """A level whose `reserved` is not what the order lines' reservations there add up to."""

    product_id: str
    location_id: str
    reserved: int
    reservations: int


@dataclass(frozen=True, slots=True)
class LineDrift:
    """A line whose `quantity_reserved` is not what its reservations add up to."""

    line_id: str
    order_id: str
    quantity_reserved: int
    reservations: int


@dataclass(frozen=True, slots=True)
class TotalDrift:
    """A product whose total available (`stock_totals`) is not what its levels add up to."""

    product_id: str
    available: int
    levels_available: int


@dataclass(frozen=True, slots=True)
class StockCheck:
    levels: int
    ledger: list[Drift]
    reservations: list[ReservationDrift]
    lines: list[LineDrift]
    totals: list[TotalDrift]

    @property
    def clean(self) -> bool:
        return not (self.ledger or self.reservations or self.lines or self.totals)


VERIFY_LEDGER_SQL = text(
    """
    SELECT coalesce(l.product_id, m.product_id) AS product_id,
           coalesce(l.location_id, m.location_id) AS location_id,
           coalesce(l.on_hand, 0) AS on_hand, coalesce(l.reserved, 0) AS reserved,
           coalesce(m.on_hand, 0) AS ledger_on_hand, coalesce(m.reserved, 0) AS ledger_reserved
    FROM inventory_levels l
    FULL JOIN (
        SELECT product_id, location_id,
               sum(on_hand_delta) AS on_hand, sum(reserved_delta) AS reserved
        FROM inventory_movements GROUP BY product_id, location_id
    ) m ON m.product_id = l.product_id AND m.location_id = l.location_id
    WHERE coalesce(l.on_hand, 0) <> coalesce(m.on_hand, 0)
       OR coalesce(l.reserved, 0) <> coalesce(m.reserved, 0)
    ORDER BY 1, 2
    """
)

VERIFY_RESERVATIONS_SQL = text(
    """
    SELECT coalesce(l.product_id, r.product_id) AS product_id,
           coalesce(l.location_id, r.location_id) AS location_id,
           coalesce(l.reserved, 0) AS reserved, coalesce(r.units, 0) AS reservations
    FROM inventory_levels l
    FULL JOIN (
        SELECT product_id, location_id, sum(quantity) AS units
        FROM order_reservations GROUP BY product_id, location_id
    ) r ON r.product_id = l.product_id AND r.location_id = l.location_id
    WHERE coalesce(l.reserved, 0) <> coalesce(r.units, 0)
    ORDER BY 1, 2
    """
)

VERIFY_LINES_SQL = text(
    """
    SELECT l.id AS line_id, l.order_id, l.quantity_reserved,
           coalesce(r.units, 0) AS reservations
    FROM order_lines l
    LEFT JOIN (SELECT line_id, sum(quantity) AS units FROM order_reservations GROUP BY line_id) r
      ON r.line_id = l.id
    WHERE l.quantity_reserved <> coalesce(r.units, 0)
    ORDER BY l.order_id, l.id
    """
)

VERIFY_TOTALS_SQL = text(
    """
    SELECT coalesce(t.product_id, l.product_id) AS product_id,
           coalesce(t.available, 0) AS available, coalesce(l.available, 0) AS levels_available
    FROM stock_totals t
    FULL JOIN (
        SELECT product_id, sum(on_hand - reserved) AS available
        FROM inventory_levels GROUP BY product_id
    ) l ON l.product_id = t.product_id
    WHERE coalesce(t.available, 0) <> coalesce(l.available, 0)
    ORDER BY 1
    """
)


async def verify_stock(session: AsyncSession) -> StockCheck:
    """Check, on one consistent snapshot, that the ledger sums to the levels, that the
    order lines' reservations sum to each level's `reserved`, that each line's
    reservations sum to its `quantity_reserved`, and that each product's total available
    is its levels'. Must be the transaction's first call."""
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
    checked = int(await session.scalar(select(func.count()).select_from(InventoryLevel)) or 0)
    return StockCheck(
        checked,
        [Drift(**r._mapping) for r in await session.execute(VERIFY_LEDGER_SQL)],
        [ReservationDrift(**r._mapping) for r in await session.execute(VERIFY_RESERVATIONS_SQL)],
        [LineDrift(**r._mapping) for r in await session.execute(VERIFY_LINES_SQL)],
        [TotalDrift(**r._mapping) for r in await session.execute(VERIFY_TOTALS_SQL)],
    )
