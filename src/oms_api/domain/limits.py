"""The one way a rule refuses more than a limit, per line or per product. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from oms_api.domain.errors import DomainError


def refuse_over(
    code: str, detail: str, asked: Mapping[str, int], limits: Mapping[str, int], *,
    key: str = "line_id", asked_as: str = "requested", limit_as: str,
) -> None:  # fmt: skip
    """409 `code` when any of `asked` (by line or sku, in its order) is over its limit
    (missing: 0): `detail`, then the keys over, and `lines` — for each, the key, what was
    asked and its limit (never below 0), named `key`, `asked_as` and `limit_as`."""
    over = [
        {key: k, asked_as: n, limit_as: max(limits.get(k, 0), 0)}
        for k, n in asked.items()
        if n > limits.get(k, 0)
    ]
    if over:
        raise DomainError(
            code, f"{detail}: " + ", ".join(str(o[key]) for o in over) + ".", lines=over
        )
