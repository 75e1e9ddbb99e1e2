-- k-means against scikit-learn's definition: from the same initial centroids,
-- Lloyd and Hamerly give scikit-learn's centroids, inertia, number of
-- iterations and labels, on raw and standardised features, and when a
-- cluster empties (refilled with the point farthest from its centroid).
--
-- The reference values were computed with scikit-learn 1.2.1 (Debian 12's
-- python3-sklearn) on the same 90 points (the same doubles as below):
--
--   X = np.array([(((i*37) % 101) / 10.0 + [0.0, 12.0, 6.0][i % 3],
--                  ((i*53) % 97) / 10.0 + [0.0, 3.0, 14.0][i % 3]) for i in range(1, 91)])
--   KMeans(n_clusters=len(init), init=init, n_init=1, algorithm=a, tol=1e-4,
--          max_iter=300).fit(X)        # a in 'lloyd', 'elkan'; elkan gave the same
--   scaled: X and init as (v - X.mean(0)) / X.std(0)
--   labels printed as labels_ + 1, in order of i
SET extra_float_digits = 0;

CREATE TABLE km_sk AS
SELECT i, ARRAY[((i * 37) % 101)::float8 / 10 + (ARRAY[0, 12, 6]::float8[])[i % 3 + 1],
                ((i * 53) % 97)::float8 / 10 + (ARRAY[0, 3, 14]::float8[])[i % 3 + 1]] AS f
  FROM generate_series(1, 90) AS i;

CREATE TABLE km_sk_ref (name text, init jsonb, standardize boolean, inertia float8,
                        iterations int, centroids float8[], labels text);
INSERT INTO km_sk_ref VALUES
('raw', '[[1, 1], [15, 5], [8, 18], [3, 9]]', false, 1282.9902222222222, 3,
 '{{4.716666666666668, 2.066666666666668}, {17.07, 7.666666666666667},
   {10.73, 18.793333333333333}, {5.855555555555557, 6.822222222222222}}',
 '234231234234231234234231234234231234231234234231234234231234231231234231234234231234234231'),
('scaled', '[[1, 1], [15, 5], [8, 18]]', true, 40.24660511847141, 4,
 '{{-1.0152628701307302, -0.8375696976207831}, {1.0755814288855556, -0.42231251901697714},
   {-0.06031855875482569, 1.2598822166377606}}',
 '231231231231231231231231231231231231231231231231231231231231231231231231231231231231231231'),
('empty', '[[1, 1], [15, 5], [8, 18], [100, 100]]', false, 1279.4707104377107, 4,
 '{{5.031818181818182, 3.631818181818181}, {17.07, 7.666666666666667},
   {11.122222222222222, 19.281481481481478}, {6.627272727272727, 10.081818181818182}}',
 '231231234241231234231231234231231231231234241231234231231234231231231231234241231234231231');

CREATE TABLE km_sk_fit AS
SELECT r.name, a.algorithm,
       (SELECT segment.kmeans(s.f, jsonb_array_length(r.init),
                              jsonb_build_object('init', r.init, 'algorithm', a.algorithm,
                                                 'standardize', r.standardize))
          FROM km_sk AS s) AS m
  FROM km_sk_ref AS r, (VALUES ('lloyd'), ('hamerly')) AS a(algorithm);

SELECT f.name, f.algorithm,
       (f.m::text::jsonb->>'iterations')::int = r.iterations AS same_iterations,
       abs((f.m::text::jsonb->>'inertia')::float8 - r.inertia) <= 1e-12 * r.inertia AS same_inertia,
       (SELECT bool_and(abs(c.scaled_centroid[d] - r.centroids[c.cluster][d]) <= 1e-12)
          FROM segment.kmeans_centroids(f.m) AS c, generate_series(1, 2) AS d) AS same_centroids,
       (SELECT string_agg(segment.kmeans_assign(f.m, s.f)::text, '' ORDER BY s.i)
          FROM km_sk AS s) = r.labels AS same_labels
  FROM km_sk_fit AS f JOIN km_sk_ref AS r USING (name)
 ORDER BY f.name, f.algorithm;

-- scikit-learn's tolerance: tol times the mean variance of the (scaled) features
SELECT f.name, abs((f.m::text::jsonb->>'tol_abs')::float8 - 1e-4 * v.meanvar) <= 1e-15 AS tol_abs
  FROM km_sk_fit AS f,
       LATERAL (SELECT CASE WHEN f.name = 'scaled' THEN 1
                            ELSE (var_pop(s.f[1]) + var_pop(s.f[2])) / 2 END AS meanvar
                  FROM km_sk AS s) AS v
 WHERE f.algorithm = 'lloyd'
 ORDER BY f.name;

DROP TABLE km_sk, km_sk_ref, km_sk_fit;
