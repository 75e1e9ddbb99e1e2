-- A generated shop whose customers were made with known traits (cart
-- abandoners, curious prospects, indecisive visitors, subscribers, angry
-- customers, trend followers, re-buyers, a favourite category): the
-- primitives and the rules phase 2 will apply must find exactly them.
-- as_of is 2025-07-01 00:00 UTC, the window 30 days.
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- Each customer's traits, from its id (deterministic, no random()).
CREATE TABLE seg_customers AS
SELECT i AS customer_id,
       i % 5 <> 0 AS ordered,
       CASE WHEN i % 5 <> 0 THEN 1 + i % 4 ELSE 0 END AS n_orders,
       CASE WHEN i % 5 <> 0 THEN timestamptz '2025-07-01' - (5 + i % 60) * interval '1 day' END AS last_order_at,
       i % 3 <> 0 AS recent_visitor,
       i % 4 = 1 AS cart_adder,
       i % 4 = 1 AND (i % 5 = 0 OR (i / 4) % 2 = 0) AS abandons,
       1 + i % 4 AS abandoned_n,
       i % 5 AS fav,
       i % 7 = 0 AS trend,
       i % 4 = 2 AS rebuyer,
       CASE WHEN i % 8 = 6 THEN 40 ELSE 20 END AS restock_gap
  FROM generate_series(1, 3000) AS i;

CREATE TABLE seg_events (customer_id int, event_type text, occurred_at timestamptz, product text);
-- visits (each with a product view) in the window, or long ago
INSERT INTO seg_events
SELECT c.customer_id, t.type, v.at + t.shift, t.product
  FROM seg_customers AS c
 CROSS JOIN LATERAL (
       SELECT timestamptz '2025-07-01' - (1 + 2 * k) * interval '1 day' + c.customer_id * interval '1 second' AS at
         FROM generate_series(0, c.customer_id % 9) AS k WHERE c.recent_visitor
       UNION ALL
       SELECT timestamptz '2025-07-01' - (100 + k) * interval '1 day'
         FROM generate_series(0, 1) AS k WHERE NOT c.recent_visitor) AS v
 CROSS JOIN LATERAL (VALUES ('visit', interval '0', NULL),
                            ('product_view', interval '1 minute', 'p' || c.customer_id % 50)) AS t(type, shift, product);
-- abandoned carts: products added 1-5 days ago, after the last order; a third
-- also checked out 20 days ago, what they added before that is not abandoned
INSERT INTO seg_events
SELECT c.customer_id, 'cart_add',
       timestamptz '2025-07-01' - (1 + c.customer_id % 5) * interval '1 day' + interval '1 hour' + j * interval '1 minute',
       'p' || (10 + j + c.customer_id % 7)
  FROM seg_customers AS c, generate_series(0, c.abandoned_n - 1) AS j
 WHERE c.abandons;
INSERT INTO seg_events
SELECT c.customer_id, t.type, timestamptz '2025-07-01' - interval '20 days' + t.shift, t.product
  FROM seg_customers AS c,
       (VALUES ('cart_add', interval '-10 minutes', 'old'), ('checkout', interval '0', NULL)) AS t(type, shift, product)
 WHERE c.abandons AND c.customer_id % 3 = 0;
-- carts that were bought: added before the last order, half with a checkout event
INSERT INTO seg_events
SELECT c.customer_id, t.type, c.last_order_at + t.shift, t.product
  FROM seg_customers AS c,
       (VALUES ('cart_add', interval '-30 minutes', 'p1'), ('cart_add', interval '-20 minutes', 'p2'),
               ('checkout', interval '-1 minute', NULL)) AS t(type, shift, product)
 WHERE c.cart_adder AND NOT c.abandons AND (t.type <> 'checkout' OR c.customer_id % 2 = 0);
-- newsletter: subscribed; subscribed then unsubscribed; both at the same
-- time (unsubscribed); subscribing after as_of (not subscribed); opens
INSERT INTO seg_events
SELECT c.customer_id, t.type, t.at, NULL
  FROM seg_customers AS c,
       (VALUES (0, 'subscribe', timestamptz '2025-01-01'), (0, 'newsletter_open', '2025-06-29'),
               (3, 'subscribe', '2025-02-01'), (3, 'unsubscribe', '2025-02-01'),
               (1, 'subscribe', '2025-07-03')) AS t(m, type, at)
 WHERE c.customer_id % 6 = t.m;
INSERT INTO seg_events
SELECT c.customer_id, 'unsubscribe', '2025-03-01', NULL FROM seg_customers AS c WHERE c.customer_id % 12 = 0;
-- bad rows: unknown types, a NULL type, future visits
INSERT INTO seg_events
SELECT customer_id, 'wishlist_add', timestamptz '2025-06-28', 'p3' FROM seg_customers WHERE customer_id % 10 = 0
UNION ALL
SELECT customer_id, NULL, '2025-06-28', NULL FROM seg_customers WHERE customer_id % 20 = 0
UNION ALL
SELECT customer_id, 'visit', '2025-07-02', NULL FROM seg_customers WHERE customer_id % 11 = 0;

-- Stored in no particular order: the aggregate must not depend on it.
CREATE TABLE seg_events_shuffled AS
SELECT * FROM seg_events AS e ORDER BY md5(e::text);

CREATE TABLE seg_orders AS
SELECT c.customer_id * 10 + k AS order_id, c.customer_id, k,
       c.last_order_at - k * interval '20 days' AS ordered_at, 25.00 + k AS amount
  FROM seg_customers AS c, generate_series(0, c.n_orders - 1) AS k
 WHERE c.ordered;

-- Products: p1..p250 launched every 3 days from 2024-01-01, in five
-- categories; a refill product launched long ago.
CREATE TABLE seg_products AS
SELECT 'p' || p AS product_id, timestamptz '2024-01-01' + 3 * p * interval '1 day' AS launched_at,
       'cat' || p % 5 AS category
  FROM generate_series(1, 250) AS p
UNION ALL
SELECT 'refill', '2020-01-01', 'refill';

-- Order lines: two in the customer's favourite category and one in another,
-- of products launched within days before the order (trend followers) or
-- more than 100 days before; refills for re-buyers (two units in the last
-- order for some); a line whose product is missing from the products table.
CREATE FUNCTION pg_temp.product_of(category int, at timestamptz, days_before int) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT 'p' || (p0 - ((p0 - category) % 5 + 5) % 5)
      FROM (SELECT (floor(extract(epoch FROM at - timestamptz '2024-01-01') / 86400)::int - days_before) / 3 AS p0) AS x
$$;
CREATE TABLE seg_lines AS
SELECT o.order_id, pg_temp.product_of(l.category, o.ordered_at, CASE WHEN c.trend THEN 1 ELSE 100 END) AS product_id,
       1 AS quantity
  FROM seg_orders AS o JOIN seg_customers AS c USING (customer_id),
       LATERAL (VALUES (c.fav), (c.fav), ((c.fav + 1 + o.k) % 5)) AS l(category)
UNION ALL
SELECT o.order_id, 'refill', CASE WHEN o.k = 0 AND c.restock_gap = 40 THEN 2 ELSE 1 END
  FROM seg_orders AS o JOIN seg_customers AS c USING (customer_id)
 WHERE c.rebuyer
UNION ALL
SELECT o.order_id, 'discontinued', 1
  FROM seg_orders AS o
 WHERE o.customer_id % 13 = 0 AND o.k = 0;

CREATE TABLE seg_contacts AS
SELECT customer_id, timestamptz '2025-07-01' - (1 + customer_id % 20) * interval '1 day' AS opened_at, true AS negative
  FROM seg_customers WHERE customer_id % 9 = 0
UNION ALL
SELECT customer_id, timestamptz '2025-07-01' - interval '60 days', true FROM seg_customers WHERE customer_id % 9 = 3
UNION ALL
SELECT customer_id, timestamptz '2025-07-01' - interval '2 days', false
  FROM seg_customers WHERE customer_id % 9 = 6 OR customer_id % 18 = 0;

-- The profile as phase 2 will compute it: one GROUP BY per relation.
CREATE TABLE seg_profile AS
WITH ev AS (
    SELECT customer_id, segment.events(event_type, occurred_at, product, '2025-07-01', '30 days') AS e
      FROM seg_events_shuffled GROUP BY customer_id
), ord AS (
    SELECT customer_id, segment.rfm(ordered_at, amount) AS r FROM seg_orders GROUP BY customer_id
), con AS (
    SELECT customer_id, segment.contacts(opened_at, negative, '2025-07-01', '30 days') AS s
      FROM seg_contacts GROUP BY customer_id
), lin AS (
    SELECT o.customer_id, segment.order_lines(o.ordered_at, p.launched_at, p.category, 30) AS l
      FROM seg_lines AS l JOIN seg_orders AS o USING (order_id)
      LEFT JOIN seg_products AS p USING (product_id)
     GROUP BY o.customer_id
), restock AS (
    SELECT customer_id, min((r).expected_restock) FILTER (WHERE (r).purchase_days >= 3) AS next_restock
      FROM (SELECT o.customer_id, l.product_id, segment.restock(o.ordered_at, l.quantity) AS r
              FROM seg_lines AS l JOIN seg_orders AS o USING (order_id)
             GROUP BY o.customer_id, l.product_id) AS x
     GROUP BY customer_id
)
SELECT c.customer_id, ev.e, ord.r, con.s, lin.l, restock.next_restock
  FROM seg_customers AS c
  LEFT JOIN ev USING (customer_id) LEFT JOIN ord USING (customer_id)
  LEFT JOIN con USING (customer_id) LEFT JOIN lin USING (customer_id)
  LEFT JOIN restock USING (customer_id);

-- Each trait: as generated (truth) and as the rules find it (found).
CREATE TABLE seg_check AS
SELECT c.customer_id,
       -- abandoned cart: a cart add in the last 7 days after the last checkout and order
       c.abandons AS abandoned_truth,
       segment.abandoned_at(p.e, (p.r).last_order) > timestamptz '2025-07-01' - interval '7 days' AS abandoned_found,
       CASE WHEN c.abandons THEN ARRAY(SELECT 'p' || (10 + j + c.customer_id % 7)
                                         FROM generate_series(c.abandoned_n - 1, 0, -1) AS j) END AS products_truth,
       CASE WHEN segment.abandoned_at(p.e, (p.r).last_order) IS NOT NULL
            THEN segment.abandoned_products(p.e, (p.r).last_order) END AS products_found,
       -- curious prospect: visited in the window, never ordered
       NOT c.ordered AND (c.recent_visitor OR c.cart_adder) AS curious_truth,
       (p.e).last_visit > (p.e).window_start AND p.r IS NULL AS curious_found,
       -- indecisive: 5+ visits or 3+ cart adds in the window, no order in it
       ((CASE WHEN c.recent_visitor THEN 1 + c.customer_id % 9 ELSE 0 END) >= 5
         OR (CASE WHEN c.abandons THEN c.abandoned_n + (c.customer_id % 3 = 0)::int ELSE 0 END
             + CASE WHEN c.cart_adder AND NOT c.abandons AND c.customer_id % 60 < 25 THEN 2 ELSE 0 END) >= 3)
        AND NOT (c.ordered AND c.customer_id % 60 < 25) AS indecisive_truth,
       ((p.e).visits >= 5 OR (p.e).cart_adds >= 3)
        AND coalesce((p.r).last_order <= (p.e).window_start, true) AS indecisive_found,
       -- newsletter subscriber
       c.customer_id % 6 = 0 AND c.customer_id % 12 <> 0 AS subscriber_truth,
       coalesce((p.e).subscribed, false) AS subscriber_found,
       -- angry: a negative support contact in the last 30 days
       c.customer_id % 9 = 0 AS angry_truth,
       coalesce((p.s).negative_contacts > 0, false) AS angry_found,
       -- trend follower: half or more of the dated lines within 30 days of launch
       c.ordered AND c.trend AS trend_truth,
       coalesce((p.l).trend_share >= 0.5, false) AS trend_found,
       CASE WHEN c.ordered THEN 'cat' || c.fav END AS category_truth,
       (p.l).top_category AS category_found,
       -- re-buyer due: a product bought 3+ times whose re-stock date is in the next 14 days
       c.ordered AND c.rebuyer AND c.restock_gap - 5 - c.customer_id % 60 BETWEEN 1 AND 14 AS due_truth,
       coalesce(p.next_restock BETWEEN date '2025-07-02' AND date '2025-07-15', false) AS due_found,
       CASE WHEN c.ordered AND c.rebuyer THEN c.last_order_at::date + c.restock_gap END AS restock_truth,
       p.next_restock AS restock_found,
       -- bad rows, counted
       (c.customer_id % 10 = 0)::int + (c.customer_id % 20 = 0)::int AS unknown_truth,
       coalesce((p.e).unknown_events, 0) AS unknown_found,
       (c.customer_id % 11 = 0)::int + (c.customer_id % 6 = 1)::int AS future_truth,
       coalesce((p.e).future_events, 0) AS future_found,
       CASE WHEN c.ordered AND c.customer_id % 13 = 0 THEN 1 ELSE 0 END AS missing_truth,
       coalesce((p.l).undated_lines, 0) AS missing_found
  FROM seg_customers AS c JOIN seg_profile AS p USING (customer_id);

SELECT f.trait,
       count(*) FILTER (WHERE f.t) AS truth,
       count(*) FILTER (WHERE f.fnd) AS found,
       count(*) FILTER (WHERE f.mismatch) AS mismatches
  FROM seg_check AS k,
       LATERAL (VALUES
           (1, 'abandoned cart', k.abandoned_truth, k.abandoned_found IS TRUE,
            k.abandoned_truth IS DISTINCT FROM (k.abandoned_found IS TRUE)),
           (2, 'abandoned products (exact list)', k.products_truth IS NOT NULL, k.products_found IS NOT NULL,
            k.products_truth IS DISTINCT FROM k.products_found),
           (3, 'curious prospect', k.curious_truth, k.curious_found IS TRUE,
            k.curious_truth IS DISTINCT FROM (k.curious_found IS TRUE)),
           (4, 'indecisive', k.indecisive_truth, k.indecisive_found IS TRUE,
            k.indecisive_truth IS DISTINCT FROM (k.indecisive_found IS TRUE)),
           (5, 'newsletter subscriber', k.subscriber_truth, k.subscriber_found,
            k.subscriber_truth IS DISTINCT FROM k.subscriber_found),
           (6, 'angry (negative contact in 30 days)', k.angry_truth, k.angry_found,
            k.angry_truth IS DISTINCT FROM k.angry_found),
           (7, 'trend follower', k.trend_truth, k.trend_found, k.trend_truth IS DISTINCT FROM k.trend_found),
           (8, 'top category (exact)', k.category_truth IS NOT NULL, k.category_found IS NOT NULL,
            k.category_truth IS DISTINCT FROM k.category_found),
           (9, 're-buyer due in 14 days', k.due_truth, k.due_found, k.due_truth IS DISTINCT FROM k.due_found),
           (10, 're-stock date (exact)', k.restock_truth IS NOT NULL, k.restock_found IS NOT NULL,
            k.restock_truth IS DISTINCT FROM k.restock_found),
           (11, 'unknown event types (count)', k.unknown_truth > 0, k.unknown_found > 0,
            k.unknown_truth <> k.unknown_found),
           (12, 'future events (count)', k.future_truth > 0, k.future_found > 0,
            k.future_truth <> k.future_found),
           (13, 'lines of missing products (count)', k.missing_truth > 0, k.missing_found > 0,
            k.missing_truth <> k.missing_found)
       ) AS f(n, trait, t, fnd, mismatch)
 GROUP BY f.n, f.trait
 ORDER BY f.n;

-- Combined with the RFM figures, as rules will be: the angry customers
-- among the most frequent buyers (4 orders) are the urgent ones.
SELECT count(*) FILTER (WHERE angry_found) AS angry,
       count(*) FILTER (WHERE angry_found AND (p.r).orders >= 4) AS angry_best_customers,
       count(*) FILTER (WHERE c.customer_id % 9 = 0 AND c.n_orders >= 4) AS expected
  FROM seg_check AS k JOIN seg_profile AS p USING (customer_id) JOIN seg_customers AS c USING (customer_id);
