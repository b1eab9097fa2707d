"""Carrier pickups: the end-of-day hand-over of shipped parcels. Pure.

| state     | command → state                                   |
|-----------|---------------------------------------------------|
| scheduled | collect → collected, cancel → cancelled (parcels free for the next pickup) |
| collected, cancelled | (final)                                |
"""

from __future__ import annotations

from enum import StrEnum

from oms_api.domain import events as E
from oms_api.domain.machine import step


class PickupStatus(StrEnum):
    SCHEDULED = "scheduled"
    COLLECTED = "collected"
    CANCELLED = "cancelled"


class PickupCommand(StrEnum):
    COLLECT = "collect"
    CANCEL = "cancel"


TRANSITIONS: dict[PickupStatus, dict[PickupCommand, PickupStatus]] = {
    PickupStatus.SCHEDULED: {
        PickupCommand.COLLECT: PickupStatus.COLLECTED,
        PickupCommand.CANCEL: PickupStatus.CANCELLED,
    },
    PickupStatus.COLLECTED: {},
    PickupStatus.CANCELLED: {},
}

EVENT_FOR_STATUS = {
    PickupStatus.SCHEDULED: E.PICKUP_SCHEDULED,
    PickupStatus.COLLECTED: E.PICKUP_COLLECTED,
    PickupStatus.CANCELLED: E.PICKUP_CANCELLED,
}


def next_status(status: PickupStatus, command: PickupCommand) -> PickupStatus:
    return step(
        TRANSITIONS, resource="pickup", status=status, command=command,
        allowed=[c.value for c in TRANSITIONS[status]],
    )  # fmt: skip
