"""The committed OpenAPI document is the product: equal to what the app serves, complete."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs

from tests.test_fulfilment import Warehouse

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


async def test_committed_document_equals_what_the_app_serves(client: httpx.AsyncClient) -> None:
    served = (await client.get("/openapi.json")).json()
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, "openapi/openapi.json is stale: run `oms-api openapi`"


async def test_every_operation_is_documented(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    seen_ids = set()
    for path, item in document["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            assert op.get("operationId"), where
            assert op["operationId"] not in seen_ids, where
            seen_ids.add(op["operationId"])
            assert op.get("tags"), where
            assert op.get("summary"), where
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            if path.startswith("/v1/"):
                assert "401" in errors, where
            for status, response in errors.items():
                assert "application/problem+json" in response["content"], (where, status)
            if op.get("requestBody"):
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                refs = [s["$ref"] for s in schema.get("anyOf", [schema]) if "$ref" in s]
                assert len(refs) == 1, where
                name = refs[0].rsplit("/", 1)[-1]
                assert document["components"]["schemas"][name].get("examples"), name


async def test_docs_work_offline(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        html = (await client.get(page)).text
        assert "cdn." not in html, page
        assert "https://" not in html.split("<body>")[0].lower(), page
    docs = (await client.get("/docs")).text
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        assert asset in docs
        assert (await client.get(asset)).status_code == 200
    redoc = (await client.get("/redoc")).text
    assert "/docs-assets/redoc.standalone.js" in redoc
    assert (await client.get("/docs-assets/redoc.standalone.js")).status_code == 200


async def test_optional_bodies_are_their_model_and_may_be_left_out(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """An optional command body is documented as its model alone (a nullable one makes
    generated clients send a placeholder): no body, an empty one, `{}` and `null` all mean
    the model's defaults; a body of another shape is still a 422."""
    document = (await client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                assert "anyOf" not in schema, f"{method.upper()} {path}"

    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 5)
    order = await wh.order(client, [(product["sku"], 1)])
    hold, release = (f"/v1/orders/{order['id']}/{step}" for step in ("hold", "release"))
    json_type = {"content-type": "application/json"}
    for kw in ({}, {"content": b"", "headers": json_type}, {"json": {}},
               {"content": b"null", "headers": json_type}):  # fmt: skip
        headers = wh.shop.headers | kw.pop("headers", {})
        held = await client.post(hold, headers=headers, **kw)
        assert held.status_code == 200, (kw, held.text)
        assert (held.json()["status"], held.json()["hold_reason"]) == ("on_hold", None)
        assert (await client.post(release, headers=wh.shop.headers)).status_code == 200
    held = await client.post(hold, json={"reason": "address check"}, headers=wh.shop.headers)
    assert held.json()["hold_reason"] == "address check"
    for body in (b"[]", b'"text"', b"12", b'{"reason": 1}', b'{"other": "x"}'):
        wrong = await client.post(release.replace("release", "cancel"), content=body,
                                  headers=wh.shop.headers | json_type)  # fmt: skip
        assert wrong.status_code == 422, (body, wrong.text)
        assert wrong.json()["code"] == "validation_error"


def _examples(node: Any, schema_path: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, example) for every `examples` of a schema in the document."""
    if isinstance(node, dict):
        if isinstance(node.get("examples"), list):
            schema = {k: v for k, v in node.items() if k != "examples"}
            for i, example in enumerate(node["examples"]):
                yield f"{schema_path} examples[{i}]", schema, example
        for key, value in node.items():
            if key != "examples":
                yield from _examples(value, f"{schema_path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _examples(value, f"{schema_path}[{i}]")


async def test_every_example_validates_against_its_own_schema(client: httpx.AsyncClient) -> None:
    """An example is what a generated client's docs and mock servers show: FastAPI writes
    the document without `null`s, examples included, so ReplenishmentPublic's example lost
    its five null fields and failed its own `required` (found by an integrator validating
    the document's examples)."""
    document = (await client.get("/openapi.json")).json()
    components = document["components"]
    failures = []
    for name, component in components["schemas"].items():
        for where, schema, example in _examples(component, name):
            validator = jsonschema_rs.Draft202012Validator(
                schema | {"components": components}, validate_formats=True
            )
            failures += [f"{where}: {e.message}" for e in validator.iter_errors(example)]
    assert not failures, failures
    # The nulls an example declares are kept, also where they are optional.
    (report,) = components["schemas"]["InventoryReport"]["examples"]
    assert (report["from"], report["to"]) == (None, None)
    (key,) = components["schemas"]["ApiKeyCreate"]["examples"]
    assert key["channel_id"] is None


async def test_the_response_headers_the_api_sends_are_documented(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """docs/api-conventions.md promises `ETag`, `Idempotent-Replayed`, `Retry-After` and
    `WWW-Authenticate`, and the API sends them, but the document declared no response
    header at all: a client generated from it (openapi-typescript's response types, the
    Python client's docs) knew none of them (found by an integrator reading the headers
    through a generated client)."""
    document = (await client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        editable = any(p["name"] == "If-Match" for p in item.get("patch", {}).get("parameters", []))
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            ok = next(s for s in responses if s[0] == "2")

            def headers(status: str, responses: dict[str, Any] = responses) -> dict[str, Any]:
                refs = responses[status].get("headers", {})
                named = {n: h["$ref"].rsplit("/", 1)[-1] for n, h in refs.items()}
                return {n: document["components"]["headers"][r] for n, r in named.items()}

            if editable and method in ("get", "patch"):
                assert "ETag" in headers(ok), where
            if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])):
                assert "Idempotent-Replayed" in headers(ok), where
                assert "Retry-After" in headers("409"), where
            for status in ("429", "503"):
                if status in responses and path.startswith("/v1/"):
                    assert "Retry-After" in headers(status), (where, status)
            if "401" in responses:
                assert "WWW-Authenticate" in headers("401"), where

    # What is documented is what is sent.
    wh = await Warehouse.open(admin)
    product = await wh.shop.product(admin, 5)
    got = await admin.get(f"/v1/products/{product['sku']}")
    assert got.headers["ETag"] == f'"{got.json()["version"]}"'
    body = {"sku": f"{product['sku']}-2", "name": "Two", "unit_price": 100, "currency": "EUR"}
    key = {"Idempotency-Key": f"replay-{product['sku']}"}
    first = await admin.post("/v1/products", json=body, headers=key)
    replay = await admin.post("/v1/products", json=body, headers=key)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    unauthorized = await client.get("/v1/orders")
    assert unauthorized.status_code == 401
    assert unauthorized.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_resource_edited_with_if_match_sends_its_etag_when_created(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found by an integrator: products, locations, channels and customers answered their
    create with no `ETag`, where their GET and PATCH send one — a client had to read the
    resource again before its first `If-Match` PATCH. First answer and replay alike; the
    document says so."""
    from tests.factories import unique

    tag = unique("etag")
    creates = {
        "/v1/locations": {"code": tag, "name": "Depot"},
        "/v1/products": {"sku": tag.upper(), "name": "Mug", "unit_price": 100, "currency": "EUR"},
        "/v1/channels": {"code": tag, "name": "Shop"},
        "/v1/customers": {"email": f"{tag}@example.com"},
    }
    document = (await client.get("/openapi.json")).json()
    for path, body in creates.items():
        documented = document["paths"][path]["post"]["responses"]["201"]["headers"]
        assert "ETag" in documented, path
        key = {"Idempotency-Key": f"{tag}-{path}"}
        first = await admin.post(path, json=body, headers=key)
        assert first.status_code == 201, (path, first.text)
        assert first.headers["ETag"] == f'"{first.json()["version"]}"', path
        replay = await admin.post(path, json=body, headers=key)
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.headers["ETag"] == first.headers["ETag"], path
        plain = await admin.post(path, json=body)  # without a key: still an ETag, or a 409
        assert plain.status_code == 409 or plain.headers["ETag"], path
