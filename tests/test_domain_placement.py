"""Placement's plan and the order's derived states, without a database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oms_api.domain.errors import DomainError, InvalidTransition
from oms_api.domain.inventory import StockAt
from oms_api.domain.orders import (
    Fulfilment,
    fulfilment_commands,
    fulfilment_status,
    next_status,
    placed,
    transition_events,
)
from oms_api.domain.orders import OrderCommand as C
from oms_api.domain.orders import OrderStatus as S
from oms_api.domain.placement import (
    LineRequest,
    OrderPlan,
    OrderRequest,
    PaymentRequest,
    Placement,
    Product,
    plan_order,
)
from oms_api.domain.risk import RiskSettings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TSHIRT = Product("p_shirt", "SHIRT", "T-shirt", 1500, "EUR", True, False)
MUG = Product("p_mug", "MUG", "Mug", 800, "EUR", True, True)  # allows backorders
GONE = Product("p_gone", "GONE", "Retired", 100, "EUR", False, False)
DOLLARS = Product("p_usd", "USD-CAP", "Cap", 900, "USD", True, False)


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


def _at(stock: list[StockAt], **kw: Any) -> Placement:
    values: dict[str, Any] = {
        "order_id": "ord_1", "number": 1001, "now": NOW, "expires_at": NOW + timedelta(days=1),
        "channel_id": "ch_web", "customer_id": "cus_1", "email_normalized": "ada@example.com",
        "products": {p.sku: p for p in (TSHIRT, MUG, GONE, DOLLARS)}, "stock": stock,
        "risk": RiskSettings(), "recent_orders_from_email": 0, "shipping_address_key": None,
        "recent_orders_to_address": 0, "first_order": False, "new_id": _ids(),
    }  # fmt: skip
    return Placement(**(values | kw))


def _plan(lines: list[tuple[str, int]], stock: list[StockAt], **kw: Any) -> OrderPlan:
    request = OrderRequest(lines=[LineRequest(sku, q) for sku, q in lines], **kw)
    return plan_order(request, _at(stock))


A = "loc_a"  # priority 10
B = "loc_b"  # priority 20


def test_every_line_is_reserved_where_the_allocation_put_its_units() -> None:
    plan = _plan(
        [("SHIRT", 2), ("MUG", 1), ("SHIRT", 3)],
        [StockAt("p_shirt", A, 10, 3), StockAt("p_shirt", B, 20, 5), StockAt("p_mug", B, 20, 1)],
    )
    # Only B has all five shirts and the mug: one location ships the order.
    assert [(r["line_id"], r["location_id"], r["quantity"]) for r in plan.reservations] == [
        ("line_1", B, 2), ("line_2", B, 1), ("line_3", B, 3),
    ]  # fmt: skip
    assert [line["quantity_reserved"] for line in plan.lines] == [2, 1, 3]
    assert [(m["product_id"], m["location_id"], m["reserved_delta"]) for m in plan.stock_moves] == [
        ("p_mug", B, 1), ("p_shirt", B, 5),
    ]  # fmt: skip
    assert all(m["on_hand_delta"] == 0 and m["cause_id"] == "ord_1" for m in plan.stock_moves)


def test_a_line_split_across_two_locations_has_a_reservation_at_each() -> None:
    plan = _plan(
        [("SHIRT", 4), ("SHIRT", 3)], [StockAt("p_shirt", A, 10, 5), StockAt("p_shirt", B, 20, 5)]
    )
    # Greedy from A (5), then B: line 1 takes 4 from A, line 2 takes 1 from A and 2 from B.
    assert [(r["line_id"], r["location_id"], r["quantity"]) for r in plan.reservations] == [
        ("line_1", A, 4), ("line_2", A, 1), ("line_2", B, 2),
    ]  # fmt: skip
    for line in plan.lines:
        held = sum(r["quantity"] for r in plan.reservations if r["line_id"] == line["id"])
        assert line["quantity_reserved"] == held == line["quantity"]


def test_backorders_fall_on_the_last_lines_and_every_unit_is_counted_once() -> None:
    plan = _plan([("MUG", 2), ("MUG", 3)], [StockAt("p_mug", A, 10, 3)])
    assert [(x["quantity_reserved"], x["quantity_backordered"]) for x in plan.lines] == [
        (2, 0),
        (1, 2),
    ]
    for line in plan.lines:
        assert line["quantity"] == (
            line["quantity_reserved"] + line["quantity_backordered"] + line["quantity_shipped"]
            + line["quantity_cancelled"]
        )  # fmt: skip
    assert sum(r["quantity"] for r in plan.reservations) == 3


def test_a_short_product_that_does_not_backorder_refuses_the_whole_order() -> None:
    with pytest.raises(DomainError) as caught:
        _plan([("SHIRT", 9), ("MUG", 9)], [StockAt("p_shirt", A, 10, 4)])
    assert caught.value.code == "insufficient_stock"
    assert caught.value.kind == "conflict"
    assert caught.value.extra["lines"] == [{"sku": "SHIRT", "requested": 9, "available": 4}]


@pytest.mark.parametrize(
    ("lines", "kw", "code", "kind"),
    [
        ([("NOPE", 1)], {}, "unknown_sku", "invalid"),
        ([("GONE", 1)], {}, "product_inactive", "invalid"),
        ([("SHIRT", 1), ("USD-CAP", 1)], {}, "currency_mismatch", "invalid"),
        ([("SHIRT", 1)], {"shipping_price": 10**15}, "amount_too_large", "invalid"),
        ([("SHIRT", 1)], {"payment": PaymentRequest("card", "paid", 10**9)},
         "capture_exceeds_authorized", "invalid"),
    ],
)  # fmt: skip
def test_refusals_say_why(
    lines: list[tuple[str, int]], kw: dict[str, Any], code: str, kind: str
) -> None:
    with pytest.raises(DomainError) as caught:
        _plan(lines, [StockAt("p_shirt", A, 10, 9), StockAt("p_usd", A, 10, 9)], **kw)
    assert (caught.value.code, caught.value.kind) == (code, kind)


def test_totals_payment_and_the_initial_state_come_from_the_machine() -> None:
    stock = [StockAt("p_shirt", A, 10, 9)]
    pending = _plan([("SHIRT", 2)], stock, shipping_price=500)
    assert (pending.order["subtotal"], pending.order["total"]) == (3000, 3500)
    assert (pending.order["status"], pending.events) == ("pending", ["order.created"])
    assert pending.payments == []

    paid = _plan([("SHIRT", 2)], stock, payment=PaymentRequest("card", "paid"))
    assert paid.order["status"] == "confirmed"
    assert paid.order["confirmed_at"] == NOW
    assert paid.events == ["order.created", "payment.recorded", "order.confirmed"]
    assert [(p["kind"], p["amount"]) for p in paid.payments] == [("capture", 3000)]
    assert (paid.order["captured"], paid.order["payment_status"]) == (3000, "paid")
    assert paid.order["authorized"] == 3000  # a sale authorizes what it captures

    invoice = _plan([("SHIRT", 1)], stock, payment=PaymentRequest("invoice"))
    assert invoice.events == ["order.created", "order.confirmed"]

    request = OrderRequest([LineRequest("SHIRT", 1)], shipping_address={"country": "KP"})
    held = plan_order(request, _at(stock, risk=RiskSettings(blocked_countries=frozenset({"KP"}))))
    assert (held.order["status"], held.events) == ("on_hold", ["order.created", "order.on_hold"])
    assert held.order["hold_reason"] == "risk: shipping_country_blocked"


def test_placed() -> None:
    assert placed(hold=False, settled=False) == (S.PENDING, ["order.created"])
    assert placed(hold=False, settled=True) == (S.CONFIRMED, ["order.created", "order.confirmed"])
    assert placed(hold=True, settled=True) == (S.ON_HOLD, ["order.created", "order.on_hold"])


# --- derived states ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fulfilment", "status"),
    [
        (Fulfilment(units=5, shipped=0, shipments_out=0, shipments_delivered=0), None),
        (Fulfilment(units=5, shipped=2, shipments_out=1, shipments_delivered=0), S.PARTIALLY_SHIPPED),
        (Fulfilment(units=5, shipped=2, shipments_out=1, shipments_delivered=1), S.PARTIALLY_SHIPPED),
        (Fulfilment(units=5, shipped=5, shipments_out=2, shipments_delivered=1), S.SHIPPED),
        (Fulfilment(units=5, shipped=5, shipments_out=2, shipments_delivered=2), S.DELIVERED),
        (Fulfilment(units=3, shipped=3, shipments_out=1, shipments_delivered=0), S.SHIPPED),
    ],
)  # fmt: skip
def test_fulfilment_status(fulfilment: Fulfilment, status: S | None) -> None:
    assert fulfilment_status(fulfilment) is status


def _f(units: int, shipped: int, out: int, delivered: int) -> Fulfilment:
    return Fulfilment(units, shipped, out, delivered)


# Every (state, derived fulfilment) pair: the steps taken, or the state refuses it.
FULFILMENTS = {
    "none shipped": _f(4, 0, 0, 0),
    "some shipped": _f(4, 2, 1, 0),
    "all shipped": _f(4, 4, 2, 1),
    "all delivered": _f(4, 4, 2, 2),
}
STEPS: dict[tuple[S, str], list[S] | None] = {
    (S.CONFIRMED, "some shipped"): [S.PARTIALLY_SHIPPED],
    (S.CONFIRMED, "all shipped"): [S.SHIPPED],
    (S.CONFIRMED, "all delivered"): [S.SHIPPED, S.DELIVERED],
    (S.PARTIALLY_SHIPPED, "some shipped"): [],
    (S.PARTIALLY_SHIPPED, "all shipped"): [S.SHIPPED],
    (S.PARTIALLY_SHIPPED, "all delivered"): [S.SHIPPED, S.DELIVERED],
    (S.SHIPPED, "all shipped"): [],
    (S.SHIPPED, "all delivered"): [S.DELIVERED],
    (S.DELIVERED, "all delivered"): [],
}


@pytest.mark.parametrize(("status", "name"), list(itertools.product(S, FULFILMENTS)))
def test_every_state_follows_its_fulfilment_or_refuses(status: S, name: str) -> None:
    fulfilment = FULFILMENTS[name]
    if name == "none shipped":
        assert fulfilment_commands(status, fulfilment) == []  # nothing derived before shipping
        return
    expected = STEPS.get((status, name))
    if expected is None:
        with pytest.raises(InvalidTransition):
            fulfilment_commands(status, fulfilment)
        return
    # The commands the one door replays: each leads to the next expected state.
    commands = fulfilment_commands(status, fulfilment)
    assert commands == [COMMAND_TO[state] for state in expected]
    for command, state in zip(commands, expected, strict=True):
        target = next_status(status, command)
        assert target is state
        assert transition_events(status, command, target) == [f"order.{state.value}"]
        status = target


COMMAND_TO = {S.PARTIALLY_SHIPPED: C.SHIP_PART, S.SHIPPED: C.SHIP_ALL, S.DELIVERED: C.DELIVER}
