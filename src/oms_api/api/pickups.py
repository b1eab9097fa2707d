"""Carrier pickups: the end-of-day hand-over of shipped parcels, and the driver's manifest."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from oms_api.api.deps import (
    IdempotentCreate,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    idempotent_create,
    read_require,
    require,
    require_unbound,
    shared_write_responses,
)
from oms_api.api.orders import document_response
from oms_api.api.problems import problem_responses
from oms_api.api.shipments import PDF, pdf_response
from oms_api.db import driver_connection
from oms_api.domain.access import Principal, Scope
from oms_api.domain.pickups import PickupCommand, PickupStatus
from oms_api.jsonutil import dumps
from oms_api.schemas.common import ListResponse
from oms_api.schemas.shipments import PickupCreate, PickupPublic
from oms_api.services import paperwork
from oms_api.services import pickups as service

router = APIRouter(tags=["pickups"], route_class=ReadRoute)
Reader = Annotated[Principal, require(Scope.ORDERS_READ)]
ListReader = Annotated[Principal, read_require(Scope.ORDERS_READ)]
Fulfiller = Annotated[Principal, require_unbound(Scope.FULFILLMENT_WRITE)]
PickupId = Annotated[str, Path(max_length=64, description="The pickup's id.")]
COMMAND_ERRORS = shared_write_responses(401, 403, 404, 409, 422)


@router.post(
    "/v1/locations/{location_id}/pickups", status_code=201, response_model=PickupPublic,
    summary="Schedule a carrier pickup",
    responses=shared_write_responses(401, 403, 404, 409, 413, 422),
)  # fmt: skip
async def schedule_pickup(
    location_id: Annotated[str, Path(max_length=64)],
    body: PickupCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.FULFILLMENT_WRITE, unbound=True)],
) -> Response:
    """Gathers every `shipped` parcel of that carrier (any spelling of a well-known one) at
    the location that is not on a pickup yet; none → 409 `nothing_to_pick_up`. A `ready_at`
    more than 15 minutes before the server's clock is 422 `ready_at_in_past`. Pickups span
    channels: a channel-bound key gets 403 `channel_bound_key`."""

    async def create() -> bytes:
        return dumps(
            await service.schedule_pickup(
                await driver_connection(session), location_id=location_id,
                carrier=body.carrier, ready_at=body.ready_at, note=body.note,
            )
        )  # fmt: skip

    return await idem.run(body, create)


@router.get(
    "/v1/pickups", response_model=ListResponse[PickupPublic], summary="List pickups",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_pickups(
    session: ReadSessionDep, principal: ListReader, page: PageDep,
    location_id: Annotated[str | None, Query(max_length=64)] = None,
    carrier: Annotated[str | None, Query(max_length=100)] = None,
    status: PickupStatus | None = None,
) -> Response:  # fmt: skip
    """Newest first. Empty for a channel-bound key (pickups span channels)."""
    result = await service.list_pickups(
        session, principal=principal, location_id=location_id, carrier=carrier,
        status=status.value if status else None, limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return document_response({"data": list(result.items), "next_cursor": result.next_cursor})


@router.get(
    "/v1/pickups/{pickup_id}", response_model=PickupPublic, summary="Get a pickup",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_pickup(pickup_id: PickupId, session: SessionDep, principal: Reader) -> Response:
    return document_response(
        await service.get_pickup(
            await driver_connection(session), principal=principal, pickup_id=pickup_id
        )
    )


@router.post(
    "/v1/pickups/{pickup_id}/collected", response_model=PickupPublic,
    summary="Record that the carrier collected", responses=COMMAND_ERRORS,
)  # fmt: skip
async def collect_pickup(
    pickup_id: PickupId, session: SessionDep, _principal: Fulfiller
) -> Response:
    """`scheduled` → `collected`."""
    return document_response(
        await service.change_pickup(
            await driver_connection(session), pickup_id=pickup_id,
            command=PickupCommand.COLLECT,
        )
    )  # fmt: skip


@router.post(
    "/v1/pickups/{pickup_id}/cancel", response_model=PickupPublic, summary="Cancel a pickup",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def cancel_pickup(
    pickup_id: PickupId, session: SessionDep, _principal: Fulfiller
) -> Response:
    """`scheduled` → `cancelled`: its parcels are free for the next pickup."""
    return document_response(
        await service.change_pickup(
            await driver_connection(session), pickup_id=pickup_id,
            command=PickupCommand.CANCEL,
        )
    )  # fmt: skip


@router.get(
    "/v1/pickups/{pickup_id}/manifest", summary="The driver's manifest (PDF)",
    responses={**PDF, **problem_responses(401, 403, 404, 422)}, response_class=Response,
)  # fmt: skip
async def get_pickup_manifest(
    pickup_id: PickupId, session: SessionDep, principal: Reader
) -> Response:
    """Every parcel's order number, tracking number and weight, the count and the total,
    with lines for the driver's and the shipper's signatures."""
    content = await paperwork.pickup_manifest(
        await driver_connection(session), principal=principal, pickup_id=pickup_id
    )
    return pdf_response(content, f"manifest-{pickup_id}.pdf")
