"""Order placement: the hot path — one read, a pure plan, one write.

Within the request's transaction:
1. one read statement: the channel, the products, the customer, risk settings, the
   customer's recent orders, a new order number, the clock — and the stock levels of
   the ordered products at the channel's locations, locked `FOR UPDATE` in
   (product, location) order, so concurrent orders never deadlock and the numbers
   the allocation sees cannot change under it;
2. (a new customer only) an upsert by email;
3. `domain.placement.plan_order`: every decision — prices, demand per product,
   allocation, each line's reservations and backorders, risk, payment, the initial state
   and the events — as rows;
4. one write: the plan as one JSON record to `oms_place_order` (migration 0011), which
   inserts the rows, moves the stock through the one stock path (`oms_move_stock`) and
   records the events through the one event path (`oms_record_events`);
5. (auto-allocation on, the order confirmed) its shipments, as `/allocate` would
   (`services/automation`).
An order that backorders a product where its read locked no level of it — a location of
its channel that never held it, or whose level was made after the read — notes those
places for housekeeping before step 4 (`services/backorders.note_unseen_places`): stock
arriving there meanwhile saw no such order. Where it locked the level, an arrival waits for
it and then finds it (`services/backorders.plan_fills_at`).
Stock is never oversold: the levels are locked, and a CHECK constraint refuses
`reserved > on_hand` whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from oms_api.domain.access import Principal
from oms_api.domain.inventory import StockAt, StockMove
from oms_api.domain.orders import OrderStatus
from oms_api.domain.placement import (
    Contact,
    LineRow,
    OrderPlan,
    OrderRequest,
    OrderRow,
    PaymentRow,
    Placement,
    Product,
    ReservationRow,
    plan_order,
)
from oms_api.domain.risk import RiskSettings, address_key
from oms_api.domain.shipments import FulfillmentSettings
from oms_api.errors import Conflict, NotFound, Unprocessable
from oms_api.ids import new_id, random_id
from oms_api.jsonutil import dumps
from oms_api.models import Base, InventoryMovement, Order, OrderLine, OrderReservation, Payment
from oms_api.services.automation import allocate_if_automatic
from oms_api.services.backorders import note_unseen_places
from oms_api.services.idempotency import RETENTION, Claim
from oms_api.services.order_documents import order_document
from oms_api.services.scoping import fence_found_sql, fence_to_resolved_sql

# Written so that PostgreSQL's generic plan is a good one (no `CASE` choosing the index):
# prepared once per connection, it is then never planned again. The velocity risk rules
# only ask whether the email (`recent_orders`, by ix_orders_email_normalized_id) or the
# shipping address's place (`recent_to_address`: $6 is `domain.risk.address_key` of the
# address, NULL without one; by ix_orders_shipping_address_key_id, migration 0014) has
# that many orders inside its window: of its latest that many (ids are time-ordered),
# count those inside it — a short backward index scan each. `first_order`: the customer
# has no order yet (one probe of ix_orders_customer_id_id; a new email has none).
_DEFAULT_RISK = RiskSettings()
READ_SQL = f"""
WITH ch AS (
    SELECT id, code, active, location_ids FROM channels WHERE id = $1::text
    UNION ALL
    SELECT id, code, active, location_ids FROM channels WHERE $1::text IS NULL AND code = $2
), pr AS (
    SELECT id, sku, name, unit_price, currency, active, allow_backorder
    FROM products WHERE sku = ANY($3::text[])
), lv AS (
    SELECT il.product_id, il.location_id, il.on_hand - il.reserved AS available, loc.priority
    FROM inventory_levels il JOIN locations loc ON loc.id = il.location_id
    WHERE il.product_id IN (SELECT id FROM pr)
      AND (SELECT cardinality(location_ids) = 0 OR il.location_id = ANY(location_ids) FROM ch)
    ORDER BY il.product_id, il.location_id
    FOR UPDATE OF il
), cu AS (
    -- By id, a channel-bound key ($1) finds only a customer its channel knows; by email,
    -- any (the order links to the one customer per email without showing its profile).
    SELECT c.id, c.email_normalized, p.customer_id IS NOT NULL AS known,
           p.name, p.phone
    FROM customers c
    LEFT JOIN customer_profiles p ON p.customer_id = c.id AND {fence_to_resolved_sql("p.channel_id", "ch")}
    WHERE c.id = $4::text AND {fence_found_sql("p.customer_id", 1)}
    UNION ALL
    SELECT c.id, c.email_normalized, p.customer_id IS NOT NULL, p.name, p.phone
    FROM customers c
    LEFT JOIN customer_profiles p ON p.customer_id = c.id AND {fence_to_resolved_sql("p.channel_id", "ch")}
    WHERE $4::text IS NULL AND c.email_normalized = lower($5)
), rs AS (
    SELECT value FROM app_settings WHERE key = 'risk'
)
SELECT (SELECT row_to_json(ch) FROM ch) AS channel,
       (SELECT json_agg(pr) FROM pr) AS products,
       (SELECT json_agg(lv) FROM lv) AS levels,
       (SELECT row_to_json(cu) FROM cu) AS customer,
       (SELECT value FROM rs) AS risk_settings,
       (SELECT value FROM app_settings WHERE key = 'fulfillment') AS fulfillment_settings,
       (SELECT count(*) FROM (
            SELECT o.created_at FROM orders o
            WHERE o.email_normalized = coalesce((SELECT email_normalized FROM cu), lower($5))
            ORDER BY o.id DESC
            LIMIT coalesce(((SELECT value FROM rs) ->> 'velocity_max_orders')::int, {_DEFAULT_RISK.velocity_max_orders})
        ) AS latest
        WHERE latest.created_at > now() - make_interval(secs => coalesce(
            ((SELECT value FROM rs) ->> 'velocity_window_seconds')::int, {_DEFAULT_RISK.velocity_window_seconds}))
       ) AS recent_orders,
       (SELECT count(*) FROM (
            SELECT o.created_at FROM orders o
            WHERE o.shipping_address_key = $6::text
            ORDER BY o.id DESC
            LIMIT coalesce(((SELECT value FROM rs) ->> 'address_velocity_max_orders')::int, {_DEFAULT_RISK.address_velocity_max_orders})
        ) AS latest
        WHERE latest.created_at > now() - make_interval(secs => coalesce(
            ((SELECT value FROM rs) ->> 'address_velocity_window_seconds')::int, {_DEFAULT_RISK.address_velocity_window_seconds}))
       ) AS recent_to_address,
       NOT EXISTS (SELECT FROM orders o WHERE o.customer_id = (SELECT id FROM cu)) AS first_order,
       nextval('order_number_seq') AS number,
       now() AS now
"""

# A new email: the business's record (the channel's profile is written with the order).
CUSTOMER_UPSERT_SQL = """
INSERT INTO customers (id, email, created_at, updated_at)
VALUES ($1, $2, $3, $3)
ON CONFLICT (email_normalized) DO UPDATE SET updated_at = customers.updated_at
RETURNING id, email_normalized
"""

WRITE_SQL = "SELECT outcome, order_id FROM oms_place_order($1::jsonb, $2)"


def writer_columns(
    row: type, model: type[Base], *, filled_by_writer: frozenset[str] = frozenset()
) -> frozenset[str]:
    """The columns the writer fills from the plan's `row`s: `model`'s, less those it fills
    itself. Refused unless `row` has exactly those keys."""
    keys: frozenset[str] = row.__required_keys__ | row.__optional_keys__  # type: ignore[attr-defined]
    columns = frozenset(c.name for c in model.__table__.columns) - filled_by_writer
    if keys != columns:
        raise RuntimeError(
            f"The plan's {row.__name__} does not match the writer's {model.__tablename__}: "
            f"keys it does not know {sorted(keys - columns)}, columns the plan lacks "
            f"{sorted(columns - keys)}."
        )
    return columns


# `oms_place_order` (migration 0011) inserts each of the plan's rows whole, as its table's
# row type, and `oms_move_stock` (migration 0012) reads every move as the ledger's row type
# and inserts it whole (filling `created_at` itself): a key a table lacks would vanish, a
# column the plan lacks would be NULL. Checked once, as this module loads (never per
# order): the plan's row types name exactly the models' columns — `StockMove` too, the one
# shape of a move, whether placement or `services/stock.stock_move` builds it.
WRITER_COLUMNS: dict[str, frozenset[str]] = {
    "order": writer_columns(OrderRow, Order),
    "lines": writer_columns(LineRow, OrderLine),
    "reservations": writer_columns(ReservationRow, OrderReservation),
    "payments": writer_columns(PaymentRow, Payment),
    "stock_moves": writer_columns(
        StockMove, InventoryMovement, filled_by_writer=frozenset({"created_at"})
    ),
}


# The row kinds no record has shown yet (a record may have no payment, say).
_unchecked = set(WRITER_COLUMNS)


def check_record(record: dict[str, Any], kinds: set[str] = _unchecked) -> None:
    """The rows of a record as built (what the types cannot promise): every key one the
    writer knows, every column given. Run until each kind of row has been seen once in a
    process — a flag test per order, no more."""
    for name in list(kinds):
        columns = WRITER_COLUMNS[name]
        rows = [record[name]] if name == "order" else record[name]
        for row in rows:
            if row.keys() != columns:
                raise RuntimeError(
                    f"The plan's {name} row does not match the writer's columns: keys it "
                    f"does not know {sorted(row.keys() - columns)}, columns the plan lacks "
                    f"{sorted(columns - row.keys())}."
                )
        if rows:
            kinds.discard(name)


async def read_placement(
    conn: asyncpg.Connection, *, channel_id: str | None, channel_code: str | None,
    skus: list[str], customer_id: str | None, email: str | None,
    shipping_address_key: str | None = None,
) -> asyncpg.Record:  # fmt: skip
    """Step 1: everything the plan needs, the stock levels locked. `shipping_address_key`
    (`domain.risk.address_key`): whose recent orders the velocity-by-address rule counts;
    None counts none."""
    row = await conn.fetchrow(
        READ_SQL, channel_id, channel_code, skus, customer_id, email, shipping_address_key
    )
    if row is None:  # a SELECT without FROM always answers one row
        raise RuntimeError("the placement read answered no row")
    return row


def placement_at(
    row: asyncpg.Record, *, channel_id: str, customer: dict[str, Any] | None,
    pending_ttl_seconds: int, shipping_address_key: str | None, purchase: bool = True,
) -> Placement:  # fmt: skip
    """What the read found, as the plan takes it (a new customer's id comes later).
    `shipping_address_key`: the one the read was given. `purchase=False` (an exchange):
    no velocity rule counts it."""
    now: datetime = row["now"]
    return Placement(
        order_id=new_id("ord"), number=row["number"], now=now,
        expires_at=now + timedelta(seconds=pending_ttl_seconds), channel_id=channel_id,
        customer_id=customer["id"] if customer else "",
        email_normalized=customer["email_normalized"] if customer else "",
        products={p["sku"]: Product(**p) for p in row["products"] or ()},
        stock=[
            StockAt(lv["product_id"], lv["location_id"], lv["priority"], lv["available"])
            for lv in row["levels"] or ()
        ],
        risk=RiskSettings.from_json(row["risk_settings"]),
        recent_orders_from_email=row["recent_orders"] if purchase else 0,
        shipping_address_key=shipping_address_key,
        recent_orders_to_address=row["recent_to_address"] if purchase else 0,
        first_order=row["first_order"],
        new_id=new_id,
    )  # fmt: skip


async def write_plan(
    conn: asyncpg.Connection, plan: OrderPlan, *, channel_code: str, customer: dict[str, Any],
    inline: Contact | None, idempotency: Claim | None, now: datetime,
) -> bytes:  # fmt: skip
    """Step 4: the plan, written by `oms_place_order`; the order's document as JSON."""
    document = order_document(
        plan.order | {"channel": channel_code}, plan.lines, plan.reservations, plan.payments
    )
    payload = dumps(document)
    record = placement_record(plan, customer, inline, idempotency, now)
    if _unchecked:
        check_record(record)
    result = await conn.fetchrow(WRITE_SQL, dumps(record).decode(), payload.decode())
    if result is None:
        raise RuntimeError("oms_place_order answered no row")
    if result["outcome"] == "external_id_taken":
        raise Conflict(
            f"The channel already has an order with external_id {plan.order['external_id']!r}.",
            code="external_id_taken",
            order_id=result["order_id"],
        )
    return payload


async def place_order(
    conn: asyncpg.Connection,
    *,
    principal: Principal,
    order: OrderRequest,
    channel_code: str | None,
    customer_id: str | None,
    inline: Contact | None,
    pending_ttl_seconds: int,
    idempotency: Claim | None,
) -> bytes:
    """Place `order` in the channel named by its code (None: the key's own) for the
    customer with `customer_id`, or the one given `inline`; returns the response body
    (the order document as JSON)."""
    ship_to = address_key(order.shipping_address)
    row = await read_placement(
        conn, channel_id=principal.channel_id, channel_code=channel_code,
        skus=sorted({line.sku for line in order.lines}), customer_id=customer_id,
        email=inline.email if inline else None, shipping_address_key=ship_to,
    )  # fmt: skip
    channel = _check_channel(row["channel"], principal, channel_code)
    customer = row["customer"]  # None: a new email, or an id the key's channel cannot see
    if customer is None and inline is None:
        raise NotFound(
            f"No customer with id {customer_id}.",
            errors=[{"loc": ["body", "customer_id"], "msg": "no such customer"}],
        )
    plan = plan_order(
        order,
        placement_at(
            row,
            channel_id=channel["id"],
            customer=customer,
            pending_ttl_seconds=pending_ttl_seconds,
            shipping_address_key=ship_to,
        ),
    )
    if customer is None and inline is not None:  # a new email, created now it can be placed
        created = await conn.fetchrow(
            CUSTOMER_UPSERT_SQL, random_id("cus"), inline.email, row["now"]
        )
        if created is None:  # an upsert with RETURNING always answers its row
            raise RuntimeError("the customer upsert answered no row")
        customer = dict(created) | {"known": False, "name": None, "phone": None}
        plan.order |= {
            "customer_id": created["id"],
            "email_normalized": created["email_normalized"],
        }
    backordered = {line["product_id"] for line in plan.lines if line["quantity_backordered"]}
    if backordered:  # before the write: the stock path's locks come after (backorders.py)
        seen = [(lv["product_id"], lv["location_id"]) for lv in row["levels"] or ()]
        if not _saw_every_place(channel, backordered, seen):
            await note_unseen_places(conn, channel["id"], sorted(backordered), seen)
    payload = await write_plan(
        conn, plan, channel_code=channel["code"], customer=customer, inline=inline,
        idempotency=idempotency, now=row["now"],
    )  # fmt: skip
    if plan.order["status"] == OrderStatus.CONFIRMED and row["fulfillment_settings"]:
        await allocate_if_automatic(
            conn, plan.order["id"], plan.order["status"],
            settings=FulfillmentSettings.from_json(row["fulfillment_settings"]),
        )  # fmt: skip
    return payload


def _saw_every_place(
    channel: dict[str, Any], products: set[str], seen: list[tuple[str, str]]
) -> bool:
    """Whether the read locked a level of each of `products` at every location the channel
    lists (a channel with no list sells from all: not known here)."""
    locations = channel["location_ids"]
    return bool(locations) and {(p, loc) for p in products for loc in locations} <= set(seen)


def placement_record(
    plan: OrderPlan, customer: dict[str, Any], inline: Contact | None,
    idempotency: Claim | None, now: datetime, *, new_id: Callable[[str], str] = new_id,
) -> dict[str, Any]:  # fmt: skip
    """The plan as the one JSON record `oms_place_order` takes: the rows to insert, the
    stock moves, the events, the channel's profile of the customer when it changes, and
    the Idempotency-Key's record."""
    name, phone = (inline.name, inline.phone) if inline else (None, None)
    changed = not customer["known"] or (
        (name is not None and name != customer["name"])
        or (phone is not None and phone != customer["phone"])
    )
    return {
        "order": plan.order,
        "lines": plan.lines,
        "reservations": plan.reservations,
        "stock_moves": plan.stock_moves,
        "payments": plan.payments,
        "events": [{"id": new_id("evt"), "type": t} for t in plan.events],
        # By id, the record's spelling may be another channel's: the order's own email.
        "profile": {"email": inline.email if inline else customer["email_normalized"],
                    "name": name, "phone": phone} if changed else None,
        "idempotency": None if idempotency is None else {
            "principal": idempotency.principal, "key": idempotency.key,
            "request_hash": idempotency.request_hash.hex(), "expires_at": now + RETENTION,
        },
    }  # fmt: skip


def _check_channel(
    channel: dict[str, Any] | None, principal: Principal, named: str | None
) -> dict[str, Any]:
    if principal.channel_id is None and named is None:
        raise _invalid(
            "Name the channel (its code): this API key is not bound to one.",
            "channel_required",
            ["body", "channel"],
        )
    if channel is None:
        raise _invalid(f"No channel with code {named}.", "unknown_channel", ["body", "channel"])
    if named is not None and named != channel["code"]:
        raise _invalid(
            f"This API key belongs to channel {channel['code']!r}; it cannot place orders in {named!r}.",
            "channel_mismatch",
            ["body", "channel"],
        )
    if not channel["active"]:
        raise Conflict(f"Channel {channel['code']!r} is inactive.", code="channel_inactive")
    return channel


def _invalid(detail: str, code: str, loc: list[str | int]) -> Unprocessable:
    return Unprocessable(detail, code=code, errors=[{"loc": loc, "msg": detail}])
