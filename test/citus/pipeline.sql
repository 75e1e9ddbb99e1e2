-- A segmentation over orders distributed with Citus, the customers on the
-- coordinator: configure, refresh (with clusters and lifetime value) and the
-- profile, compared row for row with the same segmentation over the same
-- rows in ordinary tables.  The cases the issue tracker names as broken on
-- Citus (issue 13) are TODO tests: they show in the output, and pass
-- ("TODO passed") once fixed.
SET timezone = 'UTC';
SET client_min_messages = error;   -- Citus: temporary functions stay local
SELECT plan(11);

-- The result of a query, or the error it raised (TODO tests must not abort).
CREATE FUNCTION pg_temp.result_or_error(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE query INTO result;
    RETURN result;
EXCEPTION WHEN OTHERS THEN
    RETURN 'ERROR: ' || SQLERRM;
END
$$;

SELECT lives_ok($$
    SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount',
                             segmentation => 'citus', discount => 'discount',
                             status => 'status', exclude_status => '{cancelled}',
                             customers => 'customers_local', customers_key => 'customer_id',
                             clusters => 3, clv => true, clv_penalizer => 0.001)$$,
    'configure() accepts orders distributed with Citus');
SELECT lives_ok($$
    SELECT segment.configure('orders_local', 'customer_id', 'ordered_at', 'amount',
                             segmentation => 'single', discount => 'discount',
                             status => 'status', exclude_status => '{cancelled}',
                             customers => 'customers_local', customers_key => 'customer_id',
                             clusters => 3, clv => true, clv_penalizer => 0.001)$$,
    'the same segmentation of the same rows in ordinary tables');

SELECT lives_ok($$SELECT segment.refresh('citus', '2024-12-31 23:59:59+00')$$,
                'refresh() over the distributed orders');
SELECT lives_ok($$SELECT segment.refresh('single', '2024-12-31 23:59:59+00')$$,
                'refresh() of the single-server segmentation');

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
SELECT results_eq($$SELECT * FROM pg_temp.profile_rows('citus')$$,
                  $$SELECT * FROM pg_temp.profile_rows('single')$$,
                  'the profile over Citus equals the single-server profile, lifetime value and clusters included');
SELECT is((SELECT count(*) FROM customers_local AS c
            WHERE segment_of(c.customer_id, 'citus') IS DISTINCT FROM segment_of(c.customer_id, 'single')),
          0::bigint, 'segment_of() over a coordinator table answers from the Citus segmentation as from the other');

-- Until segment_of() works on the workers: the join with the profile, which
-- Citus plans by reading the coordinator's profile into the shards' queries.
SELECT results_eq(
    $$SELECT c.customer_id FROM customers AS c JOIN segment.profile_citus AS p USING (customer_id)
       WHERE p.segment = 'Lapsing' ORDER BY 1$$,
    $$SELECT c.customer_id FROM customers_local AS c WHERE segment_of(c.customer_id, 'single') = 'Lapsing'
       ORDER BY 1$$,
    'distributed customers joined with the profile give the customers segment_of() gives on one server');

-- Known failures on Citus (issue 13).
SELECT todo('issue 13: Citus ships segment_of() to the workers, which have no configuration or profile', 2);
SELECT is(pg_temp.result_or_error(
              $$SELECT count(*) FROM customers WHERE segment_of(customer_id, 'citus') = 'Lapsing'$$),
          (SELECT count(*)::text FROM customers_local WHERE segment_of(customer_id, 'single') = 'Lapsing'),
          'segment_of() in a filter over distributed customers');
SELECT is(pg_temp.result_or_error($$SELECT segment_of(customer_id, 'citus') FROM customers WHERE customer_id = 7$$),
          segment_of(7::bigint, 'single'),
          'segment_of() in a router query on distributed customers');
-- Customers distributed too (colocated with the orders): the prospects, who
-- never ordered, come from the distributed customers.
SELECT lives_ok($$
    SELECT segment.configure('orders', 'customer_id', 'ordered_at', 'amount',
                             segmentation => 'citus_customers', discount => 'discount',
                             status => 'status', exclude_status => '{cancelled}',
                             customers => 'customers', customers_key => 'customer_id',
                             clusters => 3, clv => true, clv_penalizer => 0.001);
    SELECT segment.refresh('citus_customers', '2024-12-31 23:59:59+00')$$,
    'refresh() with distributed customers');
SELECT results_eq($$SELECT * FROM pg_temp.profile_rows('citus_customers')$$,
                  $$SELECT * FROM pg_temp.profile_rows('single')$$,
                  'its profile equals the single-server profile, prospects included');

SELECT * FROM finish();
SELECT segment.drop_segmentation(name) FROM segment.segmentations
 WHERE name IN ('citus', 'single', 'citus_customers');
