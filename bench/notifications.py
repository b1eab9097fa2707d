"""What customer notifications cost, per order, off the hot path: one run.

    .venv/bin/python bench/notifications.py [--orders 500] [--smtp-url file:/tmp/mail]

Creates and seeds a fresh database as `bench/run.py` does, places `--orders` paid orders
(three lines each: each confirms, so each has an `order.confirmed` to tell) through the
real app in this process, then lets a notifier derive and send every one. Prints, per
order, the CPU of this process and of the database's backends (from /proc, so it holds
on a busy machine) for placing, and for notifying. Without `--smtp-url` the notifications
are recorded `skipped` (no mail server needed); with `file:DIR` they are written out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from run import _db_url, admin_execute, seed  # noqa: E402

from oms_api import migrations_runner  # noqa: E402
from oms_api.domain.access import generate_key  # noqa: E402
from oms_api.main import create_app  # noqa: E402
from oms_api.services.notifier import Notifier  # noqa: E402
from oms_api.settings import Settings  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _backends_cpu(url: str, name: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name
        )
    finally:
        await conn.close()
    return sum(_cpu(r["pid"]) for r in pids)


async def measure(url: str, name: str, orders: int, smtp_url: str | None, secret: str) -> None:
    settings = Settings(
        database_url=url, dispatcher=False, log_level="WARNING", log_format="console",
        smtp_url=smtp_url,
    )  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench",
            headers={"Authorization": f"Bearer {secret}"},
        ) as client:  # fmt: skip
            body = {
                "customer": {"email": "bench-1@example.com", "name": "Bench Buyer"},
                "lines": [{"sku": f"BENCH-{i}", "quantity": 1} for i in (1, 1001, 2001)],
                "payment": {"method": "card", "status": "paid"},
                "shipping_address": {"name": "Bench Buyer", "line1": "1 Main St",
                                     "city": "Berlin", "postal_code": "10115", "country": "DE"},
            }  # fmt: skip
            await client.post("/v1/orders", json=body)  # warm up (and open the pool)
            pg0, app0, t0 = await _backends_cpu(url, name), time.process_time(), time.monotonic()
            for _ in range(orders):
                response = await client.post("/v1/orders", json=body)
                assert response.status_code == 201, response.text
            pg1, app1, t1 = await _backends_cpu(url, name), time.process_time(), time.monotonic()
        notifier = Notifier(settings=settings, database=app.state.database)
        while await notifier.run_once():
            pass
        pg2, app2, t2 = await _backends_cpu(url, name), time.process_time(), time.monotonic()
        async with app.state.database.transaction() as conn:
            counts = await conn.fetch("SELECT status, count(*) FROM notifications GROUP BY 1")
    per = 1000 / orders
    print(f"{orders} paid orders; notifications: {dict((r[0], r[1]) for r in counts)}")
    print("| per order            | placing (the hot path) | notifying (the notifier) |")
    print("|----------------------|------------------------|--------------------------|")
    print(f"| app CPU ms           | {(app1 - app0) * per:22.2f} | {(app2 - app1) * per:24.2f} |")
    print(f"| PostgreSQL CPU ms    | {(pg1 - pg0) * per:22.2f} | {(pg2 - pg1) * per:24.2f} |")
    print(f"| wall ms              | {(t1 - t0) * per:22.2f} | {(t2 - t1) * per:24.2f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--smtp-url", default=None)
    args = parser.parse_args()
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"oms_bench_notify_{os.getpid()}"
    admin_execute(server, f'CREATE DATABASE "{name}"')
    url = _db_url(server, name)
    try:
        migrations_runner.upgrade(url)
        secret = generate_key()
        asyncio.run(seed(url, secret))
        asyncio.run(measure(url, name, args.orders, args.smtp_url, secret))
    finally:
        admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
