"""`Accept` negotiation between JSON and one other representation (RFC 9110, 12.5.1)."""

from __future__ import annotations

import pytest

from oms_api.api.negotiation import prefers


@pytest.mark.parametrize(
    ("accept", "csv"),
    [
        (None, False),
        ("", False),
        ("text/csv", True),
        ("text/CSV", True),  # media types are case-insensitive
        ("TEXT/csv; charset=utf-8", True),
        ("application/json", False),
        ("*/*", False),  # a tie keeps JSON
        ("text/csv, application/json", False),
        ("text/csv;q=0.1, application/json", False),
        ("application/json;q=0.5, text/csv", True),
        ("text/csv, */*;q=0.1", True),
        ("text/*", True),
        ("text/*, application/*", False),
        ("text/csv;q=0", False),
        ("text/csv;q=0, */*", False),
        ("text/csv;q=abc", False),  # an unreadable weight counts as 0
        ("text/csv;q=2", True),  # clamped to 1
        ("nonsense, text/csv", True),
        ("application/pdf", False),
    ],
)
def test_csv_only_when_ranked_above_json(accept: str | None, csv: bool) -> None:
    assert prefers(accept, "text/csv") is csv


def test_the_most_specific_range_gives_the_weight() -> None:
    assert prefers("text/*;q=0.9, text/csv;q=0.1, application/json;q=0.5", "text/csv") is False
    assert prefers("*/*;q=0.1, text/csv", "text/csv") is True
    assert prefers("application/pdf, application/json;q=0.9", "application/pdf") is True
