-- Choosing k: inertia per k (elbow), exact silhouette on a sample,
-- simplified silhouette on all points; checked against SQL recomputations.
SET extra_float_digits = 0;

CREATE TABLE km_c AS
SELECT row_number() OVER () AS id, b AS blob,
       ARRAY[c.x + 1.2 * cos(i * 1.7), c.y + 1.2 * sin(i * 2.3)]::float8[] AS f
  FROM (VALUES (1, 0.0, 0.0), (2, 10.0, 10.0), (3, 20.0, 0.0)) AS c(b, x, y),
       generate_series(1, 40) AS i;

CREATE TABLE km_c_scores AS
SELECT * FROM segment.kmeans_choose_k('SELECT f FROM km_c', 5, '{"silhouette_sample": 1000}');

-- one row per k = 1..5; inertia falls with k; the silhouette peaks at the true k
-- (k = 1 has no silhouette: NULL, so order with NULLS LAST)
SELECT k, inertia < lag(inertia) OVER (ORDER BY k) AS inertia_falls,
       silhouette BETWEEN -1 AND 1 AS silhouette_in_range,
       simplified_silhouette BETWEEN -1 AND 1 AS simplified_in_range,
       (model::text::jsonb->>'k')::int = k AS model_k
  FROM km_c_scores ORDER BY k;
SELECT k AS best_k FROM km_c_scores ORDER BY silhouette DESC NULLS LAST LIMIT 1;
SELECT k AS best_k_simplified FROM km_c_scores ORDER BY simplified_silhouette DESC NULLS LAST LIMIT 1;

-- k = 1 (the elbow's first point): inertia is the total sum of squares about
-- the mean, recomputed here; no silhouette
SELECT s.k, abs(s.inertia - t.tss) < 1e-9 * t.tss AS inertia_is_tss,
       s.silhouette IS NULL AS no_silhouette, s.simplified_silhouette IS NULL AS no_simplified
  FROM km_c_scores AS s,
       (SELECT sum((f[1] - m1)^2 + (f[2] - m2)^2) AS tss
          FROM km_c, (SELECT avg(f[1]) AS m1, avg(f[2]) AS m2 FROM km_c) AS m) AS t
 WHERE s.k = 1;

-- the model of each k is the one a separate fit with the same options returns
SELECT bool_and(abs(s.inertia - (f.m::text::jsonb->>'inertia')::float8) < 1e-9 * s.inertia) AS same_inertia,
       bool_and(s.model::text = f.m::text) AS same_model
  FROM km_c_scores AS s,
       LATERAL (SELECT segment.kmeans(c.f, s.k) AS m FROM km_c AS c) AS f;

-- the exact silhouette (sample covers all points) recomputed in SQL
WITH lab AS (
    SELECT s.k, c.id, c.f, segment.kmeans_assign(s.model, c.f) AS c
      FROM km_c_scores AS s, km_c AS c
), pair AS (
    SELECT a.k, a.id, a.c AS ca, b.c AS cb,
           sqrt((a.f[1] - b.f[1])^2 + (a.f[2] - b.f[2])^2) AS d
      FROM lab AS a JOIN lab AS b ON a.k = b.k AND a.id <> b.id
), per AS (
    SELECT k, id, ca, cb, avg(d) AS md FROM pair GROUP BY k, id, ca, cb
), sil AS (
    SELECT k, id, max(md) FILTER (WHERE ca = cb) AS a, min(md) FILTER (WHERE ca <> cb) AS b
      FROM per GROUP BY k, id
)
SELECT s.k, abs(s.silhouette - x.sil) < 1e-9 AS silhouette_matches
  FROM km_c_scores AS s
  JOIN (SELECT k, avg(CASE WHEN a IS NULL THEN 0 ELSE (b - a) / greatest(a, b) END) AS sil
          FROM sil GROUP BY k) AS x USING (k)
 ORDER BY s.k;

-- the simplified silhouette recomputed in SQL from the centroids
WITH d AS (
    SELECT s.k, c.id, segment.kmeans_assign(s.model, c.f) AS own, k2.cluster,
           sqrt((c.f[1] - k2.centroid[1])^2 + (c.f[2] - k2.centroid[2])^2) AS dist
      FROM km_c_scores AS s, km_c AS c, segment.kmeans_centroids(s.model) AS k2
), p AS (
    SELECT k, id, min(dist) FILTER (WHERE cluster = own) AS a,
           min(dist) FILTER (WHERE cluster <> own) AS b
      FROM d GROUP BY k, id
)
SELECT s.k, abs(s.simplified_silhouette - x.ss) < 1e-9 AS simplified_matches
  FROM km_c_scores AS s
  JOIN (SELECT k, avg((b - a) / greatest(a, b)) AS ss FROM p GROUP BY k) AS x USING (k)
 ORDER BY s.k;

-- a smaller sample: deterministic for a seed, close to the exact value here
SELECT bool_and(a.silhouette = b.silhouette) AS deterministic,
       bool_and(abs(a.silhouette - e.silhouette) < 0.1) AS close_to_exact
  FROM segment.kmeans_choose_k('km_c', 'f', 4, '{"silhouette_sample": 60}') AS a
  JOIN segment.kmeans_choose_k('km_c', 'f', 4, '{"silhouette_sample": 60}') AS b USING (k)
  JOIN km_c_scores AS e USING (k);

-- the aggregate form
SELECT array_length(segment.kmeans_k_scores(f, 3), 1) AS rows FROM km_c;

-- bad input
SELECT * FROM segment.kmeans_choose_k('SELECT f FROM km_c', 1);
SELECT * FROM segment.kmeans_choose_k('SELECT f FROM km_c WHERE id <= 3', 4);
SELECT * FROM segment.kmeans_choose_k('SELECT f FROM km_c WHERE false', 3);
SELECT * FROM segment.kmeans_choose_k('SELECT f FROM km_c', 3, '{"silhouette_sample": 1}');
SELECT * FROM segment.kmeans_choose_k('SELECT f FROM km_c', 3, '{"init": [[0, 0], [1, 1], [2, 2]]}');

DROP TABLE km_c, km_c_scores;
