"""`Accept` negotiation between JSON and one other representation (RFC 9110, 12.5.1):
JSON unless the other is ranked strictly higher; 406 `not_acceptable` when the header
admits neither."""

from __future__ import annotations

import pytest

from oms_api.api.negotiation import JSON, negotiate
from oms_api.errors import Problem

CSV, PDF = "text/csv", "application/pdf"
NONE = None  # neither is acceptable: 406


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (None, JSON),
        ("", JSON),
        ("nonsense", JSON),  # no media range at all: as if absent
        ("text/csv", CSV),
        ("text/CSV", CSV),  # media types are case-insensitive
        ("TEXT/csv; charset=utf-8", CSV),
        ("application/json", JSON),
        ("*/*", JSON),  # a tie keeps JSON
        ("application/*", JSON),
        ("text/csv, application/json", JSON),
        ("text/csv;q=0.1, application/json", JSON),
        ("application/json;q=0.5, text/csv", CSV),
        ("text/csv, */*;q=0.1", CSV),
        ("text/*", CSV),
        ("text/*, application/*", JSON),
        ("text/csv;q=0, */*", JSON),
        ("text/csv;q=2", CSV),  # clamped to 1
        ("nonsense, text/csv", CSV),
        # neither JSON nor CSV: 406
        ("application/pdf", NONE),
        ("image/png, text/html", NONE),
        ("text/csv;q=0", NONE),
        ("text/csv;q=abc", NONE),  # an unreadable weight counts as 0
        ("application/json;q=0, text/csv;q=0", NONE),
        ("*/*;q=0", NONE),
        ("application/json;q=0", NONE),
        ("application/problem+json", NONE),
    ],
)
def test_csv_only_when_ranked_above_json_and_406_when_neither(
    accept: str | None, answer: str | None
) -> None:
    if answer is not None:
        assert negotiate(accept, CSV) == answer
        return
    with pytest.raises(Problem) as caught:
        negotiate(accept, CSV)
    problem = caught.value
    assert (problem.status, problem.code) == (406, "not_acceptable")
    assert problem.extra == {"available": [JSON, CSV]}


def test_the_most_specific_range_gives_the_weight() -> None:
    assert negotiate("text/*;q=0.9, text/csv;q=0.1, application/json;q=0.5", CSV) == JSON
    assert negotiate("*/*;q=0.1, text/csv", CSV) == CSV
    assert negotiate("application/pdf, application/json;q=0.9", PDF) == PDF
    assert negotiate("application/*", PDF) == JSON  # a tie keeps JSON
    assert negotiate("text/csv, application/pdf;q=0.2", PDF) == PDF
    with pytest.raises(Problem):
        negotiate("text/csv", PDF)
