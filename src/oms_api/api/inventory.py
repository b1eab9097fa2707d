"""Stock levels, adjustments and the movement ledger."""

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
)
from oms_api.api.problems import problem_responses
from oms_api.domain.access import Principal, Scope
from oms_api.schemas.common import ListResponse
from oms_api.schemas.inventory import (
    AdjustmentCreate,
    AdjustmentResult,
    InventoryLevelPublic,
    InventorySummary,
    MovementPublic,
)
from oms_api.services import inventory as service

router = APIRouter(prefix="/v1/inventory", tags=["inventory"], route_class=ReadRoute)
InventoryReader = Annotated[Principal, require(Scope.INVENTORY_READ)]
InventoryListReader = Annotated[Principal, read_require(Scope.INVENTORY_READ)]
SkuFilter = Annotated[str | None, Query(max_length=64)]
LocationFilter = Annotated[str | None, Query(max_length=64)]


@router.get(
    "", response_model=ListResponse[InventoryLevelPublic], summary="List stock levels",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_inventory_levels(
    session: ReadSessionDep, principal: InventoryListReader, page: PageDep,
    sku: SkuFilter = None, location_id: LocationFilter = None,
) -> ListResponse[InventoryLevelPublic]:  # fmt: skip
    """One row per product and location, ordered by product then location. A
    channel-bound key sees only its channel's locations."""
    result = await service.list_levels(
        session, principal=principal, sku=sku, location_id=location_id,
        limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return ListResponse.of(InventoryLevelPublic, result)


@router.post(
    "/adjustments", status_code=201, response_model=AdjustmentResult, summary="Adjust stock on hand",
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)  # fmt: skip
async def create_inventory_adjustment(
    body: AdjustmentCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.INVENTORY_WRITE)],
) -> Response:
    """Change `on_hand` at a location by `delta`, with a reason; writes a ledger movement.
    409 `negative_available` if it would leave less than is reserved. With
    `expected_on_hand`, applies only if `on_hand` is still that (409 `stale_count`), so a
    cycle count taken while orders flow cannot clobber them. A channel-bound key adjusts
    only at the locations its channel sells from: any other `location_id`, known or not, is
    404 to it (to an unbound key, an unknown one is 422 `unknown_location`)."""

    async def create() -> AdjustmentResult:
        movement, level = await service.adjust(
            session, principal=idem.principal, **body.model_dump()
        )
        return AdjustmentResult.model_validate({"movement": movement, "level": level})

    return await idem.run(body, create)


@router.get(
    "/movements", response_model=ListResponse[MovementPublic], summary="List ledger movements",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_inventory_movements(
    session: ReadSessionDep, principal: InventoryListReader, page: PageDep,
    sku: SkuFilter = None, location_id: LocationFilter = None,
) -> ListResponse[MovementPublic]:  # fmt: skip
    """Every change of `on_hand` or `reserved`, newest first, with its cause. A key bound
    to a channel sees the movements at the locations its channel sells from, but `cause_id`
    and `note` only of its own channel's orders, shipments and returns (`null` otherwise;
    an adjustment keeps its `cause_id` and shows its `note` to unbound keys only)."""
    result = await service.list_movements(
        session, principal=principal, sku=sku, location_id=location_id,
        limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return ListResponse.of(MovementPublic, result)


@router.get(
    "/{sku:path}", response_model=InventorySummary, summary="Get a product's stock",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_inventory(
    sku: Annotated[str, Path(max_length=64)], session: SessionDep, principal: InventoryReader
) -> InventorySummary:
    """`on_hand`, `reserved` and `available` summed over locations, and per location."""
    return InventorySummary.model_validate(
        await service.summary(session, principal=principal, sku=sku)
    )
