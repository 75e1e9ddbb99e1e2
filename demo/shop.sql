-- An example online shop: 20,000 customers and their orders over two years,
-- and what else a shop has about them: site and newsletter events, support
-- tickets, the product catalogue and the order lines.  Generated
-- deterministically (setseed, then hashes of row keys), so every run prints
-- the same report.
--
-- Kinds of customers, as a shop sees them:
--   loyal      15%  order every few weeks since they signed up
--   regular    25%  a few orders a year
--   one-time   30%  a single order
--   lapsed     12%  several orders in their first months, then nothing
--   new         8%  signed up in the last two months, one or two orders
--   prospect   10%  signed up, never ordered
-- Spend is log-normal (heavy-tailed); a fifth of the customers hunt coupons.
-- Their traits for the other tables are listed at shop_traits below.

SET client_min_messages = warning;
SET TimeZone = 'UTC';
DROP SCHEMA IF EXISTS shop CASCADE;
CREATE SCHEMA shop;
DO $$ BEGIN PERFORM setseed(0.42); END $$;

CREATE TABLE shop.customers (
    customer_id  integer PRIMARY KEY,
    email        text NOT NULL,
    country      text NOT NULL,
    kind         text NOT NULL,   -- how the generator made them (to check the segments against)
    coupon_hunter boolean NOT NULL,
    signed_up_at timestamptz NOT NULL
);

CREATE TABLE shop.orders (
    order_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES shop.customers,
    ordered_at  timestamptz NOT NULL,
    amount      numeric(10,2) NOT NULL,
    discount    numeric(10,2) NOT NULL DEFAULT 0,
    status      text NOT NULL DEFAULT 'paid'
);

INSERT INTO shop.customers
SELECT i,
       format('customer%s@example.com', i),
       (ARRAY['DE','FR','NL','IT','ES','AT','BE','PL'])[1 + floor(random() * 8)::int],
       kind,
       random() < 0.2,
       CASE kind
           WHEN 'new' THEN timestamptz '2025-05-01' + random() * interval '60 days'
           WHEN 'lapsed' THEN timestamptz '2023-07-01' + random() * interval '180 days'
           ELSE timestamptz '2023-07-01' + random() * interval '600 days'
       END
  FROM (SELECT i, CASE
                     WHEN u < 0.15 THEN 'loyal'
                     WHEN u < 0.40 THEN 'regular'
                     WHEN u < 0.70 THEN 'one-time'
                     WHEN u < 0.82 THEN 'lapsed'
                     WHEN u < 0.90 THEN 'new'
                     ELSE 'prospect'
                  END AS kind
          FROM (SELECT i, random() AS u FROM generate_series(1, 20000) AS i) AS draw) AS c
 ORDER BY i;

-- Each customer buys n times, at uniform times within an active window.
WITH plan AS (
    SELECT customer_id, coupon_hunter, signed_up_at AS from_at,
           CASE kind
               WHEN 'lapsed' THEN signed_up_at + (60 + random() * 120) * interval '1 day'
               ELSE timestamptz '2025-06-30'
           END AS to_at,
           CASE kind
               WHEN 'loyal' THEN 8 + floor(random() * 18)::int
               WHEN 'regular' THEN 2 + floor(random() * 5)::int
               WHEN 'one-time' THEN 1
               WHEN 'lapsed' THEN 2 + floor(random() * 6)::int
               WHEN 'new' THEN 1 + floor(random() * 2)::int
               ELSE 0
           END AS n,
           -- a customer's typical basket: log-normal around 45 EUR
           exp(ln(45) + 0.6 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS basket
      FROM shop.customers
     ORDER BY customer_id
), draws AS (
    SELECT p.customer_id, p.coupon_hunter,
           p.from_at + random() * (p.to_at - p.from_at) AS ordered_at,
           round((p.basket * exp(0.4 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))::numeric, 2) AS amount,
           random() AS coupon_draw, random() AS status_draw
      FROM plan AS p, generate_series(1, p.n)
     ORDER BY p.customer_id
)
INSERT INTO shop.orders (customer_id, ordered_at, amount, discount, status)
SELECT customer_id, ordered_at, greatest(amount, 1.00),
       CASE WHEN coupon_draw < (CASE WHEN coupon_hunter THEN 0.8 ELSE 0.1 END)
            THEN round(greatest(amount, 1.00) * 0.15, 2) ELSE 0 END,
       CASE WHEN status_draw < 0.03 THEN 'cancelled' ELSE 'paid' END
  FROM draws
 ORDER BY ordered_at;

-- What a shop would report on: paid orders only.
CREATE VIEW shop.paid_orders AS
    SELECT * FROM shop.orders WHERE status = 'paid';

CREATE INDEX ON shop.orders (customer_id, ordered_at);

-- The rest is drawn from hashes of each row's key and a purpose number
-- (u(key, purpose) in [0, 1)) rather than from random(): a draw then does not
-- depend on the order in which a query happens to read the rows.
CREATE FUNCTION pg_temp.u(key bigint, purpose integer) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(key, purpose) & 9007199254740991)::float8 / 9007199254740992 $$;

-- The product catalogue: 300 products in 8 categories, launched since 2022,
-- a summer collection launched from mid-May 2025; and 12 consumables that
-- run out (coffee, detergent, pet food ...), each lasting about so many days.
CREATE TABLE shop.products (
    sku         text PRIMARY KEY,
    name        text NOT NULL,
    category    text NOT NULL,
    price       numeric(10,2) NOT NULL,
    launched_at timestamptz NOT NULL
);

CREATE TEMP TABLE consumables (n integer, sku text, name text, category text, price numeric, lasts_days integer);
INSERT INTO consumables VALUES
    (1, 'GR-COFFEE', 'Espresso beans 1 kg', 'groceries', 18.90, 30),
    (2, 'PE-DOGFOOD', 'Dog food 4 kg', 'pets', 24.50, 30),
    (3, 'HO-DETERGENT', 'Laundry detergent 3 l', 'household', 14.99, 45),
    (4, 'GR-TEA', 'Green tea, 100 bags', 'groceries', 9.90, 45),
    (5, 'BE-SHAMPOO', 'Shampoo refill 1 l', 'beauty', 12.50, 60),
    (6, 'PE-LITTER', 'Cat litter 10 l', 'pets', 11.90, 30),
    (7, 'HO-TABS', 'Dishwasher tabs, 60', 'household', 13.90, 45),
    (8, 'BE-RAZOR', 'Razor blades, 8', 'beauty', 19.90, 60),
    (9, 'HO-FILTER', 'Water filter, 3-pack', 'household', 22.00, 90),
    (10, 'EL-INK', 'Printer ink, black', 'electronics', 29.90, 90),
    (11, 'BE-LENS', 'Contact lens solution', 'beauty', 8.90, 45),
    (12, 'GR-VITAMIN', 'Vitamin D, 90 capsules', 'groceries', 7.90, 90);

INSERT INTO shop.products
SELECT sku, name, category, price, timestamptz '2022-03-01 09:00' FROM consumables;

-- The others: 300, numbered by launch (the lines below pick them by number).
CREATE TEMP TABLE catalogue AS
WITH drawn AS (
    SELECT i, (ARRAY['apparel', 'shoes', 'accessories', 'home', 'beauty', 'electronics', 'sports', 'toys'])
                  [1 + floor(pg_temp.u(i, 1) * 8)::int] AS category,
           CASE
               WHEN i <= 100 THEN timestamptz '2022-01-10 09:00' + floor(pg_temp.u(i, 2) * 530) * interval '1 day'
               WHEN i <= 270 THEN timestamptz '2023-07-01 09:00' + floor((i - 101 + pg_temp.u(i, 2)) * 683 / 170) * interval '1 day'
               ELSE timestamptz '2025-05-15 09:00' + floor(pg_temp.u(i, 2) * 42) * interval '1 day'
           END AS launched_at
      FROM generate_series(1, 300) AS i
)
SELECT row_number() OVER (ORDER BY launched_at, i)::integer AS rank,
       format('%s-%s', upper(left(category, 2)), lpad(i::text, 4, '0')) AS sku,
       format('%s %s', (ARRAY['Nordic', 'Riviera', 'Urban', 'Alpine', 'Coastal', 'Classic', 'Studio', 'Trail', 'Aero', 'Heritage'])
                           [1 + floor(pg_temp.u(i, 3) * 10)::int],
              (CASE category
                   WHEN 'apparel' THEN '{T-shirt,Hoodie,"Linen shirt",Jeans,"Summer dress","Rain jacket",Chinos,"Polo shirt"}'
                   WHEN 'shoes' THEN '{Sneakers,Sandals,"Running shoes",Boots,Loafers,Espadrilles}'
                   WHEN 'accessories' THEN '{Sunglasses,Backpack,"Leather belt",Cap,Scarf,Wallet,Watch}'
                   WHEN 'home' THEN '{Cushion,"Table lamp","Throw blanket",Vase,"Mug set","Towel set"}'
                   WHEN 'beauty' THEN '{"Face cream","Sunscreen SPF 50","Lip balm",Perfume,"Hair oil"}'
                   WHEN 'electronics' THEN '{Earbuds,"Phone case","Power bank","Smart speaker","USB-C charger"}'
                   WHEN 'sports' THEN '{"Yoga mat","Water bottle",Dumbbells,"Tennis racket","Cycling gloves"}'
                   ELSE '{"Puzzle, 1000 pieces","Building blocks","Plush bear","Board game",Kite}'
               END::text[])[1 + floor(pg_temp.u(i, 4) * 5)::int]) AS name,
       category,
       round((CASE category WHEN 'electronics' THEN 60 WHEN 'shoes' THEN 80 WHEN 'apparel' THEN 40
                            WHEN 'home' THEN 35 WHEN 'sports' THEN 30 ELSE 20 END
              * exp(0.5 * (pg_temp.u(i, 5) - 0.5)))::numeric, 2) - 0.01 AS price,
       launched_at
  FROM drawn;
INSERT INTO shop.products SELECT sku, name, category, price, launched_at FROM catalogue ORDER BY rank;
CREATE UNIQUE INDEX ON catalogue (rank);

-- Per day: how many of them were launched by its end, by the end of the day
-- 30 days before (so the products launched in the last 30 days are the
-- numbers above that), and 90 days before.
CREATE TEMP TABLE launches AS
SELECT d::date AS day,
       (SELECT count(*) FROM catalogue WHERE launched_at < d + interval '1 day')::integer AS n,
       (SELECT count(*) FROM catalogue WHERE launched_at < d - interval '29 days')::integer AS n30,
       (SELECT count(*) FROM catalogue WHERE launched_at < d - interval '89 days')::integer AS n90
  FROM generate_series(timestamptz '2023-07-01', '2025-06-30', interval '1 day') AS d;
CREATE UNIQUE INDEX ON launches (day);

-- Ten bestsellers of the 2022 catalogue, the first one the most popular.
CREATE FUNCTION pg_temp.bestseller(u double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ('{7,18,23,31,42,56,64,77,85,93}'::integer[])[1 + floor(10 * u ^ 1.5)::integer] $$;

-- What else the generator makes of each customer:
--   trend_follower    an eighth of the loyal, regular and new customers buy
--                     mostly products launched in the last 30 days
--   staple            45% of the loyal customers, 20% of the regular and of the
--                     lapsed ones buy a consumable with their next order
--                     whenever it is about to run out (1 or 2 units at a time)
--   browse            site sessions a month without an order
--   window_shopper    4% of the regular, one-time and lapsed customers visit
--                     five times or more in the last four weeks, order nothing
--   prospect_visits   a fifth of the prospects visited in June, a fifth earlier
--   impulse           6% of the loyal, regular and new customers buy most
--                     products without having viewed them or put them in
--                     the cart (a quick buy at checkout): no view, no cart
--                     add for 85% of their lines
--   subscriber        signed up for the newsletter (some unsubscribed since),
--                     opens it with probability open_rate
CREATE TEMP TABLE shop_traits AS
SELECT c.customer_id, c.kind, c.signed_up_at,
       c.kind IN ('loyal', 'regular', 'new') AND pg_temp.u(c.customer_id, 11) < 0.125 AS trend_follower,
       CASE WHEN pg_temp.u(c.customer_id, 12) < CASE c.kind WHEN 'loyal' THEN 0.45
                                                       WHEN 'regular' THEN 0.2
                                                       WHEN 'lapsed' THEN 0.2 ELSE 0 END
            THEN 1 + floor(12 * pg_temp.u(c.customer_id, 13) ^ 1.5)::int END AS staple,
       CASE WHEN pg_temp.u(c.customer_id, 14) < 0.2 THEN 2 ELSE 1 END AS staple_units,
       0.9 + 0.3 * pg_temp.u(c.customer_id, 15) AS staple_pace,
       CASE c.kind WHEN 'loyal' THEN 1.5 WHEN 'regular' THEN 0.6 WHEN 'new' THEN 1.0
                   WHEN 'one-time' THEN 0.2 WHEN 'lapsed' THEN 0.05 ELSE 0 END AS browse,
       c.kind IN ('regular', 'one-time', 'lapsed') AND pg_temp.u(c.customer_id, 16) < 0.04 AS window_shopper,
       CASE WHEN c.kind <> 'prospect' THEN NULL
            WHEN pg_temp.u(c.customer_id, 17) < 0.2 THEN 'june'
            WHEN pg_temp.u(c.customer_id, 17) < 0.4 THEN 'spring' END AS prospect_visits,
       pg_temp.u(c.customer_id, 18) < CASE c.kind WHEN 'loyal' THEN 0.55 WHEN 'regular' THEN 0.4
                                                 WHEN 'lapsed' THEN 0.3 WHEN 'new' THEN 0.35
                                                 ELSE 0.25 END AS subscriber,
       CASE c.kind WHEN 'loyal' THEN 0.45 WHEN 'regular' THEN 0.3 WHEN 'new' THEN 0.35
                   WHEN 'lapsed' THEN 0.08 ELSE 0.15 END AS open_rate,
       c.kind IN ('loyal', 'regular', 'new') AND pg_temp.u(c.customer_id, 19) < 0.06 AS impulse
  FROM shop.customers AS c;
ALTER TABLE shop_traits ADD PRIMARY KEY (customer_id);

-- Order lines: 1 to 5 products an order (1.6 on average), picked among those
-- launched by the order's day: a trend follower's mostly among the last 30
-- days' launches; others' sometimes among the last 90 days', or a
-- bestseller, else any.
CREATE TABLE shop.order_lines (
    order_id bigint NOT NULL,
    line_no  integer NOT NULL,
    sku      text NOT NULL,
    qty      integer NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

CREATE FUNCTION pg_temp.lines_of(order_id bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT least(5, 1 + floor(-ln(1 - pg_temp.u(order_id, 20))))::integer $$;

INSERT INTO shop.order_lines
SELECT l.order_id, l.line_no, cat.sku, CASE WHEN pg_temp.u(l.key, 23) < 0.1 THEN 2 ELSE 1 END
  FROM (SELECT o.order_id, n.line_no, o.order_id * 8 + n.line_no AS key, t.trend_follower, d.n, d.n30, d.n90
          FROM shop.orders AS o
          JOIN shop_traits AS t USING (customer_id)
          JOIN launches AS d ON d.day = o.ordered_at::date,
               generate_series(1, pg_temp.lines_of(o.order_id)) AS n(line_no)) AS l
  JOIN catalogue AS cat ON cat.rank = CASE
           WHEN l.trend_follower AND l.n > l.n30 AND pg_temp.u(l.key, 21) < 0.8
               THEN l.n30 + 1 + floor(pg_temp.u(l.key, 22) * (l.n - l.n30))
           WHEN pg_temp.u(l.key, 21) < 0.15 AND l.n > l.n90
               THEN l.n90 + 1 + floor(pg_temp.u(l.key, 22) * (l.n - l.n90))
           WHEN pg_temp.u(l.key, 21) < 0.23 THEN pg_temp.bestseller(pg_temp.u(l.key, 22))
           ELSE 1 + floor(pg_temp.u(l.key, 22) * l.n)
       END
 ORDER BY l.order_id, l.line_no;

-- The staples: from the first paid order on, the next paid order once the
-- last units are about to run out (three days before), one more line.
INSERT INTO shop.order_lines
WITH RECURSIVE walk AS (
    SELECT t.customer_id, c.sku, t.staple_units AS units,
           round(c.lasts_days * t.staple_pace * t.staple_units) AS lasts, f.order_id, f.ordered_at
      FROM shop_traits AS t
      JOIN consumables AS c ON c.n = t.staple
     CROSS JOIN LATERAL (SELECT o.order_id, o.ordered_at FROM shop.orders AS o
                          WHERE o.customer_id = t.customer_id AND o.status = 'paid'
                          ORDER BY o.ordered_at, o.order_id LIMIT 1) AS f
    UNION ALL
    SELECT w.customer_id, w.sku, w.units, w.lasts, nx.order_id, nx.ordered_at
      FROM walk AS w
     CROSS JOIN LATERAL (SELECT o.order_id, o.ordered_at FROM shop.orders AS o
                          WHERE o.customer_id = w.customer_id AND o.status = 'paid'
                            AND o.ordered_at >= w.ordered_at + (w.lasts - 3) * interval '1 day'
                          ORDER BY o.ordered_at, o.order_id LIMIT 1) AS nx
)
SELECT order_id, pg_temp.lines_of(order_id) + 1, sku, units FROM walk ORDER BY order_id;

-- Site and newsletter events, with the shop's own event names (the web
-- analytics went live on 1 March 2025; the newsletter tool's subscribe and
-- unsubscribe events go back to the sign-ups):
--   session_start, search, view_item, add_to_cart, purchase  (site)
--   nl_subscribe, nl_unsubscribe, nl_open                    (newsletter)
-- Around each order since March: a session, a view and a cart add of each
-- product ordered (of an impulse buyer's products, most often neither), the
-- purchase.  Sessions without an order: views, now and
-- then a cart add left behind.  Visitors not logged in: no customer.
CREATE TABLE shop.events (
    event_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer,
    event       text NOT NULL,
    occurred_at timestamptz NOT NULL,
    sku         text
);

CREATE TEMP TABLE raw_events (customer_id integer, event text, occurred_at timestamptz, sku text);

-- Around the orders.
INSERT INTO raw_events
WITH s AS (
    SELECT o.order_id, o.customer_id, o.ordered_at,
           o.ordered_at - (5 + 40 * pg_temp.u(o.order_id, 30)) * interval '1 minute' AS started_at
      FROM shop.orders AS o
     WHERE o.ordered_at >= '2025-03-01'
)
SELECT customer_id, 'session_start', started_at, NULL FROM s
UNION ALL
SELECT customer_id, 'search', started_at + interval '20 seconds', NULL FROM s
 WHERE pg_temp.u(order_id, 31) < 0.3
UNION ALL
SELECT s.customer_id, e.event,
       s.started_at + (s.ordered_at - s.started_at) * (l.line_no - e.at) / (m.lines + 1), l.sku
  FROM s
  JOIN shop.order_lines AS l USING (order_id)
  JOIN (SELECT order_id, count(*) AS lines FROM shop.order_lines GROUP BY order_id) AS m USING (order_id)
  JOIN shop_traits AS t ON t.customer_id = s.customer_id,
       (VALUES ('view_item', 0.7), ('add_to_cart', 0.3)) AS e(event, at)
 WHERE NOT (t.impulse AND pg_temp.u(l.order_id * 8 + l.line_no, 34) < 0.85)
UNION ALL
SELECT customer_id, 'purchase', ordered_at, NULL FROM s;

-- Sessions without an order: key customer * 100 + session.
INSERT INTO raw_events
WITH plan AS (
    SELECT t.customer_id, t.trend_follower,
           CASE WHEN t.window_shopper THEN timestamptz '2025-06-03'
                ELSE greatest(timestamptz '2025-03-01', t.signed_up_at) END AS from_at,
           timestamptz '2025-06-30 22:00' AS to_at,
           CASE WHEN t.window_shopper THEN 5 + floor(5 * pg_temp.u(t.customer_id, 32))::int
                ELSE floor(t.browse * (0.5 + pg_temp.u(t.customer_id, 32))
                           * extract(epoch FROM timestamptz '2025-06-30 22:00'
                                                - greatest(timestamptz '2025-03-01', t.signed_up_at)) / (30 * 86400)
                           + pg_temp.u(t.customer_id, 33))::int
           END AS sessions,
           CASE WHEN t.window_shopper THEN 0.1 ELSE 0.15 END AS cart_rate
      FROM shop_traits AS t
     WHERE t.browse > 0 OR t.window_shopper
    UNION ALL
    SELECT t.customer_id, false,
           CASE t.prospect_visits WHEN 'june' THEN timestamptz '2025-06-01' ELSE timestamptz '2025-03-01' END,
           CASE t.prospect_visits WHEN 'june' THEN timestamptz '2025-06-30 22:00' ELSE timestamptz '2025-04-30' END,
           1 + floor(3 * pg_temp.u(t.customer_id, 32))::int,
           0.15
      FROM shop_traits AS t
     WHERE t.prospect_visits IS NOT NULL
), sessions AS (
    SELECT p.customer_id, p.trend_follower, p.cart_rate, p.customer_id::bigint * 100 + j AS key,
           p.from_at + pg_temp.u(p.customer_id::bigint * 100 + j, 34) * (p.to_at - p.from_at) AS started_at,
           1 + floor(4 * pg_temp.u(p.customer_id::bigint * 100 + j, 35))::int AS views
      FROM plan AS p, generate_series(1, least(p.sessions, 99)) AS j
), views AS (
    SELECT s.*, v, s.started_at + (2 * v) * interval '1 minute' AS viewed_at,
           cat.sku
      FROM sessions AS s
      JOIN launches AS d ON d.day = s.started_at::date,
           generate_series(1, s.views) AS v,
           LATERAL (SELECT CASE WHEN s.trend_follower AND d.n > d.n30 AND pg_temp.u(s.key * 8 + v, 36) < 0.8
                                THEN d.n30 + 1 + floor(pg_temp.u(s.key * 8 + v, 37) * (d.n - d.n30))
                                WHEN pg_temp.u(s.key * 8 + v, 36) < 0.25 THEN pg_temp.bestseller(pg_temp.u(s.key * 8 + v, 37))
                                ELSE 1 + floor(pg_temp.u(s.key * 8 + v, 37) * d.n) END AS rank) AS r
      JOIN catalogue AS cat ON cat.rank = r.rank
)
SELECT customer_id, 'session_start', started_at, NULL FROM sessions
UNION ALL
SELECT customer_id, 'view_item', viewed_at, sku FROM views
UNION ALL
SELECT customer_id, 'add_to_cart', viewed_at + interval '1 minute', sku FROM views
 WHERE v = views AND pg_temp.u(key, 38) < cart_rate;

-- Visitors who did not log in: 8000 sessions, no customer.
INSERT INTO raw_events
SELECT NULL, e.event, timestamptz '2025-03-01' + pg_temp.u(j, 40) * interval '121 days 22 hours'
                      + e.step * interval '2 minutes', e.sku
  FROM generate_series(1, 8000) AS j
  JOIN launches AS d ON d.day = (timestamptz '2025-03-01' + pg_temp.u(j, 40) * interval '121 days 22 hours')::date,
       LATERAL (SELECT 'session_start' AS event, 0 AS step, NULL::text AS sku
                UNION ALL
                SELECT 'view_item', v, (SELECT sku FROM catalogue WHERE rank = 1 + floor(pg_temp.u(j * 8 + v, 41) * d.n))
                  FROM generate_series(1, 1 + floor(3 * pg_temp.u(j, 42))::int) AS v) AS e;

-- The newsletter: subscribed at sign-up, a sixth unsubscribed since (two
-- fifths of the lapsed customers); sent every Thursday at 9:00, opened within
-- a day and a half.
INSERT INTO raw_events
WITH subscribers AS (
    SELECT t.customer_id, t.kind, t.open_rate, t.signed_up_at + interval '2 minutes' AS subscribed_at,
           CASE WHEN pg_temp.u(t.customer_id, 43) < CASE t.kind WHEN 'lapsed' THEN 0.4 ELSE 0.15 END
                THEN t.signed_up_at + pg_temp.u(t.customer_id, 44) * (timestamptz '2025-06-30 20:00' - t.signed_up_at)
           END AS unsubscribed_at
      FROM shop_traits AS t
     WHERE t.subscriber
)
SELECT customer_id, 'nl_subscribe', subscribed_at, NULL FROM subscribers
UNION ALL
SELECT customer_id, 'nl_unsubscribe', unsubscribed_at, NULL FROM subscribers WHERE unsubscribed_at IS NOT NULL
UNION ALL
SELECT s.customer_id, 'nl_open', w.sent_at + pg_temp.u(s.customer_id::bigint * 100 + w.n, 46) * interval '36 hours', NULL
  FROM subscribers AS s,
       (SELECT row_number() OVER (ORDER BY d) AS n, d AS sent_at
          FROM generate_series(timestamptz '2025-03-06 09:00', '2025-06-26 09:00', interval '7 days') AS d) AS w
 WHERE s.subscribed_at < w.sent_at AND (s.unsubscribed_at IS NULL OR s.unsubscribed_at > w.sent_at)
   AND pg_temp.u(s.customer_id::bigint * 100 + w.n, 45) < s.open_rate;

INSERT INTO shop.events (customer_id, event, occurred_at, sku)
SELECT customer_id, event, occurred_at, sku FROM raw_events
 ORDER BY occurred_at, customer_id, event, sku;

-- Support tickets, rated 1 to 5 by the customer afterwards (a fifth not
-- rated): 5% of the paid orders (delivery, returns, a question, payment) and
-- 40% of the cancelled ones, a few days after the order, rated worse; and
-- questions from a tenth of the prospects.
CREATE TABLE shop.tickets (
    ticket_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES shop.customers,
    order_id    bigint REFERENCES shop.orders,
    opened_at   timestamptz NOT NULL,
    channel     text NOT NULL,
    topic       text NOT NULL,
    rating      integer CHECK (rating BETWEEN 1 AND 5)
);

INSERT INTO shop.tickets (customer_id, order_id, opened_at, channel, topic, rating)
SELECT customer_id, order_id, opened_at,
       CASE WHEN pg_temp.u(key, 52) < 0.5 THEN 'email' WHEN pg_temp.u(key, 52) < 0.85 THEN 'chat' ELSE 'phone' END,
       topic,
       CASE WHEN pg_temp.u(key, 53) < 0.2 THEN NULL
            ELSE 1 + (SELECT count(*) FROM unnest(cuts) AS c WHERE c <= pg_temp.u(key, 54))::int END
  FROM (SELECT o.customer_id, o.order_id, o.order_id AS key,
               o.ordered_at + (0.5 + 9.5 * pg_temp.u(o.order_id, 50)) * interval '1 day' AS opened_at,
               CASE WHEN o.status = 'cancelled' THEN 'cancellation'
                    ELSE (ARRAY['delivery', 'delivery', 'return', 'return', 'product question', 'payment'])
                             [1 + floor(6 * pg_temp.u(o.order_id, 51))::int] END AS topic,
               -- the rating's cumulative shares of 1, 2, 3, 4
               CASE WHEN o.status = 'cancelled' THEN '{0.3,0.55,0.75,0.9}'::float8[]
                    ELSE '{0.08,0.18,0.35,0.65}'::float8[] END AS cuts
          FROM shop.orders AS o
         WHERE pg_temp.u(o.order_id, 49) < CASE WHEN o.status = 'cancelled' THEN 0.4 ELSE 0.05 END
        UNION ALL
        SELECT t.customer_id, NULL, -t.customer_id,
               t.signed_up_at + pg_temp.u(t.customer_id, 55) * interval '30 days', 'product question',
               '{0.03,0.08,0.25,0.6}'
          FROM shop_traits AS t
         WHERE t.kind = 'prospect' AND pg_temp.u(t.customer_id, 56) < 0.1) AS t
 WHERE opened_at < '2025-06-30 20:00'
 ORDER BY opened_at, customer_id;

ANALYZE shop.customers;
ANALYZE shop.orders;
ANALYZE shop.products;
ANALYZE shop.order_lines;
ANALYZE shop.events;
ANALYZE shop.tickets;
