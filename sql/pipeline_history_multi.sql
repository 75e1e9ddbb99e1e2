-- History with several segmentations over one shop: segments_at() and
-- transitions() read only the history of the refresh's own segmentation
-- (issue 12, finding 10: the parameter refresh_id was read as the column
-- segment.history.refresh_id, mixing in every segmentation's history).
SET TimeZone = 'UTC';
\set SHOW_CONTEXT never
-- refresh ids from 1 (the tests before leave no refresh behind)
SELECT count(*) AS refreshes_before FROM segment.refreshes;
SELECT setval('segment.refreshes_id_seq', 1, false) IS NOT NULL AS ids_reset;

CREATE SCHEMA hist_shop;
CREATE TABLE hist_shop.orders (customer_id integer, ordered_at timestamptz, amount numeric, status text);
INSERT INTO hist_shop.orders
SELECT i % 300 + 1, timestamptz '2024-01-01' + (i * 37 % 360) * interval '1 day',
       (i * 13) % 300 + 5, CASE WHEN i % 17 = 0 THEN 'cancelled' ELSE 'paid' END
  FROM generate_series(1, 3000) AS i;

-- Four segmentations of the same orders, scored differently, so that one
-- customer has a different segment in each.
SELECT segment.configure('hist_shop.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'a');
SELECT segment.configure('hist_shop.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'b',
                         buckets => 3);
SELECT segment.configure('hist_shop.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'c',
                         status => 'status', exclude_status => '{cancelled}', new_days => 90);
SELECT segment.configure('hist_shop.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'd',
                         buckets => 4, lapsing_factor => 1.5);

-- Interleaved refreshes: a b c d a b c d a, nothing changes in between.
SELECT x.name, (segment.refresh(x.name, as_of => '2025-01-01')).changed
  FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (5, 'a'), (6, 'b'), (7, 'c'), (8, 'd'), (9, 'a'))
       AS x(i, name)
 ORDER BY x.i;
SELECT id, segmentation, customers, changed FROM segment.refreshes ORDER BY id;
-- The segmentations do disagree about some customers.
SELECT count(DISTINCT segment) > 1 AS segmentations_differ
  FROM (SELECT customer_id, segment FROM segment.profile_a
        UNION ALL SELECT customer_id, segment FROM segment.profile_b
        UNION ALL SELECT customer_id, segment FROM segment.profile_c
        UNION ALL SELECT customer_id, segment FROM segment.profile_d) AS p
 GROUP BY customer_id ORDER BY 1 DESC LIMIT 1;

-- segments_at() of every refresh is its segmentation's profile (nothing
-- changed since): one row per customer, the same segment.
CREATE FUNCTION pg_temp.profile_segments(segmentation text)
    RETURNS TABLE (customer_id text, segment text) LANGUAGE plpgsql AS
$$
BEGIN
    RETURN QUERY EXECUTE format('SELECT customer_id::text, segment FROM segment.%I',
                                'profile_' || segmentation);
END
$$;
SELECT r.id, r.segmentation,
       (SELECT count(*) FROM segment.segments_at(r.id)) AS rows,
       (SELECT count(DISTINCT customer_id) FROM segment.segments_at(r.id)) AS customers,
       (SELECT count(*) FROM (SELECT * FROM segment.segments_at(r.id)
                              EXCEPT SELECT * FROM pg_temp.profile_segments(r.segmentation)) AS x) AS not_in_profile,
       (SELECT count(*) FROM (SELECT * FROM pg_temp.profile_segments(r.segmentation)
                              EXCEPT SELECT * FROM segment.segments_at(r.id)) AS x) AS missing
  FROM segment.refreshes AS r ORDER BY r.id;

-- A refresh that changed nothing: no move in its transitions.
SELECT s.name,
       (SELECT count(*) FROM segment.transitions(segmentation => s.name)
         WHERE from_segment IS DISTINCT FROM to_segment) AS moves,
       (SELECT sum(customers) FROM segment.transitions(segmentation => s.name)) AS customers
  FROM segment.segmentations AS s ORDER BY s.name;
SELECT count(*) AS moves FROM segment.transitions(from_refresh => 1, to_refresh => 9) WHERE from_segment IS DISTINCT FROM to_segment;

-- A real change: 20 customers stop buying after June 2024 (their later
-- orders are cancelled, which only c leaves out), and 5 disappear.
UPDATE hist_shop.orders SET status = 'cancelled'
 WHERE customer_id BETWEEN 1 AND 20 AND ordered_at >= '2024-07-01';
DELETE FROM hist_shop.orders WHERE customer_id BETWEEN 296 AND 300;
CREATE TEMP TABLE before_c AS SELECT customer_id::text, segment FROM segment.profile_c;
SELECT (segment.refresh('c', as_of => '2025-01-01')).changed > 0 AS c_changed;
SELECT (segment.refresh('a', as_of => '2025-01-01')).changed >= 5 AS a_changed;
-- transitions() of c are exactly the changes of its profile.
SELECT (SELECT coalesce(sum(customers), 0) FROM segment.transitions(segmentation => 'c')
         WHERE from_segment IS DISTINCT FROM to_segment) =
       (SELECT count(*) FROM before_c AS b
          FULL JOIN segment.profile_c AS p ON p.customer_id::text = b.customer_id
         WHERE b.segment IS DISTINCT FROM p.segment) AS c_moves_match;
SELECT sum(customers) AS gone_from_a FROM segment.transitions(segmentation => 'a') WHERE to_segment IS NULL;
-- segments_at() of the latest refreshes is the profile again; of the earlier
-- one of c, the profile before the change.
SELECT r.segmentation,
       (SELECT count(*) FROM (SELECT * FROM segment.segments_at(r.id)
                              EXCEPT SELECT * FROM pg_temp.profile_segments(r.segmentation)) AS x)
     + (SELECT count(*) FROM (SELECT * FROM pg_temp.profile_segments(r.segmentation)
                              EXCEPT SELECT * FROM segment.segments_at(r.id)) AS x) AS differences
  FROM segment.refreshes AS r
 WHERE r.id = (SELECT s.last_refresh FROM segment.segmentations AS s WHERE s.name = r.segmentation)
 ORDER BY r.segmentation;
SELECT (SELECT count(*) FROM (SELECT * FROM segment.segments_at(7) EXCEPT SELECT * FROM before_c) AS x)
     + (SELECT count(*) FROM (SELECT * FROM before_c EXCEPT SELECT * FROM segment.segments_at(7)) AS x)
       AS c_before_differences;
-- Refreshes of two segmentations cannot be compared; unknown ones are errors.
SELECT * FROM segment.transitions(from_refresh => 1, to_refresh => 2);
SELECT * FROM segment.transitions(from_refresh => 1, to_refresh => 999);
SELECT count(*) FROM segment.segments_at(999);

DROP SCHEMA hist_shop CASCADE;
SELECT segment.drop_segmentation(name) FROM segment.segmentations ORDER BY name;
-- leave the refresh ids as they were for the tests that follow
SELECT setval('segment.refreshes_id_seq', 1, false) IS NOT NULL AS ids_reset
 WHERE NOT EXISTS (SELECT FROM segment.refreshes);
