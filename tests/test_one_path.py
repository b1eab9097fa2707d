"""One path for events and one for stock: no code but their owners writes the tables
they keep.

- `events` (the outbox): inserted only by `oms_record_events`
  (`sql/functions/oms_record_events.sql`; `outbox.record_events` calls it from Python).
- `inventory_levels` and `inventory_movements`: written only by `oms_move_stock` (and
  `oms_open_levels`, which opens empty levels), so the ledger always sums to the levels.
- `order_reservations`: written only beside the matching stock moves, by
  `services/reservations.py` and placement's `oms_place_order`.

Read statically, as tests/test_one_door.py reads status writes: every string of SQL in
src/ and migrations/ (Python strings, f-strings and `+` joins folded; any `.sql` file, its
`--` comments left out), every ORM `insert`/`update`/`delete` of these tables' models, and
every construction of one (an ORM `session.add(Event(…))`). A revision in
migrations/versions/ may write them all: it holds frozen function texts and one-off data
migrations that run once, not a path of the running service.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_one_door import _text

ROOT = Path(__file__).resolve().parents[1]
SCANNED = (ROOT / "src", ROOT / "migrations")
REVISIONS = "migrations/versions/"
FUNCTIONS = "src/oms_api/sql/functions/"

# table → the only files that write it (besides the revisions).
OWNERS: dict[str, set[str]] = {
    "events": {FUNCTIONS + "oms_record_events.sql"},
    "inventory_levels": {FUNCTIONS + "oms_move_stock.sql", FUNCTIONS + "oms_open_levels.sql"},
    "inventory_movements": {FUNCTIONS + "oms_move_stock.sql"},
    "order_reservations": {
        "src/oms_api/services/reservations.py",
        FUNCTIONS + "oms_place_order.sql",
    },
}
MODELS = {
    "Event": "events",
    "InventoryLevel": "inventory_levels",
    "InventoryMovement": "inventory_movements",
    "OrderReservation": "order_reservations",
}

SQL_COMMENT = re.compile(r"--[^\n]*")
SQL_WRITE = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO|TRUNCATE(?:\s+TABLE)?|COPY)"
    r"\s+(?:ONLY\s+)?([\w.\"]+)",
    re.I,
)


def sql_writes(sql: str) -> Iterator[str]:
    """The kept tables `sql` writes (INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY)."""
    for match in SQL_WRITE.finditer(SQL_COMMENT.sub("", sql)):
        table = match.group(1).replace('"', "").lower().removeprefix("public.")
        if table in OWNERS:
            yield table


def python_writes(source: str) -> Iterator[tuple[int, str]]:
    """(line, table) for every write of a kept table in a Python module."""
    tree = ast.parse(source)
    seen = {  # docstrings and other bare strings are prose
        id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and _text(n.value)
    }
    builders = {"insert", "update", "delete"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            builders |= {a.asname for a in node.names if a.name in builders and a.asname}
    for node in ast.walk(tree):
        if id(node) in seen:
            continue
        if isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp):
            text = _text(node)
            if text is not None:
                for inner in ast.walk(node):  # a folded join is read once, whole
                    seen.add(id(inner))
                for table in sql_writes(text):
                    yield node.lineno, table
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = (
                func.id if isinstance(func, ast.Name)
                else func.attr if isinstance(func, ast.Attribute) else None
            )  # fmt: skip
            model = ast.unparse(node.args[0]).rpartition(".")[2]
            if name in builders and model in MODELS:  # insert(Event), sa.update(…)
                yield node.lineno, MODELS[model]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            called = ast.unparse(node.func)  # a row built to be added: Event(…), not asyncio's
            if called.removeprefix("models.") in MODELS:
                yield node.lineno, MODELS[called.removeprefix("models.")]


def writes() -> Iterator[tuple[str, int, str]]:
    for top in SCANNED:
        for path in sorted(top.rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.suffix == ".py":
                for line, table in python_writes(path.read_text(encoding="utf-8")):
                    yield relative, line, table
            elif path.suffix == ".sql":
                for table in sql_writes(path.read_text(encoding="utf-8")):
                    yield relative, 0, table


def test_only_their_owners_write_events_stock_and_reservations() -> None:
    found = list(writes())
    stray = [
        f"{path}:{line} writes {table}"
        for path, line, table in found
        if path not in OWNERS[table] and not path.startswith(REVISIONS)
    ]  # fmt: skip
    assert stray == [], (
        "events go through oms_record_events, stock through oms_move_stock, reservations "
        "through services/reservations.py:\n" + "\n".join(stray)
    )
    # The owners stay honest: each still writes what it owns.
    assert {(path, table) for path, _, table in found} >= {
        (path, table) for table, paths in OWNERS.items() for path in paths
    }


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('SQL = "INSERT INTO events (id, type) VALUES ($1, $2)"', ["events"]),
        ('SQL = "insert into public.events select * from staged"', ["events"]),
        (
            'SQL = "UPDATE inventory_levels SET on_hand = on_hand + $3 WHERE product_id = $1"',
            ["inventory_levels"],
        ),
        (
            'SQL = f"DELETE FROM inventory_movements WHERE cause_id = {c!r}"',
            ["inventory_movements"],
        ),
        ('SQL = "UPDATE ONLY " + "inventory_levels SET reserved = 0"', ["inventory_levels"]),
        (
            'SQL = "WITH gone AS (DELETE FROM order_reservations r WHERE r.line_id = $1 '
            'RETURNING r.*) SELECT count(*) FROM gone"',
            ["order_reservations"],
        ),
        ('SQL = "TRUNCATE inventory_movements"', ["inventory_movements"]),
        ("stmt = insert(Event).values(id=i)", ["events"]),
        ("stmt = sa.update(InventoryLevel).values(on_hand=0)", ["inventory_levels"]),
        ("stmt = delete(models.OrderReservation)", ["order_reservations"]),
        (
            "from sqlalchemy import delete as remove\nstmt = remove(OrderReservation)",
            ["order_reservations"],
        ),
        ("session.add(InventoryMovement(id=i, sku=s))", ["inventory_movements"]),
        ("session.add(models.Event(id=i))", ["events"]),
        # Reads, locks, upserts of other tables, prose: not writes.
        ('SQL = "SELECT * FROM inventory_levels FOR UPDATE OF inventory_levels"', []),
        ('SQL = "SELECT id FROM events WHERE id > $1 ORDER BY id"', []),
        (
            'SQL = "INSERT INTO orders (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET x = 1"',
            [],
        ),
        ('SQL = "-- UPDATE inventory_levels is oms_move_stock\'s\\nSELECT 1"', []),
        ('def f():\n    """INSERT INTO events: only oms_record_events does."""', []),
        ("stmt = select(InventoryLevel).where(InventoryLevel.location_id == l)", []),
        ("stop = asyncio.Event()", []),
    ],
)
def test_the_scan_sees_every_kind_of_write(source: str, expected: list[str]) -> None:
    assert [table for _, table in python_writes(source)] == expected
