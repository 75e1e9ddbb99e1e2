-- Scheduled refreshes on Citus: pg_cron runs on the coordinator (its
-- cron.database_name is the suite's database, scripts/citus.sh), and a job
-- scheduled with segment.schedule() refreshes a segmentation over distributed
-- orders and customers into its distributed profile.  pg_cron 1.4 schedules
-- by the minute: this waits up to 75 seconds for the job to run.
SET client_min_messages = error;
SET citus.enable_ddl_propagation = off;   -- pg_cron on the coordinator only
CREATE EXTENSION IF NOT EXISTS pg_cron;
RESET citus.enable_ddl_propagation;
SELECT plan(5);

SELECT lives_ok($$
    SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount',
                             segmentation => 'citus_cron', is_default => false,
                             customers => 'customers', customers_key => 'customer_id');
    SELECT segment.distribute('citus_cron')$$,
    'a distributed segmentation');
SELECT lives_ok($$SELECT segment.schedule(schedule => '* * * * *', segmentation => 'citus_cron')$$,
                'schedule() its refresh every minute with pg_cron');
SELECT is((SELECT command FROM cron.job WHERE jobname = 'segment_refresh_citus_cron'),
          'SELECT segment.refresh(''citus_cron'')', 'the job is in cron.job');

DO $$
BEGIN
    FOR i IN 1..75 LOOP
        EXIT WHEN EXISTS (SELECT FROM segment.refreshes WHERE segmentation = 'citus_cron');
        PERFORM pg_sleep(1);
    END LOOP;
END
$$;
SELECT is((SELECT count(*) > 0 FROM segment.refreshes WHERE segmentation = 'citus_cron'), true,
          'pg_cron ran the refresh (see cron.job_run_details if not)');
SELECT is((SELECT count(*) FROM customers WHERE segment_of(customer_id, 'citus_cron') IS NOT NULL),
          (SELECT count(*) FROM customers),
          'every distributed customer has a segment from the scheduled refresh');

SELECT segment.unschedule('citus_cron');
SELECT * FROM finish();
SELECT segment.drop_segmentation('citus_cron');
