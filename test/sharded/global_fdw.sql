-- The global steps over orders sharded with postgres_fdw: quantile breaks,
-- the k-means step and the BG/NBD / Gamma-Gamma fits, computed across the
-- two shards, equal the same computations over the same rows on one server.
--
-- What runs where.  A per-customer aggregate (rfm, clv_summary: GROUP BY the
-- partition key) runs whole on the shards.  An aggregate across customers
-- (no GROUP BY, or one that mixes customers) is not shipped by postgres_fdw
-- in PostgreSQL 15, even with enable_partitionwise_aggregate: the planner
-- makes a Partial Aggregate per partition, but on the coordinator, over the
-- rows the Foreign Scans fetch.  Partial pushdown can still be had by hand
-- for the aggregates whose state is their result (kmeans_step,
-- kmeans_moments: no final function): one full aggregate per foreign
-- partition is shipped, and the coordinator merges the float8[] states with
-- the aggregate's own combine function -- what Citus does by itself
-- (worker_partial_agg on the shards, coord_combine_agg on the coordinator).
BEGIN;
SELECT plan(16);
SET LOCAL enable_partitionwise_aggregate = on;
SET LOCAL timezone = 'UTC';
SET LOCAL extra_float_digits = 0;

-- 1. Cut points over per-customer figures: the figures come from the shards
--    (per-customer aggregate pushed down), the breaks are computed on the
--    coordinator from them.
SELECT results_eq(
    $$SELECT segment.breaks(((r).monetary)::float8), segment.breaks(((r).orders)::float8, 10),
             segment.breaks(('2025-01-01'::date - ((r).last_order)::date)::float8)
        FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM orders GROUP BY 1) AS q$$,
    $$SELECT segment.breaks(((r).monetary)::float8), segment.breaks(((r).orders)::float8, 10),
             segment.breaks(('2025-01-01'::date - ((r).last_order)::date)::float8)
        FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM orders_local GROUP BY 1) AS q$$,
    'breaks over the per-customer figures of the shards equal breaks on one server');

-- 2. A global aggregate straight over the sharded orders: partial aggregates
--    on the coordinator, rows fetched from the shards.
CREATE TEMP TABLE global_plan (line text);
DO $$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) SELECT segment.breaks(amount::float8) FROM orders' LOOP
        INSERT INTO global_plan VALUES (l);
    END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM global_plan WHERE line ~ '^\s*->\s*Partial Aggregate$'), 2::bigint,
          'a global aggregate over the sharded orders: one Partial Aggregate per partition...');
SELECT is((SELECT count(*) FROM global_plan WHERE line ~ 'Remote SQL: SELECT amount FROM public\.orders_part$'),
          2::bigint, '...on the coordinator, over rows fetched from each shard (postgres_fdw 15 ships no partial aggregate)');
SELECT results_eq($$SELECT segment.breaks(amount::float8, 7) FROM orders$$,
                  $$SELECT segment.breaks(amount::float8, 7) FROM orders_local$$,
                  'and gives the breaks of one server');

-- Per-customer features, stored on the shards next to the customers' orders
-- (customer_features: hash partitions like orders'), and the same locally.
INSERT INTO customer_features
SELECT customer_id, ARRAY[('2025-01-01'::date - ((r).last_order)::date)::float8,
                          ln(1 + (r).orders), ln(1 + ((r).monetary)::float8)]
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM orders GROUP BY 1) AS q;
CREATE TEMP TABLE features_local AS
SELECT customer_id, ARRAY[('2025-01-01'::date - ((r).last_order)::date)::float8,
                          ln(1 + (r).orders), ln(1 + ((r).monetary)::float8)] AS f
  FROM (SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM orders_local GROUP BY 1) AS q;
SELECT cmp_ok((SELECT count(*) FROM customer_features_p0), '>', 1000::bigint,
              'the features went to the shards with their customers');

-- The coordinator's half of a partial aggregation: the combine function of
-- kmeans_step / kmeans_moments as the transition function of an aggregate
-- over states (what Citus's coord_combine_agg runs).
CREATE AGGREGATE pg_temp.kmeans_step_merge(double precision[]) (
    SFUNC = segment_internal.kmeans_step_combine, STYPE = double precision[]);
CREATE AGGREGATE pg_temp.kmeans_moments_merge(double precision[]) (
    SFUNC = segment_internal.kmeans_moments_combine, STYPE = double precision[]);
-- The step of a model over the sharded features: one step aggregate per
-- shard (each shipped whole), merged here.
CREATE FUNCTION pg_temp.sharded_step(m segment.kmeans_model) RETURNS double precision[]
    LANGUAGE sql STABLE AS $$
    SELECT pg_temp.kmeans_step_merge(s)
      FROM (SELECT segment.kmeans_step(f, m) AS s FROM customer_features_p0
            UNION ALL
            SELECT segment.kmeans_step(f, m) FROM customer_features_p1) AS x
$$;
CREATE FUNCTION pg_temp.close(a double precision[], b double precision[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT array_length(a, 1) = array_length(b, 1)
           AND (SELECT bool_and(abs(a[i] - b[i]) <= 1e-9 * greatest(abs(a[i]), abs(b[i]), 1))
                  FROM generate_series(1, array_length(a, 1)) AS i)
$$;
CREATE TEMP TABLE km_opts AS
SELECT '{"standardize": true,
         "init": [[10, 1, 3], [100, 2, 6], [300, 2.5, 8], [600, 1, 5], [50, 3, 8]]}'::jsonb AS o;
CREATE TEMP TABLE km_model AS
SELECT segment.kmeans(f, 5, (SELECT o FROM km_opts) || '{"max_iter": 0}') AS m FROM features_local;

-- 3. One step, partial states pushed down.
CREATE TEMP TABLE step_plan (line text);
DO $$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (VERBOSE, COSTS OFF) SELECT segment.kmeans_step(f, (SELECT m FROM km_model)) FROM customer_features_p0' LOOP
        INSERT INTO step_plan VALUES (l);
    END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM step_plan
            WHERE line ~ 'Remote SQL: SELECT segment\.kmeans_step\(f, \$1::segment\.kmeans_model\) FROM public\.features_part$'),
          1::bigint, 'kmeans_step over one foreign partition is shipped whole (its state is its result)');
SELECT ok(pg_temp.close(pg_temp.sharded_step(m), (SELECT segment.kmeans_step(f, m) FROM features_local)),
          'the shards'' step states merged with kmeans_step''s combine function equal the step on one server (relative 1e-9)')
  FROM km_model;
SELECT ok(pg_temp.close(
              (SELECT pg_temp.kmeans_moments_merge(s)
                 FROM (SELECT segment.kmeans_moments(f, m) AS s FROM customer_features_p0, km_model
                       UNION ALL
                       SELECT segment.kmeans_moments(f, m) FROM customer_features_p1, km_model) AS x),
              (SELECT segment.kmeans_moments(f, m) FROM features_local, km_model)),
          'the same for kmeans_moments (relative 1e-9)');

-- 4. A whole fit driven from the coordinator, every iteration's step pushed
--    down, against kmeans_fit_step on one server.
CREATE FUNCTION pg_temp.sharded_fit(k integer, opts jsonb) RETURNS segment.kmeans_model
    LANGUAGE plpgsql AS $$
DECLARE
    skeleton segment.kmeans_model := segment_internal.kmeans_start(k, 3, opts - 'init', NULL);
    moments  double precision[];
    m        segment.kmeans_model;
    nm       segment.kmeans_model;
    shift    double precision;
BEGIN
    SELECT pg_temp.kmeans_moments_merge(s) INTO moments
      FROM (SELECT segment.kmeans_moments(f, skeleton) AS s FROM customer_features_p0
            UNION ALL
            SELECT segment.kmeans_moments(f, skeleton) FROM customer_features_p1) AS x;
    m := segment_internal.kmeans_start(k, 3, opts, moments);
    FOR i IN 1 .. (m::text::jsonb->>'max_iter')::integer LOOP
        nm := segment_internal.kmeans_update(m, pg_temp.sharded_step(m));
        shift := segment_internal.kmeans_shift(m, nm);
        m := nm;
        EXIT WHEN shift <= (m::text::jsonb->>'tol_abs')::double precision;
    END LOOP;
    RETURN segment_internal.kmeans_finish(m, pg_temp.sharded_step(m));
END
$$;
CREATE TEMP TABLE km_fits AS
SELECT pg_temp.sharded_fit(5, o) AS sharded,
       segment.kmeans_fit_step('SELECT f FROM customer_features', 5, o) AS over_fdw,
       segment.kmeans_fit_step('SELECT f FROM features_local', 5, o) AS local
  FROM km_opts;
SELECT cmp_ok((SELECT (local::text::jsonb->>'iterations')::int FROM km_fits), '>', 2,
              'the k-means fit iterates');
SELECT ok((SELECT sharded::text::jsonb->'iterations' = local::text::jsonb->'iterations'
                  AND sharded::text::jsonb->'sizes' = local::text::jsonb->'sizes'
                  AND (SELECT bool_and(pg_temp.close(x.centroid, y.centroid))
                         FROM segment.kmeans_centroids(sharded) AS x
                         JOIN segment.kmeans_centroids(local) AS y USING (cluster))
             FROM km_fits),
          'a fit with the steps pushed to the shards: same iterations, sizes and centroids (relative 1e-9) as on one server');
SELECT is((SELECT count(*) FROM features_local AS l, km_fits AS k
            WHERE segment.kmeans_assign(k.sharded, l.f) <> segment.kmeans_assign(k.local, l.f)),
          0::bigint, 'and the same cluster for every customer');
SELECT ok((SELECT sum(calls) FROM shard1_statements
            WHERE query LIKE '%SELECT segment.kmeans_step(f, $1::segment.kmeans_model) FROM public.features_part')
          >= (SELECT (sharded::text::jsonb->>'iterations')::int + 1 FROM km_fits)
          AND (SELECT sum(calls) FROM shard2_statements
                WHERE query LIKE '%SELECT segment.kmeans_step(f, $1::segment.kmeans_model) FROM public.features_part')
              >= (SELECT (sharded::text::jsonb->>'iterations')::int + 1 FROM km_fits),
          'every step of that fit ran on both shards (their pg_stat_statements)');
SELECT ok((SELECT over_fdw::text::jsonb->'sizes' = local::text::jsonb->'sizes'
                  AND (SELECT bool_and(pg_temp.close(x.centroid, y.centroid))
                         FROM segment.kmeans_centroids(over_fdw) AS x
                         JOIN segment.kmeans_centroids(local) AS y USING (cluster))
             FROM km_fits),
          'kmeans_fit_step straight over the sharded table (rows fetched each iteration) gives the same model');

-- 5. The lifetime-value fits: per-customer summaries on the shards, the fits
--    on the coordinator over them.
CREATE TEMP TABLE summary_plan (line text);
DO $$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE $q$EXPLAIN (VERBOSE, COSTS OFF)
        SELECT customer_id, segment.clv_summary(ordered_at, amount, '2025-01-01') FROM orders GROUP BY 1$q$ LOOP
        INSERT INTO summary_plan VALUES (l);
    END LOOP;
END
$$;
SELECT is((SELECT count(*) FROM summary_plan
            WHERE line ~ 'Remote SQL: SELECT customer_id, segment\.clv_summary\(ordered_at, amount, .*\) FROM public\.orders_part GROUP BY 1$'),
          2::bigint, 'clv_summary per customer is pushed down to both shards');
CREATE TEMP TABLE clv_fits AS
SELECT (SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal)
          FROM (SELECT segment.clv_summary(ordered_at, amount, '2025-01-01') AS s
                  FROM orders GROUP BY customer_id) AS q) AS bg_sharded,
       (SELECT segment.bgnbd_fit((s).x, (s).t_x, (s).t_cal)
          FROM (SELECT segment.clv_summary(ordered_at, amount, '2025-01-01') AS s
                  FROM orders_local GROUP BY customer_id) AS q) AS bg_local,
       (SELECT segment.gamma_gamma_fit((s).x, (s).mean_value)
          FROM (SELECT segment.clv_summary(ordered_at, amount, '2025-01-01') AS s
                  FROM orders GROUP BY customer_id) AS q) AS gg_sharded,
       (SELECT segment.gamma_gamma_fit((s).x, (s).mean_value)
          FROM (SELECT segment.clv_summary(ordered_at, amount, '2025-01-01') AS s
                  FROM orders_local GROUP BY customer_id) AS q) AS gg_local;
SELECT ok((SELECT pg_temp.close(ARRAY[(bg_sharded).r, (bg_sharded).alpha, (bg_sharded).a, (bg_sharded).b,
                                      (bg_sharded).log_likelihood],
                                ARRAY[(bg_local).r, (bg_local).alpha, (bg_local).a, (bg_local).b,
                                      (bg_local).log_likelihood])
                  AND (bg_sharded).customers = (bg_local).customers
             FROM clv_fits),
          'bgnbd_fit over the shards'' summaries equals the fit on one server (relative 1e-9)');
SELECT ok((SELECT pg_temp.close(ARRAY[(gg_sharded).p, (gg_sharded).q, (gg_sharded).v,
                                      (gg_sharded).log_likelihood],
                                ARRAY[(gg_local).p, (gg_local).q, (gg_local).v, (gg_local).log_likelihood])
                  AND (gg_sharded).customers = (gg_local).customers
             FROM clv_fits),
          'gamma_gamma_fit over the shards'' summaries equals the fit on one server (relative 1e-9)');

SELECT * FROM finish();
ROLLBACK;
