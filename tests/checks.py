"""Checks of invariants that tests assert after their steps."""

from __future__ import annotations

from fastapi import FastAPI

from oms_api.services.inventory import verify_stock


async def assert_stock_consistent(app: FastAPI) -> None:
    """What `oms-api inventory verify` checks: the ledger sums to the levels, and the
    order lines' reservations sum to each level's `reserved` and each line's
    `quantity_reserved`, and each product's total available is its levels'."""
    async with app.state.database.session() as session:
        check = await verify_stock(session)
    assert check.levels > 0
    assert check.ledger == []
    assert check.reservations == []
    assert check.lines == []
    assert check.totals == []
