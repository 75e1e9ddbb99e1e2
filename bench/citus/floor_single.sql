-- (a1) The floor on one server: the three RFM figures per customer into a
-- table (as bench/pipeline/floor.sql).
DROP TABLE IF EXISTS bench_floor;
CREATE UNLOGGED TABLE bench_floor AS
SELECT customer_id, max(ordered_at) AS last_order, count(*) AS frequency, sum(amount) AS monetary
  FROM orders WHERE ordered_at <= :'as_of' GROUP BY customer_id;
\set result ''
