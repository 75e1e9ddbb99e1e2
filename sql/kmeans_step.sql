-- k-means step aggregate (float8[] state) and its driver: same model as the
-- in-memory fit from the same initial centroids, parallel and serial.
SET extra_float_digits = 0;

CREATE TABLE km_s AS
SELECT b AS blob, i,
       ARRAY[c.x + 0.9 * cos(i * 1.7), c.y + 0.9 * sin(i * 2.3), c.z + 0.5 * cos(i * 0.3)]::float8[] AS f
  FROM (VALUES (1, 0.0, 0.0, 1.0), (2, 6.0, 6.0, 1.0), (3, 12.0, 0.0, 9.0), (4, 3.0, 1.0, 20.0))
       AS c(b, x, y, z),
       generate_series(1, 60) AS i;

-- the step and moments aggregates keep a concrete state type with a combine function
SELECT a.aggfnoid::regprocedure AS aggregate, a.aggtranstype::regtype AS state,
       a.aggcombinefn <> 0 AS has_combine
  FROM pg_aggregate AS a
 WHERE a.aggfnoid IN ('segment.kmeans_step(float8[], segment.kmeans_model)'::regprocedure,
                      'segment.kmeans_moments(float8[], segment.kmeans_model)'::regprocedure)
 ORDER BY 1::text;

-- Compare the step driver with the in-memory fit from the same initial
-- centroids (raw units), on raw features and with log1p + z-score.
CREATE FUNCTION km_compare(k int, opts jsonb) RETURNS TABLE (
    same_sizes boolean, same_iterations boolean, inertia_close boolean,
    centroids_close boolean, same_labels boolean, step_method text)
LANGUAGE sql AS $$
    WITH mem AS (SELECT segment.kmeans(f, k, opts) AS m FROM km_s),
         stp AS (SELECT segment.kmeans_fit_step('SELECT f FROM km_s', k, opts) AS m),
         j AS (SELECT mem.m::text::jsonb AS a, stp.m::text::jsonb AS b, mem.m AS mm, stp.m AS sm
                 FROM mem, stp)
    SELECT a->'sizes' = b->'sizes',
           a->'iterations' = b->'iterations',
           abs((a->>'inertia')::float8 - (b->>'inertia')::float8) <= 1e-9 * (a->>'inertia')::float8,
           (SELECT bool_and(abs(x.scaled_centroid[d] - y.scaled_centroid[d]) < 1e-9)
              FROM segment.kmeans_centroids(mm) AS x
              JOIN segment.kmeans_centroids(sm) AS y USING (cluster),
                   generate_series(1, 3) AS d),
           (SELECT bool_and(segment.kmeans_assign(mm, f) = segment.kmeans_assign(sm, f)) FROM km_s),
           b->>'method'
      FROM j;
$$;

SELECT * FROM km_compare(4, '{"init": [[1, 1, 1], [5, 5, 5], [10, 1, 10], [2, 2, 18]]}');
SELECT * FROM km_compare(4, '{"init": [[0, 0, 0], [0.5, 0.5, 0.5], [1, 1, 1], [1.5, 1.5, 1.5]]}');
SELECT * FROM km_compare(3, '{"init": [[1, 1, 2], [6, 6, 2], [2, 2, 20]], "standardize": true,
                              "log1p": [false, false, true]}');
-- an initial centroid far from every point: its cluster is empty at the first
-- step and takes the farthest point, as in the in-memory fit
SELECT * FROM km_compare(4, '{"init": [[1, 1, 1], [6, 6, 1], [12, 0, 9], [1000, 1000, 1000]]}');
SELECT * FROM km_compare(5, '{"init": [[1, 1, 1], [6, 6, 1], [12, 0, 9], [1000, 1000, 1000], [-1000, 0, 0]]}');
SELECT * FROM km_compare(1, '{"init": [[0, 0, 0]]}');

-- without init, the centroids come from a k-means++ fit on a sample: blobs recovered
SELECT count(DISTINCT blob) AS blobs, count(DISTINCT segment.kmeans_assign(m, f)) AS clusters,
       count(DISTINCT (blob, segment.kmeans_assign(m, f))) AS pairs,
       min(m::text::jsonb->>'method') AS method, min(m::text::jsonb->>'n_init') AS n_init
  FROM km_s, (SELECT segment.kmeans_fit_step('SELECT f FROM km_s', 4, '{"init_sample": 100}') AS m) AS s;

-- the same seed gives the same model
SELECT segment.kmeans_fit_step('SELECT f FROM km_s', 4, '{"seed": 5, "init_sample": 100}')::text =
       segment.kmeans_fit_step('SELECT f FROM km_s', 4, '{"seed": 5, "init_sample": 100}')::text
       AS same_seed_same_model;

-- create_kmeans_model with method step stores a step model
SELECT segment.create_kmeans_model('km_step_model', 'SELECT f FROM km_s', 4, '{"method": "step"}')::text::jsonb->>'method'
       AS method;
SELECT segment.drop_kmeans_model('km_step_model');

-- parallel step aggregation: Partial Aggregate, same sums as a serial scan
CREATE TABLE km_s_big AS
SELECT ARRAY[(i % 4) * 10 + sin(i), (i % 3) * 5 + cos(i * 1.3)]::float8[] AS f
  FROM generate_series(1, 30000) AS i;
ANALYZE km_s_big;
CREATE TABLE km_s_model AS
SELECT segment.kmeans(f, 4, '{"init": [[0, 0], [10, 5], [20, 10], [30, 0]], "max_iter": 0}') AS m
  FROM km_s_big;
-- EXPLAIN without the wording of InitPlans that PostgreSQL 17 changed
-- ("InitPlan 1 (returns $1)", "Params Evaluated: $1"): the same plan reads the
-- same on every major.
CREATE FUNCTION km_s_plan(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
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
SELECT km_s_plan('SELECT segment.kmeans_step(f, (SELECT m FROM km_s_model)) AS s FROM km_s_big') AS "QUERY PLAN";
CREATE TABLE km_s_par AS SELECT segment.kmeans_step(f, (SELECT m FROM km_s_model)) AS s FROM km_s_big;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
SELECT array_length(p.s, 1) = array_length(q.s, 1) AS same_length,
       (SELECT bool_and(abs(p.s[i] - q.s[i]) <= 1e-9 * greatest(1, abs(q.s[i])))
          FROM generate_series(1, array_length(q.s, 1)) AS i) AS parallel_equals_serial
  FROM km_s_par AS p, (SELECT segment.kmeans_step(f, m) AS s FROM km_s_big, km_s_model) AS q;
RESET max_parallel_workers_per_gather;

-- the update of a step gives the centroids of the in-memory single iteration
SELECT abs((u::text::jsonb->>'iterations')::int - 1) = 0 AS one_iteration,
       (SELECT bool_and(abs(x.centroid[d] - y.centroid[d]) < 1e-9)
          FROM segment.kmeans_centroids(u) AS x
          JOIN segment.kmeans_centroids(o) AS y USING (cluster), generate_series(1, 2) AS d)
       AS same_centroids
  FROM (SELECT segment_internal.kmeans_update(m, s) AS u FROM km_s_model, km_s_par) AS a,
       (SELECT segment.kmeans(f, 4, '{"init": [[0, 0], [10, 5], [20, 10], [30, 0]], "max_iter": 1}') AS o
          FROM km_s_big) AS b;

-- bad input
SELECT segment.kmeans_fit_step('SELECT f FROM km_s WHERE false', 2);
SELECT segment.kmeans_fit_step('SELECT f FROM km_s WHERE i = 1', 5);
SELECT segment.kmeans_fit_step('SELECT f FROM km_s', 2, '{"init": [[1, 2]]}');
SELECT segment.kmeans_fit_step('SELECT f FROM km_s', 2, '{"bogus": 1}');
SELECT segment.kmeans_fit_step('SELECT f FROM km_s', 2, '{"log1p": [true]}');
SELECT segment.kmeans_fit_step('SELECT ARRAY[1e300 * i, 1]::float8[] FROM generate_series(1, 10) AS i', 2,
                               '{"init": [[0, 1], [1e300, 1]]}');
SELECT segment.kmeans_step(f, NULL) FROM km_s;
SELECT segment.kmeans_step(ARRAY[1, 2, 3]::float8[], m) FROM km_s_model;
SELECT segment_internal.kmeans_update(m, '{1, 2, 3, 4, 5, 6}') FROM km_s_model;
SELECT segment_internal.kmeans_update(m, s) FROM km_s_model,
       (SELECT segment.kmeans_step(f, (SELECT segment.kmeans(g.f, 3) FROM km_s_big AS g)) AS s
          FROM km_s_big) AS t;
SELECT segment_internal.kmeans_start(2, 3, '{}', '{71001, 2, 5, 0, 0, 1, 1}');

DROP FUNCTION km_compare(int, jsonb);
DROP TABLE km_s, km_s_big, km_s_model, km_s_par;
