"""Returns (RMAs): their state machine, what may be returned, and what is refunded. Pure.

| state     | command → state                                                          |
|-----------|--------------------------------------------------------------------------|
| requested | approve → approved, reject → rejected, cancel → cancelled                |
| approved  | receive → approved (a partial receipt) or received (every unit in),      |
|           | reject → rejected, cancel → cancelled (both only before any unit is in)  |
| received  | complete → completed                                                     |
| completed, rejected, cancelled | (final)                                         |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from oms_api.domain import events as E
from oms_api.domain.errors import DomainError
from oms_api.domain.limits import refuse_over
from oms_api.domain.machine import step


class ReturnStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    RECEIVED = "received"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class ReturnCommand(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RECEIVE = "receive"
    COMPLETE = "complete"


class Resolution(StrEnum):
    REFUND = "refund"
    EXCHANGE = "exchange"


class ReturnReason(StrEnum):
    DAMAGED = "damaged"
    WRONG_ITEM = "wrong_item"
    NOT_AS_DESCRIBED = "not_as_described"
    NO_LONGER_NEEDED = "no_longer_needed"
    SIZE_OR_FIT = "size_or_fit"
    OTHER = "other"


class OrderReturnStatus(StrEnum):
    NONE = "none"
    REQUESTED = "requested"
    PARTIALLY_RETURNED = "partially_returned"
    RETURNED = "returned"


S, C = ReturnStatus, ReturnCommand

TRANSITIONS: dict[ReturnStatus, dict[ReturnCommand, ReturnStatus | None]] = {
    # None: the target depends on the return (a receipt completes it or not)
    S.REQUESTED: {C.APPROVE: S.APPROVED, C.REJECT: S.REJECTED, C.CANCEL: S.CANCELLED},
    S.APPROVED: {C.RECEIVE: None, C.REJECT: S.REJECTED, C.CANCEL: S.CANCELLED},
    S.RECEIVED: {C.COMPLETE: S.COMPLETED},
    S.COMPLETED: {},
    S.REJECTED: {},
    S.CANCELLED: {},
}

EVENT_FOR_COMMAND: dict[ReturnCommand, str] = {
    C.APPROVE: E.RETURN_APPROVED,
    C.REJECT: E.RETURN_REJECTED,
    C.CANCEL: E.RETURN_CANCELLED,
    C.RECEIVE: E.RETURN_RECEIVED,
    C.COMPLETE: E.RETURN_COMPLETED,
}

# Returns whose units are still on their way back.
OPEN = frozenset({S.REQUESTED, S.APPROVED})


def allowed_commands(status: ReturnStatus) -> list[str]:
    return [c.value for c in TRANSITIONS[status]]


def next_status(
    status: ReturnStatus, command: ReturnCommand, *, all_in: bool = False, any_in: bool = False
) -> ReturnStatus:
    """The state `command` leads to, or a refusal. `all_in`: with this receipt every unit
    is back; `any_in`: some unit is back already (it can no longer be rejected or
    cancelled: the parcel is here)."""
    target = step(
        TRANSITIONS, resource="return", status=status, command=command,
        allowed=allowed_commands(status),
    )  # fmt: skip
    if command in (C.REJECT, C.CANCEL) and any_in:
        raise DomainError(
            "return_partly_received",
            f"Units of this return were received already: it cannot be {command.value}ed; "
            "receive the rest, then complete it.",
            current_state=status.value,
        )
    if target is None:
        return S.RECEIVED if all_in else S.APPROVED
    return target


@dataclass(frozen=True, slots=True)
class ReturnableLine:
    line_id: str
    shipped: int
    returned: int  # received back already
    pending: int  # asked for in open returns, not received yet
    returnable_since: datetime | None  # delivered (or, never delivered, shipped) last

    @property
    def returnable(self) -> int:
        return self.shipped - self.returned - self.pending


def check_returnable(
    asked: Sequence[tuple[str, int]], lines: Mapping[str, ReturnableLine], now: datetime,
    window_days: int,
) -> None:  # fmt: skip
    """Refuse a return naming a line twice (422 `validation_error`: a return line holds one
    quantity, reason and note), asking for a line not in the order (422 `unknown_line`),
    for more than its shipped units less those returned or in an open return (409
    `exceeds_returnable`), or after the return window (409 `return_window_closed`)."""
    seen: set[str] = set()
    for i, (line_id, _) in enumerate(asked):
        if line_id in seen:
            raise DomainError(
                "validation_error", f"Line {line_id} is named more than once; name each once.",
                kind="invalid", loc=["body", "lines", i, "line_id"],
            )  # fmt: skip
        seen.add(line_id)
    unknown = [line_id for line_id, _ in asked if line_id not in lines]
    if unknown:
        raise DomainError(
            "unknown_line", f"Not a line of this order: {', '.join(unknown)}.", kind="invalid",
            loc=["body", "lines"],
        )  # fmt: skip
    totals: dict[str, int] = {}
    for line_id, quantity in asked:
        totals[line_id] = totals.get(line_id, 0) + quantity
    refuse_over(
        "exceeds_returnable", "More than was shipped and not yet returned or asked for",
        totals, {line_id: lines[line_id].returnable for line_id in totals},
        limit_as="returnable",
    )  # fmt: skip
    closed = [
        line_id for line_id in totals
        if (since := lines[line_id].returnable_since) is not None
        and now > since + timedelta(days=window_days)
    ]  # fmt: skip
    if closed:
        raise DomainError(
            "return_window_closed",
            f"The {window_days}-day return window has closed for: {', '.join(closed)}.",
            window_days=window_days,
            lines=closed,
        )


def check_resolution(resolution: Resolution, exchange_lines: Sequence[tuple[str, int]]) -> None:
    """An exchange names what to send instead (422 `exchange_lines_required`); a refund
    names nothing (422 `exchange_lines_not_allowed`)."""
    if resolution is Resolution.EXCHANGE and not exchange_lines:
        raise DomainError(
            "exchange_lines_required", "An exchange names what to send instead.",
            kind="invalid", loc=["body", "exchange_lines"],
        )  # fmt: skip
    if resolution is Resolution.REFUND and exchange_lines:
        raise DomainError(
            "exchange_lines_not_allowed", "A refund return takes no exchange_lines.",
            kind="invalid", loc=["body", "exchange_lines"],
        )  # fmt: skip


def settled_as(resolution: Resolution, instead: Resolution | None) -> Resolution:
    """How a return is completed: as it was opened, or an exchange as a refund instead
    (`/complete {resolution: refund}`: what it asked for cannot be sent — discontinued, out
    of stock for good — and the return would otherwise wait in `received` forever). A
    refund cannot become an exchange: it names nothing to send (422
    `exchange_not_allowed`)."""
    if instead is None or instead is resolution:
        return resolution
    if instead is Resolution.EXCHANGE:
        raise DomainError(
            "exchange_not_allowed",
            "A refund return cannot be completed as an exchange: open an exchange return.",
            kind="invalid", loc=["body", "resolution"],
        )  # fmt: skip
    return instead


def check_completion(
    resolution: Resolution, *, explicit_amount: int | None, refund_shipping: bool
) -> None:
    """An exchange is settled by its new order and refunds nothing: a `refund_amount` or
    `refund_shipping: true` sent to complete one is refused (422 `refund_not_allowed`),
    never dropped."""
    if resolution is not Resolution.EXCHANGE:
        return
    field = "refund_amount" if explicit_amount is not None else "refund_shipping"
    if explicit_amount is not None or refund_shipping:
        raise DomainError(
            "refund_not_allowed",
            f"An exchange return places a new order and refunds nothing: {field} is for "
            "refund returns. To refund the original order as well, record a refund on it "
            "(POST /v1/orders/{id}/payments with kind refund).",
            kind="invalid", loc=["body", field],
        )  # fmt: skip


def check_exchange_skus(skus: Sequence[str], active: Mapping[str, bool]) -> None:
    """What an exchange sends must be in the catalogue (422 `unknown_sku`) and for sale (422
    `product_inactive`); `active`: each catalogued SKU asked for, whether it is active. Its
    stock is checked when the exchange is placed."""
    asked = sorted(set(skus))
    unknown = [sku for sku in asked if sku not in active]
    if unknown:
        raise DomainError("unknown_sku", f"Unknown sku: {', '.join(unknown)}.", kind="invalid",
                          loc=["body", "exchange_lines"])  # fmt: skip
    inactive = [sku for sku in asked if not active[sku]]
    if inactive:
        raise DomainError("product_inactive", f"Not for sale (inactive): {', '.join(inactive)}.",
                          kind="invalid", loc=["body", "exchange_lines"])  # fmt: skip


def check_exchange_currency(
    skus: Sequence[str], currencies: Mapping[str, str], order_currency: str
) -> None:
    """An exchange's order is in the original order's currency and priced from the
    catalogue, so each SKU it sends (`skus`, the exchange lines' in order) must be priced in
    that currency: 422 `currency_mismatch` naming every line that is not, when the return is
    opened — before the parcel is on its way. (`currencies`: each SKU's; unknown ones are
    `check_exchange_skus`'s.)"""
    wrong = [
        (i, sku)
        for i, sku in enumerate(skus)
        if currencies.get(sku, order_currency) != order_currency
    ]
    if wrong:
        raise DomainError(
            "currency_mismatch",
            f"An exchange is placed in the order's currency, {order_currency}, at catalogue "
            f"prices: {', '.join(sorted({sku for _, sku in wrong}))} is priced in "
            f"{', '.join(sorted({currencies[sku] for _, sku in wrong}))}.",
            kind="invalid",
            errors=[
                {"loc": ["body", "exchange_lines", i, "sku"],
                 "msg": f"{sku} is priced in {currencies[sku]}, the order in {order_currency}."}
                for i, sku in wrong
            ],
        )  # fmt: skip


def check_exchange_still_priced(currencies: Mapping[str, str], order_currency: str) -> None:
    """At /complete: a product of the exchange whose currency changed since the return was
    opened cannot be placed in the order's currency — 409 `currency_mismatch`, the return
    stays `received`; it can still be completed as a refund."""
    wrong = sorted(sku for sku, currency in currencies.items() if currency != order_currency)
    if wrong:
        raise DomainError(
            "currency_mismatch",
            f"{', '.join(wrong)} is no longer priced in {order_currency}, the order's currency: "
            'the exchange cannot be placed; complete the return with {"resolution": "refund"}.',
            skus=wrong,
        )


def check_receipt(
    arriving: Sequence[tuple[str, int]], outstanding: Mapping[str, int], *, received: int,
    units: int,
) -> bool:  # fmt: skip
    """Units arriving for a return, (line_id, quantity); `outstanding`: per line of the
    return, units it still expects; `received` of its `units` are in already. Refuse a
    line not in the return (422 `unknown_line`) or more than a line still expects (409
    `exceeds_outstanding`); whether every unit is in with these."""
    totals: dict[str, int] = {}
    for line_id, quantity in arriving:
        if line_id not in outstanding:
            raise DomainError(
                "unknown_line", f"Not a line of this return: {line_id}.", kind="invalid",
                loc=["body", "lines"],
            )  # fmt: skip
        totals[line_id] = totals.get(line_id, 0) + quantity
    refuse_over(
        "exceeds_outstanding", "More than the return still expects for", totals, outstanding,
        asked_as="receiving", limit_as="outstanding",
    )  # fmt: skip
    return received + sum(totals.values()) == units


def order_return_status(shipped: int, returned: int, open_returns: int) -> OrderReturnStatus:
    """What an order's returns add up to: every shipped unit back → `returned`; a return
    on its way → `requested`; some back → `partially_returned`."""
    if shipped and returned >= shipped:
        return OrderReturnStatus.RETURNED
    if open_returns:
        return OrderReturnStatus.REQUESTED
    if returned:
        return OrderReturnStatus.PARTIALLY_RETURNED
    return OrderReturnStatus.NONE


def refund_amount(
    lines: Sequence[tuple[int, int]], *, explicit: int | None, shipping: int,
    shipping_refunded_already: bool, refund_shipping: bool,
) -> tuple[int, bool]:  # fmt: skip
    """(the refund, whether it includes the order's shipping). `lines`: (quantity, unit
    price) of the returned lines. By default their prices; `refund_shipping` adds the
    order's shipping once across all its returns; an explicit amount overrides both."""
    if explicit is not None:
        return explicit, False
    include = refund_shipping and not shipping_refunded_already and shipping > 0
    return sum(q * price for q, price in lines) + (shipping if include else 0), include


def exchange_credit(
    returned: Sequence[tuple[int, int]], exchange_total: int, *, unspent: int
) -> int:
    """What an exchange's order is paid with: what the returned units cost, (quantity,
    unit price) each, up to the exchange order's total — and up to what the customer paid
    on the original order and has not had back (`unspent`: captured, less refunded, less
    earlier exchanges' credits): money never paid, or refunded already, is no credit."""
    return max(min(sum(q * price for q, price in returned), exchange_total, unspent), 0)


DEFAULT_WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class ReturnSettings:
    window_days: int = DEFAULT_WINDOW_DAYS  # from the delivery (never delivered: the shipment)

    @classmethod
    def from_json(cls, value: Mapping[str, int] | None) -> ReturnSettings:
        return cls(window_days=int((value or {}).get("window_days", DEFAULT_WINDOW_DAYS)))

    def to_json(self) -> dict[str, int]:
        return {"window_days": self.window_days}
