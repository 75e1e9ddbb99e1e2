-- Incremental refreshes with lifetime value give what a full refresh gives.
-- The stage keeps each customer's lifetime-value summary (x, t_x, the start
-- of the first purchase period, mean value); an incremental refresh reads
-- the changed customers' orders again (their summary does not append),
-- counts every customer's t_cal to its own as_of, fits the models again over
-- every stored summary and rescores everyone.  Two pairs of segmentations
-- of the same orders, in days and in weeks, in a time zone far from UTC:
-- 'inc_*' refreshed as refresh() chooses, 'ref_*' always in full; 26
-- rounds (the last 6 with the orders indexed by customer) of random changes (new, late, future, updated, cancelled and
-- deleted orders, refunds), as_of moving by minutes, days, a week, or
-- staying; after each, the profiles (every column, the predictions
-- included), the history and the fits must be equal.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(10);
SET LOCAL TimeZone = 'Asia/Kolkata';

CREATE SCHEMA tap_ic;
CREATE TABLE tap_ic.orders (order_id serial PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                            amount numeric(10,2), status text);
SELECT setseed(0.17);
-- 300 customers with a purchase rhythm of their own, over 18 months.
INSERT INTO tap_ic.orders (customer_id, ordered_at, amount, status)
SELECT c, timestamptz '2023-01-01 00:00+00' + random() * interval '540 days' * (0.2 + (c % 5) * 0.2),
       round((5 + random() * 150)::numeric, 2), CASE WHEN random() < 0.04 THEN 'cancelled' ELSE 'paid' END
  FROM generate_series(1, 300) AS c, generate_series(1, 1 + c % 9) AS k;

SELECT lives_ok($$
    SELECT segment.configure('tap_ic.orders', 'customer_id', 'ordered_at', 'amount', segmentation => x.s,
                             status => 'status', exclude_status => '{cancelled}', is_default => false,
                             clv => true, clv_time_unit => x.unit, clv_penalizer => 0.001)
      FROM (VALUES ('inc_day', 'day'), ('ref_day', 'day'), ('inc_week', 'week'), ('ref_week', 'week')) AS x(s, unit)$$,
    'two pairs of segmentations with lifetime value, in days and in weeks');
SELECT ok((SELECT count(*) = 4 FROM pg_attribute
            WHERE attrelid = 'segment.stage_inc_day'::regclass
              AND attname IN ('clv_x', 'clv_t_x', 'clv_first', 'clv_mean_value')),
          'the stage keeps the lifetime-value summary');

\ir include/twins.sql

CREATE FUNCTION pg_temp.random_changes(round integer, as_of timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tap_ic.orders (customer_id, ordered_at, amount, status)
    SELECT 1 + (random() * 320)::int,
           CASE WHEN random() < 0.6 THEN as_of - random() * interval '3 days'
                WHEN random() < 0.5 THEN as_of - random() * interval '300 days'
                ELSE as_of + random() * interval '6 days' END,
           CASE WHEN random() < 0.05 THEN -10 ELSE round((5 + random() * 150)::numeric, 2) END, 'paid'
      FROM generate_series(1, 5 + (random() * 20)::int);
    UPDATE tap_ic.orders SET amount = amount + 1 WHERE random() < 0.004;
    UPDATE tap_ic.orders SET ordered_at = ordered_at - interval '20 days' WHERE random() < 0.003;
    UPDATE tap_ic.orders SET status = CASE status WHEN 'paid' THEN 'cancelled' ELSE 'paid' END
     WHERE random() < 0.004;
    DELETE FROM tap_ic.orders WHERE random() < 0.003;
END
$$;

CREATE TEMP TABLE rounds (round integer, as_of timestamptz, modes text[], reasons text[],
                          same_profile boolean, same_changes boolean, same_fit boolean);
CREATE FUNCTION pg_temp.run_rounds(first integer, last integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    as_of timestamptz := coalesce((SELECT max(x.as_of) FROM rounds AS x), '2024-07-01 09:00+00');
    r     segment.refreshes[];
BEGIN
    IF first = 1 THEN
        PERFORM segment.refresh(x, as_of, mode => 'full') FROM unnest(ARRAY['inc_day', 'ref_day', 'inc_week', 'ref_week']) AS x;
    END IF;
    FOR i IN first..last LOOP
        PERFORM pg_temp.random_changes(i, as_of);
        as_of := as_of + CASE WHEN i % 5 = 0 THEN interval '7 days'
                              WHEN i % 3 = 0 THEN (1 + (random() * 2)::int) * interval '1 day'
                              WHEN i % 4 = 1 THEN interval '0'
                              ELSE random() * interval '20 minutes' END;
        r := ARRAY[segment.refresh('inc_day', as_of), segment.refresh('ref_day', as_of, mode => 'full'),
                   segment.refresh('inc_week', as_of), segment.refresh('ref_week', as_of, mode => 'full')];
        INSERT INTO rounds
        SELECT i, as_of, ARRAY[r[1].mode, r[3].mode], ARRAY[r[1].full_reason, r[3].full_reason],
               ARRAY(SELECT pg_temp.profile('inc_day')) = ARRAY(SELECT pg_temp.profile('ref_day'))
               AND ARRAY(SELECT pg_temp.profile('inc_week')) = ARRAY(SELECT pg_temp.profile('ref_week')),
               ARRAY(SELECT pg_temp.last_changes('inc_day')) = ARRAY(SELECT pg_temp.last_changes('ref_day'))
               AND ARRAY(SELECT pg_temp.last_changes('inc_week')) = ARRAY(SELECT pg_temp.last_changes('ref_week')),
               (r[1].clv_status, r[1].clv_fit, r[1].high_value_min, r[1].buyers, r[1].segments,
                r[3].clv_status, r[3].clv_fit, r[3].high_value_min, r[3].buyers, r[3].segments)
               IS NOT DISTINCT FROM
               (r[2].clv_status, r[2].clv_fit, r[2].high_value_min, r[2].buyers, r[2].segments,
                r[4].clv_status, r[4].clv_fit, r[4].high_value_min, r[4].buyers, r[4].segments);
    END LOOP;
END
$$;
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT pg_temp.run_rounds(1, 20)$$, '20 rounds of random changes, each refreshed both ways');
-- With an index on the orders' customer, the changed customers are read
-- one index probe each (recompute_by_customer_sql()).
CREATE INDEX ON tap_ic.orders (customer_id);
SELECT lives_ok($$SELECT pg_temp.run_rounds(21, 26)$$, 'and 6 more with the orders indexed by customer');
RESET client_min_messages;

SELECT is((SELECT count(*) FROM rounds WHERE modes = '{incremental,incremental}'), 26::bigint,
          'every refresh after the first was incremental, in days and in weeks');
SELECT is((SELECT count(*) FROM rounds WHERE same_profile), 26::bigint,
          'after every round the incremental profile equals the full one, every column, the predictions included');
SELECT is((SELECT count(*) FROM rounds WHERE same_changes), 26::bigint,
          'and every refresh recorded the same changes in the history');
SELECT is((SELECT count(*) FROM rounds WHERE same_fit), 26::bigint,
          'and the same fits, high-value cut, buyers and segment sizes');
SELECT ok((SELECT count(*) FROM segment.profile_inc_day WHERE clv IS NOT NULL) > 200,
          'the profiles have lifetime values');

-- Switched on for a segmentation refreshed without it: the stage gains the
-- summary, and the first refresh after is full (what the stage keeps changed).
SELECT segment.configure('tap_ic.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'later',
                         status => 'status', exclude_status => '{cancelled}', is_default => false);
SELECT segment.refresh('later', '2024-09-01 00:00+00');
SELECT segment.configure('tap_ic.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'later',
                         status => 'status', exclude_status => '{cancelled}', is_default => false, clv => true,
                         clv_penalizer => 0.001);
SELECT is((SELECT ARRAY[(segment.refresh('later', '2024-09-01 00:00+00')).mode,
                        (segment.refresh('later', '2024-09-02 00:00+00')).mode]),
          '{full,incremental}', 'lifetime value switched on: one full refresh, then incremental ones');

SELECT * FROM finish();
ROLLBACK;
