"""Times every report over a year through the real app, on the million-order database.

    .venv/bin/python bench/reports.py [--name oms_bench_million] [--runs 7] [--explain]

Uses the PostgreSQL server in DATABASE_URL (default: the local one on 127.0.0.1:5432) and
the database `--name` seeded by `bench/seed_million.py`. Starts `oms-api serve` on it
(migrating it to head first, as `serve` does; no dispatcher), then asks each report for
the year ending today (`from` = today - 364 days, `to` = today) `--runs` times after one
warm-up, one request at a time, with an unbound key and with a channel-bound one, and
prints the median, fastest and slowest of each (the whole HTTP round trip). With
`--explain`, it then prints `EXPLAIN (ANALYZE, BUFFERS)` of each report's statement, run
with the same parameters and settings as the service runs it.

The reports read the days the summariser has built (docs/reports.md, "How fresh, how
exact"); the server started here runs no housekeeping pass while it measures. With
`--dirty-day N` the day N days ago is made dirty for the whole run — an event
(`bench.dirty`) recorded on 50 of its orders past the summariser's cursor, so every report
computes that day live and the rest from the summaries — and the events are deleted at the
end (the day is clean again: its summary never changed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from run import _db_url, wait_until_ready  # noqa: E402

from oms_api.domain.access import display_prefix, generate_key, hash_key  # noqa: E402
from oms_api.domain.reports import SalesGrouping, period  # noqa: E402
from oms_api.services import reports  # noqa: E402

REPORTS = [
    ("sales by day", "/v1/reports/sales", {"group_by": "day"}),
    ("sales by channel", "/v1/reports/sales", {"group_by": "channel"}),
    ("sales by sku", "/v1/reports/sales", {"group_by": "sku"}),
    ("fulfillment", "/v1/reports/fulfillment", {}),
    ("returns", "/v1/reports/returns", {}),
    ("inventory", "/v1/reports/inventory", {}),
]


async def channel_key(url: str, channel_code: str) -> str:
    """A `reports:read` key bound to the channel `channel_code`, written straight in."""
    secret = generate_key()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, channel_id)
               SELECT 'key_bench_reports_' || $1, 'bench reports', $2, $3,
                      ARRAY['reports:read'], id FROM channels WHERE code = $4""",
            secrets.token_hex(4), display_prefix(secret), hash_key(secret), channel_code,
        )  # fmt: skip
    finally:
        await conn.close()
    return secret


async def time_reports(base: str, keys: dict[str, str], runs: int, year: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        print(f"{'report':<18} {'key':<9} {'rows':>6} {'median':>9} {'fastest':>9} {'slowest':>9}")
        for who, secret in keys.items():
            headers = {"Authorization": f"Bearer {secret}"}
            for name, path, params in REPORTS:
                query = params | ({} if path.endswith("inventory") else year)
                first = await client.get(path, params=query, headers=headers)  # warm-up
                assert first.status_code == 200, first.text
                times = []
                for _ in range(runs):
                    started = time.perf_counter()
                    response = await client.get(path, params=query, headers=headers)
                    times.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                rows = len(response.json()["rows"])
                print(
                    f"{name:<18} {who:<9} {rows:>6} {statistics.median(times) * 1000:>7.0f} ms"
                    f" {min(times) * 1000:>6.0f} ms {max(times) * 1000:>6.0f} ms",
                    flush=True,
                )


async def explain(url: str, channel_id: str | None) -> None:
    today = datetime.now(UTC).date()
    year = period(today - timedelta(days=364), today, today=today)
    statements = [
        *((f"sales by {g.value}", reports.SALES_SQL[g]) for g in SalesGrouping),
        ("fulfillment", reports.FULFILMENT_SQL),
        ("returns", reports.RETURNS_SQL),
    ]
    conn = await asyncpg.connect(url)
    try:
        for name, sql in statements:
            async with conn.transaction():
                await conn.execute(reports.REPORT_WORK_MEM)
                plan = await conn.fetch(
                    "EXPLAIN (ANALYZE, BUFFERS) " + sql,
                    *reports.summary_args(year, channel_id, None),
                )
            print(f"\n### {name}\n")
            print("\n".join(row[0] for row in plan))
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + reports.INVENTORY_SQL, channel_id)
        print("\n### inventory\n")
        print("\n".join(row[0] for row in plan))
    finally:
        await conn.close()


DIRTY_PREFIX = "evt_bench_dirty_"


async def dirty_day(url: str, days_ago: int | None) -> None:
    """An event on 50 orders placed `days_ago` days ago (UTC), or none (None: every such
    event deleted)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DELETE FROM events WHERE id LIKE $1", DIRTY_PREFIX + "%")
        if days_ago is not None:
            await conn.execute(
                """INSERT INTO events (id, type, order_id, channel_id, sequence, data)
                   SELECT $1 || o.id, 'bench.dirty', o.id, o.channel_id, 0, '{}'
                   FROM orders o
                   WHERE o.created_at >= ((now() AT TIME ZONE 'UTC')::date - $2::integer)::timestamp
                                         AT TIME ZONE 'UTC'
                     AND o.created_at < ((now() AT TIME ZONE 'UTC')::date - $2::integer + 1)::timestamp
                                        AT TIME ZONE 'UTC'
                   ORDER BY o.created_at LIMIT 50""",
                DIRTY_PREFIX, days_ago,
            )  # fmt: skip
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", default="oms_bench_million")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--channel", default="web", help="the bound key's channel code")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--dirty-day", type=int, metavar="N", help="make the day N days ago dirty")
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = _db_url(server, args.name)
    admin_key = "bench-reports-" + secrets.token_hex(8)
    keys = {"unbound": admin_key, args.channel: asyncio.run(channel_key(url, args.channel))}
    asyncio.run(dirty_day(url, args.dirty_day))
    try:
        measure(args, url, admin_key, keys)
    finally:
        asyncio.run(dirty_day(url, None))


def measure(args: argparse.Namespace, url: str, admin_key: str, keys: dict[str, str]) -> None:
    today = datetime.now(UTC).date()
    year = {"from": (today - timedelta(days=364)).isoformat(), "to": today.isoformat()}
    env = os.environ | {
        "DATABASE_URL": url, "OMS_ADMIN_API_KEY": admin_key, "OMS_DISPATCHER": "false",
        "OMS_LOG_LEVEL": "WARNING", "OMS_MAINTENANCE_INTERVAL": "86400",
    }  # fmt: skip
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
        server_process = subprocess.Popen(
            [str(Path(sys.executable).parent / "oms-api"), "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_ready(base, 60, log.name)
            print(f"{args.name}: each report over {year['from']} .. {year['to']}, "
                  f"{args.runs} runs after a warm-up")  # fmt: skip
            asyncio.run(time_reports(base, keys, args.runs, year))
        finally:
            server_process.terminate()
            server_process.wait(timeout=30)
    if args.explain:
        channel_id = asyncio.run(_channel_id(url, args.channel))
        print("\n## EXPLAIN (ANALYZE, BUFFERS), unbound key")
        asyncio.run(explain(url, None))
        print(f"\n## EXPLAIN (ANALYZE, BUFFERS), key bound to {args.channel}")
        asyncio.run(explain(url, channel_id))


async def _channel_id(url: str, code: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SELECT id FROM channels WHERE code = $1", code))
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
