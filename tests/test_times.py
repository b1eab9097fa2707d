"""Every time the API takes carries an offset and lies within years 1-9999 once in UTC;
anything else is a 422 `validation_error` naming the input, never a 500 (SPEC §3).

The first test finds the inputs itself, in the OpenAPI document the app serves: a time
input added later is covered without being listed here."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import orjson
import pytest

from oms_api.domain.times import as_utc
from tests.factories import bearer, create_key, create_location, unique
from tests.test_fulfilment import Warehouse, _through

# (value, why it is refused). The first two are valid RFC 3339 text whose UTC value leaves
# the calendar Python and the driver can hold; they answered 500 before.
BAD_TIMES = [
    ("0001-01-01T00:00:00+14:00", "before year 1 in UTC"),
    ("9999-12-31T23:59:59-01:00", "after year 9999 in UTC"),
    ("2026-11-30T18:04:00", "no offset"),
    ("2026-11-30T18:04", "no offset, no seconds"),
    ("0000-06-01T00:00:00Z", "year 0"),
    ("10000-01-01T00:00:00Z", "year 10000"),
    ("2026-02-30T00:00:00Z", "no such day"),
    ("1764525840", "seconds since the epoch"),
    ("2026-11-30T18:04:00+0100", "an offset without its colon (ISO 8601's basic form)"),
    ("", "empty"),
]
BAD_BODY_TIMES = [
    *BAD_TIMES,
    ("2026-11-30", "a bare date (only query filters take one)"),
    # Stored, the calendar's first and last microseconds would come back as the driver's
    # -infinity and infinity: refused in bodies (a filter's bound may be either).
    ("0001-01-01T00:00:00Z", "the first microsecond: the driver's -infinity"),
    ("9999-12-31T23:59:59.999999Z", "the last microsecond: the driver's infinity"),
]
BAD_BODY_VALUES: list[Any] = [1764525840, 1764525840.5, True, None, ["2026-11-30T18:04:00Z"]]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _takes_time(document: dict[str, Any], schema: dict[str, Any]) -> bool:
    schema = _resolve(document, schema)
    if schema.get("format") == "date-time":
        return True
    return any(_takes_time(document, s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


def _time_paths(
    document: dict[str, Any], schema: dict[str, Any], at: tuple[str | int, ...] = ()
) -> list[tuple[str | int, ...]]:
    """Where in a body a time goes: paths of property names (0 for an array's item)."""
    schema = _resolve(document, schema)
    if schema.get("format") == "date-time":
        return [at]
    found: list[tuple[str | int, ...]] = []
    for sub in schema.get("anyOf", []) + schema.get("oneOf", []) + schema.get("allOf", []):
        found += _time_paths(document, sub, at)
    for name, sub in schema.get("properties", {}).items():
        found += _time_paths(document, sub, (*at, name))
    if "items" in schema:
        found += _time_paths(document, schema["items"], (*at, 0))
    if isinstance(schema.get("additionalProperties"), dict):
        found += _time_paths(document, schema["additionalProperties"], (*at, "key"))
    return sorted(set(found), key=str)


def _body_example(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    refs = [s for s in schema.get("anyOf", [schema]) if "$ref" in s]
    examples = _resolve(document, refs[0]).get("examples") or [{}]
    return copy.deepcopy(dict(examples[0]))


def _put(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head == 0:
        items = body if isinstance(body, list) and body else [{}]
        return [_put(items[0], rest, value)]
    holder = dict(body) if isinstance(body, dict) else {}
    holder[head] = _put(holder.get(head, {}), rest, value)
    return holder


def time_inputs(document: dict[str, Any]) -> list[tuple[str, str, str, tuple[str | int, ...]]]:
    """(method, path, "query" | "body", where) of every input that takes a time."""
    found = []
    for path, item in document["paths"].items():
        for method, op in item.items():
            for param in op.get("parameters", []):
                if _takes_time(document, param["schema"]):
                    found.append((method, path, param["in"], (param["name"],)))
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                for where in _time_paths(document, body["schema"]):
                    found.append((method, path, "body", where))
    return found


def _url(path: str) -> str:
    return path.replace("{", "").replace("}", "")  # `{order_id}` -> `order_id`: no such one


def _assert_refused(response: httpx.Response, loc: list[str | int], sent: Any) -> None:
    what = (response.request.method, response.request.url.path, loc, sent)
    assert response.status_code == 422, (what, response.text)
    assert response.headers["content-type"] == "application/problem+json", what
    problem = response.json()
    assert problem["code"] == "validation_error", (what, problem)
    assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), (what, problem)


async def test_every_time_input_refuses_times_without_offset_or_outside_the_calendar(
    admin: httpx.AsyncClient,
) -> None:
    document = (await admin.get("/openapi.json")).json()
    inputs = time_inputs(document)
    where = {(method, path, part, at) for method, path, part, at in inputs}
    # the walk sees the time inputs known today (and any added later)
    assert {
        ("get", "/v1/orders", "query", ("created_after",)),
        ("get", "/v1/orders", "query", ("created_before",)),
        ("post", "/v1/shipments/{shipment_id}/tracking", "body", ("occurred_at",)),
        ("post", "/v1/locations/{location_id}/pickups", "body", ("ready_at",)),
    } <= where, inputs
    for method, path, part, at in inputs:
        if part == "body":
            op = document["paths"][path][method]
            schema = op["requestBody"]["content"]["application/json"]["schema"]
            example = _body_example(document, schema)
            for value in [text for text, _ in BAD_BODY_TIMES] + BAD_BODY_VALUES:
                response = await admin.request(method, _url(path), json=_put(example, at, value))
                _assert_refused(response, ["body", *at], value)
        else:
            assert part == "query", (path, part)
            for value, _ in BAD_TIMES:
                response = await admin.request(method, _url(path), params={at[0]: value})
                _assert_refused(response, ["query", at[0]], value)


async def test_times_at_the_calendar_edges_are_kept_or_refused_cleanly(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 5, weight_grams=100)
    order = await wh.order(client, [(product["sku"], 1)])
    shipment = (await wh.post(client, f"/v1/orders/{order['id']}/allocate")).json()["data"][0]
    await _through(client, wh, shipment["id"], "pick", "pack", "ship", carrier="UPS")
    track = f"/v1/shipments/{shipment['id']}/tracking"
    # A carrier's update at the calendar's edges is refused as a time it cannot have
    # happened at (docs/fulfilment.md), never a 500; one with an offset and a fraction is
    # kept and read back in UTC.
    for sent, code in (
        ("0001-01-01T00:00:00.000001Z", "tracking_before_shipment"),
        ("0001-01-01T13:59:59-10:00", "tracking_before_shipment"),  # year 1 in UTC after all
        ("9999-12-31T23:59:59.999998Z", "tracking_in_future"),
        ("9999-12-31T22:59:59.999998-01:00", "tracking_in_future"),
    ):
        response = await wh.post(client, track, {"status": "in_transit", "occurred_at": sent})
        assert (response.status_code, response.json()["code"]) == (422, code), sent
    local = (datetime.now(UTC) - timedelta(minutes=5)).astimezone(timezone(timedelta(hours=1)))
    sent = local.replace(microsecond=500000).isoformat()  # e.g. …T19:04:00.500000+01:00
    response = await wh.post(client, track, {"status": "out_for_delivery", "occurred_at": sent})
    assert response.status_code == 201, (sent, response.text)
    tracking = await wh.get(client, f"/v1/orders/{order['id']}/tracking")
    assert tracking.status_code == 200, tracking.text
    [updates] = [s["tracking"] for s in tracking.json()["shipments"]]
    in_utc = local.replace(microsecond=500000).astimezone(UTC)
    assert [u["occurred_at"] for u in updates] == [in_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")]
    events = await wh.get(client, f"/v1/orders/{order['id']}/events")
    assert events.status_code == 200, events.text

    location = wh.shop.locations[0]["id"]
    ops = bearer((await create_key(admin, ["orders:read", "fulfillment:write"]))["secret"])
    # The calendar's last microsecond, with an offset: read (no overflow), then refused as a
    # pickup no carrier books (more than 30 days ahead).
    body = {"carrier": "UPS", "ready_at": "9999-12-31T22:59:59.999998-01:00"}
    far = await client.post(f"/v1/locations/{location}/pickups", json=body, headers=ops)
    assert (far.status_code, far.json()["code"]) == (422, "ready_at_too_far")
    assert "9999-12-31T23:59:59.999998+00:00" in far.json()["detail"]

    other = await create_location(admin)
    early = {"carrier": "UPS", "ready_at": "0001-01-01T00:00:00.000001Z"}
    past = await client.post(f"/v1/locations/{other['id']}/pickups", json=early, headers=ops)
    assert (past.status_code, past.json()["code"]) == (422, "ready_at_in_past")


async def test_order_filters_take_a_time_with_offset_or_a_bare_date(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 5)
    order = await wh.order(client, [(product["sku"], 1)])
    created = as_utc(datetime.fromisoformat(order["created_at"]))
    day = created.date().isoformat()
    plus_14 = created.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+14:00"  # 14 h before it in UTC

    async def numbers(**params: str) -> list[int]:
        response = await client.get("/v1/orders", params=params, headers=wh.shop.headers)
        assert response.status_code == 200, (params, response.text)
        return [o["number"] for o in response.json()["data"]]

    mine = [order["number"]]
    assert await numbers(created_after=day) == mine  # that day's start in UTC
    assert await numbers(created_before=day) == []
    assert await numbers(created_after="0001-01-01T00:00:00.000001Z") == mine
    assert await numbers(created_after="0001-01-02") == mine
    # A bound is compared, never stored: the calendar's very first and last instants too.
    assert await numbers(created_after="0001-01-01") == mine
    assert await numbers(created_after="0001-01-01T00:00:00Z") == mine
    assert await numbers(created_after="9999-12-31T23:59:59.999999Z") == []
    assert await numbers(created_before="9999-12-31T23:59:59.999999Z") == mine
    assert await numbers(created_before="0001-01-01T00:00:00Z") == []
    assert await numbers(created_before="9999-12-31T23:59:59.999998Z") == mine
    assert await numbers(created_before="9999-12-31") == mine
    assert await numbers(created_after=plus_14) == mine
    assert await numbers(created_before=plus_14) == []
    assert await numbers(created_after=order["created_at"]) == mine  # the bound is inclusive


@pytest.mark.parametrize(
    "forged",
    [
        ["0001-01-01T00:00:00+14:00", "cus_x"],
        ["9999-12-31T23:59:59-01:00", "cus_x"],
        ["2026-11-30T18:04:00", "cus_x"],
    ],
)
async def test_a_cursor_holding_an_unusable_time_is_refused(
    admin: httpx.AsyncClient, forged: list[str]
) -> None:
    """Found with the fix: the customer list pages by time, and a forged cursor whose time
    leaves the calendar in UTC was a 500 when the driver converted it."""
    cursor = base64.urlsafe_b64encode(orjson.dumps(forged)).decode().rstrip("=")
    response = await admin.get("/v1/customers", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_cursor"
    made = await admin.post("/v1/customers", json={"email": f"{unique('c')}@example.com"})
    assert made.status_code == 201, made.text
    page = await admin.get("/v1/customers", params={"limit": 1})
    follow = await admin.get("/v1/customers", params={"cursor": page.json()["next_cursor"]})
    assert follow.status_code == 200, follow.text  # the cursors it gives still work
