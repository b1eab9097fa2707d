"""Chaos run: two API processes and one worker under load; one API process and the worker
are SIGKILLed mid-run and restarted. At the end, the guarantees are checked.

    .venv/bin/python bench/chaos.py [--duration 30] [--clients 24]

Uses the PostgreSQL server in DATABASE_URL (default: the local one) with a fresh
database, and a webhook receiver on loopback. Clients retry failed requests with the same
Idempotency-Key against the other server, as a real client would. Prints a pass/fail
table; exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.receiver import Receiver  # noqa: E402

from oms_api import migrations_runner  # noqa: E402
from oms_api.domain.access import generate_key  # noqa: E402

ADMIN = "chaos-admin-" + generate_key()[4:20]
PRODUCTS = 20
STOCK = 800  # lasts most of a 30 s run, then runs out: both phases are exercised


def _db_url(server: str, name: str) -> str:
    base, _, query = server.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oms_api.cli", *self.args], env=self.env,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            try:
                if (await http.get(url + "/readyz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


async def run(args: argparse.Namespace) -> int:
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"oms_chaos_{os.getpid()}"
    admin_conn = await asyncpg.connect(_db_url(server, "postgres"))
    await admin_conn.execute(f'CREATE DATABASE "{name}"')
    url = _db_url(server, name)
    receiver = Receiver().start()
    procs: list[Process] = []
    try:
        await asyncio.to_thread(migrations_runner.upgrade, url)
        env = os.environ | {
            "DATABASE_URL": url, "OMS_ADMIN_API_KEY": ADMIN, "OMS_LOG_FORMAT": "json",
            "OMS_LOG_LEVEL": "WARNING", "OMS_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
            "OMS_WEBHOOK_RETRY_DELAYS": ",".join(["1"] * 60), "OMS_WEBHOOK_TIMEOUT": "3",
            "OMS_WEBHOOK_POLL_INTERVAL": "0.5",
        }  # fmt: skip
        logs = Path("/tmp")
        ports = [8091, 8092]
        apis = [
            Process(
                ["serve", "--no-migrate", "--no-dispatcher", "--port", str(p)],
                env,
                logs / f"chaos-api-{p}.log",
            )
            for p in ports
        ]
        worker = Process(["worker"], env, logs / "chaos-worker.log")
        procs = [*apis, worker]
        for p in procs:
            p.start()
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        await asyncio.gather(*(wait_ready(u) for u in urls))

        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient(base_url=urls[0], headers=headers, timeout=30) as http:
            location = (
                await http.post("/v1/locations", json={"code": "chaos", "name": "Chaos"})
            ).json()
            channel = (
                await http.post(
                    "/v1/channels",
                    json={"code": "chaos", "name": "Chaos", "location_ids": [location["id"]]},
                )
            ).json()
            key = (
                await http.post(
                    "/v1/api-keys",
                    json={
                        "name": "chaos",
                        "scopes": ["orders:write", "orders:read"],
                        "channel_id": channel["id"],
                    },
                )
            ).json()
            await http.post(
                "/v1/webhook-endpoints",
                json={"url": receiver.url, "events": ["*"], "channel_id": channel["id"]},
            )
            skus = []
            for i in range(PRODUCTS):
                sku = f"CHAOS-{i}"
                await http.post(
                    "/v1/products",
                    json={"sku": sku, "name": sku, "unit_price": 500, "currency": "EUR"},
                )
                await http.post(
                    "/v1/inventory/adjustments",
                    json={
                        "sku": sku,
                        "location_id": location["id"],
                        "delta": STOCK,
                        "reason": "received",
                    },
                )
                skus.append(sku)

        results: dict[str, set[str]] = defaultdict(set)  # Idempotency-Key → order ids returned
        outcomes: dict[str, int] = defaultdict(int)
        deadline = time.monotonic() + args.duration
        client_headers = {"Authorization": f"Bearer {key['secret']}"}

        async def client(n: int) -> None:
            rng = random.Random(n)
            async with httpx.AsyncClient(headers=client_headers, timeout=10) as http:
                i = 0
                while time.monotonic() < deadline:
                    i += 1
                    idem = f"chaos-{n}-{i}"
                    lines = [
                        {"sku": s, "quantity": rng.randint(1, 3)}
                        for s in rng.sample(skus, rng.randint(1, 3))
                    ]
                    body = {
                        "customer": {"email": f"c{rng.randint(1, 200)}@example.com"},
                        "lines": lines,
                    }
                    for attempt in range(6):  # retry with the same key, on the other server
                        try:
                            r = await http.post(
                                urls[(n + attempt) % 2] + "/v1/orders",
                                json=body,
                                headers={"Idempotency-Key": idem},
                            )
                        except httpx.HTTPError:
                            outcomes["connection error (retried)"] += 1
                            await asyncio.sleep(0.2)
                            continue
                        if r.status_code == 201:
                            results[idem].add(r.json()["id"])
                            outcomes["201"] += 1
                            break
                        if r.status_code == 409 and r.json()["code"] == "idempotency_key_in_flight":
                            await asyncio.sleep(0.2)
                            continue
                        outcomes[f"{r.status_code} {r.json().get('code')}"] += 1
                        break

        async def chaos() -> None:
            await asyncio.sleep(args.duration / 3)
            apis[0].kill()
            worker.kill()
            print(f"t={args.duration / 3:.0f}s: SIGKILLed API :{ports[0]} and the worker")
            await asyncio.sleep(2)
            apis[0].start()
            worker.start()
            await wait_ready(urls[0])
            print("restarted them")

        await asyncio.gather(chaos(), *(client(n) for n in range(args.clients)))

        conn = await asyncpg.connect(url)
        try:
            for tick in range(120):  # let the worker drain the queue
                pending, due = await conn.fetchrow(
                    "SELECT count(*), count(*) FILTER (WHERE next_attempt_at <= now())"
                    " FROM webhook_deliveries WHERE status = 'pending'"
                )
                if pending == 0:
                    break
                if tick % 10 == 0:
                    print(f"draining: {pending} deliveries pending, {due} of them due")
                await asyncio.sleep(0.5)
            checks = await verify(conn, results, receiver)
        finally:
            await conn.close()
        print("\nrequests:", dict(outcomes))
        width = max(len(c[0]) for c in checks)
        print()
        for label, ok, detail in checks:
            print(f"{'PASS' if ok else 'FAIL'}  {label:{width}}  {detail}")
        return 0 if all(ok for _, ok, _ in checks) else 1
    finally:
        for p in procs:
            p.stop()
        receiver.stop()
        await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin_conn.close()


async def verify(
    conn: asyncpg.Connection, results: dict[str, set[str]], receiver: Receiver
) -> list[tuple[str, bool, str]]:
    checks = []
    over = await conn.fetch(
        """SELECT p.sku, sum(l.quantity) AS sold FROM order_lines l JOIN products p ON p.id = l.product_id
           JOIN orders o ON o.id = l.order_id WHERE o.status <> 'cancelled' GROUP BY p.sku HAVING sum(l.quantity) > $1""",
        STOCK,
    )
    negative = await conn.fetchval(
        "SELECT count(*) FROM inventory_levels WHERE on_hand - reserved < 0"
    )
    checks.append(
        (
            "no oversell",
            not over and negative == 0,
            f"{len(over)} SKU(s) oversold, {negative} negative",
        )
    )
    drift = await conn.fetchval(
        """SELECT count(*) FROM inventory_levels l FULL JOIN (
               SELECT product_id, location_id, sum(on_hand_delta) h, sum(reserved_delta) r
               FROM inventory_movements GROUP BY 1, 2) m USING (product_id, location_id)
           WHERE coalesce(l.on_hand, 0) <> coalesce(m.h, 0) OR coalesce(l.reserved, 0) <> coalesce(m.r, 0)"""
    )
    checks.append(("ledger = levels", drift == 0, f"{drift} drifting level(s)"))
    orders = await conn.fetchval("SELECT count(*) FROM orders")
    missing = await conn.fetchval(
        "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.order_id = o.id AND e.type = 'order.created')"
    )
    checks.append(
        (
            "every order has its events",
            missing == 0,
            f"{orders} orders, {missing} without order.created",
        )
    )
    events = {
        r["id"] for r in await conn.fetch("SELECT id FROM events WHERE channel_id IS NOT NULL")
    }
    received = {e["id"] for e in receiver.events()}
    lost = events - received
    # Where the undelivered ones stand, to tell a slow queue from a lost event.
    statuses = dict(
        (r["status"], r["n"]) for r in await conn.fetch(
            "SELECT d.status, count(*) AS n FROM webhook_deliveries d WHERE d.event_id = ANY($1)"
            " GROUP BY 1", list(lost),
        )
    )  # fmt: skip
    latency = list(
        await conn.fetchrow(
            "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms),"
            " percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms), max(latency_ms)"
            " FROM webhook_attempts"
        )
    )
    checks.append(
        (
            "every event delivered",
            not lost,
            f"{len(events)} events, {len(lost)} never received, {len(receiver.received)} requests (at least once)"
            + (
                f"; their deliveries: {statuses}; attempts' latency p50/p99/max ms: {latency}"
                if lost
                else ""
            ),
        )
    )
    doubled = [k for k, ids in results.items() if len(ids) > 1]
    keys = await conn.fetchval("SELECT count(*) FROM idempotency_records")
    checks.append(
        ("one order per Idempotency-Key", not doubled and orders == keys,
         f"{len(results)} keys answered 201, {keys} keys stored, {orders} orders, {len(doubled)} keys with 2+ orders"),
    )  # fmt: skip
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--clients", type=int, default=24)
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
