-- (a2) The floor's GROUP BY with the rfm aggregate instead of max/count/sum
-- (what rfm_scores() runs over foreign tables, and the pipeline's refresh).
DROP TABLE IF EXISTS bench_rfm_aggregate;
CREATE UNLOGGED TABLE bench_rfm_aggregate AS
SELECT customer_id, segment.rfm(ordered_at, amount) AS figures
  FROM orders
 WHERE ordered_at <= :'as_of'
 GROUP BY customer_id;
\set result ''
