"""Choosing where an order's units come from. Pure.

Rules (SPEC §4): only the channel's locations; prefer shipping from as few locations as
possible; among equals, by location `priority` (lower first), then by id.
1. If one location can supply every unit, the first such by priority does.
2. Otherwise, greedily: take the location supplying the most of what is still needed
   (ties by priority), reserve what it has of each product, repeat.
What no location can supply is short: backordered for products that allow it,
otherwise the whole placement is refused (`insufficient_stock`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from oms_api.domain.errors import DomainError


class StockMove(TypedDict):
    """One change of a level (`on_hand`, `reserved`, or both) and the ledger row that records
    it. Every change of stock anywhere is a list of these, applied by the one stock path."""

    id: str
    product_id: str
    location_id: str
    sku: str
    on_hand_delta: int
    reserved_delta: int
    reason: str
    cause_type: str  # adjustment | order | shipment | return | replenishment
    cause_id: str | None
    note: str | None


@dataclass(frozen=True, slots=True)
class StockAt:
    product_id: str
    location_id: str
    priority: int
    available: int


@dataclass(frozen=True, slots=True)
class Pick:
    product_id: str
    location_id: str
    quantity: int


@dataclass(slots=True)
class Allocation:
    picks: list[Pick] = field(default_factory=list)
    short: dict[str, int] = field(default_factory=dict)  # product_id → units no location has


def allocate(demand: dict[str, int], stock: Sequence[StockAt]) -> Allocation:
    """`demand`: units per product (summed over lines). `stock`: what each allowed
    location has available."""
    by_location: dict[str, dict[str, int]] = {}
    rank: dict[str, tuple[int, str]] = {}
    for s in stock:
        if s.available > 0 and s.product_id in demand:
            by_location.setdefault(s.location_id, {})[s.product_id] = s.available
            rank[s.location_id] = (s.priority, s.location_id)
    ordered = sorted(by_location, key=rank.__getitem__)

    for location in ordered:
        have = by_location[location]
        if all(have.get(p, 0) >= q for p, q in demand.items()):
            return Allocation([Pick(p, location, q) for p, q in sorted(demand.items())])

    remaining = dict(demand)
    result = Allocation()
    candidates = list(ordered)
    while candidates and any(remaining.values()):

        def supply(location: str) -> int:
            have = by_location[location]
            return sum(min(have.get(p, 0), q) for p, q in remaining.items())

        best = min(candidates, key=lambda loc: (-supply(loc), rank[loc]))
        if supply(best) == 0:
            break
        candidates.remove(best)
        for product, needed in sorted(remaining.items()):
            take = min(by_location[best].get(product, 0), needed)
            if take:
                result.picks.append(Pick(product, best, take))
                remaining[product] = needed - take
    result.short = {p: q for p, q in remaining.items() if q > 0}
    return result


def check_adjustment(on_hand: int, reserved: int, delta: int, expected_on_hand: int | None) -> None:
    """An adjustment of `on_hand` by `delta` may apply: the count it was based on is still
    current (compare-and-set), and it leaves at least what open orders have reserved."""
    if expected_on_hand is not None and on_hand != expected_on_hand:
        raise DomainError(
            "stale_count",
            f"on_hand is {on_hand}, not the expected {expected_on_hand}: stock moved since the "
            "count; recount and retry.",
            on_hand=on_hand,
        )
    if on_hand + delta < reserved:
        raise DomainError(
            "negative_available",
            f"on_hand {on_hand} {delta:+d} would leave less than the {reserved} units reserved "
            "for open orders.",
            on_hand=on_hand, reserved=reserved, available=on_hand - reserved,
        )  # fmt: skip
