"""The order state machine (SPEC §4). Pure: states, commands, and which leads where.

| state             | command → state                                                  |
|-------------------|------------------------------------------------------------------|
| pending           | confirm → confirmed, hold → on_hold, cancel/expire → cancelled   |
| on_hold           | release → pending or confirmed, cancel → cancelled               |
| confirmed         | ship_part → partially_shipped, ship_all → shipped, hold → on_hold, cancel → cancelled |
| partially_shipped | ship_part → partially_shipped, ship_all → shipped, cancel (the rest) → shipped |
| shipped           | deliver → delivered                                              |
| delivered, cancelled | (final)                                                       |

After confirmation the state follows the order's lines and shipments (`fulfilment_status`),
never a client: `ship_part`, `ship_all` and `deliver` are the machine's names for those
moves, and `fulfilment_commands` finds the commands from the current state to the derived one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from oms_api.domain import events as E
from oms_api.domain.machine import step


class OrderStatus(StrEnum):
    PENDING = "pending"
    ON_HOLD = "on_hold"
    CONFIRMED = "confirmed"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class OrderCommand(StrEnum):
    CONFIRM = "confirm"  # automatic, once payment and risk allow
    HOLD = "hold"
    RELEASE = "release"
    CANCEL = "cancel"
    EXPIRE = "expire"  # automatic, an unpaid pending order past its time
    SHIP_PART = "ship_part"  # derived: some units shipped
    SHIP_ALL = "ship_all"  # derived: every unit not cancelled shipped
    DELIVER = "deliver"  # derived: every shipment delivered


S, C = OrderStatus, OrderCommand

TRANSITIONS: dict[OrderStatus, dict[OrderCommand, OrderStatus | None]] = {
    # None: the target depends on the order (release goes to confirmed when ready, else pending)
    S.PENDING: {
        C.CONFIRM: S.CONFIRMED,
        C.HOLD: S.ON_HOLD,
        C.CANCEL: S.CANCELLED,
        C.EXPIRE: S.CANCELLED,
    },
    S.ON_HOLD: {C.RELEASE: None, C.CANCEL: S.CANCELLED},
    S.CONFIRMED: {
        C.SHIP_PART: S.PARTIALLY_SHIPPED,
        C.SHIP_ALL: S.SHIPPED,
        C.HOLD: S.ON_HOLD,
        C.CANCEL: S.CANCELLED,
    },
    # Cancelling a partially shipped order cancels what has not shipped: all that is left
    # has shipped.
    S.PARTIALLY_SHIPPED: {
        C.SHIP_PART: S.PARTIALLY_SHIPPED,
        C.SHIP_ALL: S.SHIPPED,
        C.CANCEL: S.SHIPPED,
    },
    S.SHIPPED: {C.DELIVER: S.DELIVERED},
    S.DELIVERED: {},
    S.CANCELLED: {},
}

# Commands a client may send (the others happen by themselves).
CLIENT_COMMANDS = (C.HOLD, C.RELEASE, C.CANCEL)

# The event each arrival state announces.
EVENT_FOR_STATUS: dict[OrderStatus, str] = {
    S.PENDING: E.ORDER_RELEASED,
    S.ON_HOLD: E.ORDER_ON_HOLD,
    S.CONFIRMED: E.ORDER_CONFIRMED,
    S.PARTIALLY_SHIPPED: E.ORDER_PARTIALLY_SHIPPED,
    S.SHIPPED: E.ORDER_SHIPPED,
    S.DELIVERED: E.ORDER_DELIVERED,
    S.CANCELLED: E.ORDER_CANCELLED,
}

# States in which an order's units may be put into shipments and shipped.
FULFILLABLE = frozenset({S.CONFIRMED, S.PARTIALLY_SHIPPED})


def allowed_commands(status: OrderStatus) -> list[str]:
    return [c.value for c in TRANSITIONS[status] if c in CLIENT_COMMANDS]


def next_status(
    status: OrderStatus, command: OrderCommand, *, ready_to_confirm: bool = False
) -> OrderStatus:
    """The state `command` leads to from `status`, or InvalidTransition.

    `ready_to_confirm`: payment is settled (or needs none) — decides where release goes.
    """
    target = step(
        TRANSITIONS, resource="order", status=status, command=command,
        allowed=allowed_commands(status),
    )  # fmt: skip
    if target is None:
        return S.CONFIRMED if ready_to_confirm else S.PENDING
    return target


def transition_events(status: OrderStatus, command: OrderCommand, target: OrderStatus) -> list[str]:
    """Event types a transition emits, in order."""
    if command is C.RELEASE:
        return [E.ORDER_RELEASED] + ([E.ORDER_CONFIRMED] if target is S.CONFIRMED else [])
    if target is status:
        return []
    return [EVENT_FOR_STATUS[target]]


def releases_reservations(target: OrderStatus) -> bool:
    """Arriving here releases every unit reserved and not shipped (and cancels them)."""
    return target is S.CANCELLED


def cancels_the_rest(status: OrderStatus, command: OrderCommand) -> bool:
    """`command` cancels every unit not yet shipped: a cancel, or an expiry."""
    return command in (C.CANCEL, C.EXPIRE) and command in TRANSITIONS[status]


def placed(*, hold: bool, settled: bool) -> tuple[OrderStatus, list[str]]:
    """Where a new order starts, and its events: created `pending`, then held by the risk
    check, or confirmed at once when its payment is settled (or needs none)."""
    status, events = S.PENDING, [E.ORDER_CREATED]
    command = C.HOLD if hold else C.CONFIRM if settled else None
    if command is not None:
        target = next_status(status, command)
        events += transition_events(status, command, target)
        status = target
    return status, events


def after_payment(status: OrderStatus, *, settled: bool) -> OrderCommand | None:
    """The command a recorded payment gives the machine: a pending order whose payment is
    now settled (or needs none) is confirmed; otherwise none (a held order waits for its
    release, which confirms it when settled)."""
    return C.CONFIRM if status is S.PENDING and settled else None


@dataclass(frozen=True, slots=True)
class Fulfilment:
    """What an order's lines and shipments add up to."""

    units: int  # ordered and not cancelled
    shipped: int  # of those, shipped
    shipments_out: int  # shipments shipped (delivered or not)
    shipments_delivered: int


def fulfilment_status(f: Fulfilment) -> OrderStatus | None:
    """The state the order's fulfilment puts it in, or None before any unit shipped."""
    if f.shipped == 0:
        return None
    if f.shipped < f.units:
        return S.PARTIALLY_SHIPPED
    if f.shipments_out and f.shipments_delivered == f.shipments_out:
        return S.DELIVERED
    return S.SHIPPED


_STEP_TOWARDS: dict[OrderStatus, OrderCommand] = {
    S.PARTIALLY_SHIPPED: C.SHIP_PART,
    S.SHIPPED: C.SHIP_ALL,
    S.DELIVERED: C.DELIVER,
}


def fulfilment_commands(status: OrderStatus, f: Fulfilment) -> list[OrderCommand]:
    """The machine's commands that take the order from `status` to the state `f` derives,
    in order; none when it is already there. A derived state the machine cannot reach from
    `status` is InvalidTransition (e.g. a held order never ships)."""
    commands: list[OrderCommand] = []
    target = fulfilment_status(f)
    while target is not None and status is not target:
        if target is S.DELIVERED and status is not S.SHIPPED:
            command = C.SHIP_ALL  # every unit shipped, then delivered
        else:
            command = _STEP_TOWARDS[target]
        status = next_status(status, command)
        commands.append(command)
    return commands
