-- Data of bench/parallel.sh, :rows rows in each table (psql -v rows=N).
-- Deterministic (formulas, and a seeded simulation for clv_input) and fast
-- to make.  Unlogged: the benchmark measures reading, not WAL.
--   orders            :rows orders of :rows / 10 customers over two years
--   orders_hashed     the same orders, hash-partitioned by customer (4 parts)
--   features          :rows feature vectors (recency days, log orders, log
--                     money) in eight overlapping groups, for kmeans_step
--   clv_input         :rows per-customer (x, t_x, t_cal) rows, for bgnbd_fit
-- With psql -v orders_only=1 (the sharded part), only the two orders tables.
DROP TABLE IF EXISTS orders, orders_hashed, features, clv_input, bench_model;

CREATE UNLOGGED TABLE orders AS
SELECT 1 + (i * 7919) % greatest(:rows / 10, 1) AS customer_id,
       timestamptz '2024-01-01 00:00+00'
           + ((i * 104729) % (730 * 86400)) * interval '1 second' AS ordered_at,
       round(5 + ((i * 31337) % 50000) / 100.0 * (1 + (i % 7)), 2)::numeric(12,2) AS amount
  FROM generate_series(1::bigint, :rows) AS i;

-- The same orders in 4 partitions by hash of the customer key: with
-- enable_partitionwise_aggregate, each partition's customers are aggregated
-- whole (no partial states to combine), and a Parallel Append hands the
-- partitions to the workers.
CREATE TABLE orders_hashed (LIKE orders) PARTITION BY HASH (customer_id);
CREATE UNLOGGED TABLE orders_hashed_0 PARTITION OF orders_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE UNLOGGED TABLE orders_hashed_1 PARTITION OF orders_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE UNLOGGED TABLE orders_hashed_2 PARTITION OF orders_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE UNLOGGED TABLE orders_hashed_3 PARTITION OF orders_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 3);
INSERT INTO orders_hashed SELECT * FROM orders;

\if :{?orders_only}
\else
CREATE UNLOGGED TABLE features AS
SELECT ARRAY[g * 60 + ((i * 7919) % 97) - 48.0,
             0.3 * (g % 4) + ((i * 104729) % 101) / 100.0,
             3 + 0.5 * (g % 5) + ((i * 31337) % 103) / 80.0]::float8[] AS f
  FROM (SELECT i, (i * 2654435761) % 8 AS g FROM generate_series(1::bigint, :rows) AS i) AS s;

-- One row per customer in the form BG/NBD takes, from a simulated shop of
-- 20,000 customers (personal pace and chance of leaving after each order,
-- seeded, as in sql/clv_example.sql), repeated up to :rows rows: the fit
-- then has as many distinct (x, t_x, t_cal) as a real shop of that age.
SELECT setseed(0.25);
CREATE TEMP TABLE sim_people AS
SELECT id, timestamptz '2024-01-01' + random() * interval '600 days' AS first_order,
       4 + 90 * random() ^ 2 AS pace_days, 0.05 + 0.5 * random() AS churn
  FROM generate_series(1, 20000) AS id;
CREATE TEMP TABLE sim_orders AS
WITH RECURSIVE o(id, ordered_at, pace_days, churn, alive) AS (
    SELECT id, first_order, pace_days, churn, true FROM sim_people
  UNION ALL
    SELECT id, ordered_at - ln(1 - random()) * pace_days * interval '1 day', pace_days, churn,
           random() >= churn
      FROM o WHERE alive AND ordered_at < timestamptz '2026-01-01'
)
SELECT id, ordered_at, 10::numeric AS amount FROM o WHERE ordered_at < timestamptz '2026-01-01';
CREATE TEMP TABLE sim_input AS
SELECT row_number() OVER () AS n, (s).x::float8 AS x, (s).t_x, (s).t_cal
  FROM (SELECT segment.clv_summary(ordered_at, amount, '2026-01-01') AS s
          FROM sim_orders GROUP BY id) AS q;
CREATE UNLOGGED TABLE clv_input AS
SELECT x, t_x, t_cal
  FROM generate_series(0::bigint, :rows - 1) AS i
  JOIN sim_input ON sim_input.n = 1 + i % 20000;

-- The model a k-means iteration runs against: 8 centroids from a sample.
CREATE TABLE bench_model AS
SELECT segment.kmeans(f, 8, '{"standardize": true, "max_iter": 5, "n_init": 1}') AS m
  FROM (SELECT f FROM features LIMIT 20000) AS s;

VACUUM ANALYZE features;
VACUUM ANALYZE clv_input;
\endif
VACUUM ANALYZE orders;
VACUUM ANALYZE orders_hashed;
