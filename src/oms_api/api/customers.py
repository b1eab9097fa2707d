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
)
from oms_api.api.orders import orders_page
from oms_api.api.problems import problem_responses
from oms_api.domain.access import Principal, Scope
from oms_api.schemas.common import ListResponse
from oms_api.schemas.customers import CustomerCreate, CustomerPublic, CustomerUpdate
from oms_api.schemas.orders import OrderPublic
from oms_api.services import customers as service
from oms_api.services import orders as order_service

router = APIRouter(prefix="/v1/customers", tags=["customers"], route_class=ReadRoute)
OrdersReader = Annotated[Principal, require(Scope.ORDERS_READ)]
OrdersListReader = Annotated[Principal, read_require(Scope.ORDERS_READ)]
CustomerId = Annotated[str, Path(max_length=64)]


@router.post(
    "", status_code=201, response_model=CustomerPublic, summary="Create a customer",
    responses=problem_responses(401, 403, 409, 413, 422),
)  # fmt: skip
async def create_customer(
    body: CustomerCreate,
    session: SessionDep,
    idem: Annotated[IdempotentCreate, idempotent_create(Scope.ORDERS_WRITE)],
) -> Response:
    """With an admin key: the business's record of a new email (409 `email_taken` if the
    email is known). With a channel key: the channel's own profile of the customer with that
    email — whether or not other channels know them, which it cannot tell — and 409
    `email_taken` only if its own channel already has this email. Orders also create
    customers inline, found or created by email (case-insensitive)."""

    async def create() -> CustomerPublic:
        customer = await service.create_customer(
            session, principal=idem.principal, email=body.email, name=body.name, phone=body.phone,
            addresses=[a.model_dump() for a in body.addresses],
        )  # fmt: skip
        return CustomerPublic.model_validate(customer)

    return await idem.run(body, create, versioned=True)


@router.get(
    "", response_model=ListResponse[CustomerPublic], summary="List customers",
    responses=problem_responses(401, 403, 422),
)  # fmt: skip
async def list_customers(
    session: ReadSessionDep, principal: OrdersListReader, page: PageDep,
    email: Annotated[str | None, Query(max_length=254, description="Exact, any case.")] = None,
) -> ListResponse[CustomerPublic]:  # fmt: skip
    """Newest first. A channel-bound key sees the customers its channel created or sold to,
    as its channel knows them."""
    result = await service.list_customers(
        session, principal=principal, email=email, limit=page.limit, cursor=page.cursor
    )
    return ListResponse.of(CustomerPublic, result)


@router.get(
    "/{customer_id}", response_model=CustomerPublic, summary="Get a customer",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def get_customer(
    customer_id: CustomerId, session: SessionDep, principal: OrdersReader, response: Response
) -> CustomerPublic:
    """`ETag`: the `version` you see, for `If-Match`."""
    customer = CustomerPublic.model_validate(
        await service.get_customer(session, principal=principal, customer_id=customer_id)
    )
    response.headers["ETag"] = etag(customer.version)
    return customer


@router.patch(
    "/{customer_id}", response_model=CustomerPublic, summary="Update a customer's preferences",
    responses=problem_responses(401, 403, 404, 412, 413, 422),
)  # fmt: skip
async def update_customer(
    customer_id: CustomerId, body: CustomerUpdate, session: SessionDep,
    principal: Annotated[Principal, require(Scope.ORDERS_WRITE)], response: Response,
    if_match: IfMatch = None,
) -> CustomerPublic:  # fmt: skip
    """`accepts_follow_up`: whether follow-up emails go to them (a storefront's unsubscribe
    link, or ops acting on a reply). A channel key changes only a customer its channel
    knows (another: 404); the answer holds for every channel. `If-Match` takes the
    `version` the caller read (412 `version_mismatch` if it moved on); a channel key's
    `version` is its channel's view of the customer, which its own changes move on, and
    any change of the answer (it is in every channel's view)."""
    customer = CustomerPublic.model_validate(
        await service.set_accepts_follow_up(
            session, principal=principal, customer_id=customer_id,
            accepts=body.accepts_follow_up, if_match=parse_if_match(if_match),
        )
    )  # fmt: skip
    response.headers["ETag"] = etag(customer.version)
    return customer


@router.get(
    "/{customer_id}/orders", response_model=ListResponse[OrderPublic], summary="A customer's orders",
    responses=problem_responses(401, 403, 404, 422),
)  # fmt: skip
async def list_customer_orders(
    customer_id: CustomerId, session: ReadSessionDep, principal: OrdersListReader, page: PageDep
) -> Response:
    """Purchase history, newest first (for a channel-bound key: its channel's orders)."""
    await service.ensure_visible(session, principal=principal, customer_id=customer_id)
    result = await order_service.list_orders(
        session, channel_id=principal.channel_id,
        customer_id=customer_id, limit=page.limit, cursor=page.cursor,
    )  # fmt: skip
    return orders_page(result)
