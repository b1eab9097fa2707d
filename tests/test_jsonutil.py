"""Times as the API writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from oms_api.jsonutil import iso


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (datetime(2026, 11, 30, 8, 13, 16, 123456, tzinfo=UTC), "2026-11-30T08:13:16.123456Z"),
        (datetime(2026, 11, 30, 8, 13, 16, tzinfo=UTC), "2026-11-30T08:13:16.000000Z"),
        (
            datetime(2026, 11, 30, 10, 0, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-30T08:00:00.000000Z",
        ),
        (datetime(2026, 11, 30, 8, 0), "2026-11-30T08:00:00.000000Z"),  # naive: UTC
        ("2026-11-30T09:13:16.12345+01:00", "2026-11-30T08:13:16.123450Z"),  # PostgreSQL's JSON
    ],
)
def test_times_are_rfc3339_utc_with_microseconds(
    value: datetime | str | None, text: str | None
) -> None:
    assert iso(value) == text
