-- refresh() under parallel plans: the same profile as a serial refresh,
-- over an ordinary orders table and over the same orders hash-partitioned
-- by customer with partitionwise aggregation (each partition's customers
-- aggregated whole, partitions handed to the workers by a Parallel Append).
SET timezone = 'UTC';
CREATE TABLE par_ref_orders AS
SELECT c::bigint AS customer_id,
       timestamptz '2023-01-01 00:00+00' + ((c * 7919 + k * 104729) % 700) * interval '1 day'
           + ((c * 31 + k * 86413) % 86400) * interval '1 second' AS ordered_at,
       round(((c * 31337 + k * 7331) % 40000) / 100.0 + 1, 2)::numeric(12,2) AS amount,
       CASE WHEN (c + k) % 5 = 0 THEN 5.00 END::numeric(12,2) AS discount
  FROM generate_series(1, 6000) AS c, generate_series(1, 1 + (c * c) % 25) AS k;
CREATE TABLE par_ref_hashed (LIKE par_ref_orders) PARTITION BY HASH (customer_id);
CREATE TABLE par_ref_hashed_0 PARTITION OF par_ref_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE par_ref_hashed_1 PARTITION OF par_ref_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE par_ref_hashed_2 PARTITION OF par_ref_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE par_ref_hashed_3 PARTITION OF par_ref_hashed FOR VALUES WITH (MODULUS 4, REMAINDER 3);
INSERT INTO par_ref_hashed SELECT * FROM par_ref_orders;
ANALYZE par_ref_orders;
ANALYZE par_ref_hashed;

SELECT segment.configure('par_ref_orders', 'customer_id', 'ordered_at', 'amount',
                         segmentation => 'par_serial', discount => 'discount');
SELECT segment.configure('par_ref_orders', 'customer_id', 'ordered_at', 'amount',
                         segmentation => 'par_parallel', discount => 'discount');
SELECT segment.configure('par_ref_hashed', 'customer_id', 'ordered_at', 'amount',
                         segmentation => 'par_hashed', discount => 'discount');

SET max_parallel_workers_per_gather = 0;
SELECT customers, buyers FROM segment.refresh('par_serial', '2025-01-01');

-- The per-customer statement of a refresh (its shape: see
-- sql/install/53_pipeline_refresh.sql), under forced parallel plans.
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_partitionwise_aggregate = on;
EXPLAIN (COSTS OFF)
SELECT o.customer_id, segment.rfm(o.ordered_at, o.amount), count(*) FILTER (WHERE o.discount > 0)
  FROM par_ref_orders AS o WHERE o.ordered_at <= '2025-01-01' GROUP BY o.customer_id;
EXPLAIN (COSTS OFF)
SELECT o.customer_id, segment.rfm(o.ordered_at, o.amount), count(*) FILTER (WHERE o.discount > 0)
  FROM par_ref_hashed AS o WHERE o.ordered_at <= '2025-01-01' GROUP BY o.customer_id;
SELECT customers, buyers FROM segment.refresh('par_parallel', '2025-01-01');
SELECT customers, buyers FROM segment.refresh('par_hashed', '2025-01-01');
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET enable_partitionwise_aggregate;

-- Every profile column, and the cut points.
SELECT count(*) AS customers,
       count(*) FILTER (WHERE (s.first_order, s.last_order, s.tenure_days, s.recency_days, s.frequency,
                               s.purchase_days, s.monetary, s.mean_amount, s.mean_gap_days,
                               s.discount_share, s.due_in_days, s.r, s.f, s.m, s.rfm_code,
                               s.rfm_segment, s.flags, s.segment)
                              IS DISTINCT FROM
                              (p.first_order, p.last_order, p.tenure_days, p.recency_days, p.frequency,
                               p.purchase_days, p.monetary, p.mean_amount, p.mean_gap_days,
                               p.discount_share, p.due_in_days, p.r, p.f, p.m, p.rfm_code,
                               p.rfm_segment, p.flags, p.segment)) AS parallel_differences,
       count(*) FILTER (WHERE (s.first_order, s.last_order, s.tenure_days, s.recency_days, s.frequency,
                               s.purchase_days, s.monetary, s.mean_amount, s.mean_gap_days,
                               s.discount_share, s.due_in_days, s.r, s.f, s.m, s.rfm_code,
                               s.rfm_segment, s.flags, s.segment)
                              IS DISTINCT FROM
                              (h.first_order, h.last_order, h.tenure_days, h.recency_days, h.frequency,
                               h.purchase_days, h.monetary, h.mean_amount, h.mean_gap_days,
                               h.discount_share, h.due_in_days, h.r, h.f, h.m, h.rfm_code,
                               h.rfm_segment, h.flags, h.segment)) AS hashed_differences
  FROM segment.profile_par_serial AS s
  FULL JOIN segment.profile_par_parallel AS p USING (customer_id)
  FULL JOIN segment.profile_par_hashed AS h USING (customer_id);
SELECT count(DISTINCT (r_breaks, f_breaks, m_breaks, top_spender_min, segments)) AS distinct_results
  FROM segment.refreshes WHERE segmentation IN ('par_serial', 'par_parallel', 'par_hashed');

SELECT segment.drop_segmentation(name) FROM (VALUES ('par_serial'), ('par_parallel'), ('par_hashed')) AS v(name);
DROP TABLE par_ref_orders, par_ref_hashed;
-- leave the refresh ids as they were for the tests that follow
SELECT setval('segment.refreshes_id_seq', 1, false) IS NOT NULL AS ids_reset
 WHERE NOT EXISTS (SELECT FROM segment.refreshes);
