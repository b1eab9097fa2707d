"""Payment transactions on an order and the `payment_status` they add up to. Pure.

Amounts are integers in minor units. An order keeps four running sums: authorized,
captured, refunded, voided; `open_authorization` is `authorized - captured - voided`:
authorized, and neither captured nor voided yet.
- authorization: adds to `authorized`; at most what is still owed and not already
  authorized: `total - captured - open_authorization` (`authorizable`). A void frees its
  amount for a new authorization; a refund does not (what was refunded is not owed again).
  More is `amount_exceeds_order_total`.
- capture: takes money; with an authorization open, at most what is open; with none open,
  it is a *sale* (an authorization and its capture at once: an exchange's credit, a
  placement `paid`, a charge after an authorization was captured or voided) of at most the
  order total minus what is captured, and it adds its amount to `authorized` too — it
  authorizes what it captures. Never, either way, past the total (`capturable`; more is
  `capture_exceeds_authorized`).
- refund: at most `captured - refunded` (`refundable`; `refund_exceeds_captured`).
- void: cancels the uncaptured part of an authorization; at most `open_authorization`
  (`voidable`; `void_exceeds_authorized`).

So every order keeps `captured + voided <= authorized` (the open authorization is exact:
an authorization taken after a sale stays open until captured or voided), `captured <=
total`, `authorized - voided <= total` and `refunded <= captured` (hence `total - refunded
>= 0`, what a customer's lifetime value sums). `authorized` counts sales: it is everything
ever authorized, alone or with its capture. Every refusal names the amount asked
(`requested`), the order's `total` and sums, and the limit.

Sums recorded before sales counted as authorizations may hold `captured + voided >
authorized`; `open_authorization` never reads below 0 for them, but an authorization taken
after such a sale is not seen as open until their `authorized` is recomputed by replaying
their `payments` rows with this rule (docs/orders.md "Payments").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from oms_api.domain.errors import DomainError, a


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


def is_sale(totals: PaymentTotals) -> bool:
    """A capture now would be a sale: no authorization is open for it to capture."""
    return totals.open_authorization == 0


def payment_limit(
    totals: PaymentTotals, kind: PaymentKind, order_total: int, *, credited: int = 0
) -> int:
    """The most a transaction of `kind` may be now (never below 0). `credited`: what of the
    captured money paid the order's exchanges (their orders' exchange credits): it is
    spent there, and is not refunded here too."""
    match kind:
        case PaymentKind.AUTHORIZATION:  # owed, and not already authorized and open
            return max(order_total - totals.captured - totals.open_authorization, 0)
        case PaymentKind.CAPTURE:  # what is open (with none open, a sale); never past the total
            uncaptured = max(order_total - totals.captured, 0)
            if is_sale(totals):
                return uncaptured
            return min(totals.open_authorization, uncaptured)
        case PaymentKind.REFUND:
            return max(totals.captured - totals.refunded - credited, 0)
        case PaymentKind.VOID:
            return totals.open_authorization


# Per kind: the refusal's code, its limit's name in the problem, and what the limit is.
REFUSALS: dict[PaymentKind, tuple[str, str, str]] = {
    PaymentKind.AUTHORIZATION: (
        "amount_exceeds_order_total", "authorizable",
        "is owed and not already authorized (the total less what is captured or authorized "
        "and open)",
    ),
    PaymentKind.CAPTURE: ("capture_exceeds_authorized", "capturable", "can be captured now"),
    PaymentKind.REFUND: ("refund_exceeds_captured", "refundable", "is captured and not refunded"),
    PaymentKind.VOID: ("void_exceeds_authorized", "voidable", "is authorized and not captured"),
}  # fmt: skip


def apply_payment(
    totals: PaymentTotals, kind: PaymentKind, amount: int, order_total: int, *,
    cancelled: bool = False, credited: int = 0,
) -> PaymentTotals:  # fmt: skip
    """The totals with this transaction, or its refusal: 409 `REFUSALS[kind]`'s code when
    `amount` is over `payment_limit`, naming `requested`, `total`, the four sums and the
    limit. A `cancelled` order takes refunds and voids only (409 `order_cancelled`)."""
    if cancelled and kind in (PaymentKind.AUTHORIZATION, PaymentKind.CAPTURE):
        raise DomainError(
            "order_cancelled",
            f"Cannot record {a(kind.value)} on a cancelled order; refunds and voids only.",
        )
    if amount <= 0:
        raise DomainError("invalid_amount", "A payment amount must be positive.", kind="invalid")
    limit = payment_limit(totals, kind, order_total, credited=credited)
    if amount > limit:
        code, limit_name, what = REFUSALS[kind]
        amounts: dict[str, Any] = {
            "requested": amount, "total": order_total, "authorized": totals.authorized,
            "captured": totals.captured, "refunded": totals.refunded, "voided": totals.voided,
            limit_name: limit,
        }  # fmt: skip
        if credited:
            amounts["credited_to_exchanges"] = credited
            what += ", less what paid its exchanges' orders"
        raise DomainError(
            code,
            f"Cannot record {a(kind.value)} of {amount}: at most {limit} {what}; the order "
            f"total is {order_total}.",
            **amounts,
        )
    return add_payment(totals, kind, amount)


def add_payment(totals: PaymentTotals, kind: PaymentKind, amount: int) -> PaymentTotals:
    """The totals with this transaction added, unchecked: a capture with no authorization
    open (a sale) adds to `authorized` as well as to `captured`."""
    match kind:
        case PaymentKind.AUTHORIZATION:
            return replace(totals, authorized=totals.authorized + amount)
        case PaymentKind.CAPTURE:
            sale = amount if is_sale(totals) else 0
            return replace(
                totals, authorized=totals.authorized + sale, captured=totals.captured + amount
            )
        case PaymentKind.REFUND:
            return replace(totals, refunded=totals.refunded + amount)
        case PaymentKind.VOID:
            return replace(totals, voided=totals.voided + amount)


def replay(transactions: Iterable[tuple[PaymentKind, int]]) -> PaymentTotals:
    """An order's sums from its `payments` rows, oldest first, unchecked: what sums recorded
    before sales counted as authorizations are recomputed to (docs/orders.md "Payments")."""
    totals = PaymentTotals()
    for kind, amount in transactions:
        totals = add_payment(totals, kind, amount)
    return totals


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
