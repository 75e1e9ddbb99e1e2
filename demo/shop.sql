-- An example online shop: 20,000 customers and their orders over two years,
-- generated deterministically (setseed), so every run prints the same report.
--
-- Kinds of customers, as a shop sees them:
--   loyal      15%  order every few weeks since they signed up
--   regular    25%  a few orders a year
--   one-time   30%  a single order
--   lapsed     12%  several orders in their first months, then nothing
--   new         8%  signed up in the last two months, one or two orders
--   prospect   10%  signed up, never ordered
-- Spend is log-normal (heavy-tailed); a fifth of the customers hunt coupons.

SET client_min_messages = warning;
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

ANALYZE shop.customers;
ANALYZE shop.orders;
