"""A 500 through a real server (uvicorn, as `oms-api serve` runs it) is a whole answer on
a connection that stays usable. Starlette's last-resort handler answers and then re-raises,
and uvicorn, seeing the exception after the response, closed the keep-alive connection
without `Connection: close`: the client's next request on it was reset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from oms_api.main import create_app
from tests.conftest import ADMIN_KEY, _unexpected_errors, free_port, make_settings

Answer = tuple[int, dict[str, str], bytes]


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False,
        server_header=False, lifespan="on",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(300):
            if server.started or task.done():
                break
            await asyncio.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> Answer:
    """One HTTP/1.1 request on an open connection, and its whole answer."""
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


def app_with(add: Callable[[FastAPI], None], database_url: str) -> FastAPI:
    app = create_app(make_settings(database_url))
    add(app)
    return app


@pytest.mark.provokes_500
async def test_a_500_keeps_the_connection_usable(database_url: str) -> None:
    def boom_route(app: FastAPI) -> None:
        @app.get("/boom")
        async def boom() -> None:
            raise RuntimeError("kaboom")

    async with serving(app_with(boom_route, database_url)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            before = _unexpected_errors()
            status, headers, body = await exchange(reader, writer, "/boom")
            assert status == 500
            problem = orjson.loads(body)
            assert problem["code"] == "internal_error"
            assert headers["content-type"] == "application/problem+json"
            assert headers.get("connection") != "close"
            assert headers["x-request-id"] == problem["request_id"]
            assert _unexpected_errors() == before + 1  # still counted
            for _ in range(2):  # the same connection goes on serving
                again, _, _ = await exchange(reader, writer, "/healthz")
                assert again == 200
            status, _, _ = await exchange(reader, writer, "/boom")
            assert status == 500
            assert (await exchange(reader, writer, "/healthz"))[0] == 200
        finally:
            writer.close()


class OuterBoom:
    """A middleware outside the request-id layer that fails: only Starlette's last-resort
    handler sees that exception."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/outer-boom":
            raise RuntimeError("outer kaboom")
        await self.app(scope, receive, send)


@pytest.mark.provokes_500
async def test_a_500_the_server_must_close_on_says_so(database_url: str) -> None:
    async with serving(app_with(lambda app: app.add_middleware(OuterBoom), database_url)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            before = _unexpected_errors()
            status, headers, body = await exchange(reader, writer, "/outer-boom")
            assert status == 500
            assert orjson.loads(body)["code"] == "internal_error"
            assert headers["connection"] == "close"  # the client knows not to reuse it
            assert _unexpected_errors() == before + 1
            assert await asyncio.wait_for(reader.read(), 10) == b""  # and it is closed
        finally:
            writer.close()
