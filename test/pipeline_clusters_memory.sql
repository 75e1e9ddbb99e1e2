-- Clusters in a refresh when the buyers do not fit in the in-memory k-means
-- fit's memory (maintenance_work_mem, which limits the whole fit): the
-- refresh fits with the step driver instead, and says so.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(5);

CREATE SCHEMA tap_km;
CREATE TABLE tap_km.orders AS
SELECT (i % 200000) + 1 AS customer_id,
       timestamptz '2024-01-01 00:00+00' + (i * 7919 % 365) * interval '1 day' AS ordered_at,
       (i * 31 % 500 + 5)::numeric AS amount
  FROM generate_series(1::bigint, 400000) AS i;
SELECT lives_ok($$SELECT segment.configure('tap_km.orders', 'customer_id', 'ordered_at', 'amount',
                                           segmentation => 'km', clusters => 3, is_default => false)$$,
                'a segmentation with clusters over 200,000 buyers');
-- 16 MB holds the step driver's sample of 100,000 points, not 200,000.
SET LOCAL maintenance_work_mem = '16MB';
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT throws_ok($$SELECT segment.kmeans_train('SELECT ARRAY[frequency, monetary, recency]::float8[] FROM
                                                  (SELECT customer_id, count(*)::float8 AS frequency,
                                                          sum(amount)::float8 AS monetary,
                                                          extract(epoch FROM max(ordered_at))::float8 AS recency
                                                     FROM tap_km.orders GROUP BY 1) AS f', 3, '{}')$$,
                 '54000', NULL, '(200,000 points do not fit an in-memory fit in 16 MB)');
SET LOCAL client_min_messages = warning;
SELECT is((SELECT cluster_status FROM segment.refresh('km', '2025-01-01')), 'fitted',
          'the refresh still fits its clusters');
RESET client_min_messages;
SELECT matches((SELECT cluster_note FROM segment.refreshes WHERE segmentation = 'km' ORDER BY id DESC LIMIT 1),
               'fitted with the step driver', 'with the step driver, and says so');
SELECT is((SELECT count(*) FROM segment.profile_km WHERE cluster IS NULL), 0::bigint,
          'every buyer has a cluster');

SELECT * FROM finish();
ROLLBACK;
