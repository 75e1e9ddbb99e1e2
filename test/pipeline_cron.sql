-- Scheduling refreshes with the real pg_cron.  The test cluster runs pg_cron
-- for database "postgres" (cron.database_name), so the scheduling itself is
-- tested there through dblink, up to a job that pg_cron runs; here, pg_cron is
-- missing and must be reported.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
SELECT plan(16);

CREATE FUNCTION pg_temp.hint_of(sql text) RETURNS text LANGUAGE plpgsql AS
$$
DECLARE
    h text;
BEGIN
    EXECUTE sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN h;
END
$$;

BEGIN;
CREATE SCHEMA tap_cron;
CREATE TABLE tap_cron.orders (customer_id integer, created_at timestamptz, total numeric);
SELECT lives_ok($$SELECT segment.configure('tap_cron.orders', 'customer_id', 'created_at', 'total',
                                          segmentation => 'tap_cron')$$, 'configure');
SELECT throws_ok($$SELECT segment.schedule(schedule => '0 3 * * *', segmentation => 'tap_cron')$$, '55000',
                 format('pg_cron is not installed in database "%s"', current_database()),
                 'schedule() without pg_cron in this database fails clearly');
SELECT is(pg_temp.hint_of($$SELECT segment.schedule(schedule => '0 3 * * *', segmentation => 'tap_cron')$$),
          format('Connect to database "postgres" and run: SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                 'segment_refresh_tap_cron', '0 3 * * *', 'SELECT segment.refresh(''tap_cron'')',
                 current_database()),
          'with a hint to schedule it from the pg_cron database');
SELECT throws_ok($$SELECT segment.unschedule('tap_cron')$$, '55000', NULL,
                 'unschedule() without pg_cron fails clearly too');
ROLLBACK;

SELECT dblink_connect('tap_cron',
                      format('dbname=postgres host=%s port=%s user=%s',
                             split_part(current_setting('unix_socket_directories'), ',', 1),
                             current_setting('port'), current_user));
SELECT dblink_exec('tap_cron', $$
    SET client_min_messages = warning;
    DROP SCHEMA IF EXISTS tap_cron CASCADE;
    CREATE EXTENSION IF NOT EXISTS pg_cron;
    CREATE EXTENSION IF NOT EXISTS segment;
    CREATE SCHEMA tap_cron;
    CREATE TABLE tap_cron.orders (customer_id integer, created_at timestamptz, total numeric);
    INSERT INTO tap_cron.orders VALUES (1, '2024-06-01', 10), (1, '2024-06-20', 20), (2, '2024-05-01', 5)$$);
SELECT p FROM dblink('tap_cron', $$
    SELECT segment.configure('tap_cron.orders', 'customer_id', 'created_at', 'total',
                             segmentation => 'tap_cron', as_of => 'last_order')$$) AS t(p text);

SELECT ok(jobid > 0, 'schedule() registers a pg_cron job')
  FROM dblink('tap_cron', $$SELECT segment.schedule(schedule => '15 3 * * *', segmentation => 'tap_cron')$$) AS t(jobid bigint);
SELECT results_eq(
    $$SELECT * FROM dblink('tap_cron', 'SELECT jobname, schedule, command, database, active FROM cron.job')
        AS t(jobname text, schedule text, command text, database text, active boolean)$$,
    $$VALUES ('segment_refresh_tap_cron'::text, '15 3 * * *'::text,
              'SELECT segment.refresh(''tap_cron'')'::text, 'postgres'::text, true)$$,
    'the job refreshes the segmentation in this database');
SELECT is(jobid, (SELECT j FROM dblink('tap_cron', 'SELECT jobid FROM cron.job') AS t(j bigint)),
          'scheduling again updates the same job')
  FROM dblink('tap_cron', $$SELECT segment.schedule(schedule => '0 4 * * 1', segmentation => 'tap_cron')$$) AS t(jobid bigint);
SELECT is((SELECT s FROM dblink('tap_cron', 'SELECT schedule FROM cron.job') AS t(s text)),
          '0 4 * * 1', 'with the new schedule');
SELECT throws_ok($$SELECT * FROM dblink('tap_cron', 'SELECT segment.schedule(schedule => ''every day'', segmentation => ''tap_cron'')') AS t(j bigint)$$,
                 NULL, NULL, 'an invalid schedule is refused by pg_cron');

-- pg_cron runs the job: every minute, so it runs within about a minute
-- (pg_cron 1.4 has no seconds schedules).  The test servers run jobs in
-- background workers (cron.use_background_workers), having no TCP listener.
SELECT is(jobid, (SELECT j FROM dblink('tap_cron', 'SELECT jobid FROM cron.job') AS t(j bigint)),
          'rescheduled to every minute')
  FROM dblink('tap_cron', $$SELECT segment.schedule(schedule => '* * * * *', segmentation => 'tap_cron')$$) AS t(jobid bigint);
CREATE FUNCTION pg_temp.wait_for_cron_run(seconds integer) RETURNS text LANGUAGE plpgsql AS
$$
DECLARE
    st text;
BEGIN
    FOR i IN 1 .. seconds LOOP
        SELECT t.status INTO st
          FROM dblink('tap_cron', 'SELECT status FROM cron.job_run_details
                                    WHERE status IN (''succeeded'', ''failed'')
                                    ORDER BY runid DESC LIMIT 1') AS t(status text);
        IF st IS NOT NULL THEN
            RETURN st;
        END IF;
        PERFORM pg_sleep(1);
    END LOOP;
    RETURN 'no run within ' || seconds || ' s';
END
$$;
SELECT is(pg_temp.wait_for_cron_run(90), 'succeeded', 'pg_cron ran the refresh job');
SELECT is((SELECT n FROM dblink('tap_cron', $$SELECT count(*) FROM segment.profile_tap_cron$$) AS t(n bigint)),
          2::bigint, 'the job refreshed the profile');

SELECT is(done, true, 'unschedule() removes the job')
  FROM dblink('tap_cron', $$SELECT segment.unschedule('tap_cron')$$) AS t(done boolean);
SELECT is((SELECT n FROM dblink('tap_cron', 'SELECT count(*) FROM cron.job') AS t(n bigint)),
          0::bigint, 'no job is left');
SELECT is(done, false, 'unschedule() again reports there was none')
  FROM dblink('tap_cron', $$SELECT segment.unschedule('tap_cron')$$) AS t(done boolean);
SELECT throws_ok($$SELECT * FROM dblink('tap_cron', 'SELECT segment.schedule(schedule => ''0 3 * * *'', segmentation => ''nope'')') AS t(j bigint)$$,
                 '42704', 'segmentation "nope" does not exist', 'schedule() of an unknown segmentation');

SELECT dblink_exec('tap_cron', $$
    SET client_min_messages = warning;
    DROP SCHEMA tap_cron CASCADE;
    DROP EXTENSION segment CASCADE;
    DROP SCHEMA segment CASCADE;
    DROP EXTENSION pg_cron$$);
SELECT dblink_disconnect('tap_cron');
SELECT * FROM finish();
