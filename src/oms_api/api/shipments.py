"""Fulfilment: shipments, their commands, tracking, labels, packing slips, pick lists."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.api.deps import (
    NULL_AS_EMPTY,
    IdempotentCreate,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    idempotent_create,
    read_require,
    require,
)
from oms_api.api.negotiation import JSON, negotiate
from oms_api.api.orders import OptionalReason, OrderId, document_response
from oms_api.api.problems import problem_responses
from oms_api.db import driver_connection
from oms_api.domain.access import Principal, Scope
from oms_api.domain.errors import DomainError
from oms_api.domain.shipments import ShipmentCommand, ShipmentStatus, TrackingStatus
from oms_api.jsonutil import dumps
from oms_api.paper import pick_list as pick_list_pdf
from oms_api.schemas.common import ListResponse, NoBody
from oms_api.schemas.shipments import (
    OrderTracking,
    ParcelBody,
    PickList,
    ShipmentCreate,
    ShipmentPublic,
    ShipmentsCreated,
    ShipmentTracking,
    TrackingCreate,
)
from oms_api.services import paperwork, pickups
from oms_api.services import shipments as service
from oms_api.services.shipment_documents import load_shipment

router = APIRouter(tags=["shipments"], route_class=ReadRoute)
Reader = Annotated[Principal, require(Scope.ORDERS_READ)]
ListReader = Annotated[Principal, read_require(Scope.ORDERS_READ)]
Fulfiller = Annotated[Principal, require(Scope.FULFILLMENT_WRITE)]
ShipmentId = Annotated[str, Path(max_length=64, description="The shipment's id.")]
LocationId = Annotated[str, Path(max_length=64, description="The location's id.")]
# Which shipments a pick list gathers, for both of its operations.
PickStatuses = Annotated[
    str, Query(max_length=200, description="Shipment states, comma-separated.")
]
COMMAND_ERRORS = problem_responses(401, 403, 404, 409, 413, 422)
# What is known of the parcel at `/pack` or `/ship`: no body, `{}` or `null` tell nothing.
OptionalParcel = Annotated[ParcelBody, NULL_AS_EMPTY, Body(default_factory=ParcelBody)]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
# A PDF's 200. It is always sent as `application/pdf`; `application/octet-stream` is listed
# too because some client generators (openapi-python-client) know no other binary type and
# would otherwise leave the 200 out of the generated client.
PDF: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/pdf": _BINARY, "application/octet-stream": _BINARY},
        "description": "A PDF, sent as `application/pdf` (`application/octet-stream` is "
        "listed for client generators that know no other binary type).",
    }
}


def pdf_response(content: bytes, filename: str) -> Response:
    return Response(
        content, media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )  # fmt: skip


@router.post(
    "/v1/orders/{order_id}/shipments", status_code=201, response_model=ShipmentsCreated,
    summary="Create a shipment", responses=COMMAND_ERRORS,
)  # fmt: skip
async def create_shipment(
    order_id: OrderId,
    body: ShipmentCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.FULFILLMENT_WRITE)],
) -> Response:
    """A shipment from `location_id` of the given units. Each line's units come from its
    reservation at that location; if it is held elsewhere, it moves here (reserved here
    out of what is available here, released there, in one transaction; not available →
    409 `insufficient_stock`). More than the line has reserved and not yet in a shipment
    → 409 `exceeds_unfulfilled`. Only `confirmed` and `partially_shipped` orders ship
    (409 `order_not_fulfillable`)."""

    async def create() -> bytes:
        documents = await service.create_shipment(
            await driver_connection(session), channel_id=idem.principal.channel_id,
            order_id=order_id, location_id=body.location_id,
            lines=[(x.line_id, x.quantity) for x in body.lines],
        )  # fmt: skip
        return dumps({"data": documents})

    return await idem.run(body, create)


@router.post(
    "/v1/orders/{order_id}/allocate", status_code=201, response_model=ShipmentsCreated,
    summary="Create the order's shipments from its reservations", responses=COMMAND_ERRORS,
)  # fmt: skip
async def allocate_order(
    order_id: OrderId,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.FULFILLMENT_WRITE)],
) -> Response:
    """One shipment per location holding reserved units not yet in a shipment, with all of
    them: an order reserved in one location ships from one. 409
    `nothing_to_allocate` when there are none."""

    async def create() -> bytes:
        documents = await service.allocate(
            await driver_connection(session), channel_id=idem.principal.channel_id,
            order_id=order_id,
        )  # fmt: skip
        return dumps({"data": documents})

    return await idem.run(NoBody(), create)


@router.get(
    "/v1/orders/{order_id}/tracking", response_model=OrderTracking,
    summary="An order's shipments and their tracking", responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_order_tracking(order_id: OrderId, session: SessionDep, principal: Reader) -> Response:
    """Every shipment of the order, each with its carrier updates in `occurred_at` order."""
    return document_response(
        await service.order_tracking(
            await driver_connection(session), channel_id=principal.channel_id, order_id=order_id
        )
    )


@router.get(
    "/v1/shipments", response_model=ListResponse[ShipmentPublic], summary="List shipments",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_shipments(
    session: ReadSessionDep, principal: ListReader, page: PageDep,
    status: ShipmentStatus | None = None,
    location_id: Annotated[str | None, Query(max_length=64)] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:  # fmt: skip
    """Newest first; filters combine. A channel-bound key sees its channel's shipments."""
    result = await service.list_shipments(
        session, channel_id=principal.channel_id, status=status.value if status else None,
        location_id=location_id, order_id=order_id, limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return document_response({"data": list(result.items), "next_cursor": result.next_cursor})


@router.get(
    "/v1/shipments/{shipment_id}", response_model=ShipmentPublic, summary="Get a shipment",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_shipment(shipment_id: ShipmentId, session: SessionDep, principal: Reader) -> Response:
    conn = await driver_connection(session)
    return document_response(
        await load_shipment(conn, shipment_id, channel_id=principal.channel_id)
    )


async def _command(
    session: SessionDep, principal: Principal, shipment_id: str, command: ShipmentCommand,
    parcel: ParcelBody | None = None, reason: str | None = None,
) -> Response:  # fmt: skip
    document = await service.change_shipment(
        await driver_connection(session), channel_id=principal.channel_id,
        shipment_id=shipment_id, command=command, reason=reason,
        parcel=service.Parcel(**parcel.model_dump()) if parcel else None,
    )  # fmt: skip
    return document_response(document)


@router.post(
    "/v1/shipments/{shipment_id}/pick", response_model=ShipmentPublic, summary="Start picking",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def pick_shipment(
    shipment_id: ShipmentId, session: SessionDep, principal: Fulfiller
) -> Response:
    """`pending` → `picking`."""
    return await _command(session, principal, shipment_id, ShipmentCommand.PICK)


@router.post(
    "/v1/shipments/{shipment_id}/pack", response_model=ShipmentPublic, summary="Mark packed",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def pack_shipment(
    shipment_id: ShipmentId, session: SessionDep, principal: Fulfiller,
    body: OptionalParcel,
) -> Response:  # fmt: skip
    """`picking` → `packed`. Give the carrier, service, tracking number and weight here to
    print the label before the parcel is handed over."""
    return await _command(session, principal, shipment_id, ShipmentCommand.PACK, body)


@router.post(
    "/v1/shipments/{shipment_id}/ship", response_model=ShipmentPublic, summary="Ship",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def ship_shipment(
    shipment_id: ShipmentId, session: SessionDep, principal: Fulfiller,
    body: OptionalParcel,
) -> Response:  # fmt: skip
    """`packed` → `shipped`: the units leave — `on_hand` and `reserved` drop at the
    location (ledger `cause_type=shipment`), the lines' `quantity_shipped` rise, and the
    order becomes `partially_shipped` or `shipped`. Needs a carrier and tracking number
    (here or at `/pack`: 422 `tracking_required`) and an order that may ship (409
    `order_not_fulfillable`, e.g. on hold). Two concurrent calls ship once."""
    return await _command(session, principal, shipment_id, ShipmentCommand.SHIP, body)


@router.post(
    "/v1/shipments/{shipment_id}/deliver", response_model=ShipmentPublic,
    summary="Mark delivered", responses=COMMAND_ERRORS,
)  # fmt: skip
async def deliver_shipment(
    shipment_id: ShipmentId, session: SessionDep, principal: Fulfiller
) -> Response:
    """`shipped` → `delivered`; when every shipment is delivered, so is the order."""
    return await _command(session, principal, shipment_id, ShipmentCommand.DELIVER)


@router.post(
    "/v1/shipments/{shipment_id}/cancel", response_model=ShipmentPublic,
    summary="Cancel a shipment", responses=COMMAND_ERRORS,
)  # fmt: skip
async def cancel_shipment(
    shipment_id: ShipmentId, session: SessionDep, principal: Fulfiller,
    body: OptionalReason,
) -> Response:  # fmt: skip
    """Before it ships: its units go back to the order's reservations at that location."""
    return await _command(
        session,
        principal,
        shipment_id,
        ShipmentCommand.CANCEL,
        reason=body.reason,
    )


@router.post(
    "/v1/shipments/{shipment_id}/tracking", status_code=201, response_model=ShipmentTracking,
    summary="Record a carrier's tracking update", responses=COMMAND_ERRORS,
)  # fmt: skip
async def add_tracking(
    shipment_id: ShipmentId,
    body: TrackingCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.FULFILLMENT_WRITE)],
) -> Response:
    """Updates are kept in `occurred_at` order; the same status at the same time again is
    recorded once. `delivered` delivers the shipment (409 if it has not shipped). A time
    that cannot be true is refused (422): more than an hour ahead of the server's clock
    (`tracking_in_future`), more than an hour before the shipment was created
    (`tracking_before_shipment`), a delivery more than an hour before it shipped
    (`delivered_before_shipped`). A late or out-of-order update is kept as history and
    never moves the shipment back: a delivered shipment's `latest_tracking` stays its
    delivery."""

    async def create() -> bytes:
        return dumps(
            await service.add_tracking(
                await driver_connection(session), channel_id=idem.principal.channel_id,
                shipment_id=shipment_id, status=TrackingStatus(body.status),
                description=body.description, location=body.location,
                occurred_at=body.occurred_at,
            )
        )  # fmt: skip

    return await idem.run(body, create)


@router.get(
    "/v1/shipments/{shipment_id}/label", summary="The shipping label (PDF, 4 by 6 in)",
    responses={**PDF, **problem_responses(401, 403, 404, 409, 422)}, response_class=Response,
)  # fmt: skip
async def get_shipping_label(
    shipment_id: ShipmentId, session: SessionDep, principal: Reader
) -> Response:
    """Ship-from (the location's address), ship-to, carrier, service, weight, order number,
    and the tracking number as text and Code 128. Once packed with a carrier and tracking
    number (409 `label_not_ready` before)."""
    content = await paperwork.shipping_label(
        await driver_connection(session), channel_id=principal.channel_id, shipment_id=shipment_id
    )
    return pdf_response(content, f"label-{shipment_id}.pdf")


@router.get(
    "/v1/shipments/{shipment_id}/packing-slip", summary="The packing slip (PDF)",
    responses={**PDF, **problem_responses(401, 403, 404, 422)}, response_class=Response,
)  # fmt: skip
async def get_packing_slip(
    shipment_id: ShipmentId, session: SessionDep, principal: Reader
) -> Response:
    """Order number, ship-to, and each line's SKU, name and quantity in the parcel."""
    content = await paperwork.packing_slip(
        await driver_connection(session), channel_id=principal.channel_id, shipment_id=shipment_id
    )
    return pdf_response(content, f"packing-slip-{shipment_id}.pdf")


def _statuses(value: str) -> list[str]:
    names = [x.strip() for x in value.split(",") if x.strip()]
    unknown = sorted(set(names) - {s.value for s in ShipmentStatus})
    if not names or unknown:
        raise DomainError(
            "validation_error", f"Unknown shipment status: {', '.join(unknown) or '(none)'}.",
            kind="invalid", loc=["query", "status"],
        )  # fmt: skip
    return names


@router.get(
    "/v1/locations/{location_id}/pick-list", response_model=PickList, summary="A location's pick list",
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "JSON, or with `Accept: application/pdf` a printable PDF."},
               **problem_responses(401, 403, 404, 406, 422)},
)  # fmt: skip
async def get_pick_list(
    location_id: LocationId,
    session: SessionDep,
    principal: Reader,
    status: PickStatuses = "pending,picking",
    accept: Annotated[str | None, Header(max_length=500)] = None,
) -> Response:
    """Every unit to pick at the location across its open shipments, grouped by SKU and
    sorted by SKU, each with the shipments it goes into. `Accept: application/pdf` gives
    the same as a printable PDF (a generated client: `GET …/pick-list.pdf`, which answers
    only the PDF); an `Accept` that admits neither JSON nor PDF is 406 `not_acceptable`.
    A channel-bound key sees its own channel's shipments."""
    kind = negotiate(accept, "application/pdf")
    listing = await _pick_list(session, principal, location_id, status)
    if kind != JSON:
        return pdf_response(pick_list_pdf(listing), f"pick-list-{location_id}.pdf")
    return document_response(listing)


@router.get(
    "/v1/locations/{location_id}/pick-list.pdf", summary="A location's pick list (PDF)",
    responses={**PDF, **problem_responses(401, 403, 404, 422)}, response_class=Response,
)  # fmt: skip
async def get_pick_list_pdf(
    location_id: LocationId,
    session: SessionDep,
    principal: Reader,
    status: PickStatuses = "pending,picking",
) -> Response:
    """The pick list as a printable A4 PDF, whatever the request's `Accept`: one operation
    per content type, for clients generated from this document."""
    listing = await _pick_list(session, principal, location_id, status)
    return pdf_response(pick_list_pdf(listing), f"pick-list-{location_id}.pdf")


async def _pick_list(
    session: AsyncSession, principal: Principal, location_id: str, status: str
) -> dict[str, Any]:
    listing: dict[str, Any] = await pickups.pick_list(
        await driver_connection(session), principal=principal, location_id=location_id,
        statuses=_statuses(status),
    )  # fmt: skip
    return listing
