"""Customers: one record per email for the business, one profile per channel that knows them.

The storage decides who sees what (migration 0007):
- `customers` is the business's record: the id, the email, and what the admin gave;
- `customer_profiles` holds, per (customer, channel), what that channel gave — the email
  as it spelt it, name, phone, addresses — written by its customer creations and orders.

A channel-bound key reads a customer only through its own channel's profile: the customer
is visible when that profile exists, and every value it answers comes from the profile or
from that channel's own orders. The admin reads the record with every profile. Nothing
here masks fields: a channel's reads never select another channel's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import Principal
from oms_api.errors import Conflict, NotFound
from oms_api.ids import random_id
from oms_api.models import Channel, Customer, CustomerProfile
from oms_api.services.pagination import Page, paginate
from oms_api.services.scoping import fence_sql, scope_to_channel
from oms_api.services.versioned import update_versioned

MAX_ADDRESSES = 20

# The addresses a channel's own orders gave for its customers (newest first, the latest
# MAX_ADDRESSES orders of each profile), read profile by profile.
ORDER_ADDRESSES_SQL = text(
    f"""
    SELECT p.customer_id, p.channel_id, a.address
    FROM customer_profiles p
    CROSS JOIN LATERAL (
        SELECT x.address, o.id
        FROM orders o, LATERAL (VALUES (1, o.shipping_address), (2, o.billing_address))
             AS x(n, address)
        WHERE o.customer_id = p.customer_id AND o.channel_id = p.channel_id
          AND x.address IS NOT NULL
        ORDER BY o.id DESC, x.n
        LIMIT {MAX_ADDRESSES}
    ) a
    WHERE p.customer_id = ANY(:ids) AND {fence_sql("p.channel_id", "channel_id")}
    ORDER BY p.customer_id, p.channel_id, a.id DESC
    """
)


# What the customer has bought, as the caller may see it (one row per customer, in one
# query): the orders not cancelled — their count, the newest one's time, and per currency
# the sum of `total - refunded` less an exchange's credit — and the returns not cancelled
# or rejected. Fenced: a channel's key counts only its own channel's orders and returns.
# Served by the indexes `ix_orders_customer_id_id` and `ix_returns_order_id`.
#
# An exchange's order replaces the returned units of the original order: what they cost
# there, up to the exchange's own total, was bought once (the return's lines' units and
# prices), so only what the exchange costs beyond it counts again. Like every figure here
# this counts totals, not money paid: it is what the returned units were worth, whatever
# credit the exchange's order was paid with (`domain.returns.exchange_credit`, which is at
# most what was paid on the original order and not had back).
#
# The sums are numeric, each amount written as text in the JSON and read back as an int:
# totals reach 10^15 each, so a customer's can pass bigint (and a JSON reader's 64 bits).
PURCHASE_STATS_SQL = text(
    f"""
    SELECT c.id AS customer_id,
           coalesce(sum(v.n), 0)::bigint AS orders_count,
           coalesce(jsonb_agg(jsonb_build_object('currency', v.currency, 'amount', v.amount::text)
                              ORDER BY v.currency) FILTER (WHERE v.currency IS NOT NULL),
                    '[]'::jsonb) AS lifetime_value,
           max(v.last_at) AS last_order_at,
           (SELECT count(*)
            FROM orders ro JOIN returns r ON r.order_id = ro.id
            WHERE ro.customer_id = c.id AND r.status NOT IN ('cancelled', 'rejected')
              AND {fence_sql("r.channel_id", "channel_id")}) AS returns_count
    FROM unnest(CAST(:ids AS text[])) AS c(id)
    LEFT JOIN LATERAL (
        SELECT o.currency, count(*) AS n,
               sum(o.total - o.refunded - CASE WHEN o.exchange_for_return_id IS NULL THEN 0
                   ELSE least(o.total, (SELECT coalesce(sum(rl.quantity * l.unit_price), 0)
                                        FROM return_lines rl
                                        JOIN order_lines l ON l.id = rl.line_id
                                        WHERE rl.return_id = o.exchange_for_return_id))
                   END) AS amount,
               max(o.created_at) AS last_at
        FROM orders o
        WHERE o.customer_id = c.id AND o.status <> 'cancelled'
          AND {fence_sql("o.channel_id", "channel_id")}
        GROUP BY o.currency
    ) v ON true
    GROUP BY c.id
    """
)


async def _purchase_stats(
    session: AsyncSession, customer_ids: Sequence[str], channel_id: str | None
) -> dict[str, dict[str, Any]]:
    """Per customer: `orders_count`, `lifetime_value`, `last_order_at`, `returns_count` —
    across every channel, or only `channel_id`'s when given."""
    rows = await session.execute(
        PURCHASE_STATS_SQL, {"ids": list(customer_ids), "channel_id": channel_id}
    )
    return {
        row.customer_id: {
            "orders_count": row.orders_count,
            "lifetime_value": [
                {"currency": x["currency"], "amount": int(x["amount"])} for x in row.lifetime_value
            ],
            "last_order_at": row.last_order_at,
            "returns_count": row.returns_count,
        }
        for row in rows
    }


def _merged(*groups: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Addresses in the order given, each once, at most MAX_ADDRESSES."""
    out: list[dict[str, Any]] = []
    for group in groups:
        for address in group:
            if address not in out:
                out.append(address)
    return out[:MAX_ADDRESSES]


async def _profiles(
    session: AsyncSession, customer_ids: Sequence[str], channel_id: str | None
) -> dict[str, list[dict[str, Any]]]:
    """Per customer: its profiles (only `channel_id`'s when given) as documents, oldest first,
    each with the addresses its channel gave, from customer creations and from orders."""
    stmt = (
        select(CustomerProfile, Channel.code)
        .join(Channel, Channel.id == CustomerProfile.channel_id)
        .where(CustomerProfile.customer_id.in_(customer_ids))
        .order_by(CustomerProfile.created_at, CustomerProfile.channel_id)
    )
    stmt = scope_to_channel(stmt, channel_id, CustomerProfile.channel_id)
    from_orders: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in await session.execute(
        ORDER_ADDRESSES_SQL, {"ids": list(customer_ids), "channel_id": channel_id}
    ):
        from_orders.setdefault((row.customer_id, row.channel_id), []).append(row.address)
    out: dict[str, list[dict[str, Any]]] = {}
    for profile, code in await session.execute(stmt):
        out.setdefault(profile.customer_id, []).append({
            "channel_id": profile.channel_id,
            "channel": code,
            "email": profile.email,
            "name": profile.name,
            "phone": profile.phone,
            "addresses": _merged(
                profile.addresses, from_orders.get((profile.customer_id, profile.channel_id), [])
            ),
            "version": profile.version,
            "created_at": profile.created_at,
            "updated_at": profile.updated_at,
        })  # fmt: skip
    return out


def _as_seen_by_channel(customer_id: str, profile: dict[str, Any]) -> dict[str, Any]:
    """The customer as one channel knows them: its profile, nothing else."""
    return {
        "id": customer_id,
        **{k: profile[k] for k in ("email", "name", "phone", "addresses", "version")},
        **{k: profile[k] for k in ("created_at", "updated_at")},
        "profiles": [profile],
    }


def _as_seen_by_admin(customer: Customer, profiles: list[dict[str, Any]]) -> dict[str, Any]:
    """The business's record: what the admin gave, else what a channel gave most recently."""
    latest_first = sorted(profiles, key=lambda p: p["updated_at"], reverse=True)
    return {
        "id": customer.id,
        "email": customer.email,
        "name": customer.name or next((p["name"] for p in latest_first if p["name"]), None),
        "phone": customer.phone or next((p["phone"] for p in latest_first if p["phone"]), None),
        "addresses": _merged(customer.addresses, *(p["addresses"] for p in latest_first)),
        "version": customer.version,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "profiles": profiles,
    }


def folded(email: str) -> ColumnElement[str]:
    """An email as `email_normalized` holds it: case-folded by PostgreSQL's `lower()`, the
    one rule (the column is computed by it, and placement compares with it). Python's
    `str.lower()` folds some letters otherwise (`İ` becomes two code points, `i̇`; PostgreSQL
    gives `i`), so it would look for another email than the one stored."""
    return func.lower(literal(email, String))


async def _documents(
    session: AsyncSession, principal: Principal, customer_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The customers' documents as `principal` may see them, in `customer_ids` order."""
    profiles = await _profiles(session, customer_ids, principal.channel_id)
    stats = await _purchase_stats(session, customer_ids, principal.channel_id)
    rows = {
        c.id: c
        for c in await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
    }
    if principal.channel_id is not None:
        return [
            _as_seen_by_channel(cid, profiles[cid][0])
            | stats[cid]
            | {"accepts_follow_up": rows[cid].accepts_follow_up}
            for cid in customer_ids
        ]
    return [
        _as_seen_by_admin(rows[cid], profiles.get(cid, []))
        | stats[cid]
        | {"accepts_follow_up": rows[cid].accepts_follow_up}
        for cid in customer_ids
    ]


async def create_customer(
    session: AsyncSession, *, principal: Principal, email: str, name: str | None,
    phone: str | None, addresses: list[dict[str, Any]],
) -> dict[str, Any]:  # fmt: skip
    """The admin creates the business's record (409 `email_taken` if the email is known).
    A channel creates its profile of the customer with that email — of a new record, or of
    one it cannot see — and 409 `email_taken` only if its channel already knows the email."""
    if principal.channel_id is None:
        created = await session.scalar(
            insert(Customer)
            .values(id=random_id("cus"), email=email, name=name, phone=phone, addresses=addresses)
            .on_conflict_do_nothing(index_elements=[Customer.email_normalized])
            .returning(Customer.id)
        )
        if created is None:
            raise Conflict(f"A customer with email {email} already exists.", code="email_taken")
        return (await _documents(session, principal, [created]))[0]
    customer_id = await session.scalar(
        insert(Customer)
        .values(id=random_id("cus"), email=email)
        .on_conflict_do_nothing(index_elements=[Customer.email_normalized])
        .returning(Customer.id)
    ) or await session.scalar(select(Customer.id).where(Customer.email_normalized == folded(email)))
    linked = await session.scalar(
        insert(CustomerProfile)
        .values(
            customer_id=customer_id, channel_id=principal.channel_id, email=email, name=name,
            phone=phone, addresses=addresses,
        )
        .on_conflict_do_nothing()
        .returning(CustomerProfile.customer_id)
    )  # fmt: skip
    if linked is None:
        raise Conflict(
            f"This channel already has a customer with email {email}.", code="email_taken"
        )
    return (await _documents(session, principal, [linked]))[0]


async def ensure_visible(session: AsyncSession, *, principal: Principal, customer_id: str) -> None:
    """404 unless the customer exists and, for a channel-bound key, its channel knows them."""
    if principal.channel_id is None:
        stmt = select(Customer.id).where(Customer.id == customer_id)
    else:  # through its channel's profile
        stmt = scope_to_channel(
            select(CustomerProfile.customer_id).where(CustomerProfile.customer_id == customer_id),
            principal, CustomerProfile.channel_id,
        )  # fmt: skip
    if await session.scalar(stmt) is None:
        raise NotFound(f"No customer with id {customer_id}.")


async def set_accepts_follow_up(
    session: AsyncSession, *, principal: Principal, customer_id: str, accepts: bool,
    if_match: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Whether the customer takes follow-up emails (docs/notifications.md); any channel that
    knows the customer may record their answer, which holds for every channel. With
    `if_match`, only while the `version` the caller sees is that one (412 otherwise): an
    admin key's is the customer's record's, a channel key's its channel's profile's, which
    its change moves on too. The answer is in every channel's view, so a change of it moves
    every other channel's version on as well (a PATCH that changes nothing moves none: that
    would tell them someone else wrote)."""
    await ensure_visible(session, principal=principal, customer_id=customer_id)
    # The record's row first, locked: one PATCH of a customer at a time, each checking its
    # If-Match against what the one before it left.
    was = await session.scalar(
        select(Customer.accepts_follow_up).where(Customer.id == customer_id).with_for_update()
    )
    record_written = False
    if principal.channel_id is not None:
        await update_versioned(
            session, CustomerProfile, changes={}, if_match=if_match, what="customer",
            ident=customer_id,
            where=(CustomerProfile.customer_id == customer_id)
            & (CustomerProfile.channel_id == principal.channel_id),
        )  # fmt: skip
    elif if_match is not None:  # the record itself, at the version the admin read
        await update_versioned(
            session, Customer, where=Customer.id == customer_id,
            changes={"accepts_follow_up": accepts}, if_match=if_match, what="customer",
            ident=customer_id,
        )  # fmt: skip
        record_written = True
    if was is not accepts:
        if not record_written:
            await session.execute(
                update(Customer)
                .where(Customer.id == customer_id)
                .values(accepts_follow_up=accepts, version=Customer.version + 1,
                        updated_at=func.now())
            )  # fmt: skip
        await session.execute(
            update(CustomerProfile)
            .where(CustomerProfile.customer_id == customer_id,
                   CustomerProfile.channel_id.is_distinct_from(principal.channel_id))
            .values(version=CustomerProfile.version + 1, updated_at=func.now())
        )  # fmt: skip
    return (await _documents(session, principal, [customer_id]))[0]


async def get_customer(
    session: AsyncSession, *, principal: Principal, customer_id: str
) -> dict[str, Any]:
    await ensure_visible(session, principal=principal, customer_id=customer_id)
    return (await _documents(session, principal, [customer_id]))[0]


async def list_customers(
    session: AsyncSession,
    *,
    principal: Principal,
    email: str | None,
    limit: int,
    cursor: str | None,
) -> Page[dict[str, Any]]:
    """Newest first: for a channel-bound key, by when its channel first knew them."""
    if principal.channel_id is None:
        stmt = select(Customer.id, Customer.created_at)
        keys = [Customer.created_at, Customer.id]
        if email is not None:
            stmt = stmt.where(Customer.email_normalized == folded(email))
    else:
        stmt = scope_to_channel(
            select(CustomerProfile.customer_id, CustomerProfile.created_at),
            principal, CustomerProfile.channel_id,
        )  # fmt: skip
        keys = [CustomerProfile.created_at, CustomerProfile.customer_id]
        if email is not None:
            stmt = stmt.join(Customer, Customer.id == CustomerProfile.customer_id).where(
                Customer.email_normalized == folded(email)
            )
    page = await paginate(session, stmt, keys=keys, limit=limit, cursor=cursor)
    ids = [row[0] for row in page.items]
    return Page(await _documents(session, principal, ids), page.next_cursor)
