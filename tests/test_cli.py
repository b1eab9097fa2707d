"""The `oms-api` command against the test database."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

import oms_api
from oms_api import migrations_runner
from oms_api.db import libpq_url
from oms_api.embedded import EmbeddedPostgres
from tests.conftest import create_database, drop_database, service_env
from tests.factories import bearer, create_channel
from tests.paper_reading import barcodes, words


def oms(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oms_api.cli", *args],
        env=service_env(DATABASE_URL=database_url, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_keys_create_list_revoke(
    database_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    channel = await create_channel(admin)
    created = oms(
        database_url, "keys", "create", "--name", "pos", "--scope", "orders:read",
        "--scope", "orders:write", "--channel", channel["code"],
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("oms_")

    listed = await client.get("/v1/channels", headers=bearer(secret))
    assert [c["id"] for c in listed.json()["data"]] == [channel["id"]]

    rows = oms(database_url, "keys", "list").stdout.splitlines()
    row = next(r for r in rows if secret[:12] in r)
    assert secret not in row
    assert "orders:read,orders:write" in row
    assert channel["id"] in row
    key_id = row.split("\t")[0]

    revoked = oms(database_url, "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert (await client.get("/v1/channels", headers=bearer(secret))).status_code == 401


def test_keys_create_refuses_unknown_channel_and_scope(database_url: str) -> None:
    missing = oms(
        database_url, "keys", "create", "--name", "x", "--scope", "orders:read", "--channel", "nope"
    )
    assert missing.returncode == 1
    assert "no channel" in missing.stderr
    bad_scope = oms(database_url, "keys", "create", "--name", "x", "--scope", "root")
    assert bad_scope.returncode == 2
    assert oms(database_url, "keys", "revoke", "key_nope").returncode == 1


def test_migrate_is_idempotent(database_url: str) -> None:
    result = oms(database_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert "database is at migration" in result.stdout


async def test_inventory_verify_reports_drift(database_url: str, admin: httpx.AsyncClient) -> None:
    from tests.factories import create_location, create_product, stock

    location = await create_location(admin)
    product = await create_product(admin)
    await stock(admin, product["sku"], location["id"], 5)
    clean = oms(database_url, "inventory", "verify")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ledger matches levels" in clean.stdout

    # Drift made behind the service's back (as a manual UPDATE would):
    import asyncpg

    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE inventory_levels SET on_hand = on_hand + 1 WHERE product_id = $1", product["id"]
        )
        drifted = oms(database_url, "inventory", "verify")
        assert drifted.returncode == 1
        assert f"DRIFT product={product['id']}" in drifted.stdout
        assert "on_hand=6 ledger=5" in drifted.stdout
    finally:
        await conn.execute(
            "UPDATE inventory_levels SET on_hand = on_hand - 1 WHERE product_id = $1", product["id"]
        )
        await conn.close()


async def test_inventory_verify_reports_reservations_that_do_not_add_up(
    database_url: str, admin: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    import asyncpg

    from tests.factories import Shop, order_body, place

    shop = await Shop.open(admin)
    product = await shop.product(admin, 5)
    order = (
        await place(client, order_body(None, [(product["sku"], 2)]), headers=shop.headers)
    ).json()
    line_id = order["lines"][0]["id"]
    assert oms(database_url, "inventory", "verify").returncode == 0
    conn = await asyncpg.connect(database_url)
    try:  # a reservation changed behind the service's back
        await conn.execute(
            "UPDATE order_reservations SET quantity = quantity + 1 WHERE line_id = $1", line_id
        )
        drifted = oms(database_url, "inventory", "verify")
        assert drifted.returncode == 1
        assert f"RESERVED product={product['id']}" in drifted.stdout
        assert "reserved=2 order_reservations=3" in drifted.stdout
        assert (
            f"LINE line={line_id} order={order['id']} quantity_reserved=2 order_reservations=3"
            in drifted.stdout
        )
    finally:
        await conn.execute(
            "UPDATE order_reservations SET quantity = quantity - 1 WHERE line_id = $1", line_id
        )
        await conn.close()


async def test_demo_seeds_a_shop_whose_keys_work(
    database_url: str, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    first = oms(database_url, "demo", OMS_DATA_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    # The demo's customers were told, in files in the data directory.
    mail = tmp_path / "mail"
    assert f".eml file(s) in {mail}" in first.stdout
    sent = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in mail.glob("*.eml")
    ]
    subjects = [str(m["Subject"]) for m in sent]
    for what in ("is confirmed", "has shipped", "has been delivered", "is approved", "Your refund"):
        assert any(what in s for s in subjects), (what, subjects)
    keys = dict(re.findall(r"^\s+(admin|web|pos) key\s+: (oms_\S+)", first.stdout, re.M))
    assert set(keys) == {"admin", "web", "pos"}
    web = bearer(keys["web"])
    orders = (await client.get("/v1/orders", headers=web)).json()["data"]
    assert sorted(o["status"] for o in orders) == sorted(
        [
            *["confirmed"] * 9,
            *["delivered"] * 8,
            "on_hold",
            "partially_shipped",
            "shipped",
        ]
    )  # the exchange placed one of the confirmed; two bought beanies
    returns = (await client.get("/v1/returns", params={"limit": 200}, headers=web)).json()["data"]
    assert sorted(r["status"] for r in returns) == sorted([
        "requested", "approved", "received", "completed", "completed", "rejected", "cancelled",
    ])  # fmt: skip
    admin_key = bearer(keys["admin"])
    shipments = (await client.get("/v1/shipments", params={"limit": 200}, headers=admin_key)).json()
    assert {s["status"] for s in shipments["data"]} == {
        "pending", "picking", "packed", "shipped", "delivered", "cancelled",
    }  # fmt: skip
    shipped = next(s for s in shipments["data"] if s["status"] == "shipped")
    assert shipped["latest_tracking"]["description"] == "Parcel handed over to DHL"
    packed = next(s for s in shipments["data"] if s["status"] == "packed")
    label = await client.get(f"/v1/shipments/{packed['id']}/label", headers=admin_key)
    assert label.headers["content-type"] == "application/pdf"
    assert packed["weight_grams"] == 650  # the demo's products weigh something: the hoodie
    assert "650 g" in " ".join(text for _, text, _, _ in words(label.content))
    assert barcodes(label.content, 203) == [packed["tracking_number"]]
    stock = (await client.get("/v1/inventory/TSHIRT-M-RED", headers=web)).json()
    assert stock["reserved"] == 2  # the web channel sees only its warehouse
    assert len(stock["levels"]) == 1
    pos_orders = (await client.get("/v1/orders", headers=bearer(keys["pos"]))).json()["data"]
    assert pos_orders == []
    # Automation: the beanie below its reorder point with its request open, and the order
    # that backordered it filled when two more arrived (the printed command finds it).
    requests = [
        r
        for sku in ("BEANIE-WOOL", "CAP-BLACK")
        for r in (await client.get("/v1/replenishments", params={"status": "open", "sku": sku},
                                   headers=admin_key)).json()["data"]
    ]  # fmt: skip
    # The beanie's, and the cap's: stocked below its point (4 of 5), reordered at its sale.
    assert sorted((r["sku"], r["quantity"]) for r in requests) == [
        ("BEANIE-WOOL", 24),
        ("CAP-BLACK", 20),
    ]
    filled_id = re.search(r"/v1/orders/(ord_\S+)/events", first.stdout)
    assert filled_id is not None
    filled = (await client.get(f"/v1/orders/{filled_id.group(1)}", headers=web)).json()
    assert [(x["quantity_reserved"], x["quantity_backordered"]) for x in filled["lines"]] == [
        (3, 0)
    ]
    timeline = (await client.get(f"/v1/orders/{filled_id.group(1)}/events", headers=web)).json()
    assert "order.backorder_filled" in [e["type"] for e in timeline["data"]]

    assert "curl -s http://127.0.0.1:8000/v1/orders" in first.stdout
    assert first.stdout.rstrip().endswith("(or seed and serve in one: oms-api serve --demo).")
    # Reuses the shop, issues new keys, no new orders. Its curl examples name the port the
    # API is to be served on: they said 8000 whatever the port (8000 may be taken).
    again = oms(database_url, "demo", "--port", "8123")
    assert again.returncode == 0, again.stderr
    assert "curl -s http://127.0.0.1:8123/v1/orders" in again.stdout
    assert "http://127.0.0.1:8000" not in again.stdout
    assert "Start the API to try them: oms-api serve --port 8123 " in again.stdout
    new_web = re.search(r"^\s+web key\s+: (oms_\S+)", again.stdout, re.M)
    assert new_web is not None
    assert (
        len((await client.get("/v1/orders", headers=bearer(new_web.group(1)))).json()["data"]) == 20
    )


async def test_demo_after_a_hand_made_web_channel_sells_from_its_own_warehouse(
    server_url: str,
) -> None:
    """The README's walkthrough makes a `web` channel selling from its own location; a demo
    run afterwards reuses that channel, so it must also sell from the demo's warehouse (it
    crashed on its first order, out of stock at the walkthrough's location)."""
    url = await create_database(server_url)
    try:
        await asyncio.to_thread(migrations_runner.upgrade, url)
        conn = await asyncpg.connect(libpq_url(url))
        try:
            await conn.execute(
                "INSERT INTO locations (id, code, name, kind, priority) "
                "VALUES ('loc_walk', 'berlin', 'Berlin', 'warehouse', 1)"
            )
            await conn.execute(
                "INSERT INTO channels (id, code, name, location_ids) "
                "VALUES ('ch_walk', 'web', 'Web', ARRAY['loc_walk'])"
            )
        finally:
            await conn.close()
        seeded = oms(url, "demo")
        assert seeded.returncode == 0, seeded.stderr
        conn = await asyncpg.connect(libpq_url(url))
        try:
            sells_from = await conn.fetchval("SELECT location_ids FROM channels WHERE code = 'web'")
            demo_warehouse = await conn.fetchval(
                "SELECT id FROM locations WHERE code = 'demo-berlin'"
            )
            placed = await conn.fetchval("SELECT count(*) FROM orders WHERE channel_id = 'ch_walk'")
        finally:
            await conn.close()
        assert sells_from == ["loc_walk", demo_warehouse]
        assert placed == 20
    finally:
        await drop_database(url)


def oms_embedded(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`oms-api ARGS` with no DATABASE_URL: the embedded database in `data_dir`, if any."""
    return subprocess.run(
        [sys.executable, "-m", "oms_api.cli", *args],
        env=service_env(OMS_DATA_DIR=str(data_dir)),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "--name", "prod", "--scope", "admin"],
        ["keys", "list"],
        ["keys", "revoke", "key_x"],
        ["inventory", "verify"],
        ["migrate"],
        ["worker"],
    ],
)
def test_without_database_url_a_command_needs_the_embedded_database_serve_made(
    tmp_path: Path, args: list[str]
) -> None:
    """Not a new, empty one, made on the spot, about which it reports success."""
    fresh = tmp_path / "fresh"
    result = oms_embedded(fresh, *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: DATABASE_URL is not set and no embedded database exists at {fresh} "
        "(run `oms-api serve` first or set DATABASE_URL)\n"
    )
    assert not fresh.exists()


@pytest.mark.embedded
def test_without_database_url_a_command_uses_the_embedded_database_and_says_so(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "oms-data"
    embedded = EmbeddedPostgres(data_dir, owner=True)  # as `oms-api serve` leaves it
    embedded.start()
    embedded.stop()
    created = oms_embedded(data_dir, "keys", "create", "--name", "dev", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    assert created.stderr.splitlines()[0] == (
        f"DATABASE_URL is not set: using the embedded database at {data_dir}"
    )
    listed = oms_embedded(data_dir, "keys", "list")
    assert created.stdout[:12] in listed.stdout


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "99999", "argument --port: must be from 1 to 65535, not 99999"),
        ("--port", "0", "argument --port: must be from 1 to 65535, not 0"),
        ("--port", "http", "argument --port: must be a whole number, not 'http'"),
        ("--workers", "0", "argument --workers: must be at least 1, not 0"),
        ("--workers", "-1", "argument --workers: must be at least 1, not -1"),
    ],
)
def test_serve_refuses_numbers_out_of_range(
    database_url: str, option: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oms_api.cli", "serve", "--no-migrate", option, value],
        env=service_env(DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 2
    assert result.stderr.endswith(f"oms-api serve: error: {message}\n")


def _changed(url: str, *, netloc: str | None = None, path: str | None = None) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=netloc or parts.netloc, path=path or parts.path))


def test_a_database_that_cannot_be_used_is_one_line_not_a_traceback(server_url: str) -> None:
    host = urlsplit(server_url).hostname or "127.0.0.1"
    address = urlsplit(server_url).netloc.split("@")[-1]
    cases = {
        _changed(server_url, path="/no_such_db"): 'database "no_such_db" does not exist',
        _changed(server_url, netloc=f"no_such_role@{address}"): 'role "no_such_role" does not exist',
        _changed(server_url, netloc=f"postgres@{host}:1"): "cannot connect to the database",
        "postgresql://postgres@no-such-host.invalid/x": "cannot connect to the database",
        "mysql://x@y/z": "DATABASE_URL must be a postgresql:// URL",
        "postgresql://postgres@127.0.0.1:abc/x": "DATABASE_URL is not a valid URL",
        "postgresql://postgres@127.0.0.1:99999/x": "DATABASE_URL is not a valid URL",
    }  # fmt: skip
    runs = [(url, ["inventory", "verify"]) for url in cases]
    runs += [(url, ["migrate"]) for url in list(cases)[:3]]  # Alembic connects its own way
    for url, command in runs:
        problem = cases[url]
        result = oms(url, *command)
        assert result.returncode == 1, (url, result.stderr)
        assert result.stderr.startswith("error: "), (url, result.stderr)
        assert problem in result.stderr, (url, result.stderr)
        assert len(result.stderr.splitlines()) == 1, (url, result.stderr)


@pytest.mark.parametrize(("group", "commands"), [("keys", "{create,list,revoke}"),
                                                 ("inventory", "{verify}")])  # fmt: skip
def test_a_command_group_alone_prints_its_own_help(group: str, commands: str) -> None:
    result = oms("postgresql://unused@127.0.0.1:1/x", group)
    assert result.returncode == 2
    assert result.stdout.startswith(f"usage: oms-api {group} [-h] {commands}")


def test_keys_create_refuses_a_blank_name(database_url: str) -> None:
    for name in ("", "  "):
        result = oms(database_url, "keys", "create", "--name", name, "--scope", "admin")
        assert result.returncode == 2, result.stdout
        assert "argument --name: must not be blank" in result.stderr
    names = [row.split("\t")[2] for row in oms(database_url, "keys", "list").stdout.splitlines()]
    assert all(name.strip() for name in names), names


def test_version() -> None:
    result = oms("postgresql://unused@127.0.0.1:1/x", "--version")
    assert result.returncode == 0
    assert result.stdout == f"oms-api {oms_api.__version__}\n"


def test_serve_on_a_port_in_use_says_so_before_starting_anything(tmp_path: Path) -> None:
    """The quickstart's port 8000 may be taken on a newcomer's machine: one line naming the
    port and `--port`, exit 1, and no embedded PostgreSQL started (or stopped) for nothing."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        data_dir = tmp_path / "oms-data"
        result = oms_embedded(data_dir, "serve", "--port", str(port))
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(another program has it: choose a free port with --port)\n"
    )
    assert not data_dir.exists()
