-- oms_new_id: the head definition (installed by migration 0013).
-- An id as `oms_api.ids.new_id` makes it, for rows the database creates itself (a
-- replenishment request, the events of a stock crossing): `<prefix>_` and a ULID — 48 bits
-- of milliseconds, then 80 random bits (a version-4 UUID's, less its version and variant
-- bits), as 26 Crockford base32 characters.
-- To change it: edit this file, then a new revision that installs this text as a
-- literal (docs/architecture.md, Migrations).
CREATE OR REPLACE FUNCTION oms_new_id(p_prefix text) RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet CONSTANT text := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    millis bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
    u bit(128) := ('x' || replace(gen_random_uuid()::text, '-', ''))::bit(128);
    bits bit(130);
    encoded text := '';
BEGIN
    bits := B'00' || millis::bit(48) || substring(u FROM 1 FOR 48) || substring(u FROM 67 FOR 32);
    FOR i IN 0 .. 25 LOOP
        encoded := encoded || substr(alphabet, substring(bits FROM i * 5 + 1 FOR 5)::integer + 1, 1);
    END LOOP;
    RETURN p_prefix || '_' || encoded;
END
$$;
