"""Risk rules run at placement: order in, score and reasons out. Pure.

A score at or above `hold_threshold` puts the order on hold. A blocked shipping
country always holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RiskSettings:
    hold_threshold: int = 70
    max_order_total: int = 1_000_000  # minor units
    blocked_countries: frozenset[str] = frozenset()
    velocity_max_orders: int = 5  # orders from one email within the window, this one included
    velocity_window_seconds: int = 3600
    weights: dict[str, int] = field(
        default_factory=lambda: {
            "order_total_above_limit": 50,
            "many_orders_from_email": 40,
            "billing_shipping_country_mismatch": 30,
        }
    )

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> RiskSettings:
        if not value:
            return cls()
        data = dict(value)
        if "blocked_countries" in data:
            data["blocked_countries"] = frozenset(c.upper() for c in data["blocked_countries"])
        if "weights" in data:
            data["weights"] = {**cls().weights, **data["weights"]}
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {
            "hold_threshold": self.hold_threshold,
            "max_order_total": self.max_order_total,
            "blocked_countries": sorted(self.blocked_countries),
            "velocity_max_orders": self.velocity_max_orders,
            "velocity_window_seconds": self.velocity_window_seconds,
            "weights": dict(self.weights),
        }


@dataclass(frozen=True, slots=True)
class RiskInput:
    total: int
    shipping_country: str | None
    billing_country: str | None
    # within the window, not counting this one; counted up to `velocity_max_orders` only
    recent_orders_from_email: int


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    score: int
    reasons: list[str]
    hold: bool


def assess(order: RiskInput, settings: RiskSettings) -> RiskAssessment:
    reasons: list[str] = []
    blocked = (
        order.shipping_country is not None and order.shipping_country in settings.blocked_countries
    )
    if blocked:
        reasons.append("shipping_country_blocked")
    if order.total > settings.max_order_total:
        reasons.append("order_total_above_limit")
    if order.recent_orders_from_email + 1 > settings.velocity_max_orders:
        reasons.append("many_orders_from_email")
    if (
        order.shipping_country
        and order.billing_country
        and order.shipping_country != order.billing_country
    ):
        reasons.append("billing_shipping_country_mismatch")
    weights = {**settings.weights, "shipping_country_blocked": settings.hold_threshold}
    score = min(100, sum(weights.get(r, 0) for r in reasons))
    return RiskAssessment(score, reasons, hold=blocked or score >= settings.hold_threshold)
