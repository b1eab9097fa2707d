"""The return machine, what may be returned, the order's return status and refunds."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from oms_api.domain.errors import DomainError, InvalidTransition
from oms_api.domain.returns import (
    OrderReturnStatus,
    Resolution,
    ReturnableLine,
    check_exchange_skus,
    check_returnable,
    next_status,
    order_return_status,
    refund_amount,
    settled_as,
)
from oms_api.domain.returns import ReturnCommand as C
from oms_api.domain.returns import ReturnStatus as S

RECEIPT = object()  # received when every unit is in, else still approved

# The SPEC's table, written apart from the code.
MOVES: dict[tuple[S, C], object] = {
    (S.REQUESTED, C.APPROVE): S.APPROVED,
    (S.REQUESTED, C.REJECT): S.REJECTED,
    (S.REQUESTED, C.CANCEL): S.CANCELLED,
    (S.APPROVED, C.RECEIVE): RECEIPT,
    (S.APPROVED, C.REJECT): S.REJECTED,
    (S.APPROVED, C.CANCEL): S.CANCELLED,
    (S.RECEIVED, C.COMPLETE): S.COMPLETED,
}


@pytest.mark.parametrize(("status", "command"), list(itertools.product(S, C)))
def test_every_return_state_command_pair(status: S, command: C) -> None:
    expected = MOVES.get((status, command))
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            next_status(status, command, all_in=True)
        assert caught.value.extra["current_state"] == status.value
    elif expected is RECEIPT:
        assert next_status(status, command, all_in=True) is S.RECEIVED
        assert next_status(status, command, all_in=False) is S.APPROVED
    else:
        assert next_status(status, command) is expected


@pytest.mark.parametrize("command", [C.REJECT, C.CANCEL])
def test_a_return_partly_in_can_no_longer_be_rejected_or_cancelled(command: C) -> None:
    with pytest.raises(DomainError) as caught:
        next_status(S.APPROVED, command, any_in=True)
    assert caught.value.code == "return_partly_received"


NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _line(shipped: int, returned: int = 0, pending: int = 0, days_ago: int = 1) -> ReturnableLine:
    return ReturnableLine("l1", shipped, returned, pending, NOW - timedelta(days=days_ago))


def test_only_shipped_units_less_returned_and_pending_may_be_returned() -> None:
    check_returnable([("l1", 2)], {"l1": _line(5, 1, 2)}, NOW, 30)
    with pytest.raises(DomainError) as caught:
        check_returnable([("l1", 3)], {"l1": _line(5, 1, 2)}, NOW, 30)
    assert caught.value.code == "exceeds_returnable"
    assert caught.value.extra["lines"] == [{"line_id": "l1", "requested": 3, "returnable": 2}]
    with pytest.raises(DomainError) as unshipped:
        check_returnable([("l1", 1)], {"l1": ReturnableLine("l1", 0, 0, 0, None)}, NOW, 30)
    assert unshipped.value.code == "exceeds_returnable"
    with pytest.raises(DomainError) as unknown:
        check_returnable([("l9", 1)], {"l1": _line(5)}, NOW, 30)
    assert (unknown.value.code, unknown.value.kind) == ("unknown_line", "invalid")
    with pytest.raises(DomainError) as twice:  # a return line holds one reason
        check_returnable([("l1", 1), ("l1", 1)], {"l1": _line(5)}, NOW, 30)
    assert (twice.value.code, twice.value.kind) == ("validation_error", "invalid")


def test_the_window_counts_from_delivery() -> None:
    check_returnable([("l1", 1)], {"l1": _line(1, days_ago=30)}, NOW, 30)
    with pytest.raises(DomainError) as caught:
        check_returnable([("l1", 1)], {"l1": _line(1, days_ago=31)}, NOW, 30)
    assert caught.value.code == "return_window_closed"


@pytest.mark.parametrize(
    ("shipped", "returned", "open_returns", "status"),
    [
        (0, 0, 0, OrderReturnStatus.NONE),
        (4, 0, 0, OrderReturnStatus.NONE),
        (4, 0, 1, OrderReturnStatus.REQUESTED),
        (4, 1, 1, OrderReturnStatus.REQUESTED),
        (4, 1, 0, OrderReturnStatus.PARTIALLY_RETURNED),
        (4, 4, 0, OrderReturnStatus.RETURNED),
    ],
)
def test_order_return_status(
    shipped: int, returned: int, open_returns: int, status: OrderReturnStatus
) -> None:
    assert order_return_status(shipped, returned, open_returns) is status


def test_refund_amounts() -> None:
    lines = [(2, 1500), (1, 800)]
    assert refund_amount(lines, explicit=None, shipping=490, shipping_refunded_already=False,
                         refund_shipping=False) == (3800, False)  # fmt: skip
    assert refund_amount(lines, explicit=None, shipping=490, shipping_refunded_already=False,
                         refund_shipping=True) == (4290, True)  # fmt: skip
    assert refund_amount(lines, explicit=None, shipping=490, shipping_refunded_already=True,
                         refund_shipping=True) == (3800, False)  # fmt: skip
    assert refund_amount(lines, explicit=100, shipping=490, shipping_refunded_already=False,
                         refund_shipping=True) == (100, False)  # fmt: skip


def test_an_exchange_sends_only_catalogued_products_for_sale() -> None:
    check_exchange_skus(["A", "B", "A"], {"A": True, "B": True})
    with pytest.raises(DomainError) as unknown:
        check_exchange_skus(["Z", "B", "Y"], {"B": False})  # unknown before inactive
    assert (unknown.value.code, unknown.value.kind) == ("unknown_sku", "invalid")
    assert unknown.value.detail == "Unknown sku: Y, Z."
    assert unknown.value.extra["errors"][0]["loc"] == ["body", "exchange_lines"]
    with pytest.raises(DomainError) as inactive:
        check_exchange_skus(["B", "A"], {"A": True, "B": False})
    assert (inactive.value.code, inactive.value.kind) == ("product_inactive", "invalid")
    assert inactive.value.detail == "Not for sale (inactive): B."


@pytest.mark.parametrize(
    ("opened", "instead", "settled"),
    [
        (Resolution.REFUND, None, Resolution.REFUND),
        (Resolution.REFUND, Resolution.REFUND, Resolution.REFUND),
        (Resolution.EXCHANGE, None, Resolution.EXCHANGE),
        (Resolution.EXCHANGE, Resolution.EXCHANGE, Resolution.EXCHANGE),
        (Resolution.EXCHANGE, Resolution.REFUND, Resolution.REFUND),
    ],
)
def test_a_return_is_settled_as_opened_or_an_exchange_as_a_refund(
    opened: Resolution, instead: Resolution | None, settled: Resolution
) -> None:
    assert settled_as(opened, instead) is settled


def test_a_refund_is_never_settled_as_an_exchange() -> None:
    with pytest.raises(DomainError) as refused:
        settled_as(Resolution.REFUND, Resolution.EXCHANGE)
    assert refused.value.code == "exchange_not_allowed"
