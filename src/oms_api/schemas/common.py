from __future__ import annotations

import math
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

import orjson
import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from oms_api.domain import times

T = TypeVar("T")


def reject_unstorable_text(value: Any) -> None:
    """PostgreSQL cannot store NUL in text or JSON, nor text that is not valid Unicode
    (a lone surrogate, which JSON's \\uD800 escapes can produce): refuse them up front.

    Asked of every request body (and again of each nested model in it), so the common case
    is one pass in C: orjson refuses a lone surrogate and writes a NUL as `\\u0000`. Only a
    value it refuses (a surrogate, or a type JSON does not have) or whose JSON holds that
    escape is walked in Python, which finds the offending text, if any."""
    try:
        if b"\\u0000" not in orjson.dumps(value):
            return
    except TypeError:  # orjson.JSONEncodeError
        pass
    _reject_unstorable(value)


def _reject_unstorable(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("text must not contain NUL (\\u0000) characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _reject_unstorable(key)
            _reject_unstorable(item)
    elif isinstance(value, list):
        for item in value:
            _reject_unstorable(item)


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, never silently ignored; types are
    strict (`"1"` is not a number, `0` is not a boolean); text the database cannot store
    is refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        reject_unstorable_text(data)
        return data


class NoBody(RequestModel):
    """A command that takes no body (its Idempotency-Key fingerprint is the path alone)."""


class PublicModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ListResponse(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )

    @classmethod
    def of(cls, model: type[T], page: Any) -> ListResponse[T]:
        """A page of service results (`items`, `next_cursor`) as `model`s."""
        validate = model.model_validate  # type: ignore[attr-defined]
        return cls(data=[validate(x) for x in page.items], next_cursor=page.next_cursor)


# What each pattern asks for, in words: a value that does not match is told this in its
# 422 (`errors[].msg`, api/problems.py), never the regular expression.
PATTERN_MEANINGS: dict[str, str] = {}


def matching(pattern: str, meaning: str, **constraints: Any) -> StringConstraints:
    """StringConstraints with `pattern`, remembered with what it means to a person."""
    PATTERN_MEANINGS[pattern] = meaning
    return StringConstraints(pattern=pattern, **constraints)


Code = Annotated[
    str,
    matching(
        r"^[a-z0-9][a-z0-9_-]{0,63}$",
        "lower-case letters, digits, '-' and '_', 1 to 64 "
        "characters, starting with a letter or a digit",
    ),
    Field(
        description="Lower-case letters, digits, `-` and `_`; 1 to 64 characters.", examples=["web"]
    ),
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _rfc3339_text(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("expected an RFC 3339 date-time, e.g. 2026-11-26T10:00:00Z")
    return value


# The one type of every time the API takes, in bodies and query parameters alike: RFC 3339
# text (not a number of seconds) with an offset, within years 1-9999 once in UTC (see
# domain/times.py); handed on in UTC. Anything else is a 422 naming the field.
# (Not strict: request bodies are strict, and strict would refuse the text itself.)
Timestamp = Annotated[
    datetime,
    BeforeValidator(_rfc3339_text),
    Field(strict=False),
    AfterValidator(times.as_utc),
]


def _day_start(value: Any) -> Any:
    if isinstance(value, str) and _DATE.match(value):
        return value + "T00:00:00Z"
    return value


# A query filter's time: RFC 3339 with an offset like a Timestamp, or a bare date meaning
# that day's start in UTC; every instant of years 1-9999 in UTC (a bound is compared, never
# stored, so the calendar's very edges are fine here).
TimestampFilter = Annotated[
    datetime,
    BeforeValidator(_rfc3339_text),
    Field(strict=False),
    AfterValidator(times.bound_as_utc),
    BeforeValidator(_day_start),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ],
            "description": "RFC 3339 date-time with an offset, or a date (its start in UTC).",
        }
    ),
]


def _date_text(value: Any) -> Any:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("expected a date, YYYY-MM-DD, e.g. 2026-11-30")
    return value


# A calendar date (a report's `from` and `to`): `YYYY-MM-DD` text, nothing else (not a
# number of seconds, not a date-time).
DateText = Annotated[date, BeforeValidator(_date_text), Field(strict=False)]

Sku = Annotated[
    str,
    matching(
        r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$",
        "letters A-Z, digits, '.', '_', '/' and '-', "
        "1 to 64 characters, starting with a letter or a digit",
    ),
    Field(
        description="Letters, digits, `.`, `_`, `/`, `-`; 1 to 64 characters.",
        examples=["TSHIRT-M-RED"],
    ),
]
Currency = Annotated[
    str,
    matching(r"^[A-Z]{3}$", "an ISO 4217 code: three upper-case letters, such as EUR"),
    Field(description="ISO 4217 code.", examples=["EUR"]),
]
Money = Annotated[int, Field(ge=0, le=100_000_000_000, description="Minor units (cents).")]
# The officially assigned ISO 3166-1 alpha-2 codes, as the maintained `pycountry` knows them.
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


def _country_code(value: str) -> str:
    code = value.upper()
    if code not in COUNTRY_CODES:
        raise ValueError(f"{value!r} is not an assigned ISO 3166-1 alpha-2 country code")
    return code


CountryCode = Annotated[
    str,
    matching(r"^[A-Za-z]{2}$", "an ISO 3166-1 alpha-2 code: two letters, such as DE"),
    AfterValidator(_country_code),
    Field(description="ISO 3166-1 alpha-2, any case; stored upper-case.", examples=["DE"]),
]
ShortText = Annotated[str, StringConstraints(max_length=500)]

# What a client's free-form JSON may hold so that it can be stored and sent back as it came:
# PostgreSQL's jsonb and our JSON encoder take integers of 64 bits and a bounded nesting.
METADATA_MAX_DEPTH = 16
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _stored(value: Any, depth: int = 1) -> Any:
    """`value` as PostgreSQL's jsonb keeps it and every read returns it (see
    `_stored_number`; an object's keys in jsonb's order: shorter first, then by their
    UTF-8 bytes); ValueError for what it cannot keep as sent."""
    if depth > METADATA_MAX_DEPTH:
        raise ValueError(f"nested more than {METADATA_MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        return {key: _stored(value[key], depth + 1) for key in sorted(value, key=_jsonb_key_order)}
    if isinstance(value, list):
        return [_stored(item, depth + 1) for item in value]
    if isinstance(value, float):
        return _stored_number(value)
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("an integer beyond 64 bits (send it as a string)")
    return value


def _jsonb_key_order(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return len(encoded), encoded


def _stored_number(value: float) -> float | int:
    """A number with a fraction or an exponent (Python's JSON parser reads it as a float) as
    a read of jsonb returns it. jsonb keeps the exact decimal we write (`orjson`'s shortest
    text) as `numeric`, and writes it back in plain notation with as many decimals as that
    text had after the exponent is applied: `1.5e-7` as `0.00000015` (the same float),
    `-0.0` as `0.0` (numeric has no negative zero), `1e16` as `10000000000000000` (an
    integer). NaN and Infinity are not JSON and numeric-in-jsonb has neither; the parser
    reads `1e400` as infinity."""
    if not math.isfinite(value):
        raise ValueError("not a finite number (NaN, Infinity, or beyond ±1.8e308)")
    exponent = Decimal(orjson.dumps(value).decode()).as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:  # no decimals: read back as an integer
        whole = int(value)
        if not _INT64_MIN <= whole <= _INT64_MAX:
            raise ValueError("a number stored as an integer beyond 64 bits (send it as a string)")
        return whole
    return value + 0.0  # -0.0 + 0.0 is 0.0; every other float is itself


def _metadata(value: dict[str, Any]) -> dict[str, Any]:
    stored: dict[str, Any] = _stored(value)
    return stored


Metadata = Annotated[
    dict[str, Any],
    Field(
        max_length=50,
        description=f"Your own keys and JSON values, stored and returned as a read returns "
        f"them: integers of at most 64 bits, finite numbers (a number is returned as "
        f"PostgreSQL keeps it: `-0.0` as `0.0`, `1e16` as `10000000000000000`), nested at "
        f"most {METADATA_MAX_DEPTH} levels.",
    ),
    AfterValidator(_metadata),
]
Email = Annotated[
    str,
    matching(
        r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$",
        "an email address, such as ada@example.com",
        max_length=254,
    ),
    Field(examples=["ada@example.com"]),
]


class Address(RequestModel):
    name: ShortText | None = None
    company: ShortText | None = None
    line1: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    line2: ShortText | None = None
    city: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    region: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(max_length=32)] | None = None
    country: CountryCode
    phone: Annotated[str, StringConstraints(max_length=64)] | None = None


class AddressPublic(PublicModel):
    """An address as it was given (an `Address`); a field never given reads `null` or is
    absent."""

    name: str | None = None
    company: str | None = None
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str | None = None
    country: str = Field(description="ISO 3166-1 alpha-2, upper-case.")
    phone: str | None = None
