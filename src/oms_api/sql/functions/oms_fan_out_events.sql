-- oms_fan_out_events: the head definition (installed by migration 0003).
-- The trigger function of `events_fan_out` (AFTER INSERT ON events, per statement): every
-- inserted event becomes a pending delivery for each enabled endpoint that wants it, in the
-- same transaction; a NOTIFY (sent at commit) wakes the dispatchers.
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
CREATE OR REPLACE FUNCTION oms_fan_out_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    created bigint;
BEGIN
    INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, next_attempt_at, created_at)
    SELECT 'whd_' || to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS')
                  || substr(md5(random()::text || e.id || ep.id), 1, 12),
           ep.id, e.id, 'pending', now(), now()
    FROM new_events e
    JOIN webhook_endpoints ep
      ON ep.status = 'enabled'
     AND (ep.channel_id IS NULL OR ep.channel_id = e.channel_id)
     AND ('*' = ANY (ep.events) OR e.type = ANY (ep.events));
    GET DIAGNOSTICS created = ROW_COUNT;
    IF created > 0 THEN
        PERFORM pg_notify('oms_webhook_deliveries', '');
    END IF;
    RETURN NULL;
END
$$;
