-- (c2) The same call as (c) with up to two parallel workers per Gather.
SET max_parallel_workers_per_gather = 2;
DROP TABLE IF EXISTS bench_rfm_parallel;
CREATE UNLOGGED TABLE bench_rfm_parallel AS
SELECT *
  FROM segment.rfm_scores('orders', 'customer_id', 'ordered_at', 'amount',
                          as_of => :'as_of');
RESET max_parallel_workers_per_gather;
\set result ''
