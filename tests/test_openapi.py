"""The committed OpenAPI document is the product: equal to what the app serves, complete."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

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
