"""Shipments, pickups and carriers, without a database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from oms_api.domain.carriers import carrier_key, same_carrier, tracking_url
from oms_api.domain.errors import DomainError, InvalidTransition
from oms_api.domain.orders import OrderStatus
from oms_api.domain.pickups import (
    READY_AT_CLOCK_SKEW,
    READY_AT_HORIZON,
    PickupCommand,
    PickupStatus,
    check_ready_at,
)
from oms_api.domain.pickups import next_status as next_pickup_status
from oms_api.domain.shipments import (
    TRACKING_CLOCK_SKEW,
    Held,
    LineInfo,
    ReservationBook,
    ReservationMove,
    TrackingStatus,
    TrackingUpdate,
    check_label_ready,
    check_tracking_time,
    decide,
    delivery_time,
    latest_tracking,
    plan_allocation,
    plan_shipment,
    tracking_command,
)
from oms_api.domain.shipments import ShipmentCommand as C
from oms_api.domain.shipments import ShipmentStatus as S
from oms_api.domain.shipments import next_status as next_shipment_status

# The SPEC's table, written out apart from the implementation.
SHIPMENT_MOVES = {
    (S.PENDING, C.PICK): S.PICKING,
    (S.PENDING, C.CANCEL): S.CANCELLED,
    (S.PICKING, C.PACK): S.PACKED,
    (S.PICKING, C.CANCEL): S.CANCELLED,
    (S.PACKED, C.SHIP): S.SHIPPED,
    (S.PACKED, C.CANCEL): S.CANCELLED,
    (S.SHIPPED, C.DELIVER): S.DELIVERED,
}


@pytest.mark.parametrize(("status", "command"), list(itertools.product(S, C)))
def test_every_shipment_state_command_pair(status: S, command: C) -> None:
    expected = SHIPMENT_MOVES.get((status, command))
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            next_shipment_status(status, command)
        assert caught.value.extra["current_state"] == status.value
        assert command.value not in caught.value.extra["allowed_commands"]
    else:
        assert next_shipment_status(status, command) is expected


PICKUP_MOVES = {
    (PickupStatus.SCHEDULED, PickupCommand.COLLECT): PickupStatus.COLLECTED,
    (PickupStatus.SCHEDULED, PickupCommand.CANCEL): PickupStatus.CANCELLED,
}


@pytest.mark.parametrize(
    ("status", "command"), list(itertools.product(PickupStatus, PickupCommand))
)
def test_every_pickup_state_command_pair(status: PickupStatus, command: PickupCommand) -> None:
    expected = PICKUP_MOVES.get((status, command))
    if expected is None:
        with pytest.raises(InvalidTransition):
            next_pickup_status(status, command)
    else:
        assert next_pickup_status(status, command) is expected


LINES = {"l1": LineInfo("l1", "SHIRT", "p1"), "l2": LineInfo("l2", "MUG", "p2")}
A, B, C_ = "loc_a", "loc_b", "loc_c"


def test_a_shipment_takes_units_where_they_are_reserved() -> None:
    held = [Held("l1", A, "p1", 3, 0, 10), Held("l2", A, "p2", 1, 0, 10)]
    plan = plan_shipment(A, [("l1", 2), ("l2", 1)], LINES, held, {})
    assert plan.lines == [("l1", 2), ("l2", 1)]
    assert plan.moves == []


def test_a_shipment_elsewhere_moves_the_reservation_from_the_best_location() -> None:
    held = [
        Held("l1", A, "p1", 2, 0, 10),
        Held("l1", C_, "p1", 2, 1, 30),
        Held("l1", B, "p1", 1, 0, 20),
    ]
    plan = plan_shipment(B, [("l1", 3), ("l1", 1)], LINES, held, {"p1": 5})
    assert plan.lines == [("l1", 4)]  # one line asked twice: summed
    # one is here already; three move: two from A (priority 10), then one free at C.
    assert plan.moves == [
        ReservationMove("l1", "p1", "SHIRT", A, B, 2),
        ReservationMove("l1", "p1", "SHIRT", C_, B, 1),
    ]


def test_moving_needs_stock_at_the_new_location() -> None:
    held = [Held("l1", A, "p1", 3, 0, 10)]
    with pytest.raises(DomainError) as caught:
        plan_shipment(B, [("l1", 3)], LINES, held, {"p1": 2})
    assert caught.value.code == "insufficient_stock"
    assert caught.value.extra["lines"] == [{"sku": "SHIRT", "requested": 3, "available": 2}]


def test_more_than_reserved_and_free_is_refused() -> None:
    held = [Held("l1", A, "p1", 3, 2, 10)]  # two already in a shipment
    with pytest.raises(DomainError) as caught:
        plan_shipment(A, [("l1", 2)], LINES, held, {})
    assert caught.value.code == "exceeds_unfulfilled"
    assert caught.value.extra["lines"] == [{"line_id": "l1", "requested": 2, "unfulfilled": 1}]
    with pytest.raises(DomainError) as unknown:
        plan_shipment(A, [("nope", 1)], LINES, held, {})
    assert (unknown.value.code, unknown.value.kind) == ("unknown_line", "invalid")


def test_allocation_makes_one_shipment_per_location_best_first() -> None:
    held = [Held("l1", B, "p1", 2, 0, 20), Held("l1", A, "p1", 1, 0, 10),
            Held("l2", B, "p2", 1, 1, 20), Held("l2", A, "p2", 4, 1, 10)]  # fmt: skip
    plans = plan_allocation(held)
    assert [(p.location_id, p.lines) for p in plans] == [
        (A, [("l1", 1), ("l2", 3)]), (B, [("l1", 2)]),
    ]  # fmt: skip
    assert plan_allocation([Held("l1", A, "p1", 2, 2, 10)]) == []


def test_the_reservation_book_keeps_units_in_shipments_within_what_is_held() -> None:
    book = ReservationBook([Held("l1", A, "p1", 3, 0, 10)])
    book.move(ReservationMove("l1", "p1", "SHIRT", A, B, 1))
    book.hold("l1", B, 1)
    book.ship("l1", B, 1)
    book.hold("l1", A, 2)
    upserts, deletes = book.changes()
    assert upserts == [{"line_id": "l1", "location_id": A, "product_id": "p1", "quantity": 2,
                        "quantity_in_shipments": 2}]  # fmt: skip
    assert deletes == [("l1", B)]
    with pytest.raises(ValueError, match="shipping"):
        book.hold("l1", A, 1)


# One row per carrier the SPEC names: the spellings people use, and where they lead.
CARRIERS = [
    ("UPS", "1Z999AA10123456784", "https://www.ups.com/track?tracknum=1Z999AA10123456784"),
    ("ups", "1Z1", "https://www.ups.com/track?tracknum=1Z1"),
    ("FedEx", "449044304137821", "https://www.fedex.com/fedextrack/?trknbr=449044304137821"),
    ("Fed Ex", "1", "https://www.fedex.com/fedextrack/?trknbr=1"),
    ("USPS", "9400100000000000000000",
     "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400100000000000000000"),
    ("DHL Express", "1234567890",
     "https://www.dhl.com/global-en/home/tracking.html?tracking-id=1234567890"),
    ("dhl-express", "1", "https://www.dhl.com/global-en/home/tracking.html?tracking-id=1"),
    ("DHL Paket", "00340434161094042557",
     "https://www.dhl.de/de/privatkunden/pakete-empfangen/verfolgen.html?piececode=00340434161094042557"),
    ("Royal Mail", "AB123456789GB",
     "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB"),
    ("PostNL", "3SABCD1234567", "https://jouw.postnl.nl/track-and-trace/3SABCD1234567"),
    ("Canada Post", "1234567890123456",
     "https://www.canadapost-postescanada.ca/track-reperage/en#/search?searchFor=1234567890123456"),
    ("Australia Post", "ABC123", "https://auspost.com.au/mypost/track/details/ABC123"),
    ("La Poste", "6A12345678901", "https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901"),
    ("Colissimo", "6A1", "https://www.laposte.fr/outils/suivre-vos-envois?code=6A1"),
    ("UPS", "A B/C", "https://www.ups.com/track?tracknum=A%20B%2FC"),  # the number is escaped
]  # fmt: skip


@pytest.mark.parametrize(("carrier", "number", "url"), CARRIERS)
def test_well_known_carriers_have_tracking_urls(carrier: str, number: str, url: str) -> None:
    assert tracking_url(carrier, number) == url


def test_other_carriers_have_none() -> None:
    assert tracking_url("Bob's Couriers", "123") is None
    assert tracking_url("UPS", None) is None
    assert same_carrier("dhl express", "DHL-Express")
    assert not same_carrier("DHL Express", "DHL Paket")
    assert carrier_key("Bob's Couriers") == carrier_key("bobs couriers")


@pytest.mark.parametrize("order", list(OrderStatus))
def test_shipping_needs_a_fulfillable_order_then_a_carrier_and_a_number(
    order: OrderStatus,
) -> None:
    if order in (OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_SHIPPED):
        assert decide(S.PACKED, C.SHIP, order_status=order, carrier="UPS",
                      tracking_number="1Z") is S.SHIPPED  # fmt: skip
        for carrier, number in (("UPS", None), (None, "1Z"), ("", "1Z")):
            with pytest.raises(DomainError) as missing:
                decide(S.PACKED, C.SHIP, order_status=order, carrier=carrier,
                       tracking_number=number)  # fmt: skip
            assert (missing.value.code, missing.value.kind) == ("tracking_required", "invalid")
        return
    with pytest.raises(DomainError) as refused:
        decide(S.PACKED, C.SHIP, order_status=order, carrier="UPS", tracking_number="1Z")
    assert (refused.value.code, refused.value.kind) == ("order_not_fulfillable", "conflict")
    assert refused.value.extra["current_state"] == order.value


def test_the_table_answers_before_the_facts() -> None:
    with pytest.raises(InvalidTransition):  # not packed: refused as such, whatever the order
        decide(S.PICKING, C.SHIP, order_status=OrderStatus.ON_HOLD)
    assert decide(S.PENDING, C.CANCEL) is S.CANCELLED  # only shipping asks for facts
    assert decide(S.SHIPPED, C.DELIVER) is S.DELIVERED
    with pytest.raises(ValueError, match="order's status"):
        decide(S.PACKED, C.SHIP, carrier="UPS", tracking_number="1Z")


@pytest.mark.parametrize(("status", "update"), list(itertools.product(S, TrackingStatus)))
def test_what_a_carriers_update_asks_of_the_machine(status: S, update: TrackingStatus) -> None:
    if status is S.CANCELLED:
        with pytest.raises(DomainError) as refused:
            tracking_command(status, update)
        assert (refused.value.code, refused.value.kind) == ("shipment_cancelled", "conflict")
        return
    delivers = update is TrackingStatus.DELIVERED and status is not S.DELIVERED
    assert tracking_command(status, update) is (C.DELIVER if delivers else None)


NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
CREATED = NOW - timedelta(days=2)
SHIPPED = NOW - timedelta(days=1)
HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)


def test_the_clock_skew_a_carrier_is_allowed_is_an_hour() -> None:
    assert TRACKING_CLOCK_SKEW == HOUR


@pytest.mark.parametrize(
    ("update", "occurred_at", "shipped_at", "refused"),
    [
        # the future: up to the skew ahead of our clock is a clock's difference, not more
        (TrackingStatus.IN_TRANSIT, NOW + HOUR, SHIPPED, None),
        (TrackingStatus.IN_TRANSIT, NOW + HOUR + MINUTE, SHIPPED, "tracking_in_future"),
        (TrackingStatus.DELIVERED, NOW + HOUR + MINUTE, SHIPPED, "tracking_in_future"),
        (TrackingStatus.IN_TRANSIT, datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), None,
         "tracking_in_future"),
        # before the parcel existed: not its update
        (TrackingStatus.IN_TRANSIT, CREATED - HOUR, None, None),
        (TrackingStatus.IN_TRANSIT, CREATED - HOUR - MINUTE, None, "tracking_before_shipment"),
        (TrackingStatus.EXCEPTION, datetime(1, 1, 1, tzinfo=UTC), SHIPPED,
         "tracking_before_shipment"),
        # on its way before /ship was called: the carrier may scan first
        (TrackingStatus.IN_TRANSIT, SHIPPED - 5 * HOUR, SHIPPED, None),
        # delivered before it shipped: refused beyond the skew
        (TrackingStatus.DELIVERED, SHIPPED - HOUR, SHIPPED, None),
        (TrackingStatus.DELIVERED, SHIPPED - HOUR - MINUTE, SHIPPED, "delivered_before_shipped"),
        (TrackingStatus.DELIVERED, SHIPPED + HOUR, SHIPPED, None),
        # not shipped yet: the machine answers (409), not the clock
        (TrackingStatus.DELIVERED, CREATED, None, None),
    ],
)  # fmt: skip
def test_a_carriers_time_is_believed_within_the_clock_skew(
    update: TrackingStatus, occurred_at: datetime, shipped_at: datetime | None,
    refused: str | None,
) -> None:  # fmt: skip
    def check() -> None:
        check_tracking_time(update, occurred_at, now=NOW, created_at=CREATED, shipped_at=shipped_at)

    if refused is None:
        check()
        return
    with pytest.raises(DomainError) as caught:
        check()
    assert (caught.value.code, caught.value.kind) == (refused, "invalid")
    assert caught.value.extra["errors"][0]["loc"] == ["body", "occurred_at"]


def _u(ident: str, status: TrackingStatus, hours: int) -> TrackingUpdate:
    return TrackingUpdate(ident, status, SHIPPED + timedelta(hours=hours))


IN_TRANSIT, OUT, ATTEMPTED, DELIVERED = (
    TrackingStatus.IN_TRANSIT, TrackingStatus.OUT_FOR_DELIVERY,
    TrackingStatus.DELIVERY_ATTEMPTED, TrackingStatus.DELIVERED,
)  # fmt: skip


def test_the_latest_update_is_the_newest_whatever_order_they_came_in() -> None:
    updates = [_u("trk_3", OUT, 5), _u("trk_1", IN_TRANSIT, 1), _u("trk_2", ATTEMPTED, 3)]
    assert latest_tracking(S.SHIPPED, None, updates) == updates[0]
    late = _u("trk_9", IN_TRANSIT, 2)  # recorded last, happened earlier: history only
    assert latest_tracking(S.SHIPPED, None, [*updates, late]) == updates[0]
    tie = _u("trk_4", ATTEMPTED, 5)  # the same time: the later recorded
    assert latest_tracking(S.SHIPPED, None, [*updates, tie]) == tie
    assert latest_tracking(S.SHIPPED, None, []) is None
    assert latest_tracking(S.PACKED, None, [updates[1]]) == updates[1]


def test_a_delivered_shipment_never_shows_itself_on_its_way_again() -> None:
    delivered = _u("trk_2", DELIVERED, 4)
    after = _u("trk_3", IN_TRANSIT, 6)  # a carrier's stray scan after the delivery
    before = _u("trk_1", OUT, 2)
    assert latest_tracking(S.DELIVERED, NOW, [before, delivered, after]) == delivered
    # a delivery reported late, timed before the last scan: the delivery still shows
    early = _u("trk_4", DELIVERED, 1)
    assert latest_tracking(S.DELIVERED, NOW, [before, early, after]) == early
    # two deliveries: the newer
    assert latest_tracking(S.DELIVERED, NOW, [early, delivered, after]) == delivered


def test_a_shipment_delivered_by_hand_shows_what_came_before_its_delivery() -> None:
    delivered_at = SHIPPED + timedelta(hours=3)
    before = _u("trk_1", OUT, 2)
    after = _u("trk_2", IN_TRANSIT, 5)
    assert latest_tracking(S.DELIVERED, delivered_at, [before, after]) == before
    assert latest_tracking(S.DELIVERED, delivered_at, [after]) is None
    at_once = _u("trk_3", ATTEMPTED, 3)
    assert latest_tracking(S.DELIVERED, delivered_at, [before, after, at_once]) == at_once


@pytest.mark.parametrize("status", list(S))
def test_a_label_once_packed_with_a_carrier_and_a_number(status: S) -> None:
    if status in (S.PACKED, S.SHIPPED, S.DELIVERED):
        check_label_ready(status, "UPS", "1Z")
        for carrier, number in (("UPS", None), (None, "1Z")):
            with pytest.raises(DomainError, match="carrier and the tracking number") as early:
                check_label_ready(status, carrier, number)
            assert early.value.code == "label_not_ready"
        return
    with pytest.raises(DomainError, match="once it is packed") as early:
        check_label_ready(status, "UPS", "1Z")
    assert (early.value.code, early.value.extra["current_state"]) == (
        "label_not_ready", status.value,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("occurred_at", "shipped_at", "delivered_at"),
    [
        (NOW - timedelta(hours=12), SHIPPED, NOW - timedelta(hours=12)),  # a late report: its time
        (SHIPPED + timedelta(seconds=1), SHIPPED, SHIPPED + timedelta(seconds=1)),
        (SHIPPED, SHIPPED, SHIPPED),
        (NOW, SHIPPED, NOW),
        (NOW + timedelta(minutes=30), SHIPPED, NOW),  # a clock ahead: not after now
        (NOW + TRACKING_CLOCK_SKEW, SHIPPED, NOW),
        (SHIPPED - timedelta(minutes=30), SHIPPED, SHIPPED),  # a clock behind: not before shipped
        (SHIPPED - TRACKING_CLOCK_SKEW, SHIPPED, SHIPPED),
        (NOW - timedelta(hours=3), None, NOW - timedelta(hours=3)),
        (NOW + timedelta(minutes=5), None, NOW),
    ],
)
def test_a_carriers_delivery_is_dated_by_the_carrier_within_what_can_be_true(
    occurred_at: datetime, shipped_at: datetime | None, delivered_at: datetime
) -> None:
    assert delivery_time(occurred_at, now=NOW, shipped_at=shipped_at) == delivered_at


@pytest.mark.parametrize(
    ("ready_at", "refused"),
    [
        (NOW + timedelta(days=14), False),
        (NOW + timedelta(hours=2), False),
        (NOW, False),
        (NOW - timedelta(minutes=5), False),  # a clock a little slow
        (NOW - READY_AT_CLOCK_SKEW, False),
        (NOW - READY_AT_CLOCK_SKEW - timedelta(microseconds=1), True),
        (NOW - timedelta(hours=1), True),
        (datetime(2020, 1, 1, tzinfo=UTC), True),
        (datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC), True),
    ],
)
def test_a_pickup_is_ready_now_or_later(ready_at: datetime, refused: bool) -> None:
    if not refused:
        check_ready_at(ready_at, now=NOW)
        return
    with pytest.raises(DomainError) as caught:
        check_ready_at(ready_at, now=NOW)
    assert (caught.value.code, caught.value.kind) == ("ready_at_in_past", "invalid")
    assert caught.value.extra["errors"][0]["loc"] == ["body", "ready_at"]


@pytest.mark.parametrize(
    ("ready_at", "refused"),
    [
        (NOW + READY_AT_HORIZON, False),
        (NOW + READY_AT_HORIZON + timedelta(microseconds=1), True),
        (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), True),
    ],
)
def test_a_pickup_is_booked_at_most_the_horizon_ahead(ready_at: datetime, refused: bool) -> None:
    """Found by an outside-in tester: a pickup for the year 9999 was booked, and held its
    parcels from every other pickup."""
    if not refused:
        check_ready_at(ready_at, now=NOW)
        return
    with pytest.raises(DomainError) as caught:
        check_ready_at(ready_at, now=NOW)
    assert (caught.value.code, caught.value.kind) == ("ready_at_too_far", "invalid")
    assert caught.value.extra["errors"][0]["loc"] == ["body", "ready_at"]
