-- The per-customer events(event_type, occurred_at, product, as_of, window
-- [, kinds]) aggregate, the kind mapping and the abandoned-cart functions.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE ev (customer_id int, event_type text, occurred_at timestamptz, product text);
INSERT INTO ev VALUES
    -- 1: an abandoned cart: two checkouts, then two products left behind
    (1, 'visit',           '2025-05-20 09:00', NULL),   -- before the window
    (1, 'visit',           '2025-06-10 09:00', NULL),
    (1, 'product_view',    '2025-06-10 09:01', 'shoe-1'),
    (1, 'cart_add',        '2025-06-10 09:02', 'shoe-1'),
    (1, 'checkout',        '2025-06-10 09:05', NULL),
    (1, 'cart_add',        '2025-06-20 10:00', 'sock-3'),
    (1, 'cart_add',        '2025-06-20 10:01', 'hat-2'),
    (1, 'cart_add',        '2025-06-20 10:02', 'sock-3'),   -- added again: latest time kept
    (1, 'visit',           '2025-06-21 08:00', NULL),
    -- 2: subscribed, then unsubscribed; opens the newsletter; no site visit
    (2, 'subscribe',       '2025-01-01', NULL),
    (2, 'newsletter_open', '2025-06-15', NULL),
    (2, 'newsletter_open', '2025-06-25', NULL),
    (2, 'unsubscribe',     '2025-06-26', NULL),
    -- 3: bad rows: unknown types, NULLs, the future
    (3, 'visit',           '2025-06-29', NULL),
    (3, 'Visit',           '2025-06-29', NULL),          -- types are case-sensitive
    (3, 'wishlist_add',    '2025-06-29', 'x'),
    (3, NULL,              '2025-06-29', NULL),
    (3, 'visit',           NULL,         NULL),          -- no time: skipped
    (3, 'cart_add',        '2025-06-29', NULL),          -- a cart add without product
    (3, 'visit',           '2025-07-02', NULL),          -- after as_of: counted, ignored
    (3, 'checkout',        '2025-07-03', NULL),
    -- 4: only rows without a time: no summary
    (4, 'visit',           NULL,         NULL),
    -- 5: only future rows
    (5, 'visit',           '2026-01-01', NULL);

SELECT customer_id, (e).*
  FROM (SELECT customer_id, segment.events(event_type, occurred_at, product,
                                           '2025-07-01 00:00', '30 days') AS e
          FROM ev GROUP BY customer_id) AS s
 ORDER BY customer_id;

-- The window is (as_of - window, as_of]: an event at as_of counts, one at the
-- window start does not; NULL window: all history.
SELECT w, (segment.events(t, at, NULL, '2025-07-01', w)).visits
  FROM (VALUES ('visit', timestamptz '2025-07-01'), ('visit', '2025-06-01'), ('visit', '2025-05-01')) AS v(t, at),
       (VALUES (interval '30 days'), ('0'), (NULL)) AS x(w)
 GROUP BY w ORDER BY w NULLS LAST;
-- A window of months is calendar months in the session's time zone.
SELECT (segment.events('visit', at, NULL, '2025-03-01', '1 month')).window_start
  FROM (VALUES (timestamptz '2025-02-15')) AS v(at);

-- Abandoned carts: after the last checkout event, and after the last order.
SELECT customer_id,
       segment.abandoned_at(e, NULL) AS no_order,
       segment.abandoned_products(e, NULL) AS products_no_order,
       segment.abandoned_at(e, '2025-06-20 10:00:30') AS order_between,
       segment.abandoned_products(e, '2025-06-20 10:00:30') AS products_order_between,
       segment.abandoned_at(e, '2025-06-20 10:02') AS order_same_time,
       segment.abandoned_products(e, '2025-06-22') AS products_order_after
  FROM (SELECT customer_id, segment.events(event_type, occurred_at, product,
                                           '2025-07-01', '30 days') AS e
          FROM ev GROUP BY customer_id) AS s
 ORDER BY customer_id;
SELECT segment.abandoned_at(NULL, now()) IS NULL AS a, segment.abandoned_products(NULL, now()) IS NULL AS p;

-- The cart keeps the 10 most recent distinct products, newest first; equal
-- times in product order; whatever the row order.
CREATE TABLE ev_cart AS
SELECT 'cart_add' AS event_type,
       timestamptz '2025-06-01' + (i % 15) * interval '1 hour' AS occurred_at,
       'p' || lpad((i % 15)::text, 2, '0') || CASE WHEN i % 2 = 0 THEN 'a' ELSE 'b' END AS product
  FROM generate_series(1, 60) AS i;
SELECT (e).cart_products, (e).cart_added_at[1], (e).cart_added_at[10], (e).cart_adds
  FROM (SELECT segment.events(event_type, occurred_at, product, '2025-07-01', NULL) AS e
          FROM ev_cart) AS s;
SELECT count(DISTINCT (e).cart_products) AS distinct_results
  FROM (SELECT o, (SELECT segment.events(event_type, occurred_at, product, '2025-07-01', NULL)
                     FROM (SELECT * FROM ev_cart ORDER BY md5(product || occurred_at || o) OFFSET 0) AS x) AS e
          FROM generate_series(1, 20) AS o) AS s;
-- A checkout clears what was added before it, in whatever order rows come.
SELECT (segment.events(t, at, p, '2025-07-01', NULL ORDER BY o)).cart_products
  FROM (VALUES (1, 'cart_add', timestamptz '2025-06-01', 'a'), (2, 'cart_add', '2025-06-03', 'b'),
               (3, 'checkout', '2025-06-02', NULL), (4, 'cart_add', '2025-06-01 12:00', 'c')) AS v(o, t, at, p);
SELECT (segment.events(t, at, p, '2025-07-01', NULL ORDER BY o DESC)).cart_products
  FROM (VALUES (1, 'cart_add', timestamptz '2025-06-01', 'a'), (2, 'cart_add', '2025-06-03', 'b'),
               (3, 'checkout', '2025-06-02', NULL), (4, 'cart_add', '2025-06-01 12:00', 'c')) AS v(o, t, at, p);

-- Subscription: the latest subscribe/unsubscribe; at the same time,
-- unsubscribing wins; a change after as_of does not count.
SELECT (segment.events(t, at, NULL, '2025-07-01', NULL)).subscribed
  FROM (VALUES ('subscribe', timestamptz '2025-06-01'), ('unsubscribe', '2025-06-01')) AS v(t, at);
SELECT (segment.events(t, at, NULL, '2025-07-01', NULL)).subscribed
  FROM (VALUES ('unsubscribe', timestamptz '2025-05-01'), ('subscribe', '2025-06-01'),
               ('unsubscribe', '2025-08-01')) AS v(t, at);

-- A mapping of the shop's event types to kinds: types it does not name are
-- unknown (the default names too), "ignore" is known and not counted.
SELECT (e).visits, (e).product_views, (e).cart_adds, (e).checkouts, (e).cart_products,
       (e).unknown_events, (e).future_events
  FROM (SELECT segment.events(t, at, p, '2025-07-01', NULL,
                              '{"session_start": "visit", "pdp": "product_view",
                                "add_to_basket": "cart_add", "purchase": "checkout",
                                "search": "ignore"}') AS e
          FROM (VALUES ('session_start', timestamptz '2025-06-01', NULL), ('pdp', '2025-06-01', 'a'),
                       ('add_to_basket', '2025-06-01', 'a'), ('purchase', '2025-06-02', NULL),
                       ('add_to_basket', '2025-06-03', 'b'), ('search', '2025-06-03', NULL),
                       ('search', '2025-09-03', NULL), ('visit', '2025-06-04', NULL),
                       ('session_start', '2025-09-01', NULL)) AS v(t, at, p)) AS s;
-- Several shop types may map to one kind; event_kind() shows the mapping.
SELECT t, segment.event_kind(t, '{"open": "newsletter_open", "click": "newsletter_open", "x": "ignore"}') AS kind,
       segment.event_kind(t) AS default_kind
  FROM (VALUES ('open'), ('click'), ('x'), ('visit'), ('cart_add'), ('ignore'), (NULL)) AS v(t);
-- A mapping from a column, varying by row, is applied row by row.
SELECT (segment.events(t, at, NULL, '2025-07-01', NULL, k)).visits
  FROM (VALUES ('a', timestamptz '2025-06-01', jsonb '{"a": "visit"}'), ('b', '2025-06-01', '{"b": "visit"}'),
               ('a', '2025-06-01', '{"b": "visit"}')) AS v(t, at, k);

-- As a window aggregate (the final function leaves the state unchanged).
SELECT at, (segment.events(t, at, NULL, '2025-07-01', NULL) OVER (ORDER BY at)).visits
  FROM (VALUES ('visit', timestamptz '2025-06-01'), ('visit', '2025-06-02'), ('checkout', '2025-06-03')) AS v(t, at);

-- No rows: NULL.
SELECT segment.events(event_type, occurred_at, product, '2025-07-01', NULL) IS NULL AS is_null
  FROM ev WHERE false;

-- Bad input: each a clear error.
SELECT segment.events(event_type, occurred_at, product, NULL, '30 days') FROM ev;
SELECT segment.events(event_type, occurred_at, product, 'infinity', '30 days') FROM ev;
SELECT segment.events(event_type, occurred_at, product, '2025-07-01', '-1 day') FROM ev;
SELECT segment.events(event_type, occurred_at, product, '2025-07-01', '1 month -40 days') FROM ev;
SELECT segment.events(event_type, occurred_at, product, occurred_at, '30 days') FROM ev;
SELECT segment.events(t, at, NULL, '2025-07-01', w)
  FROM (VALUES ('visit', timestamptz '2025-06-01', interval '30 days'), ('visit', '2025-06-02', '31 days')) AS v(t, at, w);
SELECT segment.events(t, at, NULL, '2025-07-01', w)
  FROM (VALUES ('visit', timestamptz '2025-06-01', interval '30 days'), ('visit', '2025-06-02', NULL)) AS v(t, at, w);
SELECT segment.events('visit', '-infinity', NULL, '2025-07-01', NULL);
SELECT segment.events('visit', 'infinity', NULL, '2025-07-01', NULL);
SELECT segment.events('visit', '2025-06-01', NULL, '2025-07-01', NULL, '["visit"]');
SELECT segment.events('visit', '2025-06-01', NULL, '2025-07-01', NULL, '"visit"');
SELECT segment.events('visit', '2025-06-01', NULL, '2025-07-01', NULL, '{"visit": "visits"}');
SELECT segment.events('visit', '2025-06-01', NULL, '2025-07-01', NULL, '{"visit": null}');
SELECT segment.events('visit', '2025-06-01', NULL, '2025-07-01', NULL, '{"visit": {"kind": "visit"}}');
SELECT segment.event_kind('x', '{"x": 1}');
-- A summary made by hand with mismatched cart arrays.
SELECT segment.abandoned_products(ROW('2025-07-01', NULL, 0, 0, 1, 0, 0, NULL, NULL, '2025-06-01',
                                      NULL, NULL, NULL, NULL, '{a,b}', '{2025-06-01}', 0, 0)::segment.event_summary,
                                  NULL);
