-- Impulse Buyers (issue 17) on planted groups: 200 customers, 20 per group
-- (id % 10), each with orders, order lines and product events chosen so
-- that exactly the planted groups buy what they had not browsed.  Defaults:
-- window 30 days, impulse_days 7, impulse_lines 2, impulse_share 0.6.
-- Orders on 06-10 and 06-20 12:00, as_of 2025-07-01 00:00 UTC.
--   id % 10 = 0   impulse: 4 lines, no view or cart add of their products
--   id % 10 = 1   control: each product viewed 2 days before its order
--   id % 10 = 2   control: viewed 6 days before (inside impulse_days)
--   id % 10 = 3   impulse: viewed 8 days before (outside impulse_days)
--   id % 10 = 4   impulse: 5 lines, 3 not browsed (share 0.6, the threshold)
--   id % 10 = 5   control: 5 lines, 2 not browsed (share 0.4)
--   id % 10 = 6   control: 1 line, not browsed (fewer than impulse_lines)
--   id % 10 = 7   control: each product put in the cart an hour before (no view)
--   id % 10 = 8   control: 4 lines not browsed, ordered in April (outside the window)
--   id % 10 = 9   impulse: each product viewed only after its order
BEGIN;
SELECT plan(15);
SET LOCAL TimeZone = 'UTC';

CREATE SCHEMA tap_imp;
CREATE TABLE tap_imp.customers (id integer PRIMARY KEY);
INSERT INTO tap_imp.customers SELECT i FROM generate_series(1, 200) AS i;

-- Each customer's lines: n, the product, the order (1: 06-10, 2: 06-20;
-- April for group 8), and how the product was browsed before (or after) it.
CREATE TABLE tap_imp.plan AS
SELECT c.id, n, 'p' || c.id || '-' || n AS product,
       CASE WHEN n <= CASE WHEN c.id % 10 IN (4, 5) THEN 3 ELSE 2 END THEN 1 ELSE 2 END AS j,
       CASE c.id % 10
           WHEN 1 THEN interval '-2 days'
           WHEN 2 THEN interval '-6 days'
           WHEN 3 THEN interval '-8 days'
           WHEN 4 THEN CASE WHEN n <= 2 THEN interval '-1 day' END
           WHEN 5 THEN CASE WHEN n <= 3 THEN interval '-1 day' END
           WHEN 9 THEN interval '1 hour'
       END AS viewed,
       CASE WHEN c.id % 10 = 7 THEN interval '-1 hour' END AS carted
  FROM tap_imp.customers AS c,
       generate_series(1, CASE WHEN c.id % 10 IN (4, 5) THEN 5 WHEN c.id % 10 = 6 THEN 1 ELSE 4 END) AS n;

CREATE TABLE tap_imp.orders (order_id bigint PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                             amount numeric);
INSERT INTO tap_imp.orders
SELECT DISTINCT id * 10 + j, id,
       CASE WHEN id % 10 = 8 THEN timestamptz '2025-04-10 12:00' ELSE timestamptz '2025-06-10 12:00' END
           + (j - 1) * interval '10 days',
       40
  FROM tap_imp.plan;
CREATE TABLE tap_imp.lines (order_id bigint, sku text, qty integer);
INSERT INTO tap_imp.lines SELECT id * 10 + j, product, 1 FROM tap_imp.plan;

CREATE TABLE tap_imp.events (customer_id integer, event_type text, occurred_at timestamptz, product text);
INSERT INTO tap_imp.events
SELECT p.id, 'product_view', o.ordered_at + p.viewed, p.product
  FROM tap_imp.plan AS p JOIN tap_imp.orders AS o ON o.order_id = p.id * 10 + p.j
 WHERE p.viewed IS NOT NULL
UNION ALL
SELECT p.id, 'cart_add', o.ordered_at + p.carted, p.product
  FROM tap_imp.plan AS p JOIN tap_imp.orders AS o ON o.order_id = p.id * 10 + p.j
 WHERE p.carted IS NOT NULL
UNION ALL
-- everyone visits, and views some other product, on the day of the order
SELECT c.id, t, timestamptz '2025-06-10 11:00', CASE WHEN t = 'product_view' THEN 'other' END
  FROM tap_imp.customers AS c, unnest(ARRAY['visit', 'product_view']) AS t;

SELECT lives_ok($$
    SELECT segment.configure(orders => 'tap_imp.orders', customer => 'customer_id', ordered_at => 'ordered_at',
                             amount => 'amount', customers => 'tap_imp.customers', customers_key => 'id',
                             segmentation => 'tap_imp', is_default => false, new_days => 0);
    SELECT segment.configure_event_source('tap_imp.events', 'customer_id', 'event_type', 'occurred_at',
                                    segmentation => 'tap_imp');
    SELECT segment.configure_product_source('tap_imp.lines', 'order_id', 'sku', quantity => 'qty',
                                      segmentation => 'tap_imp')$$,
    'configure the orders, events without their product column, order lines');
SELECT is((SELECT predicate FROM segment.rule_predicates WHERE segmentation = 'tap_imp' AND builtin = 'impulse_buyer'),
          'false', 'without the events'' product column, Impulse Buyers never holds');
SELECT lives_ok($$SELECT segment.configure_event_source('tap_imp.events', 'customer_id', 'event_type', 'occurred_at',
                                                  product => 'product', segmentation => 'tap_imp')$$,
                'the events with their product column');
SELECT is((SELECT predicate FROM segment.rule_predicates WHERE segmentation = 'tap_imp' AND builtin = 'impulse_buyer'),
          'unbrowsed_lines >= 2 AND unbrowsed_share >= 0.6', 'the rule with the default thresholds');
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT segment.refresh('tap_imp', as_of => '2025-07-01')$$, 'refresh');
RESET client_min_messages;

SELECT set_eq($$SELECT customer_id FROM segment.profile_tap_imp WHERE 'Impulse Buyers' = ANY (flags)$$,
              $$SELECT id FROM tap_imp.customers WHERE id % 10 IN (0, 3, 4, 9)$$,
              'Impulse Buyers: exactly the planted groups (not browsed, browsed too early, at the share, viewed after)');
SELECT set_eq($$SELECT customer_id FROM segment.profile_tap_imp WHERE segment = 'Impulse Buyers'$$,
              $$SELECT id FROM tap_imp.customers WHERE id % 10 IN (0, 3, 4, 9)$$,
              'and it is their segment (new_days 0: not Newcomers)');
SELECT results_eq($$SELECT DISTINCT customer_id % 10, unbrowsed_lines, round(unbrowsed_share::numeric, 2)
                      FROM segment.profile_tap_imp ORDER BY 1$$,
                  $$VALUES (0, 4::bigint, 1.00), (1, 0, 0.00), (2, 0, 0.00), (3, 4, 1.00), (4, 3, 0.60),
                           (5, 2, 0.40), (6, 1, 1.00), (7, 0, 0.00), (8, 0, NULL), (9, 4, 1.00)$$,
                  'unbrowsed_lines and unbrowsed_share of each group (April''s lines are outside the window)');

-- The thresholds are edited like the other rules': a lower share takes in
-- group 5, one line group 6, a longer look-back drops group 3.
UPDATE segment.event_sources SET impulse_share = 0.4, impulse_lines = 1, impulse_days = 9
 WHERE segmentation = 'tap_imp';
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT segment.refresh('tap_imp', as_of => '2025-07-01')$$, 'refresh with other thresholds');
RESET client_min_messages;
SELECT set_eq($$SELECT customer_id FROM segment.profile_tap_imp WHERE 'Impulse Buyers' = ANY (flags)$$,
              $$SELECT id FROM tap_imp.customers WHERE id % 10 IN (0, 4, 5, 6, 9)$$,
              'Impulse Buyers with impulse_share 0.4, impulse_lines 1, impulse_days 9');
SELECT throws_ok($$SELECT segment.configure_event_source('tap_imp.events', 'customer_id', 'event_type', 'occurred_at',
                                                   product => 'product', segmentation => 'tap_imp',
                                                   impulse_share => 'NaN')$$,
                 '22023', 'invalid Impulse Buyers threshold', 'impulse_share NaN is refused');
SELECT throws_ok($$SELECT segment.configure_event_source('tap_imp.events', 'customer_id', 'event_type', 'occurred_at',
                                                   product => 'product', segmentation => 'tap_imp',
                                                   impulse_days => 0)$$,
                 '22023', 'invalid Impulse Buyers threshold', 'impulse_days 0 is refused');
SELECT throws_ok($$SELECT segment.configure_event_source('tap_imp.events', 'customer_id', 'event_type', 'occurred_at',
                                                   product => 'product', segmentation => 'tap_imp',
                                                   impulse_lines => NULL)$$,
                 '22023', 'invalid Impulse Buyers threshold', 'impulse_lines NULL is refused');

-- Without the order lines the rule does not hold and the figures are NULL.
SET LOCAL client_min_messages = warning;
SELECT lives_ok($$SELECT segment.drop_source('products', 'tap_imp');
                  SELECT segment.refresh('tap_imp', as_of => '2025-07-01')$$,
                'drop the order lines and refresh');
RESET client_min_messages;
SELECT is((SELECT count(*) FROM segment.profile_tap_imp
            WHERE unbrowsed_lines IS NOT NULL OR 'Impulse Buyers' = ANY (flags)),
          0::bigint, 'without order lines: no figures, nobody flagged');

SELECT * FROM finish();
ROLLBACK;
