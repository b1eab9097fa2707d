"""Locations and products."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from oms_api.api.deps import (
    IdempotentCreate,
    IfMatch,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    etag,
    idempotent_create,
    parse_if_match,
    read_require,
    require,
    require_unbound,
    shared_write_responses,
)
from oms_api.api.problems import problem_responses
from oms_api.domain.access import Principal, Scope
from oms_api.schemas.catalog import (
    LocationCreate,
    LocationPublic,
    LocationUpdate,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
)
from oms_api.schemas.common import ListResponse
from oms_api.services import catalog as service

locations = APIRouter(prefix="/v1/locations", tags=["locations"], route_class=ReadRoute)
products = APIRouter(prefix="/v1/products", tags=["products"], route_class=ReadRoute)

InventoryReader = Annotated[Principal, require(Scope.INVENTORY_READ)]
InventoryListReader = Annotated[Principal, read_require(Scope.INVENTORY_READ)]
InventoryWriter = Annotated[Principal, require_unbound(Scope.INVENTORY_WRITE)]
SkuPath = Annotated[str, Path(max_length=64, description="The product's SKU.")]
# A SKU may hold `/` (`schemas.common.Sku`): its routes take the rest of the path,
# `/v1/products/BOX/10` as `/v1/products/BOX%2F10` (what generated clients send).


@locations.post(
    "", status_code=201, response_model=LocationPublic, summary="Create a location",
    responses=shared_write_responses(401, 403, 409, 413, 422),
)  # fmt: skip
async def create_location(
    body: LocationCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.INVENTORY_WRITE, unbound=True)],
) -> Response:
    """A warehouse or store. `code` is unique (409 `location_code_taken`). `priority`
    orders allocation: lower is used first."""

    async def create() -> LocationPublic:
        return LocationPublic.model_validate(
            await service.create_location(session, **body.model_dump())
        )

    return await idem.run(body, create, versioned=True)


@locations.get(
    "", response_model=ListResponse[LocationPublic], summary="List locations",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_locations(
    session: ReadSessionDep, _reader: InventoryListReader, page: PageDep
) -> ListResponse[LocationPublic]:
    result = await service.list_locations(session, limit=page.limit, cursor=page.cursor)
    return ListResponse.of(LocationPublic, result)


@locations.get(
    "/{location_id}", response_model=LocationPublic, summary="Get a location",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_location(
    location_id: Annotated[str, Path(max_length=64)], session: SessionDep,
    _reader: InventoryReader, response: Response,
) -> LocationPublic:  # fmt: skip
    """`ETag`: its `version`, for `If-Match`."""
    location = await service.get_location(session, location_id)
    response.headers["ETag"] = etag(location.version)
    return LocationPublic.model_validate(location)


@locations.patch(
    "/{location_id}", response_model=LocationPublic, summary="Update a location",
    responses=shared_write_responses(400, 401, 403, 404, 412, 413, 422),
)  # fmt: skip
async def update_location(
    location_id: Annotated[str, Path(max_length=64)],
    body: LocationUpdate,
    session: SessionDep,
    _writer: InventoryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> LocationPublic:
    """Change the name, kind, priority or `address` (the ship-from address on labels; send
    `null` to clear it). With `If-Match`, 412 if it changed since you read it."""
    changes = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in changes.items() if v is not None or k == "address"}
    location = await service.update_location(
        session, location_id=location_id, changes=changes, if_match=parse_if_match(if_match)
    )
    response.headers["ETag"] = etag(location.version)
    return LocationPublic.model_validate(location)


@products.post(
    "", status_code=201, response_model=ProductPublic, summary="Create a product",
    responses=shared_write_responses(401, 403, 409, 413, 422),
)  # fmt: skip
async def create_product(
    body: ProductCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.INVENTORY_WRITE, unbound=True)],
) -> Response:
    """`sku` is unique (409 `sku_taken`). Prices are integers in minor units."""

    async def create() -> ProductPublic:
        return ProductPublic.model_validate(
            await service.create_product(session, **body.model_dump())
        )

    return await idem.run(body, create, versioned=True)


@products.get(
    "", response_model=ListResponse[ProductPublic], summary="List products",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_products(
    session: ReadSessionDep,
    _reader: InventoryListReader,
    page: PageDep,
    active: Annotated[bool | None, Query(description="Only active (or inactive) products.")] = None,
) -> ListResponse[ProductPublic]:
    result = await service.list_products(
        session, active=active, limit=page.limit, cursor=page.cursor
    )
    return ListResponse.of(ProductPublic, result)


@products.get(
    "/{sku:path}", response_model=ProductPublic, summary="Get a product",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_product(
    sku: SkuPath, session: SessionDep, _reader: InventoryReader, response: Response
) -> ProductPublic:
    product = await service.get_product(session, sku)
    response.headers["ETag"] = etag(product.version)
    return ProductPublic.model_validate(product)


@products.patch(
    "/{sku:path}", response_model=ProductPublic, summary="Update a product",
    responses=shared_write_responses(400, 401, 403, 404, 412, 413, 422),
)  # fmt: skip
async def update_product(
    sku: SkuPath,
    body: ProductUpdate,
    session: SessionDep,
    _writer: InventoryWriter,
    response: Response,
    if_match: IfMatch = None,
) -> ProductPublic:
    """Change any field but `sku`. With `If-Match`, 412 if it changed since you read it.
    A price change applies to orders placed from now on, never to existing ones."""
    product = await service.update_product(
        session, sku=sku, changes=body.model_dump(exclude_unset=True, exclude_none=True),
        if_match=parse_if_match(if_match),
    )  # fmt: skip
    response.headers["ETag"] = etag(product.version)
    return ProductPublic.model_validate(product)
