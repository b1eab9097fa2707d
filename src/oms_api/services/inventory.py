"""Stock levels, adjustments and the movement ledger.

Every change of `on_hand` or `reserved` anywhere in the service writes an
`inventory_movements` row in the same transaction, so the ledger summed per product and
location equals the levels. `verify_ledger` checks that on a live database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import Principal
from oms_api.errors import Conflict, NotFound, Unprocessable
from oms_api.ids import new_id
from oms_api.models import Channel, InventoryLevel, InventoryMovement, Location, Product
from oms_api.services.pagination import Page, paginate

S = TypeVar("S", bound="Select[*tuple[Any, ...]]")


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
    """`stmt` limited to the locations a channel-bound caller may see stock at (its
    channel's `location_ids`; all when that is empty or the key is not bound)."""
    if principal.channel_id is None:
        return stmt
    ids = await session.scalar(
        select(Channel.location_ids).where(Channel.id == principal.channel_id)
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
    if await session.get(Location, location_id) is None:
        raise Unprocessable(
            f"No location with id {location_id}.", code="unknown_location",
            errors=[{"loc": ["body", "location_id"], "msg": "unknown location"}],
        )  # fmt: skip
    await session.execute(
        insert(InventoryLevel)
        .values(product_id=product.id, location_id=location_id)
        .on_conflict_do_nothing()
    )
    level = (
        await session.execute(
            select(InventoryLevel.on_hand, InventoryLevel.reserved)
            .where(
                InventoryLevel.product_id == product.id, InventoryLevel.location_id == location_id
            )
            .with_for_update()
        )
    ).one()
    if expected_on_hand is not None and level.on_hand != expected_on_hand:
        raise Conflict(
            f"on_hand is {level.on_hand}, not the expected {expected_on_hand}: stock moved since "
            "the count; recount and retry.",
            code="stale_count",
            on_hand=level.on_hand,
        )
    if level.on_hand + delta < level.reserved:
        raise Conflict(
            f"on_hand {level.on_hand} {delta:+d} would leave less than the {level.reserved} "
            "units reserved for open orders.",
            code="negative_available",
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=level.on_hand - level.reserved,
        )
    movement = InventoryMovement(
        id=new_id("mov"), product_id=product.id, sku=product.sku, location_id=location_id,
        on_hand_delta=delta, reserved_delta=0, reason=reason, cause_type="adjustment",
        cause_id=None, note=note,
    )  # fmt: skip
    movement.cause_id = movement.id
    session.add(movement)
    updated = (
        await session.execute(
            update(InventoryLevel)
            .where(
                InventoryLevel.product_id == product.id, InventoryLevel.location_id == location_id
            )
            .values(on_hand=InventoryLevel.on_hand + delta, updated_at=func.now())
            .returning(InventoryLevel.on_hand, InventoryLevel.reserved, InventoryLevel.updated_at)
        )
    ).one()
    await session.flush()
    await session.refresh(movement)
    return movement, Level(
        product.sku, product.id, location_id, updated.on_hand, updated.reserved,
        updated.on_hand - updated.reserved, updated.updated_at,
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
) -> Page[InventoryMovement]:
    stmt = select(InventoryMovement)
    if sku is not None:
        stmt = stmt.where(InventoryMovement.sku == sku)
    if location_id is not None:
        stmt = stmt.where(InventoryMovement.location_id == location_id)
    stmt = await at_visible_locations(session, stmt, principal, InventoryMovement.location_id)
    return await paginate(session, stmt, keys=[InventoryMovement.id], limit=limit, cursor=cursor)


@dataclass(frozen=True, slots=True)
class Drift:
    product_id: str
    location_id: str
    on_hand: int
    reserved: int
    ledger_on_hand: int
    ledger_reserved: int


VERIFY_SQL = text(
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


async def verify_ledger(session: AsyncSession) -> tuple[int, list[Drift]]:
    """(levels checked, drifts). One statement, so one consistent snapshot."""
    checked = int(await session.scalar(select(func.count()).select_from(InventoryLevel)) or 0)
    drifts = [Drift(**r._mapping) for r in (await session.execute(VERIFY_SQL)).all()]
    return checked, drifts
