"""Reports, decided: which period a request means, how a report groups, and how a report's
rows become CSV. Pure: the clock comes in as today's date; the figures come from SQL
(`services/reports.py`).

A period is two dates, `to` inclusive, in UTC: orders placed from `from` 00:00Z up to (not
including) the day after `to` 00:00Z. `to` defaults to today and `from` to 30 days before
`to`. `from` after `to` is refused (422 `invalid_period`), and so is a period longer than
`MAX_PERIOD_DAYS` (422 `period_too_long`): a year — a leap year too — always fits, and no
request asks for more than a year's work (docs/performance.md, "Reports").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from oms_api.domain.errors import DomainError
from oms_api.domain.returns import ReturnReason

DEFAULT_PERIOD_DAYS = 30
MAX_PERIOD_DAYS = 366


class SalesGrouping(StrEnum):
    DAY = "day"
    CHANNEL = "channel"
    SKU = "sku"


@dataclass(frozen=True)
class Period:
    """Dates `first` to `last`, inclusive, in UTC; `starts` and `ends` the instants that
    bound it (`ends` excluded)."""

    first: date
    last: date

    @property
    def starts(self) -> datetime:
        return datetime.combine(self.first, time.min, UTC)

    @property
    def ends(self) -> datetime:
        """The instant after the period: the next day's midnight — or, for a period ending
        on the calendar's last day, the calendar's last instant."""
        if self.last == date.max:
            return datetime.max.replace(tzinfo=UTC)
        return datetime.combine(self.last + timedelta(days=1), time.min, UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def period(first: date | None, last: date | None, *, today: date) -> Period:
    """The period a request means: `last` defaults to `today`, `first` to 30 days before
    `last` (never before the calendar's first day). 422 `invalid_period` when `first` is
    after `last`, `period_too_long` when it spans more than MAX_PERIOD_DAYS days."""
    last = today if last is None else last
    if first is None:
        room = last - date.min
        first = last - timedelta(days=DEFAULT_PERIOD_DAYS) if room.days >= 30 else date.min
    if first > last:
        raise DomainError(
            "invalid_period", f"`from` ({first.isoformat()}) is after `to` ({last.isoformat()}).",
            kind="invalid", loc=["query", "from"],
        )  # fmt: skip
    chosen = Period(first, last)
    if chosen.days > MAX_PERIOD_DAYS:
        raise DomainError(
            "period_too_long",
            f"A report covers at most {MAX_PERIOD_DAYS} days; {first.isoformat()} to "
            f"{last.isoformat()} is {chosen.days}. Ask for it a year at a time.",
            kind="invalid", loc=["query", "from"], max_days=MAX_PERIOD_DAYS,
        )  # fmt: skip
    return chosen


def return_reasons() -> list[str]:
    """Every reason a return line may give, in the order the reports list them."""
    return [reason.value for reason in ReturnReason]


def reasons_in_full(counted: Mapping[str, int] | None) -> dict[str, int]:
    """Units per reason, every reason present (0 for the ones no unit was returned for)."""
    counted = counted or {}
    return {reason: int(counted.get(reason, 0)) for reason in return_reasons()}


def return_rate(units_returned: int, units_sold: int) -> float:
    """Returned ÷ sold, to four decimals, a half rounded up (1 of 32 is 0.0313, as a
    person rounds it: `round` rounded it to even, 0.0312); 0 when nothing was sold."""
    if not units_sold:
        return 0.0
    exact = Decimal(units_returned) / Decimal(units_sold)
    return float(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as CSV columns: a nested mapping (a return row's `reasons`) becomes one column
    per key, named `<singular>_<key>` (`reason_damaged`, …); other values stay as they are."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            singular = key[:-1] if key.endswith("s") else key
            for inner, count in value.items():
                out[f"{singular}_{inner}"] = count
        else:
            out[key] = value
    return out


def to_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """One header row (`columns`, in CSV's flattened names), then one line per row.
    Booleans are `true`/`false`, absent values empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        flat = flatten(row)
        writer.writerow([_cell(flat.get(column)) for column in columns])
    return buffer.getvalue()


def csv_columns(columns: Sequence[str]) -> list[str]:
    """A report's JSON row fields as CSV columns: `reasons` becomes `reason_<name>` for
    every return reason."""
    out: list[str] = []
    for column in columns:
        if column == "reasons":
            out += [f"reason_{reason}" for reason in return_reasons()]
        else:
            out.append(column)
    return out
