-- segment_of() and profile_of() on Citus: in every query shape over
-- distributed tables (Citus runs the calls on the workers, against the local
-- shards of the distributed profile) the answers of one server.  'citus' is
-- the segmentation over the distributed orders, its profile distributed by
-- segment.distribute() and the default; 'single' the same rows in ordinary
-- tables (test/citus/setup.psql).
SET timezone = 'UTC';
SET client_min_messages = error;   -- Citus: temporary functions stay local
SELECT plan(33);

SELECT lives_ok($$
    SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount',
                             segmentation => 'citus', discount => 'discount', is_default => true,
                             status => 'status', exclude_status => '{cancelled}',
                             customers => 'customers', customers_key => 'customer_id');
    SELECT segment.distribute('citus');
    SELECT segment.refresh('citus', '2024-12-31 23:59:59+00');
    SELECT segment.configure('orders_local', 'customer_id', 'ordered_at', 'amount',
                             segmentation => 'single', discount => 'discount', is_default => false,
                             status => 'status', exclude_status => '{cancelled}',
                             customers => 'customers_local', customers_key => 'customer_id');
    SELECT segment.refresh('single', '2024-12-31 23:59:59+00')$$,
    'a distributed segmentation (the default) and its single-server twin');
SELECT is((SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'segment.segmentation_directory'::regclass),
          1::bigint, 'the directory of distributed segmentations is a reference table');
SELECT results_eq($$SELECT * FROM run_command_on_workers(
                        $c$SELECT string_agg(name || ':' || is_default, ',') FROM segment.segmentation_directory$c$)$$,
                  $$SELECT nodename, nodeport, true, 'citus:true' FROM pg_dist_node
                     WHERE noderole = 'primary' AND groupid <> 0 ORDER BY nodeid$$,
                  'every worker knows the segmentation and that it is the default');

-- The single server's answers, computed on the coordinator: a query that
-- touches a distributed table runs whole on a worker (router query) or in
-- parts on every worker, and the workers know only distributed segmentations.
CREATE TEMP TABLE expected AS
SELECT customer_id, segment_of(customer_id, 'single') AS segment,
       (profile_of(customer_id, 'single')).monetary
  FROM customers_local;

-- The failures issue 13 reported: a filter and a router query over
-- distributed customers.
SELECT is((SELECT count(*) FROM customers WHERE segment_of(customer_id, 'citus') = 'Lapsing'),
          (SELECT count(*) FROM expected WHERE segment = 'Lapsing'),
          'segment_of() in a filter over distributed customers');
SELECT cmp_ok((SELECT count(*) FROM expected WHERE segment = 'Lapsing'), '>', 0::bigint,
              '(some customers are lapsing)');
SELECT results_eq($$SELECT segment_of(customer_id, 'citus') FROM customers WHERE customer_id = 7$$,
                  $$SELECT segment FROM expected WHERE customer_id = 7$$,
                  'segment_of() in a router query on distributed customers');
SELECT results_eq($$SELECT (profile_of(customer_id)).monetary FROM customers WHERE customer_id = 42$$,
                  $$SELECT monetary FROM expected WHERE customer_id = 42$$,
                  'profile_of() in a router query');

-- Every customer, every shape: compared with one server row for row.
SELECT results_eq($$SELECT customer_id, segment_of(customer_id) FROM customers ORDER BY 1$$,
                  $$SELECT customer_id, segment FROM expected ORDER BY 1$$,
                  'the select list over distributed customers, default segmentation');
SELECT results_eq($$SELECT segment_of(customer_id), count(*) FROM customers GROUP BY 1 ORDER BY 1$$,
                  $$SELECT segment, count(*) FROM expected GROUP BY 1 ORDER BY 1$$,
                  'GROUP BY segment_of() over distributed customers');
SELECT results_eq($$SELECT c.customer_id, count(*) FROM customers AS c JOIN orders AS o USING (customer_id)
                     WHERE segment_of(c.customer_id) IN ('Champions', 'Loyal Customers') GROUP BY 1 ORDER BY 1$$,
                  $$SELECT c.customer_id, count(*) FROM customers_local AS c JOIN orders_local AS o USING (customer_id)
                     WHERE segment_of(c.customer_id, 'single') IN ('Champions', 'Loyal Customers') GROUP BY 1 ORDER BY 1$$,
                  'a join of colocated distributed tables filtered by segment_of()');
SELECT results_eq($$SELECT customer_id FROM customers
                     WHERE customer_id IN (SELECT o.customer_id FROM orders AS o
                                            WHERE segment_of(o.customer_id) = 'At Risk') ORDER BY 1$$,
                  $$SELECT customer_id FROM expected WHERE segment = 'At Risk' ORDER BY 1$$,
                  'a subquery over the distributed orders');
SELECT results_eq($$WITH s AS (SELECT customer_id, segment_of(customer_id) AS segment FROM customers)
                    SELECT segment, count(*) FROM s WHERE segment IS NOT NULL GROUP BY 1 ORDER BY 1$$,
                  $$SELECT segment, count(*) FROM expected WHERE segment IS NOT NULL GROUP BY 1 ORDER BY 1$$,
                  'a CTE');
SELECT results_eq($$SELECT c.country, count(*) FILTER (WHERE segment_of(c.customer_id) = 'Champions')
                      FROM customers AS c GROUP BY 1 ORDER BY 1$$,
                  $$SELECT c.country, count(*) FILTER (WHERE e.segment = 'Champions')
                      FROM customers_local AS c JOIN expected AS e USING (customer_id) GROUP BY 1 ORDER BY 1$$,
                  'an aggregate filter grouped by another column (pushed down partially)');
SELECT results_eq($$SELECT customer_id, (profile_of(customer_id)).monetary FROM customers
                     WHERE customer_id % 97 = 0 ORDER BY 1$$,
                  $$SELECT customer_id, monetary FROM expected WHERE customer_id % 97 = 0 ORDER BY 1$$,
                  'profile_of() over distributed customers');

-- INSERT ... SELECT into a colocated table (pushed down) and into a table
-- distributed by another column (repartitioned); a materialized view.
CREATE TABLE campaign (customer_id bigint, segment text);
SELECT create_distributed_table('campaign', 'customer_id', colocate_with => 'customers') IS NOT NULL AS distributed;
CREATE TABLE by_segment (segment text, customer_id bigint);
SELECT create_distributed_table('by_segment', 'segment') IS NOT NULL AS distributed;
INSERT INTO campaign SELECT customer_id, segment_of(customer_id) FROM customers;
INSERT INTO by_segment SELECT segment_of(customer_id), customer_id FROM customers;
SELECT results_eq($$SELECT customer_id, segment FROM campaign ORDER BY 1$$,
                  $$SELECT customer_id, segment FROM expected ORDER BY 1$$,
                  'INSERT ... SELECT segment_of() into a colocated table');
SELECT results_eq($$SELECT customer_id, segment FROM by_segment ORDER BY 1$$,
                  $$SELECT customer_id, segment FROM expected ORDER BY 1$$,
                  'INSERT ... SELECT into a table distributed by the segment, across shards');
CREATE MATERIALIZED VIEW lapsing AS
SELECT customer_id, email FROM customers WHERE segment_of(customer_id) = 'Lapsing';
SELECT results_eq($$SELECT customer_id FROM lapsing ORDER BY 1$$,
                  $$SELECT customer_id FROM expected WHERE segment = 'Lapsing' ORDER BY 1$$,
                  'a materialized view of a campaign over distributed customers');

-- On the coordinator: a coordinator table, a plain call (the shards are on
-- the workers: asked through Citus).
SELECT results_eq($$SELECT customer_id, segment_of(customer_id, 'citus') FROM customers_local ORDER BY 1$$,
                  $$SELECT customer_id, segment FROM expected ORDER BY 1$$,
                  'segment_of() over a coordinator table reads the distributed profile');
SELECT is(segment_of(7::bigint), (SELECT segment FROM expected WHERE customer_id = 7),
          'a plain call on the coordinator');
SELECT is(segment_of(999999::bigint), NULL, 'an unknown customer has no segment');

SELECT is((SELECT written FROM segment.refresh('citus', '2024-12-31 23:59:59+00')), 0::bigint,
          'the same refresh again writes no row of the distributed profile');

-- A refresh changes the answers at once, on every node.
UPDATE segment.rules SET enabled = false WHERE segmentation = 'citus' AND name = 'Lapsing';
UPDATE segment.rules SET enabled = false WHERE segmentation = 'single' AND name = 'Lapsing';
SELECT segment.refresh('citus', '2024-12-31 23:59:59+00') IS NOT NULL AS refreshed;
SELECT segment.refresh('single', '2024-12-31 23:59:59+00') IS NOT NULL AS refreshed;
SELECT is((SELECT count(*) FROM customers WHERE segment_of(customer_id) = 'Lapsing'), 0::bigint,
          'after a refresh without the Lapsing rule, no customer is lapsing on the workers');
CREATE TEMP TABLE expected_after AS
SELECT customer_id, segment_of(customer_id, 'single') AS segment FROM customers_local;
SELECT results_eq($$SELECT customer_id, segment_of(customer_id) FROM customers ORDER BY 1$$,
                  $$SELECT customer_id, segment FROM expected_after ORDER BY 1$$,
                  'and every answer is the single server''s again');

-- Privileges hold on the workers: a role that may read the profile, one
-- that may not.
CREATE ROLE citus_analyst LOGIN;   -- Citus connects to the workers as the user
CREATE ROLE citus_outsider LOGIN;
GRANT USAGE ON SCHEMA segment TO citus_analyst, citus_outsider;
GRANT SELECT ON customers TO citus_analyst, citus_outsider;
GRANT SELECT ON segment.profile_citus TO citus_analyst;
SELECT count(*) AS champions FROM expected_after WHERE segment = 'Champions' \gset
SET ROLE citus_analyst;
SELECT is((SELECT count(*) FROM customers WHERE segment_of(customer_id) = 'Champions'),
          :champions::bigint,
          'a role granted SELECT on the profile looks customers up on the workers');
SET ROLE citus_outsider;
SELECT is(citus_test.result_or_error($$SELECT count(*) FROM customers WHERE segment_of(customer_id) = 'Champions'$$),
          'ERROR: no default segmentation that you may read',
          'a role without it is refused on the workers too');
RESET ROLE;

-- A segmentation the workers do not know: said so, with what to do.
SELECT is(citus_test.result_or_error($$SELECT count(*) FROM customers WHERE segment_of(customer_id, 'single') = 'x'$$),
          'ERROR: segmentation "single" is not known on this Citus node',
          'a segmentation that was not distributed, used over distributed customers');
-- Configuring it again (same key type) keeps its profile, so its
-- distribution.
SELECT lives_ok($$SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount',
                                           segmentation => 'citus', customers => 'customers',
                                           customers_key => 'customer_id', is_default => true)$$,
                'configure() again keeps the distributed profile');
SELECT ok(segment_internal.is_citus_table('segment.profile_citus'), '(it is still distributed)');

-- A segmentation over coordinator tables, distributed as a reference table:
-- every node holds the whole profile.
SELECT is(segment.distribute('single'),
          'profile segment.profile_single replicated to every node (neither the customers nor the orders are distributed by hash)',
          'distribute() replicates a profile that has nothing to be colocated with');
SELECT results_eq($$SELECT customer_id, segment_of(customer_id, 'single') FROM customers ORDER BY 1$$,
                  $$SELECT customer_id, segment FROM expected_after ORDER BY 1$$,
                  'segment_of() over distributed customers reads the replicated profile on the workers');
SELECT lives_ok($$SELECT segment.refresh('single', '2025-06-30 23:59:59+00')$$,
                'refresh() into the replicated profile');
SELECT results_eq($$SELECT customer_id, segment_of(customer_id, 'single') FROM customers ORDER BY 1$$,
                  $$SELECT customer_id, segment FROM segment.profile_single ORDER BY 1$$,
                  'the workers answer from the refreshed copy');
SELECT isnt((SELECT count(*) FROM customers_local WHERE segment_of(customer_id, 'single') = 'Lost'), 0::bigint,
            '(half a year later some customers are lost)');

SELECT * FROM finish();
DROP MATERIALIZED VIEW lapsing;
DROP TABLE campaign, by_segment;
SELECT segment.drop_segmentation(name) FROM segment.segmentations WHERE name IN ('citus', 'single');
DROP OWNED BY citus_analyst, citus_outsider;
DROP ROLE citus_analyst, citus_outsider;
