"""Carrier pickups: the end-of-day hand-over of shipped parcels. Pure.

| state     | command → state                                   |
|-----------|---------------------------------------------------|
| scheduled | collect → collected, cancel → cancelled (parcels free for the next pickup) |
| collected, cancelled | (final)                                |
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from oms_api.domain import events as E
from oms_api.domain.errors import DomainError
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


# How far behind the server's clock a pickup's `ready_at` may be: a person scheduling a
# pickup for "now" from a clock a little slow.
READY_AT_CLOCK_SKEW = timedelta(minutes=15)


# How far ahead a pickup may be booked: carriers take bookings some days ahead (about two
# weeks at most); a year 9999 is a typo, not a pickup, and would hold its parcels forever.
READY_AT_HORIZON = timedelta(days=30)


def check_ready_at(ready_at: datetime, *, now: datetime) -> None:
    """A pickup is for parcels ready now or later, within READY_AT_HORIZON: a `ready_at`
    more than READY_AT_CLOCK_SKEW before `now` is 422 `ready_at_in_past`, one more than
    READY_AT_HORIZON after it 422 `ready_at_too_far`."""
    if ready_at > now + READY_AT_HORIZON:
        raise DomainError(
            "ready_at_too_far",
            f"ready_at ({ready_at.isoformat()}) is more than {READY_AT_HORIZON.days} days "
            f"ahead of the server's clock ({now.isoformat()}): book the pickup nearer the day.",
            kind="invalid", loc=["body", "ready_at"],
        )  # fmt: skip
    if ready_at < now - READY_AT_CLOCK_SKEW:
        raise DomainError(
            "ready_at_in_past",
            f"ready_at ({ready_at.isoformat()}) is in the past: a pickup may be ready at most "
            f"{int(READY_AT_CLOCK_SKEW.total_seconds()) // 60} minutes before the server's "
            f"clock ({now.isoformat()}). Send the time with its offset.",
            kind="invalid", loc=["body", "ready_at"],
        )  # fmt: skip
