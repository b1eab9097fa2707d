"""Idempotency-Key: one effect per key, replayed; concurrent duplicates never double-create."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import httpx

from tests.factories import Shop, bearer, create_key, inventory, order_body, place, unique


async def _count_channels_with_code(admin: httpx.AsyncClient, code: str) -> int:
    total, cursor = 0, None
    while True:
        params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = (await admin.get("/v1/channels", params=params)).json()
        total += sum(1 for c in page["data"] if c["code"] == code)
        cursor = page["next_cursor"]
        if not cursor:
            return total


async def test_same_key_same_body_replays_the_original(admin: httpx.AsyncClient) -> None:
    key = secrets.token_hex(8)
    body = {"code": unique("idem"), "name": "Idem"}
    first = await admin.post("/v1/channels", json=body, headers={"Idempotency-Key": key})
    second = await admin.post("/v1/channels", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count_channels_with_code(admin, body["code"]) == 1


async def test_same_key_different_body_is_422(admin: httpx.AsyncClient) -> None:
    key = secrets.token_hex(8)
    code = unique("idem")
    await admin.post(
        "/v1/channels", json={"code": code, "name": "A"}, headers={"Idempotency-Key": key}
    )
    response = await admin.post(
        "/v1/channels", json={"code": code, "name": "B"}, headers={"Idempotency-Key": key}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"


async def test_keys_are_scoped_to_the_api_key(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    other_admin = await create_key(admin, ["admin"])
    idem = {"Idempotency-Key": secrets.token_hex(8)}
    first = await admin.post("/v1/channels", json={"code": unique("a"), "name": "A"}, headers=idem)
    second = await client.post(
        "/v1/channels",
        json={"code": unique("b"), "name": "B"},
        headers=idem | bearer(other_admin["secret"]),
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


async def test_a_failed_request_is_not_stored_and_may_be_retried(admin: httpx.AsyncClient) -> None:
    code = unique("dup")
    await admin.post("/v1/channels", json={"code": code, "name": "taken"})
    idem = {"Idempotency-Key": secrets.token_hex(8)}
    body = {"code": code, "name": "again"}
    assert (await admin.post("/v1/channels", json=body, headers=idem)).status_code == 409
    assert (await admin.post("/v1/channels", json=body, headers=idem)).status_code == 409


async def test_invalid_keys_are_refused(admin: httpx.AsyncClient) -> None:
    for key in (b"tab\there", b"x" * 256, "caf\u00e9".encode()):
        response = await admin.post(
            "/v1/channels",
            json={"code": unique("x"), "name": "x"},
            headers={"Idempotency-Key": key},
        )
        assert response.status_code == 422, key
        assert response.json()["code"] == "validation_error"


async def test_replayed_api_key_creation_never_reveals_the_secret_again(
    admin: httpx.AsyncClient,
) -> None:
    idem = {"Idempotency-Key": secrets.token_hex(8)}
    body = {"name": unique("k"), "scopes": ["orders:read"]}
    first = await admin.post("/v1/api-keys", json=body, headers=idem)
    again = await admin.post("/v1/api-keys", json=body, headers=idem)
    assert first.json()["secret"].startswith("oms_")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["secret"] is None
    assert again.json()["id"] == first.json()["id"]


async def _fire_concurrently(
    urls: list[str], body: dict[str, str], key: str, n: int
) -> list[httpx.Response]:
    from tests.conftest import ADMIN_KEY

    headers = {"Idempotency-Key": key, "Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(timeout=30) as http:
        return await asyncio.gather(
            *(
                http.post(urls[i % len(urls)] + "/v1/channels", json=body, headers=headers)
                for i in range(n)
            )
        )


async def test_concurrent_duplicates_create_once(admin: httpx.AsyncClient) -> None:
    body = {"code": unique("race"), "name": "Race"}
    key = secrets.token_hex(8)
    responses = await asyncio.gather(
        *(
            admin.post("/v1/channels", json=body, headers={"Idempotency-Key": key})
            for _ in range(20)
        )
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_flight"
            assert r.headers["retry-after"] == "1"
    assert await _count_channels_with_code(admin, body["code"]) == 1


async def test_concurrent_duplicates_across_two_server_processes(
    admin: httpx.AsyncClient, live_servers: object
) -> None:
    servers = live_servers(2)  # type: ignore[operator]
    urls = [s.url for s in servers]
    for _ in range(3):
        body = {"code": unique("xproc"), "name": "Across processes"}
        responses = await _fire_concurrently(urls, body, secrets.token_hex(8), 24)
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 409}, statuses
        assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
        assert await _count_channels_with_code(admin, body["code"]) == 1


async def test_placement_replays_for_a_channel_key_and_for_the_admin_key(
    admin: httpx.AsyncClient,
) -> None:
    """Placement claims the key in the same round trip as it authenticates (a stored key), or
    on its own (the bootstrap admin key): both replay, and neither reserves stock twice."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    for headers, body in (
        (shop.headers, order_body(None, [(product["sku"], 2)])),
        ({}, order_body(shop.channel["code"], [(product["sku"], 2)])),  # `admin` sends its key
    ):
        keyed = headers | {"Idempotency-Key": secrets.token_hex(8)}
        first = await place(admin, body, headers=keyed)
        again = await place(admin, body, headers=keyed)
        assert first.status_code == again.status_code == 201, first.text
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == first.content  # byte for byte: key order, spacing, all
        changed = body | {"note": "different"}
        reused = await place(admin, changed, headers=keyed)
        assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    level = (await inventory(admin, product["sku"]))["levels"][0]
    assert (level["on_hand"], level["reserved"]) == (10, 4)


async def test_retries_of_a_completed_request_all_replay_at_once(
    admin: httpx.AsyncClient,
) -> None:
    """Once a key's request has completed, twenty retries sent together all get its response
    (none is told the key is in flight), for a placement and for another create."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    keyed = shop.headers | {"Idempotency-Key": secrets.token_hex(8)}
    body = order_body(None, [(product["sku"], 1)])
    first = await place(admin, body, headers=keyed)
    assert first.status_code == 201, first.text
    retries = await asyncio.gather(*(place(admin, body, headers=keyed) for _ in range(20)))
    assert [r.status_code for r in retries] == [201] * 20, [r.text for r in retries]
    assert all(r.headers["idempotent-replayed"] == "true" for r in retries)
    assert all(r.json() == first.json() for r in retries)
    level = (await inventory(admin, product["sku"]))["levels"][0]
    assert level["reserved"] == 1
    channel = {"code": unique("again"), "name": "Again"}
    key = {"Idempotency-Key": secrets.token_hex(8)}
    made = await admin.post("/v1/channels", json=channel, headers=key)
    assert made.status_code == 201, made.text
    retries = await asyncio.gather(
        *(admin.post("/v1/channels", json=channel, headers=key) for _ in range(20))
    )
    assert {r.status_code for r in retries} == {201}
    assert {r.json()["id"] for r in retries} == {made.json()["id"]}


async def test_placement_without_the_scope_is_403_even_with_an_idempotency_key(
    admin: httpx.AsyncClient,
) -> None:
    """The key is claimed before the scope is checked; the refusal rolls the claim back."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    reader = await create_key(admin, ["orders:read"], shop.channel["id"])
    headers = bearer(reader["secret"]) | {"Idempotency-Key": secrets.token_hex(8)}
    body = order_body(None, [(product["sku"], 1)])
    for _ in range(2):  # not 409 in flight the second time: nothing stays locked or stored
        refused = await place(admin, body, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "missing_scope")
    assert (await inventory(admin, product["sku"]))["levels"][0]["reserved"] == 0


async def test_an_expired_key_is_a_new_request(admin: httpx.AsyncClient, database_url: str) -> None:
    """A key whose record has expired (and that the purge has not removed yet) starts a new
    request, with any body: a second order and a second channel, each recorded anew and then
    replayed — for a placement and for another create."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    keyed = shop.headers | {"Idempotency-Key": secrets.token_hex(8)}
    first = await place(admin, order_body(None, [(product["sku"], 1)]), headers=keyed)
    channel_key = {"Idempotency-Key": secrets.token_hex(8)}
    made = await admin.post(
        "/v1/channels", json={"code": unique("exp"), "name": "A"}, headers=channel_key
    )
    assert first.status_code == made.status_code == 201
    conn = await asyncpg.connect(database_url)
    try:
        expired = await conn.execute(
            "UPDATE idempotency_records SET expires_at = now() - interval '1 second' "
            "WHERE key = ANY($1::text[])",
            [keyed["Idempotency-Key"], channel_key["Idempotency-Key"]],
        )
        assert expired == "UPDATE 2"
    finally:
        await conn.close()
    body = order_body(None, [(product["sku"], 2)])
    second = await place(admin, body, headers=keyed)
    assert second.status_code == 201, second.text
    assert "idempotent-replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    again = await place(admin, body, headers=keyed)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == second.json()
    level = (await inventory(admin, product["sku"]))["levels"][0]
    assert level["reserved"] == 3
    other = {"code": unique("exp"), "name": "B"}
    remade = await admin.post("/v1/channels", json=other, headers=channel_key)
    assert remade.status_code == 201, remade.text
    assert remade.json()["id"] != made.json()["id"]
    replayed = await admin.post("/v1/channels", json=other, headers=channel_key)
    assert replayed.json() == remade.json()


async def test_two_idempotency_key_headers_are_refused(admin: httpx.AsyncClient) -> None:
    """Which of two keys would the client mean? Neither is guessed: 422, nothing created."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 10)
    twice = [("Idempotency-Key", secrets.token_hex(8)), ("Idempotency-Key", secrets.token_hex(8))]
    placed = await admin.post(
        "/v1/orders", json=order_body(None, [(product["sku"], 1)]),
        headers=httpx.Headers(list(shop.headers.items()) + twice),
    )  # fmt: skip
    code = unique("two")
    made = await admin.post(
        "/v1/channels", json={"code": code, "name": "Two"}, headers=httpx.Headers(twice)
    )
    for response in (placed, made):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "idempotency_key_repeated"
    assert (await inventory(admin, product["sku"]))["levels"][0]["reserved"] == 0
    assert await _count_channels_with_code(admin, code) == 0
