-- The per-customer rfm(ordered_at, amount) aggregate.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE rfm_orders (customer_id int, ordered_at timestamptz, amount numeric);
INSERT INTO rfm_orders VALUES
    (1, '2024-01-01 10:00', 10.00),
    (1, '2024-01-01 18:00', 5.50),     -- same day: one purchase day, two orders
    (1, '2024-01-31 10:00', 20.00),
    (1, '2024-03-01 10:00', 4.50),
    (2, '2024-03-01 00:00', 100),
    (3, NULL, 3),                       -- skipped: no timestamp
    (3, '2024-01-05', NULL),            -- skipped: no amount
    (4, '2024-02-01', 50),
    (4, '2024-02-10', -20);             -- a refund is summed as it is

SELECT customer_id, (r).*
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r
          FROM rfm_orders GROUP BY customer_id) AS s
 ORDER BY customer_id;

-- The figures agree with plain SQL.
SELECT count(*) AS mismatches
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r,
               min(ordered_at) AS first_order, max(ordered_at) AS last_order,
               count(*) AS orders, count(DISTINCT ordered_at::date) AS days,
               sum(amount) AS monetary, avg(amount) AS mean_amount
          FROM rfm_orders
         WHERE ordered_at IS NOT NULL AND amount IS NOT NULL
         GROUP BY customer_id) AS s
 WHERE (r).first_order <> first_order OR (r).last_order <> last_order
    OR (r).orders <> orders OR (r).purchase_days <> days
    OR (r).monetary <> monetary OR (r).mean_amount <> mean_amount;

-- Purchase days are calendar days in the session's time zone.
SET timezone = 'America/New_York';
SELECT (segment.rfm(t, 1)).purchase_days
  FROM (VALUES (timestamptz '2024-01-01 23:00+00'), ('2024-01-02 01:00+00')) AS v(t);
SET timezone = 'UTC';
SELECT (segment.rfm(t, 1)).purchase_days
  FROM (VALUES (timestamptz '2024-01-01 23:00+00'), ('2024-01-02 01:00+00')) AS v(t);

-- date and timestamp columns and integer amounts are cast implicitly.
SELECT (segment.rfm(d, i)).* FROM (VALUES (date '2024-01-01', 3), ('2024-01-11', 4)) AS v(d, i);

-- No rows, or only NULLs: NULL.
SELECT segment.rfm(ordered_at, amount) IS NULL AS is_null FROM rfm_orders WHERE false;
SELECT segment.rfm(ordered_at, amount) IS NULL AS is_null FROM rfm_orders WHERE customer_id = 3;

-- A customer with many orders on many days (the days array grows past its inline room).
SELECT (r).orders, (r).purchase_days, (r).mean_gap_days, (r).monetary
  FROM (SELECT segment.rfm(timestamptz '2024-01-01' + (i % 100) * interval '1 day', i) AS r
          FROM generate_series(1, 1000) AS i) AS s;

-- As window aggregates (the final functions leave the state unchanged, so a
-- running frame can call them row after row).
SELECT i, (segment.rfm(t, a) OVER w).orders, (segment.rfm(t, a) OVER w).purchase_days,
       (segment.rfm(t, a) OVER w).monetary, segment.breaks(a::float8, 2) OVER w AS median
  FROM (SELECT i, timestamptz '2024-01-01' + (i / 2) * interval '1 day' AS t, i::numeric AS a
          FROM generate_series(1, 6) AS i) AS s
WINDOW w AS (ORDER BY i ROWS BETWEEN 2 PRECEDING AND CURRENT ROW);

-- Bad input.
SELECT segment.rfm(t, 1) FROM (VALUES (timestamptz 'infinity')) AS v(t);
SELECT segment.rfm(t, 1) FROM (VALUES (timestamptz '-infinity')) AS v(t);
SELECT segment.rfm(now(), a) FROM (VALUES (numeric 'NaN')) AS v(a);
SELECT segment.rfm(now(), a) FROM (VALUES (numeric 'Infinity')) AS v(a);
SELECT segment.rfm(now(), 'abc');
