-- k-means: in-memory fit aggregate, model type, assignment.
SET extra_float_digits = 0;

-- Three well-separated blobs of 50 points, deterministic jitter of radius < 1.
CREATE TABLE km_blobs AS
SELECT b AS blob, i,
       ARRAY[c.x + 0.8 * cos(i * 1.7), c.y + 0.8 * sin(i * 2.3)]::float8[] AS f
  FROM (VALUES (1, 0.0, 0.0), (2, 10.0, 10.0), (3, 20.0, 0.0)) AS c(b, x, y),
       generate_series(1, 50) AS i;

CREATE TABLE km_model AS SELECT segment.kmeans(f, 3, '{"seed": 7}') AS m FROM km_blobs;

-- the blobs are recovered exactly: each blob is one cluster, clusters distinct
SELECT count(DISTINCT blob) AS blobs, count(DISTINCT c) AS clusters,
       count(DISTINCT (blob, c)) AS pairs
  FROM (SELECT blob, segment.kmeans_assign(m, f) AS c FROM km_blobs, km_model) AS s;

-- centroids are the blob means
SELECT bool_and(abs(k.centroid[1] - b.mx) < 1e-9 AND abs(k.centroid[2] - b.my) < 1e-9) AS means,
       bool_and(k.size = 50) AS sizes
  FROM km_model, segment.kmeans_centroids(m) AS k
  JOIN (SELECT segment.kmeans_assign(m, f) AS c, avg(f[1]) AS mx, avg(f[2]) AS my
          FROM km_blobs, km_model GROUP BY 1) AS b ON b.c = k.cluster;

-- inertia equals the sum of squared distances recomputed in SQL
SELECT abs((m::text::jsonb->>'inertia')::float8 - s.ss) < 1e-9 * s.ss AS inertia_matches,
       abs(s.ss - s.dd) < 1e-9 * s.ss AS distance_matches
  FROM km_model,
       LATERAL (SELECT sum((f[1] - k.centroid[1])^2 + (f[2] - k.centroid[2])^2) AS ss,
                       sum(segment.kmeans_distance(m, f)^2) AS dd
                  FROM km_blobs
                  JOIN segment.kmeans_centroids(m) AS k
                    ON k.cluster = segment.kmeans_assign(m, f)) AS s;

-- model metadata
SELECT j->'k' AS k, j->'dim' AS dim, j->'n' AS n, j->'n_init' AS n_init, j->'seed' AS seed,
       j->'algorithm' AS algorithm, j->'standardize' AS standardize, j->'sizes' AS sizes,
       (j->>'iterations')::int BETWEEN 1 AND 300 AS iterations_ok
  FROM (SELECT m::text::jsonb AS j FROM km_model) AS s;

-- same seed, same model, bit for bit; a different seed finds the same blobs
SELECT a.m::text = (SELECT segment.kmeans(f, 3, '{"seed": 7}')::text FROM km_blobs) AS same_seed_same_model,
       abs((a.m::text::jsonb->>'inertia')::float8 -
           (SELECT (segment.kmeans(f, 3, '{"seed": 12345}')::text::jsonb->>'inertia')::float8
              FROM km_blobs)) < 1e-9 AS other_seed_same_inertia
  FROM km_model AS a;

-- Lloyd (reference) and Hamerly give the same clustering
SELECT count(*) FILTER (WHERE segment.kmeans_assign(h, f) <> segment.kmeans_assign(l, f)) AS differ,
       abs((min(h::text)::jsonb->>'inertia')::float8 - (min(l::text)::jsonb->>'inertia')::float8) < 1e-9 AS same_inertia
  FROM km_blobs,
       (SELECT segment.kmeans(f, 3, '{"algorithm": "hamerly", "n_init": 3}') AS h,
               segment.kmeans(f, 3, '{"algorithm": "lloyd", "n_init": 3}') AS l FROM km_blobs) AS m;

-- the text form round-trips exactly
SELECT m::text::segment.kmeans_model::text = m::text AS round_trip FROM km_model;

-- k = 1: the centroid is the mean, the inertia the total sum of squares
SELECT abs(c.centroid[1] - s.mx) < 1e-9 AND abs(c.centroid[2] - s.my) < 1e-9 AS mean_centroid,
       abs((m::text::jsonb->>'inertia')::float8 - s.tss) < 1e-9 * s.tss AS total_ss
  FROM (SELECT segment.kmeans(f, 1) AS m FROM km_blobs) AS k,
       segment.kmeans_centroids(k.m) AS c,
       (SELECT avg(f[1]) AS mx, avg(f[2]) AS my,
               sum(f[1] * f[1] + f[2] * f[2]) - count(*) * (avg(f[1])^2 + avg(f[2])^2) AS tss
          FROM km_blobs) AS s;

-- k = n: every point is its own cluster, inertia 0
SELECT (m::text::jsonb->>'inertia')::float8 AS inertia, m::text::jsonb->'sizes' AS sizes
  FROM (SELECT segment.kmeans(f, 4) AS m
          FROM (VALUES ('{0,0}'::float8[]), ('{1,0}'), ('{0,1}'), ('{5,5}')) AS v(f)) AS s;

-- k > n is an error
SELECT segment.kmeans(f, 5) FROM (VALUES ('{0,0}'::float8[]), ('{1,0}'), ('{0,1}'), ('{5,5}')) AS v(f);

-- duplicate points: two distinct points, k = 2 gives inertia 0
SELECT (m::text::jsonb->>'inertia')::float8 AS inertia, m::text::jsonb->'sizes' AS sizes
  FROM (SELECT segment.kmeans(f, 2) AS m
          FROM (SELECT CASE WHEN i <= 6 THEN '{1,1}'::float8[] ELSE '{5,5}' END AS f
                  FROM generate_series(1, 10) AS i) AS v) AS s;

-- all points identical: one cluster holds them all, a notice says so
SELECT (m::text::jsonb->>'inertia')::float8 AS inertia, m::text::jsonb->'sizes' AS sizes
  FROM (SELECT segment.kmeans('{3,3}'::float8[], 3) AS m FROM generate_series(1, 10)) AS s;

-- NULL feature vectors are skipped; no rows (or only NULLs) give NULL
SELECT m::text::jsonb->'n' AS n
  FROM (SELECT segment.kmeans(f, 2) AS m
          FROM (VALUES ('{0,0}'::float8[]), (NULL), ('{1,1}'), ('{9,9}')) AS v(f)) AS s;
SELECT segment.kmeans(f, 2) IS NULL AS empty_is_null FROM km_blobs WHERE false;
SELECT segment.kmeans(NULL::float8[], 2) IS NULL AS nulls_is_null FROM generate_series(1, 3);

-- bad input
SELECT segment.kmeans(f, 2) FROM (VALUES ('{0,0}'::float8[]), ('{1,NULL}')) AS v(f);
SELECT segment.kmeans(f, 2) FROM (VALUES ('{0,0}'::float8[]), ('{1,NaN}')) AS v(f);
SELECT segment.kmeans(f, 2) FROM (VALUES ('{0,0}'::float8[]), ('{-Infinity,1}')) AS v(f);
SELECT segment.kmeans(f, 2) FROM (VALUES ('{0,0}'::float8[]), ('{1,1,1}')) AS v(f);
SELECT segment.kmeans(f, 2) FROM (VALUES ('{}'::float8[])) AS v(f);
SELECT segment.kmeans(f, 2) FROM (VALUES ('{{1,2},{3,4}}'::float8[])) AS v(f);
SELECT segment.kmeans(f, 0) FROM km_blobs;
SELECT segment.kmeans(f, NULL) FROM km_blobs;
SELECT segment.kmeans(f, 1001) FROM km_blobs;
SELECT segment.kmeans(f, i % 2 + 1) FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"seeds": 1}') FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"n_init": 0}') FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"tol": -1}') FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"algorithm": "elkan"}') FROM km_blobs;
SELECT segment.kmeans(f, 2, '[1, 2]') FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"log1p": [true]}') FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"log1p": true}')::text::jsonb->'log1p' AS log1p_all FROM km_blobs;
SELECT segment.kmeans(ARRAY[f[1] - 5, f[2]], 2, '{"log1p": true}') FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"init": [[0, 0]]}') FROM km_blobs;
SELECT segment.kmeans(f, 2, '{"init": [[0, 0], [1]]}') FROM km_blobs;
-- features so large that squared distances overflow: an error, not an infinite inertia
SELECT segment.kmeans(ARRAY[1e300 * i, 1]::float8[], 2) FROM generate_series(1, 10) AS i;
SELECT segment.kmeans(ARRAY[1e300 * i, 1]::float8[], 2, '{"standardize": true}')
  FROM generate_series(1, 10) AS i;
-- large but representable: fine
SELECT (segment.kmeans(ARRAY[1e150 * i, 1]::float8[], 2)::text::jsonb->>'inertia')::float8 > 1e300 AS large_inertia
  FROM generate_series(1, 10) AS i;

-- explicit initial centroids (raw units) make a single run from them
SELECT m::text::jsonb->'n_init' AS n_init, m::text::jsonb->'sizes' AS sizes
  FROM (SELECT segment.kmeans(f, 3, '{"init": [[1, 1], [9, 9], [19, 1]], "n_init": 5}') AS m
          FROM km_blobs) AS s;

-- max_iter 0 keeps the k-means++ centroids, which are input points
SELECT bool_and(EXISTS (SELECT 1 FROM km_blobs AS b WHERE b.f = c.centroid)) AS centroids_are_points
  FROM (SELECT segment.kmeans(f, 3, '{"max_iter": 0}') AS m FROM km_blobs) AS s,
       segment.kmeans_centroids(s.m) AS c;

-- standardisation and log1p: the transform is stored and applied by assign
CREATE TABLE km_money AS
SELECT b AS blob, ARRAY[exp(c.lx + 0.3 * cos(i)) - 1, c.y + 0.5 * sin(i * 1.9)]::float8[] AS f
  FROM (VALUES (1, 1.0, 0.0), (2, 5.0, 50.0), (3, 9.0, 0.0)) AS c(b, lx, y),
       generate_series(1, 40) AS i;
CREATE TABLE km_money_model AS
SELECT segment.kmeans(f, 3, '{"standardize": true, "log1p": [true, false]}') AS m FROM km_money;
SELECT j->'standardize' AS standardize, j->'log1p' AS log1p,
       abs((j->'center'->>0)::float8 - s.m1) < 1e-9 AS center1,
       abs((j->'scale'->>0)::float8 - s.s1) < 1e-9 AS scale1,
       abs((j->'center'->>1)::float8 - s.m2) < 1e-9 AS center2,
       abs((j->'scale'->>1)::float8 - s.s2) < 1e-9 AS scale2
  FROM (SELECT m::text::jsonb AS j FROM km_money_model) AS mm,
       (SELECT avg(ln(1 + f[1])) AS m1, stddev_pop(ln(1 + f[1])) AS s1,
               avg(f[2]) AS m2, stddev_pop(f[2]) AS s2 FROM km_money) AS s;
SELECT count(DISTINCT (blob, segment.kmeans_assign(m, f))) AS pairs,
       count(DISTINCT segment.kmeans_assign(m, f)) AS clusters
  FROM km_money, km_money_model;
-- raw centroids undo the transform: log1p of the raw centroid is the mean of log1p
SELECT bool_and(abs(ln(1 + c.centroid[1]) - b.ml) < 1e-9) AS raw_centroids
  FROM km_money_model, segment.kmeans_centroids(m) AS c
  JOIN (SELECT segment.kmeans_assign(m, f) AS c, avg(ln(1 + f[1])) AS ml
          FROM km_money, km_money_model GROUP BY 1) AS b ON b.c = c.cluster;
-- log1p needs values above -1
SELECT segment.kmeans_assign(m, '{-1, 0}') FROM km_money_model;

-- assign: wrong length, NaN, ties go to the lowest cluster number
SELECT segment.kmeans_assign(m, '{1,2,3}') FROM km_model;
SELECT segment.kmeans_assign(m, '{NaN,2}') FROM km_model;
SELECT segment.kmeans_assign(
    '{"version": 1, "k": 2, "dim": 1, "n": 2, "inertia": 0, "iterations": 1, "n_init": 1,
      "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "lloyd",
      "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1],
      "sizes": [1, 1], "centroids": [[-1], [1]]}', '{0}') AS tie;

-- invalid models
SELECT 'not json'::segment.kmeans_model;
SELECT '{"version": 1}'::segment.kmeans_model;
SELECT '{"version": 1, "k": 1, "dim": 1, "n": 2, "inertia": 0, "iterations": 1, "n_init": 1,
      "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "lloyd",
      "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [0],
      "sizes": [1], "centroids": [[1]]}'::segment.kmeans_model;
SELECT '{"version": 1, "k": 2, "dim": 1, "n": 2, "inertia": 0, "iterations": 1, "n_init": 1,
      "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "lloyd",
      "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1],
      "sizes": [1, 1], "centroids": [[1]]}'::segment.kmeans_model;

-- memory limit: the whole fit (points and working memory, per parallel
-- worker too) within maintenance_work_mem, checked as the points come in:
-- the error comes at the first point beyond (before the division by zero
-- at row 50000), never as an out-of-memory error at the end
SET maintenance_work_mem = '1MB';
SELECT segment.kmeans(ARRAY[i, 1 / (i - 50000)]::float8[], 2) FROM generate_series(1, 100000) AS i;
SELECT segment.kmeans(ARRAY[i, i]::float8[], 2, '{"workers": 3, "n_init": 4}')
  FROM generate_series(1, 100000) AS i;
-- up to the limit, the fit runs
SELECT (segment.kmeans(ARRAY[i, i]::float8[], 2)::text::jsonb)->'n' AS n
  FROM generate_series(1, 13000) AS i;
RESET maintenance_work_mem;

-- parallel aggregation gives the same model as a serial scan
CREATE TABLE km_big AS
SELECT ARRAY[(i % 4) * 10 + sin(i), (i % 4) * 5 + cos(i * 1.3)]::float8[] AS f
  FROM generate_series(1, 20000) AS i;
ANALYZE km_big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT segment.kmeans(f, 4, '{"n_init": 2}') FROM km_big;
CREATE TABLE km_par AS SELECT segment.kmeans(f, 4, '{"n_init": 2}')::text AS m FROM km_big;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SET max_parallel_workers_per_gather = 0;
SELECT m = (SELECT segment.kmeans(f, 4, '{"n_init": 2}')::text FROM km_big) AS parallel_equals_serial
  FROM km_par;
RESET max_parallel_workers_per_gather;

-- The fit aggregates keep their state in a float8[] with a combine function,
-- so Citus can push them down partially: partial states per shard, merged on
-- the coordinator.  Here: a partial state per blob, merged (also after a trip
-- through text), gives the model of the whole table.
SELECT a.aggfnoid::regprocedure AS aggregate, a.aggtranstype::regtype AS state,
       a.aggcombinefn <> 0 AS has_combine, a.aggserialfn = 0 AS no_serial
  FROM pg_aggregate AS a
 WHERE a.aggfnoid::regproc::text IN ('segment.kmeans', 'segment.kmeans_k_scores')
 ORDER BY 1::text;
CREATE AGGREGATE km_partial(float8[], integer, jsonb) (
    SFUNC = segment_internal.kmeans_trans, STYPE = float8[]);
CREATE AGGREGATE km_merge(float8[]) (
    SFUNC = segment_internal.kmeans_combine, STYPE = float8[], FINALFUNC = segment_internal.kmeans_final);
CREATE TABLE km_parts AS
SELECT blob, km_partial(f, 3, '{"seed": 7}') AS s FROM km_blobs GROUP BY blob;
SET extra_float_digits = 1;  -- the default: shortest exact text form
SELECT (SELECT km_merge(s)::text FROM km_parts) = m::text AS merged_equals_whole,
       (SELECT km_merge(s::text::float8[])::text FROM km_parts) = m::text AS text_round_trip
  FROM km_model;
SET extra_float_digits = 0;
-- options and k travel in the state: all rows and all parts must agree
SELECT segment.kmeans(f, 3, CASE WHEN i < 10 THEN '{"seed": 1}' ELSE '{"seed": 2}' END::jsonb)
  FROM km_blobs;
SELECT km_merge(s) FROM (SELECT km_partial(f, 3, '{"seed": 1}') FROM km_blobs
                         UNION ALL SELECT km_partial(f, 3, '{"seed": 2}') FROM km_blobs) AS p(s);
SELECT km_merge(s) FROM (SELECT km_partial(f, 3, '{}') FROM km_blobs
                         UNION ALL SELECT km_partial(f, 2, '{}') FROM km_blobs) AS p(s);
SELECT km_merge(s) FROM (SELECT km_partial(f, 3, '{}') FROM km_blobs
                         UNION ALL SELECT km_partial(f || 1.0, 3, '{}') FROM km_blobs) AS p(s);
-- corrupt states are rejected, not read
SELECT km_merge(s) FROM (VALUES ('{1, 2, 3}'::float8[])) AS v(s);
SELECT km_merge(s[1:6] || 0::float8 || s[8:]) FROM km_parts WHERE blob = 1;
SELECT km_merge(s[1:3] || 1e9::float8 || s[5:]) FROM km_parts WHERE blob = 1;
SELECT km_merge(s[1:1] || 5000::float8 || s[3:]) FROM km_parts WHERE blob = 1;
DROP AGGREGATE km_merge(float8[]);
DROP AGGREGATE km_partial(float8[], integer, jsonb);
DROP TABLE km_parts;

-- Restarts run in parallel workers (option workers, default
-- max_parallel_workers_per_gather from 50000 points on): each restart has
-- its own random stream, so the model does not depend on the number of
-- workers, nor on a parallel scan feeding the fit.
SELECT segment.kmeans(f, 4, '{"n_init": 6, "workers": 2}')::text =
       segment.kmeans(f, 4, '{"n_init": 6, "workers": 0}')::text AS workers_same_model
  FROM km_big;
SET client_min_messages = debug1;
SELECT segment.kmeans(f, 4, '{"n_init": 6, "workers": 2}') IS NOT NULL AS fitted FROM km_big;
RESET client_min_messages;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SELECT segment.kmeans(f, 4, '{"n_init": 2, "workers": 1}')::text = m AS parallel_scan_and_restarts
  FROM km_big, km_par GROUP BY m;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
-- above 100000 points (2000 per cluster) k-means++ draws from one uniform
-- sample shared by the restarts: the model still does not depend on the
-- workers, and it finds the three blobs of 40000 points
CREATE TABLE km_sampled AS
SELECT ARRAY[(i % 3) * 20 + sin(i), (i % 3) * 7 + cos(i * 1.7)]::float8[] AS f
  FROM generate_series(1, 120000) AS i;
SELECT segment.kmeans(f, 3, '{"n_init": 3, "workers": 1}')::text =
       segment.kmeans(f, 3, '{"n_init": 3, "workers": 0}')::text AS sampled_same_model,
       (segment.kmeans(f, 3, '{"n_init": 3}')::text::jsonb)->'sizes' AS sizes
  FROM km_sampled;
DROP TABLE km_sampled;
-- the points are sorted before the fit, so their order does not matter:
-- in any order the same model, with equal first features, -0 and 0,
-- duplicates and a far outlier (most points in one piece of the sort)
CREATE TABLE km_order AS
SELECT i, ARRAY[CASE WHEN i = 77 THEN 1e12 WHEN i % 3 = 0 THEN -0.0 ELSE (i % 5) - 2 END,
                (i * 7) % 13, (i * 11) % 5]::float8[] AS f
  FROM generate_series(1, 3000) AS i;
SELECT count(DISTINCT m) AS models
  FROM (SELECT segment.kmeans(f, 4 ORDER BY i)::text AS m FROM km_order
        UNION ALL SELECT segment.kmeans(f, 4 ORDER BY i DESC)::text FROM km_order
        UNION ALL SELECT segment.kmeans(f, 4 ORDER BY (i * 7919) % 3001)::text FROM km_order
        UNION ALL SELECT segment.kmeans(f, 4 ORDER BY f[3], f[2], i)::text FROM km_order) AS s;
UPDATE km_order SET f[1] = f[2] + sin(i);
SELECT count(DISTINCT m) AS models
  FROM (SELECT segment.kmeans(f, 4 ORDER BY i)::text AS m FROM km_order
        UNION ALL SELECT segment.kmeans(f, 4 ORDER BY i DESC)::text FROM km_order
        UNION ALL SELECT segment.kmeans(f, 4 ORDER BY (i * 7919) % 3001)::text FROM km_order) AS s;
DROP TABLE km_order;
-- stored rows of up to 12 features are short varlenas (read without a
-- copy), longer ones are not: the same fit from 12 features as from the
-- same 12 and 8 zero columns (the tolerance is relative to the mean
-- variance of the features, so it is given in absolute terms: 0)
CREATE TABLE km_wide AS
SELECT array_fill(i % 4 + (i % 7) * 0.01, ARRAY[12]) AS f12,
       array_fill(i % 4 + (i % 7) * 0.01, ARRAY[12]) || array_fill(0::float8, ARRAY[8]) AS f20
  FROM generate_series(1, 1000) AS i;
SELECT m12->'sizes' AS sizes, m12->'sizes' = m20->'sizes' AS same_sizes,
       m12->'inertia' = m20->'inertia' AS same_inertia
  FROM (SELECT segment.kmeans(f12, 3, '{"tol": 0}')::text::jsonb AS m12,
               segment.kmeans(f20, 3, '{"tol": 0}')::text::jsonb AS m20
          FROM km_wide) AS s;
DROP TABLE km_wide;
-- a restart's result is the fit with that restart alone: the best of the
-- restarts is the one of lowest inertia
SELECT (segment.kmeans(f, 4, '{"n_init": 6}')::text::jsonb->>'inertia')::float8 <=
       (segment.kmeans(f, 4, '{"n_init": 1}')::text::jsonb->>'inertia')::float8 AS best_of_six
  FROM km_big;
SELECT segment.kmeans(f, 4, '{"workers": -1}') FROM km_big;
SELECT segment.kmeans(f, 4, '{"workers": 65}') FROM km_big;

-- a long fit answers a cancel promptly, alone and with parallel workers
SET statement_timeout = '300ms';
DO $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM segment.kmeans(ARRAY[sin(i), cos(i * 1.1), sin(i * 0.7), i % 13]::float8[], 50,
                           '{"n_init": 1000, "workers": 0}')
      FROM generate_series(1, 100000) AS i;
    RAISE NOTICE 'not canceled';
EXCEPTION WHEN query_canceled THEN
    RAISE NOTICE 'canceled within 5 s: %', clock_timestamp() - t0 < interval '5 s';
END
$$;
DO $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM segment.kmeans(ARRAY[sin(i), cos(i * 1.1), sin(i * 0.7), i % 13]::float8[], 50,
                           '{"n_init": 1000, "workers": 2}')
      FROM generate_series(1, 100000) AS i;
    RAISE NOTICE 'not canceled';
EXCEPTION WHEN query_canceled THEN
    RAISE NOTICE 'canceled within 5 s: %', clock_timestamp() - t0 < interval '5 s';
END
$$;
RESET statement_timeout;
-- and the parallel workers are gone with it
SELECT pg_sleep(0.2);
SELECT count(*) AS leftover_workers FROM pg_stat_activity
 WHERE backend_type = 'parallel worker' AND leader_pid = pg_backend_pid();

DROP TABLE km_blobs, km_model, km_money, km_money_model, km_big, km_par;
