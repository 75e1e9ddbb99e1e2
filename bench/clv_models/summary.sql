-- (s) The models' input, untimed in the ratios: one clv_summary per customer.
DROP TABLE IF EXISTS bench_summary;
CREATE UNLOGGED TABLE bench_summary AS
SELECT customer_id, (segment.clv_summary(ordered_at, amount::numeric, :'as_of'::timestamptz, 'day', 'day')).*
  FROM orders
 WHERE ordered_at <= :'as_of' AND amount >= 0
 GROUP BY customer_id;
SELECT count(*) || ' customers' AS result FROM bench_summary \gset
