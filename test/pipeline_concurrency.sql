-- Concurrent refreshes and readers, with a second session through dblink.
-- Not in one transaction: the other session must see committed setup.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT plan(16);

CREATE SCHEMA tap_conc;
CREATE TABLE tap_conc.orders (customer_id bigint, created_at timestamptz, total numeric);
INSERT INTO tap_conc.orders
SELECT c, timestamptz '2024-06-30' - make_interval(days => (c * 37 + k * 11) % 300), (c % 17) * 10 + k
  FROM generate_series(1, 2000) AS c, generate_series(1, 1 + c % 4) AS k;
SELECT lives_ok($$SELECT segment.configure('tap_conc.orders', 'customer_id', 'created_at', 'total',
                                          segmentation => 'tap_conc')$$, 'configure');
SELECT lives_ok($$SELECT segment.refresh('tap_conc', '2024-07-01')$$, 'first refresh');

SELECT dblink_connect('tap_other',
                      format('dbname=%s host=%s port=%s user=%s', current_database(),
                             split_part(current_setting('unix_socket_directories'), ',', 1),
                             current_setting('port'), current_user));
SELECT dblink_exec('tap_other', 'SET statement_timeout = ''20s''');

-- Customer 1 becomes a big spender; refresh it in a transaction left open.
BEGIN;
INSERT INTO tap_conc.orders VALUES (1, '2024-06-30', 100000);
SELECT (segment.refresh('tap_conc', '2024-07-01')).id IS NOT NULL AS refreshed;
SELECT is(segment_of(1::bigint, 'tap_conc'), 'Top Spenders', 'the refreshing session sees its new profile');
SELECT is((SELECT s FROM dblink('tap_other', $$SELECT segment_of(1::bigint, 'tap_conc')$$) AS t(s text)),
          (SELECT to_segment FROM segment.history WHERE segmentation = 'tap_conc' AND customer_id = '1'
            ORDER BY refresh_id LIMIT 1),
          'another session reads the old profile, without waiting');
SELECT is((SELECT n FROM dblink('tap_other', $$SELECT count(*) FROM segment.profile_tap_conc$$) AS t(n bigint)),
          2000::bigint, 'and all of it');
SELECT throws_ok($$SELECT * FROM dblink('tap_other', 'SELECT id FROM segment.refresh(''tap_conc'', wait => false)') AS t(id bigint)$$,
                 '55P03', 'segmentation "tap_conc" is being refreshed by another session',
                 'a second refresh with wait => false fails clearly');
-- Sources are not changed under a running refresh: drop_source (and the
-- configure_* functions) wait for it.  Without the wait this would fail
-- at once with "has no events source" instead of the lock timeout.
SELECT dblink_exec('tap_other', 'SET lock_timeout = ''200ms''');
SELECT throws_ok($$SELECT * FROM dblink('tap_other', 'SELECT segment.drop_source(''events'', ''tap_conc'')::text') AS t(r text)$$,
                 '55P03', NULL, 'drop_source waits for a running refresh');
SELECT dblink_exec('tap_other', 'RESET lock_timeout');
SELECT is(dblink_send_query('tap_other', $$SELECT id FROM segment.refresh('tap_conc', '2024-07-02')$$), 1,
          'a second refresh is started');
SELECT pg_sleep(0.5);
SELECT is(dblink_is_busy('tap_other'), 1, 'and waits for the first');
COMMIT;
SELECT ok((SELECT id FROM dblink_get_result('tap_other') AS t(id bigint)) IS NOT NULL,
          'it completes once the first has committed');
SELECT is((SELECT count(*) FROM dblink_get_result('tap_other') AS t(id bigint)), 0::bigint, 'no more results');
SELECT is((SELECT count(*) FROM segment.profile_tap_conc), 2000::bigint, 'one row per customer after both');
SELECT is((SELECT count(DISTINCT recency_days - (date '2024-07-02' - last_order::date))
             FROM segment.profile_tap_conc WHERE last_order IS NOT NULL), 1::bigint,
          'all rows from one refresh');
SELECT is((SELECT r.as_of FROM segment.refreshes AS r JOIN segment.segmentations AS x ON r.id = x.last_refresh
            WHERE x.name = 'tap_conc'), '2024-07-02'::timestamptz, 'the later one');

-- A repeatable-read reader keeps its snapshot's profile across a refresh.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT segment_of(1::bigint, 'tap_conc') AS before \gset
SELECT dblink_exec('tap_other', $$DELETE FROM tap_conc.orders WHERE total = 100000$$);
SELECT id IS NOT NULL AS refreshed
  FROM dblink('tap_other', $$SELECT id FROM segment.refresh('tap_conc', '2024-07-02')$$) AS t(id bigint);
SELECT is(segment_of(1::bigint, 'tap_conc'), :'before', 'a snapshot keeps seeing its profile');
COMMIT;
SELECT isnt(segment_of(1::bigint, 'tap_conc'), :'before', 'a new snapshot sees the new one');

SELECT dblink_disconnect('tap_other');
SELECT segment.drop_segmentation('tap_conc');
SET client_min_messages = warning;
DROP SCHEMA tap_conc CASCADE;
RESET client_min_messages;
SELECT * FROM finish();
