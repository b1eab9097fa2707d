"""A country is an officially assigned ISO 3166-1 alpha-2 code, in any case, stored
upper-case; anything else is a 422 `validation_error` naming the field (SPEC §3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from oms_api.schemas.common import COUNTRY_CODES
from tests.factories import Shop, create_location, order_body, place, unique

UNASSIGNED = ["XX", "ZZ", "xx", "UK", "EU", "XK", "AA", "QM"]


def _address(country: Any) -> dict[str, Any]:
    return {"line1": "1 Main St", "city": "Somewhere", "country": country}


def _assert_refused(response: httpx.Response, loc: list[str | int]) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error", problem
    assert [e["loc"] for e in problem["errors"]] == [loc], problem
    assert "ISO 3166-1 alpha-2" in problem["errors"][0]["msg"], problem


def test_the_table_is_the_iso_list() -> None:
    assert len(COUNTRY_CODES) >= 249  # 249 assigned in 2026
    assert {"DE", "GB", "US", "KP", "SS", "CW", "BQ", "AQ", "PS"} <= COUNTRY_CODES
    assert not {"XX", "ZZ", "UK", "EU", "XK", "AN", "YU", "CS"} & COUNTRY_CODES  # AN, YU, CS: gone


@pytest.mark.parametrize("code", UNASSIGNED)
async def test_unassigned_codes_are_refused_wherever_a_country_goes(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, code: str
) -> None:
    customer = {"email": f"{unique('c')}@example.com", "addresses": [_address(code)]}
    _assert_refused(
        await admin.post("/v1/customers", json=customer), ["body", "addresses", 0, "country"]
    )
    location = await create_location(admin)
    _assert_refused(
        await admin.patch(f"/v1/locations/{location['id']}", json={"address": _address(code)}),
        ["body", "address", "country"],
    )
    _assert_refused(
        await admin.put("/v1/settings/risk", json={"blocked_countries": ["DE", code]}),
        ["body", "blocked_countries", 1],
    )
    shop = await Shop.open(admin)
    product = await shop.product(admin, 1)
    body = order_body(None, [(product["sku"], 1)], billing_address=_address(code))
    _assert_refused(
        await place(client, body, headers=shop.headers), ["body", "billing_address", "country"]
    )


@pytest.mark.parametrize("code", ["D", "DEU", "D1", "", "1", "É", 49, None])
async def test_what_is_no_code_at_all_is_refused(admin: httpx.AsyncClient, code: Any) -> None:
    customer = {"email": f"{unique('c')}@example.com", "addresses": [_address(code)]}
    response = await admin.post("/v1/customers", json=customer)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [e["loc"] for e in problem["errors"]] == [["body", "addresses", 0, "country"]]


async def test_real_codes_are_taken_in_any_case_and_stored_upper_case(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    customer = {
        "email": f"{unique('c')}@example.com",
        "addresses": [_address("DE"), {**_address("gb"), "line1": "2 High St"}],
    }
    made = await admin.post("/v1/customers", json=customer)
    assert made.status_code == 201, made.text
    assert sorted(a["country"] for a in made.json()["addresses"]) == ["DE", "GB"]

    location = await create_location(admin)
    patched = await admin.patch(
        f"/v1/locations/{location['id']}", json={"address": _address(" fr ")}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["address"]["country"] == "FR"

    shop = await Shop.open(admin)
    product = await shop.product(admin, 1)
    body = order_body(None, [(product["sku"], 1)], shipping_address=_address("de"))
    placed = await place(client, body, headers=shop.headers)
    assert placed.status_code == 201, placed.text
    assert placed.json()["shipping_address"]["country"] == "DE"

    before = (await admin.get("/v1/settings/risk")).json()
    try:
        put = await admin.put("/v1/settings/risk", json={"blocked_countries": ["kp", "Ru"]})
        assert put.status_code == 200, put.text
        assert put.json()["blocked_countries"] == ["KP", "RU"]
    finally:
        restored = await admin.put("/v1/settings/risk", json=before)
        assert restored.status_code == 200, restored.text
