"""Replenishment requests: opened by the stock path when a product's total `available`
falls to or below its reorder point (`sql/functions/oms_move_stock.sql`), closed by a
receipt or a cancellation. Pure.

| state     | command → state                                             |
|-----------|-------------------------------------------------------------|
| open      | receive → received (the stock comes in), cancel → cancelled |
| received, cancelled | (final)                                           |
"""

from __future__ import annotations

from enum import StrEnum

from oms_api.domain import events as E
from oms_api.domain.machine import step


class ReplenishmentStatus(StrEnum):
    OPEN = "open"
    RECEIVED = "received"
    CANCELLED = "cancelled"


class ReplenishmentCommand(StrEnum):
    RECEIVE = "receive"
    CANCEL = "cancel"


TRANSITIONS: dict[ReplenishmentStatus, dict[ReplenishmentCommand, ReplenishmentStatus]] = {
    ReplenishmentStatus.OPEN: {
        ReplenishmentCommand.RECEIVE: ReplenishmentStatus.RECEIVED,
        ReplenishmentCommand.CANCEL: ReplenishmentStatus.CANCELLED,
    },
    ReplenishmentStatus.RECEIVED: {},
    ReplenishmentStatus.CANCELLED: {},
}

EVENT_FOR_STATUS = {
    ReplenishmentStatus.RECEIVED: E.REPLENISHMENT_RECEIVED,
    ReplenishmentStatus.CANCELLED: E.REPLENISHMENT_CANCELLED,
}


def next_status(status: ReplenishmentStatus, command: ReplenishmentCommand) -> ReplenishmentStatus:
    return step(
        TRANSITIONS, resource="replenishment", status=status, command=command,
        allowed=[c.value for c in TRANSITIONS[status]],
    )  # fmt: skip
