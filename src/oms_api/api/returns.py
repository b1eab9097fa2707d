"""Returns (RMAs): opened by channels, approved, received, completed with a refund or an
exchange; the return slip."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request, Response

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
from oms_api.api.orders import OptionalReason, document_response
from oms_api.api.problems import problem_responses
from oms_api.api.shipments import PDF, pdf_response
from oms_api.db import driver_connection
from oms_api.domain.access import Principal, Scope
from oms_api.domain.returns import Resolution, ReturnCommand, ReturnStatus
from oms_api.errors import Conflict
from oms_api.jsonutil import dumps
from oms_api.paper import return_slip
from oms_api.schemas.common import ListResponse
from oms_api.schemas.returns import CompleteBody, ReceiveBody, ReturnCreate, ReturnPublic
from oms_api.services import returns as service
from oms_api.services.paperwork import location_of

router = APIRouter(prefix="/v1/returns", tags=["returns"], route_class=ReadRoute)
Reader = Annotated[Principal, require(Scope.ORDERS_READ)]
ListReader = Annotated[Principal, read_require(Scope.ORDERS_READ)]
Handler = Annotated[Principal, require(Scope.RETURNS_WRITE)]
ReturnId = Annotated[str, Path(max_length=64, description="The return's id.")]
COMMAND_ERRORS = problem_responses(401, 403, 404, 409, 413, 422)


@router.post(
    "", status_code=201, response_model=ReturnPublic, summary="Open a return",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def open_return(
    body: ReturnCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.ORDERS_WRITE)],
) -> Response:
    """Shipped units of an order, each line with a reason; `resolution` `refund`, or
    `exchange` with `exchange_lines`. At most what shipped less what was returned or is in
    an open return (409 `exceeds_returnable`), within the return window after delivery (409
    `return_window_closed`; `GET/PUT /v1/settings/returns`). A channel key opens returns
    for its own orders. The return gets an RMA `number` to read out."""

    async def create() -> bytes:
        return dumps(
            await service.open_return(
                await driver_connection(session), principal=idem.principal,
                order_id=body.order_id,
                lines=[(x.line_id, x.quantity, x.reason, x.note) for x in body.lines],
                resolution=Resolution(body.resolution),
                exchange_lines=[(x.sku, x.quantity) for x in body.exchange_lines],
                location_id=body.location_id,
            )
        )  # fmt: skip

    return await idem.run(body, create)


@router.get(
    "", response_model=ListResponse[ReturnPublic], summary="List returns",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_returns(
    session: ReadSessionDep, principal: ListReader, page: PageDep,
    status: ReturnStatus | None = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    number: Annotated[str | None, Query(max_length=32, description="An RMA number.")] = None,
) -> Response:  # fmt: skip
    """Newest first; filters combine. A channel-bound key sees its channel's returns."""
    result = await service.list_returns(
        session, channel_id=principal.channel_id, status=status.value if status else None,
        order_id=order_id, number=number, limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return document_response({"data": list(result.items), "next_cursor": result.next_cursor})


@router.get(
    "/{return_id}", response_model=ReturnPublic, summary="Get a return",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_return(return_id: ReturnId, session: SessionDep, principal: Reader) -> Response:
    conn = await driver_connection(session)
    return document_response(
        await service.load_return(conn, return_id, channel_id=principal.channel_id)
    )


async def _command(
    session: SessionDep, principal: Principal, return_id: str, command: ReturnCommand,
    reason: str | None,
) -> Response:  # fmt: skip
    return document_response(
        await service.change_return(
            await driver_connection(session), principal=principal, return_id=return_id,
            command=command, reason=reason,
        )
    )  # fmt: skip


@router.post(
    "/{return_id}/approve", response_model=ReturnPublic, summary="Approve a return",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def approve_return(return_id: ReturnId, session: SessionDep, principal: Handler) -> Response:
    """`requested` → `approved`: the customer may send the parcel."""
    return await _command(session, principal, return_id, ReturnCommand.APPROVE, None)


@router.post(
    "/{return_id}/reject", response_model=ReturnPublic, summary="Reject a return",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def reject_return(
    return_id: ReturnId, session: SessionDep, principal: Handler, body: OptionalReason
) -> Response:
    """From `requested` or `approved`, before any unit is received (409
    `return_partly_received` after)."""
    return await _command(session, principal, return_id, ReturnCommand.REJECT, body.reason)


@router.post(
    "/{return_id}/cancel", response_model=ReturnPublic, summary="Cancel a return",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def cancel_return(
    return_id: ReturnId, session: SessionDep, principal: Handler, body: OptionalReason
) -> Response:
    """From `requested` or `approved`, before any unit is received."""
    return await _command(session, principal, return_id, ReturnCommand.CANCEL, body.reason)


@router.post(
    "/{return_id}/receive", response_model=ReturnPublic, summary="Receive returned units",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def receive_return(
    return_id: ReturnId, body: ReceiveBody, session: SessionDep, principal: Handler
) -> Response:
    """Units arrived at `location_id`: `resellable` ones go back on hand there (ledger
    `cause_type=return`), `damaged` ones are recorded, not restocked. Several partial
    receipts are allowed; the return is `received` once every unit is in. More than it
    still expects → 409 `exceeds_outstanding`."""
    return document_response(
        await service.receive(
            await driver_connection(session), principal=principal, return_id=return_id,
            location_id=body.location_id,
            receipts=[service.Receipt(x.line_id, x.quantity, x.condition == "resellable")
                      for x in body.lines],
        )
    )  # fmt: skip


@router.post(
    "/{return_id}/complete", response_model=ReturnPublic, summary="Complete a return",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def complete_return(
    request: Request, return_id: ReturnId, session: SessionDep, principal: Handler,
    body: Annotated[CompleteBody, NULL_AS_EMPTY, Body(default_factory=CompleteBody)],
) -> Response:  # fmt: skip
    """`received` → `completed`. A refund return records a refund payment on the order:
    by default the returned lines' prices, plus the order's shipping once with
    `refund_shipping`, or `refund_amount`; never more than was captured and not yet refunded
    (409 `refund_exceeds_captured`, the return stays `received`). An exchange places a new
    order for `exchange_lines` in the same channel, for the same customer and address,
    reserving stock like any order (409 `insufficient_stock`: the return stays `received`),
    and refunds nothing: `refund_amount` or `refund_shipping: true` on it is 422
    `refund_not_allowed` — unless it is completed as a refund instead
    (`resolution: refund`, when what it asked for cannot be sent)."""
    return document_response(
        await service.complete(
            await driver_connection(session), principal=principal, return_id=return_id,
            explicit_amount=body.refund_amount, refund_shipping=body.refund_shipping,
            pending_ttl_seconds=request.app.state.settings.pending_order_ttl,
            instead=Resolution(body.resolution) if body.resolution else None,
        )
    )  # fmt: skip


@router.get(
    "/{return_id}/slip", summary="The return slip (PDF)",
    responses={**PDF, **problem_responses(401, 403, 404, 409, 422)}, response_class=Response,
)  # fmt: skip
async def get_return_slip(return_id: ReturnId, session: SessionDep, principal: Reader) -> Response:
    """For the parcel: the RMA number as text and Code 128, the order number, the lines,
    and the address to send it to — 409 `return_address_missing` while the return's
    location has no address (a slip naming only a warehouse cannot be posted)."""
    conn = await driver_connection(session)
    rma = await service.load_return(conn, return_id, channel_id=principal.channel_id)
    location = await location_of(conn, rma["location_id"])
    if not location["address"]:
        raise Conflict(
            f"The return goes back to {location['name']}, which has no address: give it one "
            "(PATCH /v1/locations/{id} with an address) to print the slip.",
            code="return_address_missing", location_id=rma["location_id"],
        )  # fmt: skip
    return pdf_response(
        return_slip(rma, location, location["address"]), f"return-{rma['number']}.pdf"
    )
