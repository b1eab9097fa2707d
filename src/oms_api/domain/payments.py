"""Payment transactions on an order and the `payment_status` they add up to. Pure.

Amounts are integers in minor units. An order keeps four running sums: authorized,
captured, refunded, voided.
- authorization: adds to `authorized`.
- capture: takes money; at most what is authorized and not yet captured or voided, or,
  with no authorization at all, at most the order total minus what is captured.
- refund: at most `captured - refunded`.
- void: cancels the uncaptured part of an authorization; at most `authorized -
  captured - voided`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from oms_api.domain.errors import DomainError


class PaymentKind(StrEnum):
    AUTHORIZATION = "authorization"
    CAPTURE = "capture"
    REFUND = "refund"
    VOID = "void"


class PaymentStatus(StrEnum):
    UNPAID = "unpaid"
    AUTHORIZED = "authorized"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"


# Methods for which no payment is needed before fulfilment.
NO_PAYMENT_NEEDED = frozenset({"invoice", "cash_on_delivery"})


@dataclass(frozen=True, slots=True)
class PaymentTotals:
    authorized: int = 0
    captured: int = 0
    refunded: int = 0
    voided: int = 0

    @property
    def open_authorization(self) -> int:
        return max(self.authorized - self.captured - self.voided, 0)


def apply_payment(
    totals: PaymentTotals, kind: PaymentKind, amount: int, order_total: int, *,
    cancelled: bool = False,
) -> PaymentTotals:  # fmt: skip
    """The totals with this transaction, or its refusal. A `cancelled` order takes refunds
    and voids only (409 `order_cancelled`)."""
    if cancelled and kind in (PaymentKind.AUTHORIZATION, PaymentKind.CAPTURE):
        raise DomainError(
            "order_cancelled",
            f"Cannot record a {kind.value} on a cancelled order; refunds and voids only.",
        )
    if amount <= 0:
        raise DomainError("invalid_amount", "A payment amount must be positive.", kind="invalid")
    if kind is PaymentKind.AUTHORIZATION:
        return replace(totals, authorized=totals.authorized + amount)
    if kind is PaymentKind.CAPTURE:
        limit = (
            totals.open_authorization
            if totals.authorized > 0
            else max(order_total - totals.captured, 0)
        )
        if amount > limit:
            raise DomainError(
                "capture_exceeds_authorized",
                f"Cannot capture {amount}: at most {limit} can be captured now.",
                capturable=limit,
            )
        return replace(totals, captured=totals.captured + amount)
    if kind is PaymentKind.REFUND:
        limit = totals.captured - totals.refunded
        if amount > limit:
            raise DomainError(
                "refund_exceeds_captured",
                f"Cannot refund {amount}: only {limit} captured and not yet refunded.",
                refundable=limit,
            )
        return replace(totals, refunded=totals.refunded + amount)
    limit = totals.open_authorization
    if amount > limit:
        raise DomainError(
            "void_exceeds_authorized",
            f"Cannot void {amount}: only {limit} is authorized and not captured.",
            voidable=limit,
        )
    return replace(totals, voided=totals.voided + amount)


def payment_status(totals: PaymentTotals) -> PaymentStatus:
    if totals.refunded > 0:
        if totals.refunded >= totals.captured:
            return PaymentStatus.REFUNDED
        return PaymentStatus.PARTIALLY_REFUNDED
    if totals.captured > 0:
        return PaymentStatus.PAID
    if totals.open_authorization > 0:
        return PaymentStatus.AUTHORIZED
    if totals.voided > 0:
        return PaymentStatus.VOIDED
    return PaymentStatus.UNPAID


def payment_in_force(totals: PaymentTotals) -> bool:
    """An authorization not yet captured or voided, or a capture not yet refunded, holds.
    A pending order with none of these is unpaid and may expire. `EXPIRABLE_SQL` is the
    same rule over the `orders` columns."""
    return totals.open_authorization > 0 or totals.captured > totals.refunded


# `payment_in_force` negated, over the orders table's running sums.
EXPIRABLE_SQL = "authorized - captured - voided <= 0 AND captured <= refunded"


def is_settled(totals: PaymentTotals, order_total: int, method: str | None) -> bool:
    """Enough is authorized or captured to fulfil the order (or the method needs none)."""
    if method in NO_PAYMENT_NEEDED or order_total == 0:
        return True
    return totals.captured + totals.open_authorization >= order_total
