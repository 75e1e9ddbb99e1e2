-- The pipeline on Citus: configure, distribute and refresh over distributed
-- orders (customers on the coordinator, then distributed too), with clusters
-- and lifetime value; history and transitions through changes to the orders;
-- a coordinator session in another time zone than the workers; errors that
-- name what failed.  Every result is compared row for row with the same
-- segmentation over the same rows in ordinary tables.  It changes orders,
-- so it works on copies of test/citus/setup.psql's: p_orders, distributed
-- like orders, and p_orders_local.
SET timezone = 'UTC';
SET client_min_messages = error;   -- Citus: temporary functions stay local
SELECT plan(25);

-- Every column a refresh computes but the clock.
CREATE FUNCTION pg_temp.profile_rows(segmentation text) RETURNS TABLE (
    customer_id bigint, recency_days integer, frequency bigint, monetary numeric,
    discount_share double precision, r integer, f integer, m integer, rfm_segment text,
    flags text[], segment text, p_alive numeric, clv numeric, cluster integer)
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT customer_id, recency_days, frequency, monetary, discount_share, r, f, m,
                rfm_segment, flags, segment, round(p_alive::numeric, 9), round(clv::numeric, 4),
                cluster
           FROM segment.%I ORDER BY customer_id', 'profile_' || segmentation);
END
$$;

-- The changes a segmentation's history records, refresh by refresh (the
-- refreshes that changed a segment numbered from 1).
CREATE FUNCTION pg_temp.history_rows(segmentation text) RETURNS TABLE (
    nth bigint, customer_id text, from_segment text, to_segment text)
    LANGUAGE sql AS $$
    SELECT dense_rank() OVER (ORDER BY h.refresh_id), h.customer_id, h.from_segment, h.to_segment
      FROM segment.history AS h
     WHERE h.segmentation = history_rows.segmentation
     ORDER BY 1, 2
$$;

-- The segmentation every test here configures, over given orders and customers.
CREATE FUNCTION pg_temp.configure(name text, orders text, customers text) RETURNS void
    LANGUAGE sql AS $$
    SELECT FROM segment.configure(orders::regclass, 'customer_id', 'ordered_at', 'amount',
                                  segmentation => name, discount => 'discount',
                                  status => 'status', exclude_status => '{cancelled}',
                                  customers => customers::regclass, customers_key => 'customer_id',
                                  clusters => 3, clv => true, clv_penalizer => 0.001)
$$;

SELECT lives_ok($$
    CREATE TABLE p_orders (LIKE orders_local);
    SELECT create_distributed_table('p_orders', 'customer_id', colocate_with => 'customers');
    INSERT INTO p_orders SELECT * FROM orders_local;
    CREATE TABLE p_orders_local AS SELECT * FROM orders_local$$,
    'copies of the orders, one distributed');

SELECT lives_ok($$
    SELECT pg_temp.configure('citus', 'p_orders', 'customers_local')$$,
    'configure() accepts orders distributed with Citus');
SELECT lives_ok($$
    SELECT pg_temp.configure('single', 'p_orders_local', 'customers_local')$$,
    'the same segmentation of the same rows in ordinary tables');
SELECT is(segment.distribute('citus'),
          'profile segment.profile_citus distributed by customer_id, colocated with public.p_orders',
          'distribute() colocates the profile with the distributed orders when the customers are local');
SELECT is((SELECT partmethod::text FROM pg_dist_partition WHERE logicalrelid = 'segment.profile_citus'::regclass),
          'h', 'the profile is distributed by hash');
SELECT is((SELECT p.colocationid FROM pg_dist_partition AS p WHERE p.logicalrelid = 'segment.profile_citus'::regclass),
          (SELECT p.colocationid FROM pg_dist_partition AS p WHERE p.logicalrelid = 'p_orders'::regclass),
          'colocated with the orders');
SELECT is(segment.distribute('citus'), 'profile segment.profile_citus was already a Citus table',
          'distribute() again changes nothing');

SELECT lives_ok($$SELECT segment.refresh('citus', '2024-12-31 23:59:59+00')$$,
                'refresh() over the distributed orders into the distributed profile');
SELECT lives_ok($$SELECT segment.refresh('single', '2024-12-31 23:59:59+00')$$,
                'refresh() of the single-server segmentation');
SELECT results_eq($$SELECT * FROM pg_temp.profile_rows('citus')$$,
                  $$SELECT * FROM pg_temp.profile_rows('single')$$,
                  'the profile over Citus equals the single-server profile, lifetime value and clusters included');

-- The same refresh again: only rows whose values changed are written (here
-- the clusters, refitted from the previous centroids, move slightly), the
-- same rows on both sides.
SELECT is((SELECT written FROM segment.refresh('citus', '2024-12-31 23:59:59+00')),
          (SELECT written FROM segment.refresh('single', '2024-12-31 23:59:59+00')),
          'the same refresh again writes the same rows of the distributed profile as on one server');

-- Changes to the orders, the same on both sides: new orders, a cancellation,
-- a customer's orders deleted; then a refresh from another time zone than
-- the workers' (purchase days must not depend on which node counts them).
CREATE TEMP TABLE changes AS
SELECT c::bigint AS customer_id, timestamptz '2024-12-20 23:30+00' + (c % 7) * interval '1 hour' AS ordered_at,
       (c % 300 + 10)::numeric(12,2) AS amount
  FROM generate_series(1, 3000, 37) AS c;
INSERT INTO p_orders (customer_id, ordered_at, amount, status, order_id)
SELECT customer_id, ordered_at, amount, 'paid', 1000000 + customer_id FROM changes;
INSERT INTO p_orders_local (customer_id, ordered_at, amount, status, order_id)
SELECT customer_id, ordered_at, amount, 'paid', 1000000 + customer_id FROM changes;
UPDATE p_orders SET status = 'cancelled' WHERE customer_id BETWEEN 100 AND 140;
UPDATE p_orders_local SET status = 'cancelled' WHERE customer_id BETWEEN 100 AND 140;
DELETE FROM p_orders WHERE customer_id BETWEEN 200 AND 220;
DELETE FROM p_orders_local WHERE customer_id BETWEEN 200 AND 220;
SET timezone = 'Pacific/Kiritimati';
SELECT lives_ok($$SELECT segment.refresh('citus', '2024-12-31 23:59:59+00');
                  SELECT segment.refresh('single', '2024-12-31 23:59:59+00')$$,
                'a second refresh of both, from a session in UTC+14 (the workers run in UTC)');
SELECT results_eq($$SELECT * FROM pg_temp.profile_rows('citus')$$,
                  $$SELECT * FROM pg_temp.profile_rows('single')$$,
                  'the profiles are equal again: purchase days counted in the coordinator session''s zone');
SELECT isnt((SELECT count(*) FROM segment.profile_citus AS p
               JOIN (SELECT o.customer_id,
                            date '2024-12-31' - max((o.ordered_at AT TIME ZONE 'UTC')::date) AS days
                       FROM p_orders_local AS o WHERE o.status IS DISTINCT FROM 'cancelled'
                      GROUP BY 1) AS u USING (customer_id)
              WHERE p.recency_days <> u.days),
            0::bigint, '(and those days are not the workers'' UTC days)');
SELECT results_eq($$SELECT * FROM pg_temp.history_rows('citus')$$,
                  $$SELECT * FROM pg_temp.history_rows('single')$$,
                  'the history of the two refreshes is the same');
SELECT results_eq($$SELECT * FROM segment.transitions(segmentation => 'citus') ORDER BY 1, 2$$,
                  $$SELECT * FROM segment.transitions(segmentation => 'single') ORDER BY 1, 2$$,
                  'and so are the transitions between them');
SELECT is((SELECT changed FROM segment.refreshes WHERE segmentation = 'citus' ORDER BY id DESC LIMIT 1),
          (SELECT changed FROM segment.refreshes WHERE segmentation = 'single' ORDER BY id DESC LIMIT 1),
          'the refresh log counts the same changes');

-- Customers distributed too (colocated with the orders): the prospects, who
-- never ordered, come from the distributed customers, and a rule reads them.
SELECT lives_ok($$
    SELECT pg_temp.configure('citus_customers', 'p_orders', 'customers');
    SELECT segment.add_rule('Dutch Regulars', $r$customer.country = 'NL' AND frequency > 3$r$, 1,
                            segmentation => 'citus_customers');
    SELECT segment.distribute('citus_customers');
    SELECT segment.refresh('citus_customers', '2024-12-31 23:59:59+00')$$,
    'configure, add a rule over the customers, distribute and refresh with distributed customers');
SELECT lives_ok($$
    SELECT pg_temp.configure('single_customers', 'p_orders_local', 'customers_local');
    SELECT segment.add_rule('Dutch Regulars', $r$customer.country = 'NL' AND frequency > 3$r$, 1,
                            segmentation => 'single_customers');
    SELECT segment.refresh('single_customers', '2024-12-31 23:59:59+00')$$,
    'the same on one server');
SELECT is((SELECT p.colocationid FROM pg_dist_partition AS p WHERE p.logicalrelid = 'segment.profile_citus_customers'::regclass),
          (SELECT p.colocationid FROM pg_dist_partition AS p WHERE p.logicalrelid = 'customers'::regclass),
          'its profile is colocated with the customers');
SELECT results_eq($$SELECT * FROM pg_temp.profile_rows('citus_customers')$$,
                  $$SELECT * FROM pg_temp.profile_rows('single_customers')$$,
                  'its profile equals the single-server profile, prospects and the rule included');
SELECT cmp_ok((SELECT count(*) FROM segment.profile_citus_customers WHERE segment = 'Dutch Regulars'),
              '>', 0::bigint, '(the rule over the customers'' columns picks some)');
RESET timezone;

-- A refresh error names what failed: a rule, with its own message.
SELECT segment.add_rule('Broken', 'frequency / (recency_days - recency_days) > 0', 99,
                        segmentation => 'citus_customers');
SELECT alike(citus_test.result_or_error($$SELECT segment.refresh('citus_customers')$$),
            'ERROR: rule "Broken" of segmentation "citus_customers" failed: division by zero%',
            'a failing rule is named, with its error');
SELECT segment.drop_rule('Broken', 'citus_customers');

-- Errors of distribute().
SELECT throws_ok($$SELECT segment.distribute('citus', colocate_with => 'customers_local')$$, '22023',
                 'relation "public.customers_local" is not distributed by hash with Citus',
                 'distribute() refuses to colocate with a table that is not distributed');
SELECT throws_ok($$SELECT segment.distribute('nonesuch')$$, '42704', NULL,
                 'distribute() of an unknown segmentation');

SELECT * FROM finish();
SELECT segment.drop_segmentation(name) FROM segment.segmentations
 WHERE name IN ('citus', 'single', 'citus_customers', 'single_customers');
DROP TABLE p_orders, p_orders_local;
