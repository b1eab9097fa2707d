"""The pure rules of automation: who gets arriving stock, the replenishment machine, the
fulfilment settings."""

from __future__ import annotations

import itertools

import pytest

from oms_api.domain.backorders import Fill, Waiting, fills_backorders, plan_fills
from oms_api.domain.errors import InvalidTransition
from oms_api.domain.replenishments import (
    ReplenishmentCommand as C,
)
from oms_api.domain.replenishments import (
    ReplenishmentStatus as S,
)
from oms_api.domain.replenishments import (
    next_status,
)
from oms_api.domain.shipments import FulfillmentSettings


def test_the_oldest_order_is_filled_first_and_partly_when_stock_runs_out() -> None:
    waiting = [Waiting("ord_1", "l1", 3), Waiting("ord_1", "l2", 1), Waiting("ord_2", "l3", 4)]
    assert plan_fills(5, waiting) == [
        Fill("ord_1", "l1", 3),
        Fill("ord_1", "l2", 1),
        Fill("ord_2", "l3", 1),
    ]


@pytest.mark.parametrize("available", [0, -2])
def test_nothing_available_fills_nothing(available: int) -> None:
    assert plan_fills(available, [Waiting("ord_1", "l1", 3)]) == []


def test_every_split_of_stock_over_waiting_lines_is_exact() -> None:
    """Exhaustively over small cases: never more than available, never more than a line
    waits for, lines served strictly in turn (a later line gets units only once every
    earlier one is whole)."""
    for available in range(0, 8):
        for wants in itertools.product(range(0, 4), repeat=3):
            waiting = [Waiting(f"ord_{i}", f"l{i}", w) for i, w in enumerate(wants)]
            fills = plan_fills(available, waiting)
            got = {f.line_id: f.quantity for f in fills}
            assert sum(got.values()) == min(available, sum(wants))
            assert all(0 < got[f"l{i}"] <= w for i, w in enumerate(wants) if f"l{i}" in got)
            for i, w in enumerate(wants):
                later = sum(got.get(f"l{j}", 0) for j in range(i + 1, len(wants)))
                if later:
                    assert got.get(f"l{i}", 0) == w


@pytest.mark.parametrize(
    ("reason", "delta", "fills"),
    [("received", 5, True), ("correction", 1, True), ("correction", -1, False),
     ("cycle_count", 5, False), ("damaged", -2, False), ("lost", -1, False),
     ("received", 0, False)],
)  # fmt: skip
def test_which_adjustments_fill_backorders(reason: str, delta: int, fills: bool) -> None:
    assert fills_backorders(reason, delta) is fills


EXPECTED = {
    (S.OPEN, C.RECEIVE): S.RECEIVED,
    (S.OPEN, C.CANCEL): S.CANCELLED,
}


@pytest.mark.parametrize(("status", "command"), list(itertools.product(S, C)))
def test_the_replenishment_machine_in_every_state(status: S, command: C) -> None:
    expected = EXPECTED.get((status, command))
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            next_status(status, command)
        assert refused.value.code == "invalid_transition"
    else:
        assert next_status(status, command) is expected


@pytest.mark.parametrize(
    ("stored", "auto"),
    [(None, False), ({}, False), ({"auto_allocate": True}, True),
     ({"auto_allocate": False}, False)],
)  # fmt: skip
def test_fulfillment_settings_default_to_manual(stored: dict[str, bool] | None, auto: bool) -> None:
    settings = FulfillmentSettings.from_json(stored)
    assert settings.auto_allocate is auto
    assert FulfillmentSettings.from_json(settings.to_json()) == settings
