-- Incremental refreshes with a products source give what a full refresh
-- gives, always.  Segmentations of the same orders, order lines and
-- products, in pairs: 'inc' refreshed as refresh() chooses, 'ref' always in
-- full; 'incn' and 'refn' without the built-in rules that read as_of, so
-- that they rescore only the customers whose figures were recomputed;
-- 'incc' and 'refc' with the lines' own customer column (line_customer).
-- Thirty-two rounds of random changes: orders inserted (some dated after as_of,
-- some cancelled, some without a customer), with their lines; lines of
-- orders that do not exist yet (adopted when the order comes) and of no
-- order; quantities that are not purchases, products that are missing or
-- NULL; lines moved to other orders, their products and quantities
-- changed, lines deleted; orders cancelled, moved in time, handed to
-- another customer or deleted (their lines left without an order).  as_of
-- moves on by minutes, hours or days (re-stock dates pass), stays, once
-- moves back.  After each round both of a pair are refreshed: their
-- profiles (every column), the history each recorded, the counts and what
-- each read from the sources must be equal.  Then the cases that fall back
-- to a full refresh: a TRUNCATE of the lines, a change of the products, the
-- source configured again, a capture trigger disabled.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(39);
SET client_min_messages = warning;

CREATE SCHEMA tap_iprod;
CREATE TABLE tap_iprod.orders (order_id serial PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                               amount numeric(10,2), status text);
CREATE TABLE tap_iprod.lines (id serial PRIMARY KEY, order_id integer, customer_id integer, sku text, qty numeric);
CREATE TABLE tap_iprod.products (sku text PRIMARY KEY, launched_at timestamptz, category text);
-- Product views and cart adds, for Impulse Buyers (the second pair only).
CREATE TABLE tap_iprod.events (id serial PRIMARY KEY, customer_id integer, kind text, at timestamptz, sku text);
-- Indexes to find a customer's orders and an order's lines: the planner may
-- then probe them for the few customers recomputed.
CREATE INDEX ON tap_iprod.orders (customer_id);
CREATE INDEX ON tap_iprod.lines (order_id);
SELECT setseed(0.31);
INSERT INTO tap_iprod.products
SELECT 'sku' || i, timestamptz '2024-01-01 00:00+00' + (i * 9) * interval '1 day',
       CASE WHEN i % 7 = 0 THEN NULL ELSE (ARRAY['shoes', 'shirts', 'bags', 'hats'])[1 + i % 4] END
  FROM generate_series(1, 20) AS i;

-- Orders of the customers 1..120 and their lines: a few products bought
-- again and again (re-stock dates), some lines without a quantity.
CREATE FUNCTION pg_temp.order_rows(n integer, as_of timestamptz, spread interval) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o record;
BEGIN
    FOR o IN
        INSERT INTO tap_iprod.orders (customer_id, ordered_at, amount, status)
        SELECT CASE WHEN random() < 0.02 THEN NULL ELSE 1 + (random() * 119)::int END,
               CASE WHEN random() < 0.85 THEN as_of - random() * spread ELSE as_of + random() * interval '3 days' END,
               round((5 + random() * 200)::numeric, 2),
               CASE WHEN random() < 0.05 THEN 'cancelled' ELSE 'paid' END
          FROM generate_series(1, n)
        RETURNING order_id, customer_id
    LOOP
        INSERT INTO tap_iprod.lines (order_id, customer_id, sku, qty)
        SELECT o.order_id, o.customer_id,
               CASE WHEN random() < 0.03 THEN NULL WHEN random() < 0.05 THEN 'gone' || (random() * 3)::int
                    ELSE 'sku' || (1 + (random() * random() * 19)::int) END,
               CASE WHEN random() < 0.2 THEN NULL WHEN random() < 0.03 THEN 0 ELSE 1 + (random() * 3)::int END
          FROM generate_series(1, 1 + (random() * 2)::int);
    END LOOP;
END
$$;
SELECT pg_temp.order_rows(900, '2024-07-01 00:00+00', interval '180 days');

SELECT lives_ok($$
    SELECT segment.configure('tap_iprod.orders', 'customer_id', 'ordered_at', 'amount', segmentation => s,
                             status => 'status', exclude_status => '{cancelled}', is_default => false),
           segment.configure_product_source('tap_iprod.lines', 'order_id', 'sku', segmentation => s,
                                            quantity => 'qty', products => 'tap_iprod.products', product_key => 'sku',
                                            launched_at => 'launched_at', category => 'category', orders_key => 'order_id',
                                            restock_purchases => 2,
                                            line_customer => CASE WHEN s IN ('incc', 'refc') THEN 'customer_id' END)
      FROM unnest(ARRAY['inc', 'ref', 'incn', 'refn', 'incc', 'refc']) AS s$$,
    'six segmentations of the same orders, lines and products');
SELECT lives_ok($$SELECT segment.configure_event_source('tap_iprod.events', 'customer_id', 'kind', 'at', segmentation => s,
                                                       product => 'sku', lookback => '7 days', impulse_days => 2,
                                                       impulse_lines => 1, impulse_share => 0.5)
                    FROM unnest(ARRAY['incn', 'refn']) AS s$$,
                'the second pair with events with products too: Impulse Buyers');
SELECT lives_ok($$SELECT segment.enable_rule(r.name, r.segmentation, false) FROM segment.rule_predicates AS r
                   WHERE r.segmentation IN ('incn', 'refn') AND r.enabled AND r.predicate LIKE '%as_of%'$$,
                'two without the rules that read as_of');
SELECT is((SELECT count(*) FROM pg_trigger
            WHERE tgrelid IN ('tap_iprod.lines'::regclass, 'tap_iprod.orders'::regclass, 'tap_iprod.products'::regclass)
              AND tgname LIKE 'segment\_products%' AND tgenabled = 'A'),
          72::bigint, 'the lines, orders and products get four capture triggers each per segmentation, firing in replica sessions too');
SELECT ok(NOT has_function_privilege('public', 'segment.products_capture_inc()', 'EXECUTE'),
          'the capture function of the products source is not executable by PUBLIC');

\ir include/twins.sql

CREATE FUNCTION pg_temp.random_changes(round integer, as_of timestamptz) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    next_order integer := (SELECT last_value FROM tap_iprod.orders_order_id_seq);
BEGIN
    PERFORM pg_temp.order_rows((random() * 6)::int, as_of, interval '2 days');
    -- lines of orders to come (adopted later), of no order, odd quantities
    INSERT INTO tap_iprod.lines (order_id, customer_id, sku, qty)
    SELECT CASE WHEN random() < 0.2 THEN NULL ELSE next_order + 1 + (random() * 4)::int END,
           1 + (random() * 119)::int, 'sku' || (1 + (random() * 19)::int),
           (ARRAY[1, 2, -1, 0, NULL])[1 + (random() * 4)::int]
      FROM generate_series(1, (random() * 3)::int);
    -- views and cart adds of the last days, some moved or deleted
    INSERT INTO tap_iprod.events (customer_id, kind, at, sku)
    SELECT 1 + (random() * 119)::int, (ARRAY['product_view', 'cart_add', 'visit'])[1 + (random() * 2)::int],
           as_of - random() * interval '9 days', 'sku' || (1 + (random() * 19)::int)
      FROM generate_series(1, (random() * 30)::int);
    -- and views of what some customers then bought
    INSERT INTO tap_iprod.events (customer_id, kind, at, sku)
    SELECT o.customer_id, 'product_view', o.ordered_at - random() * interval '3 days', l.sku
      FROM tap_iprod.lines AS l JOIN tap_iprod.orders AS o ON o.order_id = l.order_id
     WHERE o.ordered_at > as_of - interval '3 days' AND l.sku IS NOT NULL AND random() < 0.3;
    UPDATE tap_iprod.events SET at = at - interval '1 day' WHERE random() < 0.02;
    DELETE FROM tap_iprod.events WHERE random() < 0.02;
    UPDATE tap_iprod.lines SET qty = coalesce(qty, 1) + 1 WHERE random() < 0.01;
    UPDATE tap_iprod.lines SET sku = 'sku' || (1 + (random() * 19)::int) WHERE random() < 0.01;
    UPDATE tap_iprod.lines SET order_id = (SELECT o.order_id FROM tap_iprod.orders AS o
                                            ORDER BY random() + lines.id * 0 LIMIT 1)
     WHERE random() < 0.005;
    UPDATE tap_iprod.lines SET customer_id = customer_id + 1 WHERE random() < 0.003;
    DELETE FROM tap_iprod.lines WHERE random() < 0.005;
    UPDATE tap_iprod.orders SET status = CASE status WHEN 'paid' THEN 'cancelled' ELSE 'paid' END WHERE random() < 0.005;
    UPDATE tap_iprod.orders SET ordered_at = ordered_at - interval '20 days' WHERE random() < 0.003;
    UPDATE tap_iprod.orders SET customer_id = 1 + (random() * 119)::int WHERE random() < 0.003;
    DELETE FROM tap_iprod.orders WHERE random() < 0.003;
    IF round = 12 THEN
        CREATE TEMP TABLE saved ON COMMIT DROP AS SELECT * FROM tap_iprod.lines;
        TRUNCATE tap_iprod.lines;
        INSERT INTO tap_iprod.lines SELECT * FROM saved WHERE random() < 0.97;
    ELSIF round = 20 THEN
        UPDATE tap_iprod.products SET category = 'sale' WHERE sku IN ('sku2', 'sku3');
    END IF;
END
$$;

CREATE TEMP TABLE rounds (round integer, as_of timestamptz, pair text, inc_mode text, inc_reason text,
                          rescored bigint, rescore_reason text,
                          same_profile boolean, same_changes boolean, same_counts boolean);
CREATE FUNCTION pg_temp.run_rounds(n integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    as_of timestamptz := timestamptz '2024-07-01 00:00+00';
    p     text;
BEGIN
    FOREACH p IN ARRAY ARRAY['', 'n', 'c'] LOOP
        PERFORM segment.refresh('inc' || p, as_of);
        PERFORM segment.refresh('ref' || p, as_of, mode => 'full');
    END LOOP;
    FOR i IN 1..n LOOP
        PERFORM pg_temp.random_changes(i, as_of);
        as_of := as_of + CASE WHEN i = 30 THEN interval '-2 days'
                              WHEN i % 5 = 0 THEN interval '0'
                              WHEN i % 4 = 0 THEN (1 + (random() * 4)::int) * interval '1 day'
                              WHEN i % 3 = 0 THEN random() * interval '20 hours'
                              ELSE random() * interval '30 minutes' END;
        FOREACH p IN ARRAY ARRAY['', 'n', 'c'] LOOP
            PERFORM pg_temp.refresh_twins(i, as_of, p);
        END LOOP;
    END LOOP;
END
$$;
-- (32 rounds of three pairs: one transaction keeps a lock on each dropped temporary table)
SELECT lives_ok($$SELECT pg_temp.run_rounds(32)$$, '32 rounds of random changes, each refreshed both ways');

SELECT is((SELECT count(*) FROM rounds WHERE same_profile), 96::bigint,
          'after every round the incremental profiles equal the full ones, every column');
SELECT is((SELECT array_agg(pair || ' ' || round ORDER BY pair, round) FROM rounds WHERE NOT same_profile), NULL,
          '(no round differs)');
SELECT is((SELECT count(*) FROM rounds WHERE same_changes), 96::bigint,
          'and every refresh recorded the same changes in the history');
SELECT is((SELECT array_agg(pair || ' ' || round ORDER BY pair, round) FROM rounds WHERE NOT same_counts), NULL,
          'and logged the same counts, cut points and source counts (lines read, skipped and why)');
SELECT results_eq($$SELECT * FROM segment.transitions(segmentation => 'incn') ORDER BY 1, 2$$,
                  $$SELECT * FROM segment.transitions(segmentation => 'refn') ORDER BY 1, 2$$,
                  'the transitions of the last two refreshes are the same');
SELECT cmp_ok((SELECT count(*) FROM rounds WHERE inc_mode = 'incremental'), '>=', 84::bigint,
              'refresh() chose incremental in all but the rounds that need a full one');
SELECT cmp_ok((SELECT count(*) FROM rounds WHERE pair = 'incn' AND inc_mode = 'incremental' AND rescore_reason IS NULL),
              '>=', 10::bigint, 'without the rules that read as_of, refreshes on the same day rescored only some customers');
SELECT ok((SELECT bool_and(rescored < (SELECT count(*) FROM segment.profile_refn))
             FROM rounds WHERE pair = 'incn' AND inc_mode = 'incremental' AND rescore_reason IS NULL),
          '(fewer than all of them)');
SELECT cmp_ok((SELECT count(*) FROM rounds WHERE pair = 'inc' AND inc_mode = 'incremental' AND rescore_reason IS NULL),
              '>=', 5::bigint, 'with every built-in rule too: Due to Re-stock reads only the as-of day');
SELECT is((SELECT array_agg(DISTINCT rescore_reason) FROM rounds
            WHERE pair = 'inc' AND inc_mode = 'incremental' AND rescore_reason IS NOT NULL),
          '{"the configuration, the rules, the time zone or the as-of day changed since the last refresh"}',
          '(every customer is rescored when the day changes)');
SELECT cmp_ok((SELECT count(*) FROM segment.refreshes AS ref
                WHERE ref.segmentation = 'refn'
                  AND (ref.sources->'products'->'details'->>'no_order')::bigint > 0
                  AND (ref.sources->'products'->'details'->>'excluded_order')::bigint > 0
                  AND (ref.sources->'products'->'details'->>'bad_quantity')::bigint > 0
                  AND (ref.sources->'products'->'details'->>'missing_product')::bigint > 0),
              '>=', 28::bigint, 'every kind of skipped line was there to count, in almost every round');
SELECT is((SELECT array_agg(DISTINCT inc_reason) FROM rounds WHERE round = 12), '{"the order lines or the orders were truncated"}',
          'a TRUNCATE of the lines: a full refresh, and why');
SELECT is((SELECT array_agg(DISTINCT inc_reason) FROM rounds WHERE round = 20),
          '{"the products relation changed (launch dates and categories count for every line of the product)"}',
          'a change of the products: a full refresh, and why');
SELECT is((SELECT array_agg(DISTINCT inc_reason) FROM rounds WHERE round = 30), '{"as_of is earlier than the last refresh''s"}',
          'as_of moved back: a full refresh');
SELECT is((SELECT array_agg(DISTINCT inc_mode) FROM rounds WHERE round IN (13, 21)), '{incremental}',
          'the refresh after a full one is incremental again');
SELECT ok((SELECT count(*) FROM segment.profile_refn WHERE unbrowsed_lines > 0) > 5
          AND (SELECT count(*) FROM segment.profile_refn WHERE unbrowsed_share < 1) > 2
          AND (SELECT count(*) FROM segment.impulse_stage_incn) > 5,
          'Impulse Buyers'' figures are there to compare: unbrowsed lines, browsed ones, a stage');
SELECT ok((SELECT count(*) FROM segment.products_stage_inc WHERE customer_id IS NOT NULL) > 100
          AND (SELECT count(*) FROM segment.products_stage_inc WHERE customer_id IS NULL) > 0
          AND (SELECT count(*) FROM segment.products_changes_inc) = 0,
          'the stage holds every customer''s figures and those of the lines without a customer; the log is consumed');

-- What falls back to a full refresh.
SELECT lives_ok($$SELECT segment.configure_product_source('tap_iprod.lines', 'order_id', 'sku', segmentation => 'inc',
                                                         quantity => 'qty', products => 'tap_iprod.products',
                                                         product_key => 'sku', orders_key => 'order_id')$$,
                'the products source configured again, without launch dates');
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-01')),
          'a source was added, or its relation, columns, lookback, kinds or negative rule changed',
          'a changed source: a full refresh, and why');
SELECT is((SELECT mode FROM segment.refresh('inc', '2024-09-02')), 'incremental', 'then incremental again');
ALTER TABLE tap_iprod.orders DISABLE TRIGGER segment_products_orders_delete_inc;
SELECT is((SELECT full_reason FROM segment.refresh('inc', '2024-09-03')),
          'the delete capture trigger of the products source on tap_iprod.orders is missing or disabled (run segment.configure_product_source() again)',
          'a disabled capture trigger: a full refresh, and why');
ALTER TABLE tap_iprod.orders ENABLE ALWAYS TRIGGER segment_products_orders_delete_inc;
-- A product column compared as numbers: products told apart by more than
-- their text take a pass of their own, every refresh full.
CREATE TABLE tap_iprod.num_lines (order_id integer, sku numeric);
INSERT INTO tap_iprod.num_lines SELECT order_id, order_id % 5 FROM tap_iprod.orders;
SELECT lives_ok($$SELECT segment.configure_product_source('tap_iprod.num_lines', 'order_id', 'sku', segmentation => 'incc',
                                                         orders_key => 'order_id')$$,
                'lines whose product column is numeric');
SELECT is((SELECT full_reason FROM segment.refresh('incc', '2024-09-04')),
          'the product column sku of the order lines is not told apart by its text (order lines are then grouped by product in a pass of their own)',
          'a product column not told apart by its text: a full refresh, and why');
-- Another owner: set_owner() hands over the products' log, stage and
-- capture function too, and refreshes go on incrementally as that role.
CREATE ROLE tap_iprod_owner;
GRANT USAGE ON SCHEMA segment, tap_iprod TO tap_iprod_owner;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA segment TO tap_iprod_owner;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA segment TO tap_iprod_owner;
GRANT SELECT ON ALL TABLES IN SCHEMA tap_iprod TO tap_iprod_owner;
SELECT lives_ok($$SELECT segment.set_owner('tap_iprod_owner', 'incn')$$, 'another owner');
SELECT is((SELECT array_agg(DISTINCT pg_get_userbyid(relowner)::text) FROM pg_class
            WHERE oid IN ('segment.products_stage_incn'::regclass, 'segment.products_changes_incn'::regclass)),
          '{tap_iprod_owner}', 'set_owner() hands over the products'' log and stage');
SELECT is((SELECT pg_get_userbyid(proowner)::text FROM pg_proc WHERE oid = 'segment.products_capture_incn()'::regprocedure),
          'tap_iprod_owner', 'and its capture function');
SELECT pg_temp.order_rows(5, '2024-09-01', interval '1 day');
SELECT is((SELECT coalesce(full_reason, mode) FROM segment.refresh('incn', '2024-09-01')), 'incremental',
          'the next refresh is incremental, the new lines logged by the capture function as the new owner');
SELECT is((SELECT count(*) FROM segment.products_changes_incn), 0::bigint, '(and consumed)');
SELECT lives_ok($$SELECT segment.drop_segmentation('incn')$$, 'a segmentation dropped');
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = 'segment'::regnamespace AND relname LIKE 'products\_%\_incn'),
          0::bigint, 'with its products'' log and stage');
SELECT lives_ok($$SELECT segment.drop_source('products', 'inc')$$, 'the products source dropped');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname ~ '^segment_products_[a-z_]+_inc$'),
          0::bigint, 'drop_source() drops its capture triggers');
SELECT ok(to_regclass('segment.products_stage_inc') IS NULL AND to_regclass('segment.products_changes_inc') IS NULL
          AND to_regprocedure('segment.products_capture_inc()') IS NULL, 'and its log, stage and capture function');
SELECT * FROM finish();
ROLLBACK;
