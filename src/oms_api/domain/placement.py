"""Placing an order, decided: request, catalogue, stock and settings in; rows out. Pure.

`plan_order` takes what placement read (products, stock at the channel's locations, the
customer, the risk settings) and returns every row to write — the order, its lines with
where each line's units are reserved or backordered, the stock moves, payments and events —
or raises a DomainError saying why it cannot be placed. The service's writer sends the plan
to the database as it is. Orders placed by exchanges (returns) go through the same plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

from oms_api.domain.errors import DomainError
from oms_api.domain.inventory import Pick, StockAt, StockMove, allocate
from oms_api.domain.limits import refuse_over
from oms_api.domain.orders import OrderStatus, placed
from oms_api.domain.payments import (
    PaymentKind,
    PaymentTotals,
    apply_payment,
    is_settled,
    payment_status,
)
from oms_api.domain.risk import RiskInput, RiskSettings, assess

MAX_ORDER_TOTAL = 10**15  # minor units; far above any real order, far below BIGINT


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    sku: str
    name: str
    unit_price: int
    currency: str
    active: bool
    allow_backorder: bool


@dataclass(frozen=True, slots=True)
class LineRequest:
    sku: str
    quantity: int
    unit_price: int | None = None  # None: the product's


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    method: str
    status: str = "pending"  # pending | authorized | paid
    amount: int | None = None  # None: the order total
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    """A customer given inline: found or created by email; the name and phone are the
    channel's profile of them."""

    email: str
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    lines: Sequence[LineRequest]
    currency: str | None = None
    shipping_price: int = 0
    payment: PaymentRequest | None = None
    shipping_address: Mapping[str, Any] | None = None
    billing_address: Mapping[str, Any] | None = None
    external_id: str | None = None
    note: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    exchange_for_return_id: str | None = None  # an exchange: the return it replaces


@dataclass(frozen=True, slots=True)
class Placement:
    """Where and when: everything the plan needs that is not the request."""

    order_id: str
    number: int
    now: datetime
    expires_at: datetime
    channel_id: str
    customer_id: str
    email_normalized: str
    products: Mapping[str, Product]  # by sku
    stock: Sequence[StockAt]  # available at the channel's locations
    risk: RiskSettings
    recent_orders_from_email: int
    # `risk.address_key(request.shipping_address)`: the service computes it once, for its
    # read (the address's recent orders) and for the order's row
    shipping_address_key: str | None
    recent_orders_to_address: int  # orders to that place inside its window
    first_order: bool  # the customer has no earlier order
    new_id: Callable[[str], str]


class OrderRow(TypedDict):
    """The orders row: every column, each given (the writer inserts the row whole)."""

    id: str
    number: int
    channel_id: str
    external_id: str | None
    customer_id: str
    email_normalized: str
    status: str
    payment_status: str
    payment_method: str | None
    return_status: str
    currency: str
    subtotal: int
    shipping: int
    total: int
    authorized: int
    captured: int
    refunded: int
    voided: int
    shipping_address: Mapping[str, Any] | None
    billing_address: Mapping[str, Any] | None
    shipping_address_key: str | None
    note: str | None
    metadata: Mapping[str, Any]
    risk_score: int
    risk_reasons: list[str]
    hold_reason: str | None
    cancel_reason: str | None
    exchange_for_return_id: str | None
    event_sequence: int
    version: int
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    confirmed_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None


class LineRow(TypedDict):
    id: str
    order_id: str
    position: int
    product_id: str
    sku: str
    name: str
    quantity: int
    unit_price: int
    quantity_reserved: int
    quantity_backordered: int
    quantity_shipped: int
    quantity_cancelled: int
    quantity_returned: int


class ReservationRow(TypedDict):
    """Units of one line reserved at one location."""

    line_id: str
    location_id: str
    product_id: str
    quantity: int
    quantity_in_shipments: int


class PaymentRow(TypedDict):
    id: str
    order_id: str
    kind: str
    amount: int
    reference: str | None
    created_at: datetime


@dataclass(slots=True)
class OrderPlan:
    order: OrderRow
    lines: list[LineRow]
    reservations: list[ReservationRow]
    stock_moves: list[StockMove]
    payments: list[PaymentRow]
    events: list[str]


def _invalid(
    code: str, detail: str, loc: list[str | int] | None = None, **extra: Any
) -> DomainError:
    return DomainError(code, detail, kind="invalid", loc=loc, **extra)


def plan_order(request: OrderRequest, at: Placement) -> OrderPlan:
    products = at.products
    unknown = [i for i, line in enumerate(request.lines) if line.sku not in products]
    if unknown:
        names = sorted({request.lines[i].sku for i in unknown})
        raise DomainError(
            "unknown_sku", "Unknown sku: " + ", ".join(names) + ".", kind="invalid",
            errors=[{"loc": ["body", "lines", i, "sku"], "msg": "unknown sku"} for i in unknown],
        )  # fmt: skip
    skus = sorted({line.sku for line in request.lines})
    inactive = [sku for sku in skus if not products[sku].active]
    if inactive:
        raise _invalid("product_inactive", f"Not for sale (inactive): {', '.join(inactive)}.")
    currency = request.currency or products[skus[0]].currency
    for i, line in enumerate(request.lines):
        product = products[line.sku]
        if line.unit_price is None and product.currency != currency:
            raise _invalid(
                "currency_mismatch",
                f"{line.sku} is priced in {product.currency}, the order in {currency}: give "
                "unit_price or the matching currency.",
                ["body", "lines", i, "unit_price"],
            )

    # Demand per product, summed over lines, is what is checked and reserved.
    demand: dict[str, int] = defaultdict(int)
    for line in request.lines:
        demand[products[line.sku].id] += line.quantity
    allocation = allocate(dict(demand), at.stock)
    by_id = {p.id: p for p in products.values()}
    short = {by_id[pid].sku: units for pid, units in allocation.short.items()
             if not by_id[pid].allow_backorder}  # fmt: skip
    if short:
        refuse_over(
            "insufficient_stock", "Not enough stock for",
            {sku: demand[products[sku].id] for sku in sorted(short)},
            {sku: demand[products[sku].id] - units for sku, units in short.items()},
            key="sku", limit_as="available",
        )  # fmt: skip

    lines, reservations = _lines(request, at, allocation.picks, allocation.short)
    subtotal = sum(line["quantity"] * line["unit_price"] for line in lines)
    total = subtotal + request.shipping_price
    if total > MAX_ORDER_TOTAL:
        raise _invalid(
            "amount_too_large", f"The order total {total} exceeds {MAX_ORDER_TOTAL}.",
            ["body", "lines"],
        )  # fmt: skip

    risk = assess(
        RiskInput(
            total=total,
            shipping_country=_country(request.shipping_address),
            billing_country=_country(request.billing_address),
            recent_orders_from_email=at.recent_orders_from_email,
            recent_orders_to_address=at.recent_orders_to_address,
            first_order=at.first_order,
        ),
        at.risk,
    )
    totals, payments = _payment(request, at, total)
    method = request.payment.method if request.payment else None
    status, events = placed(hold=risk.hold, settled=is_settled(totals, total, method))
    if payments:
        events.insert(1, "payment.recorded")

    order: OrderRow = {
        "id": at.order_id, "number": at.number, "channel_id": at.channel_id,
        "external_id": request.external_id, "customer_id": at.customer_id,
        "email_normalized": at.email_normalized, "status": status.value,
        "payment_status": payment_status(totals).value, "payment_method": method,
        "return_status": "none",
        "currency": currency, "subtotal": subtotal, "shipping": request.shipping_price,
        "total": total, "authorized": totals.authorized, "captured": totals.captured,
        "refunded": 0, "voided": 0,
        "shipping_address": request.shipping_address, "billing_address": request.billing_address,
        "shipping_address_key": at.shipping_address_key,
        "note": request.note, "metadata": request.metadata, "risk_score": risk.score,
        "risk_reasons": risk.reasons,
        "hold_reason": "risk: " + ", ".join(risk.reasons) if risk.hold else None,
        "cancel_reason": None, "exchange_for_return_id": request.exchange_for_return_id,
        "event_sequence": len(events), "version": 1, "expires_at": at.expires_at,
        "created_at": at.now, "updated_at": at.now,
        "confirmed_at": at.now if status is OrderStatus.CONFIRMED else None,
        "shipped_at": None, "delivered_at": None, "cancelled_at": None,
    }  # fmt: skip
    moves = [
        StockMove(
            id=at.new_id("mov"), product_id=p.product_id, location_id=p.location_id,
            sku=by_id[p.product_id].sku, on_hand_delta=0, reserved_delta=p.quantity,
            reason="order_placed", cause_type="order", cause_id=at.order_id, note=None,
        )
        for p in sorted(allocation.picks, key=lambda p: (p.product_id, p.location_id))
    ]  # fmt: skip
    return OrderPlan(order, lines, reservations, moves, payments, events)


def _country(address: Mapping[str, Any] | None) -> str | None:
    return None if address is None else address.get("country")


def _lines(
    request: OrderRequest, at: Placement, picks: Sequence[Pick], short: Mapping[str, int]
) -> tuple[list[LineRow], list[ReservationRow]]:
    """Lines in request order, and where each line's units are reserved. A product's
    backordered units go to its last lines first; its reserved units fill its lines in
    order, from the allocation's picks in turn."""
    backordered = [0] * len(request.lines)
    remaining = dict(short)
    for i in range(len(request.lines) - 1, -1, -1):
        product_id = at.products[request.lines[i].sku].id
        if remaining.get(product_id):
            backordered[i] = min(remaining[product_id], request.lines[i].quantity)
            remaining[product_id] -= backordered[i]
    supply: dict[str, list[list[Any]]] = defaultdict(list)  # product → [[location, units]]
    for pick in picks:
        supply[pick.product_id].append([pick.location_id, pick.quantity])

    lines: list[LineRow] = []
    reservations: list[ReservationRow] = []
    for position, line in enumerate(request.lines, 1):
        product = at.products[line.sku]
        line_id = at.new_id("line")
        needed = line.quantity - backordered[position - 1]
        while needed:
            source = supply[product.id][0]
            take = min(needed, source[1])
            reservations.append({
                "line_id": line_id, "location_id": source[0], "product_id": product.id,
                "quantity": take, "quantity_in_shipments": 0,
            })  # fmt: skip
            source[1] -= take
            needed -= take
            if not source[1]:
                supply[product.id].pop(0)
        lines.append({
            "id": line_id, "order_id": at.order_id, "position": position,
            "product_id": product.id, "sku": product.sku, "name": product.name,
            "quantity": line.quantity,
            "unit_price": product.unit_price if line.unit_price is None else line.unit_price,
            "quantity_reserved": line.quantity - backordered[position - 1],
            "quantity_backordered": backordered[position - 1], "quantity_shipped": 0,
            "quantity_cancelled": 0, "quantity_returned": 0,
        })  # fmt: skip
    return lines, reservations


def _payment(
    request: OrderRequest, at: Placement, total: int
) -> tuple[PaymentTotals, list[PaymentRow]]:
    """The payment taken at placement: an authorization or capture, unless still pending."""
    payment = request.payment
    if payment is None or payment.status == "pending":
        return PaymentTotals(), []
    kind = PaymentKind.CAPTURE if payment.status == "paid" else PaymentKind.AUTHORIZATION
    amount = total if payment.amount is None else payment.amount
    if amount == 0:
        return PaymentTotals(), []
    try:
        totals = apply_payment(PaymentTotals(), kind, amount, total)
    except DomainError as exc:
        raise _invalid(exc.code, exc.detail, ["body", "payment", "amount"], **exc.extra) from None
    row: PaymentRow = {
        "id": at.new_id("pay"), "order_id": at.order_id, "kind": kind.value, "amount": amount,
        "reference": payment.reference, "created_at": at.now,
    }  # fmt: skip
    return totals, [row]
