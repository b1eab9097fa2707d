-- oms_record_events: the head definition (installed by migration 0023).
-- The one path for events: numbers them in their order's sequence and writes the outbox
-- rows. `p_numbered`: the order is new, inserted in this transaction with these events
-- already counted in `orders.event_sequence` (placement) — they are its first, numbered
-- from 1, in the channel the caller gives — so its row is neither updated a second time
-- nor read again. `p_data` and the stored data are `json`: the text as the service wrote it,
-- kept as it is (migration 0019), never parsed into jsonb and printed again.
-- An order's events never sort before its earlier ones in commit order (txid, position:
-- the feed's, the notifier's and the summariser's): a transaction takes its id when it
-- first writes or locks, which may be before an earlier holder of the order's lock took
-- its own, so an event's `txid` is the writer's or its order's previous event's, whichever
-- is later (migration 0023). The feed's horizon holds: it is never below the writer's.
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
CREATE OR REPLACE FUNCTION oms_record_events(p_order_id text, p_events jsonb, p_data json DEFAULT NULL,
                                  p_channel_id text DEFAULT NULL,
                                  p_numbered boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    how_many integer := jsonb_array_length(p_events);
    last_sequence integer;
    channel text := p_channel_id;
    after_txid xid8 := pg_current_xact_id();
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
        -- The order's previous event, committed: its row was locked by the UPDATE above.
        SELECT greatest(after_txid, e.txid) INTO after_txid FROM events e
        WHERE e.order_id = p_order_id AND e.sequence = last_sequence - how_many;
        after_txid := coalesce(after_txid, pg_current_xact_id());
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
    INSERT INTO events (id, type, order_id, channel_id, sequence, data, created_at, txid)
    SELECT e.id, e.type, p_order_id, channel, last_sequence - how_many + e.n::integer,
           CASE WHEN p_order_id IS NOT NULL AND e.data IS NULL AND e.n > 1
                     AND coalesce(p_events -> (e.n::integer - 2) -> 'data', 'null') = 'null'
                THEN NULL
                ELSE coalesce(e.data, p_data) END,
           now(), after_txid
    FROM ROWS FROM (jsonb_to_recordset(p_events) AS (id text, type text, data json))
         WITH ORDINALITY AS e(id, type, data, n);
END
$$;
