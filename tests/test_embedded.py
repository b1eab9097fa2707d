"""The default, with no DATABASE_URL: `oms-api serve` starts an embedded PostgreSQL in
OMS_DATA_DIR, migrates it, and stops it on Ctrl-C or SIGTERM; the data survives."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import ADMIN_KEY, LiveServer, service_env

pytestmark = pytest.mark.embedded


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and str(pgdata) in cmdline:
            found.append(proc)
    return found


def _serve(data_dir: Path, *args: str) -> LiveServer:
    server = LiveServer(
        service_env(OMS_DATA_DIR=str(data_dir), OMS_TEST_LOG_DIR=str(data_dir.parent)), *args
    )
    server.wait_ready(timeout=60)
    return server


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGTERM, "1"), (signal.SIGINT, "2")])
def test_serve_runs_embedded_postgres_and_stops_it_cleanly(
    tmp_path: Path, sig: signal.Signals, workers: str
) -> None:
    data_dir = tmp_path / "oms-data"
    pgdata = data_dir / "pg"
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}

    server = _serve(data_dir, "--workers", workers)
    assert _postgres_processes(pgdata), "embedded PostgreSQL should be running"
    created = httpx.post(
        server.url + "/v1/channels", json={"code": "kept", "name": "Kept"}, headers=auth
    )
    assert created.status_code == 201
    assert server.stop(sig) in (0, 128 + sig, -sig)
    assert _postgres_processes(pgdata) == [], "no stray postgres after shutdown"

    again = _serve(data_dir)
    try:
        listed = httpx.get(again.url + "/v1/channels", headers=auth).json()["data"]
        assert [c["code"] for c in listed] == ["kept"], "data survives a restart"
    finally:
        again.stop()
    assert _postgres_processes(pgdata) == []


def test_serve_adopts_a_server_orphaned_by_a_killed_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "oms-data"
    pgdata = data_dir / "pg"
    first = _serve(data_dir)
    first.stop(signal.SIGKILL)
    assert _postgres_processes(pgdata), "SIGKILL leaves the postmaster behind"
    second = _serve(data_dir)
    assert httpx.get(second.url + "/readyz").status_code == 200
    second.stop()
    assert _postgres_processes(pgdata) == []


def test_a_second_serve_on_the_same_data_directory_leaves_the_first_its_database(
    tmp_path: Path,
) -> None:
    """Any number of `serve` processes may share one database, the embedded one too: the
    one that stops (or fails to start, on a port already taken) must not stop PostgreSQL
    under the others. The last one out stops it."""
    data_dir = tmp_path / "oms-data"
    pgdata = data_dir / "pg"
    first = _serve(data_dir)
    second = _serve(data_dir)
    try:
        assert second.stop() in (0, 128 + signal.SIGTERM, -signal.SIGTERM)
        assert _postgres_processes(pgdata), "the first serve still uses it"
        assert httpx.get(first.url + "/readyz").status_code == 200
    finally:
        first.stop()
    assert _postgres_processes(pgdata) == [], "the last serve out stops it"
