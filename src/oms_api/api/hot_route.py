"""A route for the hot path: declared and documented as any other, handled with less.

FastAPI handles a request by solving the endpoint's dependencies: for each kind of parameter
it walks the declared fields, inspects their annotations and validates each value through a
general path. For order placement that was a sixth of the server's work per order. A
`HotRoute` is for an endpoint whose parameters are the `Request`, one JSON body and headers:
it reads the body as FastAPI would, validates the headers and the body with the very fields
FastAPI built from the signature (the same types, so the same answers and the same error
locations and messages), and calls the endpoint, which returns a `Response`. The OpenAPI
operation is FastAPI's, from the same signature. `tests/test_hot_route.py` sends the same
requests, good and bad, to a `HotRoute` and to an ordinary route and compares the answers.
"""

from __future__ import annotations

import copy
import email.message
import functools
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from oms_api.api.routing import Route

_NO_BODY = object()


class HotRoute(Route):
    """An `APIRoute` for an endpoint `(request: Request, body: Model, <header params>)`
    returning a `Response`; any other shape is refused when the route is made."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        d = self.dependant
        if (
            d.dependencies or d.path_params or d.query_params or d.cookie_params
            or len(d.body_params) != 1 or self._embed_body_fields
            or d.request_param_name is None or self.dependencies
        ):  # fmt: skip
            raise TypeError(
                f"{endpoint.__name__}: a HotRoute takes the request, one JSON body and headers"
            )

    async def before_refusing(self, request: Request) -> None:
        """Run when the headers or the body are invalid, before the 422. An endpoint that
        checks its caller itself (not through a dependency, which FastAPI solves before
        the body) checks it here too, so that a caller it would refuse hears its 401 or
        403 first, as from any other route. Nothing by default."""

    def endpoint_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint
        request_name = self.dependant.request_param_name
        assert request_name is not None
        body_field = self.dependant.body_params[0]
        headers = [(f.name, f.alias, f) for f in self.dependant.header_params]
        strict = self.strict_content_type
        strict_content_type = strict.value if isinstance(strict, DefaultPlaceholder) else strict

        async def handle(request: Request) -> Response:
            values: dict[str, Any] = {request_name: request}
            errors: list[Any] = []
            for name, alias, field in headers:
                value = request.headers.get(alias)
                if value is None:  # as FastAPI: absent is the default, or missing
                    if field.field_info.is_required():
                        errors.append(_missing(("header", alias)))
                    values[name] = copy.deepcopy(field.default)
                    continue
                values[name], field_errors = field.validate(value, loc=("header", alias))
                errors += field_errors
            body = await _received_body(request, strict_content_type)
            if body is _NO_BODY:
                if body_field.field_info.is_required():
                    errors.append(_missing(("body",)))
                values[body_field.name] = copy.deepcopy(body_field.default)
            else:
                values[body_field.name], body_errors = body_field.validate(body, loc=("body",))
                errors += body_errors
            if errors:
                await self.before_refusing(request)
                raise RequestValidationError(errors, body=None if body is _NO_BODY else body)
            response = await endpoint(**values)
            if not isinstance(response, Response):
                raise TypeError(f"{endpoint.__name__} must return a Response")
            return response

        return handle


async def _received_body(request: Request, strict_content_type: bool) -> Any:
    """The body as FastAPI gives it to validation: none when empty; parsed when its content
    type is JSON (`application/json`, `application/…+json`; with no content type, when not
    strict); else the bytes. Malformed JSON is its `json_invalid` error; a body that cannot
    be read or decoded (not UTF-8, nested too deeply), its 400, which
    `problems.unparseable_body` tells apart."""
    try:
        raw = await request.body()
        if not raw:
            return _NO_BODY
        content_type = request.headers.get("content-type")
        if not (_is_json(content_type) if content_type else not strict_content_type):
            return raw
        return await request.json()
    except json.JSONDecodeError as e:
        raise RequestValidationError(
            [{"type": "json_invalid", "loc": ("body", e.pos), "msg": "JSON decode error",
              "input": {}, "ctx": {"error": e.msg}}],
            body=e.doc,
        ) from e  # fmt: skip
    except HTTPException:
        raise
    except Exception as e:
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from e


@functools.lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    """Whether FastAPI parses a body of this content type as JSON (the same test, kept for
    the few values clients send)."""
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _missing(loc: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "missing", "loc": loc, "msg": "Field required", "input": None}
