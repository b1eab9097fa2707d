from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from oms_api.api.deps import (
    CurrentPrincipal,
    CurrentReader,
    IdempotentCreate,
    IfMatch,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    UnboundAdmin,
    etag,
    idempotent_create,
    parse_if_match,
    shared_write_responses,
)
from oms_api.api.problems import problem_responses
from oms_api.domain.access import Scope
from oms_api.schemas.channels import ChannelCreate, ChannelPublic, ChannelUpdate
from oms_api.schemas.common import ListResponse
from oms_api.services import channels as service

router = APIRouter(prefix="/v1/channels", tags=["channels"], route_class=ReadRoute)
ChannelId = Annotated[str, Path(max_length=64, description="The channel's id.")]


@router.post(
    "",
    status_code=201,
    response_model=ChannelPublic,
    summary="Create a channel",
    responses=shared_write_responses(401, 403, 409, 413, 422),
)
async def create_channel(
    body: ChannelCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.ADMIN, unbound=True)],
) -> Response:
    """A sales channel. `code` is unique; 409 `channel_code_taken` if it is not. Admin only."""

    async def create() -> ChannelPublic:
        channel = await service.create_channel(session, **body.model_dump())
        return ChannelPublic.model_validate(channel)

    return await idem.run(body, create, versioned=True)


@router.get(
    "",
    response_model=ListResponse[ChannelPublic],
    summary="List channels",
    responses=problem_responses(401, 422),
)
async def list_channels(
    session: ReadSessionDep, principal: CurrentReader, page: PageDep
) -> ListResponse[ChannelPublic]:
    """Newest first. A channel-bound key sees only its own channel."""
    result = await service.list_channels(
        session, principal=principal, limit=page.limit, cursor=page.cursor
    )
    return ListResponse.of(ChannelPublic, result)


@router.get(
    "/{channel_id}",
    response_model=ChannelPublic,
    summary="Get a channel",
    responses=problem_responses(401, 404, 422),
)
async def get_channel(
    channel_id: ChannelId, session: SessionDep, principal: CurrentPrincipal, response: Response
) -> ChannelPublic:
    channel = await service.get_channel(session, principal=principal, channel_id=channel_id)
    response.headers["ETag"] = etag(channel.version)
    return ChannelPublic.model_validate(channel)


@router.patch(
    "/{channel_id}",
    response_model=ChannelPublic,
    summary="Update a channel",
    responses=shared_write_responses(400, 401, 403, 404, 412, 413, 422),
)
async def update_channel(
    channel_id: ChannelId,
    body: ChannelUpdate,
    session: SessionDep,
    _admin: UnboundAdmin,
    response: Response,
    if_match: IfMatch = None,
) -> ChannelPublic:
    """Change `name`, `active` or `location_ids`. With `If-Match`, 412 if someone changed it
    since you read it. Admin only."""
    channel = await service.update_channel(
        session,
        channel_id=channel_id,
        changes=body.model_dump(exclude_unset=True, exclude_none=True),
        if_match=parse_if_match(if_match),
    )
    response.headers["ETag"] = etag(channel.version)
    return ChannelPublic.model_validate(channel)
