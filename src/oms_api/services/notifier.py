"""The notifier: runs beside the webhook dispatcher in every `oms-api serve` process and in
`oms-api worker`, and sends customers their emails.

Each pass, in its own short transactions:
1. derives notifications from committed events (`notifications.derive_notifications`; one
   notifier at a time holds the cursor, the others skip);
2. claims due notifications with `FOR UPDATE SKIP LOCKED`, leasing each (its
   `next_attempt_at` moved past the attempt's time), and sends them with no transaction
   open: a notifier killed mid-send leaves the lease to run out, and the message goes
   again (at-least-once, with the same `Message-ID`);
3. records the outcomes, a batch in one transaction: sent; a connection error or a 4xx reply retried after
   `OMS_NOTIFICATION_RETRY_DELAYS` (then failed); a 5xx reply failed at once.
With no `OMS_SMTP_URL`, due notifications are recorded `skipped` (their rendered text kept).
It never touches a webhook delivery or an order: a dead mail server holds up nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter

from oms_api.db import Database, PassFailures
from oms_api.domain.notifications import Kind, Status
from oms_api.notifications.mail import (
    Attachment,
    Outgoing,
    SendFailure,
    Transport,
    build_message,
)
from oms_api.notifications.render import TemplateProblem
from oms_api.paper import return_slip
from oms_api.services.notifications import derive_notifications
from oms_api.services.paperwork import location_of
from oms_api.services.returns import load_return
from oms_api.settings import Settings

log = logging.getLogger("oms_api.notifications")
NOTIFICATIONS = Counter(
    "oms_notifications_total",
    "Customer notifications by outcome (sent, failed, skipped, retrying), this process.",
    ["outcome"],
)
LEASE_MARGIN_S = 5
BATCH = 20
EVENTS_PER_PASS = 500

CLAIM_SQL = """
WITH due AS (
    SELECT id FROM notifications
    WHERE status = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notifications n
SET next_attempt_at = $1 + make_interval(secs => $3), attempts = n.attempts + 1,
    updated_at = now()
FROM due
WHERE n.id = due.id
RETURNING n.*, (SELECT c.accepts_follow_up FROM customers c WHERE c.id = n.customer_id)
          AS accepts_follow_up
"""
SKIP_DUE_SQL = """
WITH due AS (
    SELECT id FROM notifications
    WHERE status = 'pending' AND next_attempt_at <= $1
    ORDER BY next_attempt_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE notifications n SET status = 'skipped', last_error = $3, updated_at = now()
FROM due WHERE n.id = due.id
RETURNING n.id
"""
RECORD_SQL = """
UPDATE notifications
SET status = $2, last_error = $3, sent_at = $4,
    next_attempt_at = coalesce($5, next_attempt_at), updated_at = now()
WHERE id = $1 AND status = 'pending'
"""
# Waiting to go out: due now, or tried and waiting for a retry (a mail server that is down
# shows here at once). Its age counts from when it first fell due: its creation — for a
# follow-up, made at delivery for later, its due time while untried.
OLDEST_SQL = """
SELECT count(*) AS due,
       greatest(coalesce(extract(epoch FROM now() - min(
           CASE WHEN kind = 'follow_up' AND attempts = 0 THEN next_attempt_at
                ELSE created_at END)), 0), 0)::float8 AS oldest
FROM notifications
WHERE status = 'pending' AND (next_attempt_at <= now() OR attempts > 0)
"""
NO_SMTP = "OMS_SMTP_URL is not set: recorded, not sent"
# (id, status, last_error, sent_at, next_attempt_at): RECORD_SQL's arguments
Outcome = tuple[str, str, str | None, datetime | None, datetime | None]


async def pending_stats(conn: asyncpg.Connection) -> tuple[int, float]:
    """Notifications due, or tried and waiting for a retry, and the age in seconds of the
    oldest (0: none)."""
    row = await conn.fetchrow(OLDEST_SQL)
    return (0, 0.0) if row is None else (int(row["due"]), float(row["oldest"]))


def _now() -> datetime:
    return datetime.now(UTC)


class Notifier:
    def __init__(
        self, *, settings: Settings, database: Database,
        clock: Callable[[], datetime] = _now,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.database = database
        self.clock = clock  # settable: tests move time on to a follow-up's day
        self.transport = Transport.from_url(settings.smtp_url) if settings.smtp_url else None

    @property
    def lease_seconds(self) -> float:
        return 2 * self.settings.smtp_timeout + LEASE_MARGIN_S

    async def run(self) -> None:
        """Until cancelled."""
        where = self.transport.description if self.transport else "nowhere (skipped)"
        log.info("notifier started: customer emails go to %s", where)
        failures = PassFailures(log, "a notifier pass")
        while True:
            busy = False
            try:
                busy = await self.run_once()
            except Exception:
                failures.failed()
            else:
                failures.succeeded()
            if not busy:
                await asyncio.sleep(self.settings.notification_poll_interval)

    async def run_once(self) -> bool:
        """One pass: derive, then send what is due. True if there may be more to do now."""
        read = await asyncio.shield(self.derive())
        handled = await self.send_due()
        return read >= EVENTS_PER_PASS or handled >= BATCH

    async def derive(self) -> int:
        """Events read (up to EVENTS_PER_PASS), their notifications written."""
        try:
            async with self.database.transaction() as conn:
                return await derive_notifications(
                    conn, default_from=self.settings.smtp_from, limit=EVENTS_PER_PASS
                )
        except (asyncpg.PostgresError, KeyError, TypeError, ValueError, TemplateProblem):
            log.warning("deriving a batch of notifications failed; again, event by event")
        async with self.database.transaction() as conn:
            return await derive_notifications(
                conn, default_from=self.settings.smtp_from, limit=EVENTS_PER_PASS, careful=True
            )

    async def send_due(self) -> int:
        """Claim and send what is due now; the number handled."""
        now = self.clock()
        if self.transport is None:
            async with self.database.transaction() as conn:
                rows = await conn.fetch(SKIP_DUE_SQL, now, BATCH, NO_SMTP)
            NOTIFICATIONS.labels("skipped").inc(len(rows))
            return len(rows)
        async with self.database.transaction() as conn:
            claimed = list(await conn.fetch(CLAIM_SQL, now, BATCH, self.lease_seconds))
        outcomes = await asyncio.gather(*(self._deliver(row) for row in claimed))
        try:  # shielded: a shutdown must not cancel a transaction half-way
            await asyncio.shield(self._record(outcomes))
        except Exception:
            log.exception("recording %d notification(s) failed; their lease brings them back",
                          len(outcomes))  # fmt: skip
        return len(claimed)

    async def _deliver(self, row: Any) -> Outcome:
        if row["kind"] == Kind.FOLLOW_UP and row["accepts_follow_up"] is False:
            return self._outcome(row, Status.SKIPPED, "the customer takes no follow-ups")
        try:
            outgoing = await self._outgoing(row)
            message = build_message(outgoing)
            if self.transport is None:
                raise RuntimeError("no transport")
            async with asyncio.timeout(2 * self.settings.smtp_timeout):
                await self.transport.send(message, seconds=self.settings.smtp_timeout)
        except SendFailure as failure:
            return self._failed(row, str(failure), permanent=failure.permanent)
        except TimeoutError:
            return self._failed(row, "timed out", permanent=False)
        except Exception as exc:  # a bug must not lose it: retried like a connection error
            log.exception("sending notification %s failed unexpectedly", row["id"])
            return self._failed(row, f"internal error: {type(exc).__name__}", permanent=False)
        return self._outcome(row, Status.SENT, None, sent_at=self.clock())

    async def _outgoing(self, row: Any) -> Outgoing:
        attachments: list[Attachment] = []
        if row["kind"] == Kind.RETURN_APPROVED and row["return_id"]:
            attachments = await self._return_slip(row["return_id"])
        return Outgoing(
            id=row["id"], from_address=row["from_address"], to=row["to_email"],
            reply_to=row["reply_to"], subject=row["subject"], text=row["text_body"],
            html=row["html_body"], headers=row["headers"] or {}, created_at=row["created_at"],
            attachments=attachments,
        )  # fmt: skip

    async def _return_slip(self, return_id: str) -> list[Attachment]:
        async with self.database.transaction() as conn:
            rma = await load_return(conn, return_id, channel_id=None)
            if rma["location_id"] is None:
                return []
            location = await location_of(conn, rma["location_id"])
        pdf = await asyncio.to_thread(return_slip, rma, location, location["address"])
        return [Attachment(f"return-{rma['number']}.pdf", pdf)]

    def _failed(self, row: Any, error: str, *, permanent: bool) -> Outcome:
        delays = self.settings.notification_retry_delays
        if permanent or row["attempts"] > len(delays):
            log.warning("notification %s failed: %s", row["id"], error)
            return self._outcome(row, Status.FAILED, error)
        delay = delays[row["attempts"] - 1] * random.uniform(0.8, 1.2)
        return self._outcome(
            row, Status.PENDING, error, next_attempt_at=self.clock() + timedelta(seconds=delay)
        )

    @staticmethod
    def _outcome(
        row: Any, status: Status, error: str | None, *, sent_at: datetime | None = None,
        next_attempt_at: datetime | None = None,
    ) -> Outcome:  # fmt: skip
        NOTIFICATIONS.labels("retrying" if status is Status.PENDING else status.value).inc()
        return (row["id"], status.value, error, sent_at, next_attempt_at)

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Every outcome of a batch, in one transaction."""
        if not outcomes:
            return
        async with self.database.transaction() as conn:
            await conn.executemany(RECORD_SQL, outcomes)
