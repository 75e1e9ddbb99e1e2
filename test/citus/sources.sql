-- The three sources on Citus: events, support contacts and order lines
-- distributed by customer, colocated with the customers and orders, the
-- products a reference table (test/citus/setup.psql).  The profile's source
-- columns, flags and segments, and what each refresh read from each source,
-- compared row for row with the same segmentation over ordinary tables.
SET timezone = 'UTC';
SET client_min_messages = error;
SELECT plan(8);

CREATE FUNCTION pg_temp.source_rows(segmentation text) RETURNS TABLE (
    customer_id bigint, visits bigint, product_views bigint, cart_adds bigint, newsletter_opens bigint,
    last_visit timestamptz, days_since_visit integer, abandoned_at timestamptz, abandoned_products text[],
    subscribed boolean, support_contacts bigint, negative_contacts bigint, last_negative_contact timestamptz,
    trend_share double precision, trend_lines bigint, top_category text, next_restock date,
    restock_product text, flags text[], segment text)
    LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT customer_id, visits::bigint, product_views::bigint, cart_adds::bigint, newsletter_opens::bigint,
                last_visit, days_since_visit, abandoned_at, abandoned_products, subscribed,
                support_contacts::bigint, negative_contacts::bigint, last_negative_contact, trend_share,
                trend_lines::bigint, top_category, next_restock, restock_product, flags, segment
           FROM segment.%I ORDER BY customer_id', 'profile_' || segmentation);
END
$$;

-- s: the orders and the sources' relations; t: citus or local.
CREATE FUNCTION pg_temp.configure(name text, suffix text, customers text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM segment.configure('orders' || suffix, 'customer_id', 'ordered_at', 'amount',
                              segmentation => name, discount => 'discount', is_default => false,
                              status => 'status', exclude_status => '{cancelled}',
                              customers => customers, customers_key => 'customer_id');
    PERFORM segment.configure_event_source('events' || suffix, 'customer_id', 'event_type', 'occurred_at',
                                     product => 'product', segmentation => name);
    PERFORM segment.configure_contact_source('contacts' || suffix, 'customer_id', 'opened_at',
                                       negative => 'rating', negative_below => 3, segmentation => name);
    PERFORM segment.configure_product_source('lines' || suffix, 'order_id', 'product', quantity => 'quantity',
                                       products => 'products' || suffix, launched_at => 'launched_at',
                                       category => 'category', segmentation => name,
                                       line_customer => 'customer_id');
END
$$;

-- distribute() in a transaction of its own: Citus refuses in the same
-- transaction a query that reads shards it has just written in parallel.
SELECT lives_ok($$SELECT pg_temp.configure('citus_src', '', 'customers');
                  SELECT segment.distribute('citus_src')$$,
                'configure and distribute with events, contacts and order lines distributed');
SELECT lives_ok($$SELECT segment.refresh('citus_src', '2024-12-31 23:59:59+00')$$,
                'refresh: the sources are read on the shards');
SELECT lives_ok($$SELECT pg_temp.configure('single_src', '_local', 'customers_local');
                  SELECT segment.refresh('single_src', '2024-12-31 23:59:59+00')$$,
                'the same over ordinary tables');
SELECT results_eq($$SELECT * FROM pg_temp.source_rows('citus_src')$$,
                  $$SELECT * FROM pg_temp.source_rows('single_src')$$,
                  'the source columns, flags and segments are the single server''s');
SELECT cmp_ok((SELECT count(*) FROM segment.profile_citus_src
                WHERE visits > 0 AND support_contacts > 0 AND trend_lines > 0 AND next_restock IS NOT NULL),
              '>', 0::bigint, '(customers with data from all three sources and a re-stock due)');
SELECT is((SELECT sources FROM segment.refreshes WHERE segmentation = 'citus_src'),
          (SELECT sources FROM segment.refreshes WHERE segmentation = 'single_src'),
          'what the refresh read from each source is the same');

-- Order lines without their customer column cannot join the orders on the
-- shards: the refresh names the source.
SELECT segment.configure_product_source('lines', 'order_id', 'product', quantity => 'quantity',
                                  segmentation => 'citus_src');
SELECT throws_ok($$SELECT segment.refresh('citus_src', '2024-12-31 23:59:59+00')$$,
                 'the products source of segmentation "citus_src" could not be read: complex joins are only supported when all distributed tables are co-located and joined on their distribution columns',
                 'order lines joined to distributed orders by the order key alone: the error names the products source');
SELECT is(citus_test.hint_of($$SELECT segment.refresh('citus_src', '2024-12-31 23:59:59+00')$$),
          'On Citus, distribute the order lines by customer, colocated with the orders, and name their customer column: segment.configure_product_source(..., line_customer => ...).',
          'with a hint to name the lines'' customer column');

SELECT * FROM finish();
SELECT segment.drop_segmentation(name) FROM segment.segmentations WHERE name IN ('citus_src', 'single_src');
