"""The route every operation of the API is served by.

A query parameter an operation does not declare is refused, as an unknown body field is: a
mistyped filter (`?stauts=pending`) would otherwise be ignored and answer the unfiltered
list. The names an operation takes are gathered once, when its route is made; a request with
no query string pays one lookup for them.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class Route(APIRoute):
    """An operation's route: a query parameter its endpoint and dependencies do not declare
    is a 422 `validation_error` naming it, raised before anything else of the request is
    read (the API key included). Subclasses change how the endpoint is run by overriding
    `endpoint_handler`, not `get_route_handler`."""

    def get_route_handler(self) -> Handler:
        return refuse_unknown_query_parameters(
            self.endpoint_handler(), query_parameter_names(self.dependant)
        )

    def endpoint_handler(self) -> Handler:
        """The handler that runs the endpoint (FastAPI's, unless a subclass says)."""
        return super().get_route_handler()


def query_parameter_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters an endpoint and its dependencies declare, by the name a client
    sends (the alias)."""
    names = {field.alias for field in dependant.query_params}
    for sub in dependant.dependencies:
        names |= query_parameter_names(sub)
    return frozenset(names)


def refuse_unknown_query_parameters(handler: Handler, names: frozenset[str]) -> Handler:
    takes = ", ".join(sorted(names)) if names else "none"
    msg = f"Unknown query parameter; this operation takes: {takes}"

    async def checked(request: Request) -> Response:
        if request.scope["query_string"]:  # parsed once: FastAPI reads the same QueryParams
            params = request.query_params
            unknown = [name for name in params if name not in names]
            if unknown:
                raise RequestValidationError(
                    [
                        {"type": "unknown_query_parameter", "loc": ("query", name),
                         "msg": msg, "input": params[name]}
                        for name in unknown
                    ]
                )  # fmt: skip
        return await handler(request)

    return checked
