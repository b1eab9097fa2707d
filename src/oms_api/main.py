"""The application: create_app() wires settings, database, routers and error handling."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import logging
import pkgutil
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel

from oms_api import __version__, schemas
from oms_api.api import (
    api_keys,
    catalog,
    channels,
    customers,
    inventory,
    notifications,
    operations,
    orders,
    pickups,
    replenishments,
    returns,
    shipments,
)
from oms_api.api import events as events_api
from oms_api.api import reports as reports_api
from oms_api.api import settings as settings_api
from oms_api.api import webhooks as webhooks_api
from oms_api.api.problems import PROBLEM_CONTENT_TYPE, install_error_handlers
from oms_api.db import Database, PassFailures, create_engine
from oms_api.domain.rate_limit import TokenBuckets
from oms_api.migrations_runner import head_revision
from oms_api.observability import RequestContextMiddleware, configure_logging
from oms_api.replica import ReadReplica
from oms_api.services import backorders, idempotency, report_summaries
from oms_api.services import orders as order_service
from oms_api.services.notifier import Notifier
from oms_api.settings import Settings, get_settings
from oms_api.webhooks.dispatcher import Dispatcher

log = logging.getLogger("oms_api")

DESCRIPTION = """\
One REST/JSON API for every sales channel's orders: placement with exact stock, payment,
fulfilment, returns, and signed webhooks for every status change.

Authenticate with `Authorization: Bearer oms_…`. Errors are `application/problem+json`
with a stable `code`. Lists page with `limit` and `cursor`. Creating POSTs accept an
`Idempotency-Key`.
"""

# Unpaid pending orders expired per pass at most (the rest in the next pass).
EXPIRY_LIMIT = 1000
# Steps of the reports' summariser per pass: a month of days each (7-13 s on a million orders).
SUMMARY_STEPS = 20


def operation_id(route: APIRoute) -> str:
    """The route function's name: `create_channel`, `list_orders`… stable for generated clients."""
    return route.name


async def housekeeping_pass(database: Database) -> None:
    """Expire unpaid pending orders, fill backorders a release passed over, purge old
    Idempotency-Key records, bring the reports' summaries up to the outbox. Every statement
    is safe to run from many processes at once (SKIP LOCKED, idempotent deletes)."""
    # Each order expires in its own transaction, as a cancel would: several in one would lock
    # their stock levels order by order, out of the order a placement locks them in (a
    # deadlock with a placement of both orders' products).
    expired = 0
    while True:
        async with database.transaction() as conn:
            one = await order_service.expire_pending_orders(conn, limit=1)
        expired += one
        if not one or expired >= EXPIRY_LIMIT:
            break
    if expired:
        log.info("expired %d unpaid pending order(s)", expired)
    async with database.transaction() as conn:
        await backorders.fill_passed_over(conn)
    async with database.session() as session:
        await idempotency.purge_expired(session)
    await summarise_reports(database)


async def summarise_reports(database: Database, *, steps: int = SUMMARY_STEPS) -> int:
    """Up to `steps` steps of the reports' summariser, each its own transaction; stops when
    caught up. What was done (0: nothing to do, or another process holds the cursor)."""
    done = 0
    for _ in range(steps):
        async with database.transaction() as conn:
            step = await report_summaries.summarise(conn)
        done += step
        if not step:
            break
    return done


async def run_housekeeping(database: Database, interval: float) -> None:
    failures = PassFailures(log, "housekeeping pass")
    while True:
        await asyncio.sleep(interval)
        try:  # shielded: shutdown must not cancel a transaction half-way
            await asyncio.shield(housekeeping_pass(database))
        except Exception:
            failures.failed()
        else:
            failures.succeeded()


def background_tasks(
    settings: Settings, database: Database, *, dispatcher: bool
) -> list[asyncio.Task[None]]:
    """Housekeeping, and the webhook dispatcher and the notifier if wanted, as running tasks."""
    tasks = [
        asyncio.create_task(
            run_housekeeping(database, settings.maintenance_interval), name="oms-housekeeping"
        )
    ]
    if dispatcher:
        if not settings.database_url:
            raise RuntimeError("the webhook dispatcher needs DATABASE_URL (for LISTEN)")
        runner = Dispatcher(
            settings=settings, database=database, database_url=settings.database_url
        )
        tasks.append(asyncio.create_task(runner.run(), name="oms-webhook-dispatcher"))
        notifier = Notifier(settings=settings, database=database)
        tasks.append(asyncio.create_task(notifier.run(), name="oms-notifier"))
    return tasks


def tune_garbage_collector() -> None:
    """Fewer, cheaper cyclic collections. Everything alive at startup (modules, the app, its
    routes and models) moves to a generation the collector never scans again, and the
    youngest generation is collected every 20,000 allocations instead of 700: a request
    allocates a few thousand short-lived objects, almost none in cycles, so the default
    spent ~8 % of the server's CPU re-scanning live objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if not settings.database_url:
        raise RuntimeError(
            "DATABASE_URL is not set. Start the service with `oms-api serve`, which starts an "
            "embedded PostgreSQL when DATABASE_URL is unset."
        )
    engine = create_engine(settings, settings.database_url)
    replica = ReadReplica.from_settings(settings, engine, revision=app.state.migration_head)
    database = Database(engine, replica=replica)
    app.state.database = database
    tasks = background_tasks(settings, database, dispatcher=settings.dispatcher)
    if replica is not None:
        await replica.check()  # serve the first reads from it if it is healthy
        tasks.append(asyncio.create_task(replica.run(), name="oms-read-replica-check"))
    tune_garbage_collector()
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await database.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_format, settings.log_level)
    app = FastAPIOffline(
        title="oms-api",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        static_url="/docs-assets",
        # FastAPI's own OpenTelemetry spans, metrics and logs: off, so that no request asks
        # whether a provider is configured. Ours are the Prometheus metrics and JSON logs.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # A path with a trailing slash is no route (404 `not_found`), never a redirect to
        # the other spelling: the redirect's Location was built from the request's Host.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.migration_head = head_revision()
    app.state.rate_limiter = (
        TokenBuckets(settings.rate_limit, settings.rate_limit_burst)
        if settings.rate_limit
        else None
    )
    install_error_handlers(app)
    app.include_router(operations.router)
    app.include_router(orders.router)
    app.include_router(shipments.router)
    app.include_router(pickups.router)
    app.include_router(returns.router)
    app.include_router(customers.router)
    app.include_router(catalog.products)
    app.include_router(inventory.router)
    app.include_router(replenishments.router)
    app.include_router(catalog.locations)
    app.include_router(channels.router)
    app.include_router(api_keys.router)
    app.include_router(webhooks_api.endpoints)
    app.include_router(webhooks_api.deliveries)
    app.include_router(events_api.router)
    app.include_router(settings_api.router)
    app.include_router(notifications.router)
    app.include_router(reports_api.router)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


# Every /v1 operation is authenticated by `api.deps.authorize`, which reads the header
# itself: the scheme is documented here, once, rather than by a dependency that every
# request would run only to be documented.
BEARER_SCHEME = {
    "type": "http",
    "description": "An API key: `Authorization: Bearer oms_…`",
    "scheme": "bearer",
}


def authenticated(operation: dict[str, Any]) -> dict[str, Any]:
    """`operation` with the bearer scheme as its security, where FastAPI writes it (after
    the operationId)."""
    out: dict[str, Any] = {}
    for key, value in operation.items():
        out[key] = value
        if key == "operationId":
            out["security"] = [{"HTTPBearer": []}]
    return out


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The schema, with error responses as problem+json (RFC 9457) and every /v1
    operation behind the bearer scheme."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
    )
    problem_ref = {"$ref": "#/components/schemas/ProblemDetail"}
    schema.setdefault("components", {})["securitySchemes"] = {"HTTPBearer": BEARER_SCHEME}
    schema["components"]["headers"] = RESPONSE_HEADERS
    for path, path_item in schema.get("paths", {}).items():
        for method, operation in list(path_item.items()):
            if path.startswith("/v1/"):
                operation = path_item[method] = authenticated(operation)
            responses = operation.setdefault("responses", {})
            if path.startswith("/v1/"):
                # Every /v1 operation may answer these (see docs/api-conventions.md).
                common = {
                    "400": "Malformed request: body not JSON, NUL in the URL, bad header.",
                    "422": "Invalid fields or parameters (`errors` lists them).",
                    "429": "Rate limit exceeded (when enabled); see `Retry-After`.",
                    "503": "The database is unavailable, busy or too slow; see `Retry-After`.",
                }
                if method != "get":  # whether or not it reads one: the limit is checked first
                    common["413"] = "Request body larger than 1 MiB."
                for status, description in common.items():
                    responses.setdefault(
                        status,
                        {
                            "description": description,
                            "content": {"application/json": {"schema": problem_ref}},
                        },
                    )
            for status, response in responses.items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_CONTENT_TYPE] = content.pop("application/json")
            if path.startswith("/v1/"):
                document_headers(operation, method, path_item, schema["paths"], path)
    restore_example_nulls(schema["components"]["schemas"])
    app.openapi_schema = schema
    return schema


def _header(description: str, example: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}, "example": example}


# components.headers, referred to by the responses that send them (document_headers).
RESPONSE_HEADERS = {
    "ETag": _header("The resource's `version`, quoted: send it back as `If-Match`.", '"3"'),
    "Idempotent-Replayed": _header(
        "`true` when this is the stored answer to an earlier request with the same "
        "`Idempotency-Key`; absent otherwise.",
        "true",
    ),
    "Retry-After": _header(
        "Seconds to wait before retrying (on a 409: only with `idempotency_key_in_flight`, "
        "after which the retry gets the first request's answer, replayed).",
        "1",
    ),
    "WWW-Authenticate": _header("The scheme to authenticate with.", 'Bearer realm="oms-api"'),
}


def document_headers(
    operation: dict[str, Any], method: str, path_item: dict[str, Any],
    paths: dict[str, Any], path: str,
) -> None:  # fmt: skip
    """The response headers docs/api-conventions.md promises, where a /v1 operation sends
    them: `ETag` on the POST that creates, and the GET and PATCH, of a resource edited with
    `If-Match`,
    `Idempotent-Replayed` (and `Retry-After` on the 409 of a key in flight) where
    `Idempotency-Key` is taken, `Retry-After` on 429 and 503, `WWW-Authenticate` on 401."""
    responses = operation["responses"]
    ok = next(status for status in responses if status.startswith("2"))
    patch_params = path_item.get("patch", {}).get("parameters", [])
    params = {p["name"] for p in operation.get("parameters", [])}
    add = [("401", "WWW-Authenticate"), ("429", "Retry-After"), ("503", "Retry-After")]
    if method in ("get", "patch") and any(p["name"] == "If-Match" for p in patch_params):
        add.append((ok, "ETag"))
    if method == "post" and any(  # the create of a collection whose items take If-Match
        p["name"] == "If-Match"
        for item_path, item in paths.items()
        if item_path.startswith(f"{path}/{{") and item_path.count("/") == path.count("/") + 1
        for p in item.get("patch", {}).get("parameters", [])
    ):
        add.append((ok, "ETag"))
    if "Idempotency-Key" in params:
        add += [(ok, "Idempotent-Replayed"), ("409", "Retry-After")]
    for status, name in add:
        if status in responses:
            ref = {"$ref": f"#/components/headers/{name}"}
            responses[status].setdefault("headers", {})[name] = ref


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def restore_example_nulls(components: dict[str, Any]) -> None:
    """FastAPI writes the document with `exclude_none`, which drops every `null` of the
    models' examples too, so an example lost its required nullable fields and failed its
    own schema. Each component whose examples are a model's declared examples less their
    nulls gets the declared ones back."""
    for info in pkgutil.iter_modules(schemas.__path__):
        module = importlib.import_module(f"{schemas.__name__}.{info.name}")
        for model in vars(module).values():
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                continue
            extra = model.model_config.get("json_schema_extra")
            component = components.get(model.__name__)
            if not isinstance(extra, dict) or component is None or "examples" not in extra:
                continue
            declared = jsonable_encoder(extra["examples"])
            if component.get("examples") == _without_nulls(declared) != declared:
                # keys sorted, as pydantic writes examples
                component["examples"] = json.loads(json.dumps(declared, sort_keys=True))


TAGS = [
    {"name": "orders", "description": "Placement with exact stock, reads, commands, payments."},
    {"name": "shipments", "description": "Fulfilment: shipments, labels, pick lists, tracking."},
    {"name": "pickups", "description": "Carrier pickups and the driver's manifest."},
    {"name": "returns", "description": "Returns (RMAs), refunds and exchanges."},
    {"name": "customers", "description": "Buyers and their purchase history."},
    {"name": "products", "description": "The catalogue: SKUs, prices, reorder points."},
    {
        "name": "inventory",
        "description": "Stock per product and location, adjustments, the ledger, replenishment.",
    },
    {"name": "locations", "description": "Warehouses and stores stock is kept and shipped from."},
    {"name": "channels", "description": "Sales channels: web store, marketplace, POS, phone desk."},
    {"name": "api-keys", "description": "API keys: scopes, channel binding, revocation."},
    {"name": "webhooks", "description": "Signed event delivery to the channels' endpoints."},
    {"name": "events", "description": "The event feed, for integrators that poll."},
    {
        "name": "settings",
        "description": "Runtime settings: risk rules, return window, auto-allocation.",
    },
    {"name": "notifications", "description": "Customer emails: per-channel settings, sent mail."},
    {
        "name": "reports",
        "description": "Sales, fulfilment lead times, returns, inventory: JSON or CSV.",
    },
    {"name": "operations", "description": "Health, readiness and metrics."},
]
