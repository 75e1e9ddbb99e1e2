-- After ALTER EXTENSION segment UPDATE TO '0.2' of the database
-- test/upgrade/setup_0.1.psql made with 0.1 (test/upgrade/run.sh; the
-- configuration and profiles are compared row for row by
-- test/dump/roundtrip.sql): 0.1's names are gone, 0.2's work on what 0.1
-- stored, and the change capture 0.1 set up still feeds incremental refreshes.
BEGIN;
SELECT plan(12);
SET LOCAL TimeZone = 'UTC';
SET LOCAL client_min_messages = warning;

SELECT is((SELECT extversion FROM pg_extension WHERE extname = 'segment'), '0.2', 'the extension is at 0.2');

SELECT is_empty(
    $$SELECT p.oid::regprocedure::text FROM pg_proc AS p
       WHERE p.pronamespace = 'segment'::regnamespace
         AND p.proname IN ('kmeans_fit', 'kmeans_get', 'kmeans_drop', 'configure_events', 'configure_contacts',
                           'configure_products', 'kmeans_start', 'rfm_trans', 'refresh_run')$$,
    '0.1''s names and internals are gone from schema segment');

SELECT ok(segment.get_kmeans_model('shop_points') IS NOT NULL, 'the k-means model 0.1 stored is read by get_kmeans_model()');
SELECT is(segment.kmeans_assign(segment.get_kmeans_model('shop_points'), ARRAY[1, 1]::float8[]),
          segment.kmeans_assign(segment.get_kmeans_model('shop_points'), ARRAY[1, 1]::float8[]),
          'and assigns points');

SELECT is((SELECT lookback FROM segment.event_sources WHERE segmentation = 'main'), interval '30 days',
          'the events source''s window is its lookback');
SELECT lives_ok($$SELECT segment.configure_event_source('shop.events', 'customer_id', 'kind', 'at', 'main',
                                                        product => 'product', lookback => '45 days',
                                                        kinds => '{"session": "visit", "view": "product_view", "add_to_cart": "cart_add", "subscribe": "subscribe"}')$$,
                'configure_event_source() replaces the events source 0.1 configured');
SELECT is((SELECT lookback FROM segment.event_sources WHERE segmentation = 'main'), interval '45 days',
          'with its new lookback');
SELECT lives_ok($$SELECT segment.enable_rule('Lapsing', 'main', true)$$, 'enable_rule(name, segmentation, enabled)');
SELECT is((SELECT enabled FROM segment.rules WHERE segmentation = 'main' AND name = 'Lapsing'), true,
          'enables the rule 0.1 disabled');

-- The capture triggers and stored figures of 0.1: a new order, an
-- incremental refresh, the same profile as a full one.
INSERT INTO shop.orders (order_id, customer_id, ordered_at, amount)
SELECT max(order_id) + 1, 7, max(ordered_at), 5000 FROM shop.orders;
SELECT is((SELECT mode FROM segment.refresh('quarterly')), 'incremental',
          'a refresh after a new order is incremental on the capture 0.1 set up');
CREATE TEMP TABLE incremental_profile AS SELECT * FROM segment.profile_quarterly;
SELECT is((SELECT mode FROM segment.refresh('quarterly', mode => 'full')), 'full', 'a full refresh');
SELECT set_eq(
    $$SELECT p.customer_id, p.segment, p.rfm_segment, p.flags, p.monetary FROM segment.profile_quarterly AS p$$,
    $$SELECT p.customer_id, p.segment, p.rfm_segment, p.flags, p.monetary FROM incremental_profile AS p$$,
    'gives the profile of the incremental one');

SELECT * FROM finish();
ROLLBACK;
