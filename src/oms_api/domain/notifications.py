"""Customer notifications, decided: which event tells the customer what, and when.

SPEC §4 Notifications. Pure: the notifier (`services/notifications.py`) reads committed
events and asks `notification_for` what each one means for the order's customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from oms_api.domain import events as E


class Kind(StrEnum):
    ORDER_CONFIRMED = "order_confirmed"
    SHIPMENT_SHIPPED = "shipment_shipped"
    SHIPMENT_DELIVERED = "shipment_delivered"
    ORDER_CANCELLED = "order_cancelled"
    RETURN_APPROVED = "return_approved"
    RETURN_COMPLETED = "return_completed"
    FOLLOW_UP = "follow_up"


class Status(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


# The event each kind follows from. A follow-up follows the order's delivery, later.
KIND_OF_EVENT: Mapping[str, Kind] = {
    E.ORDER_CONFIRMED: Kind.ORDER_CONFIRMED,
    E.SHIPMENT_SHIPPED: Kind.SHIPMENT_SHIPPED,
    E.SHIPMENT_DELIVERED: Kind.SHIPMENT_DELIVERED,
    E.ORDER_CANCELLED: Kind.ORDER_CANCELLED,
    E.RETURN_APPROVED: Kind.RETURN_APPROVED,
    E.RETURN_COMPLETED: Kind.RETURN_COMPLETED,
    E.ORDER_DELIVERED: Kind.FOLLOW_UP,
}
NOTIFYING_EVENTS: tuple[str, ...] = tuple(KIND_OF_EVENT)

# Every kind but the follow-up, which a channel turns on.
DEFAULT_KINDS: tuple[Kind, ...] = tuple(k for k in Kind if k is not Kind.FOLLOW_UP)
DEFAULT_FOLLOW_UP_DAYS = 7
TEMPLATE_PARTS = ("subject", "text", "html")


@dataclass(frozen=True, slots=True)
class ChannelNotifications:
    """A channel's notification settings (`DEFAULT` for a channel that set none)."""

    enabled: bool = True
    from_name: str | None = None
    from_email: str | None = None
    reply_to: str | None = None
    kinds: tuple[Kind, ...] = DEFAULT_KINDS
    follow_up_days: int = DEFAULT_FOLLOW_UP_DAYS
    # kind → part (subject, text, html) → Jinja2 source
    templates: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


DEFAULT = ChannelNotifications()


@dataclass(frozen=True, slots=True)
class Planned:
    kind: Kind
    due_at: datetime


def notification_for(
    event_type: str,
    occurred_at: datetime,
    channel: ChannelNotifications,
    *,
    accepts_follow_up: bool,
) -> Planned | None:
    """What the event means for the order's customer: a notification of a kind, due at a
    time — or nothing (the channel tells its customers itself, the kind is off, the
    customer takes no follow-ups, or the event tells customers nothing)."""
    kind = KIND_OF_EVENT.get(event_type)
    if kind is None or not channel.enabled or kind not in channel.kinds:
        return None
    if kind is Kind.FOLLOW_UP:
        if not accepts_follow_up:
            return None
        return Planned(kind, occurred_at + timedelta(days=channel.follow_up_days))
    return Planned(kind, occurred_at)


def ordered_kinds(kinds: Sequence[str]) -> tuple[Kind, ...]:
    """`kinds` (known ones, each once) in the SPEC's order."""
    wanted = set(kinds)
    return tuple(k for k in Kind if k.value in wanted)


# Minor units per currency where they are not 2 (ISO 4217).
_ZERO_DECIMALS = ("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                  "UYI", "VND", "VUV", "XAF", "XOF", "XPF")  # fmt: skip
_THREE_DECIMALS = ("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND")
_EXPONENTS = {**dict.fromkeys(_ZERO_DECIMALS, 0), **dict.fromkeys(_THREE_DECIMALS, 3)}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$",
            "CHF": "CHF ", "SEK": "SEK ", "NOK": "NOK ", "DKK": "DKK ", "PLN": "PLN ",
            "CZK": "CZK ", "INR": "₹", "CNY": "CN¥", "KRW": "₩"}  # fmt: skip


def format_money(amount: int | None, currency: str | None) -> str:
    """An amount in minor units as a person reads it: `€1,234.50`, `¥1,235`, `1.250 KWD`
    shown as `KWD 1.250`; the currency's own number of decimals."""
    if amount is None:
        return ""
    code = (currency or "").upper()
    exponent = _EXPONENTS.get(code, 2)
    sign = "-" if amount < 0 else ""
    whole, fraction = divmod(abs(amount), 10**exponent)
    number = f"{whole:,}" + (f".{fraction:0{exponent}d}" if exponent else "")
    symbol = _SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{code} {number}".strip()
    return f"{sign}{symbol}{number}"
