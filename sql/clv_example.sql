-- The worked example of the README: probability alive, expected purchases
-- and 12-month CLV of every customer of an orders table, with the
-- primitives (the pipeline will do the same inside refresh()).
SET timezone = 'UTC';

-- A small shop: 3,000 customers, each with a first order in 2024 or early
-- 2025, a personal pace (mean days between orders), a personal chance of
-- leaving after each order and a personal typical basket.
SELECT setseed(0.5);
CREATE TABLE clv_shop_customers AS
SELECT id AS customer_id,
       timestamptz '2024-01-01' + random() * interval '480 days' AS first_order,
       5 + 120 * random() ^ 2 AS pace_days,
       0.05 + 0.5 * random() AS churn,
       15 + 150 * random() ^ 3 AS basket
  FROM generate_series(1, 3000) AS id;
CREATE TABLE clv_shop_orders AS
WITH RECURSIVE o(customer_id, ordered_at, pace_days, churn, basket, alive) AS (
    SELECT customer_id, first_order, pace_days, churn, basket, true FROM clv_shop_customers
  UNION ALL
    SELECT customer_id, ordered_at - ln(1 - random()) * pace_days * interval '1 day',
           pace_days, churn, basket, random() >= churn
      FROM o
     WHERE alive AND ordered_at < timestamptz '2025-09-30'
)
SELECT customer_id, ordered_at, round((basket * (0.5 + random()))::numeric, 2) AS amount
  FROM o WHERE ordered_at < timestamptz '2025-09-30';

-- 1. One row per customer in the form the models take: x repeat purchases
--    (distinct purchase days - 1), t_x and t_cal (days from the first
--    purchase to the last one and to as_of), mean value of the repeat days.
CREATE TABLE clv_input AS
SELECT customer_id,
       (segment.clv_summary(ordered_at, amount, '2025-06-30 23:59:59+00')).*
  FROM clv_shop_orders
 WHERE ordered_at <= '2025-06-30 23:59:59+00'
 GROUP BY customer_id;

-- 2. Fit both models once, over all customers (aggregates, parallel safe).
CREATE TABLE clv_models AS
SELECT segment.bgnbd_fit(x, t_x, t_cal) AS bg,
       segment.gamma_gamma_fit(x, mean_value) AS gg
  FROM clv_input;
SELECT (bg).converged AS bg_converged, (bg).customers AS bg_customers,
       (gg).converged AS gg_converged, (gg).customers AS gg_repeat_customers
  FROM clv_models;

-- 3. Score every customer: probability alive, purchases expected in the
--    next 90 days, expected order value, CLV over 12 months at 1% a month.
CREATE TABLE clv_scores AS
SELECT c.customer_id, c.x, c.t_x, c.t_cal,
       segment.bgnbd_p_alive(m.bg, c.x, c.t_x, c.t_cal) AS p_alive,
       segment.bgnbd_expected_purchases(m.bg, 90, c.x, c.t_x, c.t_cal) AS purchases_90d,
       segment.gamma_gamma_expected_value(m.gg, c.x, c.mean_value) AS order_value,
       segment.clv(m.bg, m.gg, c.x, c.t_x, c.t_cal, c.mean_value,
                   months => 12, monthly_discount_rate => 0.01, time_unit => 'day') AS clv_12m
  FROM clv_input AS c CROSS JOIN clv_models AS m;

-- Nothing undefined, probabilities in [0, 1].
SELECT count(*) AS customers,
       count(*) FILTER (WHERE p_alive BETWEEN 0 AND 1 AND purchases_90d >= 0
                          AND order_value > 0 AND clv_12m >= 0) AS valid
  FROM clv_scores;

-- The models against what the shop's customers did next (1 July to 29
-- September 2025: 91 days): expected and actual purchase days, for the
-- customers by probability alive.
WITH actual AS (
    SELECT customer_id, count(DISTINCT ordered_at::date) AS purchase_days
      FROM clv_shop_orders
     WHERE ordered_at > '2025-06-30 23:59:59+00'
     GROUP BY customer_id
)
SELECT CASE WHEN p_alive < 0.25 THEN '1. below 25%' WHEN p_alive < 0.75 THEN '2. 25-75%'
            ELSE '3. 75% or more' END AS p_alive,
       count(*) AS customers,
       round(sum(segment.bgnbd_expected_purchases(m.bg, 91, s.x, s.t_x, s.t_cal))::numeric, 0)
           AS expected_purchase_days,
       coalesce(sum(a.purchase_days), 0) AS actual_purchase_days
  FROM clv_scores AS s CROSS JOIN clv_models AS m
  LEFT JOIN actual AS a USING (customer_id)
 GROUP BY 1 ORDER BY 1;

-- The most valuable customers.
SELECT customer_id, x, t_x, t_cal, round(p_alive::numeric, 3) AS p_alive,
       round(purchases_90d::numeric, 2) AS purchases_90d,
       round(order_value::numeric, 2) AS order_value, round(clv_12m::numeric, 2) AS clv_12m
  FROM clv_scores ORDER BY clv_12m DESC, customer_id LIMIT 5;
