"""The risk rules through the app: each rule alone and together, velocity by shipping
address across emails, a new customer's first order above its limit, and their settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import Shop, order_body, place, unique

# The rules' settings for these tests: small limits, the default weights (50, 40, 40, 40,
# 30) and threshold (70); a blocked country holds by itself.
SETTINGS = {
    "blocked_countries": ["KP"],
    "max_order_total": 10_000,
    "first_order_max_total": 5_000,
    "velocity_max_orders": 2,
    "address_velocity_max_orders": 2,
}
PRICE = 1000


@pytest.fixture
async def risk(admin: httpx.AsyncClient) -> AsyncIterator[Any]:
    """Sets the risk settings a test asks for; puts back what was there after it."""
    before = (await admin.get("/v1/settings/risk")).json()

    async def put(settings: dict[str, Any]) -> dict[str, Any]:
        response = await admin.put("/v1/settings/risk", json=settings)
        assert response.status_code == 200, response.text
        return dict(response.json())

    try:
        yield put
    finally:
        assert (await admin.put("/v1/settings/risk", json=before)).status_code == 200


def _place_of(tag: str, country: str = "DE") -> dict[str, Any]:
    """A place no other test ships to."""
    return {"name": "Ada", "line1": f"{tag} Main St", "city": "Berlin", "postal_code": "10115",
            "country": country}  # fmt: skip


async def _order(
    client: httpx.AsyncClient, shop: Shop, sku: str, qty: int = 1, *, email: str | None = None,
    **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    body = order_body(None, [(sku, qty)], **fields)
    if email is not None:
        body["customer"] = {"email": email}
    response = await place(client, body, headers=shop.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _returning(client: httpx.AsyncClient, shop: Shop, sku: str) -> str:
    """An email whose customer has one earlier order (small, to a place of its own)."""
    email = f"{unique('returning')}@example.com"
    first = await _order(client, shop, sku, email=email, shipping_address=_place_of(unique("a")))
    assert first["risk"] == {"score": 0, "reasons": []}
    return email


@pytest.mark.parametrize(
    ("rule", "score", "status"),
    [
        ("shipping_country_blocked", 70, "on_hold"),
        ("order_total_above_limit", 50, "pending"),
        ("first_order_above_limit", 40, "pending"),
        ("many_orders_from_email", 40, "pending"),
        ("many_orders_to_address", 40, "pending"),
        ("billing_shipping_country_mismatch", 30, "pending"),
    ],
)
async def test_each_rule_alone_gives_its_reason_and_weight(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, risk: Any,
    rule: str, score: int, status: str,
) -> None:  # fmt: skip
    await risk(SETTINGS)
    shop = await Shop.open(admin)
    sku = (await shop.product(admin, 100, unit_price=PRICE))["sku"]
    email = await _returning(client, shop, sku)
    ship_to = _place_of(unique("p"))
    qty = 1
    if rule == "shipping_country_blocked":
        ship_to["country"] = "KP"
    elif rule == "order_total_above_limit":
        qty = 11  # 11,000 > 10,000; a returning customer: not a first order
    elif rule == "first_order_above_limit":
        email, qty = f"{unique('new')}@example.com", 6  # 6,000 > 5,000
    elif rule == "many_orders_from_email":
        await _order(client, shop, sku, email=email, shipping_address=_place_of(unique("b")))
    elif rule == "many_orders_to_address":  # two others, by other emails, shipped there first
        for _ in range(2):
            await _order(client, shop, sku, shipping_address=ship_to)
    billing = (
        ship_to | {"country": "FR"} if rule == "billing_shipping_country_mismatch" else ship_to
    )
    order = await _order(
        client, shop, sku, qty, email=email, shipping_address=ship_to, billing_address=billing,
        payment={"method": "invoice"},
    )  # fmt: skip
    assert order["risk"] == {"score": score, "reasons": [rule]}
    assert order["status"] == ("on_hold" if status == "on_hold" else "confirmed")
    assert order["hold_reason"] == (f"risk: {rule}" if status == "on_hold" else None)


async def test_every_rule_at_once_holds_the_order_with_every_reason(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, risk: Any
) -> None:
    await risk(SETTINGS | {"blocked_countries": []})
    shop = await Shop.open(admin)
    sku = (await shop.product(admin, 100, unit_price=PRICE))["sku"]
    ship_to = _place_of(unique("all"))
    for _ in range(2):
        await _order(client, shop, sku, shipping_address=ship_to)
    email = f"{unique('first')}@example.com"
    order = await _order(
        client, shop, sku, 11, email=email, shipping_address=ship_to,
        billing_address=ship_to | {"country": "FR"},
    )  # fmt: skip
    reasons = [
        "order_total_above_limit", "first_order_above_limit", "many_orders_to_address",
        "billing_shipping_country_mismatch",
    ]  # fmt: skip
    assert order["status"] == "on_hold"
    assert order["risk"] == {"score": 100, "reasons": reasons}
    assert order["hold_reason"] == "risk: " + ", ".join(reasons)
    got = (await client.get(f"/v1/orders/{order['id']}", headers=shop.headers)).json()
    assert (got["status"], got["risk"]) == ("on_hold", order["risk"])
    events = (await client.get(f"/v1/orders/{order['id']}/events", headers=shop.headers)).json()
    assert [e["type"] for e in events["data"]] == ["order.created", "order.on_hold"]

    # Two rules that alone do not hold add up to a hold: first order + a busy address
    # (40 + 40); a busy address + a country mismatch (40 + 30).
    two = await _order(client, shop, sku, 6, shipping_address=ship_to)
    assert (two["status"], two["risk"]) == (
        "on_hold", {"score": 80, "reasons": ["first_order_above_limit", "many_orders_to_address"]},
    )  # fmt: skip
    email = await _returning(client, shop, sku)
    mismatch = await _order(
        client, shop, sku, email=email, shipping_address=ship_to,
        billing_address=ship_to | {"country": "FR"},
    )  # fmt: skip
    assert (mismatch["status"], mismatch["risk"]["reasons"]) == (
        "on_hold", ["many_orders_to_address", "billing_shipping_country_mismatch"],
    )  # fmt: skip


async def test_many_orders_to_one_address_from_different_emails_are_held(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, risk: Any
) -> None:
    await risk({"address_velocity_max_orders": 3, "weights": {"many_orders_to_address": 70}})
    shop = await Shop.open(admin)
    sku = (await shop.product(admin, 50))["sku"]
    street = unique("Harbour")
    home = {"name": "Ada", "line1": f"{street} 7", "line2": "Flat 2", "city": "Hamburg",
            "postal_code": "20457", "country": "DE"}  # fmt: skip
    # One place, five spellings, five people with five emails.
    spellings = [
        home,
        home | {"name": "Bob", "phone": "+49 40 1"},
        home | {"line1": f"  {street.upper()}  7 ", "line2": "flat 2."},
        home | {"city": "HAMBURG", "postal_code": " 20457 ", "company": "Bob GmbH"},
        {k: v for k, v in home.items() if k != "line2"} | {"line1": f"{street} 7, Flat 2"},
    ]
    placed = [
        await _order(
            client, shop, sku, email=f"{unique(f'person{i}')}@example.com", shipping_address=s
        )
        for i, s in enumerate(spellings)
    ]
    assert [o["status"] for o in placed] == ["pending"] * 3 + ["on_hold"] * 2
    for held in placed[3:]:
        assert held["risk"] == {"score": 70, "reasons": ["many_orders_to_address"]}
        assert held["hold_reason"] == "risk: many_orders_to_address"
        got = (await client.get(f"/v1/orders/{held['id']}", headers=shop.headers)).json()
        assert (got["status"], got["risk"]["reasons"]) == ("on_hold", ["many_orders_to_address"])
    # Next door, another flat, another city: other places.
    for elsewhere in (
        home | {"line1": f"{street} 9"},
        home | {"line2": "Flat 3"},
        home | {"city": "Bremen"},
    ):
        other = await _order(client, shop, sku, shipping_address=elsewhere)
        assert (other["status"], other["risk"]["reasons"]) == ("pending", [])
    # Without a shipping address the rule has nothing to count.
    for _ in range(4):
        assert (await _order(client, shop, sku))["risk"]["reasons"] == []


async def test_orders_to_an_address_outside_the_window_do_not_count(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, risk: Any
) -> None:
    await risk({"address_velocity_max_orders": 2, "address_velocity_window_seconds": 600})
    shop = await Shop.open(admin)
    sku = (await shop.product(admin, 50))["sku"]
    ship_to = _place_of(unique("window"))
    earlier = [(await _order(client, shop, sku, shipping_address=ship_to))["id"] for _ in range(2)]
    async with app.state.database.transaction() as conn:
        await conn.execute(
            "UPDATE orders SET created_at = now() - interval '11 minutes' WHERE id = ANY($1)",
            earlier,
        )
    assert (await _order(client, shop, sku, shipping_address=ship_to))["risk"]["reasons"] == []
    assert (await _order(client, shop, sku, shipping_address=ship_to))["risk"]["reasons"] == []
    third = await _order(client, shop, sku, shipping_address=ship_to)
    assert third["risk"]["reasons"] == ["many_orders_to_address"]


async def test_a_new_customers_first_order_above_the_limit_is_held(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, risk: Any
) -> None:
    await risk({"first_order_max_total": 5_000, "weights": {"first_order_above_limit": 70}})
    shop = await Shop.open(admin)
    sku = (await shop.product(admin, 100, unit_price=PRICE))["sku"]

    # A new email, inline: its first order is held; its second, as large, is not.
    email = f"{unique('new')}@example.com"
    first = await _order(client, shop, sku, 6, email=email)
    assert (first["status"], first["risk"]) == (
        "on_hold", {"score": 70, "reasons": ["first_order_above_limit"]},
    )  # fmt: skip
    assert first["hold_reason"] == "risk: first_order_above_limit"
    second = await _order(client, shop, sku, 6, email=email.upper())
    assert (second["status"], second["risk"]["reasons"]) == ("pending", [])

    # At the limit, not above it: not held.
    at_limit = await _order(client, shop, sku, 5, email=f"{unique('new')}@example.com")
    assert at_limit["risk"]["reasons"] == []

    # A customer created before ordering has no earlier order either.
    created = await client.post(
        "/v1/customers", json={"email": f"{unique('made')}@example.com"}, headers=shop.headers
    )
    assert created.status_code == 201, created.text
    body = order_body(None, [(sku, 6)])
    del body["customer"]
    body["customer_id"] = created.json()["id"]
    response = await place(client, body, headers=shop.headers)
    assert response.status_code == 201, response.text
    assert response.json()["risk"]["reasons"] == ["first_order_above_limit"]
    again = await place(client, body, headers=shop.headers)
    assert again.json()["risk"]["reasons"] == []

    # A customer whose earlier order was in another channel is not new to the business.
    other = await Shop.open(admin)
    other_sku = (await other.product(admin, 10, unit_price=PRICE))["sku"]
    elsewhere = await _order(client, other, other_sku, 6, email=email)
    assert elsewhere["risk"]["reasons"] == []


async def test_the_new_settings_have_defaults_and_refuse_bad_values(
    admin: httpx.AsyncClient, risk: Any
) -> None:
    defaults = await risk({})
    assert {k: defaults[k] for k in (
        "address_velocity_max_orders", "address_velocity_window_seconds", "first_order_max_total"
    )} == {"address_velocity_max_orders": 5, "address_velocity_window_seconds": 3600,
           "first_order_max_total": 250_000}  # fmt: skip
    assert defaults["weights"] == {
        "order_total_above_limit": 50, "first_order_above_limit": 40,
        "many_orders_from_email": 40, "many_orders_to_address": 40,
        "billing_shipping_country_mismatch": 30,
    }  # fmt: skip
    put = await risk({"address_velocity_max_orders": 2, "address_velocity_window_seconds": 60,
                      "first_order_max_total": 0, "weights": {"many_orders_to_address": 100}})  # fmt: skip
    got = (await admin.get("/v1/settings/risk")).json()
    assert got == put
    assert (got["address_velocity_max_orders"], got["first_order_max_total"]) == (2, 0)
    assert got["weights"]["many_orders_to_address"] == 100
    assert got["weights"]["first_order_above_limit"] == 40  # unnamed: its default

    for bad, loc in [
        ({"address_velocity_max_orders": 0}, ["body", "address_velocity_max_orders"]),
        ({"address_velocity_max_orders": 10_001}, ["body", "address_velocity_max_orders"]),
        ({"address_velocity_max_orders": "many"}, ["body", "address_velocity_max_orders"]),
        ({"address_velocity_window_seconds": 0}, ["body", "address_velocity_window_seconds"]),
        ({"address_velocity_window_seconds": 30 * 86400 + 1},
         ["body", "address_velocity_window_seconds"]),
        ({"first_order_max_total": -1}, ["body", "first_order_max_total"]),
        ({"first_order_max_total": 10**12}, ["body", "first_order_max_total"]),
        ({"first_order_max_total": 2.5}, ["body", "first_order_max_total"]),
        ({"weights": {"many_orders_to_address": 101}}, ["body", "weights", "many_orders_to_address"]),
        ({"weights": {"first_order_above_limit": -1}}, ["body", "weights", "first_order_above_limit"]),
        ({"weights": {"many_orders_to_adress": 10}}, ["body", "weights", "many_orders_to_adress"]),
        ({"adress_velocity_max_orders": 3}, ["body", "adress_velocity_max_orders"]),
    ]:  # fmt: skip
        response = await admin.put("/v1/settings/risk", json=bad)
        assert response.status_code == 422, (bad, response.text)
        problem = response.json()
        assert problem["code"] == "validation_error", problem
        assert loc in [e["loc"][: len(loc)] for e in problem["errors"]], problem
    assert (await admin.get("/v1/settings/risk")).json() == put  # nothing refused was kept
