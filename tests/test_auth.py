"""401 and 403 exactly as the SPEC says; revocation is immediate; channel keys are fenced."""

from __future__ import annotations

import httpx

from oms_api.domain.access import generate_key
from tests.factories import bearer, create_channel, create_key


async def test_missing_key_is_401_with_a_challenge(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/channels")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthorized"


async def test_malformed_unknown_and_wrong_scheme_keys_are_401(client: httpx.AsyncClient) -> None:
    for header in (
        "Bearer nonsense",
        f"Bearer {generate_key()}",  # well-formed but never issued
        f"Basic {generate_key()}",
        "Bearer",
    ):
        response = await client.get("/v1/channels", headers={"Authorization": header})
        assert response.status_code == 401, header


async def test_a_key_works_until_revoked_then_401_at_once(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    key = await create_key(admin, ["orders:read"])
    assert key["secret"].startswith("oms_")
    assert key["prefix"] == key["secret"][:12]
    assert (await client.get("/v1/channels", headers=bearer(key["secret"]))).status_code == 200

    revoked = await admin.delete(f"/v1/api-keys/{key['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    response = await client.get("/v1/channels", headers=bearer(key["secret"]))
    assert response.status_code == 401


async def test_missing_scope_is_403_naming_the_scope(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    key = await create_key(admin, ["orders:read", "inventory:read"])
    response = await client.post(
        "/v1/channels", json={"code": "x", "name": "x"}, headers=bearer(key["secret"])
    )
    assert response.status_code == 403
    assert response.json()["code"] == "missing_scope"
    assert response.json()["required_scope"] == "admin"
    assert (await client.get("/v1/api-keys", headers=bearer(key["secret"]))).status_code == 403


async def test_issued_admin_key_can_administer(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    key = await create_key(admin, ["admin"])
    response = await client.get("/v1/api-keys", headers=bearer(key["secret"]))
    assert response.status_code == 200
    ids = [k["id"] for k in response.json()["data"]]
    assert key["id"] in ids
    assert all("secret" not in k for k in response.json()["data"])


async def test_channel_bound_key_cannot_be_admin_nor_bound_to_a_missing_channel(
    admin: httpx.AsyncClient,
) -> None:
    channel = await create_channel(admin)
    response = await admin.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["admin"], "channel_id": channel["id"]}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_key_grant"
    response = await admin.post(
        "/v1/api-keys", json={"name": "x", "scopes": ["orders:read"], "channel_id": "ch_missing"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_channel"
    response = await admin.post("/v1/api-keys", json={"name": "x", "scopes": ["superuser"]})
    assert response.status_code == 422


async def test_channel_key_sees_only_its_channel_and_others_are_404(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    mine = await create_channel(admin)
    theirs = await create_channel(admin)
    key = await create_key(admin, ["orders:read"], channel_id=mine["id"])
    headers = bearer(key["secret"])

    listed = await client.get("/v1/channels", headers=headers)
    assert [c["id"] for c in listed.json()["data"]] == [mine["id"]]
    assert (await client.get(f"/v1/channels/{mine['id']}", headers=headers)).status_code == 200
    other = await client.get(f"/v1/channels/{theirs['id']}", headers=headers)
    assert other.status_code == 404
    assert other.json()["code"] == "not_found"
    # The same 404 as for an id that does not exist: nothing leaks.
    missing = await client.get("/v1/channels/ch_doesnotexist", headers=headers)
    assert missing.status_code == 404


async def test_keys_are_listed_and_fetched_without_secrets(admin: httpx.AsyncClient) -> None:
    key = await create_key(admin, ["reports:read"])
    fetched = await admin.get(f"/v1/api-keys/{key['id']}")
    assert fetched.status_code == 200
    assert "secret" not in fetched.json()
    assert fetched.json()["scopes"] == ["reports:read"]
    assert (await admin.get("/v1/api-keys/key_nope")).status_code == 404
    assert (await admin.delete("/v1/api-keys/key_nope")).status_code == 404


async def test_rate_limit_answers_429_with_retry_after(database_url: str) -> None:
    from oms_api.main import create_app
    from tests.conftest import ADMIN_KEY, make_settings

    app = create_app(make_settings(database_url, rate_limit=1, rate_limit_burst=3))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        statuses = [
            (
                await c.get("/v1/channels", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
            ).status_code
            for _ in range(5)
        ]
        assert statuses == [200, 200, 200, 429, 429]
        limited = await c.get("/v1/channels", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert (await c.get("/healthz")).status_code == 200  # operations are not limited


async def test_two_authorization_headers_are_401_whichever_comes_first(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Only the first of two `Authorization` headers was read: a proxy or gateway that reads
    the last (to log, rate-limit or authorize) would judge another caller than the service
    serves (found by an outside-in attack). A request carries one key, or none is trusted."""
    channel = await create_channel(admin)
    key = await create_key(admin, ["orders:read"], channel["id"])
    admin_header = admin.headers["Authorization"]
    for first, second in ((admin_header, f"Bearer {key['secret']}"),
                          (f"Bearer {key['secret']}", admin_header)):  # fmt: skip
        response = await client.get(
            "/v1/orders", headers=[("Authorization", first), ("Authorization", second)]
        )
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized")
        placed = await client.post(
            "/v1/orders",
            json={"customer": {"email": "a@example.com"}, "lines": [{"sku": "X-1", "quantity": 1}]},
            headers=[("Authorization", first), ("Authorization", second)],
        )  # fmt: skip
        assert (placed.status_code, placed.json()["code"]) == (401, "unauthorized")


async def test_placement_answers_for_the_key_before_the_body(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """`POST /v1/orders` validated its body before it looked at the key: no key, a revoked
    one or one without `orders:write` got the body's 422, where every other operation (and
    the SPEC) answers 401 or 403 (found by an outside-in attack on scopes)."""
    channel = await create_channel(admin)
    reader = await create_key(admin, ["orders:read"], channel["id"])
    writer = await create_key(admin, ["orders:write"], channel["id"])
    revoked = await create_key(admin, ["orders:write"], channel["id"])
    await admin.delete(f"/v1/api-keys/{revoked['id']}")
    bad = {"lines": [], "status": "shipped"}
    for headers, expected in (
        ({}, (401, "unauthorized")),
        (bearer(revoked["secret"]), (401, "unauthorized")),
        (bearer(reader["secret"]), (403, "missing_scope")),
        (bearer(writer["secret"]), (422, "validation_error")),
    ):
        response = await client.post("/v1/orders", json=bad, headers=headers)
        assert (response.status_code, response.json()["code"]) == expected, response.text
        replayable = await client.post(
            "/v1/orders", json=bad, headers={**headers, "Idempotency-Key": "k-1"}
        )
        assert (replayable.status_code, replayable.json()["code"]) == expected
