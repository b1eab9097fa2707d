"""The webhook dispatcher: runs in every `oms-api serve` process and in `oms-api worker`.

- Claims due deliveries with `FOR UPDATE SKIP LOCKED` in a short transaction and leases
  them by moving `next_attempt_at` past the attempt's timeout: any number of dispatchers
  share the queue, and a delivery whose dispatcher died becomes due again when the lease
  runs out (at-least-once). No transaction is open during an HTTP call.
- Sends each delivery in its own task, at most `OMS_WEBHOOK_CONCURRENCY` at once and at
  most `OMS_WEBHOOK_ENDPOINT_CONCURRENCY` of them to one endpoint, so a slow endpoint
  holds a few slots for at most `OMS_WEBHOOK_TIMEOUT` each, never the queue.
- One order's deliveries to one endpoint go one at a time in `sequence` order (CLAIM_SQL).
- Wakes on `LISTEN oms_webhook_deliveries` (the fan-out trigger NOTIFYs at commit), and
  polls every `OMS_WEBHOOK_POLL_INTERVAL` seconds as a fallback.
- Records every attempt; schedules retries with jittered back-off (`Retry-After`
  honoured); 410 disables the endpoint at once; an endpoint failing continuously for
  `OMS_WEBHOOK_DISABLE_AFTER` is disabled and `webhook_endpoint.disabled` recorded.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
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

from oms_api.db import Database, PassFailures, libpq_url
from oms_api.domain.events import WEBHOOK_ENDPOINT_DISABLED
from oms_api.ids import new_id
from oms_api.jsonutil import dumps, iso
from oms_api.outbox import event_data_sql, record_events
from oms_api.settings import Settings
from oms_api.webhooks.deliveries import drop_pending, postpone_later
from oms_api.webhooks.signing import signature_header
from oms_api.webhooks.targets import UnsafeTarget, pin

log = logging.getLogger("oms_api.webhooks")
CHANNEL = "oms_webhook_deliveries"
LEASE_MARGIN_S = 30
# An endpoint may hold `OMS_WEBHOOK_ENDPOINT_CONCURRENCY` slots of a process, unless it is
# fast: it answered within the last FAST_FOR_S, its answers take under FAST_RESPONSE_MS on
# average (a moving average: one late answer does not make it slow), its last attempt got
# an answer (not a timeout or a failed connection), and none of its deliveries in flight
# has waited HANGING_MS. A fast endpoint may hold every slot (a busy shop's one endpoint
# is not throttled for nothing; a freed slot still goes to the endpoint with the fewest in
# flight). An endpoint never seen, slow or silent: its share only.
FAST_RESPONSE_MS = 1000
HANGING_MS = 2000
FAST_FOR_S = 60.0
LATENCY_WEIGHT = 0.2  # of the newest answer in the moving average
SNIPPET_BYTES = 500
MAX_RETRY_AFTER_S = 24 * 3600

DELIVERIES = Counter(
    "oms_webhook_attempts_total", "Webhook delivery attempts by outcome.", ["outcome"]
)

# Which deliveries one pass claims, at most $1 (the process's free slots):
# - FIFO per (endpoint, order): a delivery of an order's event is due only when no
#   earlier-`sequence` delivery of that order to that endpoint is still pending (in flight,
#   waiting for a retry or due: the head of the order's queue blocks the rest until it
#   succeeds or is finally failed or dropped). Events of no order are not ordered.
# - Fair: each enabled endpoint contributes its oldest due heads, at most $5 in flight per
#   endpoint in this process ($3/$4: this process's endpoints in flight and their counts),
#   and every endpoint's first before any endpoint's second: a slow endpoint's backlog takes
#   at most $5 slots and never keeps another endpoint's deliveries waiting.
# Index-supported: per endpoint, ix_webhook_deliveries_due (endpoint_id, next_attempt_at)
# WHERE status = 'pending'; the head check walks the order's earlier events
# (ix_events_order_id_sequence) and their deliveries (uq_webhook_deliveries_endpoint_id_event_id).
# `heads` takes no lock; `due` locks what it can (SKIP LOCKED: another dispatcher claiming
# at the same moment) and checks again that each is still pending and due. `candidates`
# says how many were chosen, so a pass that lost some to another dispatcher claims again.
CLAIM_SQL = f"""
WITH busy AS (
    SELECT * FROM unnest($3::text[], $4::int[]) AS b(endpoint_id, in_flight)
), heads AS (
    SELECT h.id
    FROM webhook_endpoints ep
    LEFT JOIN busy b ON b.endpoint_id = ep.id
    -- An endpoint seen answering fast ($6) may hold every slot ($7); any other, $5.
    CROSS JOIN LATERAL (
        SELECT CASE WHEN ep.id = ANY($6::text[]) THEN $7::int ELSE $5::int END AS cap
    ) c
    CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at,
               row_number() OVER (ORDER BY d.next_attempt_at, d.id) AS rank
        FROM webhook_deliveries d
        JOIN events e ON e.id = d.event_id
        WHERE d.endpoint_id = ep.id AND d.status = 'pending' AND d.next_attempt_at <= now()
          -- Not while an earlier event of its order waits for this endpoint. Asked from the
          -- order's earlier events (their index), each one's delivery looked up by its key
          -- (the LIMIT keeps the planner from turning it into a join: with statistics from
          -- before a backlog grew, it scanned the endpoint's whole backlog for every
          -- candidate, 0.27 s a claim at 3,500 pending). An order's first event has none.
          AND (e.order_id IS NULL OR e.sequence = 1 OR NOT EXISTS (
                SELECT FROM events earlier
                CROSS JOIN LATERAL (
                    SELECT FROM webhook_deliveries ed
                    WHERE ed.endpoint_id = d.endpoint_id AND ed.event_id = earlier.id
                      AND ed.status = 'pending'
                    LIMIT 1
                ) waiting
                WHERE earlier.order_id = e.order_id AND earlier.sequence < e.sequence))
        ORDER BY d.next_attempt_at, d.id
        LIMIT c.cap
    ) h
    WHERE ep.status = 'enabled' AND h.rank <= c.cap - coalesce(b.in_flight, 0)
    -- A free slot goes to the endpoint with the fewest deliveries in flight: a delivery's
    -- place is its rank among its endpoint's due ones after those already in flight.
    ORDER BY h.rank + coalesce(b.in_flight, 0), h.next_attempt_at
    LIMIT $1
), due AS (
    SELECT d.id FROM webhook_deliveries d
    WHERE d.id IN (SELECT id FROM heads) AND d.status = 'pending' AND d.next_attempt_at <= now()
    FOR UPDATE OF d SKIP LOCKED
), claimed AS (
    UPDATE webhook_deliveries d
    SET next_attempt_at = now() + make_interval(secs => $2), attempts = d.attempts + 1
    FROM due, webhook_endpoints ep, events e
    WHERE d.id = due.id AND ep.id = d.endpoint_id AND e.id = d.event_id
    RETURNING d.id, d.attempts, ep.id AS endpoint_id, ep.url, ep.secret, ep.previous_secret,
              ep.previous_secret_expires_at > now() AS previous_secret_valid, ep.channel_id,
              e.id AS event_id, e.type, e.created_at, e.sequence, {event_data_sql("e")} AS data,
              now() AS now
)
SELECT claimed.*, chosen.candidates
FROM (SELECT count(*) AS candidates FROM heads) chosen LEFT JOIN claimed ON true
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
    seconds = value.strip()
    # ASCII digits only: `str.isdigit()` also takes `²`, which `float()` refuses.
    if seconds.isascii() and seconds.isdigit():
        return float(seconds)
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
        self._per_endpoint: collections.Counter[str] = collections.Counter()
        self._fast_until: dict[str, float] = {}  # endpoint id -> time.monotonic()
        self._latency_ms: dict[str, float] = {}  # endpoint id -> moving average
        self._sent_at: dict[str, list[float]] = collections.defaultdict(list)  # in flight
        self._http: httpx.AsyncClient | None = None

    async def run(self) -> None:
        """Until cancelled."""
        listener = asyncio.create_task(self._listen(), name="oms-webhook-listen")
        self._http = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout, follow_redirects=False, trust_env=False
        )
        failures = PassFailures(log, "claiming webhook deliveries")
        try:
            while True:
                capacity = self.settings.webhook_concurrency - len(self._in_flight)
                claimed = skipped = 0
                if capacity > 0:
                    try:
                        claimed, skipped = await self._claim_and_send(capacity)
                    except Exception:
                        failures.failed()
                    else:
                        failures.succeeded()
                if claimed and claimed == capacity:
                    await asyncio.sleep(0)  # more may be due: claim again at once
                    continue
                if skipped:  # another dispatcher was claiming them: others may be due
                    await asyncio.sleep(0.05)
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

    async def _claim(self, limit: int) -> tuple[list[Any], int]:
        """(claimed rows, how many chosen ones another dispatcher had locked)."""
        lease = self.settings.webhook_timeout + LEASE_MARGIN_S
        busy = list(self._per_endpoint.items())
        async with self.database.transaction() as conn:
            result = await conn.fetch(
                CLAIM_SQL, limit, lease, [b[0] for b in busy], [b[1] for b in busy],
                self.settings.webhook_endpoint_concurrency, self._fast_endpoints(),
                self.settings.webhook_concurrency,
            )  # fmt: skip
        rows = [row for row in result if row["id"] is not None]
        return rows, result[0]["candidates"] - len(rows)

    def _fast_endpoints(self) -> list[str]:
        now = time.monotonic()
        for endpoint_id in [e for e, until in self._fast_until.items() if until <= now]:
            del self._fast_until[endpoint_id]
            self._latency_ms.pop(endpoint_id, None)
        waiting_since = now - HANGING_MS / 1000
        return [
            endpoint_id
            for endpoint_id, until in self._fast_until.items()
            if until > now and min(self._sent_at.get(endpoint_id) or [now]) > waiting_since
        ]

    async def _claim_and_send(self, limit: int) -> tuple[int, int]:
        """(deliveries claimed and sent off, chosen ones skipped as locked)."""
        # Shielded: a shutdown may interrupt an HTTP call, never a transaction (a cancelled
        # await inside one can hand a pooled connection back mid-transaction).
        rows, skipped = await asyncio.shield(self._claim(limit))
        for row in rows:
            endpoint_id = row["endpoint_id"]
            self._per_endpoint[endpoint_id] += 1
            sent_at = time.monotonic()
            self._sent_at[endpoint_id].append(sent_at)
            task = asyncio.create_task(self._deliver(row))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(functools.partial(self._done, endpoint_id, sent_at))
        return len(rows), skipped

    def _done(self, endpoint_id: str, sent_at: float, _: object) -> None:
        self._per_endpoint[endpoint_id] -= 1
        if self._per_endpoint[endpoint_id] <= 0:
            del self._per_endpoint[endpoint_id]
        self._sent_at[endpoint_id].remove(sent_at)
        if not self._sent_at[endpoint_id]:
            del self._sent_at[endpoint_id]

    async def _deliver(self, row: Any) -> None:
        try:
            outcome = await self._send(row)
        except Exception as exc:  # a bug must not lose the delivery: the lease brings it back
            log.exception("sending webhook delivery %s failed unexpectedly", row["id"])
            outcome = Outcome(None, 0, f"internal error: {type(exc).__name__}", None, None)
        self._judge_speed(row["endpoint_id"], outcome)
        try:
            await asyncio.shield(self._record(row, outcome))
        except Exception:
            log.exception("recording webhook delivery %s failed; it will be retried", row["id"])

    def _judge_speed(self, endpoint_id: str, outcome: Outcome) -> None:
        """Whether the endpoint is fast, after this attempt (FAST_RESPONSE_MS above)."""
        if outcome.status_code is None:  # no answer: a timeout, a failed connection
            self._fast_until.pop(endpoint_id, None)
            self._latency_ms.pop(endpoint_id, None)
            return
        before = self._latency_ms.get(endpoint_id, float(outcome.latency_ms))
        average = before + LATENCY_WEIGHT * (outcome.latency_ms - before)
        self._latency_ms[endpoint_id] = average
        if average < FAST_RESPONSE_MS:
            self._fast_until[endpoint_id] = time.monotonic() + FAST_FOR_S
        else:
            self._fast_until.pop(endpoint_id, None)

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
                await conn.execute(  # also one dropped meanwhile: it was delivered
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
        """Failed, or pending again after `delay` seconds; one dropped meanwhile (its
        endpoint deleted during the attempt) stays dropped."""
        retry_at = await conn.fetchval(
            """UPDATE webhook_deliveries
               SET status = CASE WHEN $2::float8 IS NULL THEN 'failed' ELSE 'pending' END,
                   next_attempt_at = CASE WHEN $2::float8 IS NULL THEN next_attempt_at
                                          ELSE now() + make_interval(secs => $2::float8) END,
                   last_status_code = $3, last_latency_ms = $4, last_error = $5
               WHERE id = $1 AND status = 'pending'
               RETURNING CASE WHEN status = 'pending' THEN next_attempt_at END""",
            row["id"], delay, outcome.status_code, outcome.latency_ms, outcome.error,
        )  # fmt: skip
        if retry_at is not None and row["sequence"] is not None:
            # The order's later deliveries to this endpoint cannot go before this one: due
            # no sooner, so the claim does not walk past them while it waits (a manual retry
            # of this one brings them forward again: services.webhooks.retry_delivery).
            await postpone_later(conn, row["endpoint_id"], row["event_id"], retry_at)


async def disable_endpoint(conn: asyncpg.Connection, endpoint_id: str, reason: str) -> bool:
    """Disable (never delete) the endpoint, drop its pending deliveries and record
    `webhook_endpoint.disabled`."""
    row = await conn.fetchrow(
        """UPDATE webhook_endpoints SET status = 'disabled', disabled_at = now(), disabled_reason = $2
           WHERE id = $1 AND status = 'enabled'
           RETURNING id, url, description, events, channel_id, status, disabled_reason,
                     disabled_at, failing_since, created_at""",
        endpoint_id, reason,
    )  # fmt: skip
    if row is None:
        return False
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    await drop_pending(conn, endpoint_id)
    # The endpoint as GET /v1/webhook-endpoints/{id} returns it (WebhookEndpointPublic).
    data = {key: iso(value) if isinstance(value, datetime) else value
            for key, value in row.items()}  # fmt: skip
    await record_events(
        conn, [WEBHOOK_ENDPOINT_DISABLED], order_id=None, data=data, channel_id=row["channel_id"]
    )
    return True


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
