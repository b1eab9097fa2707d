"""Every error is problem+json with a stable code; no input produces a 500."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI

from oms_api.api.problems import database_unavailable
from tests.conftest import ADMIN_KEY, make_settings
from tests.factories import unique


def unique_code() -> str:
    return unique("c")


async def test_malformed_json_is_400(admin: httpx.AsyncClient) -> None:
    response = await admin.post(
        "/v1/channels", content=b'{"code": "x",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "malformed_json"
    assert set(problem) >= {"type", "title", "status", "detail", "code", "request_id"}


@pytest.mark.parametrize("path", ["/v1/customers", "/v1/orders", "/v1/channels"])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"email": "\xff@example.com"}', "application/json"),  # not UTF-8
        (b'{"email": "\xe9@example.com"}', "application/json; charset=latin-1"),
        (b"[" * 5000 + b"]" * 5000, "application/json"),  # deeper than the parser goes
        (b'{"email": ' + b"[" * 1200 + b"]" * 1200 + b"}", "application/json"),
        (b'{"email": "a@example.com",}', "application/json; charset=latin-1"),
    ],
    ids=["invalid utf-8", "latin-1", "5000 deep", "1200 deep", "trailing comma"],
)
async def test_every_unparseable_body_is_malformed_json(
    admin: httpx.AsyncClient, path: str, body: bytes, content_type: str
) -> None:
    # Each was 400 `http_error` ("There was an error parsing the body"), on the placement
    # route (its own parsing) as on every other; only a syntax error was `malformed_json`.
    response = await admin.post(path, content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "malformed_json", problem
    assert problem["errors"][0]["loc"][0] == "body", problem


async def test_a_charset_does_not_change_how_a_json_body_is_read(
    admin: httpx.AsyncClient,
) -> None:
    # JSON is UTF-8 (RFC 8259): a `charset` parameter is ignored, whatever it names.
    body = {"code": unique_code(), "name": "Zoë"}
    response = await admin.post(
        "/v1/channels",
        content=json.dumps(body, ensure_ascii=False).encode(),
        headers={"content-type": "application/json; charset=latin-1"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Zoë"


@pytest.mark.parametrize("body", [b"[]", b"null", b'"text"', b"12", b"{}"])
async def test_json_of_the_wrong_shape_is_422(admin: httpx.AsyncClient, body: bytes) -> None:
    response = await admin.post(
        "/v1/channels", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_body_over_one_mebibyte_is_413(admin: httpx.AsyncClient) -> None:
    big = b'{"code": "x", "name": "' + b"a" * (1024 * 1024) + b'"}'
    response = await admin.post(
        "/v1/channels", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(20):
            yield b"a" * 65536

    response = await admin.post(
        "/v1/channels", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    response = await client.put("/healthz")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


async def test_a_trailing_slash_is_no_route_and_never_a_redirect(
    admin: httpx.AsyncClient,
) -> None:
    # Was a 307 to `http://<the request's Host>/v1/orders`, with an empty body.
    for method, path in [("POST", "/v1/orders/"), ("GET", "/v1/orders/"), ("GET", "/v1/products/")]:
        response = await admin.request(method, path, headers={"host": "evil.example"})
        assert response.status_code == 404, (method, path, response.status_code)
        assert "location" not in response.headers
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"


async def test_an_unknown_query_parameter_is_a_422_naming_it(admin: httpx.AsyncClient) -> None:
    # Was ignored: `?stauts=pending` answered every order, as if no filter were given.
    response = await admin.get("/v1/orders", params={"stauts": "pending", "limit": 5})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [e["loc"] for e in problem["errors"]] == [["query", "stauts"]]
    assert "status" in problem["errors"][0]["msg"]  # what the operation does take
    response = await admin.get("/v1/orders", params={"status": "pending", "limit": 5})
    assert response.status_code == 200, response.text


async def test_every_operation_refuses_an_unknown_query_parameter_and_only_that(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    unknown_taken, known_refused = [], []
    for path, item in app.openapi()["paths"].items():
        url = re.sub(r"\{[^}]+\}", "x_1", path)
        if not path.startswith("/v1/"):
            continue  # the probes, which ignore a query string (next test)
        for method, operation in item.items():
            response = await admin.request(method.upper(), url, params={"stauts": "1"})
            problem = response.json() if response.status_code == 422 else {}
            if [e["loc"] for e in problem.get("errors", [])] != [["query", "stauts"]]:
                unknown_taken.append(f"{method.upper()} {path}: {response.status_code}")
            declared = {
                p["name"]: "1" for p in operation.get("parameters", []) if p["in"] == "query"
            }
            if not declared or method != "get":
                continue
            response = await admin.get(url, params=declared)
            if response.status_code == 422 and "Unknown query parameter" in response.text:
                known_refused.append(f"{path}: {response.text}")
    assert not unknown_taken, unknown_taken
    assert not known_refused, known_refused


async def test_probes_and_metrics_ignore_a_query_string(admin: httpx.AsyncClient) -> None:
    # A monitor's cache-buster or a scrape's own parameters must not fail a health check.
    for path, params in (
        ("/healthz", {"probe": "1"}), ("/readyz", {"verbose": "1"}),
        ("/metrics", {"name[]": "oms_webhook_queue_depth"}),
    ):  # fmt: skip
        response = await admin.get(path, params=params)
        assert response.status_code == 200, (path, response.text)
    operations = [
        p for p in (await admin.get("/openapi.json")).json()["paths"] if not p.startswith("/v1/")
    ]
    assert sorted(operations) == ["/healthz", "/metrics", "/readyz"]


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    made = (await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})).headers
    assert made["x-request-id"] != "bad id\twith spaces"
    assert len(made["x-request-id"]) == 32
    assert uuid.UUID(hex=made["x-request-id"]).version == 4  # as uuid4().hex writes it
    others = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(20)}
    assert len(others) == 20
    problem = (await client.get("/v1/channels")).json()
    assert problem["request_id"]


@pytest.mark.provokes_500
async def test_unexpected_exception_is_a_logged_problem_500(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app: FastAPI = __import__("oms_api.main", fromlist=["create_app"]).create_app(
        make_settings(database_url)
    )

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as c,
    ):
        with caplog.at_level(logging.ERROR, logger="oms_api.errors"):
            response = await c.get("/boom", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 500
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert "kaboom" not in response.text  # internals are logged, not shown
    assert any(
        getattr(r, "request_id", None) == problem["request_id"] and r.exc_info
        for r in caplog.records
    )


async def test_text_the_database_cannot_store_is_refused(admin: httpx.AsyncClient) -> None:
    """Found by schemathesis: NUL in a body was a 500 (PostgreSQL text cannot hold it)."""
    for escaped in (b"a\\u0000b", b"\\ud800"):  # JSON escapes of NUL and a lone surrogate
        body = b'{"email": "x@example.com", "name": "' + escaped + b'"}'
        response = await admin.post(
            "/v1/customers", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
    for url in ("/v1/orders/ord_%00", "/v1/orders?q=a%00b"):
        response = await admin.get(url)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_characters"


async def test_bodies_are_strictly_typed(admin: httpx.AsyncClient) -> None:
    """Found by schemathesis: `0` was taken for false and "1" for 1."""
    for body in (
        {"code": unique_code(), "name": "x", "active": 0},
        {"code": unique_code(), "name": 5},
    ):
        assert (await admin.post("/v1/channels", json=body)).status_code == 422
    response = await admin.get("/v1/orders", params={"created_before": "0.5"})
    assert response.status_code == 422


async def test_prices_up_to_the_documented_maximum_are_stored(admin: httpx.AsyncClient) -> None:
    """Found by schemathesis: a price above 2^31 was a 500 (the column was int32)."""
    response = await admin.post(
        "/v1/products",
        json={
            "sku": unique_code().upper(),
            "name": "x",
            "unit_price": 100_000_000_000,
            "currency": "EUR",
        },
    )
    assert response.status_code == 201
    assert response.json()["unit_price"] == 100_000_000_000


async def test_405_lists_every_allowed_method(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: Allow named one method of several."""
    response = await client.put("/v1/api-keys")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert (await client.delete("/v1/products/ABC")).headers["allow"] == "GET, PATCH"


def test_database_trouble_is_told_apart_from_bugs() -> None:
    """What `database_unavailable` maps to 503: the pool's wait running out, a statement
    cancelled by statement_timeout (also when wrapped), no connection; and not a bug that
    merely happened while handling such an error."""

    def code(exc: BaseException) -> str | None:
        found = database_unavailable(exc)
        return found[0] if found else None

    def raised_from(cause: BaseException) -> BaseException:
        try:
            raise RuntimeError("wrapper") from cause
        except RuntimeError as exc:
            return exc

    assert code(sqlalchemy.exc.TimeoutError("pool")) == "database_busy"
    cancelled = asyncpg.QueryCanceledError("canceling statement due to statement timeout")
    assert code(raised_from(cancelled)) == "database_timeout"
    assert code(ConnectionRefusedError()) == "database_unavailable"
    bug = ValueError("a bug")
    bug.__context__ = ConnectionRefusedError()
    assert code(bug) is None
    assert code(KeyError("x")) is None


async def test_a_value_of_the_wrong_form_is_told_in_words_not_as_a_regex(
    admin: httpx.AsyncClient,
) -> None:
    """A Greek SKU or a tracking number with umlauts was answered "String should match
    pattern '^[\\x21-\\x7e]([\\x20-\\x7e]{0,62}[\\x21-\\x7e])?$'" (seen through curl): the
    message says what the field takes, as its description in the OpenAPI document does."""
    cases = [
        ("/v1/products", {"sku": "MUG-ΩΜΕΓΑ", "name": "Mug", "unit_price": 1, "currency": "EUR"},
         ["body", "sku"], "letters A-Z, digits"),
        ("/v1/products", {"sku": "MUG", "name": "Mug", "unit_price": 1, "currency": "eur"},
         ["body", "currency"], "ISO 4217"),
        ("/v1/channels", {"code": "Web Shop", "name": "Web"}, ["body", "code"],
         "lower-case letters"),
        ("/v1/shipments/shp_unknown/pack", {"carrier": "UPS", "tracking_number": "ÄÖÜ-123"},
         ["body", "tracking_number"], "printable ASCII"),
    ]  # fmt: skip
    for path, body, loc, words in cases:
        response = await admin.post(path, json=body)
        assert response.status_code == 422, response.text
        errors = [e for e in response.json()["errors"] if e["loc"] == loc]
        assert len(errors) == 1, response.text
        assert "pattern" not in errors[0]["msg"], errors[0]
        assert "^" not in errors[0]["msg"], errors[0]
        assert words.lower() in errors[0]["msg"].lower(), errors[0]


async def test_a_body_over_one_mebibyte_is_413_where_none_is_read_and_documented_so(
    admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    """Found by an integrator: a POST that takes no body (`/rotate-secret`, a pickup's
    `/cancel`) answers 413 to one over 1 MiB, which its document did not list."""
    big = b"a" * (1024 * 1024 + 1)
    response = await admin.post(
        "/v1/pickups/pck_unknown/cancel", content=big,
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    document = (await client.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/") and method != "get":
                assert "413" in operation["responses"], (method, path)
