"""The channel fence, attacked from channel B with a key holding every scope but `admin`.

Generated from the app's OpenAPI document, so a route added later is checked on its own:

- every operation with an id in its path, given channel A's resource, answers 404 — or,
  for what the channels share, what the small table `SHARED` says (403 `channel_bound_key`
  for its writes). An operation the test does not recognise fails it;
- every list's id filters and cursors, given channel A's values, answer exactly as made-up
  ones do (nothing of another channel is usable as input);
- no code outside `services/scoping.py` writes a channel predicate: every source in `src/`
  and `migrations/` is read for any comparison involving a `channel_id`, and any branch on
  one, against a commented allow-list (`FENCE_ALLOWED`); the scan is itself tested on
  sample lines it must find and lines it must pass.
"""

from __future__ import annotations

import ast
import base64
import io
import re
import tokenize
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from oms_api.domain.access import Scope
from oms_api.services.notifier import Notifier
from tests.factories import Shop, bearer, create_key, order_body, place, unique

# A pickup time carriers book (within 30 days: `domain.pickups.READY_AT_HORIZON`).
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).isoformat()

ROOT = Path(__file__).resolve().parents[1]
ALL_BUT_ADMIN = sorted(s.value for s in Scope if s is not Scope.ADMIN)
PAID = {"method": "card", "status": "paid"}
SHIP_TO = {"name": "Ada Lovelace", "line1": "12 St James Sq", "city": "London",
           "postal_code": "SW1Y 4JH", "country": "GB"}  # fmt: skip

# Path parameters naming a channel-owned resource: given channel A's, B gets 404.
CHANNEL_OWNED = {"order_id", "shipment_id", "return_id", "customer_id", "endpoint_id",
                 "delivery_id", "notification_id"}  # fmt: skip

CHANNEL_BOUND = (403, "channel_bound_key")
NOT_FOUND = (404, "not_found")
# What the channels share, operation by operation: what B's key gets given A's. Writes are
# refused to every channel-bound key; reads of locations and products are allowed (and show
# B only its own channel's stock and shipments); pickups and keys are not B's to see.
SHARED: dict[tuple[str, str], tuple[int, str | None]] = {
    ("GET", "/v1/locations/{location_id}"): (200, None),
    ("PATCH", "/v1/locations/{location_id}"): CHANNEL_BOUND,
    ("GET", "/v1/locations/{location_id}/pick-list"): (200, None),
    ("GET", "/v1/locations/{location_id}/pick-list.pdf"): (200, None),
    ("POST", "/v1/locations/{location_id}/pickups"): CHANNEL_BOUND,
    ("GET", "/v1/products/{sku}"): (200, None),
    ("PATCH", "/v1/products/{sku}"): CHANNEL_BOUND,
    ("GET", "/v1/inventory/{sku}"): (200, None),
    ("GET", "/v1/channels/{channel_id}"): NOT_FOUND,
    ("PATCH", "/v1/channels/{channel_id}"): CHANNEL_BOUND,
    ("GET", "/v1/channels/{channel_id}/notifications"): NOT_FOUND,
    ("PUT", "/v1/channels/{channel_id}/notifications"): CHANNEL_BOUND,
    ("GET", "/v1/api-keys/{key_id}"): (403, "missing_scope"),
    ("DELETE", "/v1/api-keys/{key_id}"): CHANNEL_BOUND,
    ("GET", "/v1/pickups/{pickup_id}"): NOT_FOUND,
    ("POST", "/v1/pickups/{pickup_id}/collected"): CHANNEL_BOUND,
    ("POST", "/v1/pickups/{pickup_id}/cancel"): CHANNEL_BOUND,
    ("GET", "/v1/pickups/{pickup_id}/manifest"): NOT_FOUND,
    # Purchasing sees every location's stock together: a channel-bound key neither reads
    # nor changes a replenishment request.
    ("GET", "/v1/replenishments/{replenishment_id}"): CHANNEL_BOUND,
    ("POST", "/v1/replenishments/{replenishment_id}/receive"): CHANNEL_BOUND,
    ("POST", "/v1/replenishments/{replenishment_id}/cancel"): CHANNEL_BOUND,
}
# Shared writes without an id in the path (and the list of replenishment requests): refused
# to B's key just the same.
SHARED_CREATES = {
    ("GET", "/v1/replenishments"),
    ("POST", "/v1/locations"),
    ("POST", "/v1/products"),
    ("POST", "/v1/channels"),
    ("POST", "/v1/api-keys"),
    ("PUT", "/v1/settings/risk"),
    ("PUT", "/v1/settings/returns"),
    ("PUT", "/v1/settings/fulfillment"),
}


@dataclass
class World:
    """Channel A's resources of every kind, and the keys of A and B."""

    ids: dict[str, str]
    a: dict[str, str]
    b: dict[str, str]
    line_id: str
    order: dict[str, Any]
    customer_email: str
    rma_number: str
    event_id: str
    channel_code: str


def _bodies(w: World) -> dict[tuple[str, str], Any]:
    """A valid body for each operation that needs one, so that a 404 is the fence's answer
    and never the body's."""
    location, line = w.ids["location_id"], w.line_id
    return {
        ("POST", "/v1/orders/{order_id}/payments"): {"kind": "capture", "amount": 100},
        ("POST", "/v1/orders/{order_id}/shipments"): {
            "location_id": location, "lines": [{"line_id": line, "quantity": 1}]},
        ("POST", "/v1/shipments/{shipment_id}/tracking"): {
            "status": "in_transit", "occurred_at": datetime.now(UTC).isoformat()},
        ("POST", "/v1/returns/{return_id}/receive"): {
            "location_id": location,
            "lines": [{"line_id": line, "quantity": 1, "condition": "resellable"}]},
        ("POST", "/v1/locations/{location_id}/pickups"): {
            "carrier": "UPS", "ready_at": TOMORROW},
        ("PATCH", "/v1/locations/{location_id}"): {"name": "Renamed by B"},
        ("PATCH", "/v1/products/{sku}"): {"name": "Renamed by B"},
        ("PATCH", "/v1/channels/{channel_id}"): {"name": "Renamed by B"},
        ("PUT", "/v1/channels/{channel_id}/notifications"): {"enabled": False},
        ("PATCH", "/v1/customers/{customer_id}"): {"accepts_follow_up": False},
        ("POST", "/v1/locations"): {"code": unique("loc"), "name": "B's", "kind": "warehouse"},
        ("POST", "/v1/products"): {"sku": unique("SKU").upper(), "name": "B's",
                                   "unit_price": 100, "currency": "EUR"},
        ("POST", "/v1/channels"): {"code": unique("ch"), "name": "B's"},
        ("POST", "/v1/api-keys"): {"name": "B's", "scopes": ["orders:read"]},
        ("PUT", "/v1/settings/risk"): {},
        ("PUT", "/v1/settings/returns"): {"window_days": 1},
        ("PUT", "/v1/settings/fulfillment"): {"auto_allocate": True},
        ("POST", "/v1/replenishments/{replenishment_id}/receive"): {
            "location_id": location, "quantity": 1},
    }  # fmt: skip


async def _ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


@pytest.fixture(scope="module")
async def world(app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient) -> World:
    shop_a, shop_b = await Shop.open(admin), await Shop.open(admin)
    a = bearer((await create_key(admin, ALL_BUT_ADMIN, shop_a.channel["id"]))["secret"])
    b = bearer((await create_key(admin, ALL_BUT_ADMIN, shop_b.channel["id"]))["secret"])
    location = shop_a.locations[0]["id"]
    # Its first order takes it to its reorder point: a replenishment request opens.
    product = await shop_a.product(admin, 20, reorder_point=18, reorder_quantity=10)
    product_b = await shop_b.product(admin, 5)  # B has stock of its own
    await shop_a.product(admin, 3)  # a second level at A's location
    endpoint = await _ok(
        await client.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/fence", "events": ["*"]},
            headers=a,
        ), 201,
    )  # fmt: skip
    email = f"{unique('only-a')}@example.com"
    placed = await place(
        client,
        order_body(None, [(product["sku"], 2)], shipping_address=SHIP_TO,
                   payment=PAID, external_id=unique("ext"),
                   customer={"email": email, "name": "Known to A only"}),
        headers=a,
    )  # fmt: skip
    order = await _ok(placed, 201)
    line = order["lines"][0]["id"]
    shipment = (await _ok(await client.post(f"/v1/orders/{order['id']}/allocate", headers=a), 201))[
        "data"
    ][0]
    await _ok(await client.post(f"/v1/shipments/{shipment['id']}/pick", headers=a))
    await _ok(
        await client.post(
            f"/v1/shipments/{shipment['id']}/pack", headers=a,
            json={"carrier": "UPS", "tracking_number": unique("1Z").upper(), "weight_grams": 100},
        )
    )  # fmt: skip
    await _ok(await client.post(f"/v1/shipments/{shipment['id']}/ship", headers=a))
    pickups: list[dict[str, Any]] = []
    for _ in range(2):  # two (the first cancelled, its parcel gathered again): a cursor's worth
        if pickups:
            await _ok(await admin.post(f"/v1/pickups/{pickups[-1]['id']}/cancel"))
        pickups.append(await _ok(
            await admin.post(
                f"/v1/locations/{location}/pickups",
                json={"carrier": "UPS", "ready_at": TOMORROW},
            ), 201,
        ))  # fmt: skip
    pickup = pickups[-1]
    rma = await _ok(
        await client.post(
            "/v1/returns", headers=a,
            json={"order_id": order["id"], "resolution": "refund",
                  "lines": [{"line_id": line, "quantity": 1, "reason": "size_or_fit"}]},
        ), 201,
    )  # fmt: skip
    deliveries = await _ok(
        await admin.get("/v1/webhook-deliveries", params={"endpoint_id": endpoint["id"]})
    )
    events = (await client.get(f"/v1/orders/{order['id']}/events", headers=a)).json()["data"]
    key_a = (await create_key(admin, ["orders:read"], shop_a.channel["id"]))["id"]
    replenishment = (
        await _ok(await admin.get("/v1/replenishments", params={"sku": product["sku"]}))
    )["data"][0]
    # More of A's (every list of A's pages: its cursors are tried), and B's own business.
    # Two more endpoints: A's own key deletes the first when it checks the fixtures.
    for url in ("http://127.0.0.1:9/fence2", "http://127.0.0.1:9/fence3"):
        await _ok(
            await client.post(
                "/v1/webhook-endpoints", json={"url": url, "events": ["*"]}, headers=a
            ), 201,
        )  # fmt: skip
    await _ok(
        await client.post(
            "/v1/returns", headers=a,
            json={"order_id": order["id"], "resolution": "refund",
                  "lines": [{"line_id": line, "quantity": 1, "reason": "size_or_fit"}]},
        ), 201,
    )  # fmt: skip
    second = await _ok(
        await place(client, order_body(None, [(product["sku"], 1)], payment=PAID), headers=a), 201
    )
    await _ok(await client.post(f"/v1/orders/{second['id']}/allocate", headers=a), 201)
    await _ok(await place(client, order_body(None, [(product_b["sku"], 1)]), headers=b), 201)
    # A's customers are told (the notifier derives what was committed, none sent).
    notifier = Notifier(settings=app.state.settings, database=app.state.database)
    while await notifier.run_once():
        pass
    notification = (
        await _ok(await admin.get("/v1/notifications", params={"order_id": order["id"]}))
    )["data"][0]
    return World(
        ids={
            "order_id": order["id"], "shipment_id": shipment["id"], "return_id": rma["id"],
            "customer_id": order["customer_id"], "endpoint_id": endpoint["id"],
            "delivery_id": deliveries["data"][0]["id"], "location_id": location,
            "sku": product["sku"], "channel_id": shop_a.channel["id"], "key_id": key_a,
            "pickup_id": pickup["id"], "replenishment_id": replenishment["id"],
            "notification_id": notification["id"],
        },
        a=a, b=b, line_id=line, order=order, customer_email=email, rma_number=rma["number"],
        event_id=events[0]["id"], channel_code=shop_a.channel["code"],
    )  # fmt: skip


# Routes the OpenAPI document leaves out by design: FastAPI's own pages about it.
UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/docs-assets"}


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """Every operation the app routes (not only those its OpenAPI document shows), with
    its operation from the document: a route hidden from it (`include_in_schema=False`)
    fails here, so no route escapes the tests generated from this."""
    paths = app.openapi()["paths"]
    found, hidden = [], []
    for context in iter_route_contexts(app.routes):
        # As the document names it: `{sku:path}` (a parameter that takes `/`) is `{sku}`.
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", str(context.path))
        if not isinstance(context.original_route, APIRoute):
            if path not in UNDOCUMENTED:
                hidden.append(f"{type(context.original_route).__name__} {path}")
            continue
        for method in sorted(context.methods or ()):
            operation = paths.get(path, {}).get(method.lower())
            if operation is None:
                if path not in UNDOCUMENTED:
                    hidden.append(f"{method} {path}")
                continue
            found.append((method, path, operation))
    assert not hidden, f"routes the OpenAPI document does not show: {hidden}"
    documented = {(m.upper(), p) for p, item in paths.items() for m in item}
    assert {(m, p) for m, p, _ in found} == documented
    return found


def test_a_route_the_document_does_not_show_fails_the_generated_tests() -> None:
    hidden = FastAPI()
    router = APIRouter(prefix="/v1")

    @router.get("/orders/{order_id}/secret", include_in_schema=False)
    async def secret(order_id: str) -> dict[str, str]:
        return {}

    @router.get("/orders/{order_id}")
    async def shown(order_id: str) -> dict[str, str]:
        return {}

    hidden.include_router(router)
    with pytest.raises(AssertionError, match=re.escape("GET /v1/orders/{order_id}/secret")):
        _operations(hidden)
    hidden_docs = FastAPI()
    hidden_docs.include_router(router, include_in_schema=False)
    with pytest.raises(AssertionError, match=re.escape("GET /v1/orders/{order_id}")):
        _operations(hidden_docs)


def _path_params(path: str) -> list[str]:
    return re.findall(r"\{([^}]+)\}", path)


def _expected(method: str, path: str) -> tuple[int, str | None] | None:
    """What B's key gets given A's resource; None for an operation the test does not know."""
    if (method, path) in SHARED:
        return SHARED[(method, path)]
    if _path_params(path)[0] in CHANNEL_OWNED:
        return NOT_FOUND
    return None


async def _snapshot(admin: httpx.AsyncClient, w: World) -> list[Any]:
    """A's resources as the admin reads them."""
    paths = [
        f"/v1/orders/{w.ids['order_id']}", f"/v1/orders/{w.ids['order_id']}/events",
        f"/v1/shipments/{w.ids['shipment_id']}", f"/v1/returns/{w.ids['return_id']}",
        f"/v1/customers/{w.ids['customer_id']}", f"/v1/webhook-endpoints/{w.ids['endpoint_id']}",
        f"/v1/locations/{w.ids['location_id']}", f"/v1/products/{w.ids['sku']}",
        f"/v1/inventory/{w.ids['sku']}", f"/v1/channels/{w.ids['channel_id']}",
        f"/v1/api-keys/{w.ids['key_id']}", f"/v1/pickups/{w.ids['pickup_id']}",
        "/v1/settings/risk", "/v1/settings/returns", "/v1/settings/fulfillment",
        f"/v1/replenishments/{w.ids['replenishment_id']}",
    ]  # fmt: skip
    return [(p, (await admin.get(p)).json()) for p in paths]


async def test_every_operation_with_an_id_fences_another_channels_resource(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    bodies = _bodies(world)
    before = await _snapshot(admin, world)
    unknown, wrong, checked = [], [], []
    for method, path, operation in _operations(app):
        params = _path_params(path)
        if not params:
            continue
        expected = _expected(method, path)
        if expected is None or any(p not in world.ids for p in params):
            unknown.append(f"{method} {path}")
            continue
        needs_body = operation.get("requestBody", {}).get("required", False)
        if needs_body and (method, path) not in bodies:
            unknown.append(f"{method} {path} (no body)")
            continue
        url = path.format(**world.ids)
        response = await client.request(
            method, url, headers=world.b, json=bodies.get((method, path))
        )
        got = response.status_code
        code = response.json().get("code") if got >= 400 else None
        if (got, code) != expected:
            wrong.append(f"{method} {path}: {got} {code}, expected {expected}")
        checked.append((method, path, url))
    assert not unknown, (
        "operations this test does not recognise: fence them, then add their id to "
        f"CHANNEL_OWNED or the operation to SHARED (and a body to _bodies): {unknown}"
    )
    assert not wrong, wrong
    assert len(checked) >= 45
    assert await _snapshot(admin, world) == before, "channel B's requests changed channel A's"

    # The fixtures are right: A's own key is not told they are missing (GETs first, so that
    # the commands it then sends find what they act on).
    for method, path, url in sorted(checked, key=lambda c: (c[0] != "GET", c[0] == "DELETE")):
        if (method, path) in SHARED:
            continue
        response = await client.request(
            method, url, headers=world.a, json=bodies.get((method, path))
        )
        assert response.status_code < 500, (method, path, response.text)
        assert response.status_code != 404, (method, path, response.text)
        if response.status_code == 422:
            assert response.json()["code"] != "validation_error", (method, path, response.text)


async def test_shared_writes_refuse_channel_bound_keys_and_document_it(
    app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    bodies = _bodies(world)
    for method, path in SHARED_CREATES:
        response = await client.request(
            method, path, headers=world.b, json=bodies.get((method, path))
        )
        assert (response.status_code, response.json()["code"]) == CHANNEL_BOUND, (method, path)
    documented = {
        (method, path): operation["responses"]["403"]["description"]
        for method, path, operation in _operations(app)
        if "403" in operation["responses"]
    }
    writes = SHARED_CREATES | {op for op, answer in SHARED.items() if answer == CHANNEL_BOUND}
    for op in writes:
        assert "channel_bound_key" in documented[op], op
    others = {op for op in documented if op not in writes}
    assert not [op for op in others if "channel_bound_key" in documented[op]]


# Lists of what the channels share: their rows are B's to see, a cursor included (no cursor
# of theirs is "another channel's").
SHARED_LISTS = {"/v1/locations", "/v1/products", "/v1/replenishments"}
# Every other list's cursor is tried: one standing on a row of A's, against the same cursor
# on a made-up key. From A's own first page (`limit=1`; the world gives A two rows or more
# of each), or — for a list A's key cannot page — built on A's row as the API builds it.
CURSOR_LISTS = {
    "/v1/orders", "/v1/shipments", "/v1/returns", "/v1/customers", "/v1/inventory",
    "/v1/inventory/movements", "/v1/webhook-endpoints", "/v1/webhook-deliveries",
    "/v1/channels", "/v1/pickups", "/v1/api-keys", "/v1/notifications",
}  # fmt: skip
# Lists A's key cannot page, keyed by the row's id alone: A's key sees only its own channel;
# pickups are hidden from every channel-bound key; listing keys takes `admin`.
CURSOR_ON_A_ROW = {
    "/v1/channels": "channel_id", "/v1/pickups": "pickup_id", "/v1/api-keys": "key_id",
}  # fmt: skip
# Query parameters that name nothing of a channel (states, times, kinds, page size): every
# other one is an id input, and must be in `_id_inputs`.
NOT_IDS = {"status", "created_after", "created_before", "type", "carrier", "active", "limit",
           "kind", "from", "to", "group_by"}  # fmt: skip


def _made_up(value: str) -> str:
    """An id of the same shape that names nothing. It sorts right after `value`, so as a
    cursor's key it pages exactly as `value` would for anyone who cannot see `value`'s row:
    the only row between the two is that one."""
    return value + "0"


def _cursor_with_made_up_key(cursor: str) -> str:
    tag, values = orjson.loads(_b64(cursor))  # the list it names, the key's values
    values[-1] = _made_up(values[-1])
    return base64.urlsafe_b64encode(orjson.dumps([tag, values])).decode().rstrip("=")


def _id_inputs(w: World) -> dict[str, tuple[str, str]]:
    """Per query parameter naming something of a channel: (channel A's value, a made-up one)."""
    return {
        "order_id": (w.ids["order_id"], _made_up(w.ids["order_id"])),
        "customer_id": (w.ids["customer_id"], _made_up(w.ids["customer_id"])),
        "endpoint_id": (w.ids["endpoint_id"], _made_up(w.ids["endpoint_id"])),
        "location_id": (w.ids["location_id"], _made_up(w.ids["location_id"])),
        "sku": (w.ids["sku"], _made_up(w.ids["sku"])),
        "channel": (w.channel_code, _made_up(w.channel_code)),
        "external_id": (w.order["external_id"], _made_up(w.order["external_id"])),
        "q": (str(w.order["number"]), "999999999999"),
        "number": (w.rma_number, _made_up(w.rma_number)),
        "email": (w.customer_email, "made-up-" + w.customer_email),
        "after": (w.event_id, _made_up(w.event_id)),
    }


def _strip(response: httpx.Response, given: str) -> tuple[int, Any]:
    """Status and body, the value `given` (echoed in a detail or a cursor) and the
    request's own id and path left out."""
    body = orjson.loads(response.text.replace(given, "<given>"))
    if isinstance(body, dict):  # (and a report's time of reading)
        body = {
            k: v for k, v in body.items() if k not in ("instance", "request_id", "generated_at")
        }
    return response.status_code, body


async def _cursor_of_a(client: httpx.AsyncClient, admin: httpx.AsyncClient, w: World,
                       path: str) -> str:  # fmt: skip
    """A cursor standing on a row of A's in the list at `path`."""
    if path in CURSOR_ON_A_ROW:
        row = w.ids[CURSOR_ON_A_ROW[path]]
        # The list pages by id alone: the cursor the admin is given is its last row's id.
        page = await _ok(await admin.get(path, params={"limit": 1}))
        tag, values = orjson.loads(_b64(page["next_cursor"]))
        assert values == [page["data"][0]["id"]], path
        return base64.urlsafe_b64encode(orjson.dumps([tag, [row]])).decode().rstrip("=")
    page = await _ok(await client.get(path, params={"limit": 1}, headers=w.a))
    assert page["next_cursor"] is not None, f"{path}: A's key pages one row or none"
    return str(page["next_cursor"])


def _b64(cursor: str) -> bytes:
    return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))


async def test_another_channels_ids_and_cursors_answer_as_unknown_ones(
    app: FastAPI, admin: httpx.AsyncClient, client: httpx.AsyncClient, world: World
) -> None:
    inputs = _id_inputs(world)
    unknown, leaks, cursors, filters = [], [], set(), set()
    listed = set()
    for method, path, operation in _operations(app):
        if method != "GET" or _path_params(path) or not path.startswith("/v1/"):
            continue
        for param in operation.get("parameters", []):
            name = param["name"]
            if param["in"] != "query" or name in NOT_IDS:
                continue
            if name == "cursor":
                listed.add(path)
                if path in SHARED_LISTS:
                    continue
                cursor = await _cursor_of_a(client, admin, world, path)
                pairs = [(cursor, _cursor_with_made_up_key(cursor))]
                cursors.add(path)
            elif name in inputs:
                pairs = [inputs[name]]
                filters.add((path, name))
            else:
                unknown.append(f"{path}?{name}")
                continue
            for theirs, made_up in pairs:
                real = await client.get(path, params={name: theirs}, headers=world.b)
                fake = await client.get(path, params={name: made_up}, headers=world.b)
                if _strip(real, theirs) != _strip(fake, made_up):
                    leaks.append(f"{path}?{name}: {real.status_code} vs {fake.status_code}")
    assert not unknown, (
        f"query parameters this test does not know: add them to _id_inputs, or to NOT_IDS "
        f"if they name nothing: {unknown}"
    )
    assert not leaks, leaks
    assert listed == CURSOR_LISTS | SHARED_LISTS, "a list this test does not know"
    assert cursors == CURSOR_LISTS
    assert filters == {
        ("/v1/orders", "channel"), ("/v1/orders", "customer_id"), ("/v1/orders", "external_id"),
        ("/v1/orders", "q"), ("/v1/shipments", "location_id"), ("/v1/shipments", "order_id"),
        ("/v1/pickups", "location_id"), ("/v1/returns", "order_id"), ("/v1/returns", "number"),
        ("/v1/customers", "email"), ("/v1/inventory", "sku"), ("/v1/inventory", "location_id"),
        ("/v1/inventory/movements", "sku"), ("/v1/inventory/movements", "location_id"),
        ("/v1/webhook-deliveries", "endpoint_id"), ("/v1/events", "after"),
        ("/v1/replenishments", "sku"), ("/v1/notifications", "order_id"),
        ("/v1/reports/sales", "channel"), ("/v1/reports/fulfillment", "channel"),
        ("/v1/reports/returns", "channel"),
    }  # fmt: skip


async def test_another_channels_event_id_is_no_cursor(
    client: httpx.AsyncClient, world: World
) -> None:
    theirs = await client.get("/v1/events", params={"after": world.event_id}, headers=world.b)
    made_up = await client.get("/v1/events", params={"after": "evt_made_up"}, headers=world.b)
    assert theirs.status_code == made_up.status_code == 422
    assert theirs.json()["code"] == made_up.json()["code"] == "invalid_cursor"
    assert theirs.json()["errors"] == made_up.json()["errors"]
    assert theirs.json()["detail"] == f"No event with id {world.event_id}."
    # A's own key pages on from it.
    mine = await client.get("/v1/events", params={"after": world.event_id}, headers=world.a)
    assert mine.status_code == 200, mine.text


# The source scan. A channel predicate is any comparison involving a `channel_id` — in SQL
# (in a `.sql` file, or in any string literal of a Python source, adjacent literals and
# `+`-joined ones read as one text so that a predicate split across lines is still one) and
# in Python (an `ast.Compare`, a SQLAlchemy comparison method, `filter_by(channel_id=…)`) —
# and any branch on a channel id's truth (`if principal.channel_id:`). Everything in
# `src/` and `migrations/` is read; what may compare a channel id is `FENCE_ALLOWED`.
_CH = r"\w*channel_id\b'?"  # `o.channel_id`, `p_channel_id`, `o->>'channel_id'`
_SQL_OP = (
    r"(?:(?<![:<>!=])=(?![=>])|<>|!=|\bIS\s+(?:NOT\s+)?DISTINCT\s+FROM\b"
    r"|\b(?:NOT\s+)?IN\s*\(|\bIS\s+(?:NOT\s+)?NULL\b|\b(?:I?LIKE|BETWEEN)\b)"
)
SQL_PREDICATE = re.compile(
    rf"{_CH}\s*{_SQL_OP}"  # channel_id = $2 / = ANY($2) / IN (…) / IS NOT DISTINCT FROM …
    rf"|{_SQL_OP}\s*(?:\(\s*)?(?:SELECT\s+(?:DISTINCT\s+)?)?[\w.]*{_CH}"  # $2 = channel_id
    r"|\bANY\s*\(\s*[\w.]*channel_id",  # $2 = ANY(channel_ids)
    re.IGNORECASE,
)
_QUOTE = re.compile(r"^[rRbBuUfF]*('\'\'|\"\"\"|'|\")")
# SQLAlchemy's comparisons spelt as methods: `Order.channel_id.in_(…)`, `.is_(None)`, ….
_COMPARING_METHODS = {
    "in_", "not_in", "notin_", "is_", "is_not", "isnot", "is_distinct_from",
    "is_not_distinct_from", "isnot_distinct_from", "__eq__", "__ne__", "any_", "all_",
    "contains", "like", "ilike", "startswith", "endswith", "between", "op", "bool_op",
}  # fmt: skip

# What may compare a channel id outside the fence: (file, a piece of the line or None for
# the whole file, why). Each entry must still match something (a stale one fails).
FENCE_ALLOWED: list[tuple[str, str | None, str]] = [
    ("src/oms_api/services/scoping.py", None, "the fence itself"),
    # Join predicates: a row joined to its own channel (or its own orders), never the caller's.
    ("src/oms_api/services/order_documents.py", "JOIN channels c ON c.id = o.channel_id",
     "an order's channel code, joined"),
    ("src/oms_api/services/orders.py", "Channel.id == Order.channel_id",
     "the `channel` code filter joins the order's channel (the list is fenced above it)"),
    ("src/oms_api/services/report_summaries.py", "JOIN channels c ON c.id = o.channel_id",
     "an order's channel code, joined: the reports group and filter by it (fenced beside it)"),
    ("src/oms_api/services/reports.py", "JOIN channels c ON c.id = t.channel_id",
     "a lead-time summary row's channel code, joined: filtered by (fenced beside it)"),
    ("src/oms_api/services/reports.py", "JOIN channels c ON c.id = s.channel_id",
     "a summary row's channel code, joined: grouped and filtered by (fenced beside it)"),
    ("src/oms_api/services/reports.py", "JOIN channels c ON c.id = r.channel_id",
     "a returns summary row's channel code, joined (fenced beside it)"),
    ("src/oms_api/services/customers.py", "Channel.id == CustomerProfile.channel_id",
     "a profile's channel code, joined"),
    ("src/oms_api/services/customers.py", "o.channel_id = p.channel_id",
     "a profile's addresses from its own channel's orders (the profiles are fenced)"),
    ("src/oms_api/services/notifications.py", "ON s.channel_id = c.id",
     "a channel's notification settings, joined to it (the caller is checked before)"),
    # Writers: the channel a new row belongs to, never a read of another's.
    ("src/oms_api/sql/functions/oms_place_order.sql", "x.channel_id = o->>'channel_id'",
     "placement's own order, found again by (channel, external_id) after ON CONFLICT"),
    ("migrations/versions/0008_order_core.py", "x.channel_id = o->>'channel_id'",
     "frozen oms_place_order (as the .sql above)"),
    ("migrations/versions/0010_returns.py", "x.channel_id = o->>'channel_id'",
     "frozen oms_place_order (as the .sql above)"),
    ("migrations/versions/0011_place_order_every_column.py", "x.channel_id = o->>'channel_id'",
     "frozen oms_place_order (as the .sql above)"),
    ("migrations/versions/0018_lighter_order.py", "x.channel_id = o->>'channel_id'",
     "frozen oms_place_order (as the .sql above), installed and replaced"),
    ("migrations/versions/0019_fewer_records.py", "x.channel_id = o->>'channel_id'",
     "frozen oms_place_order (as the .sql above), installed and replaced"),
    ("src/oms_api/services/webhooks.py", "channel_id not in (None, principal.channel_id)",
     "a channel key registers endpoints of its own channel (the insert's channel)"),
    ("src/oms_api/services/webhooks.py", "if principal.channel_id is not None:",
     "the same: the new endpoint takes the caller's channel"),
    ("src/oms_api/services/webhooks.py", "elif channel_id is not None and await session.get(",
     "an unbound key names an existing channel for a new endpoint"),
    ("src/oms_api/services/webhooks.py", "WebhookEndpoint.channel_id.is_(None) if channel_id is None",
     "counting the new endpoint's channel's endpoints (the limit), its channel already decided"),
    ("src/oms_api/services/webhooks.py", "else WebhookEndpoint.channel_id == channel_id,",
     "the same count"),
    ("src/oms_api/services/webhooks.py", "f\"{'This channel has' if channel_id else 'The shop has'}",
     "the limit's message"),
    ("src/oms_api/services/customers.py", "& (CustomerProfile.channel_id == principal.channel_id),",
     "a channel key's If-Match: its own channel's profile (visibility checked first)"),
    ("src/oms_api/services/customers.py", "CustomerProfile.channel_id.is_distinct_from(principal.channel_id))",
     "a changed answer moves the other channels' versions on (a write, nothing read back)"),
    ("src/oms_api/services/access.py", "if channel_id is not None and await session.get(",
     "an unbound key names an existing channel for a new key"),
    ("src/oms_api/domain/access.py", "if channel_id is not None and Scope.ADMIN in scopes",
     "a channel-bound key cannot hold `admin` (the grant rule)"),
    ("src/oms_api/cli.py", "if channel_id is None:", "`create-key --channel`: unknown code"),
    ("src/oms_api/services/channels.py", "where=Channel.id == channel_id",
     "the channel named in the path: shared, changed by unbound keys only"),
    # Webhook fan-out: an event reaches the endpoints of its own channel and the unbound ones.
    ("src/oms_api/sql/functions/oms_fan_out_events.sql",
     "(ep.channel_id IS NULL OR ep.channel_id = e.channel_id)", "the fan-out's endpoint join"),
    ("migrations/versions/0003_webhooks.py",
     "(ep.channel_id IS NULL OR ep.channel_id = e.channel_id)", "frozen fan-out (as above)"),
    # A data migration: the customers' old channel becomes a profile.
    ("migrations/versions/0007_customer_profiles.py", "WHERE channel_id IS NOT NULL",
     "customers with a channel get a profile (and back)"),
    ("migrations/versions/0007_customer_profiles.py", "SET channel_id = p.channel_id",
     "the downgrade gives customers back their first profile's channel"),
    # What the caller's binding decides beside the fence, not which channel's rows it reads.
    ("src/oms_api/api/deps.py", "if unbound and principal.channel_id is not None:",
     "`require_unbound`: shared things are changed by unbound keys only (403)"),
    ("src/oms_api/services/placement.py", "if principal.channel_id is None and named is None:",
     "an unbound key must name the order's channel"),
    ("src/oms_api/services/inventory.py", "if principal.channel_id is None:",
     "`at_visible_locations`: the locations a channel sells from (locations are shared)"),
    ("src/oms_api/services/inventory.py", "if principal.channel_id is not None:",
     "an unknown location: 404 to a channel key (as one it may not use), else 422; and the "
     "ledger's columns for a channel key (the causes are fenced through scope_to_channel)"),
    ("src/oms_api/services/customers.py", "if principal.channel_id is not None:",
     "customers are fenced by shape: a channel reads them through its profiles"),
    ("src/oms_api/services/customers.py", "if principal.channel_id is None:",
     "the same: the unbound key reads the business's record, a channel key its profile"),
]  # fmt: skip


def _string_runs(source: str) -> list[list[tuple[str, int]]]:
    """The source's string literals, adjacent ones (and ones joined by `+`) as one run:
    each piece without its quotes, with the line it starts on."""
    runs: list[list[tuple[str, int]]] = [[]]
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING:
            quote = _QUOTE.match(token.string)
            assert quote, token
            body = token.string[quote.end() : len(token.string) - len(quote.group(1))]
            runs[-1].append((body, token.start[0]))
        elif token.type in (tokenize.NL, tokenize.COMMENT) or token.string == "+":
            continue
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _names_a_channel_id(node: ast.AST) -> bool:
    return any(
        (isinstance(n, ast.Attribute) and n.attr.endswith("channel_id"))
        or (isinstance(n, ast.Name) and n.id.endswith("channel_id"))
        or (isinstance(n, ast.Constant) and n.value == "channel_id")
        for n in ast.walk(node)
    )


def _truth_tests(test: ast.expr) -> list[ast.expr]:
    """The operands of a condition whose truth it takes (`a and not b`: a, b)."""
    if isinstance(test, ast.BoolOp):
        return [t for v in test.values for t in _truth_tests(v)]
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _truth_tests(test.operand)
    return [test]


def _python_predicates(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and _names_a_channel_id(node):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            method, of = node.func.attr, node.func.value
            compares = method in _COMPARING_METHODS and (
                _names_a_channel_id(of) or any(_names_a_channel_id(a) for a in node.args)
            )
            filters = method == "filter_by" and any(
                (k.arg or "").endswith("channel_id") for k in node.keywords
            )
            if compares or filters:
                lines.append(node.lineno)
        conditions = []
        if isinstance(node, (ast.If, ast.IfExp, ast.While, ast.Assert)):
            conditions = [node.test]
        elif isinstance(node, ast.comprehension):
            conditions = list(node.ifs)
        for condition in conditions:
            lines += [
                t.lineno for t in _truth_tests(condition)
                if isinstance(t, (ast.Attribute, ast.Name)) and _names_a_channel_id(t)
            ]  # fmt: skip
    return lines


def channel_predicates(text: str, *, sql: bool) -> list[int]:
    """The lines of `text` (SQL, or a Python source) holding a channel predicate."""
    if sql:
        return sorted({1 + text.count("\n", 0, m.start()) for m in SQL_PREDICATE.finditer(text)})
    lines = _python_predicates(ast.parse(text))
    for run in _string_runs(text):
        joined, starts = "", []
        for body, line in run:
            starts.append((len(joined), line))
            joined += body
        for m in SQL_PREDICATE.finditer(joined):
            offset, line = [s for s in starts if s[0] <= m.start()][-1]
            lines.append(line + joined.count("\n", offset, m.start()))
    return sorted(set(lines))


def _scanned_files() -> list[Path]:
    return sorted(
        [*(ROOT / "src").rglob("*.py"), *(ROOT / "src").rglob("*.sql"),
         *(ROOT / "migrations").rglob("*.py")]
    )  # fmt: skip


def test_no_channel_predicate_is_written_outside_the_fence() -> None:
    found, used = [], set()
    files = _scanned_files()
    assert {"outbox.py", "oms_fan_out_events.sql", "0003_webhooks.py", "scoping.py"} <= {
        f.name for f in files
    }
    for source in files:
        path, text = str(source.relative_to(ROOT)), source.read_text()
        lines = text.splitlines()
        for number in channel_predicates(text, sql=source.suffix == ".sql"):
            line = lines[number - 1].strip()
            allowed = [
                i for i, (where, piece, _) in enumerate(FENCE_ALLOWED)
                if where == path and (piece is None or piece in line)
            ]  # fmt: skip
            used.update(allowed)
            if not allowed:
                found.append(f"{path}:{number}: {line}")
    assert not found, (
        "a channel predicate outside the fence: use services/scoping (fence_sql, "
        "scope_to_channel, …), or add it to FENCE_ALLOWED saying why:\n" + "\n".join(found)
    )
    stale = [entry for i, entry in enumerate(FENCE_ALLOWED) if i not in used]
    assert not stale, f"FENCE_ALLOWED entries that match nothing: {stale}"


@pytest.mark.parametrize(
    "sample",
    [
        'SQL = "SELECT 1 FROM orders WHERE id = $1 AND channel_id = $2"',
        'SQL = "SELECT * FROM orders o WHERE o.channel_id = ANY($2::text[])"',
        'SQL = "SELECT * FROM orders o WHERE o.channel_id IN ($2, $3)"',
        'SQL = "SELECT * FROM orders o WHERE o.channel_id NOT IN (SELECT id FROM x)"',
        'SQL = "SELECT * FROM orders o WHERE o.channel_id IS NOT DISTINCT FROM $2"',
        'SQL = "SELECT * FROM events e WHERE e.channel_id IS NULL"',
        'SQL = "SELECT * FROM returns WHERE channel_id=(SELECT id FROM ch)"',
        'SQL = "SELECT * FROM returns r WHERE $2 = r.channel_id"',
        'SQL = "SELECT * FROM returns r WHERE $2 IN (SELECT channel_id FROM orders)"',
        'SQL = "SELECT * FROM channels WHERE $2 = ANY(channel_ids)"',
        'SQL = "SELECT * FROM orders WHERE channel_id <> :channel"',
        'SQL = text("SELECT * FROM orders WHERE channel_id = :channel_id")',
        'SQL = f"SELECT * FROM orders o WHERE o.channel_id = {param}"',
        'SQL = """\nSELECT *\nFROM orders o\nWHERE o.channel_id\n      = $2\n"""',
        'SQL = ("SELECT * FROM orders o WHERE o.channel_id "\n       "= $2")',
        'SQL = "SELECT * FROM orders o WHERE o.channel_id " + "= $2"',
        "stmt = select(Order).where(Order.channel_id == channel_id)",
        "stmt = select(Order).where(channel_id == Order.channel_id)",
        "stmt = stmt.where(Order.channel_id != principal.channel_id)",
        "stmt = stmt.where(Order.channel_id.in_(ids))",
        "stmt = stmt.where(Order.channel_id.is_not_distinct_from(x))",
        "stmt = stmt.where(Order.channel_id.is_(None))",
        "stmt = stmt.where(tuple_(Order.id, Order.channel_id).in_(pairs))",
        "stmt = stmt.where(Order.id.in_(select(Shipment.order_id).where(Shipment.channel_id\n"
        "    == caller.channel_id)))",
        "stmt = select(Order).filter_by(channel_id=channel_id)",
        "if principal.channel_id is not None:\n    stmt = stmt.where(false())",
        "found = [] if principal.channel_id is not None else load()",
        "if caller.channel_id:\n    pass",
        "if not principal.channel_id:\n    pass",
        "if ready and not caller.channel_id:\n    pass",
        "ok = row['channel_id'] == principal.channel_id",
        "assert principal.channel_id",
    ],
)
def test_the_scan_finds_a_channel_predicate(sample: str) -> None:
    assert channel_predicates(sample, sql=False), sample


@pytest.mark.parametrize(
    "sample",
    [
        "SELECT * FROM orders o WHERE o.channel_id = ANY($2)",
        "SELECT * FROM orders o\nWHERE o.channel_id\n  IS NOT DISTINCT FROM $2",
        "  AND (ep.channel_id IS NULL OR ep.channel_id = e.channel_id)",
    ],
)
def test_the_scan_finds_a_channel_predicate_in_a_sql_file(sample: str) -> None:
    assert channel_predicates(sample, sql=True), sample


@pytest.mark.parametrize(
    "sample",
    [
        "SQL = f\"SELECT 1 FROM orders o WHERE o.id = $1 AND {fence_sql('o.channel_id', 2)}\"",
        'SQL = "INSERT INTO shipments (id, order_id, channel_id) VALUES ($1, $2, $3)"',
        'SQL = "INSERT INTO p (customer_id, channel_id) VALUES ($1, $2) '
        'ON CONFLICT (customer_id, channel_id) DO NOTHING"',
        'SQL = "UPDATE orders SET event_sequence = 1 RETURNING event_sequence, channel_id INTO x"',
        'SQL = "DECLARE channel text := p_channel_id;"',
        'SQL = "SELECT e.id, e.channel_id, e.type FROM events e WHERE e.id = $1"',
        "stmt = scope_to_channel(select(Order.id), caller, Order.channel_id)",
        "document = load_order(conn, order_id, channel_id=None)",
        "order = lock_order(conn, order_id, principal.channel_id)",
        "channel_id = principal.channel_id",
        "def f(channel_id: str | None = None) -> None: ...",
        'data = {"channel_id": row["channel_id"]}',
        "print(key.channel_id or '-')",
        "# if principal.channel_id is not None: (a comment)",
        "stmt = stmt.where(Order.id.in_(ids))",
    ],
)
def test_the_scan_passes_what_is_no_channel_predicate(sample: str) -> None:
    assert not channel_predicates(sample, sql=False), sample


async def test_another_channels_ids_in_a_body_answer_as_unknown_ones(
    client: httpx.AsyncClient, world: World
) -> None:
    line = {"line_id": world.line_id, "quantity": 1, "reason": "size_or_fit"}
    sku = world.ids["sku"]
    bodies: list[tuple[str, str, Any]] = [
        ("/v1/returns", "order_id",
         {"resolution": "refund", "lines": [line]}),
        ("/v1/orders", "customer_id",
         {"lines": [{"sku": sku, "quantity": 1}]}),
        ("/v1/orders", "channel",
         order_body(None, [(sku, 1)])),
        ("/v1/webhook-endpoints", "channel_id",
         {"url": "http://127.0.0.1:9/b", "events": ["*"]}),
    ]  # fmt: skip
    theirs = _id_inputs(world) | {
        "channel_id": (world.ids["channel_id"], _made_up(world.ids["channel_id"]))
    }
    for path, field, body in bodies:
        real, made_up = theirs[field]
        answers = [
            _strip(await client.post(path, json=body | {field: value}, headers=world.b), value)
            for value in (real, made_up)
        ]
        assert answers[0] == answers[1], (path, field, answers)
        assert answers[0][0] in (404, 422), (path, field, answers)
