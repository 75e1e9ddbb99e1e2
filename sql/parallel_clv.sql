-- The lifetime-value aggregates under parallel plans: clv_summary per
-- customer (a customer's orders split across workers, the combine function
-- joins them), bgnbd_fit and gamma_gamma_fit across customers (each worker
-- collects part of the customers, the leader combines the row lists and
-- fits).  Results are compared with the serial plan's.
--
-- Tolerances: clv_summary's x, t_x and t_cal are counts and whole days, so
-- they must be equal; mean_value is a float8 sum whose terms a parallel plan
-- adds in another order, so it may differ in the last bits (relative 1e-12).
-- The fits are maximum-likelihood optimisations over the same set of rows;
-- parameters and log-likelihood must agree to a relative 1e-9 (the fits sort
-- their rows, so in practice they are identical).
SET timezone = 'UTC';
SET extra_float_digits = 0;

-- A shop of 12,000 customers, each with a first order in 2024, a personal
-- pace, chance of leaving after each order and typical basket (seeded).
SELECT setseed(0.125);
CREATE TABLE par_clv_customers AS
SELECT id AS customer_id,
       timestamptz '2024-01-01' + random() * interval '360 days' AS first_order,
       4 + 90 * random() ^ 2 AS pace_days,
       0.05 + 0.5 * random() AS churn,
       15 + 150 * random() ^ 3 AS basket
  FROM generate_series(1, 12000) AS id;
CREATE TABLE par_clv_orders AS
WITH RECURSIVE o(customer_id, ordered_at, pace_days, churn, basket, alive) AS (
    SELECT customer_id, first_order, pace_days, churn, basket, true FROM par_clv_customers
  UNION ALL
    SELECT customer_id, ordered_at - ln(1 - random()) * pace_days * interval '1 day',
           pace_days, churn, basket, random() >= churn
      FROM o
     WHERE alive AND ordered_at < timestamptz '2025-06-30'
)
SELECT customer_id, ordered_at, round((basket * (0.5 + random()))::numeric, 2) AS amount
  FROM o WHERE ordered_at < timestamptz '2025-06-30';
ANALYZE par_clv_orders;
SELECT count(*) > 50000 AS enough_orders FROM par_clv_orders;

-- Serial results.
SET max_parallel_workers_per_gather = 0;
CREATE TABLE par_clv_serial_summary AS
SELECT customer_id, (segment.clv_summary(ordered_at, amount, '2025-06-30')).*
  FROM par_clv_orders GROUP BY customer_id;
ANALYZE par_clv_serial_summary;
CREATE TABLE par_clv_serial_fits AS
SELECT segment.bgnbd_fit(x, t_x, t_cal) AS bg, segment.gamma_gamma_fit(x, mean_value) AS gg,
       segment.bgnbd_fit(x, t_x, t_cal, 0.01) AS bg_pen
  FROM par_clv_serial_summary;
SELECT (bg).converged AS bg_converged, (bg).customers AS bg_customers,
       (gg).converged AS gg_converged, (gg).customers AS gg_customers
  FROM par_clv_serial_fits;

-- Compares fits with the serial ones: true when every parameter and the
-- log-likelihood are within a relative 1e-9 and the counts are equal.
CREATE FUNCTION par_clv_close(a float8, b float8) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$ SELECT abs(a - b) <= 1e-9 * greatest(abs(a), abs(b), 1e-300) $$;
CREATE FUNCTION par_clv_compare(bg segment.bgnbd_model, gg segment.gamma_gamma_model,
                                bg_pen segment.bgnbd_model)
    RETURNS TABLE (bgnbd_equal boolean, gamma_gamma_equal boolean, penalized_equal boolean)
    LANGUAGE sql AS $$
    SELECT par_clv_close((bg).r, (s.bg).r) AND par_clv_close((bg).alpha, (s.bg).alpha)
           AND par_clv_close((bg).a, (s.bg).a) AND par_clv_close((bg).b, (s.bg).b)
           AND par_clv_close((bg).log_likelihood, (s.bg).log_likelihood)
           AND (bg).customers = (s.bg).customers AND (bg).converged = (s.bg).converged,
           par_clv_close((gg).p, (s.gg).p) AND par_clv_close((gg).q, (s.gg).q)
           AND par_clv_close((gg).v, (s.gg).v)
           AND par_clv_close((gg).log_likelihood, (s.gg).log_likelihood)
           AND (gg).customers = (s.gg).customers AND (gg).converged = (s.gg).converged,
           par_clv_close((bg_pen).r, (s.bg_pen).r) AND par_clv_close((bg_pen).a, (s.bg_pen).a)
           AND par_clv_close((bg_pen).alpha, (s.bg_pen).alpha)
           AND par_clv_close((bg_pen).b, (s.bg_pen).b)
      FROM par_clv_serial_fits AS s
$$;

-- Parallel plans, forced by making them free.  Each parallel result is
-- computed by a CREATE TABLE AS whose plan is shown, and compared in a
-- separate statement (a comparison calling our SQL helpers, which are not
-- parallel safe, would make its whole query serial).
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;

-- 1. clv_summary per customer; a sorted partial aggregate splits a
-- customer's orders across workers, so the combine function runs.
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
CREATE TABLE par_clv_par_summary AS
SELECT customer_id, (segment.clv_summary(ordered_at, amount, '2025-06-30')).*
  FROM par_clv_orders GROUP BY customer_id;
CREATE TABLE par_clv_par_summary AS
SELECT customer_id, (segment.clv_summary(ordered_at, amount, '2025-06-30')).*
  FROM par_clv_orders GROUP BY customer_id;
RESET enable_hashagg;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE p.x IS DISTINCT FROM s.x OR p.t_x IS DISTINCT FROM s.t_x
                          OR p.t_cal IS DISTINCT FROM s.t_cal) AS count_mismatches,
       count(*) FILTER (WHERE abs(p.mean_value - s.mean_value)
                              > 1e-12 * greatest(abs(s.mean_value), 1)) AS mean_value_mismatches
  FROM par_clv_par_summary AS p
  FULL JOIN par_clv_serial_summary AS s USING (customer_id);

-- 2. The fits across customers: each worker collects part of the rows, the
-- leader combines the row lists and fits.
EXPLAIN (COSTS OFF)
CREATE TABLE par_clv_par_fits AS
SELECT segment.bgnbd_fit(x, t_x, t_cal) AS bg, segment.gamma_gamma_fit(x, mean_value) AS gg,
       segment.bgnbd_fit(x, t_x, t_cal, 0.01) AS bg_pen
  FROM par_clv_serial_summary;
CREATE TABLE par_clv_par_fits AS
SELECT segment.bgnbd_fit(x, t_x, t_cal) AS bg, segment.gamma_gamma_fit(x, mean_value) AS gg,
       segment.bgnbd_fit(x, t_x, t_cal, 0.01) AS bg_pen
  FROM par_clv_serial_summary;
SELECT c.* FROM par_clv_par_fits AS p, par_clv_compare(p.bg, p.gg, p.bg_pen) AS c;

-- 3. Both in one statement, from the orders: the per-customer summary in a
-- parallel aggregate, the fits over its result.
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
CREATE TABLE par_clv_par_pipeline AS
SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal) AS bg,
       segment.gamma_gamma_fit((s).x, (s).mean_value) AS gg,
       segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal, 0.01) AS bg_pen
  FROM (SELECT segment.clv_summary(ordered_at, amount, '2025-06-30') AS s
          FROM par_clv_orders GROUP BY customer_id) AS q;
CREATE TABLE par_clv_par_pipeline AS
SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal) AS bg,
       segment.gamma_gamma_fit((s).x, (s).mean_value) AS gg,
       segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal, 0.01) AS bg_pen
  FROM (SELECT segment.clv_summary(ordered_at, amount, '2025-06-30') AS s
          FROM par_clv_orders GROUP BY customer_id) AS q;
RESET enable_hashagg;
SELECT c.* FROM par_clv_par_pipeline AS p, par_clv_compare(p.bg, p.gg, p.bg_pen) AS c;

-- 4. debug_parallel_query (force_parallel_mode before PostgreSQL 16): the
-- whole aggregate runs in one worker and its float8[] state and result
-- cross to the leader as ordinary values.
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'regress', false) IS NOT NULL AS forced;
CREATE TABLE par_clv_forced_fits AS
SELECT segment.bgnbd_fit(x, t_x, t_cal) AS bg, segment.gamma_gamma_fit(x, mean_value) AS gg,
       segment.bgnbd_fit(x, t_x, t_cal, 0.01) AS bg_pen
  FROM par_clv_serial_summary;
CREATE TABLE par_clv_forced_summary AS
SELECT customer_id, (segment.clv_summary(ordered_at, amount, '2025-06-30')).*
  FROM par_clv_orders GROUP BY customer_id;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'off', false) IS NOT NULL AS reset;
SELECT c.* FROM par_clv_forced_fits AS p, par_clv_compare(p.bg, p.gg, p.bg_pen) AS c;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE p.x IS DISTINCT FROM s.x OR p.t_x IS DISTINCT FROM s.t_x
                          OR p.t_cal IS DISTINCT FROM s.t_cal) AS count_mismatches,
       count(*) FILTER (WHERE abs(p.mean_value - s.mean_value)
                              > 1e-12 * greatest(abs(s.mean_value), 1)) AS mean_value_mismatches
  FROM par_clv_forced_summary AS p
  FULL JOIN par_clv_serial_summary AS s USING (customer_id);

RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP FUNCTION par_clv_compare(segment.bgnbd_model, segment.gamma_gamma_model, segment.bgnbd_model);
DROP FUNCTION par_clv_close(float8, float8);
DROP TABLE par_clv_customers, par_clv_orders, par_clv_serial_summary, par_clv_serial_fits,
           par_clv_par_summary, par_clv_par_fits, par_clv_par_pipeline, par_clv_forced_fits,
           par_clv_forced_summary;
