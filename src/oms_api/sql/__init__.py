"""The database functions' head definitions: one `.sql` file each in `functions/`.

Each file holds one `CREATE OR REPLACE FUNCTION` whose name is the file's, exactly as the
latest migration that installs it wrote it. Migrations never read these files: a revision
carries its own frozen copy of the text it installs, so editing a file here changes no
revision. To change a function, edit its file and add a revision that installs the new
text (docs/architecture.md, Migrations); tests/test_database_functions.py checks that a
database migrated to head has exactly these functions, with exactly these definitions.

The files are package data (they ship in the wheel beside this module) and are found
through `importlib.resources`, from a checkout and from an installed package alike.
"""

from __future__ import annotations

from importlib.resources import files


def function_sources() -> dict[str, str]:
    """Function name → the text of its `.sql` file."""
    return {
        entry.name.removesuffix(".sql"): entry.read_text(encoding="utf-8")
        for entry in (files(__name__) / "functions").iterdir()
        if entry.name.endswith(".sql")
    }
