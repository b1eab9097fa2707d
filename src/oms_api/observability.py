"""Request ids, body-size limit, Prometheus metrics and structured logs, as one ASGI layer."""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import re
import sys
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from oms_api.api.problems import problem_response, unexpected_response
from oms_api.jsonutil import dumps

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("oms_api.access")

HTTP_REQUESTS = Counter(
    "oms_http_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "oms_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


WEBHOOK_QUEUE_DEPTH = Gauge(
    "oms_webhook_queue_depth",
    "Webhook deliveries waiting to be sent.",
    multiprocess_mode="mostrecent",
)
WEBHOOK_OLDEST_PENDING = Gauge(
    "oms_webhook_oldest_pending_seconds",
    "Age of the oldest webhook delivery not yet delivered.",
    multiprocess_mode="mostrecent",
)
NOTIFICATION_QUEUE_DEPTH = Gauge(
    "oms_notification_queue_depth",
    "Customer notifications due, or tried and waiting for a retry, not yet sent.",
    multiprocess_mode="mostrecent",
)
NOTIFICATION_OLDEST_PENDING = Gauge(
    "oms_notification_oldest_pending_seconds",
    "Seconds since the oldest of those fell due.",
    multiprocess_mode="mostrecent",
)


def metrics_payload() -> tuple[bytes, str]:
    """Prometheus text; across all worker processes when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


class RequestContextMiddleware:
    """Gives every request an id (echoing a sane `X-Request-ID`), refuses bodies over the
    limit with 413, answers an exception no handler took (`problems.unexpected_response`),
    counts and times each request by route template, and logs it: one layer, so a request
    passes one frame here on each of its awaits, and its response one wrapper.

    Answering the unexpected here, instead of letting it reach Starlette's
    ServerErrorMiddleware: that one answers and then re-raises, and uvicorn, seeing an
    exception after the response, drops the keep-alive connection without saying
    `Connection: close`, so the client's next request on it is reset. The answer carries
    `X-Request-ID` and is counted. An exception after the response has started still
    propagates: that response is cut short, and closing the connection is then the only
    honest end."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # (method, route template, status) -> its request counter and latency histogram,
        # looked up once: prometheus_client's `labels()` checks and locks on every call.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming_id, declared_length, repeated_key = _request_headers(scope)
        request_id = incoming_id or new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status_holder = [0]  # the response's status once it has started
        raw_id = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", raw_id))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if _has_nul(scope):
                response = problem_response(
                    scope.get("path"), status=422, code="invalid_characters",
                    detail="The URL contains a NUL (%00) character.", request_id=request_id,
                )  # fmt: skip
                await response(scope, receive, send_with_id)
                return
            if repeated_key:  # which one would the client mean? Neither is guessed.
                response = problem_response(
                    scope.get("path"), status=422, code="idempotency_key_repeated",
                    detail="Send one Idempotency-Key header: this request has several.",
                    request_id=request_id,
                )  # fmt: skip
                await response(scope, receive, send_with_id)
                return
            too_large = declared_length > self.max_body_bytes
            if not too_large and declared_length < 0 and scope["method"] not in ("GET", "HEAD"):
                receive, too_large = await _buffer_body(receive, self.max_body_bytes)
            if too_large:
                response = problem_response(
                    scope.get("path"),
                    status=413,
                    code="payload_too_large",
                    detail=f"The request body is larger than {self.max_body_bytes} bytes.",
                    request_id=request_id,
                )
                await response(scope, receive, send_with_id)
                return
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if status_holder[0]:
                    raise
                response = unexpected_response(Request(scope), exc)
                await response(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            status = status_holder[0] or 500
            key = (method, template, status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (
                    HTTP_REQUESTS.labels(method, template, str(status)),
                    HTTP_LATENCY.labels(method, template, str(status)),
                )
            children[0].inc()
            children[1].observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %s", method, scope.get("path"), status,
                    extra={"status": status, "duration_ms": round(elapsed * 1000, 2), "route": template},
                )  # fmt: skip
            request_id_var.reset(token)


def _request_headers(scope: Scope) -> tuple[str | None, int, bool]:
    """The first `X-Request-ID` if it is sane (else None), the first Content-Length (-1:
    none, or not a number), and whether `Idempotency-Key` came more than once: one pass
    over the headers."""
    request_id: str | None = None
    length: int | None = None
    seen_id = False
    idempotency_keys = 0
    for name, value in scope["headers"]:
        if name == b"idempotency-key":
            idempotency_keys += 1
        elif name == b"content-length":
            if length is None:
                try:
                    length = int(value)
                except ValueError:
                    length = -1
        elif name == b"x-request-id" and not seen_id:
            seen_id = True
            text = value.decode("latin-1")
            request_id = text if _REQUEST_ID_RE.match(text) else None
    return request_id, -1 if length is None else length, idempotency_keys > 1


# A version-4 UUID's fixed bits: the variant (10) and the version (0100).
_UUID4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_UUID4_SET = (0x8000 << 48) | (4 << 76)


def new_request_id() -> str:
    """`uuid.uuid4().hex`, without making the UUID object: 32 hex digits, version 4."""
    return f"{int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET:032x}"


def _has_nul(scope: Scope) -> bool:
    raw = scope.get("raw_path") or b""
    query = scope.get("query_string") or b""
    return b"%00" in raw or b"%00" in query or b"\x00" in raw or "\x00" in scope.get("path", "")


async def _buffer_body(receive: Receive, limit: int) -> tuple[Receive, bool]:
    """Read a body of unknown length (chunked) up to `limit`; replay it to the app."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return receive, True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay, False


@functools.lru_cache(maxsize=2)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def log_time(created: float) -> str:
    """`created` as `datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`
    writes it (rounded to the microsecond, half to even, then cut to the millisecond), at a
    fifth of the cost: a second's text is made once, and every request logs a line."""
    second = int(created)
    micros = round((created - second) * 1e6)
    if micros == 1_000_000:
        second, micros = second + 1, 0
    return f"{_utc_second(second)}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    _skip = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": log_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in self._skip and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return dumps(entry).decode()


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s%(rid)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = request_id_var.get()
        record.rid = f" [{request_id[:12]}]" if request_id else ""
        return super().format(record)


def configure_logging(log_format: str, level: str) -> None:
    """Our one stderr handler on the root logger (replacing a previous one of ours only).

    Neither format shows where a log call was made from, nor the thread or process: the
    records are made without them (the logging HOWTO's "Optimization"), which halves the
    cost of the access log line every request writes."""
    logging._srcfile = None  # no sys._getframe() walk per record
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    handler.set_name("oms_api")
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != "oms_api"] + [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
