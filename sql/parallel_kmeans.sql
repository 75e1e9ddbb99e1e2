-- k-means under parallel plans: the moments and step aggregates (float8[]
-- states combined across workers), the step driver kmeans_fit_step (whose
-- every iteration is a parallel aggregate), and the in-memory kmeans
-- aggregate (internal state, serialized between processes).
--
-- Tolerances: a step's per-cluster sums and its inertia are float8 sums that
-- a parallel plan adds in another order; each element must agree with the
-- serial one to a relative 1e-9 (counts exactly).  A driver run must give the
-- same iterations, cluster sizes and labels, and centroids and inertia within
-- a relative 1e-9.
SET extra_float_digits = 0;

-- 20,000 customers' features (recency days, orders, money, tenure days) in
-- five overlapping groups, money and orders heavy-tailed (seeded).
SELECT setseed(0.75);
CREATE TABLE par_km AS
SELECT s.i, s.b,
       ARRAY[s.c[1] + 60 * (random() + random() + random() - 1.5),
             s.c[2] * exp(1.2 * (random() + random() - 1)),
             s.c[3] * exp(1.6 * (random() + random() - 1)),
             s.c[4] + 200 * (random() - 0.5)]::float8[] AS f
  FROM (SELECT i, 1 + i % 5 AS b,
               (ARRAY[[10, 1, 30, 600], [200, 2, 60, 300], [40, 12, 900, 700],
                      [400, 1, 20, 50], [90, 5, 150, 200]]::float8[])[1 + i % 5:1 + i % 5][1:4] AS m
          FROM generate_series(1, 20000) AS i) AS g,
       LATERAL (SELECT g.i, g.b, ARRAY(SELECT pg_catalog.unnest(g.m)) AS c) AS s;
ANALYZE par_km;
CREATE TABLE par_km_opts AS
SELECT '{"standardize": true, "log1p": [false, true, true, false], "seed": 3, "n_init": 4}'::jsonb AS o,
       '{"standardize": true, "log1p": [false, true, true, false],
         "init": [[100, 2, 100, 400], [110, 2, 100, 400], [120, 2, 100, 400],
                  [130, 2, 100, 400], [140, 2, 100, 400]]}'::jsonb AS driver_o;
-- a model with fixed centroids for the single aggregates (no iteration)
CREATE TABLE par_km_model AS
SELECT segment.kmeans(f, 5, (SELECT o FROM par_km_opts)
                                || '{"init": [[10, 1, 30, 600], [200, 2, 60, 300], [40, 12, 900, 700],
                                              [400, 1, 20, 50], [90, 5, 150, 200]], "max_iter": 0}')
       AS m
  FROM par_km;

-- Elementwise comparison of two float8[] states: same length, each element
-- within a relative 1e-9.
CREATE FUNCTION par_km_close(a float8[], b float8[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT array_length(a, 1) = array_length(b, 1)
           AND (SELECT bool_and(abs(a[i] - b[i]) <= 1e-9 * greatest(abs(a[i]), abs(b[i]), 1))
                  FROM generate_series(1, array_length(a, 1)) AS i)
$$;

-- Serial results.
SET max_parallel_workers_per_gather = 0;
CREATE TABLE par_km_serial AS
SELECT (SELECT segment.kmeans_moments(f, m) FROM par_km, par_km_model) AS moments,
       (SELECT segment.kmeans_step(f, m) FROM par_km, par_km_model) AS step,
       (SELECT segment.kmeans_fit_step('SELECT f FROM par_km', 5, driver_o) FROM par_km_opts) AS driver,
       (SELECT segment.kmeans(f, 5, o) FROM par_km, par_km_opts) AS memory;
SELECT (driver::text::jsonb->>'iterations')::int > 2 AS driver_iterated,
       (memory::text::jsonb->>'iterations')::int > 2 AS memory_iterated
  FROM par_km_serial;

-- Parallel plans, forced by making them free.  Each parallel result is
-- computed by a CREATE TABLE AS whose plan is shown, and compared in a
-- separate statement (a comparison calling our SQL helpers, which are not
-- parallel safe, would make its whole query serial).
-- EXPLAIN without the wording of InitPlans that PostgreSQL 17 changed
-- ("InitPlan 1 (returns $1)", "Params Evaluated: $1"): the same plan reads the
-- same on every major.
CREATE FUNCTION par_km_plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
        CONTINUE WHEN line ~ '^\s*Params Evaluated: ';
        RETURN NEXT regexp_replace(line, ' \(returns \$\d+(,\$\d+)*\)$', '');
    END LOOP;
END
$$;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;

-- 1. The moments and the step: partial states in the workers, combined.
SELECT par_km_plan($$
CREATE TABLE par_km_par AS
SELECT segment.kmeans_moments(f, (SELECT m FROM par_km_model)) AS moments,
       segment.kmeans_step(f, (SELECT m FROM par_km_model)) AS step
  FROM par_km$$) AS "QUERY PLAN";
CREATE TABLE par_km_par AS
SELECT segment.kmeans_moments(f, (SELECT m FROM par_km_model)) AS moments,
       segment.kmeans_step(f, (SELECT m FROM par_km_model)) AS step
  FROM par_km;
SELECT par_km_close(p.moments, s.moments) AS moments_equal,
       par_km_close(p.step, s.step) AS step_equal
  FROM par_km_serial AS s, par_km_par AS p;

-- 2. The driver: each of its queries (moments, the initial sample fit, every
-- step) is planned on its own and runs in parallel (the step's plan below;
-- auto_explain.log_nested_statements shows them all); the model is the
-- serial one.
CREATE FUNCTION par_km_compare(ma segment.kmeans_model, mb segment.kmeans_model)
    RETURNS TABLE (same_iterations boolean, same_sizes boolean, centroids_close boolean,
                   inertia_close boolean, same_labels boolean)
    LANGUAGE sql AS $$
    SELECT ma::text::jsonb->'iterations' = mb::text::jsonb->'iterations',
           ma::text::jsonb->'sizes' = mb::text::jsonb->'sizes',
           (SELECT bool_and(par_km_close(x.centroid, y.centroid))
              FROM segment.kmeans_centroids(ma) AS x
              JOIN segment.kmeans_centroids(mb) AS y USING (cluster)),
           par_km_close(ARRAY[(ma::text::jsonb->>'inertia')::float8],
                        ARRAY[(mb::text::jsonb->>'inertia')::float8]),
           (SELECT bool_and(segment.kmeans_assign(ma, k.f) = segment.kmeans_assign(mb, k.f))
              FROM par_km AS k)
$$;
SELECT par_km_plan($$
SELECT segment.kmeans_step(q.f::double precision[], (SELECT m FROM par_km_model))
  FROM (SELECT f FROM par_km) AS q(f)$$) AS "QUERY PLAN";
SELECT c.*
  FROM par_km_serial AS s, par_km_opts,
       par_km_compare(segment.kmeans_fit_step('SELECT f FROM par_km', 5, driver_o), s.driver) AS c;

-- 3. The in-memory fit: workers collect points, their states are serialized
-- to the leader, which fits; with the same seed, the same model.
SELECT par_km_plan($$
CREATE TABLE par_km_par_memory AS
SELECT segment.kmeans(f, 5, (SELECT o FROM par_km_opts)) AS m FROM par_km$$) AS "QUERY PLAN";
CREATE TABLE par_km_par_memory AS
SELECT segment.kmeans(f, 5, (SELECT o FROM par_km_opts)) AS m FROM par_km;
SELECT c.* FROM par_km_serial AS s, par_km_par_memory AS p, par_km_compare(p.m, s.memory) AS c;

-- 4. debug_parallel_query (force_parallel_mode before PostgreSQL 16): the
-- whole aggregate runs in one worker, states cross as ordinary values (the
-- in-memory fit's through its serial and deserial functions).
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'regress', false) IS NOT NULL AS forced;
CREATE TABLE par_km_forced AS
SELECT segment.kmeans_moments(f, (SELECT m FROM par_km_model)) AS moments,
       segment.kmeans_step(f, (SELECT m FROM par_km_model)) AS step,
       segment.kmeans(f, 5, (SELECT o FROM par_km_opts)) AS memory
  FROM par_km;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'off', false) IS NOT NULL AS reset;
SELECT par_km_close(p.moments, s.moments) AS moments_equal,
       par_km_close(p.step, s.step) AS step_equal
  FROM par_km_serial AS s, par_km_forced AS p;
SELECT c.* FROM par_km_serial AS s, par_km_forced AS p, par_km_compare(p.memory, s.memory) AS c;

RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
DROP FUNCTION par_km_compare(segment.kmeans_model, segment.kmeans_model);
DROP FUNCTION par_km_close(float8[], float8[]);
DROP TABLE par_km, par_km_opts, par_km_model, par_km_serial, par_km_par, par_km_par_memory,
           par_km_forced;
