"""Comparing the functions of a migrated database with their source files
(src/oms_api/sql/functions/): PostgreSQL itself normalises both sides. Each file is run
into a scratch schema, in a transaction rolled back after, and `pg_get_functiondef` of what
it made (name, arguments and their defaults, return type, language, volatility, every other
attribute, and the body byte for byte) is compared with that of the installed function.

And its triggers with `TRIGGERS`: the functions a trigger calls run without any caller
asking, so the database holds exactly the triggers listed there, each as listed."""

from __future__ import annotations

import difflib

import asyncpg

SCRATCH = "oms_function_source_check"

# Functions of the schema the migrations build, less those an extension owns.
LIVE_FUNCTIONS = """
SELECT p.proname AS name, pg_get_functiondef(p.oid) AS definition
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1
  AND NOT EXISTS (SELECT 1 FROM pg_depend d
                  WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                    AND d.deptype = 'e')
ORDER BY p.proname, p.oid
"""


# Every trigger the migrations create (user triggers; not the internal ones PostgreSQL
# makes for foreign keys): name → (table, function it executes, `pg_get_triggerdef`).
# A trigger is schema, like an index: it lives in the revision that creates it (0003 for
# `events_fan_out`). A revision that adds, changes or drops one changes this list.
TRIGGERS: dict[str, tuple[str, str, str]] = {
    "events_fan_out": (
        "events",
        "oms_fan_out_events",
        "CREATE TRIGGER events_fan_out AFTER INSERT ON public.events REFERENCING NEW TABLE "
        "AS new_events FOR EACH STATEMENT EXECUTE FUNCTION oms_fan_out_events()",
    ),
}

LIVE_TRIGGERS = """
SELECT t.tgname AS name, c.relname AS table, p.proname AS function,
       pg_get_triggerdef(t.oid) AS definition
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid
WHERE n.nspname = $1 AND NOT t.tgisinternal
ORDER BY t.tgname, c.relname
"""


async def trigger_drift(
    conn: asyncpg.Connection, expected: dict[str, tuple[str, str, str]]
) -> list[str]:
    """Every difference between the triggers on the `public` schema's tables and
    `expected`, one sentence each; none when they agree."""
    problems: list[str] = []
    live: dict[str, list[tuple[str, str, str]]] = {}
    for row in await conn.fetch(LIVE_TRIGGERS, "public"):
        # Qualified or not by the session's search_path: compared as if in `public`.
        definition = row["definition"].replace(
            f" ON {row['table']} ", f" ON public.{row['table']} "
        )
        live.setdefault(row["name"], []).append((row["table"], row["function"], definition))
    for name in sorted(live.keys() - expected.keys()):
        tables = ", ".join(table for table, _, _ in live[name])
        problems.append(f"trigger {name} on {tables}: in the database, but not in TRIGGERS")
    for name in sorted(expected.keys() - live.keys()):
        problems.append(f"trigger {name}: in TRIGGERS, but the migrations do not create it")
    for name in sorted(live.keys() & expected.keys()):
        if live[name] != [expected[name]]:
            problems.append(
                f"trigger {name}: the database has {live[name]}, TRIGGERS says {expected[name]}"
            )
    return problems


async def function_drift(
    conn: asyncpg.Connection,
    sources: dict[str, str],
    triggers: dict[str, tuple[str, str, str]] = TRIGGERS,
) -> list[str]:
    """Every difference between the functions in the `public` schema and `sources`
    (name → text of its file), and between its triggers and `triggers`, one sentence
    each; none when they agree."""
    problems: list[str] = await trigger_drift(conn, triggers)
    live: dict[str, list[str]] = {}
    for row in await conn.fetch(LIVE_FUNCTIONS, "public"):
        live.setdefault(row["name"], []).append(row["definition"])
    for name in sorted(live.keys() - sources.keys()):
        problems.append(f"{name}: in the database, but src/oms_api/sql/functions/ has no file")
    for name in sorted(sources.keys() - live.keys()):
        problems.append(f"{name}: has a source file, but the migrations do not create it")
    for name in sorted(live.keys() & sources.keys()):
        if len(live[name]) != 1:
            problems.append(f"{name}: {len(live[name])} functions of that name (overloads)")
            continue
        try:
            expected = await _as_installed(conn, name, sources[name])
        except (asyncpg.PostgresError, AssertionError) as error:
            problems.append(f"{name}: its source file does not install it: {error}")
            continue
        if expected != live[name][0]:
            diff = "\n".join(
                difflib.unified_diff(
                    expected.splitlines(),
                    live[name][0].splitlines(),
                    "source file",
                    "database at head",
                    lineterm="",
                )
            )
            problems.append(f"{name}: the database's definition differs from its source\n{diff}")
    return problems


async def _as_installed(conn: asyncpg.Connection, name: str, source: str) -> str:
    """`pg_get_functiondef` of `source` as PostgreSQL installs it, named as in `public`:
    run in a scratch schema, inside a transaction that is rolled back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(f"CREATE SCHEMA {SCRATCH}")
        # New objects go to the first schema on the path; `public` stays on it so that a
        # signature naming one of the application's types still resolves.
        await conn.execute(f"SET LOCAL search_path = {SCRATCH}, public")
        await conn.execute(source)
        created = await conn.fetch(LIVE_FUNCTIONS, SCRATCH)
        names = [row["name"] for row in created]
        assert names == [name], f"the file creates {names or 'no function'} in the schema"
        definition: str = created[0]["definition"]
        header = f"FUNCTION {SCRATCH}."
        assert header in definition.partition("\n")[0], "it names a schema of its own"
        return definition.replace(header, "FUNCTION public.", 1)
    finally:
        await transaction.rollback()
