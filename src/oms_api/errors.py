"""The problems a client can act on, as exceptions: framework-free.

Services raise `Problem` subclasses (domain rules raise `domain.errors.DomainError`);
`api/problems.py` answers every one as RFC 9457 problem+json with its stable machine
`code`. This module imports no web framework and no database driver, so any layer may
raise these.
"""

from __future__ import annotations

from typing import Any


class Problem(Exception):
    """A problem the client can act on. Subclasses fix `status`, `code` and `title`."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}
        self.extra = extra


class Unauthorized(Problem):
    status, code, title = 401, "unauthorized", "Unauthorized"


class Forbidden(Problem):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, code, title = 404, "not_found", "Not found"


class NotAcceptable(Problem):
    status, code, title = 406, "not_acceptable", "Not acceptable"


class Conflict(Problem):
    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(Problem):
    status, code, title = 412, "version_mismatch", "Precondition failed"


class Unprocessable(Problem):
    status, code, title = 422, "validation_error", "Unprocessable content"


class TooManyRequests(Problem):
    status, code, title = 429, "rate_limited", "Too many requests"
