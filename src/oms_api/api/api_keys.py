from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from oms_api.api.deps import (
    AdminPrincipal,
    AdminReader,
    IdempotentCreate,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    UnboundAdmin,
    idempotent_create,
    shared_write_responses,
)
from oms_api.api.problems import problem_responses
from oms_api.domain.access import Scope
from oms_api.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from oms_api.schemas.common import ListResponse
from oms_api.services import access as service

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"], route_class=ReadRoute)
KeyId = Annotated[str, Path(max_length=64, description="The key's id (not the secret).")]


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    summary="Create an API key",
    responses=shared_write_responses(401, 403, 409, 413, 422),
)
async def create_api_key(
    body: ApiKeyCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.ADMIN, unbound=True)],
) -> Response:
    """The response's `secret` is the key; it is shown this once and never stored. A replay
    of the same Idempotency-Key returns the key without its secret. Admin only."""

    async def create() -> ApiKeyCreated:
        key, secret = await service.create_key(
            session,
            name=body.name,
            scopes=[Scope(x) for x in body.scopes],
            channel_id=body.channel_id,
        )
        return ApiKeyCreated.model_validate(
            {**ApiKeyPublic.model_validate(key).model_dump(), "secret": secret}
        )

    return await idem.run(
        body, create, stored_view=lambda created: created.model_copy(update={"secret": None})
    )


@router.get(
    "",
    response_model=ListResponse[ApiKeyPublic],
    summary="List API keys",
    responses=problem_responses(401, 403, 422),
)
async def list_api_keys(
    session: ReadSessionDep, _admin: AdminReader, page: PageDep
) -> ListResponse[ApiKeyPublic]:
    """Newest first, revoked ones included (see `revoked_at`). Secrets are never shown."""
    result = await service.list_keys(session, limit=page.limit, cursor=page.cursor)
    return ListResponse.of(ApiKeyPublic, result)


@router.get(
    "/{key_id}",
    response_model=ApiKeyPublic,
    summary="Get an API key",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_api_key(key_id: KeyId, session: SessionDep, _admin: AdminPrincipal) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(await service.get_key(session, key_id))


@router.delete(
    "/{key_id}",
    response_model=ApiKeyPublic,
    summary="Revoke an API key",
    responses=shared_write_responses(401, 403, 404, 422),
)
async def revoke_api_key(key_id: KeyId, session: SessionDep, _admin: UnboundAdmin) -> ApiKeyPublic:
    """Takes effect at once, for every server process. The key stays listed, with
    `revoked_at` set."""
    return ApiKeyPublic.model_validate(await service.revoke_key(session, key_id))
