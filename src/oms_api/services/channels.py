"""Sales channels."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import Principal
from oms_api.errors import Conflict, NotFound, Unprocessable
from oms_api.ids import new_id
from oms_api.models import Channel, Location
from oms_api.services.pagination import Page, paginate
from oms_api.services.scoping import ensure_visible, scope_to_channel
from oms_api.services.versioned import update_versioned


async def create_channel(
    session: AsyncSession, *, code: str, name: str, active: bool, location_ids: list[str]
) -> Channel:
    await ensure_locations_exist(session, location_ids)
    stmt = (
        insert(Channel)
        .values(id=new_id("ch"), code=code, name=name, active=active, location_ids=location_ids)
        .on_conflict_do_nothing(index_elements=[Channel.code])
        .returning(Channel)
    )
    channel = (await session.scalars(stmt)).first()
    if channel is None:
        raise Conflict(f"A channel with code {code!r} already exists.", code="channel_code_taken")
    return channel


async def list_channels(
    session: AsyncSession, *, principal: Principal, limit: int, cursor: str | None
) -> Page[Channel]:
    stmt = scope_to_channel(select(Channel), principal, Channel.id)
    return await paginate(session, stmt, keys=[Channel.id], limit=limit, cursor=cursor)


async def get_channel(session: AsyncSession, *, principal: Principal, channel_id: str) -> Channel:
    ensure_visible(principal, channel_id, what="channel", ident=channel_id)
    channel = await session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(f"No channel with id {channel_id}.")
    return channel


async def update_channel(
    session: AsyncSession, *, channel_id: str, changes: dict[str, Any], if_match: int | None
) -> Channel:
    """Apply `changes`; with `if_match`, only if the channel is still at that version."""
    if "location_ids" in changes:
        await ensure_locations_exist(session, changes["location_ids"])
    return await update_versioned(
        session, Channel, where=Channel.id == channel_id, changes=changes, if_match=if_match,
        what="channel with id", ident=channel_id,
    )  # fmt: skip


async def ensure_locations_exist(session: AsyncSession, location_ids: list[str]) -> None:
    if not location_ids:
        return
    found = set(
        (await session.scalars(select(Location.id).where(Location.id.in_(location_ids)))).all()
    )
    missing = [i for i in location_ids if i not in found]
    if missing:
        raise Unprocessable(
            f"No location with id {', '.join(missing)}.",
            code="unknown_location",
            errors=[{"loc": ["body", "location_ids"], "msg": "unknown location"}],
        )
