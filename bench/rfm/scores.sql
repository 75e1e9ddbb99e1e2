-- (c) segment's RFM: figures, scores and named segments in one call, into a
-- table (serial: the cluster runs with max_parallel_workers_per_gather = 0).
DROP TABLE IF EXISTS bench_rfm;
CREATE UNLOGGED TABLE bench_rfm AS
SELECT *
  FROM segment.rfm_scores('orders', 'customer_id', 'ordered_at', 'amount',
                          as_of => :'as_of');
\set result ''
