"""One door per state change: no code but `services/transitions.py` writes the `status`
of an order, a shipment, a return or a pickup.

Read statically: every string of SQL in src/ and migrations/ (Python strings, f-strings
and `+` joins folded, and any `.sql` file), every ORM `update(…).values(status=…)` and
every assignment to an attribute `status` (but `self.status`: an object's own, like an
error's HTTP status; docstrings are prose). Creating a row with its first state (an
`INSERT`, an ORM constructor) is not a change and is not looked at.

Allowed besides the door: webhook endpoints (enabled → disabled/deleted) and deliveries
(pending → succeeded/failed/dropped, retried) — a dispatcher's bookkeeping with no machine of
the SPEC's, written by the dispatcher and the webhook service only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from oms_api.services.transitions import MACHINES

ROOT = Path(__file__).resolve().parents[1]
SCANNED = (ROOT / "src", ROOT / "migrations")
DOOR = "src/oms_api/services/transitions.py"

# (file, what is written): the only writers of a status column besides the door. Webhook
# endpoints' and deliveries' statuses are the dispatcher's bookkeeping, outside the five
# machines (order, shipment, return, pickup,
# replenishment): no machine decides them, so no door.
ALLOWED = {
    (DOOR, "{self.table}"),
    ("src/oms_api/webhooks/dispatcher.py", "webhook_deliveries"),
    # Dropping an endpoint's pending deliveries (deleted or disabled): delivery bookkeeping.
    ("src/oms_api/webhooks/deliveries.py", "webhook_deliveries"),
    ("src/oms_api/webhooks/dispatcher.py", "webhook_endpoints"),
    ("src/oms_api/services/webhooks.py", "WebhookDelivery"),
    # Deleting an endpoint: `UPDATE … WHERE id = … AND status <> 'deleted' RETURNING`.
    ("src/oms_api/services/webhooks.py", "WebhookEndpoint"),
    # Customer notifications (pending → sent/failed/skipped, retried): the notifier's
    # bookkeeping, as webhook deliveries are the dispatcher's.
    ("src/oms_api/services/notifier.py", "notifications"),
    # Migration 0020: deliveries left pending by endpoints already deleted or disabled
    # become `dropped`, as deleting or disabling one now makes them (delivery bookkeeping).
    ("migrations/versions/0020_webhook_fair_claim_dropped.py", "webhook_deliveries"),
}
MACHINE_MODELS = {"Order", "Shipment", "Return", "Pickup", "Replenishment"}

# A SET list ends at the first WHERE, RETURNING, FROM or `;` outside parentheses (a
# subquery's own FROM and WHERE are inside them), or at a `)` closing a group the SET is
# in. Only its top level assigns: `status` inside a subquery is read, not written, but a
# parenthesised column list `SET (a, status) = (…)` is assigned. Not `payment_status`.
SET_WORD = re.compile(r"\bSET\b", re.I)
SET_TOKEN = re.compile(r"\(|\)|\bWHERE\b|\bRETURNING\b|\bFROM\b|;", re.I)
STATUS_WRITE = re.compile(r"(?<![\w.])status\s*=(?!=)", re.I)
STATUS_COLUMN = re.compile(r"(?<![\w.])status\b", re.I)
ASSIGNED = re.compile(r"\s*=(?!=)")
WRITTEN_TABLE = re.compile(r"\b(?:UPDATE|INSERT\s+INTO)\s+(?:ONLY\s+)?(\S+)", re.I)


def _set_clause_writes_status(sql: str, start: int) -> bool:
    """Does the SET list starting at `start` assign `status` at its top level?"""
    depth, top, group_start = 0, start, 0
    top_level: list[str] = []
    for token in SET_TOKEN.finditer(sql, start):
        word = token.group().upper()
        if word == "(":
            if depth == 0:
                top_level.append(sql[top : token.start()])
                group_start = token.end()
            depth += 1
        elif word == ")":
            if depth == 0:
                break
            depth -= 1
            if depth == 0:
                top = token.end()
                column_list = sql[group_start : token.start()]
                if ASSIGNED.match(sql, top) and STATUS_COLUMN.search(column_list):
                    return True  # `(a, status) = …`: a list of columns assigned
        elif depth == 0:
            top_level.append(sql[top : token.start()])
            break
    else:
        if depth == 0:
            top_level.append(sql[top:])
    return any(STATUS_WRITE.search(part) for part in top_level)


def sql_status_writes(sql: str) -> Iterator[str]:
    """The table of every SET list in `sql` that assigns `status` (an UPDATE's, or an
    upsert's `ON CONFLICT … DO UPDATE SET`, named by its INSERT)."""
    for clause in SET_WORD.finditer(sql):
        if _set_clause_writes_status(sql, clause.end()):
            before = [
                m.group(1) for m in WRITTEN_TABLE.finditer(sql, 0, clause.start())
                if m.group(1).upper() != "SET"
            ]  # fmt: skip
            yield before[-1] if before else "?"


def _text(node: ast.AST) -> str | None:
    """A string expression's text: f-string holes as `{expr}`, `+` joins folded."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(v.value) if isinstance(v, ast.Constant)
            else "{" + ast.unparse(v.value) + "}" if isinstance(v, ast.FormattedValue) else ""
            for v in node.values
        )  # fmt: skip
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        if left is not None or right is not None:
            return (left or "") + (right or "")
    return None


def _statement_builders(tree: ast.AST) -> dict[str, str]:
    """Local name → `update`/`insert` for SQLAlchemy's statement builders as a module
    imports them (`from sqlalchemy import update as upd`); the plain names by default."""
    names = {"update": "update", "insert": "insert"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in ("update", "insert"):
                    if alias.asname:
                        names.pop(alias.asname, None)
                    names[alias.asname or alias.name] = alias.name
    return names


def _builder(node: ast.Call, builders: dict[str, str]) -> str | None:
    """`update`/`insert` if `node` calls one (by its local name, or `sa.update(…)`)."""
    if isinstance(node.func, ast.Name):
        return builders.get(node.func.id)
    if (
        isinstance(node.func, ast.Attribute)
        and node.func.attr in ("update", "insert")
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in ("sa", "sqlalchemy")
    ):
        return node.func.attr
    return None


def _statement_root(node: ast.AST, builders: dict[str, str]) -> ast.Call | None:
    """The `update(X)`/`insert(X)` call a chain `….where(…).values(…)` starts from."""
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Call):
            if _builder(node, builders):
                return node
            node = node.func
        else:
            node = node.value
    return None


def _dict_keys(node: ast.AST) -> set[str | None]:
    return {_text(k) for k in node.keys if k} if isinstance(node, ast.Dict) else set()


def python_status_writes(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for every status write in a Python module."""
    tree = ast.parse(source)
    builders = _statement_builders(tree)
    seen = {  # docstrings and other bare strings are prose
        id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and _text(n.value)
    }
    for node in ast.walk(tree):
        if id(node) in seen:
            continue
        text = _text(node) if isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp) else None
        if text is not None:
            for inner in ast.walk(node):  # a folded join is read once, whole
                seen.add(id(inner))
            for table in sql_status_writes(text):
                yield node.lineno, table
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr == "status"
                    and ast.unparse(target.value) != "self"  # an object's own, not a row's
                ):
                    yield node.lineno, ast.unparse(target)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if (
                node.func.id == "setattr"
                and len(node.args) >= 2
                and _text(node.args[1]) == "status"
            ):
                yield node.lineno, f"setattr({ast.unparse(node.args[0])}, 'status')"
            if node.func.id == "update_versioned" and len(node.args) >= 2:
                model = ast.unparse(node.args[1])
                if model in MACHINE_MODELS:  # its changes are any columns
                    yield node.lineno, model
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "values"
        ):
            keys = {k.arg for k in node.keywords if k.arg} | {  # values(status=…), ({…})
                key for d in node.args for key in _dict_keys(d)
            }
            for k in node.keywords:  # values(**{"status": …})
                if k.arg is None:
                    keys |= _dict_keys(k.value)
            root = _statement_root(node.func.value, builders)
            if "status" in keys and (root is None or _builder(root, builders) == "update"):
                model = ast.unparse(root.args[0]) if root is not None and root.args else "?"
                yield node.lineno, model


def status_writes() -> Iterator[tuple[str, int, str]]:
    for top in SCANNED:
        for path in sorted(top.rglob("*")):
            relative = path.relative_to(ROOT).as_posix()
            if path.suffix == ".py":
                for line, what in python_status_writes(path.read_text()):
                    yield relative, line, what
            elif path.suffix == ".sql":
                for table in sql_status_writes(path.read_text()):
                    yield relative, 0, table


def test_no_code_but_the_door_writes_a_status_column() -> None:
    found = list(status_writes())
    stray = [f"{path}:{line} writes {what}.status" for path, line, what in found
             if (path, what) not in ALLOWED]  # fmt: skip
    assert stray == [], "state changes go through services/transitions.transition:\n" + "\n".join(
        stray
    )
    # The allow-list stays honest: each entry still names a writer.
    assert {(path, what) for path, _, what in found} >= ALLOWED


def test_the_door_writes_each_machine_conditionally() -> None:
    assert {m.table for m in MACHINES} == {
        "orders",
        "shipments",
        "returns",
        "pickups",
        "replenishments",
    }
    for machine in MACHINES:
        assert list(sql_status_writes(machine.update_sql)) == [machine.table]
        assert "WHERE id = $1 AND status = $2::text" in machine.update_sql


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("SQL = \"UPDATE shipments SET status = 'delivered' WHERE id = $1\"", ["shipments"]),
        (
            'SQL = "UPDATE returns r SET updated_at = now(),\\n status=$2 WHERE id = $1"',
            ["returns"],
        ),
        ("SQL = f'UPDATE {t} SET version = 2, status = $2'", ["{t}"]),
        ('SQL = "UPDATE orders SET " + "status = $2 WHERE id = $1"', ["orders"]),
        (
            'SQL = "INSERT INTO pickups (id) VALUES ($1) '
            'ON CONFLICT (id) DO UPDATE SET status = excluded.status"',
            ["pickups"],
        ),
        (
            "stmt = update(Shipment).where(Shipment.id == i).values(status='cancelled')",
            ["Shipment"],
        ),
        ("stmt = update(Order).values({'status': 'cancelled'})", ["Order"]),
        (
            'SQL = "UPDATE returns SET completed_at = (SELECT max(received_at) FROM return_lines '
            "WHERE return_id = $1), status = 'completed' WHERE id = $1\"",
            ["returns"],
        ),
        (
            'SQL = "UPDATE orders o SET (updated_at, status) = (now(), $2) WHERE o.id = $1"',
            ["orders"],
        ),
        (
            "from sqlalchemy import update as upd\n"
            "stmt = upd(Order).where(Order.id == i).values(status='cancelled')",
            ["Order"],
        ),
        ("stmt = sa.update(Return).values(status='completed')", ["Return"]),
        ("stmt = update(Shipment).values(**{'status': 'cancelled'})", ["Shipment"]),
        ("order.status = 'cancelled'", ["order.status"]),
        ("setattr(ret, 'status', 'completed')", ["setattr(ret, 'status')"]),
        ('def f():\n    """UPDATE orders SET status = $2: prose."""', []),
        ("self.status = 409", []),
        ("await update_versioned(session, Return, changes=c)", ["Return"]),
        # Not writes of a machine's status: reads, other columns, creation.
        ('SQL = "SELECT id FROM orders WHERE status = $1"', []),
        ('SQL = "UPDATE orders SET payment_status = $2, return_status = $3 WHERE status = $4"', []),
        (
            'SQL = "UPDATE orders SET return_status = (SELECT min(status) FROM returns r '
            'WHERE r.order_id = $1 AND r.status = $2) WHERE id = $1"',
            [],
        ),
        (
            "from sqlalchemy.dialects.postgresql import insert as ins\n"
            "stmt = ins(Pickup).values(status='scheduled')",
            [],
        ),
        ("SQL = \"INSERT INTO shipments (id, status) VALUES ($1, 'pending')\"", []),
        ("stmt = insert(Pickup).values(status='scheduled')", []),
        ("ok = Health(status='ok')", []),
        ("if order.status == 'pending': pass", []),
    ],
)
def test_the_scan_sees_every_kind_of_write(source: str, expected: list[str]) -> None:
    assert [what for _, what in python_status_writes(source)] == expected
