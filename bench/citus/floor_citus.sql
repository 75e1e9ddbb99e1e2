-- (a3) The same over the distributed orders: grouped on the shards, the rows
-- gathered into a coordinator table, as refresh() gathers them.
DROP TABLE IF EXISTS bench_floor_citus;
CREATE UNLOGGED TABLE bench_floor_citus AS
SELECT customer_id, max(ordered_at) AS last_order, count(*) AS frequency, sum(amount) AS monetary
  FROM d_orders WHERE ordered_at <= :'as_of' GROUP BY customer_id;
\set result ''
