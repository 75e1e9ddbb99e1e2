-- The other tables of the benchmark shop (bench/generate.sql makes the
-- customers and orders, bench/events/generate.sql the events): support
-- contacts, products and order lines, generated deterministically (setseed).
--
--   psql -v customers=1000000 -f bench/sources/generate.sql   (default: 10000)
--
-- contacts     0.3 per customer, from 2024-01-01 up to 2026-01-01, a rating
--              1..5 (1 and 2 are negative), one in ten unrated
-- products     5000 (p0 .. p4999, the names the events use), launched
--              evenly from 2022-01-01 to 2026-01-01, in 20 categories
-- order_lines  1 to 2 per order (1M customers -> ~13M lines); a third of a
--              customer's lines are of the customer's own staple product
--              (one of p0 .. p499: re-stock figures), the others of any
--              product launched by then; quantity 1..3
--
-- Set-based (one INSERT ... SELECT per table); the draws are made in the
-- order of the rows scanned, which bench/generate.sql fixes.

\if :{?customers}
\else
\set customers 10000
\endif

SET client_min_messages = warning;
SET max_parallel_workers_per_gather = 0;
SET TimeZone = 'UTC';

DROP TABLE IF EXISTS contacts, products, order_lines;
DO $$ BEGIN PERFORM setseed(0.23); END $$;

CREATE TABLE contacts (
    customer_id bigint NOT NULL,
    opened_at   timestamptz NOT NULL,
    rating      integer
);
INSERT INTO contacts (customer_id, opened_at, rating)
SELECT 1 + floor(g.u_c * :customers)::bigint,
       timestamptz '2024-01-01' + g.u_t * (timestamptz '2026-01-01' - timestamptz '2024-01-01'),
       CASE WHEN g.u_r >= 0.9 THEN NULL ELSE 1 + floor(g.u_r / 0.9 * 5)::int END
  FROM (SELECT i, random() AS u_c, random() AS u_t, random() AS u_r
          FROM generate_series(1, (:customers * 0.3)::bigint) AS i) AS g;

CREATE TABLE products (
    product     text PRIMARY KEY,
    launched_at timestamptz NOT NULL,
    category    text NOT NULL
);
INSERT INTO products
SELECT 'p' || i, timestamptz '2022-01-01' + i * ((timestamptz '2026-01-01' - timestamptz '2022-01-01') / 5000),
       'c' || (i % 20)
  FROM generate_series(0, 4999) AS i;

CREATE TABLE order_lines (
    order_id bigint NOT NULL,
    product  text NOT NULL,
    quantity integer NOT NULL
);
INSERT INTO order_lines (order_id, product, quantity)
SELECT d.order_id,
       'p' || CASE WHEN d.u_p < 1.0 / 3 THEN d.customer_id % 500
                   ELSE floor(d.u_q * greatest(1, d.launched))::bigint END,
       1 + floor(d.u_n * 3)::int
  FROM (SELECT o.order_id, o.customer_id, k, random() AS u_p, random() AS u_q, random() AS u_n,
               -- the products launched by the time of the order
               floor(5000 * extract(epoch FROM o.ordered_at - timestamptz '2022-01-01')
                          / extract(epoch FROM timestamptz '2026-01-01' - timestamptz '2022-01-01')) AS launched
          FROM orders AS o
         CROSS JOIN LATERAL generate_series(1, 1 + (o.order_id % 3 = 0)::int) AS k) AS d;

VACUUM (FREEZE, ANALYZE) contacts;
VACUUM (FREEZE, ANALYZE) products;
VACUUM (FREEZE, ANALYZE) order_lines;

RESET TimeZone;
RESET max_parallel_workers_per_gather;
RESET client_min_messages;
