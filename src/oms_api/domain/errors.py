"""Errors raised by domain rules. The API maps `kind` to an HTTP status in one place
(api/problems.py)."""

from __future__ import annotations

from typing import Any, Literal

Kind = Literal["conflict", "invalid", "not_found"]


class DomainError(Exception):
    """A rule refused an action. `kind`: "conflict" (the state forbids it, 409), "invalid"
    (the request can never succeed as sent, 422) or "not_found" (it names something that
    is not there, or not the caller's, 404). `loc` points at the field at fault (for
    `errors`); `extra` becomes members of the problem."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        kind: Kind = "conflict",
        loc: list[str | int] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.kind: Kind = kind
        if loc is not None and "errors" not in extra:
            extra["errors"] = [{"loc": loc, "msg": detail}]
        self.extra = extra


def a(noun: str) -> str:
    """`noun` with its indefinite article, for messages: "an order", "a capture"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


class InvalidTransition(DomainError):
    def __init__(self, *, resource: str, state: str, command: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            "invalid_transition",
            f"Cannot {command} {a(resource)} that is {state}; allowed now: {allowed_text}.",
            current_state=state,
            allowed_commands=allowed,
        )
