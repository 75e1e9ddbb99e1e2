-- order_lines(ordered_at, launched_at, category, launch_days) per customer
-- and restock(ordered_at, quantity) per customer and product.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE products (product_id text PRIMARY KEY, launched_at timestamptz, category text);
INSERT INTO products VALUES
    ('phone-x', '2025-03-01', 'phones'),
    ('phone-y', '2024-01-01', 'phones'),
    ('case-x',  '2025-03-01', 'accessories'),
    ('coffee',  '2020-01-01', 'grocery'),
    ('filter',  NULL,         'grocery'),    -- launch unknown
    ('mystery', '2025-01-01', NULL);         -- no category
CREATE TABLE order_lines (order_id int, customer_id int, ordered_at timestamptz,
                          product_id text, quantity numeric);
INSERT INTO order_lines VALUES
    -- 1: buys the new phone and case in launch week (trend follower)
    (1, 1, '2025-03-02', 'phone-x', 1), (1, 1, '2025-03-02', 'case-x', 2),
    (2, 1, '2025-02-20', 'case-x', 1),                    -- a pre-order: before the launch
    (3, 1, '2025-06-01', 'coffee', 1),
    -- 2: buys old products, coffee every ~30 days (a re-buyer)
    (4, 2, '2025-01-01 09:00', 'coffee', 2), (5, 2, '2025-01-01 18:00', 'coffee', 1),
    (6, 2, '2025-02-01', 'coffee', 3), (7, 2, '2025-03-03', 'coffee', 3),
    (7, 2, '2025-03-03', 'phone-y', 1),
    -- 3: a product missing from the products table, one without launch or category
    (8, 3, '2025-04-01', 'gone', 1), (8, 3, '2025-04-01', 'filter', 1),
    (9, 3, '2025-04-02', 'mystery', 1),
    (10, 3, NULL, 'coffee', 1);                           -- no time: skipped

-- Trend followers and category affinity: launch_days = 30.
SELECT l.customer_id, (s).*
  FROM (SELECT l.customer_id,
               segment.order_lines(l.ordered_at, p.launched_at, p.category, 30) AS s
          FROM order_lines AS l LEFT JOIN products AS p USING (product_id)
         GROUP BY l.customer_id) AS l
 ORDER BY l.customer_id;

-- Ties for the top category: more lines, then the latest purchase, then the name.
SELECT (segment.order_lines(o, NULL, c, 0)).top_category
  FROM (VALUES (timestamptz '2025-01-01', 'b'), ('2025-01-02', 'a'), ('2025-01-03', 'b'),
               ('2025-01-03', 'a')) AS v(o, c);
SELECT (segment.order_lines(o, NULL, c, 0)).top_category
  FROM (VALUES (timestamptz '2025-01-01', 'a'), ('2025-01-02', 'a'), ('2025-01-03', 'b'),
               ('2025-01-05', 'b')) AS v(o, c);
SELECT (segment.order_lines(o, NULL, c, 0)).top_category
  FROM (VALUES (timestamptz '2025-01-01', 'b'), ('2025-01-01', 'a'), ('2025-01-01', 'ab')) AS v(o, c);
-- Many categories (the map grows and stays sorted).
SELECT (s).categories, (s).top_category, (s).top_category_lines, (s).lines
  FROM (SELECT segment.order_lines(timestamptz '2025-01-01' + i * interval '1 hour', NULL,
                                   'c' || (i * 7 % 500), 0) AS s
          FROM generate_series(1, 2000) AS i) AS x;

-- Re-stock per customer and product: same-day lines are one purchase; the
-- expected date is the last purchase day + its units times the days a unit lasted.
SELECT customer_id, product_id, (r).*
  FROM (SELECT customer_id, product_id, segment.restock(ordered_at, quantity::float8) AS r
          FROM order_lines GROUP BY customer_id, product_id) AS s
 ORDER BY customer_id, product_id;
-- Equal quantities: the expected date is last purchase + mean gap.
SELECT (r).mean_gap_days, (r).days_per_unit, (r).expected_restock
  FROM (SELECT segment.restock(o, 1) AS r
          FROM (VALUES (timestamptz '2025-01-01'), ('2025-01-11'), ('2025-01-31')) AS v(o)) AS s;
-- A NULL quantity is one unit; purchase days are days in the session's time zone.
SELECT (segment.restock(o, q)).purchase_days, (segment.restock(o, q)).units
  FROM (VALUES (timestamptz '2025-01-01 23:00+00', NULL::float8), ('2025-01-02 01:00+00', 2)) AS v(o, q);
SET timezone = 'America/New_York';
SELECT (segment.restock(o, q)).purchase_days
  FROM (VALUES (timestamptz '2025-01-01 23:00+00', NULL::float8), ('2025-01-02 01:00+00', 2)) AS v(o, q);
SET timezone = 'UTC';
-- Many purchase days (the day set grows past its inline room).
SELECT (r).purchase_days, (r).mean_gap_days, (r).expected_restock
  FROM (SELECT segment.restock(timestamptz '2024-01-01' + (i % 100) * interval '2 days', 1) AS r
          FROM generate_series(1, 1000) AS i) AS s;

-- No rows: NULL.
SELECT segment.order_lines(ordered_at, NULL, NULL, 30) IS NULL AS lines_null,
       segment.restock(ordered_at, 1) IS NULL AS restock_null
  FROM order_lines WHERE ordered_at IS NULL;

-- Bad input: each a clear error.
SELECT segment.order_lines(ordered_at, NULL, NULL, NULL) FROM order_lines;
SELECT segment.order_lines(ordered_at, NULL, NULL, -1) FROM order_lines;
SELECT segment.order_lines(ordered_at, NULL, NULL, customer_id) FROM order_lines;
SELECT segment.order_lines('infinity', NULL, NULL, 30);
SELECT segment.order_lines('2025-01-01', '-infinity', NULL, 30);
SELECT segment.restock(ordered_at, -1) FROM order_lines;
SELECT segment.restock(ordered_at, 0) FROM order_lines;
SELECT segment.restock(ordered_at, 'NaN') FROM order_lines;
SELECT segment.restock(ordered_at, 'Infinity') FROM order_lines;
SELECT segment.restock('-infinity', 1);

-- Purchase days are calendar days in the session's time zone, as
-- ordered_at::date gives them, across midnights and daylight-saving changes
-- (the zone offsets are cached, not looked up per line).
SET TimeZone = 'America/New_York';
CREATE TEMP TABLE restock_times AS
SELECT timestamptz '2024-03-09 20:00-05' + i * interval '3 hours 7 minutes' AS t,
       (i * 7919) % 1000 AS h
  FROM generate_series(0, 3000) AS i;      -- both 2024 changes, midnights, in a shuffled order
SELECT (r).purchase_days = d.days AS same_days,
       (r).last_units = d.last_day_lines AS same_last_day,
       (r).mean_gap_days = (d.last_day - d.first_day)::float8 / (d.days - 1) AS same_mean_gap
  FROM (SELECT segment.restock(t, 1) AS r FROM (SELECT t FROM restock_times ORDER BY h) AS s) AS a,
       (SELECT count(DISTINCT t::date) AS days, min(t::date) AS first_day, max(t::date) AS last_day,
               count(*) FILTER (WHERE t::date = (SELECT max(t::date) FROM restock_times)) AS last_day_lines
          FROM restock_times) AS d;
RESET TimeZone;
