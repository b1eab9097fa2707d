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
