"""Shipments: their state machine, and how the units a shipment asks for are found among
the order's reservations. Pure.

| state   | command → state                  |
|---------|----------------------------------|
| pending | pick → picking, cancel → cancelled |
| picking | pack → packed, cancel → cancelled  |
| packed  | ship → shipped, cancel → cancelled |
| shipped | deliver → delivered              |
| delivered, cancelled | (final)             |
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from oms_api.domain import events as E
from oms_api.domain.errors import DomainError
from oms_api.domain.limits import refuse_over
from oms_api.domain.machine import step
from oms_api.domain.orders import FULFILLABLE, OrderStatus


class ShipmentStatus(StrEnum):
    PENDING = "pending"
    PICKING = "picking"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class ShipmentCommand(StrEnum):
    PICK = "pick"
    PACK = "pack"
    SHIP = "ship"
    DELIVER = "deliver"
    CANCEL = "cancel"


S, C = ShipmentStatus, ShipmentCommand

TRANSITIONS: dict[ShipmentStatus, dict[ShipmentCommand, ShipmentStatus]] = {
    S.PENDING: {C.PICK: S.PICKING, C.CANCEL: S.CANCELLED},
    S.PICKING: {C.PACK: S.PACKED, C.CANCEL: S.CANCELLED},
    S.PACKED: {C.SHIP: S.SHIPPED, C.CANCEL: S.CANCELLED},
    S.SHIPPED: {C.DELIVER: S.DELIVERED},
    S.DELIVERED: {},
    S.CANCELLED: {},
}

EVENT_FOR_STATUS: dict[ShipmentStatus, str] = {
    S.PICKING: E.SHIPMENT_PICKING,
    S.PACKED: E.SHIPMENT_PACKED,
    S.SHIPPED: E.SHIPMENT_SHIPPED,
    S.DELIVERED: E.SHIPMENT_DELIVERED,
    S.CANCELLED: E.SHIPMENT_CANCELLED,
}

# Shipments whose units are still reserved and on their way into a parcel.
OPEN = frozenset({S.PENDING, S.PICKING, S.PACKED})
# Shipments whose units have left.
GONE = frozenset({S.SHIPPED, S.DELIVERED})


class TrackingStatus(StrEnum):
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERY_ATTEMPTED = "delivery_attempted"
    EXCEPTION = "exception"
    DELIVERED = "delivered"


def allowed_commands(status: ShipmentStatus) -> list[str]:
    return [c.value for c in TRANSITIONS[status]]


def next_status(status: ShipmentStatus, command: ShipmentCommand) -> ShipmentStatus:
    """The state `command` leads to from `status`, or InvalidTransition."""
    return step(
        TRANSITIONS, resource="shipment", status=status, command=command,
        allowed=allowed_commands(status),
    )  # fmt: skip


def decide(
    status: ShipmentStatus, command: ShipmentCommand, *, order_status: OrderStatus | None = None,
    carrier: str | None = None, tracking_number: str | None = None,
) -> ShipmentStatus:  # fmt: skip
    """The machine's answer with the facts it depends on (the door's `decide`): the table
    first, then shipping needs the order fulfillable (409 `order_not_fulfillable`) and a
    carrier and a tracking number, given now or earlier (422 `tracking_required`)."""
    target = next_status(status, command)
    if command is C.SHIP:
        if order_status is None:
            raise ValueError("shipping is decided with the order's status")
        check_fulfillable(order_status)
        if not carrier or not tracking_number:
            raise DomainError(
                "tracking_required",
                "Shipping needs a carrier and a tracking number (given now, or at /pack).",
                kind="invalid",
            )
    return target


@dataclass(frozen=True, slots=True)
class FulfillmentSettings:
    """`auto_allocate`: an order's shipments are created when it is confirmed (as
    `/allocate` would), and again for units a filled backorder reserves."""

    auto_allocate: bool = False

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> FulfillmentSettings:
        return cls(auto_allocate=bool((value or {}).get("auto_allocate", False)))

    def to_json(self) -> dict[str, Any]:
        return {"auto_allocate": self.auto_allocate}


def check_fulfillable(order_status: OrderStatus) -> None:
    """Only a confirmed or partially shipped order's units go into shipments and ship (409
    `order_not_fulfillable`, e.g. pending or on hold)."""
    if order_status not in FULFILLABLE:
        raise DomainError(
            "order_not_fulfillable",
            f"The order is {order_status}: only confirmed and partially shipped orders ship.",
            current_state=order_status.value,
        )


def tracking_command(status: ShipmentStatus, update: TrackingStatus) -> ShipmentCommand | None:
    """What a carrier's update asks of the shipment's machine: a cancelled shipment is not
    tracked (409 `shipment_cancelled`); `delivered` delivers a shipment not delivered yet
    (the machine refuses unless it has shipped); anything else, nothing."""
    if status is S.CANCELLED:
        raise DomainError("shipment_cancelled", "The shipment was cancelled: it is not tracked.")
    if update is TrackingStatus.DELIVERED and status is not S.DELIVERED:
        return C.DELIVER
    return None


# How far a carrier's clock may disagree with ours. A carrier's update is believed within
# it: not more than this after our now (a time further ahead has not happened yet, and
# would stay the latest update for ever), not more than this before the shipment existed,
# and a delivery not more than this before it shipped.
TRACKING_CLOCK_SKEW = timedelta(hours=1)


def check_tracking_time(
    update: TrackingStatus, occurred_at: datetime, *, now: datetime, created_at: datetime,
    shipped_at: datetime | None,
) -> None:  # fmt: skip
    """Refuse a carrier's update whose time cannot be true, whatever else it says (422):
    `tracking_in_future` more than TRACKING_CLOCK_SKEW after `now`;
    `tracking_before_shipment` more than that before the shipment was created;
    `delivered_before_shipped` a delivery more than that before it shipped (`shipped_at`,
    when it has). An earlier time than updates already recorded is fine: a late update
    is history (`latest_tracking` chooses what the shipment shows)."""
    loc: list[str | int] = ["body", "occurred_at"]
    if occurred_at > now + TRACKING_CLOCK_SKEW:
        raise DomainError(
            "tracking_in_future",
            f"occurred_at ({occurred_at.isoformat()}) is in the future: an update may be at "
            f"most {_span(TRACKING_CLOCK_SKEW)} ahead of the server's clock "
            f"({now.isoformat()}). Send the carrier's time with its offset.",
            kind="invalid", loc=loc,
        )  # fmt: skip
    if occurred_at < created_at - TRACKING_CLOCK_SKEW:
        raise DomainError(
            "tracking_before_shipment",
            f"occurred_at ({occurred_at.isoformat()}) is before the shipment was created "
            f"({created_at.isoformat()}): it cannot be this parcel's update.",
            kind="invalid", loc=loc,
        )  # fmt: skip
    if (
        update is TrackingStatus.DELIVERED
        and shipped_at is not None
        and occurred_at < shipped_at - TRACKING_CLOCK_SKEW
    ):
        raise DomainError(
            "delivered_before_shipped",
            f"A delivery at {occurred_at.isoformat()} is before the shipment shipped "
            f"({shipped_at.isoformat()}).",
            kind="invalid", loc=loc,
        )  # fmt: skip


def delivery_time(occurred_at: datetime, *, now: datetime, shipped_at: datetime | None) -> datetime:
    """When a carrier's `delivered` update dates the shipment's delivery (`delivered_at`):
    the carrier's `occurred_at`, however late the update arrives, held within what can
    be true of it — never after `now` (a carrier's clock a little ahead; further ahead is
    refused by `check_tracking_time`) and never before the shipment shipped (a clock a
    little behind), so a lead time is never negative. A delivery recorded by hand
    (`/deliver`) is dated by the server's clock."""
    at = min(occurred_at, now)
    if shipped_at is not None:
        at = max(at, shipped_at)
    return at


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds()) // 60
    return f"{minutes // 60} hour(s)" if minutes % 60 == 0 else f"{minutes} minute(s)"


@dataclass(frozen=True, slots=True)
class TrackingUpdate:
    """A recorded carrier update as `latest_tracking` weighs it; `id` orders updates of
    the same time (ids are time-ordered: the later recorded)."""

    id: str
    status: TrackingStatus
    occurred_at: datetime


def latest_tracking(
    status: ShipmentStatus, delivered_at: datetime | None, updates: Iterable[TrackingUpdate]
) -> TrackingUpdate | None:
    """The update the shipment shows as `latest_tracking`: the newest by `occurred_at` — a
    late update of an earlier time never replaces it — that agrees with the shipment's
    state. A delivered shipment never shows itself on its way again: it shows its newest
    `delivered` update, or, delivered by `/deliver`, its newest update from no later than
    `delivered_at`; updates after those stay in the history only."""
    ordered = sorted(updates, key=lambda u: (u.occurred_at, u.id), reverse=True)
    if status is S.DELIVERED:
        delivered = [u for u in ordered if u.status is TrackingStatus.DELIVERED]
        if delivered:
            return delivered[0]
        if delivered_at is not None:
            ordered = [u for u in ordered if u.occurred_at <= delivered_at]
    return ordered[0] if ordered else None


# Shipments whose label can be printed (with a carrier and a tracking number).
LABELLED = frozenset({S.PACKED, S.SHIPPED, S.DELIVERED})


def check_label_ready(
    status: ShipmentStatus, carrier: str | None, tracking_number: str | None
) -> None:
    """A label is printed once the shipment is packed, with a carrier and a tracking number
    (409 `label_not_ready` before)."""
    if status not in LABELLED:
        raise DomainError(
            "label_not_ready",
            f"The shipment is {status.value}: its label is printed once it is packed.",
            current_state=status.value,
        )
    if not carrier or not tracking_number:
        raise DomainError(
            "label_not_ready",
            "The label needs the carrier and the tracking number: give them with /pack.",
            current_state=status.value,
        )


@dataclass(frozen=True, slots=True)
class Held:
    """Units of a line reserved at a location; `in_shipments` of them already in open
    shipments from there."""

    line_id: str
    location_id: str
    product_id: str
    quantity: int
    in_shipments: int
    priority: int  # the location's: lower is used first

    @property
    def free(self) -> int:
        return self.quantity - self.in_shipments


@dataclass(frozen=True, slots=True)
class LineInfo:
    id: str
    sku: str
    product_id: str


@dataclass(frozen=True, slots=True)
class ReservationMove:
    """`quantity` units of a line's reservation move from one location to another."""

    line_id: str
    product_id: str
    sku: str
    from_location: str
    to_location: str
    quantity: int


@dataclass(slots=True)
class ShipmentPlan:
    location_id: str
    lines: list[tuple[str, int]]  # (line_id, quantity), in the order asked
    moves: list[ReservationMove] = field(default_factory=list)


def _merged(requested: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    total: dict[str, int] = {}
    for line_id, quantity in requested:
        total[line_id] = total.get(line_id, 0) + quantity
    return list(total.items())


def plan_shipment(
    location_id: str,
    requested: Sequence[tuple[str, int]],
    lines: Mapping[str, LineInfo],
    held: Sequence[Held],
    available_here: Mapping[str, int],
) -> ShipmentPlan:
    """Units for one shipment from `location_id`: each line's free reservation there first;
    what is missing moves from the line's free reservations elsewhere (best priority
    first), reserved here out of what is available here (`available_here`, per product).

    Refusals: a line not in the order (422 `unknown_line`); more than the line has reserved
    and not yet in a shipment (409 `exceeds_unfulfilled`); a move for which this location
    lacks stock (409 `insufficient_stock`)."""
    wanted = _merged(requested)
    unknown = [line_id for line_id, _ in wanted if line_id not in lines]
    if unknown:
        raise DomainError(
            "unknown_line", f"Not a line of this order: {', '.join(unknown)}.", kind="invalid",
            errors=[{"loc": ["body", "lines"], "msg": f"unknown line {u}"} for u in unknown],
        )  # fmt: skip
    by_line: dict[str, list[Held]] = defaultdict(list)
    for h in held:
        by_line[h.line_id].append(h)
    refuse_over(
        "exceeds_unfulfilled", "More than is reserved and not yet in a shipment for",
        dict(wanted), {line_id: sum(h.free for h in by_line[line_id]) for line_id, _ in wanted},
        limit_as="unfulfilled",
    )  # fmt: skip
    plan = ShipmentPlan(location_id, wanted)
    moved_in: dict[str, int] = defaultdict(int)
    for line_id, quantity in wanted:
        here = sum(h.free for h in by_line[line_id] if h.location_id == location_id)
        missing = quantity - here
        others = sorted(
            (h for h in by_line[line_id] if h.location_id != location_id and h.free > 0),
            key=lambda h: (h.priority, h.location_id),
        )
        for h in others:
            if missing <= 0:
                break
            take = min(h.free, missing)
            line = lines[line_id]
            plan.moves.append(
                ReservationMove(
                    line_id, line.product_id, line.sku, h.location_id, location_id, take
                )
            )
            moved_in[line.product_id] += take
            missing -= take
    sku = {m.product_id: m.sku for m in plan.moves}
    refuse_over(
        "insufficient_stock", "Not enough stock at this location to move the reservation of",
        {sku[product_id]: units for product_id, units in sorted(moved_in.items())},
        {sku[product_id]: available_here.get(product_id, 0) for product_id in moved_in},
        key="sku", limit_as="available",
    )  # fmt: skip
    return plan


def plan_allocation(held: Sequence[Held]) -> list[ShipmentPlan]:
    """The shipments `allocate` creates: one per location holding free reserved units, best
    priority first, each with every such unit there (an order reserved in one location
    ships from one)."""
    per_location: dict[str, list[tuple[str, int]]] = {}
    rank: dict[str, tuple[int, str]] = {}
    for h in held:
        if h.free > 0:
            per_location.setdefault(h.location_id, []).append((h.line_id, h.free))
            rank[h.location_id] = (h.priority, h.location_id)
    return [
        ShipmentPlan(loc, per_location[loc]) for loc in sorted(per_location, key=rank.__getitem__)
    ]


@dataclass(slots=True)
class _Row:
    product_id: str
    quantity: int
    in_shipments: int


class ReservationBook:
    """An order's reservations, (line, location) → units held and units of them in open
    shipments, changed by shipments; `changes` says which rows to write and to delete.
    The one place that keeps a row's `0 <= in_shipments <= quantity`."""

    def __init__(self, held: Iterable[Held]) -> None:
        self._rows = {
            (h.line_id, h.location_id): _Row(h.product_id, h.quantity, h.in_shipments) for h in held
        }
        self._touched: set[tuple[str, str]] = set()

    def _change(self, key: tuple[str, str], product_id: str, quantity: int, held: int) -> None:
        row = self._rows.setdefault(key, _Row(product_id, 0, 0))
        row.quantity += quantity
        row.in_shipments += held
        if not 0 <= row.in_shipments <= row.quantity:
            raise ValueError(f"{key} would hold {row.quantity} with {row.in_shipments} shipping")
        self._touched.add(key)

    def move(self, m: ReservationMove) -> None:
        self._change((m.line_id, m.from_location), m.product_id, -m.quantity, 0)
        self._change((m.line_id, m.to_location), m.product_id, m.quantity, 0)

    def reserve(self, line_id: str, location_id: str, product_id: str, quantity: int) -> None:
        """`quantity` more units of the line are reserved at the location (a backorder
        filled)."""
        self._change((line_id, location_id), product_id, quantity, 0)

    def hold(self, line_id: str, location_id: str, quantity: int) -> None:
        """`quantity` units go into (negative: come back from) an open shipment."""
        key = (line_id, location_id)
        self._change(key, self._rows[key].product_id, 0, quantity)

    def ship(self, line_id: str, location_id: str, quantity: int) -> None:
        """`quantity` units in a shipment leave: reserved no more."""
        key = (line_id, location_id)
        self._change(key, self._rows[key].product_id, -quantity, -quantity)

    def product_of(self, line_id: str, location_id: str) -> str:
        return self._rows[(line_id, location_id)].product_id

    def changes(self) -> tuple[list[dict[str, object]], list[tuple[str, str]]]:
        """(rows to write as they now are, keys of rows now holding nothing)."""
        upserts: list[dict[str, object]] = []
        deletes: list[tuple[str, str]] = []
        for key in sorted(self._touched):
            row = self._rows[key]
            if row.quantity == 0:
                deletes.append(key)
            else:
                upserts.append({"line_id": key[0], "location_id": key[1],
                                "product_id": row.product_id, "quantity": row.quantity,
                                "quantity_in_shipments": row.in_shipments})  # fmt: skip
        return upserts, deletes
