-- RFM over orders sharded with postgres_fdw: the per-customer aggregate runs
-- on the shards, and the results equal those of the same data on one server.
BEGIN;
SELECT plan(6);
SET LOCAL enable_partitionwise_aggregate = on;
SET LOCAL timezone = 'UTC';

SELECT is((SELECT count(*) FROM orders), (SELECT count(*) FROM orders_local),
          'every order reached a shard');
SELECT cmp_ok((SELECT count(*) FROM orders_p0), '>', 0::bigint, 'both shards hold orders');

CREATE TEMP TABLE plan_lines (line text);
DO $$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF)
        SELECT customer_id, segment.rfm(ordered_at, amount) FROM orders GROUP BY customer_id'
    LOOP
        INSERT INTO plan_lines VALUES (l);
    END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM plan_lines
            WHERE line ~ 'Remote SQL: SELECT customer_id, segment\.rfm\(ordered_at, amount\) FROM public\.orders_part GROUP BY 1'),
          2::bigint, 'the rfm aggregate is pushed down to both shards (EXPLAIN VERBOSE, Remote SQL)');

SELECT results_eq(
    $$SELECT customer_id, segment.rfm(ordered_at, amount) FROM orders GROUP BY customer_id ORDER BY 1$$,
    $$SELECT customer_id, segment.rfm(ordered_at, amount) FROM orders_local GROUP BY customer_id ORDER BY 1$$,
    'per-customer rfm over the shards equals rfm on one server');

SELECT results_eq(
    $$SELECT * FROM segment.rfm_scores('orders', 'customer_id', 'ordered_at', 'amount', '2025-01-01') ORDER BY 1$$,
    $$SELECT * FROM segment.rfm_scores('orders_local', 'customer_id', 'ordered_at', 'amount', '2025-01-01') ORDER BY 1$$,
    'rfm_scores over the shards equals rfm_scores on one server');

-- The global step (quantile breaks) is combined on the coordinator.
SELECT results_eq(
    $$SELECT segment.breaks(amount, 10) FROM orders$$,
    $$SELECT segment.breaks(amount, 10) FROM orders_local$$,
    'breaks over the shards equal breaks on one server');

SELECT * FROM finish();
ROLLBACK;
