-- Pipeline: k-means clusters in refresh(): configuration checks, clusters
-- that recover known groups, refit and reuse of the stored model, the
-- description and names of the clusters, rules on them, failures.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never

CREATE SCHEMA pipe_km;

-- A shop with three kinds of customer, 60 of each (seeded):
--   A  every two weeks for a year, about 150 a basket, still buying;
--   B  once or twice, 300 to 500 days ago, about 25;
--   C  monthly for half a year, about 50, last seen one to three months ago.
SELECT setseed(0.25);
CREATE TABLE pipe_km.customers AS
SELECT i AS customer_id, (ARRAY['A', 'B', 'C'])[(i - 1) / 60 + 1] AS kind
  FROM generate_series(1, 180) AS i;
CREATE TABLE pipe_km.orders (customer_id integer, ordered_at timestamptz, amount numeric);
INSERT INTO pipe_km.orders
SELECT c.customer_id,
       timestamptz '2025-06-30' - (random() * 10 + k * 14) * interval '1 day',
       round((150 * (0.7 + 0.6 * random()))::numeric, 2)
  FROM pipe_km.customers AS c, generate_series(0, 19 + (random() * 10)::integer) AS k
 WHERE c.kind = 'A';
INSERT INTO pipe_km.orders
SELECT c.customer_id,
       timestamptz '2025-06-30' - (300 + random() * 200 + k * 20) * interval '1 day',
       round((25 * (0.7 + 0.6 * random()))::numeric, 2)
  FROM pipe_km.customers AS c, generate_series(0, (random())::integer) AS k
 WHERE c.kind = 'B';
INSERT INTO pipe_km.orders
SELECT c.customer_id,
       timestamptz '2025-06-30' - (30 + random() * 60 + k * 30) * interval '1 day',
       round((50 * (0.7 + 0.6 * random()))::numeric, 2)
  FROM pipe_km.customers AS c, generate_series(0, 4 + (random() * 3)::integer) AS k
 WHERE c.kind = 'C';
INSERT INTO pipe_km.customers VALUES (181, 'prospect');

-- Bad clustering settings are refused by configure(), before anything is stored.
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 1);
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 51);
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_features => '{recency_days,basket}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_features => '{segment}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_features => '{p_alive,frequency}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_features => '{}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_features => '{frequency,NULL}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_features => '{frequency,frequency}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_features => NULL);
-- (terse: the hint, k-means' list of its options, is the k-means section's)
\set VERBOSITY terse
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_options => '{"restarts": 5}');
\set VERBOSITY default
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_options => '{"n_init": 0}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_options => '{"log1p": [true, false]}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_options => '{"init": [[1, 1, 1]]}');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_options => '[1]');
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', clusters => 3,
                         cluster_model => 'sometimes');
SELECT count(*) FROM segment.segmentations;

-- Clusters on the default features (recency, frequency, monetary; log1p and
-- z-scores): each kind of customer is one cluster.
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount',
                         customers => 'pipe_km.customers', clusters => 3);
SELECT id AS r1, cluster_status, cluster_note FROM segment.refresh(as_of => '2025-06-30') \gset
SELECT :r1 > 0 AS refreshed, :'cluster_status' AS cluster_status, :'cluster_note' AS cluster_note;
SELECT c.kind, p.cluster, count(*)
  FROM segment.profile_default AS p JOIN pipe_km.customers AS c USING (customer_id)
 GROUP BY 1, 2 ORDER BY 1, 2;
CREATE TABLE pipe_km.first_clusters AS
SELECT c.kind, min(p.cluster) AS cluster
  FROM segment.profile_default AS p JOIN pipe_km.customers AS c USING (customer_id)
 WHERE p.cluster IS NOT NULL GROUP BY c.kind;
SELECT count(DISTINCT cluster) AS clusters, count(*) AS kinds FROM pipe_km.first_clusters;
-- The distance is to the assigned (nearest) centroid, in the model's space.
SELECT count(*) AS clustered,
       count(*) FILTER (WHERE p.cluster = segment.kmeans_assign(m.model, ARRAY[p.recency_days, p.frequency, p.monetary]::float8[])
                          AND p.cluster_distance = segment.kmeans_distance(m.model, ARRAY[p.recency_days, p.frequency, p.monetary]::float8[]))
           AS same_as_kmeans_assign
  FROM segment.profile_default AS p, segment.kmeans_models AS m
 WHERE m.name = 'segmentation.default' AND p.cluster IS NOT NULL;
SELECT cluster, cluster_name, cluster_distance FROM segment.profile_default WHERE customer_id = 181;

-- The stored model, and what the refresh recorded.
SELECT name, parameters->'features' AS features, parameters->'k' AS k, parameters->'options' AS options,
       (parameters->>'refresh_id')::bigint = :r1 AS this_refresh, parameters->'warm_start' AS warm_start,
       parameters->>'source' AS source
  FROM segment.kmeans_models;
SELECT cluster_status, cluster_note, (kmeans::text)::jsonb->'n' AS fitted_on, (kmeans::text)::jsonb->'k' AS k
  FROM segment.refresh_models;
SELECT count(*) AS describe_rows FROM segment.kmeans_describe(segment.get_kmeans_model('segmentation.default'),
    (SELECT parameters->>'source' FROM segment.kmeans_models WHERE name = 'segmentation.default'));

-- What each cluster is, for naming it.
SELECT d.cluster, f.kind, d.name, d.customers, round(d.share::numeric, 3) AS share,
       round(d.mean_recency_days::numeric) AS recency_days, round(d.mean_frequency::numeric, 1) AS frequency,
       round(d.mean_monetary::numeric) AS monetary, round(d.mean_distance::numeric, 2) AS distance,
       d.rfm_segments
  FROM segment.describe_clusters() AS d JOIN pipe_km.first_clusters AS f USING (cluster)
 ORDER BY f.kind;
SELECT (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(centroid) AS k) AS centroid_keys,
       (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(mean_features) AS k) AS mean_keys,
       abs((mean_features->>'frequency')::float8 - mean_frequency) < 1e-9 AS mean_frequency_agrees
  FROM segment.describe_clusters() WHERE cluster = 1;

-- Names, copied into the profile by the next refresh, and rules on them.
SELECT segment.name_cluster(f.cluster, CASE f.kind WHEN 'A' THEN 'Regulars' WHEN 'B' THEN 'Gone'
                                                   ELSE 'Monthly' END)
  FROM pipe_km.first_clusters AS f ORDER BY f.kind;
SELECT segment.name_cluster(f.cluster, 'Regulars') FROM pipe_km.first_clusters AS f WHERE f.kind = 'C';
SELECT segment.name_cluster(4, 'Nobody');
SELECT segment.name_cluster(NULL, 'Nobody');
SELECT segment.name_cluster(1, '');
SELECT segment.name_cluster(1, 'x', 'nope');
SELECT segment.add_rule('Loyal Regulars', 'cluster_name = ''Regulars'' AND recency_days <= 30', 15);
SELECT segments->'Loyal Regulars' AS loyal_regulars FROM segment.refresh(as_of => '2025-06-30');
SELECT c.kind, p.cluster_name, p.segment, count(*)
  FROM segment.profile_default AS p JOIN pipe_km.customers AS c USING (customer_id)
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
SELECT (profile_of(1)).cluster_name, segment_of(1),
       (profile_of(1)).cluster = (SELECT cluster FROM pipe_km.first_clusters WHERE kind = 'A') AS cluster;
SELECT name, customers FROM segment.describe_clusters() ORDER BY name;

-- Refit (the default): new orders, a model fitted again from the previous
-- centroids, so that the numbers, and the names, keep their meaning.
INSERT INTO pipe_km.orders
SELECT c.customer_id, timestamptz '2025-07-15', 140 FROM pipe_km.customers AS c WHERE c.kind = 'A';
SELECT id AS r3, cluster_status, cluster_note FROM segment.refresh(as_of => '2025-07-20') \gset
SELECT :'cluster_status' AS cluster_status, :'cluster_note' AS cluster_note;
SELECT (parameters->>'refresh_id')::bigint = :r3 AS refitted_now, parameters->'warm_start' AS warm_start
  FROM segment.kmeans_models;
SELECT c.kind, p.cluster = f.cluster AS same_cluster, p.cluster_name, count(*)
  FROM segment.profile_default AS p
  JOIN pipe_km.customers AS c USING (customer_id)
  JOIN pipe_km.first_clusters AS f USING (kind)
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

-- A refresh that fails after its fit leaves the stored model as it was
-- (one transaction), as it leaves the profile.
SELECT segment.add_rule('Fragile', '1 / (frequency - frequency) > 0', 90);
SELECT segment.refresh(as_of => '2025-07-21');
SELECT (parameters->>'refresh_id')::bigint = :r3 AS model_unchanged FROM segment.kmeans_models;
SELECT r.as_of FROM segment.refreshes AS r JOIN segment.segmentations AS x ON r.id = x.last_refresh
 WHERE x.name = 'default';
SELECT segment.drop_rule('Fragile');

-- Reuse: the model of the last fit assigns the customers of every refresh.
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount',
                         customers => 'pipe_km.customers', clusters => 3, cluster_model => 'reuse');
CREATE TABLE pipe_km.kept AS SELECT model::text AS model, parameters FROM segment.kmeans_models;
INSERT INTO pipe_km.orders
SELECT c.customer_id, timestamptz '2025-08-01', 60 FROM pipe_km.customers AS c WHERE c.kind = 'C';
SELECT cluster_status, cluster_note = format('model fitted at refresh %s', :r3) AS note_names_the_fit
  FROM segment.refresh(as_of => '2025-08-05');
SELECT m.model::text = k.model AS same_model, m.parameters = k.parameters AS same_parameters
  FROM segment.kmeans_models AS m, pipe_km.kept AS k;
SELECT count(*) AS clustered,
       count(*) FILTER (WHERE p.cluster = segment.kmeans_assign(k.model::segment.kmeans_model,
                                                              ARRAY[p.recency_days, p.frequency, p.monetary]::float8[]))
           AS assigned_by_the_kept_model
  FROM segment.profile_default AS p, pipe_km.kept AS k WHERE p.cluster IS NOT NULL;
SELECT count(*) FROM segment.cluster_names WHERE segmentation = 'default';

-- Another clustering (features, k or options) drops the model and the names.
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount',
                         customers => 'pipe_km.customers', clusters => 2, cluster_model => 'reuse',
                         cluster_features => '{frequency,monetary}',
                         cluster_options => '{"seed": 7, "standardize": false}');
SELECT count(*) AS models FROM segment.kmeans_models;
SELECT count(*) AS names FROM segment.cluster_names;
SELECT cluster_status, cluster_note FROM segment.refresh(as_of => '2025-08-05');
SELECT parameters->'features' AS features, parameters->'options' AS options,
       (model::text)::jsonb->'standardize' AS standardize, (model::text)::jsonb->'log1p' AS log1p
  FROM segment.kmeans_models;
SELECT cluster, count(*) FROM segment.profile_default GROUP BY 1 ORDER BY 1;
SELECT segment.drop_rule('Loyal Regulars');

-- Clusters on lifetime value, in a shop where it cannot be computed (nobody
-- seems to leave: no BG/NBD maximum): both are left empty, with warnings
-- (sql/pipeline_clv.sql clusters on lifetime value that is computed).
SELECT segment.configure('pipe_km.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'value',
                         clv => true, clv_min_repeat_buyers => 5, clusters => 2,
                         cluster_features => '{p_alive,clv}', cluster_options => '{"log1p": [false, true]}');
-- The fit does not converge; its warning names the iterations and parameters
-- where it stopped, which differ between platforms on such a flat likelihood
-- (libm, compiler), so the outcome is checked instead of the message.
SET client_min_messages = error;
SELECT clv_status, cluster_status,
       clv_note ~ '^the BG/NBD fit did not converge \(\d+ iterations, r \S+, alpha \S+, a \S+, b \S+\)$' AS note_names_where_it_stopped,
       cluster_note
  FROM segment.refresh('value', '2025-08-05');
RESET client_min_messages;
SELECT count(*) AS customers, count(cluster) AS clustered, count(*) FILTER (WHERE clv IS NOT NULL) AS with_clv
  FROM segment.profile_value;

-- Failures at refresh time leave the clusters empty, with a warning and a
-- note; the rest of the refresh is done.  Fewer buyers than clusters:
CREATE TABLE pipe_km.tiny (customer_id integer, ordered_at timestamptz, amount numeric);
INSERT INTO pipe_km.tiny VALUES (1, '2025-06-01', 10), (2, '2025-06-02', 20);
SELECT segment.configure('pipe_km.tiny', 'customer_id', 'ordered_at', 'amount', segmentation => 'tiny',
                         clusters => 3);
SELECT customers, cluster_status, cluster_note FROM segment.refresh('tiny', '2025-06-30');
SELECT customer_id, cluster, segment IS NOT NULL AS has_segment FROM segment.profile_tiny ORDER BY 1;
SELECT * FROM segment.describe_clusters('tiny');
-- A transform the data does not allow (log1p of a negative number of days):
SELECT segment.configure('pipe_km.tiny', 'customer_id', 'ordered_at', 'amount', segmentation => 'tiny',
                         clusters => 2, cluster_features => '{due_in_days,monetary}');
INSERT INTO pipe_km.tiny VALUES (1, '2025-06-05', 10), (2, '2025-06-12', 20);
SELECT cluster_status, cluster_note FROM segment.refresh('tiny', '2025-06-30');
SELECT segment.name_cluster(1, 'x', 'value');
SELECT count(*) AS kept_models FROM segment.kmeans_models;

-- Without clusters there is nothing to describe or name.
SELECT segment.configure('pipe_km.tiny', 'customer_id', 'ordered_at', 'amount', segmentation => 'tiny');
SELECT * FROM segment.describe_clusters('tiny');
SELECT segment.name_cluster(1, 'x', 'tiny');

SELECT segment.drop_segmentation(name) FROM segment.segmentations ORDER BY name;
SELECT count(*) AS models_left FROM segment.kmeans_models;
DROP SCHEMA pipe_km CASCADE;
