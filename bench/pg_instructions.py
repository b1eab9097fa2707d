"""Instructions PostgreSQL executes per placement, counted by callgrind: noise-free.

    .venv/bin/python bench/pg_instructions.py [--orders 200] [--against GIT_REF]

The database's side of `bench/instructions.py`. For each tree (this checkout, and with
`--against` that git ref in a temporary worktree) it makes a private PostgreSQL cluster
(`initdb` in a temporary directory, a free loopback port), migrates and seeds it as
`bench/run.py` does, restarts it under `valgrind --tool=callgrind --trace-children=yes`,
and runs the service's placement SQL as `bench/run.py`'s pgbench script sends it (the same
statements; every parameter an expression the planner cannot see through, as a bound
value is to the service's generic plans) twice on one connection each: 20 orders, then
20 + `--orders`. The backend's instructions of the second run less the first's are
`--orders` placements, without connecting or warming up.

Needs valgrind and pgbench; takes a few minutes per tree.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(
    subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
    or "/usr/lib/postgresql/15/bin"
)
WARM_UP = 20
# initdb and postgres refuse to run as root: as root, run them as the `postgres` user.
AS_SERVER_USER = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(data: Path, port: int, *, valgrind: Path | None = None) -> subprocess.Popen[bytes]:
    command = [str(BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
               "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
               "-c", "autovacuum=off", "-c", "shared_buffers=128MB"]  # fmt: skip
    if valgrind is not None:
        command = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                   f"--callgrind-out-file={valgrind}/callgrind.%p", *command]  # fmt: skip
    proc = subprocess.Popen(
        [*AS_SERVER_USER, *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(600):
        ready = subprocess.run([str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)])
        if ready.returncode == 0:
            return proc
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the private PostgreSQL did not start")


def _stop(proc: subprocess.Popen[bytes], data: Path) -> None:
    subprocess.run([*AS_SERVER_USER, str(BIN / "pg_ctl"), "stop", "-D", str(data), "-m", "fast",
                    "-t", "300"], capture_output=True)  # fmt: skip
    proc.wait(300)


def _pgbench(url: str, script: Path, orders: int) -> None:
    out = subprocess.run(
        [str(BIN / "pgbench"), "-n", "-M", "prepared", "-c", "1", "-t", str(orders),
         "-f", str(script), url],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0 or "failed transactions: 0 " not in out.stdout:
        raise RuntimeError(f"pgbench failed:\n{out.stdout}\n{out.stderr}")


def _backend_totals(folder: Path, before: set[Path]) -> list[int]:
    """Each new callgrind file's total (a backend's, when it has run SQL)."""
    totals = []
    for dump in sorted(set(folder.glob("callgrind.*")) - before):
        match = re.search(r"^(?:totals|summary): (\d+)", dump.read_text(errors="replace"), re.M)
        if match:
            totals.append(int(match.group(1)))
    return totals


def count(tree: Path, orders: int, keep: Path | None = None) -> float:
    """Instructions per placement of the server's SQL as `tree` defines it."""
    env = os.environ | {"PYTHONPATH": str(tree / "src")}
    work = Path(tempfile.mkdtemp(prefix="oms-pg-callgrind-"))
    data, dumps = work / "data", work / "dumps"
    dumps.mkdir()
    if AS_SERVER_USER:
        shutil.chown(work, "postgres")
        shutil.chown(dumps, "postgres")
    try:
        subprocess.run(
            [*AS_SERVER_USER, str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8"],
            check=True, capture_output=True,
        )  # fmt: skip
        port = _free_port()
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        proc = _start(data, port)
        try:
            # Migrate and seed with the tree's own code, and write its pgbench script.
            subprocess.run(
                [sys.executable, "-c", _SETUP, str(tree), url, str(work / "place.sql")],
                env=env, check=True,
            )  # fmt: skip
        finally:
            _stop(proc, data)
        proc = _start(data, port, valgrind=dumps)
        try:
            script = work / "place.sql"
            before = set(dumps.glob("callgrind.*"))
            _pgbench(url, script, WARM_UP)
            time.sleep(2)  # the backend has exited and written its file
            # The backend's file: by far the largest of those written since.
            short = max(_backend_totals(dumps, before), default=0)
            before = set(dumps.glob("callgrind.*"))
            _pgbench(url, script, WARM_UP + orders)
            time.sleep(2)
            long = max(_backend_totals(dumps, before), default=0)
            if keep is not None:  # the measured backend's file, for callgrind_annotate
                newest = max(
                    set(dumps.glob("callgrind.*")) - before, key=lambda p: p.stat().st_size
                )
                shutil.copy(newest, keep)
        finally:
            _stop(proc, data)
        return (long - short) / orders
    finally:
        shutil.rmtree(work, ignore_errors=True)


# Run with the tree's src first on the path: its migrations, its seed, its placement SQL.
_SETUP = """
import asyncio, sys
from pathlib import Path
tree, url, script = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
sys.path.insert(0, str(tree / "bench"))
import run
from oms_api import migrations_runner
from oms_api.domain.access import generate_key
migrations_runner.upgrade(url)
secret = generate_key()
asyncio.run(run.seed(url, secret))
script.write_text(run.pgbench_script(secret))
"""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--against", metavar="GIT_REF", help="also count this git ref's SQL")
    parser.add_argument(
        "--keep", metavar="FILE",
        help="copy this checkout's measured backend's callgrind file here (callgrind_annotate)",
    )  # fmt: skip
    args = parser.parse_args()
    for tool in ("valgrind", "git"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is needed")
    trees: list[tuple[str, Path]] = [("this checkout", ROOT)]
    worktree = None
    if args.against:
        worktree = Path(tempfile.mkdtemp(prefix="oms-against-")) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach",
                        str(worktree), args.against], check=True)  # fmt: skip
        # The same bench code for both trees: this checkout's seed and script builder.
        for name in ("run.py",):
            shutil.copy(ROOT / "bench" / name, worktree / "bench" / name)
        trees.insert(0, (args.against, worktree))
    try:
        for label, tree in trees:
            keep = Path(args.keep) if args.keep and tree == ROOT else None
            per_order = count(tree, args.orders, keep)
            print(f"{label}: {per_order:,.0f} PostgreSQL instructions per placement")
    finally:
        if worktree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(worktree)], check=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
