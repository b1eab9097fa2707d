"""Backorders filled as stock arrives: who gets the units. Pure.

Stock that arrives at a location (an adjustment `received`/`correction` upwards, a
replenishment received, a resellable return) goes to the backordered lines of the
orders whose channel sells from there — oldest order first, its lines in order — until
the location's available units run out. What each line gets is reserved there: its
`quantity_backordered` falls as its `quantity_reserved` rises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# Upward adjustments that bring units an order may take; `cycle_count` corrects a count
# (SPEC §4 Orders, Backorders: `received` and `correction`).
FILLING_ADJUSTMENTS = frozenset({"received", "correction"})

# Orders whose backordered lines still wait for stock.
WAITING_STATUSES = ("pending", "on_hold", "confirmed", "partially_shipped")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A backordered line, in the order it is to be filled (oldest order first)."""

    order_id: str
    line_id: str
    backordered: int


@dataclass(frozen=True, slots=True)
class Fill:
    order_id: str
    line_id: str
    quantity: int


def fills_backorders(reason: str, delta: int) -> bool:
    """Whether an adjustment of `delta` units for `reason` brings units backorders take."""
    return delta > 0 and reason in FILLING_ADJUSTMENTS


def plan_fills(available: int, waiting: Iterable[Waiting]) -> list[Fill]:
    """The units each waiting line takes from `available`, in turn, until none is left."""
    fills: list[Fill] = []
    for line in waiting:
        if available <= 0:
            break
        take = min(available, line.backordered)
        if take > 0:
            fills.append(Fill(line.order_id, line.line_id, take))
            available -= take
    return fills
