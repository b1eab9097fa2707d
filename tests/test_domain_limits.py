"""The one refusal of more than a limit, and the rules that use it, without a database."""

from __future__ import annotations

import pytest

from oms_api.domain.errors import DomainError
from oms_api.domain.limits import refuse_over
from oms_api.domain.payments import PaymentKind as K
from oms_api.domain.payments import PaymentTotals, apply_payment
from oms_api.domain.returns import (
    Resolution,
    check_receipt,
    check_resolution,
    exchange_credit,
)


def test_within_every_limit_nothing_is_refused() -> None:
    refuse_over("x", "Too many", {"a": 2, "b": 0}, {"a": 2, "b": 0}, limit_as="left")
    refuse_over("x", "Too many", {}, {}, limit_as="left")


def test_over_a_limit_names_each_line_over_in_the_order_asked() -> None:
    with pytest.raises(DomainError) as caught:
        refuse_over(
            "exceeds_x", "More than allowed for", {"b": 3, "a": 1, "c": 5}, {"a": 1, "b": 2},
            limit_as="allowed",
        )  # fmt: skip
    error = caught.value
    assert (error.code, error.kind) == ("exceeds_x", "conflict")
    assert error.detail == "More than allowed for: b, c."
    assert error.extra == {
        "lines": [
            {"line_id": "b", "requested": 3, "allowed": 2},
            {"line_id": "c", "requested": 5, "allowed": 0},  # missing: a limit of 0
        ]
    }


def test_names_of_the_members_and_a_limit_below_zero() -> None:
    with pytest.raises(DomainError) as caught:
        refuse_over(
            "insufficient_stock", "Short", {"SKU-1": 1}, {"SKU-1": -2}, key="sku",
            asked_as="wanted", limit_as="available",
        )  # fmt: skip
    assert caught.value.extra["lines"] == [{"sku": "SKU-1", "wanted": 1, "available": 0}]


@pytest.mark.parametrize(
    ("resolution", "exchange_lines", "code"),
    [
        (Resolution.REFUND, [], None),
        (Resolution.REFUND, [("SKU", 1)], "exchange_lines_not_allowed"),
        (Resolution.EXCHANGE, [("SKU", 1)], None),
        (Resolution.EXCHANGE, [], "exchange_lines_required"),
    ],
)
def test_a_resolution_and_its_exchange_lines(
    resolution: Resolution, exchange_lines: list[tuple[str, int]], code: str | None
) -> None:
    if code is None:
        check_resolution(resolution, exchange_lines)
        return
    with pytest.raises(DomainError) as caught:
        check_resolution(resolution, exchange_lines)
    assert (caught.value.code, caught.value.kind) == (code, "invalid")


def test_a_receipt_is_all_in_once_every_unit_is() -> None:
    outstanding = {"l1": 2, "l2": 1}
    assert check_receipt([("l1", 1)], outstanding, received=0, units=3) is False
    assert check_receipt([("l1", 1), ("l1", 1), ("l2", 1)], outstanding, received=0, units=3)
    assert check_receipt([("l2", 1)], {"l1": 0, "l2": 1}, received=2, units=3)


def test_a_receipt_of_a_line_not_in_the_return_or_more_than_it_expects_is_refused() -> None:
    with pytest.raises(DomainError) as unknown:
        check_receipt([("l9", 1)], {"l1": 2}, received=0, units=2)
    assert (unknown.value.code, unknown.value.kind) == ("unknown_line", "invalid")
    with pytest.raises(DomainError) as over:
        check_receipt([("l1", 2), ("l1", 1)], {"l1": 2}, received=0, units=2)
    assert over.value.code == "exceeds_outstanding"
    assert over.value.extra["lines"] == [{"line_id": "l1", "receiving": 3, "outstanding": 2}]


def test_an_exchange_is_credited_what_came_back_up_to_its_total() -> None:
    assert exchange_credit([(2, 1500), (1, 800)], 10_000, unspent=10_000) == 3800
    assert exchange_credit([(2, 1500)], 2000, unspent=10_000) == 2000
    assert exchange_credit([], 2000, unspent=10_000) == 0


@pytest.mark.parametrize(
    ("unspent", "credit"), [(0, 0), (-500, 0), (1000, 1000), (3000, 3000), (5000, 3000)]
)
def test_an_exchange_is_credited_no_more_than_was_paid_and_not_had_back(
    unspent: int, credit: int
) -> None:
    # An order on invoice never paid, or refunded in full, gives no credit (an accountant
    # found an exchange's order paid by 6.66 of credit for an order never paid — and the
    # exchange's own return then refunded 6.66 "to the original payment method").
    assert exchange_credit([(2, 1500)], 4000, unspent=unspent) == credit


@pytest.mark.parametrize("kind", list(K))
def test_a_cancelled_order_takes_refunds_and_voids_only(kind: K) -> None:
    totals = PaymentTotals(authorized=800, captured=500)  # room for 100 of every kind
    if kind in (K.AUTHORIZATION, K.CAPTURE):
        with pytest.raises(DomainError) as caught:
            apply_payment(totals, kind, 100, 1000, cancelled=True)
        assert (caught.value.code, caught.value.kind) == ("order_cancelled", "conflict")
    else:
        apply_payment(totals, kind, 100, 1000, cancelled=True)
    apply_payment(totals, kind, 100, 1000)  # an order not cancelled takes any
