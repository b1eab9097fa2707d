"""Fast JSON for responses and stored payloads (orjson)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(value: datetime | str | None) -> str | None:
    """A time as the API writes it: RFC 3339 in UTC with microseconds. Accepts the ISO text
    PostgreSQL's JSON functions produce (in the session's time zone) as well."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(UTC).strftime(TIME_FORMAT)
