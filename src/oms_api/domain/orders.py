"""The order state machine (SPEC §4). Pure: states, commands, and which leads where.

| state             | command → state                                                  |
|-------------------|------------------------------------------------------------------|
| pending           | confirm → confirmed, hold → on_hold, cancel/expire → cancelled   |
| on_hold           | release → pending or confirmed, cancel → cancelled               |
| confirmed         | ship_part → partially_shipped, ship_all → shipped, hold → on_hold, cancel → cancelled |
| partially_shipped | ship_part → partially_shipped, ship_all → shipped                |
| shipped           | deliver → delivered                                              |
| delivered, cancelled | (final)                                                       |
"""

from __future__ import annotations

from enum import StrEnum

from oms_api.domain.errors import InvalidTransition


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
    SHIP_PART = "ship_part"
    SHIP_ALL = "ship_all"
    DELIVER = "deliver"


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
    S.PARTIALLY_SHIPPED: {C.SHIP_PART: S.PARTIALLY_SHIPPED, C.SHIP_ALL: S.SHIPPED},
    S.SHIPPED: {C.DELIVER: S.DELIVERED},
    S.DELIVERED: {},
    S.CANCELLED: {},
}

# Commands a client may send (the others happen by themselves).
CLIENT_COMMANDS = (C.HOLD, C.RELEASE, C.CANCEL)

# The event each arrival state announces.
EVENT_FOR_STATUS: dict[OrderStatus, str] = {
    S.PENDING: "order.released",
    S.ON_HOLD: "order.on_hold",
    S.CONFIRMED: "order.confirmed",
    S.PARTIALLY_SHIPPED: "order.partially_shipped",
    S.SHIPPED: "order.shipped",
    S.DELIVERED: "order.delivered",
    S.CANCELLED: "order.cancelled",
}


def allowed_commands(status: OrderStatus) -> list[str]:
    return [c.value for c in TRANSITIONS[status] if c in CLIENT_COMMANDS]


def next_status(
    status: OrderStatus, command: OrderCommand, *, ready_to_confirm: bool
) -> OrderStatus:
    """The state `command` leads to from `status`, or InvalidTransition.

    `ready_to_confirm`: payment is settled (or needs none) — decides where release goes.
    """
    targets = TRANSITIONS[status]
    if command not in targets:
        raise InvalidTransition(
            resource="order", state=status.value, command=command.value,
            allowed=allowed_commands(status),
        )  # fmt: skip
    target = targets[command]
    if target is None:
        return S.CONFIRMED if ready_to_confirm else S.PENDING
    return target


def transition_events(status: OrderStatus, command: OrderCommand, target: OrderStatus) -> list[str]:
    """Event types a transition emits, in order."""
    if command is C.RELEASE:
        return ["order.released"] + (["order.confirmed"] if target is S.CONFIRMED else [])
    return [EVENT_FOR_STATUS[target]]


def releases_reservations(target: OrderStatus) -> bool:
    return target is S.CANCELLED
