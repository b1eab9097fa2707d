"""Which of two representations a request's `Accept` header prefers (RFC 9110, 12.5.1).

The API answers JSON unless the client ranks the other representation (CSV for reports, a
PDF for the pick list) strictly higher: media ranges are matched without regard to case,
the most specific range that matches a type gives its weight (`q`, default 1), `*/*` and
`type/*` match both, and a tie keeps JSON.
"""

from __future__ import annotations

JSON = "application/json"


def _weight(ranges: list[tuple[str, str, float]], media_type: str) -> float:
    kind, _, sub = media_type.partition("/")
    best, weight = -1, 0.0
    for range_kind, range_sub, q in ranges:
        if range_kind == kind and range_sub == sub:
            specificity = 2
        elif range_kind == kind and range_sub == "*":
            specificity = 1
        elif range_kind == "*" and range_sub == "*":
            specificity = 0
        else:
            continue
        if specificity > best:
            best, weight = specificity, q
    return weight


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    ranges = []
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kind, slash, sub = media.lower().partition("/")
        if not slash or not kind or not sub:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        ranges.append((kind, sub, q))
    return ranges


def prefers(accept: str | None, alternative: str) -> bool:
    """Whether `accept` ranks `alternative` (e.g. `text/csv`) above JSON."""
    if not accept:
        return False
    ranges = _ranges(accept)
    wanted = _weight(ranges, alternative.lower())
    return wanted > 0 and wanted > _weight(ranges, JSON)
