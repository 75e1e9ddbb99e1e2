-- (a) The floor: one pass over the orders, the three RFM figures per
-- customer into a table, no scoring (the same query as bench/rfm/floor.sql).
DROP TABLE IF EXISTS bench_floor;
CREATE UNLOGGED TABLE bench_floor AS
SELECT customer_id,
       max(ordered_at) AS last_order,
       count(*)        AS frequency,
       sum(amount)     AS monetary
  FROM orders
 WHERE ordered_at <= :'as_of'
 GROUP BY customer_id;
\set result ''
