"""Optimistic concurrency: an edit applies only to the version the client read."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.errors import NotFound, PreconditionFailed

M = TypeVar("M", bound=Any)


async def update_versioned(
    session: AsyncSession,
    model: type[M],
    *,
    where: ColumnElement[bool],
    changes: dict[str, Any],
    if_match: int | None,
    what: str,
    ident: str,
) -> M:
    """Apply `changes` (bumping `version`) to the row matching `where`; with `if_match`,
    only while it is at that version: 412 otherwise, 404 if there is no such row."""
    conditions = [where]
    if if_match is not None:
        conditions.append(model.version == if_match)
    values: dict[str, Any] = {**changes, "version": model.version + 1}
    if hasattr(model, "updated_at"):
        values["updated_at"] = func.now()
    stmt = (
        update(model)
        .where(*conditions)
        .values(**values)
        .returning(model)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    row = (await session.scalars(stmt)).first()
    if row is not None:
        return row  # type: ignore[no-any-return]
    current = await session.scalar(select(model.version).where(where))
    if current is None:
        raise NotFound(f"No {what} {ident}.")
    raise PreconditionFailed(
        f"The {what} {ident} is at version {current}, not {if_match}; reload and retry.",
        current_version=current,
    )
