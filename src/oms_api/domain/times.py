"""The times the API takes: an instant, so it carries an offset, and one every layer can
hold, so it lies within years 1-9999 once in UTC. Pure.

Python's `datetime` ends at years 1 and 9999; PostgreSQL's `timestamptz` holds far more
(4713 BC to 294276 AD). The bound is on the UTC value: `0001-01-01T00:00:00+14:00` is
valid text but lies in year 0 in UTC, and converting it (as the database driver does)
raises OverflowError. The range's very first and last microseconds are refused too: the
driver (asyncpg) sends exactly `datetime.min` and `datetime.max` in UTC as PostgreSQL's
`-infinity` and `infinity`, which its JSON functions then write as those words.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

OFFSET_MISSING = "a time must carry an offset (Z or ±hh:mm), e.g. 2026-11-26T10:00:00Z"
OUT_OF_RANGE = (
    "a time must lie within years 1 to 9999 once converted to UTC "
    "(0001-01-01T00:00:00.000001Z to 9999-12-31T23:59:59.999998Z)"
)
OUT_OF_RANGE_FILTER = "a time must lie within years 1 to 9999 once converted to UTC"
EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(microseconds=1)
LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(microseconds=1)


def as_utc(value: datetime) -> datetime:
    """`value` converted to UTC; ValueError when it has no offset or lies outside
    EARLIEST..LATEST."""
    utc = _in_utc(value)
    if not EARLIEST <= utc <= LATEST:
        raise ValueError(OUT_OF_RANGE)
    return utc


def bound_as_utc(value: datetime) -> datetime:
    """A filter's bound in UTC: as `as_utc`, but the calendar's first and last microseconds
    are allowed — compared, never stored, the driver's `-infinity` and `infinity` mean
    exactly what they say — so every instant of years 1-9999 is a bound."""
    return _in_utc(value)


def _in_utc(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError(OFFSET_MISSING)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE_FILTER) from None
