"""Errors raised by domain rules. The API maps `kind` to an HTTP status."""

from __future__ import annotations

from typing import Any, Literal


class DomainError(Exception):
    """A rule refused an action. `kind`: "conflict" (the state forbids it, 409) or
    "invalid" (the request can never succeed as sent, 422)."""

    kind: Literal["conflict", "invalid"] = "conflict"

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class InvalidTransition(DomainError):
    def __init__(self, *, resource: str, state: str, command: str, allowed: list[str]) -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            "invalid_transition",
            f"Cannot {command} a {resource} that is {state}; allowed now: {allowed_text}.",
            current_state=state,
            allowed_commands=allowed,
        )
