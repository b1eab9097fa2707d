"""The order state machine, every (state, command) pair; payments; allocation; risk."""

from __future__ import annotations

import itertools

import pytest

from oms_api.domain.errors import DomainError, InvalidTransition
from oms_api.domain.inventory import Pick, StockAt, allocate
from oms_api.domain.orders import (
    OrderCommand as C,
)
from oms_api.domain.orders import (
    OrderStatus as S,
)
from oms_api.domain.orders import (
    after_payment,
    allowed_commands,
    next_status,
    transition_events,
)
from oms_api.domain.payments import (
    PaymentKind as K,
)
from oms_api.domain.payments import (
    PaymentStatus as P,
)
from oms_api.domain.payments import (
    PaymentTotals,
    apply_payment,
    is_settled,
    payment_in_force,
    payment_status,
)
from oms_api.domain.risk import RiskInput, RiskSettings, assess

# The SPEC's table, written out independently of the implementation.
EXPECTED: dict[tuple[S, C], S | str] = {
    (S.PENDING, C.CONFIRM): S.CONFIRMED,
    (S.PENDING, C.HOLD): S.ON_HOLD,
    (S.PENDING, C.CANCEL): S.CANCELLED,
    (S.PENDING, C.EXPIRE): S.CANCELLED,
    (S.ON_HOLD, C.RELEASE): "pending or confirmed",
    (S.ON_HOLD, C.CANCEL): S.CANCELLED,
    (S.CONFIRMED, C.SHIP_PART): S.PARTIALLY_SHIPPED,
    (S.CONFIRMED, C.SHIP_ALL): S.SHIPPED,
    (S.CONFIRMED, C.HOLD): S.ON_HOLD,
    (S.CONFIRMED, C.CANCEL): S.CANCELLED,
    (S.PARTIALLY_SHIPPED, C.SHIP_PART): S.PARTIALLY_SHIPPED,
    (S.PARTIALLY_SHIPPED, C.SHIP_ALL): S.SHIPPED,
    (S.PARTIALLY_SHIPPED, C.CANCEL): S.SHIPPED,  # the rest is cancelled: all left has shipped
    (S.SHIPPED, C.DELIVER): S.DELIVERED,
}


@pytest.mark.parametrize(("status", "command"), list(itertools.product(S, C)))
def test_every_state_command_pair(status: S, command: C) -> None:
    expected = EXPECTED.get((status, command))
    if expected is None:
        with pytest.raises(InvalidTransition) as caught:
            next_status(status, command, ready_to_confirm=True)
        assert caught.value.code == "invalid_transition"
        assert caught.value.extra["current_state"] == status.value
        assert caught.value.extra["allowed_commands"] == allowed_commands(status)
    elif expected == "pending or confirmed":
        assert next_status(status, command, ready_to_confirm=True) is S.CONFIRMED
        assert next_status(status, command, ready_to_confirm=False) is S.PENDING
    else:
        assert next_status(status, command, ready_to_confirm=False) is expected
        assert next_status(status, command, ready_to_confirm=True) is expected


def test_allowed_commands_name_only_client_commands() -> None:
    assert allowed_commands(S.PENDING) == ["hold", "cancel"]
    assert allowed_commands(S.ON_HOLD) == ["release", "cancel"]
    assert allowed_commands(S.CONFIRMED) == ["hold", "cancel"]
    assert allowed_commands(S.PARTIALLY_SHIPPED) == ["cancel"]
    assert allowed_commands(S.SHIPPED) == []
    assert allowed_commands(S.CANCELLED) == []


def test_transition_events() -> None:
    assert transition_events(S.PENDING, C.HOLD, S.ON_HOLD) == ["order.on_hold"]
    assert transition_events(S.ON_HOLD, C.RELEASE, S.PENDING) == ["order.released"]
    assert transition_events(S.ON_HOLD, C.RELEASE, S.CONFIRMED) == [
        "order.released",
        "order.confirmed",
    ]
    assert transition_events(S.PENDING, C.EXPIRE, S.CANCELLED) == ["order.cancelled"]
    assert transition_events(S.PENDING, C.CONFIRM, S.CONFIRMED) == ["order.confirmed"]


# --- payments ---------------------------------------------------------------------------


def _run(*steps: tuple[K, int], total: int = 1000) -> PaymentTotals:
    totals = PaymentTotals()
    for kind, amount in steps:
        totals = apply_payment(totals, kind, amount, total)
    return totals


@pytest.mark.parametrize(
    ("steps", "status"),
    [
        ((), P.UNPAID),
        (((K.AUTHORIZATION, 1000),), P.AUTHORIZED),
        (((K.AUTHORIZATION, 1000), (K.CAPTURE, 1000)), P.PAID),
        (((K.CAPTURE, 1000),), P.PAID),
        (((K.CAPTURE, 1000), (K.REFUND, 300)), P.PARTIALLY_REFUNDED),
        (((K.CAPTURE, 1000), (K.REFUND, 300), (K.REFUND, 700)), P.REFUNDED),
        (((K.AUTHORIZATION, 1000), (K.VOID, 1000)), P.VOIDED),
        (((K.AUTHORIZATION, 1000), (K.CAPTURE, 400), (K.VOID, 600)), P.PAID),
    ],
)
def test_payment_status_is_derived_from_transactions(
    steps: tuple[tuple[K, int], ...], status: P
) -> None:
    assert payment_status(_run(*steps)) is status


@pytest.mark.parametrize(
    ("steps", "code"),
    [
        (((K.REFUND, 1),), "refund_exceeds_captured"),
        (((K.CAPTURE, 500), (K.REFUND, 501)), "refund_exceeds_captured"),
        (((K.CAPTURE, 500), (K.REFUND, 300), (K.REFUND, 201)), "refund_exceeds_captured"),
        (((K.AUTHORIZATION, 500), (K.CAPTURE, 501)), "capture_exceeds_authorized"),
        (((K.CAPTURE, 1001),), "capture_exceeds_authorized"),
        (((K.VOID, 1),), "void_exceeds_authorized"),
        (((K.AUTHORIZATION, 500), (K.CAPTURE, 500), (K.VOID, 1)), "void_exceeds_authorized"),
        (((K.CAPTURE, 0),), "invalid_amount"),
    ],
)
def test_payments_beyond_limits_are_refused(steps: tuple[tuple[K, int], ...], code: str) -> None:
    with pytest.raises(DomainError) as caught:
        _run(*steps)
    assert caught.value.code == code


def test_settled() -> None:
    assert not is_settled(PaymentTotals(), 1000, "card")
    assert is_settled(PaymentTotals(authorized=1000), 1000, "card")
    assert not is_settled(PaymentTotals(authorized=999), 1000, "card")
    assert not is_settled(PaymentTotals(authorized=1000, voided=1000), 1000, "card")
    assert is_settled(PaymentTotals(captured=1000), 1000, None)
    assert is_settled(PaymentTotals(), 1000, "invoice")
    assert is_settled(PaymentTotals(), 1000, "cash_on_delivery")
    assert is_settled(PaymentTotals(), 0, None)


@pytest.mark.parametrize(
    ("steps", "in_force"),
    [
        ((), False),
        (((K.AUTHORIZATION, 400),), True),
        (((K.AUTHORIZATION, 400), (K.VOID, 400)), False),
        (((K.AUTHORIZATION, 400), (K.VOID, 100)), True),
        (((K.AUTHORIZATION, 400), (K.CAPTURE, 400)), True),
        (((K.CAPTURE, 300),), True),
        (((K.CAPTURE, 300), (K.REFUND, 300)), False),
        (((K.AUTHORIZATION, 400), (K.CAPTURE, 100), (K.VOID, 300), (K.REFUND, 100)), False),
    ],
)
def test_payment_in_force(steps: tuple[tuple[K, int], ...], in_force: bool) -> None:
    assert payment_in_force(_run(*steps)) is in_force


# --- allocation -------------------------------------------------------------------------


def test_one_location_that_has_everything_wins_by_priority() -> None:
    stock = [
        StockAt("p1", "loc_b", 2, 10), StockAt("p2", "loc_b", 2, 10),
        StockAt("p1", "loc_a", 1, 10), StockAt("p2", "loc_a", 1, 10),
    ]  # fmt: skip
    result = allocate({"p1": 3, "p2": 4}, stock)
    assert result.picks == [Pick("p1", "loc_a", 3), Pick("p2", "loc_a", 4)]
    assert result.short == {}


def test_a_lower_priority_location_wins_when_only_it_has_everything() -> None:
    stock = [
        StockAt("p1", "loc_a", 1, 10),
        StockAt("p1", "loc_b", 5, 10),
        StockAt("p2", "loc_b", 5, 1),
    ]
    result = allocate({"p1": 2, "p2": 1}, stock)
    assert {p.location_id for p in result.picks} == {"loc_b"}


def test_split_uses_few_locations_biggest_supplier_first() -> None:
    stock = [
        StockAt("p1", "loc_a", 1, 1),
        StockAt("p1", "loc_b", 2, 8), StockAt("p2", "loc_b", 2, 2),
        StockAt("p2", "loc_c", 3, 5),
    ]  # fmt: skip
    result = allocate({"p1": 8, "p2": 4}, stock)
    assert result.short == {}
    assert result.picks == [Pick("p1", "loc_b", 8), Pick("p2", "loc_b", 2), Pick("p2", "loc_c", 2)]


def test_shortfall_is_reported_per_product() -> None:
    stock = [StockAt("p1", "loc_a", 1, 2), StockAt("p1", "loc_b", 1, 3)]
    result = allocate({"p1": 9, "p2": 1}, stock)
    assert result.short == {"p1": 4, "p2": 1}
    assert sum(p.quantity for p in result.picks) == 5


def test_unavailable_rows_and_undemanded_products_are_ignored() -> None:
    stock = [
        StockAt("p1", "loc_a", 1, 0),
        StockAt("p9", "loc_a", 1, 50),
        StockAt("p1", "loc_b", 9, 1),
    ]
    assert allocate({"p1": 1}, stock).picks == [Pick("p1", "loc_b", 1)]


# --- risk -------------------------------------------------------------------------------


def _risk(**kw: object) -> RiskInput:
    values: dict[str, object] = {
        "total": 1000, "shipping_country": "DE", "billing_country": "DE", "recent_orders_from_email": 0,
        "recent_orders_to_address": 0, "first_order": False,
    }  # fmt: skip
    values.update(kw)
    return RiskInput(**values)  # type: ignore[arg-type]


def test_a_plain_order_passes() -> None:
    result = assess(_risk(), RiskSettings())
    assert (result.score, result.reasons, result.hold) == (0, [], False)


def test_each_rule_scores_and_rules_add_up_to_a_hold() -> None:
    settings = RiskSettings(max_order_total=500)
    big = assess(_risk(), settings)
    assert big.reasons == ["order_total_above_limit"]
    assert not big.hold
    mismatch = assess(_risk(billing_country="FR"), RiskSettings())
    assert mismatch.reasons == ["billing_shipping_country_mismatch"]
    assert not mismatch.hold
    both = assess(_risk(billing_country="FR"), settings)
    assert both.score == 80
    assert both.hold
    busy = assess(_risk(recent_orders_from_email=5), RiskSettings())
    assert busy.reasons == ["many_orders_from_email"]


def test_a_blocked_country_alone_always_holds() -> None:
    settings = RiskSettings.from_json({"blocked_countries": ["kp"], "hold_threshold": 95})
    result = assess(_risk(shipping_country="KP", billing_country="KP"), settings)
    assert result.hold
    assert result.reasons == ["shipping_country_blocked"]
    assert result.score >= 95


def test_settings_round_trip_through_json() -> None:
    settings = RiskSettings.from_json(
        {"blocked_countries": ["ru", "KP"], "weights": {"many_orders_from_email": 70}}
    )
    again = RiskSettings.from_json(settings.to_json())
    assert again == settings
    assert again.weights["order_total_above_limit"] == 50


# --- rate limits ------------------------------------------------------------------------


def test_token_buckets_allow_a_burst_then_the_rate() -> None:
    from oms_api.domain.rate_limit import TokenBuckets, retry_after_header

    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("k", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("k", 100.0)
    assert wait == pytest.approx(0.5)
    assert retry_after_header(wait) == "1"
    assert buckets.take("other", 100.0) == 0.0  # keys are independent
    assert buckets.take("k", 100.5) == 0.0  # half a second later: one token back
    assert buckets.take("k", 100.5) > 0
    assert buckets.take("k", 110.0) == 0.0  # refills, never above the burst
    assert [buckets.take("k", 110.0) for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("k", 110.0) > 0


@pytest.mark.parametrize(("status", "settled"), list(itertools.product(S, (False, True))))
def test_a_settled_payment_confirms_a_pending_order_only(status: S, settled: bool) -> None:
    expected = C.CONFIRM if (status, settled) == (S.PENDING, True) else None
    assert after_payment(status, settled=settled) is expected


def test_an_invalid_transition_reads_as_english() -> None:
    """It said "Cannot hold a order that is partially_shipped" (seen through curl)."""
    with pytest.raises(InvalidTransition) as caught:
        next_status(S.PARTIALLY_SHIPPED, C.HOLD, ready_to_confirm=True)
    assert caught.value.detail.startswith("Cannot hold an order that is partially_shipped;")
    shipment = InvalidTransition(resource="shipment", state="delivered", command="pick",
                                 allowed=[])  # fmt: skip
    assert shipment.detail == "Cannot pick a shipment that is delivered; allowed now: none."


def test_refusals_read_as_english() -> None:
    """'Cannot hold a order', 'Cannot record a authorization': found in the problems' detail
    while following the README's walkthrough and docs/orders.md."""
    with pytest.raises(InvalidTransition) as held:
        next_status(S.CANCELLED, C.HOLD)
    assert held.value.detail == "Cannot hold an order that is cancelled; allowed now: none."
    with pytest.raises(DomainError) as authorized:
        apply_payment(PaymentTotals(authorized=600), K.AUTHORIZATION, 401, 1000)
    assert authorized.value.detail.startswith("Cannot record an authorization of 401: ")
    with pytest.raises(DomainError) as cancelled:
        apply_payment(PaymentTotals(), K.AUTHORIZATION, 1, 1000, cancelled=True)
    assert cancelled.value.detail.startswith("Cannot record an authorization on a cancelled")
    with pytest.raises(DomainError) as captured:
        apply_payment(PaymentTotals(), K.CAPTURE, 1001, 1000)
    assert captured.value.detail.startswith("Cannot record a capture of 1001: ")
