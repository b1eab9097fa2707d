"""Where placement's WAL goes: the service's own placement SQL (bench/run.py's pgbench
script) run a fixed number of times, then its WAL broken down by relation and record type.

    .venv/bin/python bench/wal.py --orders 500

Needs `pgbench` and a superuser (pg_walinspect). Prints records and bytes per order, per
relation (tables and indexes by name) and per resource manager/record type.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

from oms_api import migrations_runner
from oms_api.domain.access import generate_key

BREAKDOWN_SQL = """
WITH r AS (
    SELECT xid, resource_manager, record_type, record_length, block_ref,
           substring(block_ref FROM 'rel \\d+/' || $3 || '/(\\d+)')::oid AS relfilenode
    FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn)
), ours AS (
    SELECT DISTINCT xid FROM r WHERE relfilenode IS NOT NULL AND xid::text <> '0'
)
SELECT coalesce(c.relname, CASE WHEN r.relfilenode IS NULL THEN '(transaction)'
                                ELSE '(' || r.relfilenode || ')' END) AS relation,
       r.resource_manager || '/' || r.record_type AS kind,
       count(*) AS records, sum(r.record_length) AS bytes
FROM r LEFT JOIN pg_class c ON c.relfilenode = r.relfilenode AND r.relfilenode <> 0
WHERE r.relfilenode IS NOT NULL
   OR (r.resource_manager = 'Transaction' AND r.xid IN (SELECT xid FROM ours))
GROUP BY 1, 2 ORDER BY 4 DESC
"""


async def breakdown(url: str, start: str, orders: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
        end = await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text")
        rows = await conn.fetch(BREAKDOWN_SQL, start, end, str(oid))
    finally:
        await conn.close()
    total_records = sum(r["records"] for r in rows)
    total_bytes = sum(r["bytes"] for r in rows)
    print(f"{'relation':38} {'record':34} {'rec/order':>9} {'bytes/order':>11}")
    for r in rows:
        print(f"{r['relation']:38} {r['kind']:34} {r['records'] / orders:9.2f}"
              f" {r['bytes'] / orders:11.1f}")  # fmt: skip
    print(f"{'total':73} {total_records / orders:9.2f} {total_bytes / orders:11.1f}")
    by_relation: dict[str, list[float]] = {}
    for r in rows:
        figures = by_relation.setdefault(r["relation"], [0, 0])
        figures[0] += r["records"]
        figures[1] += r["bytes"]
    print(f"\n{'relation':38} {'rec/order':>9} {'bytes/order':>11}")
    for relation, (records, size) in sorted(by_relation.items(), key=lambda x: -x[1][1]):
        print(f"{relation:38} {records / orders:9.2f} {size / orders:11.1f}")


def pgbench_transactions(url: str, script: Path, per_client: int, connections: int) -> None:
    out = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", str(connections), "-j", str(connections),
         "-t", str(per_client), "-f", str(script), url],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0 or "failed transactions: 0 " not in out.stdout:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"oms_wal_{os.getpid()}"
    run.admin_execute(server, f'CREATE DATABASE "{name}"')
    url = run._db_url(server, name)
    try:
        migrations_runner.upgrade(url)
        secret = generate_key()
        asyncio.run(run.seed(url, secret))
        script = Path(tempfile.mkdtemp()) / "place.sql"
        script.write_text(run.pgbench_script(secret))
        per_client = max(args.orders // args.connections, 1)
        # warm up (first pages of every table and index), then measure
        pgbench_transactions(url, script, 20, 1)
        start = asyncio.run(run.wal_position(url))
        assert start is not None, "pg_walinspect needs a superuser"
        pgbench_transactions(url, script, per_client, args.connections)
        try:
            asyncio.run(breakdown(url, start, per_client * args.connections))
        finally:
            asyncio.run(run.release_wal(url))
    finally:
        run.admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
