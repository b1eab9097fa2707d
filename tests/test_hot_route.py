"""A `HotRoute` answers every request as the ordinary FastAPI route would: the same endpoint
behind both, the same requests, good and bad, the same answers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request, Response

from oms_api.api.deps import IdempotencyKeyHeader
from oms_api.api.hot_route import HotRoute
from oms_api.api.problems import install_error_handlers
from oms_api.jsonutil import dumps
from oms_api.schemas.orders import OrderCreate

GOOD = b'{"channel": "web", "customer": {"email": "a@example.com"}, "lines": [{"sku": "A", "quantity": 2}]}'
JSON = {"content-type": "application/json"}


async def place(
    request: Request, body: OrderCreate, idempotency_key: IdempotencyKeyHeader = None
) -> Response:
    document = {"body": body.model_dump(mode="json"), "key": idempotency_key}
    return Response(dumps(document), 201, media_type="application/json")


def both() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter()
    router.add_api_route("/ordinary", place, methods=["POST"], status_code=201)
    router.add_api_route(
        "/hot", place, methods=["POST"], status_code=201, route_class_override=HotRoute
    )
    app.include_router(router)
    return app


CASES: list[tuple[str, bytes | None, list[tuple[str, str | bytes]]]] = [
    ("good", GOOD, [*JSON.items(), ("idempotency-key", "k-1")]),
    ("good, no key", GOOD, list(JSON.items())),
    ("no body", None, list(JSON.items())),
    ("empty body", b"", list(JSON.items())),
    ("no content type", GOOD, []),
    ("text/plain", GOOD, [("content-type", "text/plain")]),
    ("json with charset", GOOD, [("content-type", "application/json; charset=utf-8")]),
    ("json in capitals", GOOD, [("content-type", "Application/JSON")]),
    ("a +json type", GOOD, [("content-type", "application/vnd.api+json")]),
    ("not quite json", GOOD, [("content-type", "application/jsonx")]),
    ("malformed json", b'{"lines": [', list(JSON.items())),
    ("not utf-8", b'{"note": "\xff"}', list(JSON.items())),
    ("nested too deeply", b"[" * 5000 + b"]" * 5000, list(JSON.items())),
    ("a list", b"[]", list(JSON.items())),
    ("a string", b'"order"', list(JSON.items())),
    ("null", b"null", list(JSON.items())),
    ("no lines", b'{"channel": "web", "customer": {"email": "a@example.com"}}', list(JSON.items())),
    ("unknown field", GOOD[:-1] + b', "total": 1}', list(JSON.items())),
    ("a quantity as text", GOOD.replace(b"2", b'"2"'), list(JSON.items())),
    ("a NUL", GOOD.replace(b'"A"', b'"A\\u0000"'), list(JSON.items())),
    ("a lone surrogate", GOOD.replace(b'"A"', b'"\\ud800"'), list(JSON.items())),
    ("key not ASCII", GOOD, [*JSON.items(), ("idempotency-key", "schlüssel".encode())]),
    ("key empty", GOOD, [*JSON.items(), ("idempotency-key", "")]),
    ("key too long", GOOD, [*JSON.items(), ("idempotency-key", "k" * 256)]),
    ("key and body bad", b"{}", [*JSON.items(), ("idempotency-key", "k" * 256)]),
    ("two keys", GOOD, [*JSON.items(), ("idempotency-key", "k-1"), ("idempotency-key", "k-2")]),
]  # fmt: skip


def _answer(response: httpx.Response) -> tuple[int, str | None, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("instance", None)  # the path, which differs
    return response.status_code, response.headers.get("content-type"), body


@pytest.mark.parametrize(("content", "headers"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_a_hot_route_answers_as_the_ordinary_one(
    content: bytes | None, headers: list[tuple[str, str | bytes]]
) -> None:
    transport = httpx.ASGITransport(app=both(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ordinary = await client.post("/ordinary", content=content, headers=headers)
        hot = await client.post("/hot", content=content, headers=headers)
    assert _answer(hot) == _answer(ordinary)
    assert ordinary.status_code in (201, 400, 422)


async def test_the_good_requests_are_placed_and_the_bad_refused_for_their_reasons() -> None:
    transport = httpx.ASGITransport(app=both(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        good = await client.post("/hot", content=GOOD, headers=JSON | {"Idempotency-Key": "k"})
        both_bad = await client.post(
            "/hot", content=b"{}", headers=[*JSON.items(), ("Idempotency-Key", "ä".encode())]
        )
        malformed = await client.post("/hot", content=b"{", headers=JSON)
    assert good.status_code == 201
    assert good.json()["key"] == "k"
    assert good.json()["body"]["lines"] == [{"sku": "A", "quantity": 2, "unit_price": None}]
    assert both_bad.status_code == 422
    locs = [e["loc"] for e in both_bad.json()["errors"]]
    assert locs[0] == ["header", "Idempotency-Key"]  # the header's error first, then the body's
    assert ["body", "lines"] in locs
    assert (malformed.status_code, malformed.json()["code"]) == (400, "malformed_json")


def test_a_hot_route_refuses_an_endpoint_it_cannot_serve() -> None:
    async def with_query(request: Request, body: OrderCreate, page: int = 1) -> Response:
        return Response()

    with pytest.raises(TypeError, match="a HotRoute takes"):
        HotRoute("/x", with_query, methods=["POST"])
