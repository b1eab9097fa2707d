"""Customer notifications: each channel's settings, deriving notifications from committed
events, reading and resending them (SPEC §4 Notifications; docs/notifications.md).

Deriving reads the outbox (`events`) in commit order — by (txid, position), only events of
transactions older than every one still running, as the event feed does — from a cursor
kept in `notification_cursor`, and writes each event's notification in the transaction
that advances the cursor. So nothing is lost (an event committed is derived once the
notifier gets to it, whatever crashed meanwhile), nothing is sent for a rolled-back change
(its events never commit), and placement pays nothing: no trigger, no extra row.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from oms_api.domain.access import Principal
from oms_api.domain.notifications import (
    DEFAULT,
    NOTIFYING_EVENTS,
    ChannelNotifications,
    Kind,
    Status,
    notification_for,
    ordered_kinds,
)
from oms_api.errors import Conflict, NotFound, Unprocessable
from oms_api.ids import new_id, new_ids
from oms_api.jsonutil import dumps, iso
from oms_api.models import Notification
from oms_api.notifications.mail import sender
from oms_api.notifications.render import TemplateProblem, check_overrides, render
from oms_api.notifications.samples import sample_context
from oms_api.outbox import event_data_sql
from oms_api.services.event_feed import HORIZON_CTE, PAST_CURSOR, cursor_statements
from oms_api.services.order_documents import load_order
from oms_api.services.pagination import Page, paginate
from oms_api.services.paperwork import location_of
from oms_api.services.scoping import ensure_visible, scope_to_channel

log = logging.getLogger("oms_api.notifications")
CURSOR = "notifications"

# --- a channel's settings ----------------------------------------------------------------

SETTINGS_SQL = """
SELECT c.id, c.code, c.name, s.enabled, s.from_name, s.from_email, s.reply_to, s.kinds,
       s.follow_up_days, s.templates, s.version, s.updated_at
FROM channels c LEFT JOIN channel_notification_settings s ON s.channel_id = c.id
WHERE c.id = $1
"""

UPSERT_SETTINGS_SQL = """
INSERT INTO channel_notification_settings AS s
    (channel_id, enabled, from_name, from_email, reply_to, kinds, follow_up_days, templates)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
ON CONFLICT (channel_id) DO UPDATE SET
    enabled = excluded.enabled, from_name = excluded.from_name,
    from_email = excluded.from_email, reply_to = excluded.reply_to, kinds = excluded.kinds,
    follow_up_days = excluded.follow_up_days, templates = excluded.templates,
    version = s.version + 1, updated_at = now()
"""


def _channel_settings(row: Mapping[str, Any]) -> ChannelNotifications:
    if row["enabled"] is None:  # no row of its own: the defaults
        return DEFAULT
    return ChannelNotifications(
        enabled=row["enabled"], from_name=row["from_name"], from_email=row["from_email"],
        reply_to=row["reply_to"], kinds=ordered_kinds(row["kinds"]),
        follow_up_days=row["follow_up_days"], templates=row["templates"] or {},
    )  # fmt: skip


def _settings_document(row: Mapping[str, Any]) -> dict[str, Any]:
    settings = _channel_settings(row)
    return {
        "channel_id": row["id"],
        "enabled": settings.enabled,
        "from": None
        if settings.from_email is None
        else {"name": settings.from_name, "email": settings.from_email},
        "reply_to": settings.reply_to,
        "kinds": [k.value for k in settings.kinds],
        "follow_up_days": settings.follow_up_days,
        "templates": dict(settings.templates),
        "version": row["version"] or 0,
        "updated_at": iso(row["updated_at"]),
    }


async def _settings_row(conn: asyncpg.Connection, channel_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(SETTINGS_SQL, channel_id)
    if row is None:
        raise NotFound(f"No channel with id {channel_id}.")
    return row


async def get_channel_settings(
    conn: asyncpg.Connection, *, principal: Principal, channel_id: str
) -> dict[str, Any]:
    """A channel's notification settings (the defaults until it sets its own); a channel
    key sees only its own channel's (another's: 404, as the channel itself)."""
    ensure_visible(principal, channel_id, what="channel", ident=channel_id)
    return _settings_document(await _settings_row(conn, channel_id))


async def put_channel_settings(
    conn: asyncpg.Connection, *, channel_id: str, enabled: bool, from_name: str | None,
    from_email: str | None, reply_to: str | None, kinds: list[str], follow_up_days: int,
    templates: dict[str, dict[str, str]],
) -> dict[str, Any]:  # fmt: skip
    """Replace the channel's settings. Each template override is rendered with a sample
    order first: one that fails is 422 `invalid_template`, naming the kind and part."""
    row = await _settings_row(conn, channel_id)
    problems = check_overrides(templates, lambda kind: sample_context(kind, row["name"]))
    if problems:
        raise Unprocessable(
            "A template does not render: " + "; ".join(str(p) for p in problems),
            code="invalid_template",
            errors=[
                {"loc": ["body", "templates", *p.part.split(".")], "msg": p.message}
                for p in problems
            ],
        )
    kept = {k: {p: s for p, s in parts.items() if s} for k, parts in templates.items()}
    await conn.execute(
        UPSERT_SETTINGS_SQL, channel_id, enabled, from_name, from_email, reply_to,
        [k.value for k in ordered_kinds(kinds)], follow_up_days,
        dumps({k: v for k, v in kept.items() if v}).decode(),
    )  # fmt: skip
    return _settings_document(await _settings_row(conn, channel_id))


# --- deriving notifications from committed events ----------------------------------------

LOCK_CURSOR_SQL, ADVANCE_CURSOR_SQL = cursor_statements("notification_cursor")
# The events after the cursor, in commit order, of transactions older than any still
# running that may write events (a later commit always sorts after them: the event feed's
# horizon, `event_feed.HORIZON_CTE`); the data only of those that notify.
SCAN_SQL = f"""
WITH {HORIZON_CTE}
SELECT e.txid, e.position, e.id, e.type, e.order_id, e.channel_id, e.created_at,
       CASE WHEN e.type = ANY($3::text[]) THEN {event_data_sql("e")} END AS data
FROM events e, horizon
WHERE {PAST_CURSOR}
ORDER BY e.txid, e.position
LIMIT $4
"""
# The customer's preference, and each channel's profile of them (the email as that channel
# spelt it, the name it gave): a notification is addressed and greets as the order's
# channel knows the customer. The business's record (the email as first spelt, by whichever
# channel or admin, and the admin's name) is the admin's to read, never a channel's.
_CUSTOMER_COLUMNS = """
SELECT c.id, c.accepts_follow_up,
       (SELECT jsonb_object_agg(p.channel_id, jsonb_build_object('email', p.email, 'name', p.name))
        FROM customer_profiles p WHERE p.customer_id = c.id) AS profiles
FROM customers c"""
CUSTOMER_SQL = _CUSTOMER_COLUMNS + " WHERE c.id = $1"
CUSTOMERS_SQL = _CUSTOMER_COLUMNS + " WHERE c.id = ANY($1::text[])"
# An exchange's order as its email tells it: its number, and what is left to pay once the
# exchange credit (and any later capture) is taken off its total.
EXCHANGE_ORDER_SQL = """
SELECT number, total, greatest(total - captured, 0) AS balance_due FROM orders WHERE id = $1
"""
INSERT_SQL = """
INSERT INTO notifications (id, channel_id, order_id, customer_id, kind, event_id, shipment_id,
    return_id, to_email, from_address, reply_to, subject, text_body, html_body, headers,
    status, last_error, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17, $18)
ON CONFLICT (event_id, kind) DO NOTHING
"""


@dataclass(frozen=True, slots=True)
class _Channel:
    id: str
    code: str
    name: str
    settings: ChannelNotifications


async def derive_notifications(
    conn: asyncpg.Connection, *, default_from: str, limit: int = 500, careful: bool = False
) -> int:
    """One step of the cursor through the outbox, in the caller's transaction: the
    notifications of up to `limit` committed events written, the cursor moved past them.
    The number of events read (`limit`: there may be more); 0 if another notifier holds the
    cursor (it derives meanwhile).

    An event that cannot be told (a bug, data no template expects) must not stop the cursor
    for every later one. The notifier first derives a batch whole (the rows written by one
    statement); if that raises, it rolls back and derives the batch again `careful`ly:
    each event in a savepoint, one that fails logged and passed."""
    cursor = await conn.fetchrow(LOCK_CURSOR_SQL, CURSOR)
    if cursor is None:
        return 0
    events = await conn.fetch(
        SCAN_SQL, cursor["txid"], cursor["position"], list(NOTIFYING_EVENTS), limit
    )
    if not events:
        return 0
    told = [e for e in events if e["data"] is not None and e["order_id"] is not None]
    known = {e["data"].get("customer_id") for e in told if e["type"].startswith("order.")}
    customers = {
        r["id"]: r for r in await conn.fetch(CUSTOMERS_SQL, [c for c in known if c])
    } if known - {None} else {}  # fmt: skip
    channels: dict[str, _Channel] = {}
    rows: list[tuple[Any, ...]] = []
    for event in told:
        if not careful:
            row = await _derive_one(conn, event, channels, customers, default_from)
            rows += [row] if row else []
            continue
        await conn.execute("SAVEPOINT notification")
        try:
            row = await _derive_one(conn, event, channels, customers, default_from)
            if row:
                await conn.execute(INSERT_SQL, new_id("ntf"), *row)
        except (asyncpg.PostgresError, KeyError, TypeError, ValueError, TemplateProblem):
            log.exception("event %s (%s) could not be told; passed", event["id"], event["type"])
            await conn.execute("ROLLBACK TO SAVEPOINT notification")
        await conn.execute("RELEASE SAVEPOINT notification")
    if rows:  # ids in the events' order: an order's notifications list as they happened
        ids = new_ids("ntf", len(rows))
        await conn.executemany(INSERT_SQL, [(i, *row) for i, row in zip(ids, rows, strict=True)])
    written = len(rows)
    last = events[-1]
    await conn.execute(ADVANCE_CURSOR_SQL, CURSOR, last["txid"], last["position"])
    log.debug("%d event(s) read, %d notification(s) written", len(events), written)
    return len(events)


async def _channel(conn: asyncpg.Connection, ident: str, cache: dict[str, _Channel]) -> _Channel:
    """The event's own channel (read once per pass)."""
    if ident not in cache:
        row = await _settings_row(conn, ident)
        cache[ident] = _Channel(row["id"], row["code"], row["name"], _channel_settings(row))
    return cache[ident]


def _as_channel_knows(customer: asyncpg.Record | None, order: Mapping[str, Any]) -> dict[str, Any]:
    """The customer as the order's channel knows them: its profile's email and name, else
    the order's own email and its shipping address's name — nothing another channel or an
    admin recorded (every order's (customer, channel) has a profile)."""
    profiles = (customer["profiles"] if customer else None) or {}
    if isinstance(profiles, str):
        profiles = json.loads(profiles)
    profile = profiles.get(order.get("channel_id")) or {}
    shipping_name = (order.get("shipping_address") or {}).get("name")
    return {
        "id": order["customer_id"],
        "name": profile.get("name") or shipping_name,
        "email": profile.get("email") or order.get("email"),
    }


async def _derive_one(
    conn: asyncpg.Connection, event: asyncpg.Record, channels: dict[str, _Channel],
    customers: Mapping[str, asyncpg.Record], default_from: str,
) -> tuple[Any, ...] | None:  # fmt: skip
    """The event's notification as INSERT_SQL's arguments but the id; None if it tells
    nobody."""
    channel = await _channel(conn, event["channel_id"], channels)
    data: dict[str, Any] = event["data"]
    is_order_event = event["type"].startswith("order.")
    order = data if is_order_event else await load_order(conn, event["order_id"], channel_id=None)
    customer = customers.get(order["customer_id"])
    if customer is None and order["customer_id"] is not None:
        customer = await conn.fetchrow(CUSTOMER_SQL, order["customer_id"])
    planned = notification_for(
        event["type"], event["created_at"], channel.settings,
        accepts_follow_up=customer is None or customer["accepts_follow_up"],
    )  # fmt: skip
    if planned is None:
        return None
    who = _as_channel_knows(customer, order)
    context: dict[str, Any] = {
        "channel": {"id": channel.id, "code": channel.code, "name": channel.name},
        "customer": who,
        "order": order,
    }
    shipment_id = return_id = None
    if event["type"].startswith("shipment."):
        context["shipment"], shipment_id = data, data["id"]
    if event["type"].startswith("return."):
        context["rma"], return_id = data, data["id"]
        context["return_address"] = await _return_address(conn, data.get("location_id"))
        exchange = None
        if data.get("exchange_order_id"):
            exchange = await conn.fetchrow(EXCHANGE_ORDER_SQL, data["exchange_order_id"])
        context["exchange_order"] = None if exchange is None else dict(exchange)
    settings = channel.settings
    from_address = sender(settings.from_name or channel.name, settings.from_email or default_from)
    status, error = Status.PENDING, None
    try:
        rendered = render(planned.kind, context, settings.templates.get(planned.kind.value))
    except TemplateProblem as problem:  # a saved override is checked; data may still break it
        log.warning("channel %s's template failed (%s); using the default", channel.id, problem)
        rendered = render(planned.kind, context)
    headers: dict[str, str] = {}
    if planned.kind is Kind.FOLLOW_UP:
        unsubscribe_to = settings.reply_to or settings.from_email or default_from
        subject = quote(f"unsubscribe {order['customer_id'] or order['email']}")
        headers["List-Unsubscribe"] = f"<mailto:{unsubscribe_to}?subject={subject}>"
    if not who["email"]:
        status, error = Status.SKIPPED, "the order has no customer email"
    return (
        channel.id, order["id"], order["customer_id"],
        planned.kind.value, event["id"], shipment_id, return_id, who["email"], from_address,
        settings.reply_to, rendered.subject, rendered.text, rendered.html,
        dumps(headers).decode(), status.value, error, planned.due_at,
    )  # fmt: skip


async def _return_address(conn: asyncpg.Connection, location_id: str | None) -> dict[str, Any]:
    if location_id is None:
        return {}
    location = await location_of(conn, location_id)
    return {**(location["address"] or {}), "name": location["name"]}


# --- reading and resending ------------------------------------------------------------------

NOTIFICATION_FIELDS = (
    "id", "channel_id", "order_id", "customer_id", "kind", "event_id", "resend_of",
    "shipment_id", "return_id", "status", "attempts", "last_error", "subject",
)  # fmt: skip


def notification_document(n: Notification, *, bodies: bool) -> dict[str, Any]:
    document: dict[str, Any] = {f: getattr(n, f) for f in NOTIFICATION_FIELDS}
    document |= {
        "to": n.to_email,
        "from": n.from_address,
        "reply_to": n.reply_to,
        "headers": n.headers,
        "due_at": n.next_attempt_at if n.status == Status.PENDING else None,
        "sent_at": n.sent_at,
        "created_at": n.created_at,
        "updated_at": n.updated_at,
    }
    if bodies:
        document |= {"text": n.text_body, "html": n.html_body}
    return document


async def list_notifications(
    session: AsyncSession, *, principal: Principal, order_id: str | None, status: str | None,
    kind: str | None, limit: int, cursor: str | None,
) -> Page[dict[str, Any]]:  # fmt: skip
    """Newest first; a channel key sees only its channel's."""
    stmt = scope_to_channel(select(Notification), principal, Notification.channel_id)
    if order_id is not None:
        stmt = stmt.where(Notification.order_id == order_id)
    if status is not None:
        stmt = stmt.where(Notification.status == status)
    if kind is not None:
        stmt = stmt.where(Notification.kind == kind)
    page = await paginate(session, stmt, keys=[Notification.id], limit=limit, cursor=cursor)
    return Page([notification_document(n, bodies=False) for n in page.items], page.next_cursor)


async def _fenced(
    session: AsyncSession, principal: Principal, notification_id: str
) -> Notification:
    stmt = scope_to_channel(
        select(Notification).where(Notification.id == notification_id),
        principal, Notification.channel_id,
    )  # fmt: skip
    found = await session.scalar(stmt)
    if found is None:
        raise NotFound(f"No notification with id {notification_id}.")
    return found


async def get_notification(
    session: AsyncSession, *, principal: Principal, notification_id: str
) -> dict[str, Any]:
    return notification_document(await _fenced(session, principal, notification_id), bodies=True)


async def resend_notification(
    session: AsyncSession, *, principal: Principal, notification_id: str
) -> dict[str, Any]:
    """A new notification with the same message (its own id and so its own Message-ID: a
    mail program that kept the first does not drop the second as a duplicate), pending now."""
    original = await _fenced(session, principal, notification_id)
    if original.status == Status.PENDING.value:  # it has not gone yet: it will, once
        raise Conflict(
            f"Notification {notification_id} has not been sent yet (it is pending): it goes "
            "out as it is due; resend it once it is sent, failed or skipped.",
            code="notification_pending",
        )
    copy = Notification(
        id=new_id("ntf"), channel_id=original.channel_id, order_id=original.order_id,
        customer_id=original.customer_id, kind=original.kind, event_id=None,
        resend_of=original.id, shipment_id=original.shipment_id, return_id=original.return_id,
        to_email=original.to_email, from_address=original.from_address,
        reply_to=original.reply_to, subject=original.subject, text_body=original.text_body,
        html_body=original.html_body, headers=original.headers,
        status=Status.SKIPPED.value if not original.to_email else Status.PENDING.value,
        last_error=None if original.to_email else "the order has no customer email",
        attempts=0, next_attempt_at=datetime.now().astimezone(),
    )  # fmt: skip
    session.add(copy)
    await session.flush()
    await session.refresh(copy)
    return notification_document(copy, bodies=True)
