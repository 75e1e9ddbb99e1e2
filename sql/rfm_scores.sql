-- rfm_scores(): the one-call RFM segmentation of an orders relation.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\set SHOW_CONTEXT never

CREATE TABLE shop_orders (
    order_id serial, customer_id int, ordered_at timestamptz, total numeric(10,2),
    note text, made_on date);
INSERT INTO shop_orders (customer_id, ordered_at, total)
SELECT c, timestamptz '2024-06-30' - ((c * 37 + k * 11) % 360) * interval '1 day',
       10 + (c * 13 + k * 7) % 90
  FROM generate_series(1, 20) AS c, generate_series(1, 1 + c % 4) AS k;
UPDATE shop_orders SET made_on = ordered_at::date;

SELECT customer_id, first_order::date, last_order::date, recency_days, frequency, monetary,
       r, f, m, rfm_code, segment
  FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total',
                          as_of => '2024-07-01')
 ORDER BY customer_id::int;

-- The scores are those of breaks() and score() over the per-customer figures.
WITH s AS (SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total',
                                            '2024-07-01', 4))
SELECT count(*) FILTER (WHERE s.r <> segment.score(s.recency_days, b.rb, false)
                           OR s.f <> segment.score(s.frequency, b.fb)
                           OR s.m <> segment.score(s.monetary, b.mb)) AS mismatches,
       max(s.r) AS max_r
  FROM s, (SELECT segment.breaks(recency_days, 4) AS rb, segment.breaks(frequency, 4) AS fb,
                  segment.breaks(monetary, 4) AS mb FROM s) AS b;

-- Orders after as_of are not known yet: scoring as of an earlier date ignores them.
SELECT count(*) AS customers, max(last_order)::date AS last_order
  FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total', '2024-03-01');

-- A date column works as the timestamp.
SELECT count(*) AS customers FROM segment.rfm_scores('shop_orders', 'customer_id', 'made_on', 'total', '2024-07-01');

-- Key types: integer, bigint, text and uuid.
CREATE TABLE keyed_orders AS
SELECT customer_id::bigint AS big_id, 'c-' || customer_id AS text_id,
       ('00000000-0000-0000-0000-' || lpad(customer_id::text, 12, '0'))::uuid AS uuid_id,
       ordered_at, total
  FROM shop_orders;
SELECT k, count(*) AS customers, string_agg(DISTINCT segment, ', ' ORDER BY segment) AS segments
  FROM (SELECT 'bigint' AS k, * FROM segment.rfm_scores('keyed_orders', 'big_id', 'ordered_at', 'total', '2024-07-01')
        UNION ALL
        SELECT 'text', * FROM segment.rfm_scores('keyed_orders', 'text_id', 'ordered_at', 'total', '2024-07-01')
        UNION ALL
        SELECT 'uuid', * FROM segment.rfm_scores('keyed_orders', 'uuid_id', 'ordered_at', 'total', '2024-07-01')) AS s
 GROUP BY k ORDER BY k;
SELECT customer_id FROM segment.rfm_scores('keyed_orders', 'uuid_id', 'ordered_at', 'total', '2024-07-01')
 ORDER BY 1 LIMIT 1;

-- Empty relation, a single customer, all customers tied.
CREATE TABLE no_orders (customer_id int, ordered_at timestamptz, total numeric);
SELECT count(*) FROM segment.rfm_scores('no_orders', 'customer_id', 'ordered_at', 'total');
INSERT INTO no_orders VALUES (1, '2024-06-01', 10);
SELECT customer_id, recency_days, r, f, m, segment
  FROM segment.rfm_scores('no_orders', 'customer_id', 'ordered_at', 'total', '2024-07-01');
INSERT INTO no_orders VALUES (2, '2024-06-01', 10), (3, '2024-06-01', 10);
SELECT customer_id, rfm_code, segment
  FROM segment.rfm_scores('no_orders', 'customer_id', 'ordered_at', 'total', '2024-07-01')
 ORDER BY 1;
-- Rows with a NULL customer, timestamp or amount are skipped.
INSERT INTO no_orders VALUES (NULL, '2024-06-01', 10), (4, NULL, 10), (5, '2024-06-01', NULL);
SELECT count(*) FROM segment.rfm_scores('no_orders', 'customer_id', 'ordered_at', 'total', '2024-07-01');

-- Bad input: each a clear error.
SELECT * FROM segment.rfm_scores('missing_table', 'customer_id', 'ordered_at', 'total');
SELECT * FROM segment.rfm_scores('shop_orders', 'nobody', 'ordered_at', 'total');
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'nowhen', 'total');
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'nothing');
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'note', 'total');
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'note');
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total', NULL);
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total', 'infinity');
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total', buckets => 1);
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total', buckets => 11);
SELECT * FROM segment.rfm_scores(NULL, 'customer_id', 'ordered_at', 'total');
INSERT INTO shop_orders (customer_id, ordered_at, total) VALUES (99, '2024-01-01', 'NaN');
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id', 'ordered_at', 'total');
-- An identifier is quoted, never interpolated.
SELECT * FROM segment.rfm_scores('shop_orders', 'customer_id; DROP TABLE shop_orders', 'ordered_at', 'total');
SELECT count(*) > 0 AS still_there FROM shop_orders;

-- Recency: calendar days of the session's TimeZone (the default) or elapsed
-- 24-hour periods (recency => 'elapsed', as pandas' (as_of - last).days).
-- A last order at 20:00 the day before an as_of at 08:00 is 1 calendar day
-- ago but 0 elapsed days (12 hours); at 06:00 the day before, both are 1.
SET TimeZone = 'UTC';
CREATE TABLE recency_orders (customer_id int, ordered_at timestamptz, total numeric);
INSERT INTO recency_orders VALUES (1, '2024-03-09 20:00+00', 10), (2, '2024-03-09 06:00+00', 10),
                                  (3, '2024-03-01 23:59+00', 10), (4, '2024-03-10 07:00+00', 10);
SELECT c.customer_id, c.recency_days AS calendar, e.recency_days AS elapsed
  FROM segment.rfm_scores('recency_orders', 'customer_id', 'ordered_at', 'total',
                          '2024-03-10 08:00+00') AS c
  JOIN segment.rfm_scores('recency_orders', 'customer_id', 'ordered_at', 'total',
                          '2024-03-10 08:00+00', recency => 'elapsed') AS e USING (customer_id)
 ORDER BY 1;
-- the calendar day depends on the zone, the elapsed periods do not
SET TimeZone = 'Asia/Tokyo';
SELECT c.customer_id, c.recency_days AS calendar, e.recency_days AS elapsed
  FROM segment.rfm_scores('recency_orders', 'customer_id', 'ordered_at', 'total',
                          '2024-03-10 08:00+00') AS c
  JOIN segment.rfm_scores('recency_orders', 'customer_id', 'ordered_at', 'total',
                          '2024-03-10 08:00+00', recency => 'elapsed') AS e USING (customer_id)
 ORDER BY 1;
RESET TimeZone;
SELECT * FROM segment.rfm_scores('recency_orders', 'customer_id', 'ordered_at', 'total',
                                 recency => 'hours');
SELECT * FROM segment.rfm_scores('recency_orders', 'customer_id', 'ordered_at', 'total',
                                 recency => NULL);
