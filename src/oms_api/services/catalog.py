"""Locations and products."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.errors import Conflict, NotFound
from oms_api.ids import new_id
from oms_api.models import Location, Product
from oms_api.services.pagination import Page, paginate
from oms_api.services.versioned import update_versioned


async def create_location(session: AsyncSession, **fields: Any) -> Location:
    stmt = (
        insert(Location)
        .values(id=new_id("loc"), **fields)
        .on_conflict_do_nothing(index_elements=[Location.code])
        .returning(Location)
    )
    location = (await session.scalars(stmt)).first()
    if location is None:
        raise Conflict(
            f"A location with code {fields['code']!r} already exists.", code="location_code_taken"
        )
    return location


async def list_locations(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> Page[Location]:
    return await paginate(session, select(Location), keys=[Location.id], limit=limit, cursor=cursor)


async def get_location(session: AsyncSession, location_id: str) -> Location:
    location = await session.get(Location, location_id)
    if location is None:
        raise NotFound(f"No location with id {location_id}.")
    return location


async def create_product(session: AsyncSession, **fields: Any) -> Product:
    stmt = (
        insert(Product)
        .values(id=new_id("prod"), **fields)
        .on_conflict_do_nothing(index_elements=[Product.sku])
        .returning(Product)
    )
    product = (await session.scalars(stmt)).first()
    if product is None:
        raise Conflict(f"A product with sku {fields['sku']!r} already exists.", code="sku_taken")
    return product


async def list_products(
    session: AsyncSession, *, active: bool | None, limit: int, cursor: str | None
) -> Page[Product]:
    stmt = select(Product)
    if active is not None:
        stmt = stmt.where(Product.active.is_(active))
    return await paginate(session, stmt, keys=[Product.id], limit=limit, cursor=cursor)


async def get_product(session: AsyncSession, sku: str) -> Product:
    product = await session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise NotFound(f"No product with sku {sku}.")
    return product


async def update_product(
    session: AsyncSession, *, sku: str, changes: dict[str, Any], if_match: int | None
) -> Product:
    return await update_versioned(
        session, Product, where=Product.sku == sku, changes=changes, if_match=if_match,
        what="product with sku", ident=sku,
    )  # fmt: skip


async def update_location(
    session: AsyncSession, *, location_id: str, changes: dict[str, Any], if_match: int | None
) -> Location:
    return await update_versioned(
        session, Location, where=Location.id == location_id, changes=changes,
        if_match=if_match, what="location", ident=location_id,
    )  # fmt: skip
