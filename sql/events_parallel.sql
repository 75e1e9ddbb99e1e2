-- events, contacts, order_lines and restock under parallel plans equal the
-- serial results (combine, serial and deserial functions).
SET timezone = 'UTC';
-- An error may come from a worker or the leader: no CONTEXT line.
\set SHOW_CONTEXT never
CREATE TABLE par_events AS
SELECT (i % 3000) AS customer_id,
       (ARRAY['visit', 'visit', 'product_view', 'product_view', 'cart_add', 'cart_add', 'checkout',
              'newsletter_open', 'subscribe', 'unsubscribe', 'wishlist'])[1 + (i * 7) % 11] AS event_type,
       timestamptz '2025-01-01' + ((i * 7919) % 211) * interval '1 day'
           + ((i * 104729) % 86400) * interval '1 second' AS occurred_at,
       'p' || ((i * 31) % 41) AS product,
       ((i * 13) % 7 = 0) AS negative,
       'c' || ((i * 17) % 9) AS category,
       timestamptz '2024-12-01' + ((i * 37) % 151) * interval '1 day' AS launched_at,
       1 + (i * 11) % 7 AS quantity
  FROM generate_series(1::bigint, 200000) AS i;
ANALYZE par_events;

CREATE TABLE ev_serial_result AS
SELECT customer_id,
       segment.events(event_type, occurred_at, product, '2025-06-01', '30 days') AS e,
       segment.contacts(occurred_at, negative, '2025-06-01', '30 days') AS c,
       segment.order_lines(occurred_at, launched_at, category, 20) AS l
  FROM par_events GROUP BY customer_id;
CREATE TABLE ev_serial_restock AS
SELECT customer_id, product, segment.restock(occurred_at, quantity) AS r
  FROM par_events GROUP BY customer_id, product;
-- The shop's own type names, mapped to kinds: as the kind names rewritten by CASE.
CREATE TABLE ev_serial_mapped AS
SELECT customer_id,
       segment.events(CASE event_type WHEN 'product_view' THEN 'visit' WHEN 'cart_add' THEN 'cart_add'
                                      WHEN 'checkout' THEN 'checkout' WHEN 'subscribe' THEN 'subscribe'
                                      WHEN 'unsubscribe' THEN 'unsubscribe' END,
                      occurred_at, product, '2025-06-01', '30 days') AS e
  FROM par_events WHERE event_type IS DISTINCT FROM 'visit' GROUP BY customer_id;
CREATE TABLE ev_serial_whole AS
SELECT segment.events(event_type, occurred_at, product, '2025-06-01', '30 days') AS e,
       segment.contacts(occurred_at, negative, '2025-06-01', '30 days') AS c,
       segment.order_lines(occurred_at, launched_at, category, 20) AS l,
       segment.restock(occurred_at, quantity) AS r
  FROM par_events;

SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET enable_hashagg = off;   -- a sorted partial group aggregate splits customers' rows

-- Whole-table aggregates split every customer's rows across workers.
EXPLAIN (COSTS OFF)
SELECT segment.events(event_type, occurred_at, product, '2025-06-01', '30 days') FROM par_events;
SELECT p.e = s.e AS events_equal, p.c = s.c AS contacts_equal, p.l = s.l AS lines_equal,
       p.r = s.r AS restock_equal
  FROM ev_serial_whole AS s,
       (SELECT segment.events(event_type, occurred_at, product, '2025-06-01', '30 days') AS e,
               segment.contacts(occurred_at, negative, '2025-06-01', '30 days') AS c,
               segment.order_lines(occurred_at, launched_at, category, 20) AS l,
               segment.restock(occurred_at, quantity) AS r
          FROM par_events) AS p;
-- The data have carts to merge: customers with products left in the cart.
SELECT count(*) FILTER (WHERE cardinality((e).cart_products) > 0) AS with_cart,
       count(*) FILTER (WHERE cardinality((e).cart_products) > 1) AS several,
       count(*) FILTER (WHERE (e).subscribed) AS subscribed,
       count(*) FILTER (WHERE (l).categories > 1) AS several_categories
  FROM ev_serial_result;
SELECT count(*) FILTER (WHERE (r).purchase_days > 1) AS restock_estimates FROM ev_serial_restock;

EXPLAIN (COSTS OFF)
SELECT customer_id, segment.events(event_type, occurred_at, product, '2025-06-01', '30 days')
  FROM par_events GROUP BY customer_id;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE p.e IS DISTINCT FROM s.e) AS events_mismatches,
       count(*) FILTER (WHERE p.c IS DISTINCT FROM s.c) AS contacts_mismatches,
       count(*) FILTER (WHERE p.l IS DISTINCT FROM s.l) AS lines_mismatches
  FROM (SELECT customer_id,
               segment.events(event_type, occurred_at, product, '2025-06-01', '30 days') AS e,
               segment.contacts(occurred_at, negative, '2025-06-01', '30 days') AS c,
               segment.order_lines(occurred_at, launched_at, category, 20) AS l
          FROM par_events GROUP BY customer_id) AS p
  JOIN ev_serial_result AS s USING (customer_id);
SELECT count(*) AS groups, count(*) FILTER (WHERE p.r IS DISTINCT FROM s.r) AS restock_mismatches
  FROM (SELECT customer_id, product, segment.restock(occurred_at, quantity) AS r
          FROM par_events GROUP BY customer_id, product) AS p
  JOIN ev_serial_restock AS s USING (customer_id, product);

-- A mapping of event types in a parallel plan: each worker parses it.
SELECT count(*) FILTER (WHERE p.e IS DISTINCT FROM s.e) AS mismatches
  FROM (SELECT customer_id,
               segment.events(event_type, occurred_at, product, '2025-06-01', '30 days',
                              '{"product_view": "visit", "cart_add": "cart_add", "checkout": "checkout",
                                "subscribe": "subscribe", "unsubscribe": "unsubscribe", "visit": "ignore"}') AS e
          FROM par_events GROUP BY customer_id) AS p
  JOIN ev_serial_mapped AS s USING (customer_id);

-- Partial states computed for different as_of values do not combine.
SELECT segment.events(event_type, occurred_at, product,
                      CASE WHEN customer_id < 1500 THEN timestamptz '2025-06-01' ELSE '2025-06-02' END, NULL)
  FROM par_events;

-- debug_parallel_query (force_parallel_mode before PostgreSQL 16) runs even
-- a small aggregate in a worker, through the serial functions.
SET enable_hashagg = on;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END,
                  'regress', false) IS NOT NULL AS forced;
SELECT count(*) FILTER (WHERE p.e IS DISTINCT FROM s.e) AS events_mismatches,
       count(*) FILTER (WHERE p.c IS DISTINCT FROM s.c) AS contacts_mismatches,
       count(*) FILTER (WHERE p.l IS DISTINCT FROM s.l) AS lines_mismatches
  FROM (SELECT customer_id,
               segment.events(event_type, occurred_at, product, '2025-06-01', '30 days') AS e,
               segment.contacts(occurred_at, negative, '2025-06-01', '30 days') AS c,
               segment.order_lines(occurred_at, launched_at, category, 20) AS l
          FROM par_events GROUP BY customer_id) AS p
  JOIN ev_serial_result AS s USING (customer_id);
