"""Running the Alembic migrations (the schema's only source) from code and the CLI."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from oms_api.db import async_url


def migrations_dir() -> Path:
    """`migrations/` of a source checkout, or the copy installed inside the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parents[1] / "migrations", here / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError("The Alembic migrations directory was not found.")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Synchronous (Alembic runs its own event loop): call from a thread inside async code."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("postgresql://unused/x")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"Expected one migration head, found {heads}")
    return heads[0]
