"""What the one stock path costs PostgreSQL per reservation, at two migrations.

    .venv/bin/python bench/stock_path.py [--calls 500] [--rounds 3] [--revisions 0012 head]

Placement reserves stock through `oms_move_stock`; migration 0013 made it keep each
product's total available and watch the reorder point. For each revision this creates a
fresh database migrated to it, stocks one product at one location, and runs `--calls`
transactions of one `oms_move_stock` call each, reserving one unit as placement does. It
prints, per revision, the median time per call and the WAL written by those transactions
— counted with `pg_walinspect` from the records that touch this database's relations or
commit one of its transactions, so other work on the server does not count. Rounds
alternate between the revisions; quote the ratio, not the times (shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from run import _db_url  # noqa: E402

from oms_api import migrations_runner  # noqa: E402

SEED = """
INSERT INTO locations (id, code, name, kind, priority) VALUES ('loc', 'loc', 'L', 'warehouse', 1);
INSERT INTO products (id, sku, name, unit_price, currency, reorder_point, reorder_quantity)
VALUES ('prd', 'SKU', 'P', 100, 'EUR', 5, 10);
"""
RECEIVE = """SELECT oms_move_stock('[{"id": "mov_in", "product_id": "prd", "sku": "SKU",
  "location_id": "loc", "on_hand_delta": 1000000000, "reserved_delta": 0, "reason": "received",
  "cause_type": "adjustment", "cause_id": "mov_in"}]')"""

WAL_SQL = """
SELECT count(*) AS records, coalesce(sum(record_length), 0) AS bytes
FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn)
WHERE block_ref LIKE '%/' || $3 || '/%'
   OR (resource_manager = 'Transaction' AND xid::text = ANY($4::text[]))
"""


async def admin_execute(server: str, sql: str) -> None:
    conn = await asyncpg.connect(_db_url(server, "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def reserve(n: int) -> str:
    return orjson.dumps([{
        "id": f"mov_{n}", "product_id": "prd", "sku": "SKU", "location_id": "loc",
        "on_hand_delta": 0, "reserved_delta": 1, "reason": "order_placed",
        "cause_type": "order", "cause_id": f"ord_{n}", "note": None,
    }]).decode()  # fmt: skip


async def measure(url: str, calls: int, offset: int) -> tuple[float, float, float]:
    """(median µs per call, WAL records per call, WAL bytes per call)."""
    conn = await asyncpg.connect(url)
    try:
        oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
        start = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
        times, xids = [], []
        for n in range(offset, offset + calls):
            began = time.perf_counter()
            async with conn.transaction():
                await conn.execute("SELECT oms_move_stock($1::jsonb)", reserve(n))
                xids.append(str(await conn.fetchval("SELECT pg_current_xact_id()")))
            times.append(time.perf_counter() - began)
        end = await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text")  # commits flushed
        wal = await conn.fetchrow(WAL_SQL, str(start), str(end), str(oid), xids)
        return statistics.median(times) * 1e6, wal["records"] / calls, wal["bytes"] / calls
    finally:
        await conn.close()


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--revisions", nargs="+", default=["0012", "head"])
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    urls = {}
    for revision in args.revisions:
        name = f"oms_bench_stock_{revision}_{os.getpid()}"
        await admin_execute(server, f'CREATE DATABASE "{name}"')
        urls[revision] = _db_url(server, name)
        await asyncio.to_thread(migrations_runner.upgrade, urls[revision], revision)
        conn = await asyncpg.connect(urls[revision])
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")  # superuser
        await conn.execute(SEED)
        await conn.execute(RECEIVE)
        await conn.close()
    results: dict[str, list[tuple[float, float, float]]] = {r: [] for r in args.revisions}
    try:
        for round_ in range(args.rounds):
            for revision in args.revisions:
                results[revision].append(
                    await measure(urls[revision], args.calls, round_ * args.calls)
                )
    finally:
        for revision in args.revisions:
            await admin_execute(
                server, f'DROP DATABASE IF EXISTS "{urls[revision].rsplit("/", 1)[1]}"'
            )
    base = args.revisions[0]
    base_us = statistics.median(r[0] for r in results[base])
    print(
        f"\none oms_move_stock reservation per transaction, {args.calls} calls x {args.rounds} rounds\n"
    )
    print("| revision | µs per call (median) | ratio | WAL records | WAL bytes |")
    print("|----------|----------------------|-------|-------------|-----------|")
    for revision, rows in results.items():
        us = statistics.median(r[0] for r in rows)
        records = statistics.median(r[1] for r in rows)
        size = statistics.median(r[2] for r in rows)
        print(
            f"| {revision:8} | {us:20.0f} | {us / base_us:5.2f} | {records:11.1f} | {size:9.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
