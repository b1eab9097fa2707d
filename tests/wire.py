"""A loopback proxy in front of PostgreSQL that counts round trips on the wire.

Each frontend `Sync` ('S') or simple `Query` ('Q') message ends one request/response
exchange, so their count is the number of round trips the client made, whatever the
client library does (prepared statements, BEGIN/COMMIT, pool resets). Requires an
unencrypted connection (`ssl=disable`).
"""

from __future__ import annotations

import asyncio
import struct
from contextlib import suppress
from urllib.parse import parse_qs, urlsplit, urlunsplit


class RoundTripCounter:
    def __init__(self, server_url: str) -> None:
        parts = urlsplit(server_url)
        query = parse_qs(parts.query)
        self._unix = None
        if "host" in query:  # a Unix socket directory (embedded PostgreSQL)
            self._unix = f"{query['host'][0]}/.s.PGSQL.{parts.port or 5432}"
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._parts = parts
        self.count = 0
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    def url(self, database: str) -> str:
        user = self._parts.username or "postgres"
        netloc = f"{user}@127.0.0.1:{self.port}"
        return urlunsplit(("postgresql", netloc, "/" + database, "ssl=disable", ""))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self._unix:
            server_r, server_w = await asyncio.open_unix_connection(self._unix)
        else:
            server_r, server_w = await asyncio.open_connection(*self._target)
        back = asyncio.create_task(self._pipe(server_r, client_w))
        try:
            # Startup message: length-prefixed, no type byte.
            header = await client_r.readexactly(4)
            (length,) = struct.unpack("!i", header)
            server_w.write(header + await client_r.readexactly(length - 4))
            while True:
                kind = await client_r.readexactly(1)
                header = await client_r.readexactly(4)
                (length,) = struct.unpack("!i", header)
                body = await client_r.readexactly(length - 4)
                if kind in (b"S", b"Q"):
                    self.count += 1
                server_w.write(kind + header + body)
                await server_w.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            server_w.close()
            back.cancel()
            client_w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()  # the server hung up: so does the proxy, or the client waits forever
