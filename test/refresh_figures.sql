-- segment_internal.refresh_figures(), step 1 of a full refresh by a hash table of its
-- own, gives exactly what segment_internal.figures_sql()'s GROUP BY with the rfm
-- aggregate gives: every column of every customer, on random shops with
-- NULL keys, times and amounts, ties, excluded and NULL statuses, numeric,
-- boolean and text discounts, integer and text keys, timestamptz, timestamp
-- and date order times, in several time zones, in memory and spilled to
-- temporary files (a tiny work_mem).  With lifetime value, its clv_summary
-- columns are those of refresh_run()'s clv_summary(...) FILTER (WHERE amount
-- >= 0), to the last bit, in time units of days and weeks, with refunds,
-- same-day orders and customers with refunds only, over a GROUP BY that
-- hashes or sorts (another order of each customer's orders), and spilled.
-- Then its errors.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(97);

CREATE SCHEMA tap_rf;
SELECT setseed(0.17);
-- Integer keys, timestamptz, numeric amounts of several scales, refunds.
CREATE TABLE tap_rf.orders (customer_id bigint, ordered_at timestamptz, amount numeric,
                            discount numeric(10,2), status text);
INSERT INTO tap_rf.orders
SELECT CASE WHEN random() < 0.03 THEN NULL ELSE 1 + (random() * 2999)::int END,
       CASE WHEN random() < 0.02 THEN NULL
            -- whole hours in 300 days: same-time ties and same-day orders
            ELSE timestamptz '2024-01-01 00:00+00' + (random() * 7200)::int * interval '1 hour' END,
       CASE WHEN random() < 0.02 THEN NULL
            WHEN random() < 0.05 THEN -round((random() * 50)::numeric, 2)
            WHEN random() < 0.1 THEN round((random() * 100)::numeric, 3)
            ELSE round((1 + random() * 300)::numeric, 2) END,
       CASE WHEN random() < 0.2 THEN round((random() * 10)::numeric, 2) WHEN random() < 0.2 THEN NULL ELSE 0 END,
       CASE WHEN random() < 0.05 THEN 'cancelled' WHEN random() < 0.03 THEN NULL
            WHEN random() < 0.02 THEN 'refunded' ELSE 'paid' END
  FROM generate_series(1, 20000);
-- Text keys, timestamps without time zone, integer amounts, boolean discounts.
CREATE TABLE tap_rf.orders_text (customer text COLLATE "C", placed timestamp, total integer, coupon boolean,
                                 state varchar);
INSERT INTO tap_rf.orders_text
SELECT CASE WHEN random() < 0.02 THEN NULL ELSE 'c-' || (random() * 400)::int END,
       timestamp '2024-03-20' + (random() * 2000)::int * interval '1 hour',
       CASE WHEN random() < 0.02 THEN NULL ELSE (random() * 90)::int END,
       CASE WHEN random() < 0.3 THEN true WHEN random() < 0.2 THEN NULL ELSE false END,
       CASE WHEN random() < 0.1 THEN 'void' ELSE 'ok' END
  FROM generate_series(1, 3000);
-- Integer keys, dates, text discounts (a coupon code).
CREATE TABLE tap_rf.orders_date (cid integer, day date, amount numeric(8,2), code text);
INSERT INTO tap_rf.orders_date
SELECT 1 + (random() * 200)::int, date '2024-01-01' + (random() * 400)::int,
       round((random() * 80)::numeric, 2), CASE WHEN random() < 0.3 THEN 'SAVE' WHEN random() < 0.3 THEN '' END
  FROM generate_series(1, 2000);

-- The number of rows in which the two paths differ (both ways, every column
-- as text), for a configuration as refresh_run() builds src and disc.
CREATE FUNCTION pg_temp.diff(rel regclass, cust name, t name, a name, d name, st name, excl text[],
                             as_of timestamptz, zone text)
    RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s    segment.segmentations := jsonb_populate_record(NULL::segment.segmentations,
             jsonb_build_object('name', 'x', 'orders', rel::text, 'customer', cust, 'ordered_at', t, 'amount', a,
                                'discount', d, 'status', st, 'exclude_status', excl,
                                'key_type', segment_internal.column_type(rel, cust)::text));
    src  text := format('FROM %s AS o WHERE o.%I IS NOT NULL AND o.%I IS NOT NULL AND o.%I IS NOT NULL', rel, cust, t, a);
    disc text := 'NULL::bigint';
    n    bigint;
BEGIN
    PERFORM set_config('TimeZone', zone, true);
    IF st IS NOT NULL THEN
        src := src || format(' AND (o.%1$I IS NULL OR o.%1$I::text <> ALL (%2$L::text[]))', st, excl);
    END IF;
    IF d IS NOT NULL THEN
        disc := format('pg_catalog.count(*) FILTER (WHERE %s)',
                       CASE (SELECT y.typcategory FROM pg_type AS y WHERE y.oid = segment_internal.column_type(rel, d))
                           WHEN 'B' THEN format('o.%I', d) WHEN 'N' THEN format('o.%I > ''0''', d)
                           ELSE format('o.%I <> ''''', d) END);
    END IF;
    EXECUTE format('WITH a AS (SELECT g.customer_id::text AS k, g.s::text AS s, g.discounted FROM (%s) AS g),
                         b AS (SELECT f.customer_id::text AS k, f.s::text AS s, f.discounted FROM (%s) AS f)
                    SELECT (SELECT count(*) FROM (TABLE a EXCEPT ALL TABLE b) AS x)
                         + (SELECT count(*) FROM (TABLE b EXCEPT ALL TABLE a) AS y)
                         + (SELECT count(*) FROM a WHERE a.s IS NULL)',
                   segment_internal.figures_sql(s, as_of, src, disc, '', ''),
                   segment_internal.full_figures_sql(s, as_of, src, disc, ''))
        INTO n;
    RETURN n;
END
$$;

-- The same with lifetime value: refresh_run()'s summary columns (unit: time
-- unit and purchase period), every column compared as text (float8 prints
-- the shortest text that reads back as the same bits).
CREATE FUNCTION pg_temp.clv_diff(rel regclass, cust name, t name, a name, d name, st name, excl text[],
                                 as_of timestamptz, zone text, unit text)
    RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s       segment.segmentations := jsonb_populate_record(NULL::segment.segmentations,
                jsonb_build_object('name', 'x', 'orders', rel::text, 'customer', cust, 'ordered_at', t, 'amount', a,
                                   'discount', d, 'status', st, 'exclude_status', excl, 'clv', true,
                                   'clv_time_unit', unit, 'key_type', segment_internal.column_type(rel, cust)::text));
    src     text := format('FROM %s AS o WHERE o.%I IS NOT NULL AND o.%I IS NOT NULL AND o.%I IS NOT NULL', rel, cust, t, a);
    disc    text := 'NULL::bigint';
    summary text;
    n       bigint;
BEGIN
    PERFORM set_config('TimeZone', zone, true);
    IF st IS NOT NULL THEN
        src := src || format(' AND (o.%1$I IS NULL OR o.%1$I::text <> ALL (%2$L::text[]))', st, excl);
    END IF;
    IF d IS NOT NULL THEN
        disc := format('pg_catalog.count(*) FILTER (WHERE %s)',
                       CASE (SELECT y.typcategory FROM pg_type AS y WHERE y.oid = segment_internal.column_type(rel, d))
                           WHEN 'B' THEN format('o.%I', d) WHEN 'N' THEN format('o.%I > ''0''', d)
                           ELSE format('o.%I <> ''''', d) END);
    END IF;
    -- as refresh_run() builds it
    SELECT string_agg(format(',
               (segment.clv_summary(o.%1$I::timestamptz, o.%2$I::numeric, %3$L::timestamptz, %4$L, %4$L, %7$L::segment.time_zone)
                   FILTER (WHERE o.%2$I::numeric >= 0)).%5$I AS %6$I',
                             t, a, as_of, unit, f, 'clv_' || f, current_setting('TimeZone')), '' ORDER BY i)
      INTO summary
      FROM unnest(ARRAY['x', 't_x', 't_cal', 'mean_value']) WITH ORDINALITY AS u(f, i);
    EXECUTE format('WITH a AS (SELECT g.customer_id::text AS k, g.s::text AS s, g.discounted, g.clv_x,
                                      g.clv_t_x::text AS tx, g.clv_t_cal::text AS tc, g.clv_mean_value::text AS mv
                                 FROM (%s) AS g),
                         b AS (SELECT f.customer_id::text AS k, f.s::text AS s, f.discounted, f.clv_x,
                                      f.clv_t_x::text AS tx, f.clv_t_cal::text AS tc, f.clv_mean_value::text AS mv
                                 FROM (%s) AS f)
                    SELECT (SELECT count(*) FROM (TABLE a EXCEPT ALL TABLE b) AS x)
                         + (SELECT count(*) FROM (TABLE b EXCEPT ALL TABLE a) AS y)
                         + (SELECT count(*) FROM a WHERE a.s IS NULL)',
                   segment_internal.figures_sql(s, as_of, src, disc, summary, ''),
                   segment_internal.full_figures_sql(s, as_of, src, disc, summary))
        INTO n;
    RETURN n;
END
$$;

-- The engine runs (not its GROUP BY fallback), and finds the customers.
SELECT is((SELECT count(*) FROM segment_internal.refresh_figures('tap_rf.orders', NULL::bigint, 'customer_id', 'ordered_at',
                                                         'amount', 'discount', NULL, NULL, '2025-01-01', 'UTC')),
          (SELECT count(DISTINCT customer_id) FROM tap_rf.orders
            WHERE ordered_at IS NOT NULL AND amount IS NOT NULL),
          'one row per customer with orders');
SELECT is(pg_temp.diff('tap_rf.orders', 'customer_id', 'ordered_at', 'amount', 'discount', 'status',
                       '{cancelled,refunded}', as_of, zone), 0::bigint,
          format('integer keys, timestamptz, statuses excluded, as_of %s, %s: equal to the GROUP BY', as_of, zone))
  FROM unnest(ARRAY['UTC', 'Europe/Berlin', 'America/Los_Angeles', 'Pacific/Chatham', 'Asia/Kolkata']) AS zone,
       unnest(ARRAY[timestamptz '2025-01-01 00:00+00', '2024-06-15 12:00+00']) AS as_of;
SELECT is(pg_temp.diff('tap_rf.orders', 'customer_id', 'ordered_at', 'amount', NULL, NULL, NULL,
                       '2025-01-01', 'Europe/Berlin'), 0::bigint,
          'no discount or status configured: equal to the GROUP BY (discounted NULL)');
SELECT is(pg_temp.diff('tap_rf.orders', 'customer_id', 'ordered_at', 'amount', 'discount', 'status', NULL,
                       '2025-01-01', 'UTC'), 0::bigint,
          'a status column with a NULL exclude list: equal to the GROUP BY');
SELECT is(pg_temp.diff('tap_rf.orders_text', 'customer', 'placed', 'total', 'coupon', 'state', '{void}',
                       as_of, zone), 0::bigint,
          format('text keys, timestamp, boolean discounts, %s: equal to the GROUP BY', zone))
  FROM unnest(ARRAY['UTC', 'America/New_York', 'Asia/Tokyo']) AS zone,
       unnest(ARRAY[timestamptz '2024-05-01 00:00+00']) AS as_of;
SELECT is(pg_temp.diff('tap_rf.orders_date', 'cid', 'day', 'amount', 'code', NULL, NULL, as_of, zone), 0::bigint,
          format('dates, text discounts, %s: equal to the GROUP BY', zone))
  FROM unnest(ARRAY['UTC', 'Australia/Sydney', 'America/Los_Angeles']) AS zone,
       unnest(ARRAY[timestamptz '2024-09-01 00:00+00']) AS as_of;
-- Customers enough (80,000) for the table's array to be a large one: 16 MB,
-- aligned on 2 MB with huge pages asked for (segment_aligned_alloc()); with
-- lifetime value, their purchases fill blocks up to one of 4 MB too.
CREATE TABLE tap_rf.orders_many AS
SELECT 1 + i % 80000 AS customer_id,
       timestamptz '2024-01-01 00:00+00' + (i * 7919 % 7200) * interval '1 hour' AS ordered_at,
       round((1 + random() * 300)::numeric, 2) AS amount,
       CASE WHEN random() < 0.2 THEN 1.5 ELSE 0 END AS discount,
       CASE WHEN random() < 0.05 THEN 'cancelled' ELSE 'paid' END AS status
  FROM generate_series(1, 180000) AS i;
SELECT is(pg_temp.diff('tap_rf.orders_many', 'customer_id', 'ordered_at', 'amount', 'discount', 'status',
                       '{cancelled}', '2025-01-01', 'Europe/Berlin'), 0::bigint,
          '80,000 customers (a table of 16 MB, huge pages asked for): equal to the GROUP BY');
SELECT is(pg_temp.clv_diff('tap_rf.orders_many', 'customer_id', 'ordered_at', 'amount', 'discount', 'status',
                           '{cancelled}', '2025-01-01', 'Europe/Berlin', 'day'), 0::bigint,
          '80,000 customers with lifetime value (purchases in blocks up to 4 MB): equal to the GROUP BY');

-- Purchase days over 25 years (far wider than the window of days an entry
-- keeps, which then moves on and leaves its days to a sorted list of the
-- earlier ones): customers who buy every c days (windows moving by every
-- offset), stored in time order, in reverse order, in random order, and in
-- time order with a few orders from years back stored last; same-day
-- orders; some in a time zone whose dates go back at a transition.
CREATE TABLE tap_rf.orders_long (customer_id bigint, ordered_at timestamptz, amount numeric, discount numeric,
                                 status text);
INSERT INTO tap_rf.orders_long
SELECT c, t, a, 0, 'paid' FROM (
    SELECT c, timestamptz '2000-01-01 10:00+00' + (c % 7 + i * c) * interval '1 day'
                  + (random() * 20)::int * interval '1 hour' AS t,
           round((1 + random() * 50)::numeric, 2) AS a
      FROM generate_series(1, 700) AS c, generate_series(0, 9200) AS i
     WHERE c % 7 + i * c < 9200 AND i < 400) AS g
 ORDER BY CASE WHEN c % 4 = 0 THEN extract(epoch FROM t)
               WHEN c % 4 = 1 THEN -extract(epoch FROM t)
               WHEN c % 4 = 2 THEN random()
               ELSE extract(epoch FROM t) END;
INSERT INTO tap_rf.orders_long
SELECT c, timestamptz '2000-01-01' + (random() * 9000)::int * interval '1 day', 5, 1, 'paid'
  FROM generate_series(3, 700, 4) AS c, generate_series(1, 3);
SELECT ok((SELECT count(*) FILTER (WHERE (f.s).purchase_days > 320) > 20
             FROM segment_internal.refresh_figures('tap_rf.orders_long', NULL::bigint, 'customer_id', 'ordered_at',
                                                   'amount', 'discount', NULL, NULL, '2030-01-01', 'UTC') AS f),
          'customers with purchase days over far more than a window');
SELECT is(pg_temp.diff('tap_rf.orders_long', 'customer_id', 'ordered_at', 'amount', 'discount', 'status', NULL,
                       as_of, zone), 0::bigint,
          format('purchase days over 25 years, stored in and out of time order, as_of %s, %s: equal to the GROUP BY',
                 as_of, zone))
  FROM unnest(ARRAY['UTC', 'America/Sao_Paulo', 'Pacific/Apia']) AS zone,
       unnest(ARRAY[timestamptz '2030-01-01 00:00+00', '2012-06-15 12:00+00']) AS as_of;
SELECT is(pg_temp.clv_diff('tap_rf.orders_long', 'customer_id', 'ordered_at', 'amount', 'discount', NULL, NULL,
                           '2030-01-01', 'America/Sao_Paulo', unit), 0::bigint,
          format('lifetime value in %ss, purchase days over 25 years: equal to the GROUP BY', unit))
  FROM unnest(ARRAY['day', 'week']) AS unit;

-- One customer's 100,000 purchase days stored newest first, each one
-- before the window: appended to the earlier list, not inserted in order
-- (which would move the list for every order).
CREATE TABLE tap_rf.orders_desc (customer_id bigint, ordered_at timestamptz, amount numeric, discount numeric,
                                 status text);
INSERT INTO tap_rf.orders_desc
SELECT 1, timestamptz '2200-01-01 12:00+00' - i * interval '1 day', 1, 0, 'paid'
  FROM generate_series(0, 99999) AS i ORDER BY i;
INSERT INTO tap_rf.orders_desc SELECT 1, ordered_at, 2, 1, 'paid' FROM tap_rf.orders_desc WHERE amount = 1;
SELECT is(pg_temp.diff('tap_rf.orders_desc', 'customer_id', 'ordered_at', 'amount', 'discount', 'status', NULL,
                       '2300-01-01', 'UTC'), 0::bigint,
          '100,000 purchase days stored newest first, each twice: equal to the GROUP BY');

-- With lifetime value.  A shop of its own: amounts with many decimals (a
-- float sum depends on its order), several orders a day, refunds, zero
-- amounts, customers with refunds only (NULL summary), inserted in random
-- order.
CREATE TABLE tap_rf.orders_clv (customer_id bigint, ordered_at timestamptz, amount numeric, discount boolean);
INSERT INTO tap_rf.orders_clv
SELECT c, timestamptz '2024-01-01 00:00+00' + (random() * 3000)::int * interval '3 hours',
       CASE WHEN c % 50 = 0 OR random() < 0.08 THEN -round((random() * 40)::numeric, 2)
            WHEN random() < 0.03 THEN 0
            WHEN random() < 0.3 THEN round((random() * 1000)::numeric, 7)
            ELSE round((0.1 + random() * 200)::numeric, 2) END,
       random() < 0.2
  FROM (SELECT 1 + (random() * 1500)::int AS c FROM generate_series(1, 15000)) AS g
 ORDER BY random();
SELECT ok((SELECT count(*) FILTER (WHERE f.clv_x IS NULL) > 0 AND count(*) FILTER (WHERE f.clv_x > 3) > 100
             FROM segment_internal.refresh_figures('tap_rf.orders_clv', NULL::bigint, 'customer_id', 'ordered_at',
                                                   'amount', 'discount', NULL, NULL, '2025-01-01', 'UTC', 'day') AS f),
          'with lifetime value: customers with refunds only (NULL) and repeat buyers');
SELECT is(pg_temp.clv_diff('tap_rf.orders_clv', 'customer_id', 'ordered_at', 'amount', 'discount', NULL, NULL,
                           as_of, zone, unit), 0::bigint,
          format('lifetime value in %ss, as_of %s, %s: equal to the GROUP BY with clv_summary', unit, as_of, zone))
  FROM unnest(ARRAY['UTC', 'Europe/Berlin', 'Pacific/Chatham', 'America/Los_Angeles']) AS zone,
       unnest(ARRAY[timestamptz '2025-01-01 00:00+00', '2024-06-15 12:00+00']) AS as_of,
       unnest(ARRAY['day', 'week']) AS unit;
SELECT is(pg_temp.clv_diff('tap_rf.orders', 'customer_id', 'ordered_at', 'amount', 'discount', 'status',
                           '{cancelled,refunded}', '2025-01-01', 'Asia/Kolkata', unit), 0::bigint,
          format('lifetime value in %ss, statuses excluded: equal to the GROUP BY', unit))
  FROM unnest(ARRAY['day', 'week']) AS unit;
-- Periods of a day are the entry's purchase days while a customer has no
-- refund; the first refund copies them (window and earlier days) before its
-- own day is counted.  Read in this order: purchases over 600 days (the
-- window moves, days go to the earlier list), a refund on a day without a
-- purchase, purchases before the window and after; a refund first; a
-- refund on a day with a purchase, then one more on that day; purchases
-- newest first, then a refund.
CREATE TABLE tap_rf.orders_fork (seq serial, customer_id bigint, ordered_at timestamptz, amount numeric,
                                 discount boolean);
INSERT INTO tap_rf.orders_fork (customer_id, ordered_at, amount, discount)
SELECT c, timestamptz '2020-01-01 12:00+00' + d * interval '1 day', a, false
  FROM (SELECT 1 AS c, d, 10.5 + d AS a, d AS o FROM generate_series(0, 600, 3) AS d
        UNION ALL VALUES (1, 1000, -7.25, 1000), (1, 50, 3.1, 1001), (1, 1001, 4.2, 1002), (1, 6, -1, 1003),
                         (1, 2, 5.5, 1004),
                         (2, 10, -3, 0), (2, 400, 8, 1), (2, 10, 2, 2), (2, 20, 1.5, 3),
                         (3, 100, 9, 0), (3, 100, -9, 1), (3, 100, 0, 2), (3, 700, 2.25, 3)
        UNION ALL SELECT 4, 900 - d, 1 + d / 7.0, d FROM generate_series(0, 800, 2) AS d
        UNION ALL VALUES (4, 901, -2, 1000), (4, 5, 6, 1001)
        UNION ALL SELECT 5, d, 2.5, d FROM generate_series(0, 900, 5) AS d) AS g(c, d, a, o)
 ORDER BY c, o;
SELECT is(pg_temp.clv_diff('tap_rf.orders_fork', 'customer_id', 'ordered_at', 'amount', 'discount', NULL, NULL,
                           '2023-01-01', 'UTC', unit), 0::bigint,
          format('lifetime value in %ss, refunds after long runs of purchases and first: equal to the GROUP BY', unit))
  FROM unnest(ARRAY['day', 'week']) AS unit;
SELECT is(pg_temp.clv_diff('tap_rf.orders_text', 'customer', 'placed', 'total', 'coupon', 'state', '{void}',
                           '2024-05-01', 'America/New_York', 'week'), 0::bigint,
          'lifetime value, text keys, timestamp, integer amounts: equal to the GROUP BY');
SELECT is(pg_temp.clv_diff('tap_rf.orders_date', 'cid', 'day', 'amount', 'code', NULL, NULL,
                           '2024-09-01', 'Australia/Sydney', 'day'), 0::bigint,
          'lifetime value, dates: equal to the GROUP BY');
-- The engine keeps no list of purchases: per customer its purchase periods
-- (bits of a window), the first and last, and the exact sums of the first
-- period's amounts and of the later ones', as clv_summary sums them.
-- Amounts from 1e-300 to 1e300 (sums wider than 126 bits), periods over 12
-- years (the window moves, earlier periods are listed), customers stored
-- newest first (each order a new first period), refunds between.
CREATE TABLE tap_rf.orders_wide (customer_id bigint, ordered_at timestamptz, amount numeric);
INSERT INTO tap_rf.orders_wide
SELECT c, timestamptz '2013-01-01 00:00+00' + (CASE WHEN c % 3 = 0 THEN 4400 - i ELSE (random() * 4400)::int END)
                                              * interval '1 day' + (random() * 20)::int * interval '1 hour',
       CASE WHEN random() < 0.05 THEN -1
            WHEN c % 4 = 0 THEN (random() * 10 ^ (random() * 600 - 300))::numeric
            WHEN c % 4 = 1 THEN round((random() * 10 ^ (random() * 40 - 20))::numeric, 30)
            ELSE round((random() * 500)::numeric, 2) END
  FROM generate_series(1, 60) AS c, generate_series(1, 400) AS i
 ORDER BY c % 3 = 0, CASE WHEN c % 3 = 0 THEN i END, random();
SELECT is(pg_temp.clv_diff('tap_rf.orders_wide', 'customer_id', 'ordered_at', 'amount', NULL, NULL, NULL,
                           '2025-06-01', 'UTC', unit), 0::bigint,
          format('lifetime value in %ss, amounts from 1e-300 to 1e300 over 12 years, some newest first: equal to the GROUP BY', unit))
  FROM unnest(ARRAY['day', 'week']) AS unit;
SELECT ok((SELECT count(*) FILTER (WHERE f.clv_mean_value > 1e200) > 0 AND count(*) FILTER (WHERE f.clv_x > 300) > 10
             FROM segment_internal.refresh_figures('tap_rf.orders_wide', NULL::bigint, 'customer_id', 'ordered_at',
                                                   'amount', NULL, NULL, NULL, '2025-06-01', 'UTC', 'day') AS f),
          'the wide amounts and the long histories are there');
-- A GROUP BY that sorts hands each customer's orders to clv_summary in
-- another order: the same floats (rows sorted by day, then amount).
SET LOCAL enable_hashagg = off;
SELECT is(pg_temp.clv_diff('tap_rf.orders_clv', 'customer_id', 'ordered_at', 'amount', 'discount', NULL, NULL,
                           '2025-01-01', 'UTC', unit), 0::bigint,
          format('lifetime value in %ss, the GROUP BY sorting: equal', unit))
  FROM unnest(ARRAY['day', 'week']) AS unit;
RESET enable_hashagg;
-- A key without a hash function: the engine runs the GROUP BY itself.
CREATE TABLE tap_rf.orders_bit AS
SELECT (customer_id % 256)::int::bit(8) AS b, ordered_at, amount FROM tap_rf.orders_clv
 WHERE ordered_at <= '2025-01-01';
SELECT is((SELECT count(*) FROM (
               SELECT f.b::text, f.s::text, f.clv_x, f.clv_t_x::text, f.clv_t_cal::text, f.clv_mean_value::text
                 FROM segment_internal.refresh_figures('tap_rf.orders_bit', NULL::bit(8), 'b', 'ordered_at', 'amount',
                                                       NULL, NULL, NULL, '2025-01-01', 'UTC', 'week')
                      AS f(b, s, discounted, clv_x, clv_t_x, clv_t_cal, clv_mean_value)
               EXCEPT
               SELECT o.b::text, segment.rfm(o.ordered_at, o.amount, 'UTC')::text, c.x, c.t_x::text, c.t_cal::text,
                      c.mean_value::text
                 FROM tap_rf.orders_bit AS o,
                      LATERAL (SELECT (segment.clv_summary(p.ordered_at, p.amount, '2025-01-01', 'week', 'week', 'UTC')).*
                                 FROM tap_rf.orders_bit AS p WHERE p.b = o.b AND p.amount >= 0) AS c
                GROUP BY o.b, c.x, c.t_x, c.t_cal, c.mean_value) AS d),
          0::bigint, 'lifetime value, a key without a hash function (the GROUP BY): equal');

-- Past the hash memory limit: orders of further customers spill.
SET LOCAL work_mem = '64kB';
SET LOCAL hash_mem_multiplier = 1;
SELECT is(pg_temp.diff('tap_rf.orders', 'customer_id', 'ordered_at', 'amount', 'discount', 'status',
                       '{cancelled,refunded}', '2025-01-01', zone), 0::bigint,
          format('spilled to temporary files, %s: equal to the GROUP BY', zone))
  FROM unnest(ARRAY['UTC', 'Pacific/Chatham']) AS zone;
SELECT is(pg_temp.diff('tap_rf.orders_text', 'customer', 'placed', 'total', 'coupon', 'state', '{void}',
                       '2024-05-01', 'UTC'), 0::bigint,
          'text keys spilled: equal to the GROUP BY');
SELECT is(pg_temp.diff('tap_rf.orders_long', 'customer_id', 'ordered_at', 'amount', 'discount', 'status',
                       NULL, '2030-01-01', 'UTC'), 0::bigint,
          'purchase days over 25 years spilled: equal to the GROUP BY');
SELECT is(pg_temp.clv_diff('tap_rf.orders_clv', 'customer_id', 'ordered_at', 'amount', 'discount', NULL, NULL,
                           '2025-01-01', zone, unit), 0::bigint,
          format('lifetime value in %ss spilled, %s: equal to the GROUP BY', unit, zone))
  FROM unnest(ARRAY['UTC', 'Pacific/Chatham']) AS zone, unnest(ARRAY['day', 'week']) AS unit;
SELECT is(pg_temp.clv_diff('tap_rf.orders_text', 'customer', 'placed', 'total', 'coupon', 'state', '{void}',
                           '2024-05-01', 'UTC', 'day'), 0::bigint,
          'lifetime value, text keys spilled: equal to the GROUP BY');
-- Keys chosen so that their hashes collide (k * (2^32 + 1) all hash alike):
-- the spill cannot split them, so past its last level the table takes
-- them all instead of failing.
CREATE TABLE tap_rf.orders_collide (customer_id bigint, ordered_at timestamptz, amount numeric,
                                    discount numeric, status text);
INSERT INTO tap_rf.orders_collide
SELECT c * 4294967297, timestamptz '2024-01-01' + (c % 50 + j) * interval '1 day', 10 + j, 0, 'paid'
  FROM generate_series(1, 12000) AS c, generate_series(1, 2) AS j;
SELECT is(pg_temp.diff('tap_rf.orders_collide', 'customer_id', 'ordered_at', 'amount', 'discount', 'status',
                       NULL, '2025-01-01', 'UTC'), 0::bigint,
          'keys whose hashes collide, spilled to the last level: equal to the GROUP BY');
SELECT is((SELECT count(*) FROM segment.rfm_figures('tap_rf.orders_collide', 'customer_id', 'ordered_at', 'amount',
                                                    '2025-01-01')), 12000::bigint,
          'rfm_figures() with the same keys: every customer');
RESET work_mem;
RESET hash_mem_multiplier;

-- Orders the rfm aggregate refuses are refused the same way.
CREATE TABLE tap_rf.bad (c int, t timestamptz, a numeric);
INSERT INTO tap_rf.bad VALUES (1, '2024-01-01', 'NaN');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC')$$,
                 '22023', 'order amount must be a finite number', 'a NaN amount: the rfm aggregate''s error');
UPDATE tap_rf.bad SET t = '-infinity', a = 1;
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                         'infinity', 'UTC')$$,
                 '22023', 'as_of must be a finite timestamp', 'an infinite as_of');
SELECT throws_like($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                           '2025-01-01', 'UTC')$$,
                   '%must be finite%', 'an infinite order time: the rfm aggregate''s error');

-- Arguments a caller could get wrong.
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures(NULL, NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC')$$,
                 '22004', 'orders must not be null', 'NULL orders');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', NULL)$$,
                 '22004', 'time_zone must not be null', 'NULL time zone');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'nope', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC')$$,
                 '42703', NULL, 'a missing customer column');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', 'nope', NULL, NULL,
                                                         '2025-01-01', 'UTC')$$,
                 '42703', NULL, 'a missing discount column');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, 'nope', '{x}',
                                                         '2025-01-01', 'UTC')$$,
                 '42703', NULL, 'a missing status column');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::text, 'c', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC')$$,
                 '42804', NULL, 'a key witness of another type than the customer column');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 'a', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC')$$,
                 '42804', NULL, 'an order time that is no timestamp');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 't', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC')$$,
                 '42804', NULL, 'an amount that is no number');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'Not/AZone')$$,
                 '22023', NULL, 'an unknown time zone');

-- The lifetime-value variant's own argument, and the amounts clv_summary refuses.
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC', NULL)$$,
                 '22004', 'clv_time_unit must not be null', 'NULL clv_time_unit');
SELECT throws_ok($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                         '2025-01-01', 'UTC', 'month')$$,
                 '22023', 'unrecognized time unit "month"', 'an unknown clv_time_unit');
UPDATE tap_rf.bad SET t = '2024-01-01', a = '1e400';
SELECT throws_like($$SELECT * FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                           '2025-01-01', 'UTC', 'day')$$,
                   '%out of range%', 'an amount beyond a double: clv_summary''s error');
UPDATE tap_rf.bad SET a = '-1e400';
SELECT is((SELECT row(f.clv_x, f.clv_t_x, f.clv_t_cal, f.clv_mean_value)::text
             FROM segment_internal.refresh_figures('tap_rf.bad', NULL::int, 'c', 't', 'a', NULL, NULL, NULL,
                                                   '2025-01-01', 'UTC', 'day') AS f),
          '(,,,)', 'a refund beyond a double is no purchase (no error, NULL summary)');

-- as_of is written into the refresh's SQL: with DateStyle Postgres the
-- session would print 17:30 IST for India, which reads back as Israel's
-- time, 3.5 h later.  An order 2 h after as_of must not count.
CREATE TABLE tap_rf_ist (customer_id integer, ordered_at timestamptz, amount numeric);
INSERT INTO tap_rf_ist VALUES (1, '2026-03-01 12:00+05:30', 10), (1, '2026-03-01 19:30+05:30', 20);
SELECT segment.configure('tap_rf_ist', 'customer_id', 'ordered_at', 'amount', segmentation => 'tap_rf_ist');
SET LOCAL TimeZone = 'Asia/Kolkata';
SET LOCAL DateStyle = 'Postgres, DMY';
SELECT is((SELECT r.customers FROM segment.refresh('tap_rf_ist', '2026-03-01 17:30+05:30', mode => 'full') AS r), 1::bigint,
          'a refresh under DateStyle Postgres in India');
SELECT is((SELECT p.frequency FROM segment.profile_tap_rf_ist AS p), 1::bigint,
          'counts only the order before as_of');
-- rfm_append() (src/rfm_summary.c): a customer's figures with orders on later
-- days appended equal rfm() over all of them, to the bit, in two time zones.
SET LOCAL TimeZone = 'America/New_York';
SELECT is((SELECT count(*) FROM (
              SELECT o.customer_id,
                     segment_internal.rfm_append(
                         segment.rfm(o.ordered_at, o.amount) FILTER (WHERE o.ordered_at < d.cut),
                         segment.rfm(o.ordered_at, o.amount) FILTER (WHERE o.ordered_at >= d.cut),
                         pg_catalog.max(o.ordered_at) FILTER (WHERE o.ordered_at < d.cut)::date
                         = pg_catalog.min(o.ordered_at) FILTER (WHERE o.ordered_at >= d.cut)::date)::text AS appended,
                     segment.rfm(o.ordered_at, o.amount)::text AS whole
                FROM tap_rf.orders AS o
               -- at noon: a customer's orders of that day split
               CROSS JOIN (SELECT timestamptz '2024-06-01 12:00' AS cut) AS d
               WHERE o.customer_id IS NOT NULL AND o.ordered_at IS NOT NULL AND o.amount IS NOT NULL
               GROUP BY o.customer_id
              HAVING pg_catalog.count(*) FILTER (WHERE o.ordered_at < d.cut) > 0
                 AND pg_catalog.count(*) FILTER (WHERE o.ordered_at >= d.cut) > 0) AS x
            WHERE x.appended IS DISTINCT FROM x.whole), 0::bigint,
          'rfm_append() of the orders before and after a time (mid-day) equals rfm() of all of them (New York)');
SET LOCAL TimeZone = 'Asia/Kolkata';
SELECT is((SELECT count(*) FROM (
              SELECT segment_internal.rfm_append(
                         segment.rfm(o.ordered_at, o.amount) FILTER (WHERE o.ordered_at::date < date '2024-03-15'),
                         segment.rfm(o.ordered_at, o.amount) FILTER (WHERE o.ordered_at::date >= date '2024-03-15'), false)::text AS appended,
                     segment.rfm(o.ordered_at, o.amount)::text AS whole
                FROM tap_rf.orders AS o
               WHERE o.customer_id IS NOT NULL AND o.ordered_at IS NOT NULL AND o.amount IS NOT NULL
               GROUP BY o.customer_id
              HAVING pg_catalog.count(*) FILTER (WHERE o.ordered_at::date < date '2024-03-15') > 0
                 AND pg_catalog.count(*) FILTER (WHERE o.ordered_at::date >= date '2024-03-15') > 0) AS x
            WHERE x.appended IS DISTINCT FROM x.whole), 0::bigint,
          '(and before and after a day in Kolkata)');
RESET TimeZone;
SELECT throws_ok($$SELECT segment_internal.rfm_append(('2024-01-02', '2024-01-05', 2, 2, 10, 5, 3)::segment.rfm_summary,
                                                     ('2024-01-04', '2024-01-06', 1, 1, 1, 1, NULL)::segment.rfm_summary, false)$$,
                 '22023', 'appended orders must come after the stored ones', 'rfm_append(): appended orders before the stored ones');
SELECT throws_ok($$SELECT segment_internal.rfm_append(('2024-01-05', '2024-01-02', 2, 2, 10, 5, 3)::segment.rfm_summary,
                                                     ('2024-02-04', '2024-02-06', 1, 1, 1, 1, NULL)::segment.rfm_summary, false)$$,
                 '22023', 'invalid rfm_summary to append', 'a crafted summary: last before first');
SELECT throws_ok($$SELECT segment_internal.rfm_append(('2024-01-02', '2024-01-05', 0, 2, 10, 5, 3)::segment.rfm_summary,
                                                     ('2024-02-04', '2024-02-06', 1, 1, 1, 1, NULL)::segment.rfm_summary, false)$$,
                 '22023', 'invalid rfm_summary to append', 'a crafted summary: no orders');
SELECT throws_ok($$SELECT segment_internal.rfm_append(('2024-01-02', '2024-01-05', 2, 3, 10, 5, 3)::segment.rfm_summary,
                                                     ('2024-02-04', '2024-02-06', 1, 1, 'NaN', 1, NULL)::segment.rfm_summary, false)$$,
                 '22023', 'invalid rfm_summary to append', 'crafted summaries: more days than orders, a NaN sum');
SELECT throws_ok($$SELECT segment_internal.rfm_append(('2024-01-02', NULL, 2, 2, 10, 5, 3)::segment.rfm_summary,
                                                     ('2024-02-04', '2024-02-06', 1, 1, 1, 1, NULL)::segment.rfm_summary, false)$$,
                 '22023', 'invalid rfm_summary to append', 'a crafted summary: a NULL field');
SELECT throws_ok($$SELECT segment_internal.rfm_append(('2024-01-02', '2024-01-05', 9223372036854775807, 2, 10, 5, 3)::segment.rfm_summary,
                                                     ('2024-02-04', '2024-02-06', 1, 1, 1, 1, NULL)::segment.rfm_summary, false)$$,
                 '22003', 'order count out of range', 'a crafted summary: the order count overflows');

SELECT * FROM finish();
ROLLBACK;
