"""Input that once reached the database or the JSON encoder and came back as a 500: a NUL
inside a forged cursor, integers beyond 64 bits and deep nesting in an order's metadata.
Each is a clear 422 now."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from oms_api.schemas.common import METADATA_MAX_DEPTH
from tests.factories import Shop, create_channel, order_body, place


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def _lists_with_a_cursor(app: FastAPI) -> list[str]:
    return sorted(
        path
        for path, item in app.openapi()["paths"].items()
        if "{" not in path
        and any(p["name"] == "cursor" for p in item.get("get", {}).get("parameters", []))
    )


async def test_a_cursor_holding_a_nul_is_refused_by_every_list(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    lists = _lists_with_a_cursor(app)
    assert "/v1/orders" in lists, lists
    assert "/v1/inventory/movements" in lists, lists
    for path in lists:
        # Every key length a list might page by (1 to 3 columns): one of them is the list's.
        for width in (1, 2, 3):
            cursor = _cursor(["x\u0000y"] * width)
            response = await admin.get(path, params={"cursor": cursor})
            assert response.status_code == 422, (path, width, response.text)
            assert response.json()["code"] == "invalid_cursor", (path, response.text)


async def _a_cursor(admin: httpx.AsyncClient, path: str) -> str:
    response = await admin.get(path, params={"limit": 1})
    assert response.status_code == 200, response.text
    cursor = response.json()["next_cursor"]
    assert cursor is not None, path
    return str(cursor)


async def test_a_cursor_from_one_list_is_refused_by_every_other(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    # Was: a cursor from /v1/orders paged /v1/products, /v1/shipments… from the same key.
    owner = await Shop.open(admin, locations=2)
    await create_channel(admin)
    sku = (await owner.product(admin, 10))["sku"]
    await owner.product(admin, 10)
    for _ in range(2):
        placed = await place(admin, order_body(owner.channel["code"], [(sku, 1)]))
        assert placed.status_code == 201, placed.text
    lists = _lists_with_a_cursor(app)
    for source in ("/v1/orders", "/v1/products", "/v1/locations", "/v1/channels"):
        cursor = await _a_cursor(admin, source)
        for path in lists:
            response = await admin.get(path, params={"cursor": cursor})
            if path == source:  # its own list pages on
                assert response.status_code == 200, (source, response.text)
                continue
            assert response.status_code == 422, (source, path, response.text)
            assert response.json()["code"] == "invalid_cursor", (source, path, response.text)


async def test_a_cursor_of_the_first_form_still_pages_its_list(
    admin: httpx.AsyncClient, shop: tuple[Shop, str]
) -> None:
    # Cursors issued before they named their list (the key values alone) are still taken.
    owner, sku = shop
    ids = []
    for _ in range(3):
        placed = await place(admin, order_body(owner.channel["code"], [(sku, 1)]))
        ids.append(placed.json()["id"])
    response = await admin.get(
        "/v1/orders", params={"cursor": _cursor([ids[2]]), "channel": owner.channel["code"]}
    )
    assert response.status_code == 200, response.text
    assert [o["id"] for o in response.json()["data"]] == [ids[1], ids[0]]


@pytest.fixture
async def shop(admin: httpx.AsyncClient) -> tuple[Shop, str]:
    shop = await Shop.open(admin)
    product = await shop.product(admin, 50)
    return shop, product["sku"]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize(
    "metadata",
    [
        {"n": 2**64},
        {"n": 2**63},
        {"n": -(2**63) - 1},
        {"deep": _nested(METADATA_MAX_DEPTH)},  # the dict itself is the first level
        {"list": [1, {"n": 10**30}]},
    ],
    ids=["2**64", "2**63", "below int64", "too deep", "nested huge int"],
)
async def test_metadata_that_cannot_be_stored_is_a_422(
    client: httpx.AsyncClient, shop: tuple[Shop, str], metadata: dict[str, Any]
) -> None:
    owner, sku = shop
    body = order_body(None, [(sku, 1)], metadata=metadata)
    response = await place(client, body, headers=owner.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"][0]["loc"][:2] == ["body", "metadata"], problem


async def test_metadata_at_the_limits_is_stored_and_returned_as_sent(
    client: httpx.AsyncClient, shop: tuple[Shop, str]
) -> None:
    owner, sku = shop
    metadata = {
        "max": 2**63 - 1,
        "min": -(2**63),
        "deep": _nested(METADATA_MAX_DEPTH - 1),
        "flag": True,
        "text": "Ζωή",
    }
    response = await place(
        client, order_body(None, [(sku, 1)], metadata=metadata), headers=owner.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == metadata
    again = await client.get(f"/v1/orders/{response.json()['id']}", headers=owner.headers)
    assert again.json()["metadata"] == metadata


def _raw_order(sku: str, metadata: str) -> bytes:
    """An order body whose `metadata` is the JSON text given, as a client would write it
    (json.dumps cannot write `1e400`, and writes `NaN` only when asked)."""
    body = orjson.dumps(order_body(None, [(sku, 1)], metadata={})).decode()
    return body.replace('"metadata":{}', f'"metadata":{metadata}').encode()


@pytest.mark.parametrize(
    "number",
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "12345678901234567890.5", "1e19"],
)
async def test_metadata_numbers_postgresql_cannot_store_as_sent_are_a_422(
    client: httpx.AsyncClient, shop: tuple[Shop, str], number: str
) -> None:
    # Not JSON numbers (NaN, Infinity), beyond a double (1e400), or a number stored as an
    # integer beyond 64 bits: each was answered 201 and stored as null or as another number.
    owner, sku = shop
    response = await client.post(
        "/v1/orders",
        content=_raw_order(sku, f'{{"n": [{number}]}}'),
        headers={**owner.headers, "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert problem["errors"][0]["loc"][:2] == ["body", "metadata"], problem


async def test_metadata_numbers_come_back_from_create_as_every_read_returns_them(
    client: httpx.AsyncClient, shop: tuple[Shop, str]
) -> None:
    owner, sku = shop
    sent = '{"zero": -0.0, "big": 1e16, "tiny": 1.5e-7, "one": 1.0, "tenth": 0.1, "é": 1, "n": -3}'
    response = await client.post(
        "/v1/orders",
        content=_raw_order(sku, sent),
        headers={**owner.headers, "content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    # As PostgreSQL's jsonb keeps them: no negative zero, a number with no fraction is an
    # integer (1e16), the others the same numbers; keys shorter first, then by their bytes.
    stored = (
        '{"n":-3,"é":1,"big":10000000000000000,"one":1.0,"tiny":1.5e-7,"zero":0.0,"tenth":0.1}'
    ).encode()
    assert orjson.dumps(response.json()["metadata"]) == stored
    order_id = response.json()["id"]
    again = await client.get(f"/v1/orders/{order_id}", headers=owner.headers)
    assert orjson.dumps(again.json()["metadata"]) == stored
    listed = await client.get("/v1/orders", params={"limit": 1}, headers=owner.headers)
    assert listed.json()["data"][0]["id"] == order_id
    assert orjson.dumps(listed.json()["data"][0]["metadata"]) == stored


@pytest.mark.parametrize("q", ["\u00b2", "\u2460", "1\u00b2"])
async def test_a_search_of_digits_python_cannot_read_as_a_number_is_no_500(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, q: str
) -> None:
    """`?q=²` passed `str.isdigit()` and failed `int()`: 500 (found by an outside-in attack).
    Only ASCII digits are an order number; anything else is searched as an external id."""
    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    placed = await place(
        client, order_body(None, [(product["sku"], 1)], external_id=q), headers=shop.headers
    )
    assert placed.status_code == 201, placed.text
    found = await client.get("/v1/orders", params={"q": q}, headers=shop.headers)
    assert found.status_code == 200, found.text
    assert [o["id"] for o in found.json()["data"]] == [placed.json()["id"]]
