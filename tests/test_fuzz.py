"""Schemathesis against the committed OpenAPI document and a live server: every default
check (no 500, responses match their documented schemas, status codes and headers,
schema-valid requests accepted, invalid ones refused). Configuration and its reasons:
`schemathesis.toml`. Its own fresh database: the fuzzer changes settings freely.

OMS_FUZZ_EXAMPLES (default 25) and OMS_FUZZ_SEED (default 1) widen or vary the run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from oms_api import migrations_runner
from tests.conftest import ADMIN_KEY, LiveServer, create_database, drop_database, service_env

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(600)
async def test_schemathesis_finds_nothing(server_url: str) -> None:
    url = await create_database(server_url)
    await asyncio.to_thread(migrations_runner.upgrade, url)
    server = LiveServer(service_env(DATABASE_URL=url, OMS_DISPATCHER="false"), "--no-migrate")
    try:
        server.wait_ready()
        command = [
            str(Path(sys.executable).parent / "schemathesis"), "run", "openapi/openapi.json",
            "--url", server.url, "-H", f"Authorization: Bearer {ADMIN_KEY}",
            "-n", os.environ.get("OMS_FUZZ_EXAMPLES", "25"),
            "--seed", os.environ.get("OMS_FUZZ_SEED", "1"),
            "--request-timeout", "15", "--no-color",
        ]  # fmt: skip
        result = await asyncio.to_thread(
            subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=540
        )
    finally:
        server.stop()
        await drop_database(url)
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, report
    assert "failures" not in result.stdout.splitlines()[-1] or " 0 failures" in result.stdout, (
        report
    )
