"""The risk rules, without a database: every rule alone and every combination of them,
each limit at its edge, and the place an address names (velocity by address)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from oms_api.domain.inventory import StockAt
from oms_api.domain.placement import LineRequest, OrderRequest, Placement, Product, plan_order
from oms_api.domain.risk import RiskInput, RiskSettings, address_key, assess

# The rules in the order their reasons are listed, with their default weights, written
# apart from the code (docs/orders.md's table). A blocked country holds by itself.
RULES: dict[str, int | None] = {
    "shipping_country_blocked": None,
    "order_total_above_limit": 50,
    "first_order_above_limit": 40,
    "many_orders_from_email": 40,
    "many_orders_to_address": 40,
    "billing_shipping_country_mismatch": 30,
}
SETTINGS = RiskSettings(
    blocked_countries=frozenset({"KP"}),
    max_order_total=10_000,
    first_order_max_total=2_000,
    velocity_max_orders=3,
    address_velocity_max_orders=4,
)


def _input(fired: frozenset[str]) -> RiskInput:
    """An order that sets off exactly the rules in `fired` under SETTINGS."""
    shipping = "KP" if "shipping_country_blocked" in fired else "DE"
    if "order_total_above_limit" in fired:
        total = 10_001
    elif "first_order_above_limit" in fired:
        total = 2_001
    else:
        total = 2_000
    return RiskInput(
        total=total,
        shipping_country=shipping,
        billing_country="FR" if "billing_shipping_country_mismatch" in fired else shipping,
        # this order is the 4th (5th) to the email (address): one past the limit, or at it
        recent_orders_from_email=3 if "many_orders_from_email" in fired else 2,
        recent_orders_to_address=4 if "many_orders_to_address" in fired else 3,
        first_order="first_order_above_limit" in fired,
    )


COMBINATIONS = [
    frozenset(c) for n in range(len(RULES) + 1) for c in itertools.combinations(RULES, n)
]


@pytest.mark.parametrize("fired", COMBINATIONS, ids=lambda c: "+".join(sorted(c)) or "none")
def test_every_combination_of_rules_scores_and_holds_as_documented(fired: frozenset[str]) -> None:
    result = assess(_input(fired), SETTINGS)
    assert result.reasons == [r for r in RULES if r in fired]
    blocked = "shipping_country_blocked" in fired
    weighed = sum(w for r, w in RULES.items() if r in fired and w is not None)
    expected = min(100, weighed + (70 if blocked else 0))
    assert result.score == expected
    assert result.hold is (blocked or expected >= 70)


def test_there_are_64_combinations_and_each_rule_alone_never_holds_but_a_blocked_country() -> None:
    assert len(COMBINATIONS) == 2 ** len(RULES) == 64
    for rule in RULES:
        alone = assess(_input(frozenset({rule})), SETTINGS)
        assert alone.reasons == [rule]
        assert alone.hold is (rule == "shipping_country_blocked")


def _plain(**kw: Any) -> RiskInput:
    values: dict[str, Any] = {
        "total": 1000, "shipping_country": "DE", "billing_country": "DE",
        "recent_orders_from_email": 0, "recent_orders_to_address": 0, "first_order": False,
    }  # fmt: skip
    return RiskInput(**(values | kw))


def test_a_first_order_above_its_limit_scores_at_the_limit_it_does_not() -> None:
    settings = RiskSettings(first_order_max_total=5000)
    assert assess(_plain(total=5000, first_order=True), settings).reasons == []
    above = assess(_plain(total=5001, first_order=True), settings)
    assert (above.reasons, above.score, above.hold) == (["first_order_above_limit"], 40, False)
    # the same amount from a customer who ordered before
    assert assess(_plain(total=5001, first_order=False), settings).reasons == []
    # both limits passed: both rules
    both = assess(_plain(total=20_000, first_order=True), RiskSettings(max_order_total=10_000))
    assert both.reasons == ["order_total_above_limit"]  # the default first-order limit: 250,000
    both = assess(
        _plain(total=20_000, first_order=True),
        RiskSettings(max_order_total=10_000, first_order_max_total=5000),
    )
    assert (both.reasons, both.score, both.hold) == (
        ["order_total_above_limit", "first_order_above_limit"], 90, True,
    )  # fmt: skip


def test_orders_to_one_address_count_this_one_included() -> None:
    settings = RiskSettings(address_velocity_max_orders=3)
    assert assess(_plain(recent_orders_to_address=1), settings).reasons == []  # 2nd of 3
    third = assess(_plain(recent_orders_to_address=2), settings)  # the 3rd: at the limit
    assert third.reasons == []
    fourth = assess(_plain(recent_orders_to_address=3), settings)
    assert (fourth.reasons, fourth.score) == (["many_orders_to_address"], 40)
    # a limit of one: any earlier order to the place within the window
    assert assess(_plain(recent_orders_to_address=1), RiskSettings(address_velocity_max_orders=1)).reasons == [
        "many_orders_to_address"
    ]  # fmt: skip


def test_weights_and_threshold_of_the_new_rules_are_settings() -> None:
    settings = RiskSettings.from_json(
        {"hold_threshold": 50, "weights": {"many_orders_to_address": 50, "first_order_above_limit": 10}}
    )  # fmt: skip
    busy = assess(_plain(recent_orders_to_address=5), settings)
    assert (busy.score, busy.hold) == (50, True)
    first = assess(_plain(total=300_000, first_order=True), settings)
    assert (first.reasons, first.score, first.hold) == (["first_order_above_limit"], 10, False)
    silent = RiskSettings.from_json({"weights": {"many_orders_to_address": 0}})
    zero = assess(_plain(recent_orders_to_address=5), silent)
    assert (zero.reasons, zero.score, zero.hold) == (["many_orders_to_address"], 0, False)


def test_the_new_settings_round_trip_through_json_with_defaults_for_what_is_missing() -> None:
    defaults = RiskSettings()
    assert (
        defaults.address_velocity_max_orders, defaults.address_velocity_window_seconds,
        defaults.first_order_max_total,
    ) == (5, 3600, 250_000)  # fmt: skip
    assert defaults.weights["many_orders_to_address"] == 40
    assert defaults.weights["first_order_above_limit"] == 40
    stored = {"address_velocity_max_orders": 2, "address_velocity_window_seconds": 60,
              "first_order_max_total": 7, "weights": {"many_orders_to_address": 90}}  # fmt: skip
    settings = RiskSettings.from_json(stored)
    assert RiskSettings.from_json(settings.to_json()) == settings
    assert settings.weights["first_order_above_limit"] == 40  # unnamed: its default
    # a document stored before these keys existed reads with their defaults
    old = RiskSettings.from_json({"hold_threshold": 60, "velocity_max_orders": 2})
    assert (old.address_velocity_max_orders, old.first_order_max_total) == (5, 250_000)


# --- the place an address names ---------------------------------------------------------

HOME = {"name": "Ada Lovelace", "line1": "12 St James Sq", "line2": "Flat 2",
        "city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}  # fmt: skip


@pytest.mark.parametrize(
    "spelling",
    [
        HOME | {"name": "Charles Babbage", "company": "Analytical Ltd", "phone": "+44 1"},
        HOME | {"line1": "  12  st. JAMES sq ", "line2": "flat 2,"},
        HOME | {"city": "LONDON", "postal_code": "sw1y4jh"},
        HOME | {"postal_code": " SW1Y-4JH "},
        HOME | {"region": "Greater London"},
        HOME | {"line1": "12 St James Sq Flat 2", "line2": None},
        {k: v for k, v in HOME.items() if k != "line2"} | {"line1": "12 St James Sq, Flat 2"},
        HOME | {"line1": "\uff11\uff12 St James Sq"},  # full-width digits
        HOME | {"country": "gb"},
        HOME | {"line1": "12 ST_JAMES\tSQ"},
    ],
)
def test_one_place_however_it_is_spelt_has_one_key(spelling: dict[str, Any]) -> None:
    assert address_key(spelling) == address_key(HOME)


@pytest.mark.parametrize(
    "elsewhere",
    [
        HOME | {"line1": "14 St James Sq"},
        HOME | {"line2": "Flat 3"},
        HOME | {"line2": None},
        HOME | {"postal_code": "SW1Y 4JJ"},
        HOME | {"city": "Londonderry"},
        HOME | {"country": "US"},
    ],
)
def test_another_place_has_another_key(elsewhere: dict[str, Any]) -> None:
    assert address_key(elsewhere) != address_key(HOME)


def test_letters_beyond_ascii_are_case_folded_not_stripped_of_accents() -> None:
    strasse = HOME | {"line1": "Lange Straße 5", "city": "Köln", "country": "DE"}
    assert address_key(strasse | {"line1": "LANGE STRASSE 5", "city": "KÖLN"}) == address_key(
        strasse
    )
    assert address_key(strasse | {"city": "Koln"}) != address_key(strasse)


def test_odd_values_make_a_key_not_an_error() -> None:
    # a field-separator character inside a field, fields missing or null, no letters at all
    assert address_key(HOME | {"line1": "12\x1fSt James Sq"}) == address_key(HOME)
    assert address_key({"line1": "x", "city": "y", "country": "DE", "line2": None}) is not None
    assert address_key({"country": "DE"}) != address_key({"country": "FR"})
    assert address_key(HOME | {"line1": "!!! ___ ..."}) == address_key(HOME | {"line1": ""})


def test_the_key_is_short_and_none_without_an_address() -> None:
    key = address_key(HOME)
    assert key is not None
    assert len(key) == 32
    assert int(key, 16) >= 0
    assert address_key(None) is None
    long = HOME | {"line1": "x" * 500, "line2": "y" * 500, "city": "z" * 200}
    assert len(address_key(long) or "") == 32


# --- through the plan -------------------------------------------------------------------

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SHIRT = Product("p_shirt", "SHIRT", "T-shirt", 1500, "EUR", True, False)


def _placement(**kw: Any) -> Placement:
    ids = itertools.count(1)
    values: dict[str, Any] = {
        "order_id": "ord_1", "number": 1, "now": NOW, "expires_at": NOW + timedelta(days=1),
        "channel_id": "ch_web", "customer_id": "cus_1", "email_normalized": "ada@example.com",
        "products": {"SHIRT": SHIRT}, "stock": [StockAt("p_shirt", "loc_a", 1, 100)],
        "risk": RiskSettings(), "recent_orders_from_email": 0, "shipping_address_key": None,
        "recent_orders_to_address": 0, "first_order": False,
        "new_id": lambda prefix: f"{prefix}_{next(ids)}",
    }  # fmt: skip
    return Placement(**(values | kw))


def test_the_plan_stores_the_address_key_and_holds_with_every_reason() -> None:
    request = OrderRequest(
        [LineRequest("SHIRT", 10)], shipping_address=HOME, billing_address=HOME | {"country": "FR"}
    )
    settings = RiskSettings(first_order_max_total=10_000, address_velocity_max_orders=2)
    at = _placement(
        risk=settings, shipping_address_key=address_key(HOME), recent_orders_to_address=2,
        first_order=True,
    )  # fmt: skip
    plan = plan_order(request, at)
    assert plan.order["shipping_address_key"] == address_key(HOME)
    reasons = ["first_order_above_limit", "many_orders_to_address", "billing_shipping_country_mismatch"]  # fmt: skip
    assert (plan.order["status"], plan.order["risk_reasons"], plan.order["risk_score"]) == (
        "on_hold", reasons, 100,
    )  # fmt: skip
    assert plan.order["hold_reason"] == "risk: " + ", ".join(reasons)
    assert plan.events == ["order.created", "order.on_hold"]

    calm = plan_order(OrderRequest([LineRequest("SHIRT", 1)]), _placement(risk=settings))
    assert calm.order["shipping_address_key"] is None
    assert (calm.order["status"], calm.order["risk_reasons"]) == ("pending", [])
