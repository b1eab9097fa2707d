"""Orders: placement (the hot path), reads, commands and payments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response

from oms_api.api.deps import (
    NULL_AS_EMPTY,
    IdempotencyKeyHeader,
    IdempotentCreate,
    PageDep,
    ReadRoute,
    ReadSessionDep,
    SessionDep,
    authorize,
    authorize_creation,
    idempotent_create,
    read_require,
    require,
)
from oms_api.api.hot_route import HotRoute
from oms_api.api.problems import problem_responses
from oms_api.db import HOT_PATH_BEGIN, driver_connection
from oms_api.domain.access import Principal, Scope
from oms_api.domain.orders import OrderCommand, OrderStatus
from oms_api.domain.payments import PaymentKind
from oms_api.domain.placement import Contact, LineRequest, OrderRequest, PaymentRequest
from oms_api.jsonutil import dumps
from oms_api.schemas.common import ListResponse, TimestampFilter
from oms_api.schemas.orders import (
    OrderCreate,
    OrderEventPublic,
    OrderPublic,
    PaymentCreate,
    ReasonBody,
)
from oms_api.services import orders as service
from oms_api.services import placement
from oms_api.services.idempotency import Claim
from oms_api.services.pagination import Page

router = APIRouter(prefix="/v1/orders", tags=["orders"], route_class=ReadRoute)
OrdersReader = Annotated[Principal, require(Scope.ORDERS_READ)]
OrdersListReader = Annotated[Principal, read_require(Scope.ORDERS_READ)]
OrdersWriter = Annotated[Principal, require(Scope.ORDERS_WRITE)]
OrderId = Annotated[str, Path(max_length=64, description="The order's id.")]
# A command's optional reason: no body, `{}` or `null` give none.
OptionalReason = Annotated[ReasonBody, NULL_AS_EMPTY, Body(default_factory=ReasonBody)]


def document_response(document: dict[str, Any], status_code: int = 200) -> Response:
    return Response(dumps(document), status_code, media_type="application/json")


def orders_page(page: Page[dict[str, Any]]) -> Response:
    return document_response({"data": list(page.items), "next_cursor": page.next_cursor})


async def create_order(
    request: Request,
    body: OrderCreate,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Reserves stock in the same transaction that creates the order: at the channel's
    locations, from as few locations as possible, by priority. Demand for a SKU on several
    lines is summed first. If any SKU is short (and does not allow backorders): 409
    `insufficient_stock` listing each (`sku`, `requested`, `available`), and nothing is
    reserved. Payment `authorized`/`paid` (or method `invoice`/`cash_on_delivery`) with a
    passing risk check confirms the order at once; a risk hold puts it `on_hold`. A payment
    `amount` above the total is 422 (`amount_exceeds_order_total`, or
    `capture_exceeds_authorized` when `paid`).
    `external_id` is unique per channel (409 `external_id_taken`). The customer is
    `customer_id` (404 if the key's channel does not know that customer) or inline
    `customer`, found or created by email."""
    # The hot path: one plain asyncpg transaction, no session, no nested dependencies.
    async with request.app.state.database.transaction(begin=HOT_PATH_BEGIN) as conn:
        claim: Claim | None = None
        if idempotency_key is None:
            principal = await authorize(request, conn, Scope.ORDERS_WRITE)
        else:
            principal, claimed = await authorize_creation(
                request, conn, Scope.ORDERS_WRITE, idempotency_key, body
            )
            if isinstance(claimed, Response):  # a retry: its first response, replayed
                return claimed
            claim = claimed
        payload = await placement.place_order(
            conn,
            principal=principal,
            order=order_request(body),
            channel_code=body.channel,
            customer_id=body.customer_id,
            inline=contact(body),
            pending_ttl_seconds=request.app.state.settings.pending_order_ttl,
            idempotency=claim,
        )
    return Response(payload, 201, media_type="application/json")


class PlacementRoute(HotRoute):
    """Placement's `HotRoute`: `create_order` checks its caller itself, so a request whose
    body is invalid is first checked for its key (401, 403) as every other route's is."""

    async def before_refusing(self, request: Request) -> None:
        async with request.app.state.database.transaction() as conn:
            await authorize(request, conn, Scope.ORDERS_WRITE)


# The hot path's route: documented from the signature as any other, handled without
# FastAPI's per-request dependency solving (`api.hot_route`).
router.add_api_route(
    "", create_order, methods=["POST"], route_class_override=PlacementRoute, status_code=201,
    response_model=OrderPublic, summary="Place an order",
    responses=problem_responses(401, 403, 404, 409, 413, 422),
)  # fmt: skip


def contact(body: OrderCreate) -> Contact | None:
    """The inline customer as a plain value (None: the order names `customer_id`)."""
    c = body.customer
    return None if c is None else Contact(c.email, c.name, c.phone)


def order_request(body: OrderCreate) -> OrderRequest:
    """The validated body as the plan takes it (the service never sees a request model)."""
    payment = body.payment
    return OrderRequest(
        lines=[LineRequest(line.sku, line.quantity, line.unit_price) for line in body.lines],
        currency=body.currency,
        shipping_price=body.shipping_price,
        payment=None if payment is None else PaymentRequest(
            payment.method, payment.status, payment.amount, payment.reference
        ),
        shipping_address=None if body.shipping_address is None else body.shipping_address.model_dump(),
        billing_address=None if body.billing_address is None else body.billing_address.model_dump(),
        external_id=body.external_id,
        note=body.note,
        metadata=body.metadata,
    )  # fmt: skip


@router.get(
    "", response_model=ListResponse[OrderPublic], summary="List orders",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_orders(
    session: ReadSessionDep,
    principal: OrdersListReader,
    page: PageDep,
    status: OrderStatus | None = None,
    channel: Annotated[str | None, Query(max_length=64, description="Channel code.")] = None,
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    external_id: Annotated[str | None, Query(max_length=128)] = None,
    created_after: TimestampFilter | None = None,
    created_before: TimestampFilter | None = None,
    q: Annotated[str | None, Query(max_length=254, description="Order number or email.")] = None,
) -> Response:
    """Newest first; filters combine. `created_after` takes orders placed at or after it,
    `created_before` those placed strictly before it: `created_after=2026-11-01&created_before=
    2026-12-01` is November, each order once. A channel-bound key sees only its channel's
    orders."""
    result = await service.list_orders(
        session, channel_id=principal.channel_id,
        status=status.value if status else None, channel_code=channel, customer_id=customer_id,
        external_id=external_id, created_after=created_after, created_before=created_before,
        q=q, limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return orders_page(result)


@router.get(
    "/{order_id}", response_model=OrderPublic, summary="Get an order",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_order(order_id: OrderId, session: SessionDep, principal: OrdersReader) -> Response:
    conn = await driver_connection(session)
    return document_response(
        await service.get_order(conn, order_id=order_id, channel_id=principal.channel_id)
    )


@router.get(
    "/{order_id}/events", response_model=ListResponse[OrderEventPublic],
    summary="An order's timeline", responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def list_order_events(
    order_id: OrderId, session: ReadSessionDep, principal: OrdersListReader, page: PageDep
) -> Response:
    """The order's events, oldest first (by `sequence`), in pages; `data` is the order as
    it was then."""
    events = await service.order_events(
        session, order_id=order_id, channel_id=principal.channel_id,
        limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return orders_page(events)


async def _command(
    session: SessionDep,
    principal: Principal,
    order_id: str,
    command: OrderCommand,
    reason: str | None,
) -> Response:
    document = await service.change_state(
        await driver_connection(session), order_id=order_id, channel_id=principal.channel_id,
        command=command, reason=reason,
    )  # fmt: skip
    return document_response(document)


COMMAND_ERRORS = problem_responses(401, 403, 404, 409, 413, 422)


@router.post(
    "/{order_id}/cancel",
    response_model=OrderPublic,
    summary="Cancel an order",
    responses=COMMAND_ERRORS,
)
async def cancel_order(
    order_id: OrderId, session: SessionDep, principal: OrdersWriter, body: OptionalReason
) -> Response:
    """Releases every unshipped reservation. Allowed while `pending`, `on_hold` or
    `confirmed`; otherwise 409 `invalid_transition`."""
    return await _command(session, principal, order_id, OrderCommand.CANCEL, body.reason)


@router.post(
    "/{order_id}/hold",
    response_model=OrderPublic,
    summary="Put an order on hold",
    responses=COMMAND_ERRORS,
)
async def hold_order(
    order_id: OrderId, session: SessionDep, principal: OrdersWriter, body: OptionalReason
) -> Response:
    """Stops fulfilment until released; reservations stay. From `pending` or `confirmed`."""
    return await _command(session, principal, order_id, OrderCommand.HOLD, body.reason)


@router.post(
    "/{order_id}/release",
    response_model=OrderPublic,
    summary="Release a held order",
    responses=COMMAND_ERRORS,
)
async def release_order(
    order_id: OrderId, session: SessionDep, principal: OrdersWriter
) -> Response:
    """Back to `confirmed` if its payment is settled (or needs none), else `pending`."""
    return await _command(session, principal, order_id, OrderCommand.RELEASE, None)


@router.post(
    "/{order_id}/payments", response_model=OrderPublic, summary="Record a payment transaction",
    responses=COMMAND_ERRORS,
)  # fmt: skip
async def record_order_payment(
    order_id: OrderId,
    body: PaymentCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.ORDERS_WRITE)],
) -> Response:
    """`authorization`, `capture`, `refund` or `void`, never past the order's total: an
    authorization at most what is owed and not already authorized (409
    `amount_exceeds_order_total`), a capture at most what is authorized and open — with
    none open, a sale of at most the total less what is captured, which counts in
    `authorized` too (409 `capture_exceeds_authorized`), a refund at most what is captured
    and not refunded (409 `refund_exceeds_captured`), a void at most the open authorization
    (409 `void_exceeds_authorized`). A refusal names
    `requested`, `total`, `authorized`, `captured`, `refunded`, `voided` and the limit. A
    `pending` order whose payment is now settled becomes `confirmed`. Send an
    Idempotency-Key: a retried capture then never charges twice."""

    async def record() -> bytes:
        document = await service.record_payment(
            await driver_connection(session), order_id=order_id,
            channel_id=idem.principal.channel_id, kind=PaymentKind(body.kind), amount=body.amount,
            reference=body.reference,
        )  # fmt: skip
        return dumps(document)

    return await idem.run(body, record, status_code=200)
