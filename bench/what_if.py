"""What would a reshaped order save? Placement's SQL on private clusters, as it is and as
it would be with an order's lines and reservations stored in its own row.

    .venv/bin/python bench/what_if.py wal|instructions|tps [--rounds 3]

An experiment, not the service: it decides whether a reshape is worth its cost before
anyone builds it (docs/performance.md, "What a reshaped order would buy"). Each variant
is a private PostgreSQL cluster (`initdb` in a temporary directory, fsync off, as
`bench/pg_instructions.py` makes them), migrated and seeded by this checkout, then changed
by the variant's SQL; the placement script is `bench/run.py`'s pgbench script, changed by
the variant's rewrite:

- `head`: this checkout as it is;
- `order-row`: `orders` gains `lines_doc` and `reservations_doc` (jsonb), and
  `oms_place_order` stores the plan's lines and reservations there instead of inserting
  rows into `order_lines` and `order_reservations` (no index entries, no foreign-key
  checks for them); the ledger, the levels, the totals, the event and the key's record
  are unchanged;
- `order-row-lean`: `order-row`, and the placement read takes no row locks (`FOR UPDATE`)
  and two indexes are gone (`ix_orders_created_at_report`,
  `ix_idempotency_records_expires_at`) — each of which the service needs today: this
  variant bounds what the next steps could give, nothing more.

Modes: `wal` — WAL records and bytes per order (`pg_stat_wal`, 3,000 orders on 4
connections; the cluster is private, so all of it is placement's); `instructions` — the
backend's instructions per placement under callgrind (as `bench/pg_instructions.py`);
`tps` — pgbench at 32 connections, 12 s per variant, alternating, `--rounds` times.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pg_instructions as private

ROOT = Path(__file__).resolve().parents[1]
PLACE_ORDER = (ROOT / "src/oms_api/sql/functions/oms_place_order.sql").read_text()


def order_row_sql() -> str:
    """`oms_place_order` keeping lines and reservations in the order's row."""
    body = PLACE_ORDER.replace(
        "o jsonb := p->'order';",
        "o jsonb := (p->'order') || jsonb_build_object("
        "'lines_doc', p->'lines', 'reservations_doc', p->'reservations');",
    )
    body = body.replace(
        "    INSERT INTO order_lines\n"
        "    SELECT * FROM jsonb_populate_recordset(NULL::order_lines, p->'lines');\n",
        "",
    )
    body = re.sub(
        r"    IF p->'reservations' <> '\[\]' THEN\n        INSERT INTO order_reservations\n"
        r".*?\n    END IF;\n",
        "",
        body,
        flags=re.S,
    )
    code = body.split("$$")[1]
    if "order_lines" in code or "order_reservations" in code:
        raise SystemExit("oms_place_order changed: update bench/what_if.py's rewrite")
    return (
        "ALTER TABLE orders ADD COLUMN lines_doc jsonb, ADD COLUMN reservations_doc jsonb;\n"
        f"{body};"
    )


def no_row_locks(script: str) -> str:
    if " FOR UPDATE OF il" not in script:
        raise SystemExit("the placement read changed: update bench/what_if.py's rewrite")
    return script.replace(" FOR UPDATE OF il", "")


@dataclass
class Variant:
    name: str
    sql: str
    rewrite: Callable[[str], str]
    work: Path | None = None
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        assert self.work is not None
        return self.work / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def script(self) -> Path:
        assert self.work is not None
        return self.work / "place.sql"


def variants() -> list[Variant]:
    lean = "DROP INDEX ix_orders_created_at_report; DROP INDEX ix_idempotency_records_expires_at;"
    return [
        Variant("head", "", lambda s: s),
        Variant("order-row", order_row_sql(), lambda s: s),
        Variant("order-row-lean", f"{order_row_sql()}\n{lean}", no_row_locks),
    ]


def make(variant: Variant) -> None:
    variant.work = Path(tempfile.mkdtemp(prefix="oms-what-if-"))
    if private.AS_SERVER_USER:
        shutil.chown(variant.work, "postgres")
    subprocess.run(
        [*private.AS_SERVER_USER, str(private.BIN / "initdb"), "-D", str(variant.data),
         "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True,
    )  # fmt: skip
    variant.port = private._free_port()
    variant.proc = private._start(variant.data, variant.port)
    env = os.environ | {"PYTHONPATH": str(ROOT / "src")}
    subprocess.run(
        [sys.executable, "-c", private._SETUP, str(ROOT), variant.url, str(variant.script)],
        env=env, check=True,
    )  # fmt: skip
    if variant.sql:
        psql(variant, "-f", "-", stdin=variant.sql)
    variant.script.write_text(variant.rewrite(variant.script.read_text()))


def psql(variant: Variant, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", variant.url, *args],
        input=stdin, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def pgbench(variant: Variant, *args: str) -> float:
    out = subprocess.run(
        [str(private.BIN / "pgbench"), "-n", "-M", "prepared", "--random-seed=rand", *args,
         "-f", str(variant.script), variant.url],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0 or "failed transactions: 0 " not in out.stdout:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")
    match = re.search(r"tps = ([\d.]+)", out.stdout)
    assert match is not None
    return float(match.group(1))


def wal(variant: Variant, orders: int = 3000) -> str:
    pgbench(variant, "-c", "1", "-t", "20")  # first pages of every table and index
    query = "SELECT wal_records || ' ' || wal_bytes FROM pg_stat_wal"
    records0, bytes0 = map(int, psql(variant, "-c", query).split())
    pgbench(variant, "-c", "4", "-j", "4", "-t", str(orders // 4))
    records1, bytes1 = map(int, psql(variant, "-c", query).split())
    return (
        f"{(records1 - records0) / orders:.1f} WAL records, "
        f"{(bytes1 - bytes0) / orders:,.0f} bytes per order"
    )


def instructions(variant: Variant, orders: int = 200) -> str:
    assert variant.proc is not None
    assert variant.work is not None
    private._stop(variant.proc, variant.data)
    dumps = variant.work / "dumps"
    dumps.mkdir()
    if private.AS_SERVER_USER:
        shutil.chown(dumps, "postgres")
    variant.proc = private._start(variant.data, variant.port, valgrind=dumps)
    totals = []
    for count in (private.WARM_UP, private.WARM_UP + orders):
        before = set(dumps.glob("callgrind.*"))
        pgbench(variant, "-c", "1", "-t", str(count))
        time.sleep(2)  # the backend has exited and written its file
        totals.append(max(private._backend_totals(dumps, before), default=0))
    return f"{(totals[1] - totals[0]) / orders:,.0f} PostgreSQL instructions per placement"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("mode", choices=["wal", "instructions", "tps"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chosen = variants()
    try:
        for variant in chosen:
            make(variant)
        if args.mode in ("wal", "instructions"):
            measure = wal if args.mode == "wal" else instructions
            for variant in chosen:
                print(f"{variant.name}: {measure(variant)}", flush=True)
            return 0
        for variant in chosen:
            pgbench(variant, "-c", "8", "-j", "2", "-T", "3")  # warm up
        results: dict[str, list[float]] = {v.name: [] for v in chosen}
        for round_ in range(args.rounds):
            for variant in chosen if round_ % 2 == 0 else chosen[::-1]:
                results[variant.name].append(pgbench(variant, "-c", "32", "-j", "2", "-T", "12"))
        base = results[chosen[0].name]
        for name, tps in results.items():
            figures = ", ".join(f"{x:.0f}" for x in tps)
            ratios = ", ".join(f"{x / b:.2f}" for x, b in zip(tps, base, strict=True))
            print(f"{name}: {figures} orders/s (ratio to head {ratios})")
        return 0
    finally:
        for variant in chosen:
            if variant.proc is not None:
                private._stop(variant.proc, variant.data)
            if variant.work is not None:
                shutil.rmtree(variant.work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
