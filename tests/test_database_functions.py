"""Every database function has one source: its file in src/oms_api/sql/functions/.

A database migrated to head must hold exactly the functions those files define, each
exactly as its file defines it (tests/db_functions.py compares them; test_migrations.py
checks a fresh database after each upgrade to head). Here: that check on the session's
database, and proof that it fails on a function without a file, a file without a function,
or any difference between the two; and that each file names the revision that installs
its text. The same for triggers against the list in tests/db_functions.py: one extra,
missing or changed fails.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from oms_api import migrations_runner
from oms_api.ids import new_id
from oms_api.sql import function_sources
from tests.db_functions import TRIGGERS, function_drift, trigger_drift


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def test_a_database_at_head_has_exactly_the_functions_of_the_source_files(
    conn: asyncpg.Connection,
) -> None:
    problems = await function_drift(conn, function_sources())
    assert problems == [], "\n\n".join(problems)


async def test_a_function_without_a_source_file_fails(conn: asyncpg.Connection) -> None:
    transaction = conn.transaction()  # rolled back: nothing of this outlives the test
    await transaction.start()
    try:
        await conn.execute("CREATE FUNCTION oms_stray() RETURNS integer LANGUAGE sql AS 'SELECT 1'")
        await conn.execute(
            "CREATE FUNCTION oms_move_stock(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n'"
        )
        problems = await function_drift(conn, function_sources())
        assert [p.split(":")[0] for p in problems] == ["oms_stray", "oms_move_stock"]
        assert "has no file" in problems[0]
        assert "overloads" in problems[1]
    finally:
        await transaction.rollback()


async def test_a_source_file_without_a_function_fails(conn: asyncpg.Connection) -> None:
    sources = function_sources() | {
        "oms_missing": "CREATE OR REPLACE FUNCTION oms_missing() RETURNS integer "
        "LANGUAGE sql AS 'SELECT 1';"
    }
    problems = await function_drift(conn, sources)
    assert len(problems) == 1
    assert problems[0].startswith("oms_missing: has a source file, but the migrations")


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        # the body: one comment's word
        ("oms_move_stock", "a level from zero", "a level from nothing"),
        # an argument's default
        ("oms_record_events", "p_data json DEFAULT NULL", "p_data json DEFAULT '{}'"),
        # the return type
        ("oms_place_order", "(outcome text, order_id text)", "(outcome text, order_id bigint)"),
        # an attribute outside the body
        ("oms_idempotency_claim", "LANGUAGE plpgsql VOLATILE", "LANGUAGE plpgsql STABLE"),
    ],
)
async def test_a_source_file_that_differs_from_the_database_fails(
    conn: asyncpg.Connection, name: str, old: str, new: str
) -> None:
    sources = function_sources()
    assert old in sources[name]
    sources[name] = sources[name].replace(old, new, 1)
    problems = await function_drift(conn, sources)
    assert len(problems) == 1
    assert problems[0].startswith(f"{name}: the database's definition differs from its source")


async def test_a_source_file_must_create_the_function_it_is_named_after(
    conn: asyncpg.Connection,
) -> None:
    sources = function_sources()
    sources["oms_move_stock"] = sources["oms_fan_out_events"]
    problems = await function_drift(conn, sources)
    assert len(problems) == 1
    assert "does not install it: the file creates ['oms_fan_out_events']" in problems[0]


async def test_the_triggers_are_exactly_the_known_ones(conn: asyncpg.Connection) -> None:
    assert await trigger_drift(conn, TRIGGERS) == []
    assert set(TRIGGERS) == {"events_fan_out"}


async def test_an_extra_trigger_fails(conn: asyncpg.Connection) -> None:
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(
            "CREATE TRIGGER oms_stray AFTER UPDATE ON orders "
            "FOR EACH STATEMENT EXECUTE FUNCTION oms_fan_out_events()"
        )
        problems = await function_drift(conn, function_sources())
        assert problems == ["trigger oms_stray on orders: in the database, but not in TRIGGERS"]
    finally:
        await transaction.rollback()


async def test_a_missing_trigger_fails(conn: asyncpg.Connection) -> None:
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("DROP TRIGGER events_fan_out ON events")
        problems = await function_drift(conn, function_sources())
        assert problems == [
            "trigger events_fan_out: in TRIGGERS, but the migrations do not create it"
        ]
    finally:
        await transaction.rollback()


async def test_a_changed_trigger_fails(conn: asyncpg.Connection) -> None:
    transaction = conn.transaction()
    await transaction.start()
    try:  # the same name, table and function; fired per row instead of per statement
        await conn.execute("DROP TRIGGER events_fan_out ON events")
        await conn.execute(
            "CREATE TRIGGER events_fan_out AFTER INSERT ON events "
            "FOR EACH ROW EXECUTE FUNCTION oms_fan_out_events()"
        )
        problems = await function_drift(conn, function_sources())
        assert len(problems) == 1
        assert problems[0].startswith("trigger events_fan_out: the database has")
    finally:
        await transaction.rollback()


# The head revision of each function is named in its file; that revision's text is the
# file's statement (frozen there), and no later revision creates the function again.
INSTALLED_BY = re.compile(r"installed by migration (\d{4})")
CREATE = re.compile(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)\(")


def _revision_files() -> dict[str, Path]:
    versions = migrations_runner.migrations_dir() / "versions"
    return {path.name[:4]: path for path in sorted(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))}


@pytest.mark.parametrize("name", sorted(function_sources()))
def test_each_source_file_is_the_text_its_head_revision_installs(name: str) -> None:
    source = function_sources()[name]
    found = INSTALLED_BY.search(source)
    assert found, f"{name}.sql names no revision ('installed by migration NNNN')"
    revisions = _revision_files()
    revision = found.group(1)
    statement = source[source.index("CREATE OR REPLACE FUNCTION") :].rstrip().removesuffix(";")
    text = revisions[revision].read_text(encoding="utf-8")
    assert statement in text or statement.replace("CREATE OR REPLACE", "CREATE", 1) in text, (
        f"{revisions[revision].name} does not install {name}.sql's text"
    )
    later = [
        path.name
        for number, path in revisions.items()
        if number > revision and name in CREATE.findall(path.read_text(encoding="utf-8"))
    ]
    assert later == [], f"{name} is created again by {later}: its file names {revision}"


async def test_ids_the_database_makes_have_the_shape_the_service_makes(
    conn: asyncpg.Connection,
) -> None:
    """`oms_new_id` (replenishment requests, stock events) as `oms_api.ids.new_id`: the
    prefix, 26 Crockford characters, the first ten the time in milliseconds — so they sort
    by creation with the service's ids — the rest random."""
    before = int(time.time() * 1000)
    made = [await conn.fetchval("SELECT oms_new_id('rpl')") for _ in range(50)]
    after = int(time.time() * 1000)
    assert all(re.fullmatch(r"rpl_[0-9A-HJKMNP-TV-Z]{26}", i) for i in made), made
    assert len(set(made)) == 50
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for made_id in made:
        millis = 0
        for char in made_id[4:14]:
            millis = millis * 32 + alphabet.index(char)
        assert before - 5 <= millis <= after + 5
    python = new_id("rpl")
    assert len(python) == len(made[0])
    assert python[:10] >= made[0][:10]  # made later, sorts later (to the millisecond)
