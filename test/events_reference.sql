-- events, contacts, order_lines and restock against independent plain-SQL
-- computations, on seeded random data, in a time zone with DST.
BEGIN;
SELECT plan(6);
SET LOCAL timezone = 'Europe/Berlin';

SELECT setseed(0.29);
CREATE TEMP TABLE ev AS
SELECT (1 + floor(random() * 1500))::int AS customer_id,
       (ARRAY['visit', 'product_view', 'cart_add', 'checkout', 'newsletter_open',
              'subscribe', 'unsubscribe', 'page_ping', NULL])[1 + floor(random() * 9)::int] AS event_type,
       -- whole seconds, so that equal times (ties) happen
       timestamptz '2025-01-01' + floor(random() * 200 * 86400) * interval '1 second' AS occurred_at,
       CASE WHEN random() < 0.9 THEN 'p' || floor(random() * 30) END AS product
  FROM generate_series(1, 60000);
-- Heavy cart users without checkouts (the cart keeps only 10 products).
INSERT INTO ev
SELECT 2000 + i % 50, 'cart_add', timestamptz '2025-03-01' + floor(random() * 80 * 86400) * interval '1 second',
       'p' || floor(random() * 40)
  FROM generate_series(1, 2000) AS i;
-- A few exact ties between a cart add and a checkout, and repeated adds.
INSERT INTO ev SELECT customer_id, 'checkout', occurred_at, NULL FROM ev
 WHERE event_type = 'cart_add' AND customer_id % 10 = 0;
INSERT INTO ev SELECT customer_id, 'cart_add', occurred_at + interval '1 hour', product FROM ev
 WHERE event_type = 'cart_add' AND customer_id % 7 = 0;

\set as_of '''2025-06-15 12:00+02'''
\set win '''1 month 3 days'''

CREATE TEMP TABLE got_e AS
SELECT customer_id, segment.events(event_type, occurred_at, product, :as_of, :win) AS e
  FROM ev GROUP BY customer_id;
CREATE TEMP TABLE got AS SELECT customer_id, (e).* FROM got_e;

-- The same figures, plain SQL.
CREATE TEMP TABLE want AS
WITH known AS (
    SELECT * FROM ev
     WHERE occurred_at IS NOT NULL
       AND event_type IN ('visit', 'product_view', 'cart_add', 'checkout', 'newsletter_open',
                          'subscribe', 'unsubscribe')
), past AS (
    SELECT * FROM known WHERE occurred_at <= :as_of
), bounds AS (
    SELECT timestamptz :as_of - interval :win AS start
), per AS (
    SELECT customer_id,
           count(*) FILTER (WHERE event_type = 'visit' AND occurred_at > b.start) AS visits,
           count(*) FILTER (WHERE event_type = 'product_view' AND occurred_at > b.start) AS product_views,
           count(*) FILTER (WHERE event_type = 'cart_add' AND occurred_at > b.start) AS cart_adds,
           count(*) FILTER (WHERE event_type = 'checkout' AND occurred_at > b.start) AS checkouts,
           count(*) FILTER (WHERE event_type = 'newsletter_open' AND occurred_at > b.start) AS newsletter_opens,
           min(occurred_at) FILTER (WHERE event_type IN ('visit', 'product_view', 'cart_add', 'checkout')) AS first_visit,
           max(occurred_at) FILTER (WHERE event_type IN ('visit', 'product_view', 'cart_add', 'checkout')) AS last_visit,
           max(occurred_at) FILTER (WHERE event_type = 'cart_add') AS last_cart_add,
           max(occurred_at) FILTER (WHERE event_type = 'checkout') AS last_checkout,
           max(occurred_at) FILTER (WHERE event_type = 'newsletter_open') AS last_newsletter_open
      FROM past, bounds AS b GROUP BY customer_id
), sub AS (
    SELECT DISTINCT ON (customer_id) customer_id, event_type = 'subscribe' AS subscribed,
           occurred_at AS subscription_changed_at
      FROM past WHERE event_type IN ('subscribe', 'unsubscribe')
     ORDER BY customer_id, occurred_at DESC, event_type = 'unsubscribe' DESC
), cart AS (
    SELECT customer_id, array_agg(product ORDER BY at DESC, product COLLATE "C") AS cart_products,
           array_agg(at ORDER BY at DESC, product COLLATE "C") AS cart_added_at
      FROM (SELECT a.customer_id, a.product, max(a.occurred_at) AS at,
                   row_number() OVER (PARTITION BY a.customer_id
                                      ORDER BY max(a.occurred_at) DESC, a.product COLLATE "C") AS rank
              FROM past AS a LEFT JOIN per AS p USING (customer_id)
             WHERE a.event_type = 'cart_add' AND a.product IS NOT NULL
               AND a.occurred_at > coalesce(p.last_checkout, '-infinity')
             GROUP BY a.customer_id, a.product) AS x
     WHERE rank <= 10 GROUP BY customer_id
), bad AS (
    SELECT customer_id,
           count(*) FILTER (WHERE event_type IS NULL OR event_type NOT IN
                                  ('visit', 'product_view', 'cart_add', 'checkout', 'newsletter_open',
                                   'subscribe', 'unsubscribe')) AS unknown_events,
           count(*) FILTER (WHERE event_type IN ('visit', 'product_view', 'cart_add', 'checkout',
                                                 'newsletter_open', 'subscribe', 'unsubscribe')
                              AND occurred_at > :as_of) AS future_events
      FROM ev WHERE occurred_at IS NOT NULL GROUP BY customer_id
)
SELECT bad.customer_id, timestamptz :as_of AS as_of, b.start AS window_start,
       coalesce(per.visits, 0) AS visits, coalesce(per.product_views, 0) AS product_views,
       coalesce(per.cart_adds, 0) AS cart_adds, coalesce(per.checkouts, 0) AS checkouts,
       coalesce(per.newsletter_opens, 0) AS newsletter_opens,
       per.first_visit, per.last_visit, per.last_cart_add, per.last_checkout, per.last_newsletter_open,
       sub.subscribed, sub.subscription_changed_at,
       coalesce(cart.cart_products, '{}') AS cart_products, coalesce(cart.cart_added_at, '{}') AS cart_added_at,
       bad.unknown_events, bad.future_events
  FROM bad CROSS JOIN bounds AS b
  LEFT JOIN per USING (customer_id) LEFT JOIN sub USING (customer_id) LEFT JOIN cart USING (customer_id);

SELECT results_eq(
    'SELECT * FROM got ORDER BY customer_id',
    'SELECT * FROM want ORDER BY customer_id',
    'events equals counts, min/max, DISTINCT ON and a ranked cart in plain SQL');

SELECT ok((SELECT count(*) FILTER (WHERE cardinality(cart_products) >= 3) > 100
              AND count(*) FILTER (WHERE subscribed IS NOT NULL) > 100
              AND count(*) FILTER (WHERE future_events > 0) > 100
              AND count(*) FILTER (WHERE cardinality(cart_products) = 10) > 0
             FROM got),
          'the data have carts, subscriptions, future rows and full carts');

-- Abandoned products against a plain-SQL filter, for a last order per customer.
SELECT is_empty(
    $$SELECT g.customer_id
        FROM got AS g JOIN got_e USING (customer_id),
             LATERAL (SELECT timestamptz '2025-05-20' + (g.customer_id % 40) * interval '1 day' AS last_order) AS o
       WHERE segment.abandoned_products(got_e.e, o.last_order) IS DISTINCT FROM
             ARRAY(SELECT p FROM unnest(g.cart_products, g.cart_added_at) WITH ORDINALITY AS u(p, at, n)
                    WHERE u.at > o.last_order ORDER BY n)
          OR segment.abandoned_at(got_e.e, o.last_order) IS DISTINCT FROM
             CASE WHEN g.last_cart_add > greatest(g.last_checkout, o.last_order) THEN g.last_cart_add END$$,
    'abandoned_products and abandoned_at equal plain-SQL filters');


-- contacts against FILTER aggregates.
CREATE TEMP TABLE con AS
SELECT (1 + floor(random() * 800))::int AS customer_id,
       CASE WHEN random() < 0.98 THEN timestamptz '2025-01-01' + random() * interval '200 days' END AS opened_at,
       CASE WHEN random() < 0.9 THEN random() < 0.3 END AS negative
  FROM generate_series(1, 6000);
SELECT results_eq(
    $$SELECT customer_id, (c).* FROM (SELECT customer_id, segment.contacts(opened_at, negative, '2025-06-15 12:00+02', '45 days') AS c
                                        FROM con GROUP BY customer_id) AS s
       WHERE (c).as_of IS NOT NULL ORDER BY customer_id$$,
    $$SELECT customer_id, timestamptz '2025-06-15 12:00+02', timestamptz '2025-06-15 12:00+02' - interval '45 days',
             count(*) FILTER (WHERE opened_at > timestamptz '2025-06-15 12:00+02' - interval '45 days' AND opened_at <= '2025-06-15 12:00+02'),
             count(*) FILTER (WHERE negative AND opened_at > timestamptz '2025-06-15 12:00+02' - interval '45 days' AND opened_at <= '2025-06-15 12:00+02'),
             count(*) FILTER (WHERE negative IS NULL AND opened_at > timestamptz '2025-06-15 12:00+02' - interval '45 days' AND opened_at <= '2025-06-15 12:00+02'),
             min(opened_at) FILTER (WHERE opened_at <= '2025-06-15 12:00+02'), max(opened_at) FILTER (WHERE opened_at <= '2025-06-15 12:00+02'),
             max(opened_at) FILTER (WHERE negative AND opened_at <= '2025-06-15 12:00+02'),
             count(*) FILTER (WHERE opened_at > '2025-06-15 12:00+02')
        FROM con WHERE opened_at IS NOT NULL GROUP BY customer_id ORDER BY customer_id$$,
    'contacts equals FILTER aggregates');

-- order_lines against counts and a ranked category, over a join with products
-- (some lines' products are missing).
CREATE TEMP TABLE prod AS
SELECT 'p' || p AS product_id,
       CASE WHEN p % 17 <> 0 THEN timestamptz '2024-06-01' + random() * interval '300 days' END AS launched_at,
       CASE WHEN p % 13 <> 0 THEN (ARRAY['shoes', 'Shoes', 'bags', 'hats', 'socks', 'äpfel'])[1 + p % 6] END AS category
  FROM generate_series(1, 300) AS p;
CREATE TEMP TABLE lines AS
SELECT (1 + floor(random() * 1000))::int AS customer_id,
       timestamptz '2025-01-01' + floor(random() * 180) * interval '1 day' AS ordered_at,
       'p' || floor(random() * 320) AS product_id,     -- p300..p319 are missing
       1 + floor(random() * 3) AS quantity
  FROM generate_series(1, 12000);
SELECT results_eq(
    $$SELECT customer_id, (l).* FROM (SELECT customer_id, segment.order_lines(ordered_at, launched_at, category, 45) AS l
                                        FROM lines LEFT JOIN prod USING (product_id) GROUP BY customer_id) AS s
       ORDER BY customer_id$$,
    $$WITH j AS (SELECT * FROM lines LEFT JOIN prod USING (product_id)),
          per AS (SELECT customer_id, count(*) AS n, count(launched_at) AS dated,
                         count(*) FILTER (WHERE ordered_at <= launched_at + interval '45 days') AS trend,
                         count(DISTINCT category)::int AS ncat, count(*) FILTER (WHERE category IS NULL) AS uncat
                    FROM j GROUP BY customer_id),
          cat AS (SELECT DISTINCT ON (customer_id) customer_id, category, count(*) AS n
                    FROM j WHERE category IS NOT NULL
                   GROUP BY customer_id, category
                   ORDER BY customer_id, count(*) DESC, max(ordered_at) DESC, category COLLATE "C")
     SELECT per.customer_id, per.n, per.dated, per.trend,
            CASE WHEN per.dated > 0 THEN per.trend::float8 / per.dated END, per.n - per.dated, per.ncat,
            cat.category, cat.n, cat.n::float8 / (per.n - per.uncat), per.uncat
       FROM per LEFT JOIN cat USING (customer_id) ORDER BY per.customer_id$$,
    'order_lines equals counts and the top category ranked in plain SQL');

-- restock against distinct days and the rate formula, per customer and product.
SELECT results_eq(
    $$SELECT customer_id, product_id, (r).purchase_days, (r).first_purchase, (r).last_purchase, (r).units,
             (r).last_units, round((r).mean_gap_days::numeric, 9), round((r).days_per_unit::numeric, 9),
             (r).expected_restock
        FROM (SELECT customer_id, product_id, segment.restock(ordered_at, quantity) AS r
                FROM lines GROUP BY customer_id, product_id) AS s
       ORDER BY customer_id, product_id$$,
    $$WITH g AS (SELECT customer_id, product_id, count(DISTINCT ordered_at::date)::int AS days,
                        min(ordered_at) AS first_at, max(ordered_at) AS last_at, sum(quantity)::float8 AS units,
                        min(ordered_at::date) AS first_day, max(ordered_at::date) AS last_day
                   FROM lines GROUP BY customer_id, product_id),
          l AS (SELECT g.*, (SELECT sum(quantity)::float8 FROM lines AS x
                              WHERE x.customer_id = g.customer_id AND x.product_id = g.product_id
                                AND x.ordered_at::date = g.last_day) AS last_units
                  FROM g)
     SELECT customer_id, product_id, days, first_at, last_at, units, last_units,
            CASE WHEN days > 1 THEN round(((last_day - first_day)::float8 / (days - 1))::numeric, 9) END,
            CASE WHEN days > 1 THEN round(((last_day - first_day) / (units - last_units))::numeric, 9) END,
            CASE WHEN days > 1 THEN last_day + round(last_units * (last_day - first_day) / (units - last_units))::int END
       FROM l ORDER BY customer_id, product_id$$,
    'restock equals distinct days, sums and the re-stock formula in plain SQL');

SELECT * FROM finish();
ROLLBACK;
