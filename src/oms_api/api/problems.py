"""Every error the API answers is RFC 9457 problem+json with a stable machine `code`.

Services raise `Problem` subclasses (`oms_api.errors`) and domain rules `DomainError`;
`install_error_handlers` turns those, request validation failures, unknown routes and
unexpected exceptions into one response shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from oms_api.db import causes
from oms_api.domain.errors import DomainError
from oms_api.errors import Problem
from oms_api.jsonutil import dumps
from oms_api.schemas.common import PATTERN_MEANINGS

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://oms-api.dev/problems/"

log = logging.getLogger("oms_api.errors")

UNEXPECTED_ERRORS = Counter(
    "oms_unexpected_errors_total", "Requests answered 500 because of a bug (each is logged)."
)


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the problem is, e.g. `['body', 'lines', 0]`.")
    msg: str


class ProblemDetail(BaseModel):
    """An RFC 9457 problem. Members beyond these may be present for a given `code`."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[TYPE_BASE + "not_found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No channel with id ch_01J…"])
    code: str = Field(description="Stable machine-readable reason.", examples=["not_found"])
    instance: str | None = Field(default=None, description="The request path.")
    request_id: str | None = None
    errors: list[FieldError] | None = None


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
# What a domain rule's refusal is answered with: every DomainError, raised anywhere, is
# turned into problem+json here and nowhere else.
DOMAIN_STATUS = {"conflict": 409, "invalid": 422, "not_found": 404}

_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def problem_response(
    request_path: str | None,
    *,
    status: int,
    code: str,
    detail: str,
    title: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request_path is not None:
        body["instance"] = request_path
    if request_id is not None:
        body["request_id"] = request_id
    body.update(extra)
    return Response(
        dumps(body), status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=headers
    )


def _malformed_json(request: Request, errors: list[dict[str, Any]]) -> Response:
    """400 `malformed_json`: the body could not be read as JSON (FastAPI's parser, or the
    placement route's own)."""
    return problem_response(
        request.url.path,
        status=400,
        code="malformed_json",
        detail="The request body is not valid JSON.",
        request_id=_request_id(request),
        errors=errors,
    )


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": _message(err)})
    return out


def _message(err: Mapping[str, Any]) -> str:
    """pydantic's message, except for a pattern: what it asks for in words, not the regex."""
    if err.get("type") == "string_pattern_mismatch":
        meaning = PATTERN_MEANINGS.get(str((err.get("ctx") or {}).get("pattern")))
        if meaning is not None:
            return f"Should be {meaning}."
    return str(err.get("msg", "invalid"))


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, Problem):  # registered for Problem only
            raise exc
        return problem_response(
            request.url.path,
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            request_id=_request_id(request),
            headers=exc.headers,
            **exc.extra,
        )

    async def on_domain(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, DomainError):  # registered for DomainError only
            raise exc
        return problem_response(
            request.url.path, status=DOMAIN_STATUS[exc.kind], code=exc.code, detail=exc.detail,
            request_id=_request_id(request), **exc.extra,
        )  # fmt: skip

    async def on_validation(request: Request, exc: Exception) -> Response:
        if not isinstance(
            exc, RequestValidationError
        ):  # registered for RequestValidationError only
            raise exc
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return _malformed_json(request, _field_errors(errors))
        return problem_response(
            request.url.path,
            status=422,
            code="validation_error",
            detail="The request has invalid or missing fields; see errors.",
            request_id=_request_id(request),
            errors=_field_errors(errors),
        )

    async def on_http(request: Request, exc: Exception) -> Response:
        if not isinstance(
            exc, StarletteHTTPException
        ):  # registered for StarletteHTTPException only
            raise exc
        status = exc.status_code
        unparseable = unparseable_body(exc)
        if unparseable is not None:
            return _malformed_json(request, [unparseable])
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(status, "Error")
        headers = dict(exc.headers or {})
        if status == 404 and detail == "Not Found":
            detail = f"No route matches {request.method} {request.url.path}."
        if status == 405:
            # FastAPI registers each method of a path as its own route; list them all.
            allowed = _allowed_methods(request)
            if allowed:
                headers["Allow"] = ", ".join(allowed)
            detail = (
                f"{request.method} is not allowed here; allowed: {headers.get('Allow', 'none')}."
            )
        return problem_response(
            request.url.path,
            status=status,
            code=_CODES.get(status, "http_error"),
            detail=detail,
            request_id=_request_id(request),
            headers=headers,
        )

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Reached only by an exception raised outside the app's own answer to one
        # (`observability.RequestContextMiddleware`): Starlette re-raises it after this
        # answer and the server then closes the connection, so the answer says so.
        return unexpected_response(request, exc, headers={"Connection": "close"})

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(DomainError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def unparseable_body(exc: StarletteHTTPException) -> dict[str, Any] | None:
    """The field error for a JSON body the parser could not read, when `exc` is FastAPI's
    400 for one (a `HotRoute` raises the same): bytes that are not UTF-8, whatever `charset`
    the content type names (JSON is UTF-8), or nesting deeper than the parser's recursion
    limit (~1000 levels). A syntax error is raised as `json_invalid` instead. None for any
    other exception."""
    if exc.status_code != 400:
        return None
    cause = exc.__cause__
    if isinstance(cause, UnicodeDecodeError):
        return {"loc": ["body", cause.start], "msg": "not UTF-8 (JSON is UTF-8)"}
    if isinstance(cause, RecursionError):
        return {"loc": ["body"], "msg": "nested too deeply"}
    return None


def unexpected_response(
    request: Request, exc: Exception, *, headers: dict[str, str] | None = None
) -> Response:
    """The answer to an exception no handler took: 503 with `Retry-After` when the database
    could not answer, else a logged 500 counted in `oms_unexpected_errors_total`."""
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        code, detail = unavailable
        log.warning(
            "database unavailable on %s %s: %r", request.method, request.url.path, exc,
            extra={"request_id": _request_id(request)},
        )  # fmt: skip
        return problem_response(
            request.url.path,
            status=503,
            code=code,
            detail=detail,
            request_id=_request_id(request),
            headers={"Retry-After": "1", **(headers or {})},
        )
    UNEXPECTED_ERRORS.inc()
    request_id = _request_id(request)
    log.exception(
        "unhandled error on %s %s", request.method, request.url.path,
        extra={"request_id": request_id}, exc_info=exc,
    )  # fmt: skip
    return problem_response(
        request.url.path,
        status=500,
        code="internal_error",
        detail="An unexpected error occurred; it has been logged with this request_id.",
        request_id=request_id,
        headers=headers,
    )


def database_unavailable(exc: BaseException) -> tuple[str, str] | None:
    """(code, detail) when `exc` means the database could not answer in time — a statement
    over `statement_timeout`, no free pooled connection, no connection at all — which is the
    server's state, not a bug: answered 503 with `Retry-After`. None for anything else."""
    for cause in causes(exc):
        if isinstance(cause, asyncpg.QueryCanceledError):
            return (
                "database_timeout",
                "The database did not answer within the statement timeout; retry shortly.",
            )
        if isinstance(cause, sqlalchemy.exc.TimeoutError):
            return "database_busy", "Every database connection is busy; retry shortly."
        if isinstance(
            cause,
            OSError
            | asyncpg.CannotConnectNowError
            | asyncpg.TooManyConnectionsError
            | asyncpg.ConnectionDoesNotExistError,
        ):
            return "database_unavailable", "The database cannot be reached; retry shortly."
    return None


def _allowed_methods(request: Request) -> list[str]:
    """The methods documented for the request's path (the OpenAPI document is the contract)."""
    table = getattr(request.app.state, "allowed_methods", None)
    if table is None:
        table = []
        for template, item in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
            table.append((re.compile(f"^{pattern}$"), sorted(m.upper() for m in item)))
        request.app.state.allowed_methods = table
    for regex, methods in table:
        if regex.match(request.url.path):
            return list(methods)
    return []


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the given error statuses (served as problem+json;
    `main.build_openapi` moves them to that media type)."""
    descriptions = {
        400: "Malformed request (e.g. the body is not JSON).",
        401: "Missing, unknown or revoked API key.",
        403: "The API key lacks the scope this operation needs.",
        404: "No such resource (or it belongs to another channel).",
        409: "Conflicts with the resource's current state or another resource.",
        412: "`If-Match` does not match the resource's current `version`.",
        413: "Request body larger than 1 MiB.",
        422: "Invalid fields (`code: validation_error`, with `errors`), or a reused Idempotency-Key.",
        503: "Not ready.",
    }
    return {
        s: {"model": ProblemDetail, "description": descriptions.get(s, _TITLES.get(s, "Error"))}
        for s in statuses
    }
