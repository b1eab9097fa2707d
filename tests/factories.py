"""Plain async factories with random, never-colliding references."""

from __future__ import annotations

import secrets
from typing import Any

import httpx


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def create_channel(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"code": unique("ch"), "name": "Test channel", **fields}
    response = await admin.post("/v1/channels", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_key(
    admin: httpx.AsyncClient, scopes: list[str], channel_id: str | None = None
) -> dict[str, Any]:
    response = await admin.post(
        "/v1/api-keys", json={"name": unique("key"), "scopes": scopes, "channel_id": channel_id}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def create_location(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"code": unique("loc"), "name": "Test location", "kind": "warehouse", **fields}
    response = await admin.post("/v1/locations", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_product(admin: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {
        "sku": unique("SKU").upper(),
        "name": "Test product",
        "unit_price": 1000,
        "currency": "EUR",
        **fields,
    }
    response = await admin.post("/v1/products", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def stock(
    admin: httpx.AsyncClient, sku: str, location_id: str, quantity: int
) -> dict[str, Any]:
    response = await admin.post(
        "/v1/inventory/adjustments",
        json={"sku": sku, "location_id": location_id, "delta": quantity, "reason": "received"},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def inventory(admin: httpx.AsyncClient, sku: str) -> dict[str, Any]:
    response = await admin.get(f"/v1/inventory/{sku}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def order_body(
    channel_code: str | None, lines: list[tuple[str, int]], **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer": {"email": f"{unique('buyer')}@example.com", "name": "Test Buyer"},
        "lines": [{"sku": sku, "quantity": qty} for sku, qty in lines],
        **fields,
    }
    if channel_code is not None:
        body["channel"] = channel_code
    return body


async def place(client: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return await client.post("/v1/orders", json=body, **kw)


class Shop:
    """A channel with its own location(s), products in stock, and a channel-bound key."""

    def __init__(self) -> None:
        self.channel: dict[str, Any] = {}
        self.locations: list[dict[str, Any]] = []
        self.key: dict[str, Any] = {}

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.key["secret"])

    @classmethod
    async def open(cls, admin: httpx.AsyncClient, *, locations: int = 1) -> Shop:
        shop = cls()
        for i in range(locations):
            shop.locations.append(await create_location(admin, priority=10 * (i + 1)))
        shop.channel = await create_channel(
            admin, location_ids=[loc["id"] for loc in shop.locations]
        )
        shop.key = await create_key(
            admin, ["orders:read", "orders:write", "inventory:read"], shop.channel["id"]
        )
        return shop

    async def product(
        self, admin: httpx.AsyncClient, quantity: int, *, at: int = 0, **fields: Any
    ) -> dict[str, Any]:
        product = await create_product(admin, **fields)
        if quantity:
            await stock(admin, product["sku"], self.locations[at]["id"], quantity)
        return product
