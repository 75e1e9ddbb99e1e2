-- The benchmark shop: customers and their orders from 2022-01-01 up to
-- 2026-01-01 00:00+00, generated deterministically (setseed), so that every
-- run of a benchmark works on the same data.
--
--   psql -v customers=1000000 -f bench/generate.sql    (default: 10000)
--
-- About 10 orders per customer on average (1M customers -> ~10M orders).
-- Kinds of customers, as a shop sees them:
--   loyal      15%  order every few weeks, from sign-up to now
--   regular    25%  a few orders a year, from sign-up to now
--   one-time   30%  a single order, soon after signing up
--   lapsed     12%  several orders in their first months, then nothing
--   new         8%  signed up in the last two months, one or two orders
--   prospect   10%  signed up, never ordered
-- Spend is log-normal (heavy-tailed): each customer has a typical basket,
-- each order varies around it.  A fifth of the customers hunt coupons; 3% of
-- the orders are cancelled and 1% refunded.
--
-- Set-based: one INSERT ... SELECT per table (no per-row loop); the orders
-- are stored in the order they were placed, as a shop's table grows.  The
-- random draws happen in a fixed order (customers by id, their orders one
-- after the other), so the data do not depend on the plan or on work_mem.

\if :{?customers}
\else
\set customers 10000
\endif

SET client_min_messages = warning;
-- random() is parallel restricted, but keep every plan serial all the same:
-- the order of the draws must not depend on the workers.
SET max_parallel_workers_per_gather = 0;
SET TimeZone = 'UTC';

DROP TABLE IF EXISTS orders, customers CASCADE;
DO $$ BEGIN PERFORM setseed(0.42); END $$;

CREATE TABLE customers (
    customer_id   bigint NOT NULL,
    email         text NOT NULL,
    country       text NOT NULL,
    signed_up_at  timestamptz NOT NULL,
    kind          text NOT NULL,      -- how the generator made them (to check segments against)
    coupon_hunter boolean NOT NULL
);

CREATE TABLE orders (
    order_id    bigint NOT NULL,
    customer_id bigint NOT NULL,
    ordered_at  timestamptz NOT NULL,
    amount      numeric(12,2) NOT NULL,
    discount    numeric(12,2) NOT NULL DEFAULT 0,
    status      text NOT NULL DEFAULT 'paid'
);

-- The customers, with each one's buying plan (kept in a temporary table for
-- the orders): the window they buy in, how many orders, the typical basket.
CREATE TEMP TABLE plan AS
WITH draw AS (
    SELECT i AS customer_id, random() AS u_kind, random() AS u_signup,
           random() AS u_country, random() AS u_coupon, random() AS u_n,
           random() AS u_window, random() AS u1, random() AS u2
      FROM generate_series(1, :customers) AS i
), kinds AS (
    SELECT d.*,
           CASE WHEN u_kind < 0.15 THEN 'loyal'
                WHEN u_kind < 0.40 THEN 'regular'
                WHEN u_kind < 0.70 THEN 'one-time'
                WHEN u_kind < 0.82 THEN 'lapsed'
                WHEN u_kind < 0.90 THEN 'new'
                ELSE 'prospect' END AS kind,
           -- a standard normal (Box-Muller), for the log-normal basket and rate
           sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2) AS z
      FROM draw AS d
), signup AS (
    SELECT k.*,
           CASE kind
               WHEN 'new'    THEN timestamptz '2025-11-01' + u_signup * interval '61 days'
               WHEN 'lapsed' THEN timestamptz '2022-01-01' + u_signup * interval '900 days'
               WHEN 'one-time' THEN timestamptz '2022-01-01' + u_signup * interval '1400 days'
               ELSE timestamptz '2022-01-01' + u_signup * interval '1430 days'
           END AS signed_up_at
      FROM kinds AS k
)
SELECT customer_id, kind, signed_up_at,
       format('customer%s@example.com', customer_id) AS email,
       (ARRAY['DE','DE','DE','FR','FR','NL','IT','ES','AT','BE','PL','SE'])
           [1 + floor(u_country * 12)::int] AS country,
       u_coupon < 0.2 AS coupon_hunter,
       signed_up_at AS from_at,
       CASE kind
           WHEN 'lapsed'   THEN signed_up_at + (60 + u_window * 180) * interval '1 day'
           WHEN 'one-time' THEN signed_up_at + (1 + u_window * 30) * interval '1 day'
           ELSE timestamptz '2026-01-01'
       END AS to_at,
       CASE kind
           -- orders a year: log-normal around 21 (loyal) and 3 (regular), times the years
           WHEN 'loyal' THEN greatest(3, round(exp(ln(21) + 0.5 * z)
                    * extract(epoch FROM timestamptz '2026-01-01' - signed_up_at) / (365.25 * 86400)))::int
           WHEN 'regular' THEN greatest(2, round(exp(ln(3) + 0.5 * z)
                    * extract(epoch FROM timestamptz '2026-01-01' - signed_up_at) / (365.25 * 86400)))::int
           WHEN 'one-time' THEN 1
           WHEN 'lapsed' THEN 2 + floor(u_n * 7)::int
           WHEN 'new' THEN 1 + floor(u_n * 2)::int
           ELSE 0
       END AS n,
       -- a customer's typical basket: log-normal around 45 EUR (independent of z)
       exp(ln(45) + 0.7 * sqrt(-2 * ln(1 - u1)) * sin(2 * pi() * u2)) AS basket
  FROM signup
 ORDER BY customer_id;

INSERT INTO customers (customer_id, email, country, signed_up_at, kind, coupon_hunter)
SELECT customer_id, email, country, signed_up_at, kind, coupon_hunter
  FROM plan
 ORDER BY customer_id;

-- Each customer buys n times, at uniform times in the buying window; the
-- draws are made customer by customer (the subquery is not flattened: its
-- target list is volatile), then the orders are sorted by time and numbered.
INSERT INTO orders (order_id, customer_id, ordered_at, amount, discount, status)
SELECT row_number() OVER (ORDER BY ordered_at, customer_id, k),
       customer_id, ordered_at, amount,
       CASE WHEN u_coupon < (CASE WHEN coupon_hunter THEN 0.8 ELSE 0.1 END)
            THEN round(amount * 0.15, 2) ELSE 0 END,
       CASE WHEN u_status < 0.03 THEN 'cancelled'
            WHEN u_status < 0.04 THEN 'refunded'
            ELSE 'paid' END
  FROM (SELECT p.customer_id, k, p.coupon_hunter,
               p.from_at + random() * (p.to_at - p.from_at) AS ordered_at,
               greatest(round((p.basket * exp(0.35 * sqrt(-2 * ln(1 - random()))
                                                   * cos(2 * pi() * random())))::numeric, 2),
                        1.00) AS amount,
               random() AS u_coupon, random() AS u_status
          FROM plan AS p
         CROSS JOIN LATERAL generate_series(1, p.n) AS k) AS draws
 ORDER BY ordered_at, customer_id, k;

DROP TABLE plan;

-- Keys and the customer index a shop has, built after the load.
ALTER TABLE customers ADD PRIMARY KEY (customer_id);
ALTER TABLE orders ADD PRIMARY KEY (order_id);
ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers;
CREATE INDEX orders_customer_id ON orders (customer_id);

-- As a shop's tables are in the steady state: hint bits set, statistics known.
VACUUM (ANALYZE) customers;
VACUUM (ANALYZE) orders;

RESET TimeZone;
RESET max_parallel_workers_per_gather;
RESET client_min_messages;
