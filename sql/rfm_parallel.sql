-- rfm and breaks under a parallel plan equal the serial results.
SET timezone = 'UTC';
CREATE TABLE par_orders AS
SELECT (i % 5000) AS customer_id,
       timestamptz '2023-01-01' + ((i * 7919) % 730) * interval '1 day'
           + ((i * 104729) % 86400) * interval '1 second' AS ordered_at,
       round(((i * 31337) % 50000) / 100.0, 2) AS amount
  FROM generate_series(1::bigint, 200000) AS i;
ANALYZE par_orders;

CREATE TABLE serial_result AS
SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM par_orders GROUP BY customer_id;
CREATE TABLE serial_whole AS
SELECT segment.rfm(ordered_at, amount) AS r,
       segment.breaks(amount::float8) AS b, segment.breaks(amount::float8, 10) AS b10
  FROM par_orders;

SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_hashagg = off;   -- a sorted partial group aggregate splits customers' rows

-- The whole-table aggregates split every customer's rows across workers:
-- combine, serial and deserial all run.
EXPLAIN (COSTS OFF)
SELECT segment.rfm(ordered_at, amount), segment.breaks(amount::float8) FROM par_orders;
SELECT p.r = s.r AS rfm_equal, p.b = s.b AS breaks_equal, p.b10 = s.b10 AS breaks10_equal
  FROM serial_whole AS s,
       (SELECT segment.rfm(ordered_at, amount) AS r,
               segment.breaks(amount::float8) AS b, segment.breaks(amount::float8, 10) AS b10
          FROM par_orders) AS p;

EXPLAIN (COSTS OFF)
SELECT customer_id, segment.rfm(ordered_at, amount) FROM par_orders GROUP BY customer_id;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE p.r IS DISTINCT FROM s.r) AS mismatches
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r
          FROM par_orders GROUP BY customer_id) AS p
  JOIN serial_result AS s USING (customer_id);

-- Money sums in both modes (128-bit integer, numeric beyond it) through
-- serial, deserial and combine: some customers' sums pass 10^37 units.
CREATE TABLE par_big AS
SELECT customer_id, ordered_at,
       CASE WHEN customer_id % 7 = 0 AND amount > 250 THEN amount * 1e34 ELSE amount END AS amount
  FROM par_orders;
ANALYZE par_big;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE (p.r).monetary::text <> s.total::text
                           OR (p.r).mean_amount::text <> s.mean::text) AS mismatches,
       count(*) FILTER (WHERE s.total > 1e35) AS beyond_integers
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r
          FROM par_big GROUP BY customer_id) AS p
  JOIN (SELECT customer_id, sum(amount) AS total, avg(amount) AS mean
          FROM par_big GROUP BY customer_id) AS s USING (customer_id);
SELECT (segment.rfm(ordered_at, amount)).monetary = sum(amount) AS whole_equal FROM par_big;

-- debug_parallel_query (force_parallel_mode before PostgreSQL 16) runs even
-- a small aggregate in a worker, through the serial functions.
SET enable_hashagg = on;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'regress', false) IS NOT NULL AS forced;
SELECT count(*) FILTER (WHERE p.r IS DISTINCT FROM s.r) AS mismatches
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r
          FROM par_orders GROUP BY customer_id) AS p
  JOIN serial_result AS s USING (customer_id);
