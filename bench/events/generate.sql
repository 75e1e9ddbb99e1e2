-- The benchmark events: a shop's site and newsletter events for customers
-- 1..customers (the ids of bench/generate.sql), from 2024-01-01 up to
-- 2026-01-01 00:00+00, generated deterministically (setseed).
--
--   psql -v customers=1000000 -f bench/events/generate.sql   (default: 10000)
--   -v events_per_customer=50                                (the default)
--
-- 1M customers -> 50M events.  Rows are stored in time order, as a shop's
-- table grows, so one customer's events are spread over the whole table.
-- Activity is skewed: customer k is drawn with probability ~ k^(-1/3)
-- (customer 1 has ~100 times the events of customer 1M, who has ~33).
-- Types: visit 25%, product_view 45%, cart_add 12%, checkout 4%,
-- newsletter_open 10%, subscribe 1.5%, unsubscribe 0.5%, and 2% 'search'
-- (not one of our kinds: unknown without a mapping).  Product views and
-- cart adds name one of 5000 products.  amount is the product price or
-- order value; the benchmark also feeds it to rfm over the same rows as a
-- baseline.
--
-- One INSERT ... SELECT, no sort and no per-row loop; the random draws are
-- made in row order, so the data do not depend on the plan.

\if :{?customers}
\else
\set customers 10000
\endif
\if :{?events_per_customer}
\else
\set events_per_customer 50
\endif

SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SET TimeZone = 'UTC';

DROP TABLE IF EXISTS events;
DO $$ BEGIN PERFORM setseed(0.7); END $$;

CREATE TABLE events (
    customer_id bigint NOT NULL,
    event_type  text NOT NULL,
    occurred_at timestamptz NOT NULL,
    product     text,
    amount      numeric(12,2) NOT NULL
);

INSERT INTO events (customer_id, event_type, occurred_at, product, amount)
SELECT 1 + floor(:customers * power(g.u_c, 1.5))::bigint,
       CASE WHEN g.u_t < 0.25 THEN 'visit'
            WHEN g.u_t < 0.70 THEN 'product_view'
            WHEN g.u_t < 0.82 THEN 'cart_add'
            WHEN g.u_t < 0.86 THEN 'checkout'
            WHEN g.u_t < 0.96 THEN 'newsletter_open'
            WHEN g.u_t < 0.975 THEN 'subscribe'
            WHEN g.u_t < 0.98 THEN 'unsubscribe'
            ELSE 'search' END,
       timestamptz '2024-01-01' + (g.i - g.u_s) * s.step,
       CASE WHEN g.u_t >= 0.25 AND g.u_t < 0.82 THEN 'p' || floor(g.u_p * 5000)::int END,
       round((5 + exp(2.5 + 1.5 * g.u_p))::numeric, 2)
  FROM (SELECT i, random() AS u_c, random() AS u_t, random() AS u_s, random() AS u_p
          FROM generate_series(1, :customers::bigint * :events_per_customer) AS i) AS g,
       (SELECT (timestamptz '2026-01-01' - timestamptz '2024-01-01')
               / (:customers::float8 * :events_per_customer) AS step) AS s;

VACUUM (FREEZE, ANALYZE) events;
