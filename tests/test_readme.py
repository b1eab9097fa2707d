"""The README's walkthrough, run as written: its `sh` block under "One order's life, with
curl", with bash, curl and jq, against `oms-api serve` on a fresh database. A command in the
README that does not work is a bug; this is where it shows."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import ROOT, LiveServer, create_database, drop_database, service_env

# Each curl also writes "<status> <method> <url>" to stderr (curl's `%{stderr}`), so the
# walkthrough's own output on stdout, which its `jq` calls read, is untouched.
STATUS_LINE = re.compile(r"^(\d{3}) (\w+) (\S+)$")
PRELUDE = """curl() { command curl --write-out '%{stderr}%{http_code} %{method} %{url_effective}\\n' "$@"; }
"""
# The answers the walkthrough shows on purpose that are not a success, in its order (status,
# method, the path's last segment): an order for more than there is (insufficient_stock),
# and holding an order it has just cancelled (invalid_transition naming what is allowed).
EXPECTED_REFUSALS = [("409", "POST", "orders"), ("409", "POST", "hold")]


def walkthrough() -> str:
    section = (ROOT / "README.md").read_text().split("## One order's life, with curl", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the README's walkthrough has no sh block"
    return block.group(1)


async def test_the_readme_walkthrough_runs_as_written(server_url: str, tmp_path: Path) -> None:
    for tool in ("bash", "curl", "jq"):
        assert shutil.which(tool), f"the walkthrough needs {tool}"
    url = await create_database(server_url)
    server = LiveServer(service_env(DATABASE_URL=url, OMS_ADMIN_API_KEY="dev-admin-key"))
    try:
        server.wait_ready(60)
        script = walkthrough()
        assert "API=http://127.0.0.1:8000\n" in script
        script = script.replace("API=http://127.0.0.1:8000\n", f"API={server.url}\n", 1)
        run = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", PRELUDE + script], cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.stop()
        await drop_database(url)
    assert run.returncode == 0, run.stderr
    answers = [m.groups() for m in map(STATUS_LINE.match, run.stderr.splitlines()) if m]
    assert len(answers) == script.count("curl -s"), run.stderr
    refused = [
        (status, method, address.rsplit("/", 1)[-1]) for status, method, address in answers
        if not status.startswith("2")
    ]  # fmt: skip
    assert refused == EXPECTED_REFUSALS, run.stderr
    # What the comments promise, as the walkthrough prints it.
    out = run.stdout
    assert '"code": "insufficient_stock"' in out or '"code":"insufficient_stock"' in out
    assert '"invalid_transition"' in out
    for state in ("shipped", "delivered", "partially_refunded"):
        assert f'"{state}"' in out, state
    assert (tmp_path / "label.pdf").read_bytes().startswith(b"%PDF")
    assert (tmp_path / "return-slip.pdf").read_bytes().startswith(b"%PDF")
