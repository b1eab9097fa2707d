"""The dependency rule of docs/architecture.md holds: import-linter's contracts in
pyproject.toml, the same check CI's lint step runs (`lint-imports`)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 broken." in result.stdout, result.stdout


# The domain contract's list of third-party packages is kept by hand; these two tests keep
# it from drifting. The first reads the domain's imports itself (the standard library and
# the domain only); the second holds the list to pyproject's dependencies, so a package
# added there and not here fails even before any domain module imports it.
DOMAIN = ROOT / "src" / "oms_api" / "domain"


def _pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def outside_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every import in a domain module's `source` that is neither the
    standard library nor the domain itself."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:  # `from . import x`, `from .machine import step`: the domain
                continue
            if node.level > 1:  # out of the domain's package
                found.append((node.lineno, "." * node.level + (node.module or "")))
                continue
            modules = [node.module or ""]
        else:
            continue
        for module in modules:
            top = module.partition(".")[0]
            if top == "__future__" or top in sys.stdlib_module_names:
                continue
            if module == "oms_api.domain" or module.startswith("oms_api.domain."):
                continue
            found.append((node.lineno, module))
    return found


def test_the_domain_imports_only_the_standard_library_and_itself() -> None:
    stray = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(DOMAIN.rglob("*.py"))
        for line, module in outside_imports(path.read_text(encoding="utf-8"))
    ]
    assert stray == [], "the domain is pure: standard library and domain only\n" + "\n".join(stray)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import pycountry", ["pycountry"]),
        ("import os.path, sqlalchemy.orm as orm", ["sqlalchemy.orm"]),
        ("from pydantic import BaseModel", ["pydantic"]),
        ("from oms_api.models import Order", ["oms_api.models"]),
        ("from oms_api import errors", ["oms_api"]),
        ("from .. import errors", [".."]),
        ("def f():\n    import httpx", ["httpx"]),
        # Allowed: the standard library, the domain, relative imports within it.
        ("from __future__ import annotations\nimport re\nfrom datetime import UTC", []),
        ("from oms_api.domain import events as E\nfrom oms_api.domain.machine import step", []),
        ("from .machine import step", []),
    ],
)
def test_the_domain_import_scan_sees_every_kind_of_import(source: str, expected: list[str]) -> None:
    assert [module for _, module in outside_imports(source)] == expected


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_domain_contract_forbids_every_dependency() -> None:
    """Every top-level module of every [project] dependency is in the domain contract's
    `forbidden_modules` (import-linter checks only the names listed)."""
    project = _pyproject()
    contract = next(
        c
        for c in project["tool"]["importlinter"]["contracts"]
        if c.get("source_modules") == ["oms_api.domain"]
    )
    provided: dict[str, set[str]] = {}
    for module, distributions in importlib.metadata.packages_distributions().items():
        for distribution in distributions:
            provided.setdefault(_normalised(distribution), set()).add(module)
    missing = []
    for requirement in project["project"]["dependencies"]:
        name = _normalised(re.match(r"[A-Za-z0-9._-]+", requirement).group())  # type: ignore[union-attr]
        modules = provided.get(name)
        assert modules, f"{name} is not installed: its modules are unknown"
        missing += [
            f"{name}: {m}" for m in sorted(modules) if m not in contract["forbidden_modules"]
        ]
    assert missing == [], "add to the domain contract's forbidden_modules:\n" + "\n".join(missing)
