-- Issue 12 #11: the in-memory copy segment_of() keeps for a call site (a
-- PL/pgSQL loop keeps it to the end of the transaction) answers only for the
-- snapshot it was built under, and a superseded one is freed.  Other
-- sessions through dblink; not in one transaction, they must see the setup.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT plan(4);

CREATE SCHEMA tap_lc;
CREATE TABLE tap_lc.orders (customer_id integer, created_at timestamptz, total numeric);
INSERT INTO tap_lc.orders SELECT c, '2024-03-01', 10 FROM generate_series(1, 3000) AS c;
SELECT segment.configure('tap_lc.orders', 'customer_id', 'created_at', 'total', segmentation => 'tap_lc') IS NOT NULL AS configured;
SELECT (segment.refresh('tap_lc', '2024-07-01')).id IS NOT NULL AS refreshed;
SELECT dblink_connect(c, format('dbname=%s host=%s port=%s user=%s', current_database(),
                                split_part(current_setting('unix_socket_directories'), ',', 1),
                                current_setting('port'), current_user))
  FROM unnest(ARRAY['lc_hold', 'lc_b', 'lc_c']) AS c;

-- A refresh commits while xmin and xmax of the snapshots stay the same (an
-- older transaction is open, a later one has committed): only the list of
-- transactions in progress tells the snapshots apart.  One call site makes
-- enough lookups to read the profile into memory, then looks customer 1 up
-- again after the commit.
CREATE FUNCTION pg_temp.lookups_across_refresh() RETURNS text[] LANGUAGE plpgsql AS
$$
DECLARE
    v    text;
    seen text[] := '{}';
BEGIN
    PERFORM dblink_exec('lc_hold', 'BEGIN');
    PERFORM * FROM dblink('lc_hold', 'SELECT txid_current()') AS t(x bigint);
    PERFORM dblink_exec('lc_b', 'BEGIN');
    PERFORM dblink_exec('lc_b', $q$INSERT INTO tap_lc.orders VALUES (1, '2024-06-30', 100000)$q$);
    PERFORM * FROM dblink('lc_b', $q$SELECT (segment.refresh('tap_lc', '2024-07-01')).id$q$) AS t(id bigint);
    PERFORM * FROM dblink('lc_c', 'SELECT txid_current()') AS t(x bigint);
    FOR i IN 1 .. 3002 LOOP
        IF i = 3002 THEN
            PERFORM dblink_exec('lc_b', 'COMMIT');
        END IF;
        v := segment_of(CASE WHEN i <= 3000 THEN i ELSE 1 END, 'tap_lc');
        IF i > 3000 THEN
            seen := seen || v;
        END IF;
    END LOOP;
    PERFORM dblink_exec('lc_hold', 'COMMIT');
    RETURN seen;
END
$$;
SELECT pg_temp.lookups_across_refresh() AS seen \gset
SELECT isnt((:'seen'::text[])[1], (:'seen'::text[])[2], 'the refresh changed customer 1''s segment');
SELECT is((:'seen'::text[])[2], (SELECT segment FROM segment.profile_tap_lc WHERE customer_id = 1),
          'a lookup after the commit sees the refreshed profile, not the in-memory copy');

-- Other sessions committing at every iteration: each iteration has another
-- snapshot; the superseded caches are freed, not kept to the end.
CREATE FUNCTION pg_temp.caches_in_loop(n integer) RETURNS bigint LANGUAGE plpgsql AS
$$
DECLARE
    v text;
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM * FROM dblink('lc_c', 'SELECT txid_current()') AS t(x bigint);
        v := segment_of(1 + i % 3000, 'tap_lc');
    END LOOP;
    RETURN (SELECT count(*) FROM pg_backend_memory_contexts WHERE name = 'segment_of cache');
END
$$;
SELECT is(pg_temp.caches_in_loop(300), 1::bigint, 'one cache is alive after 300 snapshots');
SELECT is((SELECT count(*) FROM generate_series(1, 3000) AS g WHERE segment_of(g, 'tap_lc') IS NOT NULL),
          3000::bigint, 'lookups still answer');

SELECT dblink_disconnect(c) FROM unnest(ARRAY['lc_hold', 'lc_b', 'lc_c']) AS c;
SELECT segment.drop_segmentation('tap_lc');
SET client_min_messages = warning;
DROP SCHEMA tap_lc CASCADE;
RESET client_min_messages;
SELECT * FROM finish();
