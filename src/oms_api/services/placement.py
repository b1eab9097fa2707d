"""Order placement: the hot path, written as a few hand-made SQL round trips.

Within the request's transaction:
1. one read statement: the channel, the products, the customer, risk settings, the
   customer's recent orders, a new order number, the clock — and the stock levels of
   the ordered products at the channel's locations, locked `FOR UPDATE` in
   (product, location) order, so concurrent orders never deadlock and the numbers
   the allocation sees cannot change under it;
2. (a new customer only) an upsert by email;
3. pure rules in Python: prices, demand per product, allocation, risk, payment, state;
4. one write statement (data-modifying CTEs): the order, its lines, the reservations
   (conditional: `on_hand - reserved >= quantity`), allocations, ledger movements,
   payments, events and the Idempotency-Key record.
Stock is never oversold: the levels are locked, the UPDATE is conditional, and a CHECK
constraint refuses `reserved > on_hand` whatever happens.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from oms_api.domain import events as event_types
from oms_api.domain.access import Principal
from oms_api.domain.errors import DomainError
from oms_api.domain.inventory import StockAt, allocate
from oms_api.domain.orders import OrderStatus
from oms_api.domain.payments import (
    PaymentKind,
    PaymentTotals,
    apply_payment,
    is_settled,
    payment_status,
)
from oms_api.domain.risk import RiskInput, RiskSettings, assess
from oms_api.errors import Conflict, NotFound, Unprocessable
from oms_api.ids import new_id, random_id
from oms_api.jsonutil import dumps
from oms_api.schemas.orders import OrderCreate
from oms_api.services.idempotency import RETENTION, Claim
from oms_api.services.order_documents import iso, line_document, order_document

# Written so that PostgreSQL's generic plan is a good one (no `CASE` choosing the index):
# prepared once per connection, it is then never planned again. The risk rule only asks
# whether the email has `velocity_max_orders` orders inside the window: of its latest that
# many (ids are time-ordered), count those inside it — a short backward index scan.
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
    SELECT c.id, c.email, c.email_normalized, p.customer_id IS NOT NULL AS known,
           p.name, p.phone
    FROM customers c
    LEFT JOIN customer_profiles p ON p.customer_id = c.id AND p.channel_id = (SELECT id FROM ch)
    WHERE c.id = $4::text AND ($1::text IS NULL OR p.customer_id IS NOT NULL)
    UNION ALL
    SELECT c.id, c.email, c.email_normalized, p.customer_id IS NOT NULL, p.name, p.phone
    FROM customers c
    LEFT JOIN customer_profiles p ON p.customer_id = c.id AND p.channel_id = (SELECT id FROM ch)
    WHERE $4::text IS NULL AND c.email_normalized = lower($5)
), rs AS (
    SELECT value FROM app_settings WHERE key = 'risk'
)
SELECT (SELECT row_to_json(ch) FROM ch) AS channel,
       (SELECT json_agg(pr) FROM pr) AS products,
       (SELECT json_agg(lv) FROM lv) AS levels,
       (SELECT row_to_json(cu) FROM cu) AS customer,
       (SELECT value FROM rs) AS risk_settings,
       (SELECT count(*) FROM (
            SELECT o.created_at FROM orders o
            WHERE o.email_normalized = coalesce((SELECT email_normalized FROM cu), lower($5))
            ORDER BY o.id DESC
            LIMIT coalesce(((SELECT value FROM rs) ->> 'velocity_max_orders')::int, {_DEFAULT_RISK.velocity_max_orders})
        ) AS latest
        WHERE latest.created_at > now() - make_interval(secs => coalesce(
            ((SELECT value FROM rs) ->> 'velocity_window_seconds')::int, {_DEFAULT_RISK.velocity_window_seconds}))
       ) AS recent_orders,
       nextval('order_number_seq') AS number,
       now() AS now
"""

MAX_ORDER_TOTAL = 10**15  # minor units; far above any real order, far below BIGINT

# A new email: the business's record (the channel's profile is written with the order).
CUSTOMER_UPSERT_SQL = """
INSERT INTO customers (id, email, created_at, updated_at)
VALUES ($1, $2, $3, $3)
ON CONFLICT (email_normalized) DO UPDATE SET updated_at = customers.updated_at
RETURNING id, email, email_normalized
"""

# The reservations take arrays, not the JSON records: the planner's estimate for `unnest`
# keeps their join on inventory_levels' primary key (for `json_to_recordset` it planned a
# sequential scan).
WRITE_SQL = """
WITH o AS (
    INSERT INTO orders (
        id, number, channel_id, external_id, customer_id, email_normalized, status,
        payment_status, payment_method, currency, subtotal, shipping, total, authorized,
        captured, shipping_address, billing_address, note, metadata, risk_score,
        risk_reasons, hold_reason, event_sequence, expires_at, created_at, updated_at,
        confirmed_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb,
            $17::jsonb, $18, $19::jsonb, $20, $21::text[], $22, $23, $24, $25, $25, $26)
    ON CONFLICT (channel_id, external_id) DO NOTHING
    RETURNING id
), lines AS (
    INSERT INTO order_lines (id, order_id, position, product_id, sku, name, quantity,
                             unit_price, quantity_backordered)
    SELECT u.id, o.id, u.position, u.product_id, u.sku, u.name, u.quantity, u.unit_price,
           u.quantity_backordered
    FROM o, ROWS FROM (json_to_recordset($27::json) AS (id text, product_id text, sku text,
             name text, quantity int, unit_price bigint, quantity_backordered int))
         WITH ORDINALITY AS u(id, product_id, sku, name, quantity, unit_price,
                              quantity_backordered, position)
), picks AS (
    SELECT * FROM json_to_recordset($28::json)
        AS u(product_id text, location_id text, sku text, quantity int, movement_id text)
), reserve AS (
    UPDATE inventory_levels il
    SET reserved = il.reserved + u.quantity, updated_at = $25
    FROM o, unnest($37::text[], $38::text[], $39::int[]) AS u(product_id, location_id, quantity)
    WHERE il.product_id = u.product_id AND il.location_id = u.location_id
      AND il.on_hand - il.reserved >= u.quantity
    RETURNING il.product_id
), allocations AS (
    INSERT INTO order_allocations (order_id, product_id, location_id, sku, quantity)
    SELECT o.id, u.product_id, u.location_id, u.sku, u.quantity FROM o, picks u
), movements AS (
    INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta,
                                     reserved_delta, reason, cause_type, cause_id, created_at)
    SELECT u.movement_id, u.product_id, u.sku, u.location_id, 0, u.quantity, 'order_placed',
           'order', o.id, $25
    FROM o, picks u
), payments AS (
    INSERT INTO payments (id, order_id, kind, amount, reference, created_at)
    SELECT u.id, o.id, u.kind, u.amount, u.reference, $25
    FROM o, json_to_recordset($29::json) AS u(id text, kind text, amount bigint, reference text)
), events AS (
    INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at)
    SELECT u.id, u.type, o.id, $3, u.sequence, $30::jsonb, $25
    FROM o, json_to_recordset($31::json) AS u(id text, type text, sequence int)
), profile AS (
    -- The channel's profile of the customer: created on its first order, its name and
    -- phone kept up to date ($43: only when the read saw a difference).
    INSERT INTO customer_profiles (customer_id, channel_id, email, name, phone, created_at,
                                   updated_at)
    SELECT $5, $3, $40, $41, $42, $25, $25 FROM o WHERE $43
    ON CONFLICT (customer_id, channel_id) DO UPDATE
    SET name = coalesce(excluded.name, customer_profiles.name),
        phone = coalesce(excluded.phone, customer_profiles.phone),
        updated_at = excluded.updated_at, version = customer_profiles.version + 1
), idem AS (
    INSERT INTO idempotency_records (principal, key, request_hash, response_status,
                                     response_body, created_at, expires_at)
    SELECT $32, $33, $34, 201, $35, $25, $36 FROM o WHERE $33::text IS NOT NULL
    ON CONFLICT (principal, key) DO UPDATE
    SET request_hash = excluded.request_hash, response_status = excluded.response_status,
        response_body = excluded.response_body, created_at = excluded.created_at,
        expires_at = excluded.expires_at
    WHERE idempotency_records.expires_at <= now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM o) AS inserted,
       (SELECT count(*) FROM reserve) AS reserved,
       (SELECT count(*) FROM idem) AS recorded
"""


def _invalid(detail: str, code: str, loc: list[str | int] | None = None) -> Unprocessable:
    errors = [{"loc": loc, "msg": detail}] if loc else None
    return Unprocessable(detail, code=code, errors=errors)


async def place_order(
    conn: asyncpg.Connection,
    *,
    principal: Principal,
    body: OrderCreate,
    pending_ttl_seconds: int,
    idempotency: Claim | None,
) -> bytes:
    """Place the order; returns the response body (the order document as JSON)."""
    skus = sorted({line.sku for line in body.lines})
    inline = body.customer
    row = await conn.fetchrow(
        READ_SQL,
        principal.channel_id,
        body.channel,
        skus,
        body.customer_id,
        inline.email if inline else None,
    )
    assert row is not None
    now: datetime = row["now"]

    channel = _check_channel(row["channel"], principal, body)
    products = {p["sku"]: p for p in row["products"] or ()}
    missing = [i for i, line in enumerate(body.lines) if line.sku not in products]
    if missing:
        raise Unprocessable(
            "Unknown sku: " + ", ".join(sorted({body.lines[i].sku for i in missing})) + ".",
            code="unknown_sku",
            errors=[{"loc": ["body", "lines", i, "sku"], "msg": "unknown sku"} for i in missing],
        )
    inactive = sorted(sku for sku in skus if not products[sku]["active"])
    if inactive:
        raise _invalid(f"Not for sale (inactive): {', '.join(inactive)}.", "product_inactive")
    currency = body.currency or products[skus[0]]["currency"]
    for i, line in enumerate(body.lines):
        if line.unit_price is None and products[line.sku]["currency"] != currency:
            raise _invalid(
                f"{line.sku} is priced in {products[line.sku]['currency']}, the order in "
                f"{currency}: give unit_price or the matching currency.",
                "currency_mismatch",
                ["body", "lines", i, "unit_price"],
            )

    # Demand per product, summed over lines, is what is checked and reserved.
    demand: dict[str, int] = defaultdict(int)
    for line in body.lines:
        demand[products[line.sku]["id"]] += line.quantity
    stock = [
        StockAt(lv["product_id"], lv["location_id"], lv["priority"], lv["available"])
        for lv in row["levels"] or ()
    ]
    allocation = allocate(dict(demand), stock)
    by_id = {p["id"]: p for p in products.values()}
    backordered: dict[str, int] = {}
    short_lines = []
    for product_id, units in sorted(allocation.short.items(), key=lambda kv: by_id[kv[0]]["sku"]):
        product = by_id[product_id]
        if product["allow_backorder"]:
            backordered[product_id] = units
        else:
            short_lines.append({
                "sku": product["sku"],
                "requested": demand[product_id],
                "available": demand[product_id] - units,
            })  # fmt: skip
    if short_lines:
        raise Conflict(
            "Not enough stock for: " + ", ".join(s["sku"] for s in short_lines) + ".",
            code="insufficient_stock",
            lines=short_lines,
        )

    customer = row["customer"]
    if body.customer_id is not None and customer is None:
        raise NotFound(
            f"No customer with id {body.customer_id}.",
            errors=[{"loc": ["body", "customer_id"], "msg": "no such customer"}],
        )
    if customer is None:
        assert inline is not None
        created = await conn.fetchrow(CUSTOMER_UPSERT_SQL, random_id("cus"), inline.email, now)
        assert created is not None
        customer = dict(created) | {"known": False, "name": None, "phone": None}
    profile_email = inline.email if inline else customer["email"]
    profile_name = inline.name if inline else None
    profile_phone = inline.phone if inline else None
    touch_profile = not customer["known"] or (
        (profile_name is not None and profile_name != customer["name"])
        or (profile_phone is not None and profile_phone != customer["phone"])
    )

    order_id = new_id("ord")
    line_rows = _lines(body, products, backordered)
    subtotal = sum(line["total"] for line in line_rows)
    total = subtotal + body.shipping_price
    if total > MAX_ORDER_TOTAL:
        raise _invalid(
            f"The order total {total} exceeds {MAX_ORDER_TOTAL}.",
            "amount_too_large",
            ["body", "lines"],
        )

    risk = assess(
        RiskInput(
            total=total,
            shipping_country=body.shipping_address.country if body.shipping_address else None,
            billing_country=body.billing_address.country if body.billing_address else None,
            recent_orders_from_email=row["recent_orders"],
        ),
        RiskSettings.from_json(row["risk_settings"]),
    )

    payments: list[dict[str, Any]] = []
    totals = PaymentTotals()
    method = body.payment.method if body.payment else None
    if body.payment is not None and body.payment.status != "pending":
        kind = PaymentKind.CAPTURE if body.payment.status == "paid" else PaymentKind.AUTHORIZATION
        amount = total if body.payment.amount is None else body.payment.amount
        if amount > 0:
            try:
                totals = apply_payment(totals, kind, amount, total)
            except DomainError as exc:
                raise _invalid(exc.detail, exc.code, ["body", "payment", "amount"]) from None
            payments.append({
                "id": new_id("pay"), "kind": kind.value, "amount": amount,
                "reference": body.payment.reference, "created_at": iso(now),
            })  # fmt: skip

    types = [event_types.ORDER_CREATED]
    if payments:
        types.append(event_types.PAYMENT_RECORDED)
    if risk.hold:
        status = OrderStatus.ON_HOLD
        types.append(event_types.ORDER_ON_HOLD)
    elif is_settled(totals, total, method):
        status = OrderStatus.CONFIRMED
        types.append(event_types.ORDER_CONFIRMED)
    else:
        status = OrderStatus.PENDING
    hold_reason = "risk: " + ", ".join(risk.reasons) if risk.hold else None
    expires_at = now + timedelta(seconds=pending_ttl_seconds)

    picks = sorted(allocation.picks, key=lambda p: (by_id[p.product_id]["sku"], p.location_id))
    order_row = {
        "id": order_id, "number": row["number"], "channel": channel["code"],
        "channel_id": channel["id"], "external_id": body.external_id,
        "customer_id": customer["id"], "email_normalized": customer["email_normalized"],
        "status": status.value, "payment_status": payment_status(totals).value,
        "payment_method": method, "currency": currency, "subtotal": subtotal,
        "shipping": body.shipping_price, "total": total, "authorized": totals.authorized,
        "captured": totals.captured, "refunded": 0, "voided": 0, "risk_score": risk.score,
        "risk_reasons": risk.reasons,
        "shipping_address": _address(body.shipping_address),
        "billing_address": _address(body.billing_address),
        "note": body.note, "metadata": body.metadata, "hold_reason": hold_reason,
        "cancel_reason": None, "created_at": now, "updated_at": now,
        "confirmed_at": now if status is OrderStatus.CONFIRMED else None,
        "cancelled_at": None, "expires_at": expires_at, "version": 1,
    }  # fmt: skip
    allocations = [
        {"sku": by_id[p.product_id]["sku"], "location_id": p.location_id, "quantity": p.quantity}
        for p in picks
    ]
    document = order_document(order_row, line_rows, allocations, payments)
    payload = dumps(document)

    # Rows go as JSON arrays of records (`json_to_recordset`, which ignores keys it is not
    # asked for): asyncpg encodes one string far more cheaply than twenty arrays.
    pick_records = [
        {"product_id": p.product_id, "location_id": p.location_id, "sku": a["sku"],
         "quantity": p.quantity, "movement_id": new_id("mov")}
        for p, a in zip(picks, allocations, strict=True)
    ]  # fmt: skip
    event_records = [
        {"id": new_id("evt"), "type": t, "sequence": i} for i, t in enumerate(types, 1)
    ]
    result = await conn.fetchrow(
        WRITE_SQL,
        order_id,
        row["number"],
        channel["id"],
        body.external_id,
        customer["id"],
        customer["email_normalized"],
        status.value,
        order_row["payment_status"],
        method,
        currency,
        subtotal,
        body.shipping_price,
        total,
        totals.authorized,
        totals.captured,
        _json(order_row["shipping_address"]),
        _json(order_row["billing_address"]),
        body.note,
        _json(body.metadata),
        risk.score,
        risk.reasons,
        hold_reason,
        len(types),
        expires_at,
        now,
        order_row["confirmed_at"],
        _json(line_rows),
        _json(pick_records),
        _json(payments),
        payload.decode(),
        _json(event_records),
        idempotency.principal if idempotency else None,
        idempotency.key if idempotency else None,
        idempotency.request_hash if idempotency else None,
        payload,
        now + RETENTION,
        [p.product_id for p in picks],
        [p.location_id for p in picks],
        [p.quantity for p in picks],
        profile_email,
        profile_name,
        profile_phone,
        touch_profile,
    )
    assert result is not None
    if result["inserted"] == 0:
        existing = await conn.fetchval(
            "SELECT id FROM orders WHERE channel_id = $1 AND external_id = $2",
            channel["id"],
            body.external_id,
        )
        raise Conflict(
            f"The channel already has an order with external_id {body.external_id!r}.",
            code="external_id_taken",
            order_id=existing,
        )
    if result["reserved"] != len(picks):  # cannot happen while the levels are locked
        raise Conflict(
            "Stock changed during placement; retry.", code="insufficient_stock", lines=[]
        )
    if idempotency is not None and result["recorded"] == 0:
        raise Conflict(
            "A request with this Idempotency-Key was completed meanwhile; retry to get its result.",
            code="idempotency_key_in_flight",
            headers={"Retry-After": "1"},
        )
    return payload


def _check_channel(
    channel: dict[str, Any] | None, principal: Principal, body: OrderCreate
) -> dict[str, Any]:
    if principal.channel_id is None and body.channel is None:
        raise _invalid(
            "Name the channel (its code): this API key is not bound to one.",
            "channel_required",
            ["body", "channel"],
        )
    if channel is None:
        raise _invalid(
            f"No channel with code {body.channel}.", "unknown_channel", ["body", "channel"]
        )
    if body.channel is not None and body.channel != channel["code"]:
        raise _invalid(
            f"This API key belongs to channel {channel['code']!r}; it cannot place orders in {body.channel!r}.",
            "channel_mismatch",
            ["body", "channel"],
        )
    if not channel["active"]:
        raise Conflict(f"Channel {channel['code']!r} is inactive.", code="channel_inactive")
    return channel


def _lines(
    body: OrderCreate, products: dict[str, dict[str, Any]], backordered: dict[str, int]
) -> list[dict[str, Any]]:
    """Line documents; a product's backordered units go to its last lines first."""
    remaining = dict(backordered)
    per_line: list[int] = [0] * len(body.lines)
    for i in range(len(body.lines) - 1, -1, -1):
        product_id = products[body.lines[i].sku]["id"]
        if remaining.get(product_id):
            take = min(remaining[product_id], body.lines[i].quantity)
            per_line[i] = take
            remaining[product_id] -= take
    rows = []
    for i, line in enumerate(body.lines):
        product = products[line.sku]
        price = product["unit_price"] if line.unit_price is None else line.unit_price
        rows.append(
            line_document(
                id=new_id("line"),
                sku=line.sku,
                product_id=product["id"],
                name=product["name"],
                quantity=line.quantity,
                unit_price=price,
                quantity_backordered=per_line[i],
            )
        )
    return rows


def _address(address: Any) -> dict[str, Any] | None:
    return None if address is None else address.model_dump()


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
