"""Risk rules run at placement: order in, score and reasons out. Pure.

A score at or above `hold_threshold` puts the order on hold. A blocked shipping
country always holds it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Each rule's reason, as it appears in `risk.reasons` (and keys `weights`).
SHIPPING_COUNTRY_BLOCKED = "shipping_country_blocked"
ORDER_TOTAL_ABOVE_LIMIT = "order_total_above_limit"
FIRST_ORDER_ABOVE_LIMIT = "first_order_above_limit"
MANY_ORDERS_FROM_EMAIL = "many_orders_from_email"
MANY_ORDERS_TO_ADDRESS = "many_orders_to_address"
BILLING_SHIPPING_COUNTRY_MISMATCH = "billing_shipping_country_mismatch"

# The rules that score by weight (a blocked country holds whatever the weights say).
WEIGHED_REASONS = (
    ORDER_TOTAL_ABOVE_LIMIT,
    FIRST_ORDER_ABOVE_LIMIT,
    MANY_ORDERS_FROM_EMAIL,
    MANY_ORDERS_TO_ADDRESS,
    BILLING_SHIPPING_COUNTRY_MISMATCH,
)


@dataclass(frozen=True, slots=True)
class RiskSettings:
    hold_threshold: int = 70
    max_order_total: int = 1_000_000  # minor units
    blocked_countries: frozenset[str] = frozenset()
    velocity_max_orders: int = 5  # orders from one email within the window, this one included
    velocity_window_seconds: int = 3600
    # orders to one shipping address (`address_key`) within its window, this one included
    address_velocity_max_orders: int = 5
    address_velocity_window_seconds: int = 3600
    first_order_max_total: int = 250_000  # minor units: a customer's first order above it
    weights: dict[str, int] = field(
        default_factory=lambda: {
            ORDER_TOTAL_ABOVE_LIMIT: 50,
            FIRST_ORDER_ABOVE_LIMIT: 40,
            MANY_ORDERS_FROM_EMAIL: 40,
            MANY_ORDERS_TO_ADDRESS: 40,
            BILLING_SHIPPING_COUNTRY_MISMATCH: 30,
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
            "address_velocity_max_orders": self.address_velocity_max_orders,
            "address_velocity_window_seconds": self.address_velocity_window_seconds,
            "first_order_max_total": self.first_order_max_total,
            "weights": dict(self.weights),
        }


@dataclass(frozen=True, slots=True)
class RiskInput:
    total: int
    shipping_country: str | None
    billing_country: str | None
    # within the window, not counting this one; counted up to `velocity_max_orders` only
    recent_orders_from_email: int
    # to the same `address_key`, within its window, not counting this one; counted up to
    # `address_velocity_max_orders` only (0 without a shipping address)
    recent_orders_to_address: int
    # the customer has no earlier order (a new email, or a customer who never ordered)
    first_order: bool


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
        reasons.append(SHIPPING_COUNTRY_BLOCKED)
    if order.total > settings.max_order_total:
        reasons.append(ORDER_TOTAL_ABOVE_LIMIT)
    if order.first_order and order.total > settings.first_order_max_total:
        reasons.append(FIRST_ORDER_ABOVE_LIMIT)
    if order.recent_orders_from_email + 1 > settings.velocity_max_orders:
        reasons.append(MANY_ORDERS_FROM_EMAIL)
    if order.recent_orders_to_address + 1 > settings.address_velocity_max_orders:
        reasons.append(MANY_ORDERS_TO_ADDRESS)
    if (
        order.shipping_country
        and order.billing_country
        and order.shipping_country != order.billing_country
    ):
        reasons.append(BILLING_SHIPPING_COUNTRY_MISMATCH)
    weights = {**settings.weights, SHIPPING_COUNTRY_BLOCKED: settings.hold_threshold}
    score = min(100, sum(weights.get(r, 0) for r in reasons))
    return RiskAssessment(score, reasons, hold=blocked or score >= settings.hold_threshold)


# --- one place, however it is spelt -----------------------------------------------------

_FIELD = "\x1f"  # between an address's fields while they are normalised together
# Runs of anything but letters, digits and _FIELD (for text beyond ASCII, after NFKC).
_NOT_WORD = re.compile(r"[^\w\x1f]+")
# Then byte by byte: ASCII other than letters, digits and _FIELD becomes a space (`_` too);
# the bytes of UTF-8 sequences (0x80 and above) stay as they are.
_SPACES = bytes(b if b >= 0x80 or b == 0x1F or chr(b).isalnum() else 0x20 for b in range(256))


def address_key(address: Mapping[str, Any] | None) -> str | None:
    """The place an address names, as a short fixed-length key: what the velocity-by-address
    rule counts orders by (`orders.shipping_address_key`). Only the fields that identify
    the place count — the street lines (line1 then line2, read as one), the postal code
    (its spaces ignored), the city and the country — each NFKC-normalised (full-width
    digits, ligatures) and case-folded, with punctuation and whitespace runs made one
    space: "12, St. James  SQ" is "12 st james sq". Who receives it (name, company,
    phone) and the region (often spelt several ways for one place) do not count. None
    without an address. Hashed (BLAKE2b, 128 bits) so that the key and its index entry
    stay small whatever the address's length.

    On placement's hot path: the fields are normalised together, in one pass, and plain
    ASCII (most addresses) skips NFKC, case folding and the regular expression."""
    if address is None:
        return None
    get = address.get
    fields = (get("country"), get("postal_code"), get("city"), get("line1"), get("line2"))
    text = f"{fields[0] or ''}\x1f{fields[1] or ''}\x1f{fields[2] or ''}\x1f{fields[3] or ''}\x1f{fields[4] or ''}"
    if text.count(_FIELD) != 4:  # a field holds the separator itself: make it a space
        text = _FIELD.join(str(f or "").replace(_FIELD, " ") for f in fields)
    if not text.isascii():
        text = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    country, postal, city, line1, line2 = text.encode().lower().translate(_SPACES).split(b"\x1f")
    place = b"\x1f".join(
        (
            country.strip(),
            postal.replace(b" ", b""),
            city.strip(),
            b" ".join((line1 + b" " + line2).split()),
        )
    )
    return hashlib.blake2b(place, digest_size=16).hexdigest()
