-- segment_internal.bgnbd_predictions(), the refresh's three BG/NBD
-- predictions in one call: equal to the public functions bit for bit, on
-- ordinary, edge and NULL customers, in days and weeks; hostile arguments
-- get the errors of the public functions.  And the refresh's high-value cut,
-- segment_internal.rank_at(), equal to percentile_disc() over doubles.
BEGIN;
SELECT plan(40);

CREATE TEMP TABLE tap_cp_models (id int, bg segment.bgnbd_model, gg segment.gamma_gamma_model);
INSERT INTO tap_cp_models VALUES
    (1, ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL, NULL), ROW(6.25, 3.74, 15.44, NULL, NULL, NULL, NULL)),
    -- a = 1 within 1e-5: the removable singularity of the expectation
    (2, ROW(1.4, 15.9, 1.000001, 47.8, NULL, NULL, NULL, NULL), ROW(3.2, 1.75, 14.0, NULL, NULL, NULL, NULL)),
    (3, ROW(0.02, 0.5, 12, 0.3, NULL, NULL, NULL, NULL), ROW(80, 1.0001, 0.01, NULL, NULL, NULL, NULL));
CREATE TEMP TABLE tap_cp_customers (x float8, t_x float8, t_cal float8, mean_value float8);
INSERT INTO tap_cp_customers
SELECT x, CASE WHEN x = 0 THEN 0 ELSE least(t_cal, x + (t_cal - x) * frac) END, t_cal,
       CASE WHEN x = 0 THEN NULL ELSE mv END
  FROM generate_series(0, 40, 3) AS x,
       (VALUES (40.0::float8), (77), (365), (700.5)) AS t(t_cal),
       (VALUES (0.0::float8), (0.5), (1.0)) AS f(frac),
       (VALUES (12.5::float8), (0.01), (480)) AS m(mv);
-- edges: a repeat customer whose repeat orders were free (no CLV), a mean
-- spend of 0 at x = 0, NULL figures (no prediction), one of every customer
-- with the same (x, T) (the memo), a huge history
INSERT INTO tap_cp_customers VALUES
    (3, 10, 40, 0), (0, 0, 40, 0), (0, 0, 10, NULL), (NULL, 0, 10, 5), (2, NULL, 10, 5),
    (2, 1, NULL, 5), (5, 30, 40, 20), (5, 31, 40, 20), (5, 39, 40, 20), (5000, 9999, 10000, 7);

-- The public functions, as the refresh called them before (a CLV only with
-- a Gamma-Gamma model, for x = 0 or a positive mean spend).
CREATE FUNCTION pg_temp.tap_cp_public(bg segment.bgnbd_model, gg segment.gamma_gamma_model, t float8,
                                      months int, rate float8, unit text, x float8, t_x float8,
                                      t_cal float8, mv float8)
    RETURNS float8[] LANGUAGE sql AS
$$ SELECT ARRAY[segment.bgnbd_p_alive(bg, x, t_x, t_cal),
                segment.bgnbd_expected_purchases(bg, t, x, t_x, t_cal),
                CASE WHEN gg::text IS NOT NULL AND (x = 0 OR mv > 0)
                     THEN segment.clv(bg, gg, x, t_x, t_cal, mv, months, rate, unit) END] $$;
CREATE FUNCTION pg_temp.tap_cp_fused(bg segment.bgnbd_model, gg segment.gamma_gamma_model, t float8,
                                     months int, rate float8, unit text, x float8, t_x float8,
                                     t_cal float8, mv float8)
    RETURNS float8[] LANGUAGE sql AS
$$ SELECT ARRAY[(p).p_alive, (p).expected_purchases, (p).clv]
     FROM (SELECT segment_internal.bgnbd_predictions(bg, gg, t, months, rate, unit, x, t_x, t_cal, mv) AS p) AS q
    WHERE NOT (p).bad $$;

SELECT is((SELECT count(*) FROM tap_cp_models AS m, tap_cp_customers AS c
            WHERE pg_temp.tap_cp_fused(m.bg, m.gg, 360, 12, 0.01, 'day', c.x, c.t_x, c.t_cal, c.mean_value)::text
                  IS DISTINCT FROM pg_temp.tap_cp_public(m.bg, m.gg, 360, 12, 0.01, 'day', c.x, c.t_x, c.t_cal, c.mean_value)::text
               OR pg_temp.tap_cp_fused(m.bg, m.gg, 360, 12, 0.01, 'day', c.x, c.t_x, c.t_cal, c.mean_value)
                  IS DISTINCT FROM pg_temp.tap_cp_public(m.bg, m.gg, 360, 12, 0.01, 'day', c.x, c.t_x, c.t_cal, c.mean_value)),
          0::bigint, 'days: p_alive, expected purchases and CLV equal the public functions'' bit for bit');
SELECT is((SELECT count(*) FROM tap_cp_models AS m, tap_cp_customers AS c
            WHERE pg_temp.tap_cp_fused(m.bg, m.gg, 3 * 4.345, 3, 0.05, 'week', c.x, c.t_x, c.t_cal, c.mean_value)
                  IS DISTINCT FROM pg_temp.tap_cp_public(m.bg, m.gg, 3 * 4.345, 3, 0.05, 'week', c.x, c.t_x, c.t_cal, c.mean_value)),
          0::bigint, 'weeks, another horizon and rate: equal too');
SELECT is((SELECT count(*) FROM tap_cp_models AS m, tap_cp_customers AS c
            WHERE pg_temp.tap_cp_fused(m.bg, NULL, 0, 0, 0, 'month', c.x, c.t_x, c.t_cal, c.mean_value)
                  IS DISTINCT FROM pg_temp.tap_cp_public(m.bg, NULL, 0, 0, 0, 'month', c.x, c.t_x, c.t_cal, c.mean_value)),
          0::bigint, 'no Gamma-Gamma model, horizon 0: equal too (CLV NULL)');
SELECT is((SELECT count(*) FROM tap_cp_models AS m, tap_cp_customers AS c
            WHERE pg_temp.tap_cp_fused(m.bg, m.gg, 30, 0, -0.5, 'day', c.x, c.t_x, c.t_cal, c.mean_value)
                  IS DISTINCT FROM pg_temp.tap_cp_public(m.bg, m.gg, 30, 0, -0.5, 'day', c.x, c.t_x, c.t_cal, c.mean_value)),
          0::bigint, 'CLV over 0 months: 0, as clv()');
-- the memo and the discount factors of one call site follow a change of
-- model, horizon or rate from row to row
SELECT is((SELECT count(*) FROM (SELECT m.bg, m.gg, c.*, h.t, h.months, h.rate
                                   FROM tap_cp_models AS m, tap_cp_customers AS c,
                                        (VALUES (360.0::float8, 12, 0.01::float8), (30, 1, 0.2), (360, 24, 0.01)) AS h(t, months, rate)
                                  ORDER BY random()) AS q
            WHERE ARRAY[(segment_internal.bgnbd_predictions(q.bg, q.gg, q.t, q.months, q.rate, 'day', q.x, q.t_x, q.t_cal, q.mean_value)).p_alive,
                        (segment_internal.bgnbd_predictions(q.bg, q.gg, q.t, q.months, q.rate, 'day', q.x, q.t_x, q.t_cal, q.mean_value)).expected_purchases,
                        (segment_internal.bgnbd_predictions(q.bg, q.gg, q.t, q.months, q.rate, 'day', q.x, q.t_x, q.t_cal, q.mean_value)).clv]
                  IS DISTINCT FROM pg_temp.tap_cp_public(q.bg, q.gg, q.t, q.months, q.rate, 'day', q.x, q.t_x, q.t_cal, q.mean_value)),
          0::bigint, 'models, horizons and rates changing from row to row: equal too');
SELECT is((SELECT count(*) FROM tap_cp_models AS m, tap_cp_customers AS c
            WHERE (segment_internal.bgnbd_predictions(m.bg, m.gg, 360, 12, 0.01, 'day', c.x, c.t_x, c.t_cal, c.mean_value)).bad),
          0::bigint, 'no value out of range: bad is false');
SELECT is((SELECT ARRAY[(p).p_alive, (p).expected_purchases, (p).clv]::text || (p).bad
             FROM (SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', NULL, 0, 10, 5) AS p
                     FROM tap_cp_models WHERE id = 1) AS q),
          '{NULL,NULL,NULL}false', 'a NULL figure gives NULL predictions, not bad');

-- Hostile arguments: the errors of the public functions.
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(NULL, NULL, 360, 12, 0.01, 'day', 1, 1, 2, 5)$$,
                 '22004', 'model must not be null', 'a NULL model');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, NULL, 12, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22004', NULL, 'a NULL horizon');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, NULL, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22004', NULL, 'NULL months');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, NULL, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22004', NULL, 'a NULL rate');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, NULL, 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22004', NULL, 'a NULL time unit');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'year', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'unrecognized time unit "year"', 'an unknown time unit');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, t, 12, 0.01, 'day', 1, 1, 2, 5)
                     FROM tap_cp_models, (VALUES ('NaN'::float8)) AS v(t) WHERE id = 1$$,
                 '22023', NULL, 'a NaN horizon');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 'Infinity', 12, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', NULL, 'an infinite horizon');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, -1, 12, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', NULL, 'a negative horizon');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 1201, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'horizon must be between 0 and 1200 months', 'too many months');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, -1, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'horizon must be between 0 and 1200 months', 'negative months');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 'NaN', 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'monthly discount rate must be a finite number', 'a NaN rate');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, '-Infinity', 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'monthly discount rate must be a finite number', 'an infinite rate');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, -1, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'monthly discount rate must be greater than -1', 'a rate of -100%');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', 'NaN', 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'number of repeat purchases x must be a finite number', 'a NaN x');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', 1, 'Infinity', 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'time of the last purchase t_x must be a finite number', 'an infinite t_x');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', 1.5, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'number of repeat purchases x must be a non-negative whole number', 'a fractional x');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', 1, 5, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'customer age T must not be less than t_x', 't_x after T');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', 0, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 't_x must be 0 when there is no repeat purchase', 't_x without a repeat purchase');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', 1, 1, 2, 'NaN') FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'mean repeat purchase value must be a finite number', 'a NaN mean spend');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, gg, 360, 12, 0.01, 'day', 1, 1, 2, 'Infinity') FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'mean repeat purchase value must be a finite number', 'an infinite mean spend');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(ROW('NaN', 1, 1, 1, NULL, NULL, NULL, NULL), NULL, 360, 12, 0.01, 'day', 1, 1, 2, 5)$$,
                 '22023', NULL, 'a NaN parameter r');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(ROW(0.2, NULL, 1, 1, NULL, NULL, NULL, NULL), NULL, 360, 12, 0.01, 'day', 1, 1, 2, 5)$$,
                 '22023', NULL, 'a NULL parameter alpha');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(ROW(0.2, 1, -1, 1, NULL, NULL, NULL, NULL), NULL, 360, 12, 0.01, 'day', 1, 1, 2, 5)$$,
                 '22023', NULL, 'a negative parameter a');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(ROW(0.2, 1, 1, 'Infinity', NULL, NULL, NULL, NULL), NULL, 360, 12, 0.01, 'day', 1, 1, 2, 5)$$,
                 '22023', NULL, 'an infinite parameter b');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, ROW(1, 0.5, 1, NULL, NULL, NULL, NULL), 360, 12, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', 'Gamma-Gamma parameter q must be greater than 1 for a finite expected value', 'a Gamma-Gamma q <= 1');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, ROW('NaN', 2, 1, NULL, NULL, NULL, NULL), 360, 12, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', NULL, 'a NaN Gamma-Gamma p');
SELECT throws_ok($$SELECT segment_internal.bgnbd_predictions(bg, ROW(1, 2, NULL, NULL, NULL, NULL, NULL), 360, 12, 0.01, 'day', 1, 1, 2, 5) FROM tap_cp_models WHERE id = 1$$,
                 '22023', NULL, 'a NULL Gamma-Gamma v');
-- a crafted model after a valid one at the same call site is still refused
SELECT throws_ok($$SELECT (segment_internal.bgnbd_predictions(m.bg, NULL, 360, 12, 0.01, 'day', 1, 1, 2, 5)).p_alive
                     FROM (VALUES (1, ROW(0.2, 1, 1, 1, NULL, NULL, NULL, NULL)::segment.bgnbd_model),
                                  (2, ROW(0.2, 1, 'NaN', 1, NULL, NULL, NULL, NULL)::segment.bgnbd_model)) AS m(i, bg)
                    ORDER BY m.i$$,
                 '22023', NULL, 'a crafted model after a valid one');

-- rank_at(value, 1 - share)[1] is percentile_disc(1 - share) over doubles:
-- ties, NULLs skipped, NULL for no value.
CREATE TEMP TABLE tap_cp_values (g int, v float8);
INSERT INTO tap_cp_values
SELECT g, CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * g)::numeric, 1)::float8 END
  FROM generate_series(1, 7) AS g, generate_series(1, 50 * g);
INSERT INTO tap_cp_values VALUES (8, NULL), (8, NULL), (9, 4.5), (10, -0.0), (10, 0), (10, -1e300);
SELECT is((SELECT count(*) FROM (SELECT g, f, (segment_internal.rank_at(v, f))[1] AS r,
                                        percentile_disc(f) WITHIN GROUP (ORDER BY v) AS p
                                   FROM tap_cp_values, (VALUES (0.8::float8), (0.5), (0), (1), (0.999)) AS fr(f)
                                  GROUP BY g, f) AS q
            WHERE q.r IS DISTINCT FROM q.p),
          0::bigint, 'rank_at equals percentile_disc: ties, NULLs, a lone value, fractions 0 and 1');
SELECT is((SELECT (segment_internal.rank_at(v, 0.8))[1] FROM tap_cp_values WHERE g = 8), NULL,
          'only NULLs: NULL, as percentile_disc');
SELECT is((SELECT (segment_internal.rank_at(v, 0.8))[1] FROM tap_cp_values WHERE false), NULL,
          'no row: NULL, as percentile_disc');
SELECT throws_ok($$SELECT segment_internal.rank_at(v, 0.8) FROM (VALUES ('NaN'::float8)) AS t(v)$$,
                 '22023', 'value to rank must be finite', 'a NaN value is refused (the refresh stores none)');

SELECT * FROM finish();
ROLLBACK;
