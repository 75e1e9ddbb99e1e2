-- clv_summary: orders to (x, t_x, t_cal, mean_value) per customer.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE cs_orders (customer_id int, ordered_at timestamptz, amount numeric);
INSERT INTO cs_orders VALUES
    (1, '2024-01-01 09:00', 10.00),
    (1, '2024-01-01 18:00', 5.00),      -- same day: one purchase of 15.00
    (1, '2024-01-03 10:00', 20.00),     -- repeat 1 (a Wednesday)
    (1, '2024-01-04 10:00', 4.00),      -- repeat 2, same ISO week as the one before
    (1, '2024-01-15 10:00', 30.00),     -- repeat 3
    (2, '2024-01-20 12:00', 99.00),     -- a one-time buyer
    (3, '2024-01-29 00:00', 0.00),      -- free orders count as purchases
    (3, '2024-02-01 00:00', 8.00),
    (4, NULL, 3),                       -- skipped: no timestamp
    (4, '2024-01-05', NULL);            -- skipped: no amount

-- Days (default): x = distinct days - 1; mean of the repeat days' totals.
SELECT customer_id, (s).*
  FROM (SELECT customer_id, segment.clv_summary(ordered_at, amount, '2024-01-31 23:00') AS s
          FROM cs_orders WHERE ordered_at <= '2024-01-31 23:00' GROUP BY customer_id) AS q
 ORDER BY customer_id;

-- Weeks as the time unit, purchases still counted on days (the CDNOW convention).
SELECT customer_id, (segment.clv_summary(ordered_at, amount, '2024-02-04', 'week')).*
  FROM cs_orders GROUP BY customer_id ORDER BY customer_id;

-- Weeks as the purchase period too (ISO weeks, Monday first): customer 1's
-- orders of 1, 3 and 4 January are one purchase; t_x and T run between the
-- periods' Mondays (as_of, Sunday 4 February, is in the week of 29 January).
SELECT customer_id, (segment.clv_summary(ordered_at, amount, '2024-02-04', 'week', 'week')).*
  FROM cs_orders GROUP BY customer_id ORDER BY customer_id;

-- Days are calendar days in the session's time zone.
SET timezone = 'America/New_York';
SELECT (segment.clv_summary(t, 1, '2024-01-05 12:00+00')).*
  FROM (VALUES (timestamptz '2024-01-01 23:00+00'), ('2024-01-02 01:00+00')) AS v(t);
SET timezone = 'UTC';
SELECT (segment.clv_summary(t, 1, '2024-01-05 12:00+00')).*
  FROM (VALUES (timestamptz '2024-01-01 23:00+00'), ('2024-01-02 01:00+00')) AS v(t);

-- A first purchase on the as_of day: T = 0.  date columns and integer amounts cast.
SELECT (segment.clv_summary(d, i, '2024-03-01')).*
  FROM (VALUES (date '2024-03-01', 3)) AS v(d, i);

-- No rows, or only NULLs: NULL.
SELECT segment.clv_summary(ordered_at, amount, now()) IS NULL AS no_rows FROM cs_orders WHERE false;
SELECT segment.clv_summary(ordered_at, amount, now()) IS NULL AS only_nulls
  FROM cs_orders WHERE customer_id = 4;

-- Against plain SQL on generated orders, many customers, many days.
SELECT setseed(0.42);
CREATE TABLE cs_gen AS
SELECT (1 + floor(random() * 400))::int AS customer_id,
       timestamptz '2023-01-01' + random() * interval '500 days' AS ordered_at,
       round((1 + random() * 100)::numeric, 2) AS amount
  FROM generate_series(1, 6000);
CREATE TABLE cs_ref AS
WITH days AS (
    SELECT customer_id, ordered_at::date AS day, sum(amount) AS total
      FROM cs_gen GROUP BY customer_id, ordered_at::date
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY day) AS k,
           min(day) OVER (PARTITION BY customer_id) AS first_day
      FROM days
)
SELECT customer_id, (count(*) - 1)::int AS x, (max(day) - min(day))::float8 AS t_x,
       (date '2024-06-01' - min(day))::float8 AS t_cal,
       coalesce(avg(total) FILTER (WHERE k > 1), 0)::float8 AS mean_value
  FROM ranked GROUP BY customer_id;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE s.x = r.x AND s.t_x = r.t_x AND s.t_cal = r.t_cal
                          AND abs(s.mean_value - r.mean_value) < 1e-9) AS equal
  FROM (SELECT customer_id, (segment.clv_summary(ordered_at, amount, '2024-06-01')).*
          FROM cs_gen GROUP BY customer_id) AS s
  JOIN cs_ref AS r USING (customer_id);

-- Under a parallel plan that splits customers' orders across workers (the
-- combine function runs), the result is the same.
CREATE TABLE cs_serial AS
SELECT customer_id, segment.clv_summary(ordered_at, amount, '2024-06-01') AS s
  FROM cs_gen GROUP BY customer_id;
ANALYZE cs_gen;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
SELECT customer_id, segment.clv_summary(ordered_at, amount, '2024-06-01')
  FROM cs_gen GROUP BY customer_id;
SELECT count(*) AS differences
  FROM cs_serial AS a
  FULL JOIN (SELECT customer_id, segment.clv_summary(ordered_at, amount, '2024-06-01') AS s
               FROM cs_gen GROUP BY customer_id) AS b USING (customer_id)
 WHERE a.s IS DISTINCT FROM b.s;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET enable_hashagg;

-- Errors.
SELECT segment.clv_summary(ordered_at, amount, '2024-01-10') FROM cs_orders WHERE customer_id = 1;
SELECT segment.clv_summary(t, -5, '2024-02-01') FROM (VALUES (timestamptz '2024-01-01')) AS v(t);
SELECT segment.clv_summary(t, 'NaN', '2024-02-01') FROM (VALUES (timestamptz '2024-01-01')) AS v(t);
SELECT segment.clv_summary(t, 1, '2024-02-01') FROM (VALUES (timestamptz 'infinity')) AS v(t);
SELECT segment.clv_summary(t, 1, NULL) FROM (VALUES (timestamptz '2024-01-01')) AS v(t);
SELECT segment.clv_summary(t, 1, 'infinity') FROM (VALUES (timestamptz '2024-01-01')) AS v(t);
SELECT segment.clv_summary(t, 1, '2024-02-01', 'month') FROM (VALUES (timestamptz '2024-01-01')) AS v(t);
SELECT segment.clv_summary(t, 1, '2024-02-01', 'day', NULL) FROM (VALUES (timestamptz '2024-01-01')) AS v(t);
SELECT segment.clv_summary(t, 1, a) FROM (VALUES (timestamptz '2024-01-01', timestamptz '2024-02-01'),
                                                 ('2024-01-02', '2024-02-02')) AS v(t, a);
