-- The shop of bench/clv.sh: :customers customers (5% of them prospects who
-- never ordered) with about 10 orders each between 2024-01-01 and
-- 2026-01-01, drawn from the process the BG/NBD model assumes: each buyer
-- orders at a personal pace (mean days between orders) and after each order
-- leaves for good with a personal probability; baskets are personal too.
-- Seeded, so two runs generate the same shop.
--
--   psql -v customers=1000000 -f bench/clv/generate.sql
\set ON_ERROR_STOP on
SELECT setseed(0.42);

CREATE TABLE customers (customer_id bigint PRIMARY KEY, signed_up date NOT NULL);
CREATE TABLE orders (
    customer_id bigint NOT NULL,
    ordered_at  timestamptz NOT NULL,
    amount      numeric(10,2) NOT NULL,
    discount    numeric(10,2) NOT NULL DEFAULT 0
);

CREATE TEMP TABLE buyer_traits AS
SELECT id AS customer_id,
       timestamptz '2024-01-01 00:00+00' + random() * interval '725 days' AS first_order,
       4 + 40 * random() ^ 2 AS pace_days,                 -- mean gap between orders
       0.02 + 0.12 * random() AS churn,                    -- chance of leaving after an order
       12 + 140 * random() ^ 3 AS basket,                  -- typical order value
       random() < 0.05 AS prospect
  FROM generate_series(1, :customers) AS id;

INSERT INTO customers
SELECT customer_id, (first_order - random() * interval '60 days')::date FROM buyer_traits;

-- The number of orders while active is geometric (1 + failures before the
-- customer leaves); the gaps are exponential around the pace.
INSERT INTO orders (customer_id, ordered_at, amount, discount)
SELECT t.customer_id, o.ordered_at,
       -- a Gamma(3) draw around the basket, as the Gamma-Gamma model assumes
       round((t.basket * (-ln(1 - random()) - ln(1 - random()) - ln(1 - random())) / 3)::numeric, 2),
       CASE WHEN random() < 0.15 THEN round((t.basket * 0.1)::numeric, 2) ELSE 0 END
  FROM buyer_traits AS t
 CROSS JOIN LATERAL (
       SELECT t.first_order + sum(g.gap) OVER (ORDER BY g.i) * interval '1 day' AS ordered_at
         FROM (SELECT i, CASE WHEN i = 0 THEN 0 ELSE -ln(1 - random()) * t.pace_days END AS gap
                 FROM generate_series(0, (ln(1 - random()) / ln(1 - t.churn))::integer) AS i) AS g
       ) AS o
 WHERE NOT t.prospect AND o.ordered_at < timestamptz '2026-01-01 00:00+00';

CREATE INDEX ON orders (customer_id);
ANALYZE customers, orders;
DROP TABLE buyer_traits;
