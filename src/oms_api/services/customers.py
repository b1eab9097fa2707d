"""Customers: shared by all channels, unique by email regardless of case.

A channel-bound caller sees a customer its channel created or has an order from.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import Principal
from oms_api.errors import Conflict, NotFound
from oms_api.ids import new_id
from oms_api.models import Customer, Order
from oms_api.services.pagination import Page, paginate


def _visible(stmt: Any, principal: Principal) -> Any:
    if principal.channel_id is None:
        return stmt
    has_order = exists().where(
        Order.customer_id == Customer.id, Order.channel_id == principal.channel_id
    )
    return stmt.where(or_(Customer.channel_id == principal.channel_id, has_order))


async def create_customer(
    session: AsyncSession, *, principal: Principal, email: str, name: str | None,
    phone: str | None, addresses: list[dict[str, Any]],
) -> Customer:  # fmt: skip
    stmt = (
        insert(Customer)
        .values(
            id=new_id("cus"),
            email=email,
            name=name,
            phone=phone,
            addresses=addresses,
            channel_id=principal.channel_id,
        )
        .on_conflict_do_nothing(index_elements=[Customer.email_normalized])
        .returning(Customer)
    )
    customer = (await session.scalars(stmt)).first()
    if customer is None:
        raise Conflict(f"A customer with email {email} already exists.", code="email_taken")
    return customer


async def get_customer(
    session: AsyncSession, *, principal: Principal, customer_id: str
) -> Customer:
    customer: Customer | None = await session.scalar(
        _visible(select(Customer).where(Customer.id == customer_id), principal)
    )
    if customer is None:
        raise NotFound(f"No customer with id {customer_id}.")
    return customer


async def list_customers(
    session: AsyncSession,
    *,
    principal: Principal,
    email: str | None,
    limit: int,
    cursor: str | None,
) -> Page[Customer]:
    stmt = _visible(select(Customer), principal)
    if email is not None:
        stmt = stmt.where(Customer.email_normalized == email.lower())
    return await paginate(session, stmt, keys=[Customer.id], limit=limit, cursor=cursor)
