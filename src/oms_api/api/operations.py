"""Liveness, readiness and metrics: unauthenticated, outside /v1."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import text
from starlette.responses import Response

from oms_api.api.problems import problem_response, problem_responses
from oms_api.db import driver_connection
from oms_api.observability import (
    NOTIFICATION_OLDEST_PENDING,
    NOTIFICATION_QUEUE_DEPTH,
    WEBHOOK_OLDEST_PENDING,
    WEBHOOK_QUEUE_DEPTH,
    metrics_payload,
)
from oms_api.replica import ReadReplica
from oms_api.services.notifier import pending_stats
from oms_api.services.webhooks import queue_stats

# Probes and scrapes: a load balancer or monitor may add a query string of its own (a
# cache-buster, a scrape's `name[]`), which is ignored here — unlike the API's operations
# (`api.routing.Route`), where an unknown parameter is a mistyped filter.
router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class ReadDatabaseReadiness(BaseModel):
    """The read replica (OMS_READ_DATABASE_URL) at its last check."""

    status: Literal["ok", "lagging", "down"] = Field(
        description="`ok`: lists, reports and the event feed read from it; `lagging` (more "
        "than OMS_READ_MAX_LAG_SECONDS behind) or `down`: they read from the primary."
    )
    lag_seconds: float | None = Field(
        description="How far it is behind the primary; null when down."
    )
    detail: str


class Readiness(BaseModel):
    status: str
    database: str
    migration: str | None
    read_database: ReadDatabaseReadiness | None = Field(
        default=None,
        description="The read replica, when one is configured. Its state never makes the "
        "service unready: the primary answers the reads meanwhile.",
    )


@router.get("/healthz", response_model=Health, summary="Is the process alive")
async def healthz() -> Health:
    """200 while the process runs; touches nothing else."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Can it serve requests",
    responses=problem_responses(503),
)
async def readyz(request: Request) -> Response | Readiness:
    """200 when the database answers and its schema is at the migration head; else 503.
    With a read replica, its state and lag (`read_database`), which never make it 503."""
    expected = request.app.state.migration_head
    try:
        async with request.app.state.database.engine.connect() as conn:
            current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    except Exception as exc:  # any failure to reach or read the database means "not ready"
        return problem_response(
            request.url.path, status=503, code="database_unavailable",
            detail=f"The database is not reachable: {type(exc).__name__}.",
        )  # fmt: skip
    if current != expected:
        return problem_response(
            request.url.path, status=503, code="migrations_pending",
            detail=f"The database schema is at {current}, the code expects {expected}; "
            "run `oms-api migrate`.",
        )  # fmt: skip
    replica: ReadReplica | None = request.app.state.database.replica
    read_database = None
    if replica is not None:
        status = replica.status
        lag = None if status.lag_seconds is None else round(status.lag_seconds, 3)
        read_database = ReadDatabaseReadiness(
            status=status.state.value, lag_seconds=lag, detail=status.detail
        )
    return Readiness(status="ok", database="ok", migration=current, read_database=read_database)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request) -> Response:
    """Request counts and latency by route and status, webhook attempts by outcome, webhook
    queue depth and oldest undelivered age, customer notifications by outcome and the oldest
    unsent one's age, and with a read replica its lag, whether reads go to it, and the reads
    the primary answered instead, in Prometheus text format."""
    try:
        async with request.app.state.database.session() as session:
            depth, oldest = await queue_stats(session)
            due, oldest_due = await pending_stats(await driver_connection(session))
        WEBHOOK_QUEUE_DEPTH.set(depth)
        WEBHOOK_OLDEST_PENDING.set(oldest)
        NOTIFICATION_QUEUE_DEPTH.set(due)
        NOTIFICATION_OLDEST_PENDING.set(oldest_due)
    except Exception:  # metrics must answer even when the database does not
        pass
    payload, content_type = metrics_payload()
    return Response(payload, media_type=content_type)
