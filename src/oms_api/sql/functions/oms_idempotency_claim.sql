-- oms_idempotency_claim: the head definition (installed by migration 0019).
-- A key whose request has completed answers its stored response at once, without the
-- lock: retries of it never wait for each other (nor are told it is in flight). Else take
-- the request's advisory lock, then look the record up again with a fresh snapshot (each
-- statement of a VOLATILE PL/pgSQL function takes one) — all in one round trip. The
-- response is the record's body, or the data of the event it names (a placement's
-- `order.created`). Holding the lock, it removes an expired record of the key, so the
-- response is recorded by a plain INSERT (no ON CONFLICT: one WAL record, not two).
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
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
