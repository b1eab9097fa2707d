"""Instructions the server executes per order placement, counted by callgrind: noise-free.

    .venv/bin/python bench/instructions.py [--orders 200] [--against GIT_REF] [--ship-to]

CPU time per order drifts by ±20 % between runs on a shared machine; instruction counts do
not. For each tree (this checkout, and with `--against` that git ref, checked out into a
temporary worktree) it creates and seeds a fresh database as `bench/run.py` does, starts
`oms-api serve` from that tree under `valgrind --tool=callgrind` with instrumentation off,
warms up with 60 orders, then counts the server's user-space instructions over `--orders`
placements sent one at a time (the same bodies for both trees: three SKUs, a returning
customer, an Idempotency-Key each; with `--ship-to` a shipping address too, one of 1,000
streets, so the velocity-by-address rule has orders to count). Kernel work (system calls)
is not counted. The budget (`BUDGET`, docs/performance.md) is for the bodies without
`--ship-to`: over it, this checkout's count makes the script exit 1. Needs valgrind
(`apt-get install -y valgrind`); takes a minute or two per tree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from run import _db_url, admin_execute, seed, wait_until_ready  # noqa: E402

from oms_api.domain.access import generate_key  # noqa: E402

PORT = 8097
WARM_UP = 60
BUDGET = 2_200_000  # instructions per placement, this checkout, bodies without --ship-to


def _bodies(n: int, *, ship_to: bool = False) -> list[dict[str, object]]:
    rng = random.Random(7)
    bodies: list[dict[str, object]] = [
        {
            "customer": {"email": f"bench-{rng.randint(1, 1000)}@example.com"},
            "lines": [
                {"sku": f"BENCH-{rng.randint(band * 1000 + 1, band * 1000 + 1000)}", "quantity": 1}
                for band in range(3)
            ],
        }
        for _ in range(n)
    ]
    if ship_to:
        streets = random.Random(11)
        for body in bodies:
            body["shipping_address"] = {
                "name": "Bench Buyer", "line1": f"{streets.randint(1, 1000)} Bench Street",
                "city": "Berlin", "postal_code": "10115", "country": "DE",
            }  # fmt: skip
    return bodies


def count(tree: Path, server: str, orders: int, *, ship_to: bool = False) -> int:
    """Instructions the server built from `tree` ran for `orders` placements."""
    name = f"oms_instructions_{os.getpid()}"
    url = _db_url(server, name)

    env = os.environ | {
        "DATABASE_URL": url,
        "PYTHONPATH": str(tree / "src"),  # ahead of the editable install of this checkout
        "OMS_LOG_FORMAT": "json",
        "OMS_LOG_LEVEL": "INFO",
        "OMS_DISPATCHER": "false",
    }
    admin_execute(server, f'CREATE DATABASE "{name}"')
    out = Path(tempfile.mkdtemp(prefix="oms-callgrind-"))
    proc = None
    try:
        subprocess.run(
            [sys.executable, "-c", "import sys; from oms_api import migrations_runner as m; "
             "m.upgrade(sys.argv[1])", url],
            env=env, check=True,
        )  # fmt: skip
        secret = generate_key()
        asyncio.run(seed(url, secret))
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no",
             f"--callgrind-out-file={out}/callgrind.out", sys.executable, "-m", "oms_api.cli",
             "serve", "--no-migrate", "--no-dispatcher", "--port", str(PORT)],
            env=env, stdout=open(out / "serve.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )  # fmt: skip
        base = f"http://127.0.0.1:{PORT}"
        wait_until_ready(base, 300, str(out / "serve.log"))
        headers = {"Authorization": f"Bearer {secret}"}
        bodies = _bodies(WARM_UP + orders, ship_to=ship_to)
        with httpx.Client(base_url=base, timeout=120) as client:
            for i, body in enumerate(bodies):
                if i == WARM_UP:
                    subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True,
                                   capture_output=True)  # fmt: skip
                response = client.post(
                    "/v1/orders",
                    json=body,
                    headers=headers | {"Idempotency-Key": secrets.token_hex(8)},
                )
                response.raise_for_status()
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        total = 0
        for dump in out.glob("callgrind.out*"):
            match = re.search(r"^totals: (\d+)", dump.read_text(errors="replace"), re.M)
            total += int(match.group(1)) if match else 0
        return total
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(120)
        shutil.rmtree(out, ignore_errors=True)
        admin_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--against", metavar="GIT_REF", help="also count this git ref's server")
    parser.add_argument("--ship-to", action="store_true", help="each order with a shipping address")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed: apt-get install -y valgrind")
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    trees: list[tuple[str, Path]] = [("this checkout", ROOT)]
    worktree = None
    if args.against:
        worktree = Path(tempfile.mkdtemp(prefix="oms-against-")) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(worktree),
                        args.against], check=True)  # fmt: skip
        trees.insert(0, (args.against, worktree))
    try:
        results = [
            (label, count(tree, server, args.orders, ship_to=args.ship_to) / args.orders)
            for label, tree in trees
        ]
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                           check=False)  # fmt: skip
    first = results[0][1]
    print(
        f"\nserver instructions per placement ({args.orders} orders, one at a time, user space)\n"
    )
    print(f"| {'tree':24} | {'instructions/order':>18} | {'ratio':>6} |")
    print(f"|{'-' * 26}|{'-' * 20}|{'-' * 8}|")
    for label, per_order in results:
        print(f"| {label:24} | {per_order:>18,.0f} | {per_order / first:>6.2f} |")
    if args.ship_to:
        return 0
    ours = results[-1][1]
    verdict = "within" if ours <= BUDGET else "OVER"
    print(f"\nthis checkout: {ours:,.0f} per placement, {verdict} the budget of {BUDGET:,}")
    return 0 if ours <= BUDGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
