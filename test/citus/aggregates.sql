-- The primitives over tables distributed with Citus: per-customer aggregates
-- run whole on the shards (GROUP BY the distribution column), the aggregates
-- across customers partially (worker_partial_agg on the shards, combined on
-- the coordinator; worker_binary_partial_agg and coord_binary_combine_agg
-- since Citus 14); every result equals the same rows' on one server.
BEGIN;
-- The plan of a query, one line a row (created before any distributed query:
-- Citus runs function DDL over one connection per node); Citus says it keeps
-- a temporary function local, which it does.
SET LOCAL client_min_messages = error;
CREATE FUNCTION pg_temp.plan_of(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) ' || query LOOP
        RETURN NEXT line;
    END LOOP;
END
$$;
SET LOCAL client_min_messages = notice;

SELECT plan(9);
SET LOCAL timezone = 'UTC';

SELECT is((SELECT count(*) FROM orders), (SELECT count(*) FROM orders_local),
          'every order reached a shard');
SELECT is((SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'orders'::regclass),
          2::bigint, 'the orders are spread over both workers');

SELECT ok(EXISTS (SELECT FROM pg_temp.plan_of(
              'SELECT customer_id, segment.rfm(ordered_at, amount, ''UTC'') FROM orders GROUP BY customer_id') AS l
           WHERE l ~ 'segment\.rfm\(ordered_at, amount, .*GROUP BY customer_id'),
          'rfm grouped by the distribution column runs whole on the shards');
SELECT results_eq(
    $$SELECT customer_id, segment.rfm(ordered_at, amount, 'UTC') FROM orders GROUP BY customer_id ORDER BY 1$$,
    $$SELECT customer_id, segment.rfm(ordered_at, amount, 'UTC') FROM orders_local GROUP BY customer_id ORDER BY 1$$,
    'per-customer rfm over the shards equals rfm on one server');

SELECT ok(EXISTS (SELECT FROM pg_temp.plan_of('SELECT segment.breaks(amount::float8, 5) FROM orders') AS l
                   WHERE l ~ 'worker_(binary_)?partial_agg'),
          'breaks is pushed down partially (worker_partial_agg on the shards; the binary variant since Citus 14)');
SELECT results_eq(
    $$SELECT segment.breaks(amount::float8, 5) FROM orders$$,
    $$SELECT segment.breaks(amount::float8, 5) FROM orders_local$$,
    'breaks over the shards equal breaks on one server');

SELECT results_eq(
    $$SELECT * FROM segment.rfm_scores('orders', 'customer_id', 'ordered_at', 'amount', '2025-01-01') ORDER BY 1$$,
    $$SELECT * FROM segment.rfm_scores('orders_local', 'customer_id', 'ordered_at', 'amount', '2025-01-01') ORDER BY 1$$,
    'rfm_scores over the shards equals rfm_scores on one server');

-- The CLV fits: per-customer summaries on the shards, the fit across them
-- pushed down partially.
CREATE TEMP TABLE summary_sql AS
SELECT $$SELECT customer_id, segment.clv_summary(ordered_at, amount, '2025-01-01', 'day', 'day', 'UTC') AS s
           FROM %s GROUP BY customer_id$$ AS q;
SELECT results_eq(
    format($$SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal) FROM (%s) AS c$$,
           format((SELECT q FROM summary_sql), 'orders')),
    format($$SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal) FROM (%s) AS c$$,
           format((SELECT q FROM summary_sql), 'orders_local')),
    'the BG/NBD fit over the shards equals the fit on one server');
SELECT results_eq(
    format($$SELECT segment.gamma_gamma_fit((s).x, (s).mean_value) FROM (%s) AS c WHERE (s).x > 0$$,
           format((SELECT q FROM summary_sql), 'orders')),
    format($$SELECT segment.gamma_gamma_fit((s).x, (s).mean_value) FROM (%s) AS c WHERE (s).x > 0$$,
           format((SELECT q FROM summary_sql), 'orders_local')),
    'the Gamma-Gamma fit over the shards equals the fit on one server');

SELECT * FROM finish();
ROLLBACK;
