-- The order lines' two stages of a refresh (pg_temp.segment_refresh_lines
-- and pg_temp.segment_refresh_restock) come out of one pass over the lines
-- joined with their orders (segment_internal.line_stages(), by
-- segment_internal.refresh_line_pass()).  They must
-- equal, column for column, what the two straightforward queries compute:
-- GROUP BY customer with order_lines() and the counts of odd lines, and
-- GROUP BY customer, product with restock(), the earliest re-stock still to
-- come per customer (ties: by date, then product).  The shop has text
-- customer keys, re-stocks due the same day for several products of a
-- customer, lines of missing products, of no order, of excluded orders
-- (cancelled, after as_of, no amount, no customer), bad quantities (0,
-- negative, NaN, infinite) and NULL product keys.
BEGIN;
SELECT plan(15);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

CREATE SCHEMA tap_ls;
CREATE TABLE tap_ls.orders (id integer PRIMARY KEY, customer text, at timestamptz, amount numeric,
                            status text);
-- 400 customers, 12 orders each, every 9 to 13 days (by customer) up to
-- the as_of 2025-07-01: re-stocks fall before and after it.
INSERT INTO tap_ls.orders
SELECT c * 100 + k, 'cust-' || c,
       '2025-07-01'::timestamptz - ((12 - k) * (9 + c % 5) + c % 7) * interval '1 day' + (c % 3) * interval '5 hours',
       10 + k, CASE WHEN (c + k) % 17 = 0 THEN 'cancelled' WHEN (c + k) % 5 = 0 THEN 'paid' END
  FROM generate_series(1, 400) AS c, generate_series(1, 12) AS k;
-- Orders that do not count: after as_of, no amount, no customer, no time.
INSERT INTO tap_ls.orders VALUES
    (900001, 'cust-1', '2025-07-05', 5, NULL),
    (900002, 'cust-2', '2025-06-01', NULL, NULL),
    (900003, NULL, '2025-06-01', 5, NULL),
    (900004, 'cust-3', NULL, 5, NULL),
    (900005, 'only-excluded', '2025-06-01', 5, 'cancelled');

CREATE TABLE tap_ls.products (sku text PRIMARY KEY, launched timestamptz, cat text);
INSERT INTO tap_ls.products
SELECT 'p' || i, '2025-01-01'::timestamptz + i * interval '9 days',
       CASE WHEN i % 4 <> 0 THEN 'cat' || (i % 3) END
  FROM generate_series(0, 19) AS i;

-- Lines: each order has 1 to 3 products (p0..p24: p20..p24 are missing from
-- products); every customer buys a "twin" pair (a and b, or B and a) in the
-- same quantities on the same orders, so that both are due the same day
-- (but a third of them, who buy refills of p3).
CREATE TABLE tap_ls.lines (order_id integer, sku text, qty numeric);
INSERT INTO tap_ls.lines
SELECT o.id, 'p' || ((o.id / 100 + j * 7 + o.id % 100) % 25), 1 + (o.id + j) % 3
  FROM tap_ls.orders AS o, generate_series(0, (o.id % 3)) AS j
 WHERE o.id < 900000;
INSERT INTO tap_ls.lines
SELECT o.id, t.sku, 2
  FROM tap_ls.orders AS o, (VALUES ('twin-a'), ('twin-b')) AS t(sku)
 WHERE o.id < 900000 AND o.id / 100 % 3 <> 0 AND o.id / 100 % 2 = 0 AND o.id % 100 >= 9;
INSERT INTO tap_ls.lines
SELECT o.id, t.sku, NULL
  FROM tap_ls.orders AS o, (VALUES ('twin-B'), ('twin-a')) AS t(sku)
 WHERE o.id < 900000 AND o.id / 100 % 3 <> 0 AND o.id / 100 % 2 = 1 AND o.id % 100 >= 9;
-- A third of the customers buy a refill instead.
INSERT INTO tap_ls.lines
SELECT o.id, 'p3', 1 FROM tap_ls.orders AS o
 WHERE o.id < 900000 AND o.id / 100 % 3 = 0 AND o.id % 100 >= 7;
-- Odd lines: bad quantities, NULL products, lines of no order, of orders
-- that do not count.
INSERT INTO tap_ls.lines
SELECT o.id, CASE WHEN o.id % 4 = 0 THEN NULL ELSE 'p1' END,
       (ARRAY['0', '-1', 'NaN', 'Infinity', NULL, '1']::numeric[])[1 + o.id % 6]
  FROM tap_ls.orders AS o WHERE o.id % 11 = 0;
INSERT INTO tap_ls.lines VALUES
    (777777, 'p1', 1), (777778, NULL, 1), (NULL, 'p2', 1),
    (900001, 'p1', 1), (900002, 'p1', 1), (900003, 'p1', 1), (900004, 'p1', 1), (900005, 'p1', 1);
ANALYZE tap_ls.orders;
ANALYZE tap_ls.lines;

SELECT segment.configure('tap_ls.orders', 'customer', 'at', 'amount', status => 'status',
                         exclude_status => '{cancelled}', segmentation => 'ls');
SELECT segment.configure_product_source('tap_ls.lines', 'order_id', 'sku', quantity => 'qty',
                                        products => 'tap_ls.products', product_key => 'sku',
                                        launched_at => 'launched', category => 'cat',
                                        orders_key => 'id', segmentation => 'ls');

-- The stages as a refresh as of 2025-07-01 computes them.
SELECT segment_internal.refresh_line_pass(s, '2025-07-01 00:00+00', '')
  FROM segment.segmentations AS s WHERE s.name = 'ls';

-- The two straightforward queries.
CREATE TEMP TABLE want_lines AS
SELECT o.customer AS customer_id,
       segment.order_lines(CASE WHEN g.good AND g.kept THEN o.at END, pr.launched, pr.cat, 30) AS l,
       count(*) AS n,
       count(*) FILTER (WHERE o.id IS NULL) AS no_order,
       count(*) FILTER (WHERE o.id IS NOT NULL AND NOT coalesce(g.kept, false)) AS excluded_order,
       count(*) FILTER (WHERE g.kept AND NOT g.good) AS bad_quantity,
       count(*) FILTER (WHERE g.kept AND g.good AND l.sku IS NOT NULL AND pr.sku IS NULL) AS missing_product
  FROM tap_ls.lines AS l
  LEFT JOIN tap_ls.orders AS o ON o.id = l.order_id
  LEFT JOIN tap_ls.products AS pr ON pr.sku = l.sku
 CROSS JOIN LATERAL (
       SELECT o.customer IS NOT NULL AND o.at IS NOT NULL AND o.amount IS NOT NULL
              AND o.at <= '2025-07-01 00:00+00' AND (o.status IS NULL OR o.status <> 'cancelled') AS kept,
              l.qty IS NULL OR (l.qty::float8 > 0 AND l.qty::float8 < 'Infinity') AS good) AS g
 GROUP BY o.customer;
CREATE TEMP TABLE want_restock AS
SELECT DISTINCT ON (x.customer_id) x.customer_id, (x.r).expected_restock AS next_restock,
       x.product AS restock_product
  FROM (SELECT o.customer AS customer_id, l.sku AS product, segment.restock(o.at, l.qty::float8) AS r
          FROM tap_ls.lines AS l
          JOIN tap_ls.orders AS o ON o.id = l.order_id
         WHERE o.customer IS NOT NULL AND o.at IS NOT NULL AND o.amount IS NOT NULL
           AND o.at <= '2025-07-01 00:00+00' AND (o.status IS NULL OR o.status <> 'cancelled')
           AND (l.qty IS NULL OR (l.qty::float8 > 0 AND l.qty::float8 < 'Infinity'))
           AND l.sku IS NOT NULL
         GROUP BY o.customer, l.sku) AS x
 WHERE (x.r).purchase_days >= 3 AND (x.r).expected_restock >= '2025-07-01'::date
 ORDER BY x.customer_id, (x.r).expected_restock, x.product;

-- The shop has what the test is about.
SELECT ok((SELECT sum(no_order) > 0 AND sum(excluded_order) > 0 AND sum(bad_quantity) > 0
                  AND sum(missing_product) > 0 AND count(*) FILTER (WHERE customer_id IS NULL) = 1
             FROM want_lines),
          'the shop has lines of no order, of excluded orders, with bad quantities, of missing products');
SELECT ok((SELECT count(*) FROM want_restock WHERE restock_product LIKE 'twin-%') > 50
          AND (SELECT count(*) FROM want_restock WHERE restock_product NOT LIKE 'twin-%') > 50,
          'many customers are due a twin first (a tie), many another product');
SELECT ok((SELECT count(*) FROM (
              SELECT t.customer FROM (
                  SELECT o.customer, (segment.restock(o.at, l.qty::float8)).expected_restock AS d
                    FROM tap_ls.lines AS l JOIN tap_ls.orders AS o ON o.id = l.order_id
                   WHERE l.sku LIKE 'twin-%' AND o.status IS DISTINCT FROM 'cancelled'
                     AND o.at <= '2025-07-01 00:00+00'
                   GROUP BY o.customer, l.sku) AS t
               GROUP BY t.customer HAVING count(*) = 2 AND count(DISTINCT t.d) = 1) AS u) > 50,
          'the twins of a customer are due the same day');

-- (the lines without a customer come per order key: summed here)
SELECT results_eq(
    $$SELECT customer_id, l::text, n, no_order, excluded_order, bad_quantity, missing_product
        FROM pg_temp.segment_refresh_lines WHERE customer_id IS NOT NULL
      UNION ALL
      SELECT NULL, min(l::text), sum(n)::bigint, sum(no_order)::bigint, sum(excluded_order)::bigint,
             sum(bad_quantity)::bigint, sum(missing_product)::bigint
        FROM pg_temp.segment_refresh_lines WHERE customer_id IS NULL
      ORDER BY customer_id NULLS FIRST$$,
    $$SELECT customer_id, l::text, n, no_order, excluded_order, bad_quantity, missing_product
        FROM want_lines ORDER BY customer_id NULLS FIRST$$,
    'segment_refresh_lines: every column of every customer as GROUP BY customer computes it');
SELECT ok((SELECT count(*) > 1 AND count(l) = 0 AND count(DISTINCT order_key) = count(*) - 1
             FROM pg_temp.segment_refresh_lines WHERE customer_id IS NULL),
          'the lines without a customer: one row per order key (and one of no key), each summarising nothing');
SELECT results_eq(
    $$SELECT customer_id, next_restock, restock_product FROM pg_temp.segment_refresh_restock ORDER BY 1$$,
    $$SELECT customer_id, next_restock, restock_product FROM want_restock ORDER BY 1$$,
    'segment_refresh_restock: the earliest re-stock to come and its product, ties by product, as GROUP BY customer, product computes it');
SELECT is((SELECT count(*) FROM pg_temp.segment_refresh_restock WHERE restock_product = 'twin-B'),
          (SELECT count(*) FROM want_restock WHERE restock_product = 'twin-B'),
          'twin-B before twin-a in the database''s collation, as ORDER BY product');

-- A full refresh gives the profile the same figures.
SELECT segment.refresh('ls', '2025-07-01 00:00+00');
SELECT results_eq(
    $$SELECT customer_id, next_restock, restock_product, trend_share, trend_lines, top_category
        FROM segment.profile_ls WHERE frequency > 0 ORDER BY customer_id$$,
    $$SELECT w.customer_id, r.next_restock, r.restock_product COLLATE "default", (w.l).trend_share,
             coalesce((w.l).trend_lines, 0), (w.l).top_category
        FROM want_lines AS w
        LEFT JOIN (SELECT DISTINCT ON (customer_id) * FROM want_restock ORDER BY customer_id) AS r
          ON r.customer_id = w.customer_id
       WHERE w.customer_id IS NOT NULL AND w.customer_id <> 'only-excluded' ORDER BY w.customer_id$$,
    'the profile has them');
SELECT is((SELECT r.sources->'products' FROM segment.refreshes AS r WHERE r.segmentation = 'ls'),
          (SELECT jsonb_build_object('rows', sum(n), 'customers', count(*) FILTER (WHERE customer_id IS NOT NULL AND (l).lines > 0),
                                     'skipped', sum(no_order + excluded_order + bad_quantity),
                                     'details', jsonb_build_object('no_order', sum(no_order), 'excluded_order', sum(excluded_order),
                                                                   'bad_quantity', sum(bad_quantity),
                                                                   'missing_product', sum(missing_product)))
             FROM want_lines),
          'and the refresh log counts the lines as before');

-- A product column with a collation of its own: ties by that collation
-- (ICU's root collation puts twin-a before twin-B; C where there is no ICU).
SELECT coalesce((SELECT c.collname FROM pg_collation AS c WHERE c.collname = 'und-x-icu' LIMIT 1), 'C') AS coll \gset
ALTER TABLE tap_ls.lines ALTER COLUMN sku TYPE text COLLATE :"coll";
SELECT segment_internal.drop_refresh_tables();
SELECT segment_internal.refresh_line_pass(s, '2025-07-01 00:00+00', '')
  FROM segment.segmentations AS s WHERE s.name = 'ls';
SELECT results_eq(
    $$SELECT customer_id, next_restock, restock_product FROM pg_temp.segment_refresh_restock ORDER BY 1$$,
    $$SELECT DISTINCT ON (w.customer_id) w.customer_id, w.next_restock, p.product COLLATE "default"
        FROM want_restock AS w
        JOIN (SELECT o.customer, l.sku AS product,
                     (segment.restock(o.at, l.qty::float8)).expected_restock AS d
                FROM tap_ls.lines AS l JOIN tap_ls.orders AS o ON o.id = l.order_id
               WHERE o.customer IS NOT NULL AND o.amount IS NOT NULL AND o.at <= '2025-07-01 00:00+00'
                 AND (o.status IS NULL OR o.status <> 'cancelled')
                 AND (l.qty IS NULL OR (l.qty::float8 > 0 AND l.qty::float8 < 'Infinity'))
                 AND l.sku IS NOT NULL
               GROUP BY o.customer, l.sku HAVING count(DISTINCT o.at::date) >= 3) AS p
          ON p.customer = w.customer_id AND p.d = w.next_restock
       ORDER BY w.customer_id, p.product$$,
    'a product column in a collation of its own: ties by that collation');
SELECT ok(:'coll' = 'C' OR (SELECT count(*) FROM pg_temp.segment_refresh_restock WHERE restock_product = 'twin-B') = 0,
          'with ICU, twin-a before twin-B');


-- A product column whose text does not tell its products apart: numeric
-- 7.0 and 7.00 are one product, bought on three days, so it is due for a
-- re-stock; told apart by their text they would be two, bought on two days
-- and one.  Such columns take the two passes, GROUP BY the product itself
-- (which of 7.0 and 7.00 names the product is either's text, as before).
CREATE TABLE tap_ls.num_lines (order_id integer, sku numeric, qty numeric);
INSERT INTO tap_ls.num_lines
SELECT o.id, CASE WHEN o.id % 100 % 3 = 0 THEN 7.00 ELSE 7.0 END, 1
  FROM tap_ls.orders AS o WHERE o.id < 900000 AND o.id / 100 <= 40;
SELECT segment.configure('tap_ls.orders', 'customer', 'at', 'amount', status => 'status',
                         exclude_status => '{cancelled}', segmentation => 'ls_num');
SELECT segment.configure_product_source('tap_ls.num_lines', 'order_id', 'sku', quantity => 'qty',
                                        orders_key => 'id', segmentation => 'ls_num');
SELECT segment_internal.drop_refresh_tables();
SELECT segment_internal.refresh_line_pass(s, '2025-07-01 00:00+00', '')
  FROM segment.segmentations AS s WHERE s.name = 'ls_num';
CREATE TEMP TABLE want_num AS
SELECT DISTINCT ON (x.customer_id) x.customer_id, (x.r).expected_restock AS next_restock,
       x.product AS restock_product
  FROM (SELECT o.customer AS customer_id, l.sku::text AS product, segment.restock(o.at, l.qty::float8) AS r
          FROM tap_ls.num_lines AS l
          JOIN tap_ls.orders AS o ON o.id = l.order_id
         WHERE o.at <= '2025-07-01 00:00+00' AND (o.status IS NULL OR o.status <> 'cancelled')
         GROUP BY o.customer, l.sku) AS x
 WHERE (x.r).purchase_days >= 3 AND (x.r).expected_restock >= '2025-07-01'::date
 ORDER BY x.customer_id, (x.r).expected_restock, x.product;
SELECT ok((SELECT count(*) FROM want_num) > 5, 'numeric products: customers are due a re-stock of 7.0 and 7.00 bought as one');
SELECT results_eq(
    $$SELECT customer_id, next_restock, restock_product::numeric FROM pg_temp.segment_refresh_restock ORDER BY 1$$,
    $$SELECT customer_id, next_restock, restock_product::numeric FROM want_num ORDER BY 1$$,
    'numeric products: the re-stocks GROUP BY the product itself computes');
SELECT results_eq(
    $$SELECT customer_id, next_restock, restock_product::numeric FROM pg_temp.segment_refresh_lines
       WHERE next_restock IS NOT NULL ORDER BY 1$$,
    $$SELECT customer_id, next_restock, restock_product::numeric FROM want_num ORDER BY 1$$,
    'numeric products: segment_refresh_lines carries them too');
SELECT throws_ok($$SELECT segment_internal.refresh_line_pass(s, '2025-07-01 00:00+00', 'true')
                     FROM segment.segmentations AS s WHERE s.name = 'ls_num'$$,
                 '0A000', 'order lines whose products are not told apart by their text are read in full',
                 'numeric products: no pass over some of the lines (an incremental refresh reads them all)');

SELECT * FROM finish();
ROLLBACK;
