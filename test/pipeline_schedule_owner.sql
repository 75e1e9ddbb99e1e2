-- Issue 12 #4: the pg_cron job of a segmentation runs as its owner, whoever
-- schedules it.  pg_cron runs in database "postgres" (cron.database_name):
-- the test works there through dblink, and leaves nothing behind.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT plan(6);

SELECT dblink_connect('tap_cron_owner',
                      format('dbname=postgres host=%s port=%s user=%s',
                             split_part(current_setting('unix_socket_directories'), ',', 1),
                             current_setting('port'), current_user));
SELECT dblink_exec('tap_cron_owner', $$
    SET client_min_messages = warning;
    DROP SCHEMA IF EXISTS tap_cron_owner CASCADE;
    CREATE EXTENSION IF NOT EXISTS pg_cron;
    CREATE EXTENSION IF NOT EXISTS segment;
    DROP ROLE IF EXISTS tap_cron_mkt;
    DROP ROLE IF EXISTS tap_cron_intern;
    CREATE ROLE tap_cron_mkt LOGIN;
    CREATE ROLE tap_cron_intern;
    GRANT USAGE ON SCHEMA segment TO tap_cron_intern;
    GRANT SELECT ON ALL TABLES IN SCHEMA segment TO tap_cron_intern;
    CREATE SCHEMA tap_cron_owner;
    CREATE TABLE tap_cron_owner.orders (customer_id integer, created_at timestamptz, total numeric);
    DO $do$ BEGIN
        PERFORM segment.configure('tap_cron_owner.orders', 'customer_id', 'created_at', 'total',
                                  segmentation => 'tap_cron_owner');
        PERFORM segment.set_owner('tap_cron_mkt', 'tap_cron_owner');
    END $do$;
$$);

SELECT ok(jobid > 0, 'a superuser schedules the refresh of a segmentation it does not own')
  FROM dblink('tap_cron_owner', $$SELECT segment.schedule(schedule => '0 3 1 1 *', segmentation => 'tap_cron_owner')$$) AS t(jobid bigint);
SELECT is((SELECT u FROM dblink('tap_cron_owner',
                                $$SELECT username FROM cron.job WHERE jobname = 'segment_refresh_tap_cron_owner'$$)
                           AS t(u text)),
          'tap_cron_mkt', 'the job is registered for the owner');
SELECT is(jobid, (SELECT j FROM dblink('tap_cron_owner', $$SELECT jobid FROM cron.job WHERE jobname = 'segment_refresh_tap_cron_owner'$$) AS t(j bigint)),
          'scheduling again updates that job')
  FROM dblink('tap_cron_owner', $$SELECT segment.schedule(schedule => '0 4 1 1 *', segmentation => 'tap_cron_owner')$$) AS t(jobid bigint);
SELECT throws_ok($$SELECT * FROM dblink('tap_cron_owner', 'SET ROLE tap_cron_intern; SELECT segment.schedule(schedule => ''0 3 * * *'', segmentation => ''tap_cron_owner'')') AS t(j bigint)$$,
                 '42501', NULL, 'another role may not schedule it (the job would run as itself)');
SELECT dblink_exec('tap_cron_owner', 'RESET ROLE');
SELECT is(done, true, 'a superuser unschedules the owner''s job')
  FROM dblink('tap_cron_owner', $$SELECT segment.unschedule('tap_cron_owner')$$) AS t(done boolean);
SELECT is((SELECT n FROM dblink('tap_cron_owner', $$SELECT count(*) FROM cron.job WHERE jobname = 'segment_refresh_tap_cron_owner'$$) AS t(n bigint)),
          0::bigint, 'no job is left');

SELECT dblink_exec('tap_cron_owner', $$
    SET client_min_messages = warning;
    DO $do$ BEGIN PERFORM segment.drop_segmentation($s$tap_cron_owner$s$); END $do$;
    DROP SCHEMA tap_cron_owner CASCADE;
    DROP EXTENSION segment CASCADE;
    DROP SCHEMA IF EXISTS segment CASCADE;
    DROP EXTENSION pg_cron;
    DROP ROLE tap_cron_mkt;
    DROP ROLE tap_cron_intern$$);
SELECT dblink_disconnect('tap_cron_owner');
SELECT * FROM finish();
