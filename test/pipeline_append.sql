-- Inserted orders appended to the stored figures from the change log
-- (segment_internal.refresh_stage(), src/rfm_summary.c), over the column types
-- the capture meets: text keys, integer amounts, boolean discounts, statuses;
-- and an order time without a time zone, whose orders are never appended (a
-- timestamp is read in the writer's time zone): its customers are read from
-- their orders.  Each incremental refresh equals a full refresh of a twin.
BEGIN;
SELECT plan(13);
SET LOCAL TimeZone = 'Europe/Berlin';
SET LOCAL client_min_messages = warning;

CREATE SCHEMA tap_app;
CREATE TABLE tap_app.orders (order_id serial PRIMARY KEY, customer text, placed timestamptz, total integer,
                             coupon boolean, state text);
INSERT INTO tap_app.orders (customer, placed, total, coupon, state)
SELECT 'c' || (1 + i % 50), timestamptz '2024-03-01 10:00+01' + (i % 90) * interval '1 day' + (i % 7) * interval '1 hour',
       10 + i % 7, i % 5 = 0, CASE WHEN i % 11 = 0 THEN 'cancelled' ELSE 'paid' END
  FROM generate_series(1, 500) AS i;
CREATE TABLE tap_app.orders_local (LIKE tap_app.orders INCLUDING ALL);
ALTER TABLE tap_app.orders_local ALTER COLUMN placed TYPE timestamp;
INSERT INTO tap_app.orders_local SELECT * FROM tap_app.orders;

SELECT segment.configure(o, 'customer', 'placed', 'total', discount => 'coupon', status => 'state',
                         exclude_status => '{cancelled}', segmentation => s, is_default => false)
  FROM (VALUES ('tap_app.orders', 'inc'), ('tap_app.orders', 'ref'),
               ('tap_app.orders_local', 'local_inc'), ('tap_app.orders_local', 'local_ref')) AS v(o, s);

CREATE FUNCTION pg_temp.same(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    x text[];
    y text[];
BEGIN
    EXECUTE format('SELECT array_agg(p::text ORDER BY p.customer_id) FROM segment.%I AS p', 'profile_' || a) INTO x;
    EXECUTE format('SELECT array_agg(p::text ORDER BY p.customer_id) FROM segment.%I AS p', 'profile_' || b) INTO y;
    RETURN x = y;
END
$$;
SELECT segment.refresh(s, '2024-07-01') FROM unnest(ARRAY['inc', 'ref', 'local_inc', 'local_ref']) AS s;

-- New orders: on a customer's last day and later, one cancelled, a new
-- customer.
INSERT INTO tap_app.orders (customer, placed, total, coupon, state)
VALUES ('c1', '2024-06-30 23:30+02', 15, true, 'paid'), ('c2', '2024-06-30 12:00+02', 15, false, 'cancelled'),
       ('c77', '2024-06-29 08:00+02', 5, NULL, 'paid'), ('c4', '2024-05-30 09:00+02', 9, false, 'paid');
INSERT INTO tap_app.orders_local (customer, placed, total, coupon, state)
VALUES ('c1', '2024-06-30 23:30', 15, true, 'paid'), ('c77', '2024-06-29 08:00', 5, NULL, 'paid');
SELECT is((SELECT count(*) FROM segment.changes_inc WHERE appended), 4::bigint,
          'each inserted order is logged with its figures');
SELECT is((SELECT count(*) FROM segment.changes_local_inc WHERE appended), 0::bigint,
          'an order time without a time zone: no order is logged for appending');

CREATE TEMP TABLE scans AS SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relid = 'tap_app.orders'::regclass;
SELECT is((SELECT mode FROM segment.refresh('inc', '2024-07-01')), 'incremental', 'text keys: incremental');
SELECT is((SELECT (seq_scan, idx_scan)::text FROM pg_stat_xact_user_tables WHERE relid = 'tap_app.orders'::regclass),
          (SELECT (seq_scan, idx_scan)::text FROM scans),
          'every changed customer appended: the orders are not read');
SELECT lives_ok($$SELECT segment.refresh('ref', '2024-07-01', mode => 'full')$$, 'its twin in full');
SELECT ok(pg_temp.same('inc', 'ref'), 'equal profiles (text keys, integer amounts, boolean discounts, a cancelled order, a new customer)');

-- A back-dated order: the customer is read from its orders.
TRUNCATE scans;
INSERT INTO scans SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relid = 'tap_app.orders'::regclass;
INSERT INTO tap_app.orders (customer, placed, total, coupon, state) VALUES ('c3', '2024-04-02 10:00+02', 7, true, 'paid');
SELECT is((SELECT mode FROM segment.refresh('inc', '2024-07-01')), 'incremental', 'a back-dated order: incremental');
SELECT cmp_ok((SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relid = 'tap_app.orders'::regclass),
              '>', (SELECT seq_scan + coalesce(idx_scan, 0) FROM scans), '(its orders read)');
SELECT lives_ok($$SELECT segment.refresh('ref', '2024-07-01', mode => 'full')$$, 'its twin in full');
SELECT ok(pg_temp.same('inc', 'ref'), 'equal profiles');

SELECT is((SELECT mode FROM segment.refresh('local_inc', '2024-07-01')), 'incremental', 'timestamp orders: incremental');
SELECT lives_ok($$SELECT segment.refresh('local_ref', '2024-07-01', mode => 'full')$$, '(twin)');
SELECT ok(pg_temp.same('local_inc', 'local_ref'), 'equal profiles');

SELECT * FROM finish();
ROLLBACK;
