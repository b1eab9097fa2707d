"""Which of two representations a request's `Accept` header prefers (RFC 9110, 12.5.1).

The API answers JSON unless the client ranks the other representation (CSV for reports, a
PDF for the pick list) strictly higher: media ranges are matched without regard to case,
the most specific range that matches a type gives its weight (`q`, default 1), `*/*` and
`type/*` match both, and a tie keeps JSON. A header that admits neither (`text/csv` for
the pick list, `application/pdf` for a report, `application/json;q=0`) is 406
`not_acceptable`, naming the two it could have; no header, an empty one or one with no
media range in it is as if absent (JSON).
"""

from __future__ import annotations

from oms_api.errors import NotAcceptable

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


def negotiate(accept: str | None, alternative: str) -> str:
    """`JSON` or `alternative` (e.g. `text/csv`), as `accept` ranks them: `alternative`
    only when ranked above JSON; 406 `not_acceptable` when neither is acceptable."""
    ranges = _ranges(accept) if accept else []
    if not ranges:
        return JSON
    json_weight = _weight(ranges, JSON)
    wanted = _weight(ranges, alternative.lower())
    if wanted > 0 and wanted > json_weight:
        return alternative
    if json_weight > 0:
        return JSON
    raise NotAcceptable(
        f"Accept: {accept} admits neither representation of this resource: "
        f"{JSON} or {alternative}.",
        available=[JSON, alternative],
    )
