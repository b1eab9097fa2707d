"""The webhook dispatcher: runs in every `oms-api serve` process and in `oms-api worker`.

- Claims due deliveries with `FOR UPDATE SKIP LOCKED` in a short transaction and leases
  them by moving `next_attempt_at` past the attempt's timeout: any number of dispatchers
  share the queue, and a delivery whose dispatcher died becomes due again when the lease
  runs out (at-least-once). No transaction is open during an HTTP call.
- Sends each delivery in its own task, at most `OMS_WEBHOOK_CONCURRENCY` at once, so a
  slow endpoint holds one slot for at most `OMS_WEBHOOK_TIMEOUT`, never the queue.
- Wakes on `LISTEN oms_webhook_deliveries` (the fan-out trigger NOTIFYs at commit), and
  polls every `OMS_WEBHOOK_POLL_INTERVAL` seconds as a fallback.
- Records every attempt; schedules retries with jittered back-off (`Retry-After`
  honoured); 410 disables the endpoint at once; an endpoint failing continuously for
  `OMS_WEBHOOK_DISABLE_AFTER` is disabled and `webhook_endpoint.disabled` recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import asyncpg
import httpx
from prometheus_client import Counter

from oms_api.db import Database, libpq_url
from oms_api.domain.events import WEBHOOK_ENDPOINT_DISABLED
from oms_api.ids import new_id
from oms_api.jsonutil import dumps, iso
from oms_api.outbox import event_data_sql, record_events
from oms_api.settings import Settings
from oms_api.webhooks.signing import signature_header
from oms_api.webhooks.targets import UnsafeTarget, pin

log = logging.getLogger("oms_api.webhooks")
CHANNEL = "oms_webhook_deliveries"
LEASE_MARGIN_S = 30
SNIPPET_BYTES = 500
MAX_RETRY_AFTER_S = 24 * 3600

DELIVERIES = Counter(
    "oms_webhook_attempts_total", "Webhook delivery attempts by outcome.", ["outcome"]
)

CLAIM_SQL = f"""
WITH due AS (
    SELECT d.id FROM webhook_deliveries d
    JOIN webhook_endpoints ep ON ep.id = d.endpoint_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND ep.status = 'enabled'
    ORDER BY d.next_attempt_at
    LIMIT $1
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + make_interval(secs => $2), attempts = d.attempts + 1
FROM due, webhook_endpoints ep, events e
WHERE d.id = due.id AND ep.id = d.endpoint_id AND e.id = d.event_id
RETURNING d.id, d.attempts, ep.id AS endpoint_id, ep.url, ep.secret, ep.previous_secret,
          ep.previous_secret_expires_at > now() AS previous_secret_valid, ep.channel_id,
          e.id AS event_id, e.type, e.created_at, e.sequence, {event_data_sql("e")} AS data,
          now() AS now
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    error: str | None
    snippet: str | None
    retry_after: float | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def event_body(row: Any) -> str:
    """`{id, type, created_at, sequence, data}` — the signed request body."""
    return dumps(
        {
            "id": row["event_id"],
            "type": row["type"],
            "created_at": iso(row["created_at"]),
            "sequence": row["sequence"],
            "data": row["data"],
        }
    ).decode()


def retry_delay(settings: Settings, attempts: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after `attempts` tries, or None when they are spent."""
    delays = settings.webhook_retry_delays
    if attempts > len(delays):
        return None
    delay = delays[attempts - 1] * random.uniform(0.8, 1.2)  # jitter: spread retry storms
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
    return delay


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class Dispatcher:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        database_url: str,
    ) -> None:
        self.settings = settings
        self.database = database
        self.database_url = database_url
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._http: httpx.AsyncClient | None = None

    async def run(self) -> None:
        """Until cancelled."""
        listener = asyncio.create_task(self._listen(), name="oms-webhook-listen")
        self._http = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout, follow_redirects=False, trust_env=False
        )
        try:
            while True:
                capacity = self.settings.webhook_concurrency - len(self._in_flight)
                claimed = 0
                if capacity > 0:
                    try:
                        claimed = await self._claim_and_send(capacity)
                    except Exception:
                        log.exception("claiming webhook deliveries failed; will retry")
                if claimed and claimed == capacity:
                    await asyncio.sleep(0)  # more may be due: claim again at once
                    continue
                self._wake.clear()
                waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
                waiters.extend(self._in_flight)
                await asyncio.wait(
                    waiters,
                    timeout=self.settings.webhook_poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiters[0].cancel()
        finally:
            listener.cancel()
            for task in list(self._in_flight):
                task.cancel()
            await asyncio.gather(listener, *self._in_flight, return_exceptions=True)
            await self._http.aclose()

    async def _listen(self) -> None:
        """LISTEN for new deliveries; reconnect if the connection drops."""
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(libpq_url(self.database_url))
                closed = asyncio.Event()
                conn.add_termination_listener(lambda *_, ev=closed: ev.set())
                await conn.add_listener(CHANNEL, lambda *_: self._wake.set())
                self._wake.set()  # catch up on anything NOTIFYed while not listening
                await closed.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("webhook LISTEN connection failed (%s); polling meanwhile", exc)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            await asyncio.sleep(2)

    async def _claim(self, limit: int) -> list[Any]:
        lease = self.settings.webhook_timeout + LEASE_MARGIN_S
        async with self.database.transaction() as conn:
            return list(await conn.fetch(CLAIM_SQL, limit, lease))

    async def _claim_and_send(self, limit: int) -> int:
        # Shielded: a shutdown may interrupt an HTTP call, never a transaction (a cancelled
        # await inside one can hand a pooled connection back mid-transaction).
        rows = await asyncio.shield(self._claim(limit))
        for row in rows:
            task = asyncio.create_task(self._deliver(row))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(rows)

    async def _deliver(self, row: Any) -> None:
        try:
            outcome = await self._send(row)
        except Exception as exc:  # a bug must not lose the delivery: the lease brings it back
            log.exception("sending webhook delivery %s failed unexpectedly", row["id"])
            outcome = Outcome(None, 0, f"internal error: {type(exc).__name__}", None, None)
        try:
            await asyncio.shield(self._record(row, outcome))
        except Exception:
            log.exception("recording webhook delivery %s failed; it will be retried", row["id"])

    async def _send(self, row: Any) -> Outcome:
        if self._http is None:
            raise RuntimeError("the dispatcher is not running")
        body = event_body(row)
        secrets_in_use = [row["secret"]]
        if row["previous_secret"] and row["previous_secret_valid"]:
            secrets_in_use.append(row["previous_secret"])
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "oms-api-webhooks/1",
            "webhook-id": row["event_id"],
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature_header(
                secrets_in_use, msg_id=row["event_id"], timestamp=now, body=body
            ),
        }
        started = time.perf_counter()
        try:
            target = await pin(
                row["url"],
                allow_private=self.settings.webhook_allow_private_urls,
                resolve_seconds=self.settings.webhook_timeout,
            )
            extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
            response = await self._http.post(
                target.url,
                content=body.encode(),
                headers=headers | {"host": target.host_header},
                extensions=extensions,
            )
        except UnsafeTarget as exc:
            return Outcome(None, _ms(started), f"refused: {exc}", None, None)
        except httpx.TimeoutException:
            return Outcome(None, _ms(started), "timeout", None, None)
        except httpx.HTTPError as exc:
            return Outcome(None, _ms(started), f"{type(exc).__name__}: {exc}"[:300], None, None)
        snippet = response.content[:SNIPPET_BYTES].decode("utf-8", "replace")
        return Outcome(
            response.status_code,
            _ms(started),
            None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
            snippet,
            parse_retry_after(response.headers.get("retry-after")),
        )

    async def _record(self, row: Any, outcome: Outcome) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(
                """INSERT INTO webhook_attempts (id, delivery_id, status_code, latency_ms, error,
                                                 response_snippet)
                   VALUES ($1, $2, $3, $4, $5, $6)""",
                new_id("wha"), row["id"], outcome.status_code, outcome.latency_ms,
                outcome.error, outcome.snippet,
            )  # fmt: skip
            if outcome.ok:
                DELIVERIES.labels("succeeded").inc()
                await conn.execute(
                    """UPDATE webhook_deliveries SET status = 'succeeded', delivered_at = now(),
                           last_status_code = $2, last_latency_ms = $3, last_error = NULL
                       WHERE id = $1""",
                    row["id"], outcome.status_code, outcome.latency_ms,
                )  # fmt: skip
                await conn.execute(
                    "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
                    row["endpoint_id"],
                )
                return
            if outcome.status_code == 410:
                DELIVERIES.labels("gone").inc()
                await self._fail(conn, row, outcome, None)
                await disable_endpoint(conn, row["endpoint_id"], "the endpoint answered 410 Gone")
                return
            delay = retry_delay(self.settings, row["attempts"], outcome.retry_after)
            DELIVERIES.labels("failed" if delay is None else "retrying").inc()
            await self._fail(conn, row, outcome, delay)
            failing_since = await conn.fetchval(
                """UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now())
                   WHERE id = $1 RETURNING failing_since""",
                row["endpoint_id"],
            )
            if failing_since is not None and row["now"] - failing_since >= timedelta(
                seconds=self.settings.webhook_disable_after
            ):
                await disable_endpoint(
                    conn, row["endpoint_id"],
                    f"deliveries failed continuously since {iso(failing_since)}",
                )  # fmt: skip

    @staticmethod
    async def _fail(
        conn: asyncpg.Connection, row: Any, outcome: Outcome, delay: float | None
    ) -> None:
        await conn.execute(
            """UPDATE webhook_deliveries
               SET status = CASE WHEN $2::float8 IS NULL THEN 'failed' ELSE 'pending' END,
                   next_attempt_at = CASE WHEN $2::float8 IS NULL THEN next_attempt_at
                                          ELSE now() + make_interval(secs => $2::float8) END,
                   last_status_code = $3, last_latency_ms = $4, last_error = $5
               WHERE id = $1""",
            row["id"], delay, outcome.status_code, outcome.latency_ms, outcome.error,
        )  # fmt: skip


async def disable_endpoint(conn: asyncpg.Connection, endpoint_id: str, reason: str) -> bool:
    """Disable (never delete) the endpoint and record `webhook_endpoint.disabled`."""
    row = await conn.fetchrow(
        """UPDATE webhook_endpoints SET status = 'disabled', disabled_at = now(), disabled_reason = $2
           WHERE id = $1 AND status = 'enabled'
           RETURNING id, url, channel_id, disabled_at""",
        endpoint_id, reason,
    )  # fmt: skip
    if row is None:
        return False
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    data = {"id": row["id"], "url": row["url"], "channel_id": row["channel_id"],
            "status": "disabled", "disabled_reason": reason, "disabled_at": iso(row["disabled_at"])}  # fmt: skip
    await record_events(
        conn, [WEBHOOK_ENDPOINT_DISABLED], order_id=None, data=data, channel_id=row["channel_id"]
    )
    return True


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
