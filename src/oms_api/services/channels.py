"""Sales channels."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import Principal
from oms_api.errors import Conflict, NotFound, PreconditionFailed
from oms_api.ids import new_id
from oms_api.models import Channel
from oms_api.services.pagination import Page, paginate
from oms_api.services.scoping import ensure_visible, scope_to_channel


async def create_channel(
    session: AsyncSession, *, code: str, name: str, active: bool, location_ids: list[str]
) -> Channel:
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
    return await paginate(session, stmt, id_column=Channel.id, limit=limit, cursor=cursor)


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
    conditions = [Channel.id == channel_id]
    if if_match is not None:
        conditions.append(Channel.version == if_match)
    stmt = (
        update(Channel)
        .where(*conditions)
        .values(**changes, version=Channel.version + 1, updated_at=func.now())
        .returning(Channel)
        .execution_options(synchronize_session=False)
    )
    channel = (await session.scalars(stmt)).first()
    if channel is not None:
        return channel
    current = await session.get(Channel, channel_id)
    if current is None:
        raise NotFound(f"No channel with id {channel_id}.")
    raise PreconditionFailed(
        f"The channel is at version {current.version}, not {if_match}; reload and retry.",
        current_version=current.version,
    )
