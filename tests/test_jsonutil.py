"""Times as the API writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import orjson
import pytest

from oms_api.jsonutil import dumps, iso


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


class Colour(StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [{"c": datetime(2026, 11, 30, 8, 13, 16, 123456, tzinfo=UTC)}]},
        {1: "one", "two": 2},
        {"nested": {Colour.RED: 3}},
        {datetime(2026, 11, 30, tzinfo=UTC): None},
    ],
)
def test_dumps_writes_what_orjson_writes_with_keys_as_text(value: Any) -> None:
    expected = orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)
    assert dumps(value) == expected


def test_dumps_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})


def test_integers_past_64_bits_are_written_exactly() -> None:
    """A report's sum may pass what orjson writes natively (the inventory report's stock
    value): it is written digit for digit, not refused."""
    value = {"rows": [{"stock_value": 10**20, "low": -(2**63) - 1, "ok": 2**64 - 1}], 1: True}
    assert json.loads(dumps(value)) == {  # the standard library's: orjson reads them as floats
        "rows": [{"stock_value": 10**20, "low": -(2**63) - 1, "ok": 2**64 - 1}],
        "1": True,
    }
