-- pgTAP: stored k-means models, fit over a query or a relation, describe.
BEGIN;
SELECT plan(24);

CREATE TEMP TABLE customers AS
SELECT i AS id, b AS blob,
       ARRAY[c.x + 0.5 * cos(i), c.y + 0.5 * sin(i * 1.3), c.z + 0.4 * cos(i * 0.7)]::float8[] AS features
  FROM (VALUES (1, 0.0, 0.0, 0.0), (2, 8.0, 0.0, 4.0), (3, 0.0, 8.0, 8.0), (4, 8.0, 8.0, 0.0)) AS c(b, x, y, z),
       generate_series(1, 25) AS g(i);

SELECT lives_ok($$SELECT segment.create_kmeans_model('t_rel', 'customers', 'features', 4, '{"seed": 3}')$$,
                'fit over a relation stores a model');
SELECT is((SELECT count(*)::int FROM segment.kmeans_models WHERE name = 't_rel'), 1, 'one stored row');
SELECT is((SELECT parameters->>'k' FROM segment.kmeans_models WHERE name = 't_rel'), '4',
          'parameters record k');
SELECT is((SELECT count(DISTINCT (blob, segment.kmeans_assign(segment.get_kmeans_model('t_rel'), features)))::int
             FROM customers), 4, 'blobs recovered through the stored model');
SELECT throws_ok($$SELECT segment.create_kmeans_model('t_rel', 'customers', 'features', 4)$$,
                 '42710', 'k-means model "t_rel" already exists', 'refitting under a used name is an error');

SELECT lives_ok($$SELECT segment.create_kmeans_model('t_query', 'SELECT features FROM customers WHERE blob <= 2', 2)$$,
                'fit over a query text, resolved with the caller''s search_path');
SELECT is((SELECT (model::text::jsonb->>'n')::int FROM segment.kmeans_models WHERE name = 't_query'), 50,
          'query fit saw the filtered rows');
SELECT is((SELECT (segment.get_kmeans_model('t_query')::text::jsonb->'sizes')::text), '[25, 25]',
          'cluster sizes stored in the model');

SELECT results_eq(
    $$SELECT cluster, size, share FROM segment.kmeans_describe(segment.get_kmeans_model('t_rel'), 'customers', 'features')$$,
    $$SELECT c, 25::bigint, 0.25::float8 FROM generate_series(1, 4) AS c$$,
    'describe: size and share per cluster');
SELECT ok((SELECT bool_and(abs(d.mean_features[1] - k.centroid[1]) < 1e-9
                           AND abs(d.mean_features[3] - k.centroid[3]) < 1e-9)
             FROM segment.kmeans_describe(segment.get_kmeans_model('t_rel'), 'SELECT features FROM customers') AS d
             JOIN segment.kmeans_centroids(segment.get_kmeans_model('t_rel')) AS k USING (cluster)),
          'describe: mean raw features are the centroids of a converged model');
SELECT ok((SELECT bool_and(mean_distance < 1) FROM segment.kmeans_describe(segment.get_kmeans_model('t_rel'), 'customers', 'features')),
          'describe: mean distance to the centroid is small on tight blobs');

SELECT lives_ok($$SELECT segment.drop_kmeans_model('t_query')$$, 'drop a model');
SELECT throws_ok($$SELECT segment.drop_kmeans_model('t_query')$$, '42704',
                 'k-means model "t_query" does not exist', 'dropping a missing model is an error');
SELECT throws_ok($$SELECT segment.get_kmeans_model('nope')$$, '42704',
                 'k-means model "nope" does not exist', 'getting a missing model is an error');
SELECT throws_ok($$SELECT segment.create_kmeans_model('t_empty', 'SELECT features FROM customers WHERE false', 2)$$,
                 '22023', 'no feature vectors to cluster', 'empty input is an error for the function');
SELECT throws_ok($$SELECT segment.create_kmeans_model('t_bad', 'customers', 'blob', 2)$$,
                 '42804', NULL, 'a non-array column is rejected');
SELECT throws_ok($$SELECT segment.create_kmeans_model('t_bad', 'customers', 'nosuch', 2)$$,
                 '42703', NULL, 'a missing column is rejected');
SELECT throws_ok($$SELECT segment.create_kmeans_model(NULL, 'customers', 'features', 2)$$,
                 '22004', 'model name must not be null', 'a NULL name is rejected');
SELECT throws_ok($$SELECT segment.create_kmeans_model('t_bad', 'customers', 'features', 200)$$,
                 '22023', 'number of clusters k must not exceed the number of points', 'k > n is rejected');
SELECT is((SELECT count(*)::int FROM segment.kmeans_models WHERE name LIKE 't_bad%' OR name = 't_empty'), 0,
          'failed fits store nothing');

-- numeric[] feature columns are accepted (cast to float8[])
CREATE TEMP TABLE customers_num AS SELECT id, features::numeric[] AS features FROM customers;
SELECT lives_ok($$SELECT segment.create_kmeans_model('t_num', 'customers_num', 'features', 4, '{"seed": 3}')$$,
                'numeric[] column');
SELECT ok(abs((segment.get_kmeans_model('t_num')::text::jsonb->>'inertia')::float8
              - (segment.get_kmeans_model('t_rel')::text::jsonb->>'inertia')::float8) < 1e-9,
          'same inertia from numeric[] (15 digits) and float8[]');

-- the points are collected by a serial scan (a parallel one only adds the
-- merge of the workers' arrays), without changing the session's setting
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT is(segment.kmeans_train('SELECT features FROM customers', 4, '{"seed": 3}')::text,
          segment.get_kmeans_model('t_rel')::text, 'same model from a query under parallel settings');
SELECT is(current_setting('parallel_setup_cost'), '0', 'parallel_setup_cost restored after the fit');

SELECT * FROM finish();
ROLLBACK;
