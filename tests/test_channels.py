from __future__ import annotations

import asyncio

import httpx

from tests.factories import create_channel, create_location, create_product, unique


async def test_create_get_and_duplicate_code(admin: httpx.AsyncClient) -> None:
    code = unique("web")
    location = await create_location(admin)
    created = await admin.post(
        "/v1/channels", json={"code": code, "name": "Web store", "location_ids": [location["id"]]}
    )
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("ch_")
    assert body["code"] == code
    assert body["active"] is True
    assert body["version"] == 1
    assert body["location_ids"] == [location["id"]]

    fetched = await admin.get(f"/v1/channels/{body['id']}")
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'

    again = await admin.post("/v1/channels", json={"code": code, "name": "Other"})
    assert again.status_code == 409
    assert again.json()["code"] == "channel_code_taken"

    unknown = await admin.post(
        "/v1/channels", json={"code": unique("x"), "name": "x", "location_ids": ["loc_nope"]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_location"

    unknown = await admin.post(
        "/v1/channels", json={"code": unique("x"), "name": "x", "location_ids": ["loc_nope"]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "unknown_location"


async def test_invalid_bodies_are_422_with_field_errors(admin: httpx.AsyncClient) -> None:
    cases = [
        ({"code": "Web Store!", "name": "x"}, ["body", "code"]),
        ({"code": "ok", "name": ""}, ["body", "name"]),
        ({"code": "ok", "name": "x", "status": "vip"}, ["body", "status"]),  # unknown field
        ({"code": "ok", "name": "x", "id": "ch_mine"}, ["body", "id"]),  # no mass assignment
        ({"name": "x"}, ["body", "code"]),
        ({"code": "ok", "name": "x", "active": "maybe"}, ["body", "active"]),
    ]
    for body, loc in cases:
        response = await admin.post("/v1/channels", json=body)
        assert response.status_code == 422, body
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert loc in [e["loc"] for e in problem["errors"]], problem


async def test_patch_with_if_match(admin: httpx.AsyncClient) -> None:
    channel = await create_channel(admin)
    url = f"/v1/channels/{channel['id']}"

    updated = await admin.patch(url, json={"name": "Renamed"}, headers={"If-Match": '"1"'})
    assert updated.status_code == 200
    assert updated.json()["name"] == "Renamed"
    assert updated.json()["version"] == 2
    assert updated.headers["etag"] == '"2"'

    stale = await admin.patch(url, json={"active": False}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_mismatch"
    assert stale.json()["current_version"] == 2
    assert (await admin.get(url)).json()["active"] is True  # nothing changed

    unconditional = await admin.patch(url, json={"active": False})
    assert unconditional.status_code == 200
    assert unconditional.json()["version"] == 3

    bad = await admin.patch(url, json={"name": "x"}, headers={"If-Match": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error"
    assert (await admin.patch(url, json={"code": "new"})).status_code == 422  # code is fixed
    assert (await admin.patch("/v1/channels/ch_nope", json={"name": "x"})).status_code == 404


async def test_concurrent_patches_with_the_same_version_one_wins(admin: httpx.AsyncClient) -> None:
    channel = await create_channel(admin)
    url = f"/v1/channels/{channel['id']}"
    responses = await asyncio.gather(
        *(admin.patch(url, json={"name": f"n{i}"}, headers={"If-Match": '"1"'}) for i in range(8))
    )
    assert sorted(r.status_code for r in responses) == [200] + [412] * 7


async def test_pagination_walks_every_row_once_newest_first(admin: httpx.AsyncClient) -> None:
    created = [(await create_channel(admin))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await admin.get("/v1/channels", params=params)).json()
        assert len(page["data"]) <= 2
        seen.extend(c["id"] for c in page["data"])
        # A row inserted mid-walk is newer than the cursor: it never shifts the pages.
        if len(seen) == 2:
            await create_channel(admin)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    assert [i for i in seen if i in created] == list(reversed(created))


async def test_bad_paging_parameters_are_422(admin: httpx.AsyncClient) -> None:
    for params in ({"limit": 201}, {"limit": 0}, {"limit": "ten"}, {"cursor": "garbage"}):
        response = await admin.get("/v1/channels", params=params)
        assert response.status_code == 422, params
    response = await admin.get("/v1/channels", params={"cursor": "garbage"})
    assert response.json()["code"] == "invalid_cursor"


async def test_a_stale_if_match_names_what_it_was_about(admin: httpx.AsyncClient) -> None:
    """The 412's detail named no resource for products ("The product with sku is at
    version 2, not 1"), found with curl while reading the API conventions."""
    product = await create_product(admin)
    channel = await create_channel(admin)
    location = await create_location(admin)
    for url, named in [
        (f"/v1/products/{product['sku']}", f"The product with sku {product['sku']} is"),
        (f"/v1/channels/{channel['id']}", f"The channel with id {channel['id']} is"),
        (f"/v1/locations/{location['id']}", f"The location {location['id']} is"),
    ]:
        assert (await admin.patch(url, json={"name": "Renamed"})).status_code == 200
        stale = await admin.patch(url, json={"name": "Again"}, headers={"If-Match": '"1"'})
        assert stale.status_code == 412
        assert stale.json()["detail"] == f"{named} at version 2, not 1; reload and retry."
