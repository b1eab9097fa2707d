"""The one step of every state machine here (orders, shipments, pickups, returns). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from oms_api.domain.errors import InvalidTransition

S = TypeVar("S", bound=StrEnum)
C = TypeVar("C", bound=StrEnum)
T = TypeVar("T")


def step(
    table: Mapping[S, Mapping[C, T]], *, resource: str, status: S, command: C,
    allowed: list[str],
) -> T:  # fmt: skip
    """What `table` says `command` leads to from `status`, or 409 `invalid_transition`
    naming the state and the commands `allowed` in it."""
    targets = table[status]
    if command not in targets:
        raise InvalidTransition(
            resource=resource, state=status.value, command=command.value, allowed=allowed
        )
    return targets[command]
