"""What the channels share — locations, products, channels, keys, settings, carrier
pickups — is changed only by keys not bound to a channel; a channel-bound key adjusts stock
only where its channel sells from. Attacked with channel B's key against channel A."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from oms_api.domain.access import Scope
from tests.factories import (
    Shop,
    bearer,
    create_channel,
    create_key,
    inventory,
    unique,
)

# A pickup time carriers book (within 30 days: `domain.pickups.READY_AT_HORIZON`).
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).isoformat()
ALL_BUT_ADMIN = sorted(s.value for s in Scope if s is not Scope.ADMIN)


def _problem(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return response.status_code, response.json()["code"]


async def _attacker(admin: httpx.AsyncClient, shop: Shop, scopes: list[str]) -> dict[str, str]:
    return bearer((await create_key(admin, scopes, shop.channel["id"]))["secret"])


async def test_a_channel_key_cannot_rename_or_create_a_location_whatever_its_scopes(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    a, b = await Shop.open(admin), await Shop.open(admin)
    theirs = a.locations[0]
    for scopes in (ALL_BUT_ADMIN, ["inventory:write"], ["orders:read"]):
        key = await _attacker(admin, b, scopes)
        renamed = await client.patch(
            f"/v1/locations/{theirs['id']}", json={"name": "Hijacked"}, headers=key
        )
        assert _problem(renamed) == (403, "channel_bound_key"), scopes
        # Refused before anything else is looked at: the body, the id, the If-Match.
        for path, body, extra in (
            (f"/v1/locations/{theirs['id']}", {"bogus": 1}, {}),
            ("/v1/locations/loc_made_up", {"name": "x"}, {"If-Match": '"99"'}),
        ):
            response = await client.patch(path, json=body, headers=key | extra)
            assert _problem(response) == (403, "channel_bound_key"), (scopes, path)
        created = await client.post(
            "/v1/locations",
            json={"code": unique("loc"), "name": "Mine now", "kind": "warehouse"},
            headers=key | {"Idempotency-Key": unique("idem")},
        )
        assert _problem(created) == (403, "channel_bound_key"), scopes
    after = (await admin.get(f"/v1/locations/{theirs['id']}")).json()
    assert (after["name"], after["version"]) == (theirs["name"], theirs["version"])
    # An unbound key without the scope is told what it lacks instead.
    unbound = bearer((await create_key(admin, ["orders:read"]))["secret"])
    refused = await client.patch(
        f"/v1/locations/{theirs['id']}", json={"name": "x"}, headers=unbound
    )
    assert _problem(refused) == (403, "missing_scope")


async def test_a_channel_key_changes_nothing_the_channels_share(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    a, b = await Shop.open(admin), await Shop.open(admin)
    key = await _attacker(admin, b, ALL_BUT_ADMIN)
    product = await a.product(admin, 3)
    attempts: list[tuple[str, str, Any]] = [
        ("POST", "/v1/products", {"sku": unique("SKU").upper(), "name": "x", "unit_price": 1,
                                  "currency": "EUR"}),
        ("PATCH", f"/v1/products/{product['sku']}", {"unit_price": 1}),
        ("POST", "/v1/channels", {"code": unique("ch"), "name": "x"}),
        ("PATCH", f"/v1/channels/{a.channel['id']}", {"location_ids": b.channel["location_ids"]}),
        ("PATCH", f"/v1/channels/{b.channel['id']}", {"location_ids": a.channel["location_ids"]}),
        ("POST", "/v1/api-keys", {"name": "x", "scopes": ["orders:read"]}),
        ("DELETE", f"/v1/api-keys/{a.key['id']}", None),
        ("PUT", "/v1/settings/risk", {}),
        ("PUT", "/v1/settings/returns", {"window_days": 3650}),
        ("POST", f"/v1/locations/{b.locations[0]['id']}/pickups",
         {"carrier": "UPS", "ready_at": TOMORROW}),
        ("POST", "/v1/pickups/pu_made_up/collected", None),
        ("POST", "/v1/pickups/pu_made_up/cancel", None),
    ]  # fmt: skip
    for method, path, body in attempts:
        response = await client.request(method, path, json=body, headers=key)
        assert _problem(response) == (403, "channel_bound_key"), (method, path)
    assert (await admin.get(f"/v1/products/{product['sku']}")).json() == product
    assert (await admin.get(f"/v1/channels/{b.channel['id']}")).json()["location_ids"] == [
        b.locations[0]["id"]
    ]
    assert (await admin.get(f"/v1/api-keys/{a.key['id']}")).json()["revoked_at"] is None
    # Reading what the channels share stays allowed.
    for path in (
        f"/v1/locations/{a.locations[0]['id']}",
        "/v1/locations",
        f"/v1/products/{product['sku']}",
        "/v1/products",
    ):
        assert (await client.get(path, headers=key)).status_code == 200, path


async def test_a_channel_key_adjusts_stock_only_where_its_channel_sells_from(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    a, b = await Shop.open(admin), await Shop.open(admin)
    key = await _attacker(admin, b, ["inventory:read", "inventory:write"])
    product = await a.product(admin, 5)
    theirs, mine = a.locations[0]["id"], b.locations[0]["id"]

    def adjustment(location_id: str) -> dict[str, Any]:
        return {"sku": product["sku"], "location_id": location_id, "delta": 7,
                "reason": "received"}  # fmt: skip

    there = await client.post("/v1/inventory/adjustments", json=adjustment(theirs), headers=key)
    nowhere = await client.post(
        "/v1/inventory/adjustments", json=adjustment("loc_made_up"), headers=key
    )
    assert _problem(there) == _problem(nowhere) == (404, "not_found")
    strip = ("instance", "request_id", "detail")
    assert {k: v for k, v in there.json().items() if k not in strip} == {
        k: v for k, v in nowhere.json().items() if k not in strip
    }
    assert (await inventory(admin, product["sku"]))["on_hand"] == 5
    here = await client.post("/v1/inventory/adjustments", json=adjustment(mine), headers=key)
    assert here.status_code == 201, here.text
    assert (await inventory(admin, product["sku"]))["on_hand"] == 12

    # A channel that sells from every location (no `location_ids`) adjusts anywhere.
    everywhere = await create_channel(admin)
    roaming = bearer((await create_key(admin, ["inventory:write"], everywhere["id"]))["secret"])
    anywhere = await client.post(
        "/v1/inventory/adjustments", json=adjustment(theirs), headers=roaming
    )
    assert anywhere.status_code == 201, anywhere.text
    # An unbound key is told the location is unknown, as before.
    unknown = await admin.post("/v1/inventory/adjustments", json=adjustment("loc_made_up"))
    assert _problem(unknown) == (422, "unknown_location")


async def test_a_shared_locations_ledger_shows_another_channels_causes_and_notes_to_no_one(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Two channels sell from one location: B's key lists its movements and receives not
    one byte naming A's order, shipment or return, nor A's adjustment note."""
    location = (await admin.post(
        "/v1/locations", json={"code": unique("loc"), "name": "Shared", "kind": "warehouse"}
    )).json()  # fmt: skip
    shared = {"location_ids": [location["id"]]}
    a = bearer((await create_key(admin, ALL_BUT_ADMIN, (await create_channel(admin, **shared))["id"]))["secret"])  # fmt: skip
    b_channel = await create_channel(admin, **shared)
    b = bearer((await create_key(admin, ALL_BUT_ADMIN, b_channel["id"]))["secret"])
    product = (await admin.post("/v1/products", json={
        "sku": unique("SKU").upper(), "name": "Shared", "unit_price": 1000, "currency": "EUR",
    })).json()  # fmt: skip
    sku = product["sku"]
    note = unique("a-secret-note")
    adjusted = await client.post("/v1/inventory/adjustments", headers=a, json={
        "sku": sku, "location_id": location["id"], "delta": 10, "reason": "received",
        "note": note,
    })  # fmt: skip
    assert adjusted.status_code == 201, adjusted.text
    ship_to = {"name": "Ada", "line1": "1 Sq", "city": "London", "postal_code": "SW1Y 4JH",
               "country": "GB"}  # fmt: skip
    order = (await client.post("/v1/orders", headers=a, json={
        "lines": [{"sku": sku, "quantity": 2}], "shipping_address": ship_to,
        "payment": {"method": "card", "status": "paid"}, "customer": {"email": f"{unique('a')}@example.com"},
    })).json()  # fmt: skip
    line = order["lines"][0]["id"]
    allocated = await client.post(f"/v1/orders/{order['id']}/allocate", headers=a)
    shipment = allocated.json()["data"][0]
    await client.post(f"/v1/shipments/{shipment['id']}/pick", headers=a)
    await client.post(f"/v1/shipments/{shipment['id']}/pack", headers=a, json={
        "carrier": "UPS", "tracking_number": unique("1Z").upper(), "weight_grams": 100})  # fmt: skip
    assert (await client.post(f"/v1/shipments/{shipment['id']}/ship", headers=a)).status_code == 200
    rma = (await client.post("/v1/returns", headers=a, json={
        "order_id": order["id"], "resolution": "refund",
        "lines": [{"line_id": line, "quantity": 1, "reason": "size_or_fit"}]})).json()  # fmt: skip
    assert (await client.post(f"/v1/returns/{rma['id']}/approve", headers=a)).status_code == 200
    received = await client.post(f"/v1/returns/{rma['id']}/receive", headers=a, json={
        "location_id": location["id"],
        "lines": [{"line_id": line, "quantity": 1, "condition": "resellable"}]})  # fmt: skip
    assert received.status_code == 200, received.text
    placed = await client.post("/v1/orders", headers=b, json={
        "lines": [{"sku": sku, "quantity": 1}], "customer": {"email": f"{unique('b')}@example.com"}})  # fmt: skip
    assert placed.status_code == 201, placed.text
    mine = placed.json()
    secrets = [order["id"], shipment["id"], rma["id"], note]

    # A's key and the admin see A's causes: the fixture really left them in the ledger.
    by_admin = (await admin.get("/v1/inventory/movements", params={"sku": sku})).json()["data"]
    causes = {(m["cause_type"], m["cause_id"]) for m in by_admin}
    assert {("order", order["id"]), ("shipment", shipment["id"]), ("return", rma["id"]),
            ("order", mine["id"])} <= causes  # fmt: skip
    assert note in {m["note"] for m in by_admin}
    # B's key: every movement, none of A's ids or notes — filtered, unfiltered, paged.
    for params in ({"sku": sku}, {"location_id": location["id"]}, {"sku": sku, "limit": 1}):
        seen = await client.get("/v1/inventory/movements", params=params, headers=b)
        assert seen.status_code == 200, seen.text
        assert not [s for s in secrets if s in seen.text], params
        if "limit" in params:
            pages, cursor = [seen.json()], seen.json()["next_cursor"]
            while cursor:
                page = await client.get("/v1/inventory/movements", headers=b,
                                        params={**params, "cursor": cursor})  # fmt: skip
                assert not [s for s in secrets if s in page.text]
                pages.append(page.json())
                cursor = page.json()["next_cursor"]
            assert sum(len(p["data"]) for p in pages) == len(by_admin)
    by_b = (await client.get("/v1/inventory/movements", params={"sku": sku}, headers=b)).json()
    assert [m["id"] for m in by_b["data"]] == [m["id"] for m in by_admin]
    for theirs, seen_by_b in zip(by_admin, by_b["data"], strict=True):
        own = theirs["cause_id"] == mine["id"]
        adjustment = theirs["cause_type"] == "adjustment"
        assert seen_by_b == theirs | {
            "cause_id": theirs["cause_id"] if own or adjustment else None,
            "note": theirs["note"] if own else None,
        }
