-- BG/NBD: fit aggregate, predictions, and their behaviour on unusual input.
-- Reference values from an independent computation (mpmath, 30 digits) of
-- the formulas of Fader, Hardie and Lee (2005) with the published CDNOW
-- parameters r = 0.243, alpha = 4.414, a = 0.793, b = 2.426.
CREATE TABLE bg_models AS
SELECT ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL, NULL)::segment.bgnbd_model AS m;

-- Conditional expectation and probability alive against the references.
SELECT t, x, t_x, t_cal,
       round(segment.bgnbd_expected_purchases(m, t, x, t_x, t_cal)::numeric, 10) AS expected,
       abs(segment.bgnbd_expected_purchases(m, t, x, t_x, t_cal) / ref_e - 1) < 1e-11 AS e_ok,
       round(segment.bgnbd_p_alive(m, x, t_x, t_cal)::numeric, 10) AS p_alive,
       abs(segment.bgnbd_p_alive(m, x, t_x, t_cal) / ref_p - 1) < 1e-12 AS p_ok
  FROM bg_models,
       (VALUES (39, 2, 30.43, 38.86, 1.22602817476714, 0.726578570080673),
               (39, 26, 30.86, 31, 20.7497261408573, 0.968915649717525),
               (39, 0, 0, 38.86, 0.195098052011263, 1.0),
               (52, 1, 1.71, 38.86, 0.259823464868622, 0.212100985377379),
               (1000, 5, 10, 40, 0.604493396778357, 0.0217117497070645),
               (39, 100, 35, 38, 5.31937979707141, 0.0756967031337981))
           AS v(t, x, t_x, t_cal, ref_e, ref_p);

-- A new customer's expected repeat purchases.
SELECT t, round(segment.bgnbd_expected_purchases_new(m, t)::numeric, 10) AS expected,
       abs(segment.bgnbd_expected_purchases_new(m, t) / ref - 1) < 1e-11 AS ok
  FROM bg_models, (VALUES (39, 1.19672319332082), (78, 1.86051905794277)) AS v(t, ref);

-- Horizon 0: nothing expected.  Never NaN at the extremes: a customer long
-- silent after many purchases is dead (p_alive 0, not NaN), a recent one alive.
SELECT segment.bgnbd_expected_purchases(m, 0, 3, 10, 20) AS cond_0,
       segment.bgnbd_expected_purchases_new(m, 0) AS new_0,
       segment.bgnbd_p_alive(m, 1000, 1, 1e6) AS dead,
       segment.bgnbd_expected_purchases(m, 39, 1000, 1, 1e6) AS dead_expected,
       round(segment.bgnbd_p_alive(m, 1000, 1e6, 1e6)::numeric, 10) AS alive,
       round(segment.bgnbd_p_alive(m, 3, 0, 10)::numeric, 10) AS repeat_at_t0
  FROM bg_models;

-- T = 0 (first purchase at the end of the observation period) is a new customer.
SELECT segment.bgnbd_expected_purchases(m, 39, 0, 0, 0) = segment.bgnbd_expected_purchases_new(m, 39)
           AS t0_is_new
  FROM bg_models;

-- a = 1 is a removable singularity of the expectation: continuous across it.
SELECT round(segment.bgnbd_expected_purchases(ROW(0.5, 5, 1, 2, NULL, NULL, NULL, NULL), 10, 2, 8, 12)::numeric, 6) AS at_1,
       round(segment.bgnbd_expected_purchases(ROW(0.5, 5, 0.999, 2, NULL, NULL, NULL, NULL), 10, 2, 8, 12)::numeric, 6) AS below,
       round(segment.bgnbd_expected_purchases(ROW(0.5, 5, 1.001, 2, NULL, NULL, NULL, NULL), 10, 2, 8, 12)::numeric, 6) AS above,
       round(segment.bgnbd_expected_purchases_new(ROW(0.5, 5, 1, 2, NULL, NULL, NULL, NULL), 10)::numeric, 6) AS new_at_1,
       round(segment.bgnbd_expected_purchases_new(ROW(0.5, 5, 1.001, 2, NULL, NULL, NULL, NULL), 10)::numeric, 6) AS new_above;

-- Predictions are STRICT: NULL in, NULL out.
SELECT segment.bgnbd_p_alive(m, NULL, 1, 2) IS NULL AS null_x FROM bg_models;

-- The fit on a small fixed data set: deterministic.
CREATE TABLE bg_customers (id int, x int, t_x float8, t_cal float8);
INSERT INTO bg_customers VALUES
    (1, 0, 0, 30), (2, 1, 10, 30), (3, 3, 25, 30), (4, 0, 0, 25), (5, 2, 5, 25),
    (6, 5, 20, 22), (7, 0, 0, 20), (8, 1, 2, 20), (9, 4, 18, 19), (10, 0, 0, 15),
    (11, 2, 14, 15), (12, 0, 0, 10), (13, 1, 9, 10), (14, 0, 0, 5), (15, 6, 29, 30),
    (16, 1, 3, 28), (17, 0, 0, 28), (18, 2, 8, 26), (19, 0, 0, 12), (20, 3, 11, 12);
SELECT round(r::numeric, 4) AS r, round(alpha::numeric, 4) AS alpha, round(a::numeric, 4) AS a,
       round(b::numeric, 4) AS b, round(log_likelihood::numeric, 4) AS ll, converged, customers
  FROM (SELECT (segment.bgnbd_fit(x, t_x, t_cal)).* FROM bg_customers) AS f;

-- The L2 penalty pulls the parameters towards 0, at a cost in likelihood.
SELECT p.log_likelihood < f.log_likelihood AS penalty_costs_likelihood,
       p.r ^ 2 + p.alpha ^ 2 + p.a ^ 2 + p.b ^ 2 < f.r ^ 2 + f.alpha ^ 2 + f.a ^ 2 + f.b ^ 2
           AS penalty_shrinks
  FROM (SELECT (segment.bgnbd_fit(x, t_x, t_cal)).* FROM bg_customers) AS f,
       (SELECT (segment.bgnbd_fit(x, t_x, t_cal, 0.01)).* FROM bg_customers) AS p;

-- A penalised fit measures time in units of the longest T, as lifetimes does:
-- it does not depend on the caller's time unit (alpha is in that unit).
SELECT abs(d.r / w.r - 1) < 1e-6 AS same_r, abs(d.alpha / (7 * w.alpha) - 1) < 1e-6 AS alpha_in_unit,
       abs(d.a / w.a - 1) < 1e-6 AS same_a, abs(d.b / w.b - 1) < 1e-6 AS same_b
  FROM (SELECT (segment.bgnbd_fit(x, t_x, t_cal, 0.01)).* FROM bg_customers) AS d,
       (SELECT (segment.bgnbd_fit(x, t_x / 7, t_cal / 7, 0.01)).* FROM bg_customers) AS w;

-- Fifty one-time buyers and one repeat buyer: the likelihood has a ridge
-- (a -> infinity, b -> 0 at equal values) and no maximum, so the fit says it
-- did not converge wherever the optimiser stopped.
SELECT converged
  FROM (SELECT (segment.bgnbd_fit(x, t_x, t_cal)).*
          FROM (SELECT 0 AS x, 0 AS t_x, g AS t_cal FROM generate_series(1, 50) AS g
                UNION ALL SELECT 1, 5, 20) AS s) AS f;

-- A customer with T = 0 adds nothing to the likelihood: same optimum.
SELECT round(f.log_likelihood::numeric, 6) = round(g.log_likelihood::numeric, 6) AS same_ll,
       round(f.r::numeric, 4) = round(g.r::numeric, 4) AS same_r, g.customers
  FROM (SELECT (segment.bgnbd_fit(x, t_x, t_cal)).* FROM bg_customers) AS f,
       (SELECT (segment.bgnbd_fit(x, t_x, t_cal)).*
          FROM (SELECT x, t_x, t_cal FROM bg_customers UNION ALL SELECT 0, 0, 0) AS s) AS g;

-- No rows, or only NULLs: NULL.  Rows with a NULL are skipped.
SELECT segment.bgnbd_fit(x, t_x, t_cal) IS NULL AS no_rows FROM bg_customers WHERE false;
SELECT segment.bgnbd_fit(x, t_x, t_cal) IS NULL AS only_nulls
  FROM (VALUES (NULL::float8, 1::float8, 2::float8)) AS v(x, t_x, t_cal);
SELECT (segment.bgnbd_fit(x, t_x, t_cal)).customers
  FROM (SELECT x, t_x, t_cal FROM bg_customers UNION ALL SELECT NULL, 1, 2) AS s;

-- A single customer, or too few to identify the model: the optimiser runs a
-- parameter off towards infinity, and the fit says it did not converge.
SELECT converged, customers
  FROM (SELECT (segment.bgnbd_fit(x, t_x, t_cal)).* FROM (VALUES (2, 30.0, 38.0)) AS v(x, t_x, t_cal)) AS f;

-- Errors: no repeat purchase at all, impossible histories, bad values.
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (0, 0, 10), (0, 0, 20)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (-1, 0, 10)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1.5, 2, 10)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1, 12, 10)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1, -2, 10)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (0, 2, 10)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (2, 0, 10)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1, 'NaN'::float8, 10)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM (VALUES (1, 2, 'Infinity'::float8)) AS v(x, t_x, t_cal);
SELECT segment.bgnbd_fit(x, t_x, t_cal, -0.1) FROM bg_customers;
SELECT segment.bgnbd_fit(x, t_x, t_cal, NULL) FROM bg_customers;
SELECT segment.bgnbd_fit(x, t_x, t_cal, id) FROM bg_customers;
SELECT segment.bgnbd_p_alive(ROW(0.2, NULL, 1, 1, NULL, NULL, NULL, NULL), 1, 2, 3);
SELECT segment.bgnbd_p_alive(ROW(0.2, 1, -1, 1, NULL, NULL, NULL, NULL), 1, 2, 3);
SELECT segment.bgnbd_p_alive(ROW(0.2, 1, 1, 'Infinity', NULL, NULL, NULL, NULL), 1, 2, 3);
SELECT segment.bgnbd_p_alive(m, 1, 5, 3) FROM bg_models;
SELECT segment.bgnbd_expected_purchases(m, -1, 1, 2, 3) FROM bg_models;
SELECT segment.bgnbd_expected_purchases(m, 'NaN', 1, 2, 3) FROM bg_models;
SELECT segment.bgnbd_expected_purchases_new(m, -5) FROM bg_models;
-- a horizon so long that the hypergeometric series cannot converge
SELECT segment.bgnbd_expected_purchases(m, 1e15, 1, 2, 3) FROM bg_models;

-- A corrupt state fed to the final function through a user-made aggregate.
CREATE AGGREGATE bad_fit(double precision[]) (
    SFUNC = array_cat, STYPE = double precision[], FINALFUNC = segment_internal.bgnbd_fit_final);
SELECT bad_fit(ARRAY[5, 3, 1, 0, 0, 0]::float8[]);
SELECT bad_fit(ARRAY[1, 2, 3]::float8[]);
DROP AGGREGATE bad_fit(double precision[]);

-- The per-customer log-likelihood sums to the fit's (two implementations).
SELECT abs(sum(segment.bgnbd_log_likelihood(f.m, x, t_x, t_cal)) - (f.m).log_likelihood) < 1e-9
           AS ll_sums
  FROM bg_customers,
       (SELECT segment.bgnbd_fit(x, t_x, t_cal) AS m FROM bg_customers) AS f
 GROUP BY f.m;
SELECT segment.bgnbd_log_likelihood(m, 0, 0, 0) AS t0_contributes_nothing FROM bg_models;
SELECT segment.bgnbd_log_likelihood(m, 1, 5, 3) FROM bg_models;

-- a + b = 1: the new-customer expectation's hypergeometric term is undefined.
SELECT segment.bgnbd_expected_purchases_new(ROW(0.2, 1, 0.5, 0.5, NULL, NULL, NULL, NULL), 10);
