"""Fewer WAL records and statements per placement

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02

- `events` is keyed by its public `id` (webhook deliveries reference it); `position`, which
  orders the feed through the (txid, position) indexes and which no query looks up alone,
  loses its own index: one index entry fewer per event.
- `oms_idempotency_claim`, once it holds the key's lock, removes an expired record of the
  key (the purge may not have reached it): `oms_place_order` then records the response with
  a plain INSERT (ON CONFLICT's speculative insert logs two records).
- `oms_place_order` skips the INSERT of an empty list (reservations, payments) and
  `oms_record_events` asks about events without data only when no data is given: each is a
  statement of its own (an executor and its table's checks) for nothing.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The functions' texts as this revision installs them (their source files may move on).
PLACE_ORDER = """
CREATE OR REPLACE FUNCTION oms_place_order(p jsonb, p_document text)
RETURNS TABLE (outcome text, order_id text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    o jsonb := p->'order';
    placed text;
BEGIN
    -- The channel's profile of the customer first: the order references it.
    IF jsonb_typeof(p->'profile') = 'object' THEN
        INSERT INTO customer_profiles AS cp (customer_id, channel_id, email, name, phone,
                                             created_at, updated_at)
        VALUES (o->>'customer_id', o->>'channel_id', p->'profile'->>'email',
                p->'profile'->>'name', p->'profile'->>'phone', now(), now())
        ON CONFLICT (customer_id, channel_id) DO UPDATE
        SET name = coalesce(excluded.name, cp.name), phone = coalesce(excluded.phone, cp.phone),
            updated_at = excluded.updated_at, version = cp.version + 1;
    END IF;
    -- Every column of each row from the plan: the table's row type is the column list,
    -- and the service checks once that the plan's rows have exactly those keys. The row
    -- counts its events already (`event_sequence`). Without an external id nothing can
    -- conflict: a plain insert (ON CONFLICT's speculative insert logs a second record).
    IF o->>'external_id' IS NULL THEN
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        RETURNING id INTO placed;
    ELSE
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        ON CONFLICT (channel_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING id INTO placed;
        IF placed IS NULL THEN
            RETURN QUERY SELECT 'external_id_taken'::text, x.id FROM orders x
                WHERE x.channel_id = o->>'channel_id' AND x.external_id = o->>'external_id';
            RETURN;
        END IF;
    END IF;
    INSERT INTO order_lines
    SELECT * FROM jsonb_populate_recordset(NULL::order_lines, p->'lines');
    -- (An empty list is not a statement: each costs an executor and its table's checks.)
    IF p->'reservations' <> '[]' THEN
        INSERT INTO order_reservations
        SELECT * FROM jsonb_populate_recordset(NULL::order_reservations, p->'reservations');
    END IF;
    IF jsonb_array_length(p->'stock_moves') > 0 THEN
        PERFORM oms_move_stock(p->'stock_moves');
    END IF;
    IF p->'payments' <> '[]' THEN
        INSERT INTO payments
        SELECT * FROM jsonb_populate_recordset(NULL::payments, p->'payments');
    END IF;
    PERFORM oms_record_events(placed, p->'events', p_document::jsonb, o->>'channel_id', true);
    -- The Idempotency-Key's record does not keep a second copy of the document: its
    -- response is the first event's data (`order.created`, the same document). The claim
    -- holds the key's lock and has removed an expired record of it, so nothing can
    -- conflict: a plain INSERT.
    IF jsonb_typeof(p->'idempotency') = 'object' THEN
        INSERT INTO idempotency_records (principal, key, request_hash, response_status,
                                         response_event_id, created_at, expires_at)
        VALUES (p->'idempotency'->>'principal', p->'idempotency'->>'key',
                decode(p->'idempotency'->>'request_hash', 'hex'), 201,
                p->'events'->0->>'id', now(), (p->'idempotency'->>'expires_at')::timestamptz);
    END IF;
    RETURN QUERY SELECT 'placed'::text, placed;
END
$$
"""


RECORD_EVENTS = """
CREATE OR REPLACE FUNCTION oms_record_events(p_order_id text, p_events jsonb, p_data jsonb DEFAULT NULL,
                                  p_channel_id text DEFAULT NULL,
                                  p_numbered boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    how_many integer := jsonb_array_length(p_events);
    last_sequence integer;
    channel text := p_channel_id;
BEGIN
    -- An order's events take the next numbers of its sequence, and its channel.
    IF p_order_id IS NOT NULL AND p_numbered THEN
        last_sequence := how_many;
    ELSIF p_order_id IS NOT NULL THEN
        UPDATE orders SET event_sequence = event_sequence + how_many WHERE id = p_order_id
        RETURNING event_sequence, channel_id INTO last_sequence, channel;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'oms_record_events: no order %', p_order_id;
        END IF;
    END IF;
    -- Every event has data: its own, or `p_data` (a NULL stored below means "as before").
    -- (Asked only without `p_data`: a condition with a sub-query is a statement of its own.)
    IF p_data IS NULL THEN
        IF EXISTS (SELECT FROM jsonb_array_elements(p_events) AS x(event)
                   WHERE coalesce(x.event -> 'data', 'null') = 'null') THEN
            RAISE EXCEPTION 'oms_record_events: an event without data';
        END IF;
    END IF;
    -- An order's events that carry `p_data` store it once: the first of a run of them
    -- keeps it, the next ones store NULL — "the data of the order's nearest earlier event
    -- that has some" (outbox.event_data_sql, how every reader reads it), which is that
    -- first one, since the run's numbers follow each other.
    INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at)
    SELECT e.id, e.type, p_order_id, channel, last_sequence - how_many + e.n::integer,
           CASE WHEN p_order_id IS NOT NULL AND e.data IS NULL AND e.n > 1
                     AND coalesce(p_events -> (e.n::integer - 2) -> 'data', 'null') = 'null'
                THEN NULL
                ELSE coalesce(e.data, p_data) END,
           now()
    FROM ROWS FROM (jsonb_to_recordset(p_events) AS (id text, type text, data jsonb))
         WITH ORDINALITY AS e(id, type, data, n);
END
$$;
"""


IDEMPOTENCY_CLAIM = """
CREATE OR REPLACE FUNCTION oms_idempotency_claim(lock_key text, p_principal text, p_key text)
RETURNS TABLE (got boolean, request_hash bytea, response_status integer, response_body bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- A placement's record keeps no body of its own: its response is an event's data.
    RETURN QUERY
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM idempotency_records r
        LEFT JOIN events e ON e.id = r.response_event_id
        WHERE r.principal = p_principal AND r.key = p_key AND r.expires_at > now();
    IF FOUND THEN
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended(lock_key, 7)) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::integer, NULL::bytea;
        RETURN;
    END IF;
    -- Under the lock, a record of the key that has expired is gone (the purge may not have
    -- reached it yet): whoever records this key's response then simply inserts it.
    RETURN QUERY
        WITH expired AS (
            DELETE FROM idempotency_records x
            WHERE x.principal = p_principal AND x.key = p_key AND x.expires_at <= now()
        )
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM (SELECT 1) AS one
        LEFT JOIN idempotency_records r
          ON r.principal = p_principal AND r.key = p_key AND r.expires_at > now()
        LEFT JOIN events e ON e.id = r.response_event_id;
END
$$;
"""


PLACE_ORDER_BEFORE = """
CREATE OR REPLACE FUNCTION oms_place_order(p jsonb, p_document text)
RETURNS TABLE (outcome text, order_id text)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    o jsonb := p->'order';
    placed text;
    recorded integer;
BEGIN
    -- The channel's profile of the customer first: the order references it.
    IF jsonb_typeof(p->'profile') = 'object' THEN
        INSERT INTO customer_profiles AS cp (customer_id, channel_id, email, name, phone,
                                             created_at, updated_at)
        VALUES (o->>'customer_id', o->>'channel_id', p->'profile'->>'email',
                p->'profile'->>'name', p->'profile'->>'phone', now(), now())
        ON CONFLICT (customer_id, channel_id) DO UPDATE
        SET name = coalesce(excluded.name, cp.name), phone = coalesce(excluded.phone, cp.phone),
            updated_at = excluded.updated_at, version = cp.version + 1;
    END IF;
    -- Every column of each row from the plan: the table's row type is the column list,
    -- and the service checks once that the plan's rows have exactly those keys. The row
    -- counts its events already (`event_sequence`). Without an external id nothing can
    -- conflict: a plain insert (ON CONFLICT's speculative insert logs a second record).
    IF o->>'external_id' IS NULL THEN
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        RETURNING id INTO placed;
    ELSE
        INSERT INTO orders
        SELECT * FROM jsonb_populate_record(NULL::orders, o)
        ON CONFLICT (channel_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
        RETURNING id INTO placed;
        IF placed IS NULL THEN
            RETURN QUERY SELECT 'external_id_taken'::text, x.id FROM orders x
                WHERE x.channel_id = o->>'channel_id' AND x.external_id = o->>'external_id';
            RETURN;
        END IF;
    END IF;
    INSERT INTO order_lines
    SELECT * FROM jsonb_populate_recordset(NULL::order_lines, p->'lines');
    INSERT INTO order_reservations
    SELECT * FROM jsonb_populate_recordset(NULL::order_reservations, p->'reservations');
    IF jsonb_array_length(p->'stock_moves') > 0 THEN
        PERFORM oms_move_stock(p->'stock_moves');
    END IF;
    INSERT INTO payments
    SELECT * FROM jsonb_populate_recordset(NULL::payments, p->'payments');
    PERFORM oms_record_events(placed, p->'events', p_document::jsonb, o->>'channel_id', true);
    -- The Idempotency-Key's record does not keep a second copy of the document: its
    -- response is the first event's data (`order.created`, the same document).
    IF jsonb_typeof(p->'idempotency') = 'object' THEN
        INSERT INTO idempotency_records AS r (principal, key, request_hash, response_status,
                                              response_event_id, created_at, expires_at)
        VALUES (p->'idempotency'->>'principal', p->'idempotency'->>'key',
                decode(p->'idempotency'->>'request_hash', 'hex'), 201,
                p->'events'->0->>'id', now(), (p->'idempotency'->>'expires_at')::timestamptz)
        ON CONFLICT (principal, key) DO UPDATE
        SET request_hash = excluded.request_hash, response_status = excluded.response_status,
            response_body = NULL, response_event_id = excluded.response_event_id,
            created_at = excluded.created_at, expires_at = excluded.expires_at
        WHERE r.expires_at <= now()
        RETURNING 1 INTO recorded;
        IF recorded IS NULL THEN
            RETURN QUERY SELECT 'idempotency_key_taken'::text, placed;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT 'placed'::text, placed;
END
$$
"""


RECORD_EVENTS_BEFORE = """
CREATE OR REPLACE FUNCTION oms_record_events(p_order_id text, p_events jsonb, p_data jsonb DEFAULT NULL,
                                  p_channel_id text DEFAULT NULL,
                                  p_numbered boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    how_many integer := jsonb_array_length(p_events);
    last_sequence integer;
    channel text := p_channel_id;
BEGIN
    -- An order's events take the next numbers of its sequence, and its channel.
    IF p_order_id IS NOT NULL AND p_numbered THEN
        last_sequence := how_many;
    ELSIF p_order_id IS NOT NULL THEN
        UPDATE orders SET event_sequence = event_sequence + how_many WHERE id = p_order_id
        RETURNING event_sequence, channel_id INTO last_sequence, channel;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'oms_record_events: no order %', p_order_id;
        END IF;
    END IF;
    -- Every event has data: its own, or `p_data` (a NULL stored below means "as before").
    IF p_data IS NULL AND EXISTS (
        SELECT FROM jsonb_array_elements(p_events) AS x(event)
        WHERE coalesce(x.event -> 'data', 'null') = 'null'
    ) THEN
        RAISE EXCEPTION 'oms_record_events: an event without data';
    END IF;
    -- An order's events that carry `p_data` store it once: the first of a run of them
    -- keeps it, the next ones store NULL — "the data of the order's nearest earlier event
    -- that has some" (outbox.event_data_sql, how every reader reads it), which is that
    -- first one, since the run's numbers follow each other.
    INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at)
    SELECT e.id, e.type, p_order_id, channel, last_sequence - how_many + e.n::integer,
           CASE WHEN p_order_id IS NOT NULL AND e.data IS NULL AND e.n > 1
                     AND coalesce(p_events -> (e.n::integer - 2) -> 'data', 'null') = 'null'
                THEN NULL
                ELSE coalesce(e.data, p_data) END,
           now()
    FROM ROWS FROM (jsonb_to_recordset(p_events) AS (id text, type text, data jsonb))
         WITH ORDINALITY AS e(id, type, data, n);
END
$$
"""


IDEMPOTENCY_CLAIM_BEFORE = """
CREATE OR REPLACE FUNCTION oms_idempotency_claim(lock_key text, p_principal text, p_key text)
RETURNS TABLE (got boolean, request_hash bytea, response_status integer, response_body bytea)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- A placement's record keeps no body of its own: its response is an event's data.
    RETURN QUERY
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM idempotency_records r
        LEFT JOIN events e ON e.id = r.response_event_id
        WHERE r.principal = p_principal AND r.key = p_key AND r.expires_at > now();
    IF FOUND THEN
        RETURN;
    END IF;
    IF NOT pg_try_advisory_xact_lock(hashtextextended(lock_key, 7)) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::integer, NULL::bytea;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT true, r.request_hash, r.response_status,
               coalesce(r.response_body, convert_to(e.data::text, 'UTF8'))
        FROM (SELECT 1) AS one
        LEFT JOIN idempotency_records r
          ON r.principal = p_principal AND r.key = p_key AND r.expires_at > now()
        LEFT JOIN events e ON e.id = r.response_event_id;
END
$$
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE webhook_deliveries DROP CONSTRAINT fk_webhook_deliveries_event_id_events"
    )
    op.execute("ALTER TABLE events DROP CONSTRAINT pk_events")
    op.execute("ALTER TABLE events DROP CONSTRAINT uq_events_id")
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE webhook_deliveries ADD CONSTRAINT fk_webhook_deliveries_event_id_events "
        "FOREIGN KEY (event_id) REFERENCES events (id)"
    )
    for table, columns in (
        ("inventory_movements", ("product_id", "location_id")),
        ("order_reservations", ("location_id",)),
    ):
        for column in columns:
            ref = column.removesuffix("_id") + "s"
            op.drop_constraint(f"fk_{table}_{column}_{ref}", table, type_="foreignkey")
        op.create_foreign_key(
            f"fk_{table}_product_id_inventory_levels", table, "inventory_levels",
            ["product_id", "location_id"], ["product_id", "location_id"],
        )  # fmt: skip
    for function in (PLACE_ORDER, RECORD_EVENTS, IDEMPOTENCY_CLAIM):
        op.execute(function)


def downgrade() -> None:
    for table, columns in (
        ("inventory_movements", ("product_id", "location_id")),
        ("order_reservations", ("location_id",)),
    ):
        op.drop_constraint(f"fk_{table}_product_id_inventory_levels", table, type_="foreignkey")
        for column in columns:
            ref = column.removesuffix("_id") + "s"
            op.create_foreign_key(
                f"fk_{table}_{column}_{ref}", table, ref, [column], ["id"]
            )  # fmt: skip
    for function in (PLACE_ORDER_BEFORE, RECORD_EVENTS_BEFORE, IDEMPOTENCY_CLAIM_BEFORE):
        op.execute(function)
    op.execute(
        "ALTER TABLE webhook_deliveries DROP CONSTRAINT fk_webhook_deliveries_event_id_events"
    )
    op.execute("ALTER TABLE events DROP CONSTRAINT pk_events")
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (position)")
    op.execute("ALTER TABLE events ADD CONSTRAINT uq_events_id UNIQUE (id)")
    op.execute(
        "ALTER TABLE webhook_deliveries ADD CONSTRAINT fk_webhook_deliveries_event_id_events "
        "FOREIGN KEY (event_id) REFERENCES events (id)"
    )
