"""What the channels share — locations, products, channels, keys, settings, carrier
pickups — is changed only by keys not bound to a channel; a channel-bound key adjusts stock
only where its channel sells from. Attacked with channel B's key against channel A."""

from __future__ import annotations

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
         {"carrier": "UPS", "ready_at": "2026-11-30T17:00:00Z"}),
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
