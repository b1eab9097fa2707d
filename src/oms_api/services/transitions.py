"""The one door through which the five machines' states change: orders, shipments,
returns, pickups and replenishment requests.

`transition` asks the pure machine (`domain/`) where a command leads from the state the
caller read, then writes it with a conditional UPDATE — `… SET status = $to … WHERE id =
$id AND status = $from` — so a row that moved meanwhile is refused (409
`invalid_transition`) rather than overwritten, whatever lock the caller holds. It answers
the event types the move announces; the caller records them through the one event path
(`record_events`) with the documents as they are after the whole command.

No other code writes these `status` columns (tests/test_one_door.py fails if one does);
creating a row with its first state is not a transition.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

import asyncpg

from oms_api.domain import orders, pickups, replenishments, returns, shipments
from oms_api.domain.errors import DomainError

S = TypeVar("S", bound=StrEnum)
C = TypeVar("C", bound=StrEnum)


@dataclass(frozen=True, slots=True)
class Machine(Generic[S, C]):
    """A state machine's table and rules. `decide(state, command, **facts)` is the pure
    machine's answer; `events(state, command, target)` what the move announces; `also`
    the further assignments of the move's UPDATE (`$3` is the target, `$4`… the caller's
    `params`, in order)."""

    resource: str
    table: str
    status: type[S]
    decide: Callable[..., S]
    events: Callable[[S, C, S], list[str]]
    also: str = ""
    update_sql: str = field(init=False)  # the one UPDATE, built once
    arity: int = field(init=False)  # how many of the caller's params it takes

    def __post_init__(self) -> None:
        tail = f",\n    {self.also.strip()}" if self.also.strip() else ""
        sql = (
            f"UPDATE {self.table} SET status = $3::text, updated_at = now(), "
            f"version = version + 1{tail}\nWHERE id = $1 AND status = $2::text\nRETURNING id"
        )
        object.__setattr__(self, "update_sql", sql)
        numbers = [int(n) for n in re.findall(r"\$(\d+)", self.also)]
        object.__setattr__(self, "arity", max(numbers, default=3) - 3)


ORDER: Machine[orders.OrderStatus, orders.OrderCommand] = Machine(
    resource="order",
    table="orders",
    status=orders.OrderStatus,
    decide=orders.next_status,
    events=orders.transition_events,
    # $4 the reason (a hold's or a cancellation's), $5 whether the command cancels the rest,
    # $6 when it was delivered (its last shipment's delivery; NULL: now). Each time records
    # the first arrival.
    also="""
    hold_reason = CASE WHEN $3 = 'on_hold' THEN $4::text
                       WHEN $3 = 'cancelled' THEN hold_reason END,
    cancel_reason = CASE WHEN $5::boolean THEN $4 ELSE cancel_reason END,
    cancelled_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE cancelled_at END,
    confirmed_at = CASE WHEN $3 = 'confirmed' THEN coalesce(confirmed_at, now())
                        ELSE confirmed_at END,
    shipped_at = CASE WHEN $3 IN ('shipped', 'delivered') THEN coalesce(shipped_at, now())
                      ELSE shipped_at END,
    delivered_at = CASE WHEN $3 = 'delivered' THEN coalesce(delivered_at, $6::timestamptz, now())
                        ELSE delivered_at END
    """,
)

SHIPMENT: Machine[shipments.ShipmentStatus, shipments.ShipmentCommand] = Machine(
    resource="shipment",
    table="shipments",
    status=shipments.ShipmentStatus,
    decide=shipments.decide,
    events=lambda _s, _c, target: [shipments.EVENT_FOR_STATUS[target]],
    # $4 the cancel reason; the parcel: $5 carrier, $6 its key, $7 service, $8 tracking
    # number, $9 tracking url, $10 weight (each NULL: unchanged); $11 when it was delivered
    # (a carrier's time, `domain.shipments.delivery_time`; NULL: now).
    also="""
    picking_at = CASE WHEN $3 = 'picking' THEN now() ELSE picking_at END,
    packed_at = CASE WHEN $3 = 'packed' THEN now() ELSE packed_at END,
    shipped_at = CASE WHEN $3 = 'shipped' THEN now() ELSE shipped_at END,
    delivered_at = CASE WHEN $3 = 'delivered' THEN coalesce($11::timestamptz, now())
                        ELSE delivered_at END,
    cancelled_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE cancelled_at END,
    cancel_reason = CASE WHEN $3 = 'cancelled' THEN $4::text ELSE cancel_reason END,
    carrier = coalesce($5, carrier), carrier_key = coalesce($6, carrier_key),
    service = coalesce($7, service), tracking_number = coalesce($8, tracking_number),
    tracking_url = CASE WHEN $5 IS NULL AND $8 IS NULL THEN tracking_url ELSE $9 END,
    weight_grams = coalesce($10, weight_grams)
    """,
)

RETURN: Machine[returns.ReturnStatus, returns.ReturnCommand] = Machine(
    resource="return",
    table="returns",
    status=returns.ReturnStatus,
    decide=returns.next_status,
    events=lambda _s, command, _t: [returns.EVENT_FOR_COMMAND[command]],
    # $4 the reason of a rejection or a cancellation.
    also="""
    approved_at = CASE WHEN $3 = 'approved' THEN coalesce(approved_at, now()) ELSE approved_at END,
    received_at = CASE WHEN $3 = 'received' THEN now() ELSE received_at END,
    completed_at = CASE WHEN $3 = 'completed' THEN now() ELSE completed_at END,
    rejected_at = CASE WHEN $3 = 'rejected' THEN now() ELSE rejected_at END,
    cancelled_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE cancelled_at END,
    reject_reason = CASE WHEN $3 = 'rejected' THEN $4::text ELSE reject_reason END,
    cancel_reason = CASE WHEN $3 = 'cancelled' THEN $4::text ELSE cancel_reason END
    """,
)

PICKUP: Machine[pickups.PickupStatus, pickups.PickupCommand] = Machine(
    resource="pickup",
    table="pickups",
    status=pickups.PickupStatus,
    decide=pickups.next_status,
    events=lambda _s, _c, target: [pickups.EVENT_FOR_STATUS[target]],
    also="""
    collected_at = CASE WHEN $3 = 'collected' THEN now() ELSE collected_at END,
    cancelled_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE cancelled_at END
    """,
)

REPLENISHMENT: Machine[replenishments.ReplenishmentStatus, replenishments.ReplenishmentCommand] = (
    Machine(
        resource="replenishment",
        table="replenishments",
        status=replenishments.ReplenishmentStatus,
        decide=replenishments.next_status,
        events=lambda _s, _c, target: [replenishments.EVENT_FOR_STATUS[target]],
        # $4 where it was received and $5 how many; $6 the reason of a cancellation.
        also="""
    location_id = CASE WHEN $3 = 'received' THEN $4::text ELSE location_id END,
    quantity_received = CASE WHEN $3 = 'received' THEN $5::bigint ELSE quantity_received END,
    received_at = CASE WHEN $3 = 'received' THEN now() ELSE received_at END,
    cancelled_at = CASE WHEN $3 = 'cancelled' THEN now() ELSE cancelled_at END,
    cancel_reason = CASE WHEN $3 = 'cancelled' THEN $6::text ELSE cancel_reason END
    """,
    )
)

MACHINES: tuple[Machine[Any, Any], ...] = (ORDER, SHIPMENT, RETURN, PICKUP, REPLENISHMENT)


@dataclass(frozen=True, slots=True)
class Moved(Generic[S]):
    source: S
    target: S
    events: list[str]  # the event types the move announces, in order


async def transition(
    conn: asyncpg.Connection, machine: Machine[S, C], row_id: str, current: S, command: C,
    params: Sequence[Any] = (), **facts: Any,
) -> Moved[S]:  # fmt: skip
    """Move the row `row_id`, read in state `current`, by `command`: the machine's target
    (`facts` are what its decision needs, e.g. `all_in` for a return's receipt), written
    only if the row is still `current`; else 409 as the machine refuses (or
    `invalid_transition` naming the state it moved to)."""
    target = machine.decide(current, command, **facts)
    moved = await conn.fetchval(
        machine.update_sql, row_id, current.value, target.value, *params,
        *(None,) * (machine.arity - len(params)),
    )  # fmt: skip
    if moved is None:
        raise await _moved_meanwhile(conn, machine, row_id, current, command, facts)
    return Moved(current, target, machine.events(current, command, target))


async def _moved_meanwhile(
    conn: asyncpg.Connection, machine: Machine[S, C], row_id: str, current: S, command: C,
    facts: dict[str, Any],
) -> DomainError:  # fmt: skip
    now = await conn.fetchval(f"SELECT status FROM {machine.table} WHERE id = $1", row_id)
    if now is not None and now != current.value:
        machine.decide(machine.status(now), command, **facts)  # refuses as the machine does
    return DomainError(
        "invalid_transition",
        f"The {machine.resource} changed meanwhile (it was {current.value}, now "
        f"{now if now is not None else 'gone'}); read it again.",
        current_state=now,
    )
