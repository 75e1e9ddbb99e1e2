-- Lifetime value fitted and predicted inside refresh_figures()
-- (src/refresh_clv.c) gives what the refresh's SQL path gives: the same
-- models, predictions, high-value cut and notes, to the last bit.  The SQL
-- path is what a refresh takes when refresh_figures() fits nothing: here
-- when its hash table spills to disk (work_mem at its minimum).  Also the
-- function itself: its predictions equal bgnbd_predictions() with the models
-- it reports, what it reports is read once, and bad settings are refused.
-- In weeks the Gamma-Gamma fit has q <= 1: p_alive and expected purchases
-- only, the "partial" case.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(20);
SET LOCAL client_min_messages = error;

CREATE SCHEMA tap_ce;
CREATE TABLE tap_ce.orders (order_id serial PRIMARY KEY, customer_id integer, ordered_at timestamptz,
                            amount numeric(10,2));
SELECT setseed(0.29);
-- 3,000 customers who buy for a while and leave, some with refunds and free
-- repeat orders.
INSERT INTO tap_ce.orders (customer_id, ordered_at, amount)
SELECT c, s.start + random() * s.span,
       CASE WHEN c % 97 = 0 AND k > 1 THEN 0
            WHEN random() < 0.03 THEN -round((5 + random() * 50)::numeric, 2)
            ELSE round((5 + random() * 200)::numeric, 2) END
  FROM generate_series(1, 3000) AS c
 CROSS JOIN LATERAL (SELECT timestamptz '2024-01-01 00:00+00' + (random() * 400 + c * 0) * interval '1 day' AS start,
                            (-ln(1 - random()) * 200 + c * 0) * interval '1 day' AS span) AS s
 CROSS JOIN generate_series(1, 1 + (c * 7919) % 11) AS k;

SELECT lives_ok($$
    SELECT segment.configure('tap_ce.orders', 'customer_id', 'ordered_at', 'amount', segmentation => x.s,
                             is_default => false, clv => true, clv_time_unit => x.unit,
                             clv_penalizer => x.pen, high_value_share => 0.25)
      FROM (VALUES ('e_day', 'day', 0.001), ('s_day', 'day', 0.001),
                   ('e_week', 'week', 0.01), ('s_week', 'week', 0.01)) AS x(s, unit, pen)$$,
    'two pairs of segmentations with lifetime value, in days and in weeks');

-- A full refresh of each: e_* as it comes, s_* with the hash table spilled.
CREATE FUNCTION pg_temp.refresh_pair(suffix text, as_of timestamptz) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM segment.refresh('e_' || suffix, as_of => as_of, mode => 'full');
    SET LOCAL work_mem = '64kB';
    SET LOCAL hash_mem_multiplier = 1;
    PERFORM segment.refresh('s_' || suffix, as_of => as_of, mode => 'full');
    RESET work_mem;
    RESET hash_mem_multiplier;
END
$$;
CREATE FUNCTION pg_temp.same_profiles(suffix text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM segment.%I AS e FULL JOIN segment.%I AS s USING (customer_id)
                     WHERE (e.p_alive, e.expected_purchases, e.clv, e.segment, e.flags)
                           IS DISTINCT FROM (s.p_alive, s.expected_purchases, s.clv, s.segment, s.flags)',
                   'profile_e_' || suffix, 'profile_s_' || suffix) INTO n;
    RETURN n;
END
$$;
CREATE FUNCTION pg_temp.fits(seg text) RETURNS TABLE (status text, note text, bg text, gg text, cut double precision)
    LANGUAGE sql AS $$
    SELECT r.clv_status, r.clv_note, r.bgnbd::text, r.gamma_gamma::text, r.high_value_min
      FROM segment.refreshes AS r WHERE r.segmentation = seg ORDER BY r.id DESC LIMIT 1
$$;

SELECT pg_temp.refresh_pair('day', '2026-01-01 00:00+00');
SELECT pg_temp.refresh_pair('week', '2026-01-01 00:00+00');
SELECT is((SELECT count(*) FROM segment.profile_e_day WHERE clv IS NOT NULL) > 2000, true,
          'the refresh that fitted in refresh_figures() valued its customers');
SELECT is(pg_temp.same_profiles('day'), 0::bigint,
          'in days: every prediction, segment and flag as the SQL path gives them');
SELECT is(pg_temp.same_profiles('week'), 0::bigint, 'in weeks with a penalizer: the same');
SELECT is((SELECT row(f.*)::text FROM pg_temp.fits('e_day') AS f), (SELECT row(f.*)::text FROM pg_temp.fits('s_day') AS f),
          'in days: the same models, status, note and high-value cut');
SELECT is((SELECT row(f.*)::text FROM pg_temp.fits('e_week') AS f), (SELECT row(f.*)::text FROM pg_temp.fits('s_week') AS f),
          'in weeks: the same models, status, note and high-value cut');
SELECT is((SELECT status FROM pg_temp.fits('e_day')), 'fitted', 'both models fitted');

-- Too few repeat buyers: nothing is fitted there, and the refresh says why.
UPDATE segment.segmentations SET clv_min_repeat_buyers = 100000 WHERE name IN ('e_day', 's_day');
SELECT pg_temp.refresh_pair('day', '2026-01-02 00:00+00');
SELECT is((SELECT row(f.*)::text FROM pg_temp.fits('e_day') AS f), (SELECT row(f.*)::text FROM pg_temp.fits('s_day') AS f),
          'too few repeat buyers: the same failed status and note');
SELECT is((SELECT count(*) FROM segment.profile_e_day WHERE p_alive IS NOT NULL), 0::bigint,
          'too few repeat buyers: no predictions');
UPDATE segment.segmentations SET clv_min_repeat_buyers = 10 WHERE name IN ('e_day', 's_day');

-- The function itself.
CREATE TEMP TABLE engine AS
SELECT f.* FROM segment_internal.refresh_figures('tap_ce.orders'::regclass, NULL::integer, 'customer_id', 'ordered_at',
                                                  'amount', NULL, NULL, NULL, '2026-01-01 00:00+00',
                                                  pg_catalog.current_setting('TimeZone')::segment.time_zone, 'day',
                                                  NULL::segment.bgnbd_model, NULL::segment.gamma_gamma_model,
                                                  0.001, 10, 360, 12, 0.01, 0.25) AS f;
CREATE TEMP TABLE models AS SELECT * FROM segment_internal.refresh_figures_models();
SELECT is((SELECT fitted FROM models), true, 'refresh_figures() reports the models it fitted');
SELECT is((SELECT fitted FROM segment_internal.refresh_figures_models()), false, 'once: a second read finds nothing');
SELECT is((SELECT count(*) FROM engine AS e, models AS m,
                  LATERAL segment_internal.bgnbd_predictions(m.model, m.gamma_gamma, 360, 12, 0.01, 'day',
                                                             e.clv_x, e.clv_t_x, e.clv_t_cal, e.clv_mean_value) AS p
            WHERE (e.p_alive, e.expected_purchases, e.clv) IS DISTINCT FROM (p.p_alive, p.expected_purchases, p.clv)),
          0::bigint, 'its predictions are bgnbd_predictions() with the models it reports');
SELECT is((SELECT m.high_value_min FROM models AS m),
          (SELECT percentile_disc(0.75) WITHIN GROUP (ORDER BY e.clv) FROM engine AS e),
          'its high-value cut is percentile_disc(1 - high_value_share) of the CLVs');
SELECT is((SELECT row(m.model, m.gamma_gamma)::text FROM models AS m),
          (SELECT row(segment.bgnbd_fit(e.clv_x, e.clv_t_x, e.clv_t_cal, 0.001),
                      segment.gamma_gamma_fit(e.clv_x, e.clv_mean_value, 0.001) FILTER (WHERE e.clv_x = 0 OR e.clv_mean_value > 0))::text
             FROM engine AS e WHERE e.clv_x IS NOT NULL),
          'its models are bgnbd_fit() and gamma_gamma_fit() over its rows');

-- Spilled: nothing fitted, no predictions (the refresh's SQL path makes them).
SET LOCAL work_mem = '64kB';
SET LOCAL hash_mem_multiplier = 1;
SELECT is((SELECT count(*) FILTER (WHERE f.p_alive IS NOT NULL OR f.clv IS NOT NULL)
                  || '/' || count(f.clv_x)
             FROM segment_internal.refresh_figures('tap_ce.orders'::regclass, NULL::integer, 'customer_id', 'ordered_at',
                                                   'amount', NULL, NULL, NULL, '2026-01-01 00:00+00',
                                                   pg_catalog.current_setting('TimeZone')::segment.time_zone, 'day',
                                                   NULL::segment.bgnbd_model, NULL::segment.gamma_gamma_model,
                                                   0, 10, 360, 12, 0.01, 0.25) AS f),
          '0/' || (SELECT count(clv_x) FROM engine),
          'spilled to disk: every summary, no prediction');
SELECT is((SELECT fitted FROM segment_internal.refresh_figures_models()), false, 'spilled to disk: nothing fitted');
RESET work_mem;
RESET hash_mem_multiplier;

SELECT throws_ok($$SELECT count(*) FROM segment_internal.refresh_figures('tap_ce.orders'::regclass, NULL::integer, 'customer_id',
                   'ordered_at', 'amount', NULL, NULL, NULL, now(), 'UTC', 'day', NULL::segment.bgnbd_model,
                   NULL::segment.gamma_gamma_model, -1, 10, 360, 12, 0.01, 0.2)$$,
                 '22023', 'penalizer must not be negative', 'a negative penalizer is refused');
SELECT throws_ok($$SELECT count(*) FROM segment_internal.refresh_figures('tap_ce.orders'::regclass, NULL::integer, 'customer_id',
                   'ordered_at', 'amount', NULL, NULL, NULL, now(), 'UTC', 'day', NULL::segment.bgnbd_model,
                   NULL::segment.gamma_gamma_model, 0, 10, 360, 12, 0.01, 1.5)$$,
                 '22023', 'high_value_share must be between 0 and 1', 'a share above 1 is refused');
SELECT throws_ok($$SELECT count(*) FROM segment_internal.refresh_figures('tap_ce.orders'::regclass, NULL::integer, 'customer_id',
                   'ordered_at', 'amount', NULL, NULL, NULL, now(), 'UTC', 'day', NULL::segment.bgnbd_model,
                   NULL::segment.gamma_gamma_model, 0, 10, NULL, 12, 0.01, 0.2)$$,
                 '22004', 'horizon t must not be null', 'a NULL horizon is refused');

SELECT throws_ok($$SELECT count(*) FROM segment_internal.refresh_figures('tap_ce.orders'::regclass, NULL::integer, 'customer_id',
                   'ordered_at', 'amount', NULL, NULL, NULL, now(), 'UTC', 'day', NULL::segment.bgnbd_model,
                   NULL::segment.gamma_gamma_model, 0, 100000, 360, -1, 0.01, 0.2)$$,
                 '22023', 'horizon must be between 0 and 1200 months',
                 'a horizon out of range is refused, even when nothing is fitted');

SELECT * FROM finish();
ROLLBACK;
