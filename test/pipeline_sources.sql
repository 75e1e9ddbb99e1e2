-- The sources of a segmentation on generated data whose segments are known:
-- 3000 customers in planted groups (by id), each group given the events,
-- support contacts and order lines of one behaviour, and a control group
-- that comes close without having it.  The refresh must find each group
-- exactly (set equality of customer ids per flag), segment_of() must give
-- each its segment, and a second refresh must record exactly the changes.
--   id % 10 = 0   abandoned a cart on 06-26 (orders in March and May)
--   id % 20 = 1   control: cart add followed by a checkout and an order
--   id % 20 = 11  control: cart left on 06-10, more than 7 days ago
--   id % 10 = 2   curious prospects: no order, visits on 06-15
--   id % 10 = 3   control: no order, last visit 05-01, outside the window
--   id % 20 = 4   indecisive: 6 visits in June, last order in 2024
--   id % 20 = 14  indecisive: 3 cart adds (then a checkout event), order in 2024
--   id % 10 = 5   control: 4 visits, order in 2024; a "wishlist" event (unknown type)
--   id % 20 = 6   newsletter subscribers
--   id % 20 = 16  control: subscribed, then unsubscribed
--   id % 20 = 7   angry Champions: 1 or 2 negative tickets in June, 5 recent big orders
--   id % 20 = 17  control: Champions, a negative ticket in April, a good one in June
--   id % 20 = 8   trend followers: each product bought 10 days after its launch
--   id % 20 = 18  control: each product bought 100 days after its launch
--   id % 20 = 9   re-stock due: "refill" bought on 3 days, gap d, due as_of + k
--   id % 20 = 19  control: re-stock due 30 or more days after as_of
--   id % 3 = 0    customers in Germany
-- Plus 50 events of keys that are not customers and 10 lines of an order
-- that does not exist.  as_of is 2025-07-01 00:00 UTC.
BEGIN;
SELECT plan(38);
SET LOCAL TimeZone = 'UTC';

CREATE SCHEMA tap_src;
CREATE TABLE tap_src.customers (id integer PRIMARY KEY, country text NOT NULL);
INSERT INTO tap_src.customers
SELECT i, CASE WHEN i % 3 = 0 THEN 'DE' ELSE 'FR' END FROM generate_series(1, 3000) AS i;

-- The re-stock gap d and the days k the re-stock is due after as_of.
CREATE TABLE tap_src.restock_plan AS
SELECT id, CASE WHEN id % 20 = 9 THEN 20 + id % 5 ELSE 40 + id % 5 END AS d,
       CASE WHEN id % 20 = 9 THEN (id / 20) % 10 END AS k
  FROM tap_src.customers WHERE id % 10 = 9;
-- The last purchase day: as_of - d + k, or (controls) 10 days before as_of.
ALTER TABLE tap_src.restock_plan ADD COLUMN last_day date;
UPDATE tap_src.restock_plan SET last_day = CASE WHEN k IS NOT NULL THEN date '2025-07-01' - d + k
                                                 ELSE date '2025-06-21' END;

CREATE TABLE tap_src.orders (order_id bigint PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                             amount numeric);
INSERT INTO tap_src.orders
SELECT c.id * 10 + o.j, c.id, o.at, o.amount
  FROM tap_src.customers AS c
 CROSS JOIN LATERAL (
       SELECT j, at, amount FROM (VALUES (1, timestamptz '2025-03-01 12:00', 20), (2, '2025-05-01 12:00', 20))
                                 AS v(j, at, amount) WHERE c.id % 10 = 0
       UNION ALL SELECT 1, '2025-06-26 12:00', 30 WHERE c.id % 20 = 1
       UNION ALL SELECT 1, '2025-01-01 12:00', 30 WHERE c.id % 20 = 11
       UNION ALL SELECT 1, '2024-10-01 12:00', 40 WHERE c.id % 10 IN (4, 5)
       UNION ALL SELECT j, timestamptz '2025-06-28 12:00' - j * interval '7 days', 300
                   FROM generate_series(0, 4) AS j WHERE c.id % 10 = 7
       UNION ALL SELECT j, at, 50 FROM (VALUES (1, timestamptz '2025-03-01 12:00'), (2, '2025-05-01 12:00'))
                                      AS v(j, at) WHERE c.id % 10 = 8
       UNION ALL SELECT j, (r.last_day - (2 - j) * r.d) + time '12:00', 25
                   FROM tap_src.restock_plan AS r, generate_series(0, 2) AS j WHERE r.id = c.id
       ) AS o;

CREATE TABLE tap_src.events (customer_id integer, event_type text, occurred_at timestamptz, product text);
INSERT INTO tap_src.events
SELECT c.id, e.t, e.at, e.p
  FROM tap_src.customers AS c
 CROSS JOIN LATERAL (
       SELECT t, at, p FROM (VALUES ('visit', timestamptz '2025-06-25 10:00', NULL),
                                    ('cart_add', '2025-06-26 10:00', 'p' || c.id % 7),
                                    ('visit', '2025-07-05 10:00', NULL)) AS v(t, at, p) WHERE c.id % 10 = 0
       UNION ALL
       SELECT t, at, p FROM (VALUES ('visit', timestamptz '2025-06-26 09:00', NULL),
                                    ('cart_add', '2025-06-26 10:00', 'p1'),
                                    ('checkout', '2025-06-26 11:59', NULL)) AS v(t, at, p) WHERE c.id % 20 = 1
       UNION ALL
       SELECT t, at, p FROM (VALUES ('visit', timestamptz '2025-06-10 10:00', NULL),
                                    ('cart_add', '2025-06-10 10:00', 'p' || c.id % 5)) AS v(t, at, p)
        WHERE c.id % 20 = 11
       UNION ALL
       SELECT t, at, p FROM (VALUES ('visit', timestamptz '2025-06-15 10:00', NULL),
                                    ('product_view', '2025-06-15 10:02', 'p3')) AS v(t, at, p) WHERE c.id % 10 = 2
       UNION ALL SELECT 'visit', '2025-05-01 10:00', NULL WHERE c.id % 10 = 3
       UNION ALL SELECT 'visit', timestamptz '2025-06-02 20:00' + j * interval '5 days', NULL
                   FROM generate_series(0, 5) AS j WHERE c.id % 20 = 4
       UNION ALL
       SELECT t, at, p FROM (VALUES ('cart_add', timestamptz '2025-06-05 10:00', 'p1'),
                                    ('cart_add', '2025-06-06 10:00', 'p2'), ('cart_add', '2025-06-07 10:00', 'p3'),
                                    ('checkout', '2025-06-07 12:00', NULL)) AS v(t, at, p) WHERE c.id % 20 = 14
       UNION ALL SELECT 'visit', timestamptz '2025-06-02 20:00' + j * interval '5 days', NULL
                   FROM generate_series(0, 3) AS j WHERE c.id % 10 = 5
       UNION ALL SELECT 'wishlist', '2025-06-03 10:00', 'p4' WHERE c.id % 10 = 5
       UNION ALL
       SELECT t, at, NULL FROM (VALUES ('subscribe', timestamptz '2025-02-01 10:00'),
                                       ('newsletter_open', '2025-06-20 08:00')) AS v(t, at) WHERE c.id % 20 = 6
       UNION ALL
       SELECT t, at, NULL FROM (VALUES ('subscribe', timestamptz '2025-01-01 10:00'),
                                       ('unsubscribe', '2025-03-01 10:00'),
                                       ('newsletter_open', '2025-06-20 08:00')) AS v(t, at) WHERE c.id % 20 = 16
       ) AS e
UNION ALL
SELECT i, 'visit', '2025-06-20 10:00', NULL FROM generate_series(3001, 3050) AS i;

CREATE TABLE tap_src.tickets (customer_id integer, opened_at timestamptz, rating integer);
INSERT INTO tap_src.tickets
SELECT id, at, rating
  FROM tap_src.customers AS c
 CROSS JOIN LATERAL (
       SELECT timestamptz '2025-06-20 09:00' AS at, 2 AS rating WHERE c.id % 20 = 7
       UNION ALL SELECT '2025-06-10 09:00', 1 WHERE c.id % 20 = 7 AND c.id / 20 % 2 = 1
       UNION ALL
       SELECT at, rating FROM (VALUES (timestamptz '2025-04-01 09:00', 1), ('2025-06-20 09:00', 5)) AS v(at, rating)
        WHERE c.id % 20 = 17
       UNION ALL SELECT '2025-06-20 09:00', NULL WHERE c.id % 10 = 5) AS t;

CREATE TABLE tap_src.products (sku text PRIMARY KEY, launched_at timestamptz, category text);
CREATE TABLE tap_src.lines (order_id bigint, sku text, qty integer);
INSERT INTO tap_src.products VALUES ('refill', '2020-01-01', 'care');
INSERT INTO tap_src.products
SELECT 't' || o.order_id, o.ordered_at - CASE WHEN o.customer_id % 20 = 8 THEN 10 ELSE 100 END * interval '1 day',
       'fashion'
  FROM tap_src.orders AS o WHERE o.customer_id % 10 = 8;
INSERT INTO tap_src.lines
SELECT o.order_id, CASE WHEN o.customer_id % 10 = 8 THEN 't' || o.order_id ELSE 'refill' END, 1
  FROM tap_src.orders AS o WHERE o.customer_id % 10 IN (8, 9);
INSERT INTO tap_src.lines SELECT 999999, 'refill', 1 FROM generate_series(1, 10);

SELECT lives_ok($$
    SELECT segment.configure(orders => 'tap_src.orders', customer => 'customer_id', ordered_at => 'ordered_at',
                             amount => 'amount', customers => 'tap_src.customers', customers_key => 'id',
                             r_breaks => '{7,14,30,90}', f_breaks => '{1.5,2.5,3.5,4.5}',
                             m_breaks => '{100,200,500,1000}', segmentation => 'tap_src', is_default => true);
    SELECT segment.configure_event_source('tap_src.events', 'customer_id', 'event_type', 'occurred_at',
                                    product => 'product');
    SELECT segment.configure_contact_source('tap_src.tickets', 'customer_id', 'opened_at', negative => 'rating',
                                      negative_below => 3);
    SELECT segment.configure_product_source('tap_src.lines', 'order_id', 'sku', quantity => 'qty',
                                      products => 'tap_src.products', launched_at => 'launched_at',
                                      category => 'category');
    SELECT segment.add_rule('Angry Champions', $r$negative_contacts > 0 AND rfm_segment = 'Champions'$r$, 1);
    SELECT segment.add_rule('Champions in Germany', $r$rfm_segment = 'Champions' AND customer.country = 'DE'$r$, 3);
    SELECT segment.add_rule('In Germany', $r$customer.country = 'DE'$r$, 90, flag_only => true)$$,
    'configure the orders, the three sources and three rules');
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT segment.refresh(as_of => '2025-07-01')$$, 'refresh');
RESET client_min_messages;

CREATE TEMP VIEW flagged AS
SELECT f.flag, p.customer_id FROM segment.profile_tap_src AS p, unnest(p.flags) AS f(flag);

SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Abandoned Cart'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 10 = 0$$,
              'Abandoned Cart: exactly those with a cart add after their last order and checkout, in the last 7 days');
SELECT set_eq($$SELECT customer_id FROM segment.profile_tap_src WHERE abandoned_at IS NOT NULL$$,
              $$SELECT id FROM tap_src.customers WHERE id % 10 = 0 OR id % 20 = 11$$,
              'abandoned_at is set for every cart left after the last order and checkout, old ones too');
SELECT is((SELECT count(*) FROM segment.profile_tap_src
            WHERE customer_id % 10 = 0
              AND (abandoned_at, abandoned_products) IS DISTINCT FROM
                  (timestamptz '2025-06-26 10:00', ARRAY['p' || customer_id % 7])),
          0::bigint, 'abandoned_at and abandoned_products name the cart add and its product');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Curious Prospects'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 10 = 2$$,
              'Curious Prospects: never ordered, visited in the window');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Prospects'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 10 IN (2, 3, 6)$$,
              'Prospects: those without orders, curious or not');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Indecisive'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 10 = 4$$,
              'Indecisive: 5 visits or 3 cart adds in the window, no order in it');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Newsletter Subscribers'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 20 = 6$$,
              'Newsletter Subscribers: subscribed, not unsubscribed since');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Angry Customers'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 20 = 7$$,
              'Angry Customers: a negative contact in the window');
SELECT set_eq($$SELECT customer_id FROM segment.profile_tap_src WHERE rfm_segment = 'Champions'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 10 = 7$$,
              'the planted Champions are the RFM Champions');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Angry Champions'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 20 = 7$$,
              'Angry Champions: a rule on a source column and the RFM segment');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Champions in Germany'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 10 = 7 AND id % 3 = 0$$,
              'Champions in Germany: a rule on a customers column and the RFM segment');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'In Germany'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 3 = 0$$,
              'In Germany: a rule on a customers column alone, prospects included');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Trend Followers'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 20 = 8$$,
              'Trend Followers: half their lines or more within 30 days of the launch');
SELECT is((SELECT array_agg(DISTINCT (customer_id % 20, trend_share, top_category)::text)
             FROM segment.profile_tap_src WHERE customer_id % 10 = 8),
          ARRAY['(18,0,fashion)', '(8,1,fashion)'], 'trend_share and top_category of the trend groups');
SELECT set_eq($$SELECT customer_id FROM flagged WHERE flag = 'Due to Re-stock'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 20 = 9$$,
              'Due to Re-stock: the re-stock date falls in the next 14 days');
SELECT is((SELECT count(*) FROM segment.profile_tap_src AS p JOIN tap_src.restock_plan AS r ON r.id = p.customer_id
            WHERE (p.next_restock, p.restock_product) IS NOT DISTINCT FROM (r.last_day + r.d, 'refill')),
          (SELECT count(*) FROM tap_src.restock_plan),
          'next_restock is the last purchase day plus the customer''s own gap, for each re-buyer');
SELECT is((SELECT count(*) FROM segment.profile_tap_src WHERE next_restock IS NOT NULL), 300::bigint,
          'only the re-buyers have a re-stock date');

-- The final segments: the first rule that holds, by priority.
SELECT is((SELECT array_agg(DISTINCT g ORDER BY g) FROM (
              SELECT CASE WHEN id % 10 = 0 THEN 'Abandoned Cart'
                          WHEN id % 10 = 2 THEN 'Curious Prospects'
                          WHEN id % 10 = 4 THEN 'Indecisive'
                          WHEN id % 20 = 7 THEN 'Angry Champions'
                          WHEN id % 20 = 9 THEN 'Due to Re-stock' END
                     || ' ' || (segment_of(id) IS NOT DISTINCT FROM
                                CASE WHEN id % 10 = 0 THEN 'Abandoned Cart'
                                     WHEN id % 10 = 2 THEN 'Curious Prospects'
                                     WHEN id % 10 = 4 THEN 'Indecisive'
                                     WHEN id % 20 = 7 THEN 'Angry Champions'
                                     WHEN id % 20 = 9 THEN 'Due to Re-stock' END)::text AS g
                FROM tap_src.customers WHERE id % 10 IN (0, 2, 4) OR id % 20 IN (7, 9)) AS x),
          ARRAY['Abandoned Cart true', 'Angry Champions true', 'Curious Prospects true', 'Due to Re-stock true',
                'Indecisive true'],
          'segment_of() gives each planted group its segment');
SELECT set_eq($$SELECT id FROM tap_src.customers WHERE segment_of(id) = 'Champions in Germany'$$,
              $$SELECT id FROM tap_src.customers WHERE id % 20 = 17 AND id % 3 = 0$$,
              'segment_of(): Champions in Germany are the German Champions that are not angry');
SELECT is(segment_of(3001), NULL, 'a key with events but not a customer has no segment');

-- What the refresh skipped, counted by reason.
SELECT is((SELECT details FROM segment.refresh_sources WHERE segmentation = 'tap_src' AND source = 'events'),
          jsonb_build_object('unknown_type', 300, 'after_as_of', 300, 'no_time', 0, 'unknown_customer', 50,
                             'unknown_customer_keys', 50, 'no_customer', 0),
          'events skipped: the wishlist events, the visits after as_of, the keys that are not customers');
SELECT is((SELECT (rows, customers, skipped)::text FROM segment.refresh_sources
            WHERE segmentation = 'tap_src' AND source = 'events'),
          (SELECT (count(*), count(DISTINCT customer_id) FILTER (WHERE customer_id <= 3000), 650)::text
             FROM tap_src.events),
          'events: rows read, customers with events, rows skipped');
SELECT is((SELECT details->>'unrated_in_window' FROM segment.refresh_sources
            WHERE segmentation = 'tap_src' AND source = 'contacts'), '300', 'unrated contacts are counted');
SELECT is((SELECT details FROM segment.refresh_sources WHERE segmentation = 'tap_src' AND source = 'products'),
          jsonb_build_object('no_order', 10, 'excluded_order', 0, 'bad_quantity', 0, 'missing_product', 0),
          'order lines skipped: those of an order that does not exist');

-- A second refresh: the cart abandoners order; nobody else changes.
SELECT is((SELECT count(*) FROM segment.history
            WHERE segmentation = 'tap_src' AND refresh_id = (SELECT last_refresh FROM segment.segmentations
                                                              WHERE name = 'tap_src')),
          3000::bigint, 'the first refresh records every customer');
INSERT INTO tap_src.orders
SELECT id * 10 + 9, id, '2025-06-30 08:00', 20 FROM tap_src.customers WHERE id % 10 = 0;
SET LOCAL client_min_messages = warning;
SELECT is((SELECT changed FROM segment.refresh(as_of => '2025-07-01')), 300::bigint,
          'the second refresh changes the 300 abandoners');
RESET client_min_messages;
SELECT set_eq($$SELECT customer_id::integer, from_segment, to_segment FROM segment.history
                 WHERE segmentation = 'tap_src'
                   AND refresh_id = (SELECT last_refresh FROM segment.segmentations WHERE name = 'tap_src')$$,
              $$SELECT id, 'Abandoned Cart', segment_of(id) FROM tap_src.customers WHERE id % 10 = 0$$,
              'history: the abandoners left Abandoned Cart for their new segment');
SELECT is((SELECT count(*) FROM flagged WHERE flag = 'Abandoned Cart'), 0::bigint,
          'nobody has abandoned a cart any more');
SELECT is((SELECT count(*) FROM tap_src.customers WHERE id % 10 = 0 AND segment_of(id) = 'Abandoned Cart'),
          0::bigint, 'segment_of() follows');

-- The order lines with a customer column of their own (as on Citus, where
-- lines and orders are colocated by customer): the same figures; a line whose
-- customer is not its order's counts as a line of no order.
CREATE TEMP TABLE products_before AS
SELECT customer_id, trend_share, trend_lines, top_category, next_restock, restock_product
  FROM segment.profile_tap_src;
CREATE TABLE tap_src.lines_c AS
SELECT l.*, o.customer_id FROM tap_src.lines AS l LEFT JOIN tap_src.orders AS o USING (order_id);
INSERT INTO tap_src.lines_c SELECT order_id, sku, qty, customer_id + 1 FROM tap_src.lines_c WHERE order_id <> 999999 LIMIT 1;
SELECT lives_ok($$SELECT segment.configure_product_source('tap_src.lines_c', 'order_id', 'sku', quantity => 'qty',
                                                    products => 'tap_src.products', launched_at => 'launched_at',
                                                    category => 'category', line_customer => 'customer_id')$$,
                'configure_product_source() with the lines'' customer column');
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT segment.refresh(as_of => '2025-07-01')$$, 'refresh with it');
RESET client_min_messages;
SELECT results_eq($$SELECT customer_id, trend_share, trend_lines, top_category, next_restock, restock_product
                      FROM segment.profile_tap_src ORDER BY 1$$,
                  $$SELECT * FROM products_before ORDER BY 1$$,
                  'the products'' figures are the same');
SELECT is((SELECT (sources->'products'->'details'->>'no_order')::bigint FROM segment.refreshes
            WHERE id = (SELECT last_refresh FROM segment.segmentations WHERE name = 'tap_src')),
          11::bigint, 'the line of another customer than its order''s counts as a line of no order');

-- Without the events source, its columns are NULL and its rules do not hold.
SELECT lives_ok($$SELECT segment.drop_source('events')$$, 'drop the events source');
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT segment.refresh(as_of => '2025-07-01')$$, 'refresh without events');
RESET client_min_messages;
SELECT is((SELECT count(*) FROM flagged WHERE flag IN ('Curious Prospects', 'Indecisive', 'Newsletter Subscribers')
              OR (SELECT p.visits FROM segment.profile_tap_src AS p WHERE p.customer_id = flagged.customer_id)
                 IS NOT NULL),
          0::bigint, 'the events'' flags and columns are gone');

SELECT * FROM finish();
ROLLBACK;
