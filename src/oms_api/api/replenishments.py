"""Replenishment requests: read, received, cancelled (opened by the stock path itself)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from oms_api.api.deps import (
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    read_require_unbound,
    require_unbound,
    shared_write_responses,
)
from oms_api.api.orders import OptionalReason, document_response
from oms_api.db import driver_connection
from oms_api.domain.access import Principal, Scope
from oms_api.domain.replenishments import ReplenishmentStatus
from oms_api.schemas.common import ListResponse
from oms_api.schemas.replenishments import ReplenishmentPublic, ReplenishmentReceive
from oms_api.services import replenishments as service

router = APIRouter(prefix="/v1/replenishments", tags=["inventory"], route_class=ReadRoute)
# A request speaks of a product's stock over every location, whichever channels sell from
# them: for keys not bound to a channel (403 `channel_bound_key`), reads and changes alike.
Reader = Annotated[Principal, require_unbound(Scope.INVENTORY_READ)]
ListReader = Annotated[Principal, read_require_unbound(Scope.INVENTORY_READ)]
Writer = Annotated[Principal, require_unbound(Scope.INVENTORY_WRITE)]
ReplenishmentId = Annotated[str, Path(max_length=64, description="The request's id.")]
COMMAND_ERRORS = shared_write_responses(401, 403, 404, 409, 422)


@router.get(
    "", response_model=ListResponse[ReplenishmentPublic], summary="List replenishment requests",
    responses=shared_write_responses(401, 403, 422),
)  # fmt: skip
async def list_replenishments(
    session: ReadSessionDep, _principal: ListReader, page: PageDep,
    status: ReplenishmentStatus | None = None,
    sku: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:  # fmt: skip
    """Newest first. A request opens when a product's total available (over every
    location) falls to or below its `reorder_point` — once per fall — for
    `reorder_quantity` units (a product without one is not reordered)."""
    result = await service.list_replenishments(
        session, status=status.value if status else None, sku=sku, limit=page.limit,
        cursor=page.cursor,
    )  # fmt: skip
    return document_response({"data": list(result.items), "next_cursor": result.next_cursor})


@router.get(
    "/{replenishment_id}", response_model=ReplenishmentPublic,
    summary="Get a replenishment request",
    responses=shared_write_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_replenishment(
    replenishment_id: ReplenishmentId, session: SessionDep, _principal: Reader
) -> Response:
    return document_response(
        await service.get_replenishment(await driver_connection(session), replenishment_id)
    )


@router.post(
    "/{replenishment_id}/receive", response_model=ReplenishmentPublic,
    summary="Receive a replenishment", responses=COMMAND_ERRORS,
)  # fmt: skip
async def receive_replenishment(
    replenishment_id: ReplenishmentId, body: ReplenishmentReceive, session: SessionDep,
    _principal: Writer,
) -> Response:  # fmt: skip
    """`open` → `received`: the units come in at `location_id` (ledger
    `cause_type=replenishment`) and backordered lines of orders whose channel sells from
    there are reserved from them, oldest order first (`order.backorder_filled`). Unknown
    location → 422 `unknown_location`; not open → 409 `invalid_transition`."""
    return document_response(
        await service.receive(
            await driver_connection(session), replenishment_id=replenishment_id,
            location_id=body.location_id, quantity=body.quantity,
        )
    )  # fmt: skip


@router.post(
    "/{replenishment_id}/cancel", response_model=ReplenishmentPublic,
    summary="Cancel a replenishment request", responses=COMMAND_ERRORS,
)  # fmt: skip
async def cancel_replenishment(
    replenishment_id: ReplenishmentId, session: SessionDep, _principal: Writer,
    body: OptionalReason,
) -> Response:  # fmt: skip
    """`open` → `cancelled`."""
    return document_response(
        await service.cancel(
            await driver_connection(session), replenishment_id=replenishment_id,
            reason=body.reason,
        )
    )  # fmt: skip
