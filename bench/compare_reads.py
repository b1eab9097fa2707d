"""Reads on a million orders, several trees side by side: alternating wrk runs in one session.

    git worktree add ../oms-891e57c 891e57c   # each tree with its own .venv (pip install -e .)
    .venv/bin/python bench/compare_reads.py --tree old=../oms-891e57c --tree now=. [--rounds 5]

Each tree migrates its own database (`oms_lists_<label>`, kept between runs and reused;
`label@name` shares `oms_lists_<name>` with another tree of the same schema) seeded as
`bench/run.py` seeds reads (its `seed` and `seed_orders`, no placement run); then one
server per tree (1 worker), and rounds of wrk on each request (`bench/read_orders.lua`),
the trees' order reversed every other round. Prints each run (req/s, p50/p99, the
server's CPU per request) and the medians with the per-round ratios to the first tree.
`--serve-only` starts the servers and waits (for py-spy against a server's pid).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))
import run as bench  # noqa: E402

from oms_api.domain.access import generate_key  # noqa: E402

SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MODES = {
    "get": "GET /v1/orders/{id}",
    "list": "GET /v1/orders?status=…&limit=50",
    "search": "GET /v1/orders?q=<email>&limit=50",
}


async def exists(name: str) -> bool:
    conn = await asyncpg.connect(bench._db_url(SERVER, "postgres"))
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def key_of(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_secret (s text)")
        return await conn.fetchval("SELECT s FROM bench_secret")
    finally:
        await conn.close()


async def store_key(url: str, secret: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_secret (s text)")
        await conn.execute("INSERT INTO bench_secret VALUES ($1)", secret)
    finally:
        await conn.close()


def prepare(label: str, tree: Path, orders: int) -> tuple[str, str]:
    label, _, db = label.partition("@")
    name = f"oms_lists_{db or label}"
    url = bench._db_url(SERVER, name)
    if asyncio.run(exists(name)):
        secret = asyncio.run(key_of(url))
        if secret:
            return url, secret
        bench.admin_execute(SERVER, f'DROP DATABASE "{name}" WITH (FORCE)')
    bench.admin_execute(SERVER, f'CREATE DATABASE "{name}"')
    subprocess.run(
        [
            str(tree / ".venv/bin/python"),
            "-c",
            f"from oms_api import migrations_runner; migrations_runner.upgrade({url!r})",
        ],
        cwd=tree,
        check=True,
    )
    secret = generate_key()
    asyncio.run(bench.seed(url, secret))
    t = time.perf_counter()
    asyncio.run(bench.seed_orders(url, orders))
    print(f"{label}: seeded {orders:,} orders in {time.perf_counter() - t:.0f} s", flush=True)
    asyncio.run(store_key(url, secret))
    return url, secret


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tree", action="append", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--orders", type=int, default=1_000_000)
    p.add_argument("--modes", default="list,search,get")
    p.add_argument("--serve-only", action="store_true", help="start the servers and wait")
    a = p.parse_args()
    raw = [(t.split("=", 1)[0], Path(t.split("=", 1)[1])) for t in a.tree]
    trees = [(lb.partition("@")[0], p) for lb, p in raw]
    modes = a.modes.split(",")
    procs, bases, secrets = {}, {}, {}
    try:
        for i, (label, tree) in enumerate(raw):
            url, secret = prepare(label, tree, a.orders)
            label = label.partition("@")[0]
            port = 8110 + i
            log = open(f"{tempfile.gettempdir()}/oms-compare-reads-{label}.log", "wb")  # noqa: SIM115
            procs[label] = subprocess.Popen(
                [
                    str(tree / ".venv/bin/python"),
                    "-m",
                    "oms_api.cli",
                    "serve",
                    "--no-migrate",
                    "--port",
                    str(port),
                    "--workers",
                    "1",
                ],
                cwd=tree,
                env=os.environ
                | {"DATABASE_URL": url, "OMS_LOG_LEVEL": "WARNING", "OMS_LOG_FORMAT": "json"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            bases[label] = f"http://127.0.0.1:{port}"
            secrets[label] = secret
            bench.wait_until_ready(bases[label], 60, log.name)
            if procs[label].poll() is not None:  # another server holds the port
                raise RuntimeError(f"{label}'s server exited; see {log.name}")
            print(f"{label}: pid {procs[label].pid} at {bases[label]}", flush=True)
        if a.serve_only:
            Path(tempfile.gettempdir(), "oms-compare-reads-servers").write_text(
                "\n".join(f"{lb} {procs[lb].pid} {bases[lb]} {secrets[lb]}" for lb, _ in trees)
            )
            while True:
                time.sleep(60)

        def env(mode: str) -> dict[str, str]:
            return {"OMS_BENCH_MODE": mode, "OMS_BENCH_ORDERS": str(a.orders)}

        for label, _ in trees:  # warm up
            for m in modes:
                bench.wrk(bases[label], 3, a.connections, secrets[label], "read_orders.lua", env(m))
        results = {(lb, m): [] for lb, _ in trees for m in modes}
        loads = [os.getloadavg()]
        for r in range(a.rounds):
            order = trees if r % 2 == 0 else trees[::-1]
            for m in modes:
                for label, _ in order:
                    pids = bench._tree(procs[label].pid)
                    cpu0 = bench._cpu_seconds(pids)
                    res = bench.wrk(
                        bases[label],
                        a.duration,
                        a.connections,
                        secrets[label],
                        "read_orders.lua",
                        env(m),
                    )
                    n = re.search(r"(\d+) requests in", res["raw"])
                    res["cpu"] = (bench._cpu_seconds(pids) - cpu0) * 1000 / max(int(n.group(1)), 1)
                    results[(label, m)].append(res)
                    print(
                        f"round {r} {m:6} {label:8} {res['rps']:7.0f} req/s p50 {res['p50']:6.1f}"
                        f" p99 {res['p99']:6.1f} cpu {res['cpu']:.2f} ms/req non2xx {res['non2xx']} load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
            loads.append(os.getloadavg())
        print(f"\nload average (1 min) over the rounds: {[round(load[0], 2) for load in loads]}")
        first = trees[0][0]
        print(
            "\n| request | "
            + " | ".join(lb for lb, _ in trees)
            + " | "
            + " | ".join(f"{lb}/{first}" for lb, _ in trees[1:])
            + " |"
        )
        for m in modes:
            med = {lb: statistics.median(x["rps"] for x in results[(lb, m)]) for lb, _ in trees}
            p99 = {lb: statistics.median(x["p99"] for x in results[(lb, m)]) for lb, _ in trees}
            cpu = {lb: statistics.median(x["cpu"] for x in results[(lb, m)]) for lb, _ in trees}
            ratios = []
            for lb, _ in trees[1:]:
                per = [
                    y["rps"] / x["rps"]
                    for x, y in zip(results[(first, m)], results[(lb, m)], strict=True)
                ]
                ratios.append(
                    f"{statistics.median(per):.2f} (per round {min(per):.2f} to {max(per):.2f})"
                )
            print(
                f"| {MODES[m]} | "
                + " | ".join(
                    f"{med[lb]:.0f} (p99 {p99[lb]:.0f}, {cpu[lb]:.2f} ms CPU)" for lb, _ in trees
                )
                + " | "
                + " | ".join(ratios)
                + " |"
            )
    finally:
        for pr in procs.values():
            pr.send_signal(signal.SIGTERM)
            pr.wait(30)


if __name__ == "__main__":
    main()
