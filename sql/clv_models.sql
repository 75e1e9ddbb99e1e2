-- Pareto/NBD, MBG/NBD and P(X(t) = n): predictions against references
-- computed here independently from the published formulas, small fits, and
-- the errors on crafted models, arguments and aggregate states.
SET extra_float_digits = 0;

-- Pareto/NBD likelihood by its integral form (Fader and Hardie 2005, "A note
-- on deriving the Pareto/NBD model", the step before eq. 22):
--   L = Gamma(r+x) alpha^r beta^s / Gamma(r) * ((alpha+T)^-(r+x) (beta+T)^-s
--       + s * integral over (t_x, T] of (alpha+u)^-(r+x) (beta+u)^-(s+1) du)
-- by Simpson's rule on 4000 intervals: no hypergeometric function at all.
CREATE FUNCTION pnbd_ref(r float8, alpha float8, s float8, beta float8, x float8, t_x float8,
                         t_cal float8, OUT ll float8, OUT p_alive float8)
LANGUAGE plpgsql AS $$
DECLARE
    n int := 4000;
    h float8 := (t_cal - t_x) / n;
    integral float8 := 0;
    u float8;
    alive float8;
BEGIN
    FOR i IN 0..n LOOP
        u := t_x + i * h;
        integral := integral + (CASE WHEN i IN (0, n) THEN 1 WHEN i % 2 = 1 THEN 4 ELSE 2 END)
            * (alpha + u) ^ (-(r + x)) * (beta + u) ^ (-(s + 1));
    END LOOP;
    integral := integral * h / 3;
    alive := (alpha + t_cal) ^ (-(r + x)) * (beta + t_cal) ^ (-s);
    ll := ln(gamma_ratio(r, x)) + r * ln(alpha) + s * ln(beta) + ln(alive + s * integral);
    p_alive := alive / (alive + s * integral);
END
$$;
-- Gamma(r+x)/Gamma(r) for a whole x
CREATE FUNCTION gamma_ratio(r float8, x float8) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    v float8 := 1;
BEGIN
    FOR j IN 0..x::int - 1 LOOP
        v := v * (r + j);
    END LOOP;
    RETURN v;
END
$$;

-- Both cases of the closed form: alpha >= beta (CDNOW's published fit has
-- alpha < beta) and alpha > beta, and customers with many purchases.
CREATE TABLE pnbd_models AS
SELECT * FROM (VALUES (1, ROW(0.553, 10.578, 0.606, 11.669, NULL, NULL, NULL, NULL)::segment.pareto_nbd_model),
                      (2, ROW(0.8, 20, 1.5, 4, NULL, NULL, NULL, NULL)::segment.pareto_nbd_model),
                      (3, ROW(2, 3, 0.3, 3, NULL, NULL, NULL, NULL)::segment.pareto_nbd_model))
    AS v(id, m);
SELECT id, x, t_x, t_cal,
       abs(segment.pareto_nbd_log_likelihood(m, x, t_x, t_cal) - (ref).ll) < 1e-9 AS ll_ok,
       abs(segment.pareto_nbd_p_alive(m, x, t_x, t_cal) - (ref).p_alive) < 1e-9 AS p_alive_ok,
       round(segment.pareto_nbd_p_alive(m, x, t_x, t_cal)::numeric, 6) AS p_alive
  FROM pnbd_models,
       (VALUES (2, 30.43, 38.86), (0, 0, 38.86), (1, 1.71, 38.86), (26, 30.86, 31),
               (5, 10, 40), (50, 20, 38), (0, 0, 5)) AS c(x, t_x, t_cal),
       LATERAL (SELECT pnbd_ref((m).r, (m).alpha, (m).s, (m).beta, x, t_x, t_cal) AS ref) AS r
 ORDER BY id, x, t_x, t_cal;

-- t_x = T: the customer bought at the end, nothing to integrate.
SELECT round(segment.pareto_nbd_p_alive(m, 3, 20, 20)::numeric, 12) AS p_alive_at_end
  FROM pnbd_models WHERE id = 1;

-- Conditional expectation: P(alive) times the alive customer's (Schmittlein
-- et al. 1987), computed here from the formula; continuous across s = 1.
SELECT id, abs(segment.pareto_nbd_expected_purchases(m, 39, 2, 30.43, 38.86)
           - segment.pareto_nbd_p_alive(m, 2, 30.43, 38.86)
             * ((m).r + 2) * ((m).beta + 38.86) / (((m).alpha + 38.86) * ((m).s - 1))
             * (1 - (((m).beta + 38.86) / ((m).beta + 38.86 + 39)) ^ ((m).s - 1))) < 1e-12 AS ok
  FROM pnbd_models ORDER BY id;
SELECT round(segment.pareto_nbd_expected_purchases(ROW(0.5, 10, 1, 12, NULL, NULL, NULL, NULL), 39, 2, 30, 38)::numeric, 6) AS at_1,
       round(segment.pareto_nbd_expected_purchases(ROW(0.5, 10, 1.000001, 12, NULL, NULL, NULL, NULL), 39, 2, 30, 38)::numeric, 6) AS above,
       segment.pareto_nbd_expected_purchases(ROW(0.5, 10, 1, 12, NULL, NULL, NULL, NULL), 0, 2, 30, 38) AS horizon_0;

-- Large x and T stay finite (log space): a frequent, recent customer is alive.
SELECT round(segment.pareto_nbd_p_alive(m, 5000, 9999, 10000)::numeric, 6) AS alive,
       segment.pareto_nbd_p_alive(m, 5000, 10, 10000) < 1e-300 AS dead,
       segment.pareto_nbd_log_likelihood(m, 5000, 9999, 10000) < 0 AS ll_finite
  FROM pnbd_models WHERE id = 1;

-- MBG/NBD against lifetimes' ModifiedBetaGeoFitter formulas
-- (lifetimes/fitters/modified_beta_geo_fitter.py, Batislam et al. 2007 with
-- Wagner and Hoppe's 2008 erratum), written out here.
CREATE FUNCTION hyp2f1_ref(a float8, b float8, c float8, z float8) RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    term float8 := 1;
    total float8 := 1;
BEGIN
    FOR n IN 0..100000 LOOP
        term := term * (a + n) * (b + n) / ((c + n) * (n + 1)) * z;
        total := total + term;
        EXIT WHEN abs(term) < 1e-17 * abs(total);
    END LOOP;
    RETURN total;
END
$$;
CREATE TABLE mbg_models AS
SELECT ROW(0.525, 6.183, 0.891, 1.614, NULL, NULL, NULL, NULL)::segment.mbgnbd_model AS m;
SELECT x, t_x, t_cal,
       abs(segment.mbgnbd_p_alive(m, x, t_x, t_cal)
           - 1 / (1 + (a / (b + x)) * ((alpha + t_cal) / (alpha + t_x)) ^ (r + x))) < 1e-12 AS p_alive_ok,
       abs(segment.mbgnbd_expected_purchases(m, 39, x, t_x, t_cal)
           - (a + b + x) / (a - 1)
             * (1 - hyp2f1_ref(r + x, b + x + 1, a + b + x, 39 / (alpha + t_cal + 39))
                    * ((alpha + t_cal) / (alpha + 39 + t_cal)) ^ (r + x))
             / (1 + (a / (b + x)) * ((alpha + t_cal) / (alpha + t_x)) ^ (r + x))) < 1e-10 AS expected_ok,
       abs(segment.mbgnbd_log_likelihood(m, x, t_x, t_cal)
           - (ln(gamma_ratio(r, x)) + r * ln(alpha)
              + ln(gamma_ratio(b, x + 1)) - ln(gamma_ratio(a + b, x + 1))
              - (r + x) * ln(alpha + t_cal)
              + ln(1 + a / (b + x) * ((alpha + t_cal) / (alpha + t_x)) ^ (r + x)))) < 1e-10 AS ll_ok,
       round(segment.mbgnbd_p_alive(m, x, t_x, t_cal)::numeric, 6) AS p_alive
  FROM mbg_models, LATERAL (SELECT (m).r, (m).alpha, (m).a, (m).b) AS p,
       (VALUES (2, 30.43, 38.86), (0, 0, 38.86), (1, 1.71, 38.86), (26, 30.86, 31), (5, 10, 40))
           AS c(x, t_x, t_cal)
 ORDER BY x;

-- P(X(t) = n): BG/NBD (Fader, Hardie and Lee 2005, eq. 8) and MBG/NBD
-- (lifetimes' probability_of_n_purchases_up_to_time) written out here, at
-- the published CDNOW BG/NBD parameters and the MBG/NBD CDNOW fit.
CREATE FUNCTION prob_ref(r float8, alpha float8, a float8, b float8, t float8, n int,
                         modified bool) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    nb float8;
    head float8 := 0;
    lb float8 := ln(gamma_ratio(0, 0));
    beta_ab float8 := exp(lgamma_ref(a) + lgamma_ref(b) - lgamma_ref(a + b));
BEGIN
    FOR j IN 0..n - 1 LOOP
        head := head + gamma_ratio(r, j) / gamma_ratio(1, j) * (t / (alpha + t)) ^ j;
    END LOOP;
    nb := gamma_ratio(r, n) / gamma_ratio(1, n) * (alpha / (alpha + t)) ^ r * (t / (alpha + t)) ^ n;
    IF modified THEN
        RETURN exp(lgamma_ref(a) + lgamma_ref(b + n + 1) - lgamma_ref(a + b + n + 1)) / beta_ab * nb
             + exp(lgamma_ref(a + 1) + lgamma_ref(b + n) - lgamma_ref(a + b + n + 1)) / beta_ab
               * (1 - (alpha / (alpha + t)) ^ r * head);
    END IF;
    RETURN exp(lgamma_ref(a) + lgamma_ref(b + n) - lgamma_ref(a + b + n)) / beta_ab * nb
         + CASE WHEN n > 0 THEN
               exp(lgamma_ref(a + 1) + lgamma_ref(b + n - 1) - lgamma_ref(a + b + n)) / beta_ab
               * (1 - (alpha / (alpha + t)) ^ r * head)
           ELSE 0 END;
END
$$;
-- ln Gamma by Stirling's series after shifting the argument up (PostgreSQL 15 has no lgamma)
CREATE FUNCTION lgamma_ref(x float8) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    shift float8 := 0;
BEGIN
    WHILE x < 30 LOOP
        shift := shift - ln(x);
        x := x + 1;
    END LOOP;
    RETURN shift + (x - 0.5) * ln(x) - x + 0.5 * ln(2 * pi())
         + 1 / (12 * x) - 1 / (360 * x ^ 3) + 1 / (1260 * x ^ 5) - 1 / (1680 * x ^ 7);
END
$$;
CREATE TABLE bg_cdnow AS
SELECT ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL, NULL)::segment.bgnbd_model AS m;
SELECT n, round(segment.bgnbd_probability_of_purchases(c.m, 39, n)::numeric, 8) AS bgnbd,
       abs(segment.bgnbd_probability_of_purchases(c.m, 39, n)
           - prob_ref((c.m).r, (c.m).alpha, (c.m).a, (c.m).b, 39, n, false)) < 1e-12 AS bg_ok,
       round(segment.mbgnbd_probability_of_purchases(g.m, 39, n)::numeric, 8) AS mbgnbd,
       abs(segment.mbgnbd_probability_of_purchases(g.m, 39, n)
           - prob_ref((g.m).r, (g.m).alpha, (g.m).a, (g.m).b, 39, n, true)) < 1e-12 AS mbg_ok
  FROM bg_cdnow AS c, mbg_models AS g, generate_series(0, 10) AS n
 ORDER BY n;
-- Summed over n they approach 1; at t = 0 all mass is on n = 0.
SELECT round(sum(segment.bgnbd_probability_of_purchases(c.m, 39, n))::numeric, 10) AS bg_sum,
       round(sum(segment.mbgnbd_probability_of_purchases(g.m, 39, n))::numeric, 10) AS mbg_sum,
       round(sum(segment.bgnbd_probability_of_purchases(c.m, 520, n))::numeric, 10) AS bg_sum_10y
  FROM bg_cdnow AS c, mbg_models AS g, generate_series(0, 3000) AS n;
SELECT segment.bgnbd_probability_of_purchases(m, 0, 0) AS p0, segment.bgnbd_probability_of_purchases(m, 0, 2) AS p2
  FROM bg_cdnow;

-- Small fixed data set: deterministic fits.
CREATE TABLE fit_customers (id int, x int, t_x float8, t_cal float8);
INSERT INTO fit_customers VALUES
    (1, 0, 0, 30), (2, 1, 10, 30), (3, 3, 25, 30), (4, 0, 0, 25), (5, 2, 5, 25),
    (6, 5, 20, 22), (7, 0, 0, 20), (8, 1, 2, 20), (9, 4, 18, 19), (10, 0, 0, 15),
    (11, 2, 14, 15), (12, 0, 0, 10), (13, 1, 9, 10), (14, 0, 0, 5), (15, 6, 29, 30),
    (16, 1, 3, 28), (17, 0, 0, 28), (18, 2, 8, 26), (19, 0, 0, 12), (20, 3, 11, 12);
-- Twenty customers do not identify the models (the parameters run off
-- along a ridge): the fits end, in bounded time, and say they did not
-- converge (test/clv_cdnow.sql checks converged fits on CDNOW).
SELECT f.customers, g.customers, f.log_likelihood < 0 AS pnbd_ll, g.log_likelihood < 0 AS mbg_ll
  FROM (SELECT (segment.pareto_nbd_fit(x, t_x, t_cal)).* FROM fit_customers) AS f,
       (SELECT (segment.mbgnbd_fit(x, t_x, t_cal)).* FROM fit_customers) AS g;
-- no rows, or only NULL rows: NULL
SELECT segment.pareto_nbd_fit(x, t_x, t_cal) IS NULL AS empty_null FROM fit_customers WHERE false;
SELECT segment.mbgnbd_fit(NULL, 1, 2) IS NULL AS null_rows_null;

-- Errors: fits that cannot be made.
SELECT segment.pareto_nbd_fit(0, 0, t_cal) FROM fit_customers;
SELECT segment.mbgnbd_fit(0, 0, t_cal) FROM fit_customers;
SELECT segment.pareto_nbd_fit(2, 0, 10);
SELECT segment.pareto_nbd_fit('NaN', 1, 10);
SELECT segment.mbgnbd_fit(1, 'Infinity', 10);
SELECT segment.mbgnbd_fit(1, 5, 10, -1);

-- Errors: crafted models (NaN, infinite, negative, zero, NULL parameters).
SELECT segment.pareto_nbd_p_alive(ROW('NaN', 10, 0.6, 11, NULL, NULL, NULL, NULL), 1, 2, 3);
SELECT segment.pareto_nbd_p_alive(ROW(0.5, 'Infinity', 0.6, 11, NULL, NULL, NULL, NULL), 1, 2, 3);
SELECT segment.pareto_nbd_expected_purchases(ROW(0.5, 10, -0.6, 11, NULL, NULL, NULL, NULL), 39, 1, 2, 3);
SELECT segment.pareto_nbd_log_likelihood(ROW(0.5, 10, 0.6, NULL, NULL, NULL, NULL, NULL), 1, 2, 3);
SELECT segment.mbgnbd_p_alive(ROW(0.5, 10, 0, 2, NULL, NULL, NULL, NULL), 1, 2, 3);
SELECT segment.mbgnbd_expected_purchases(ROW(0.5, 10, 0.8, '-Infinity', NULL, NULL, NULL, NULL), 39, 1, 2, 3);
SELECT segment.mbgnbd_probability_of_purchases(ROW('NaN', 10, 0.8, 2, NULL, NULL, NULL, NULL), 39, 1);
SELECT segment.bgnbd_probability_of_purchases(ROW(0.5, -10, 0.8, 2, NULL, NULL, NULL, NULL), 39, 1);
-- Errors: arguments.
SELECT segment.bgnbd_probability_of_purchases(m, 39, -1) FROM bg_cdnow;
SELECT segment.bgnbd_probability_of_purchases(m, 39, 1.5) FROM bg_cdnow;
SELECT segment.bgnbd_probability_of_purchases(m, 39, 'NaN') FROM bg_cdnow;
SELECT segment.bgnbd_probability_of_purchases(m, 39, 1e12) FROM bg_cdnow;
SELECT segment.bgnbd_probability_of_purchases(m, 'Infinity', 1) FROM bg_cdnow;
SELECT segment.mbgnbd_probability_of_purchases(g.m, -1, 1) FROM mbg_models AS g;
SELECT segment.pareto_nbd_p_alive(m, 1, 5, 3) FROM pnbd_models WHERE id = 1;
SELECT segment.pareto_nbd_expected_purchases(m, -1, 1, 2, 3) FROM pnbd_models WHERE id = 1;
SELECT segment.mbgnbd_p_alive(m, 1.5, 2, 3) FROM mbg_models;
-- alpha and beta too far apart for the series: an error, not a hang
SELECT segment.pareto_nbd_p_alive(ROW(0.5, 1e9, 0.6, 1, NULL, NULL, NULL, NULL), 0, 0, 3);

-- Errors: crafted aggregate states, fed through user-made aggregates.
CREATE AGGREGATE bad_pnbd(double precision[]) (
    SFUNC = array_cat, STYPE = double precision[], FINALFUNC = segment_internal.pareto_nbd_fit_final);
CREATE AGGREGATE bad_mbg(double precision[]) (
    SFUNC = array_cat, STYPE = double precision[], FINALFUNC = segment_internal.mbgnbd_fit_final);
CREATE AGGREGATE bad_combine(double precision[]) (
    SFUNC = segment_internal.clv_fit_combine, STYPE = double precision[]);
SELECT bad_pnbd('{1,3,1,0,0,0,1,0.5,2}'::float8[]);      -- a BG/NBD state
SELECT bad_mbg('{1,3,5,0,0,0,1,0.5,2}'::float8[]);       -- a Pareto/NBD state
SELECT bad_pnbd('{1,3,5,0.1,0,0,1,0.5,2}'::float8[]);    -- a penalizer
SELECT bad_pnbd('{1,3,5,0,0,0,NaN,0.5,2}'::float8[]);    -- a NaN row
SELECT bad_pnbd('{1,3,5,0,0,0,1,Infinity,2}'::float8[]); -- an infinite row
SELECT bad_pnbd('{1,3,5,0,0,0,-1,0,2}'::float8[]);       -- a negative x
SELECT bad_pnbd('{2,3,5,0,0,0,1,0.5,2}'::float8[]);      -- count beyond the array
SELECT bad_pnbd('{1,4,5,0,0,0,1,0.5,2,0}'::float8[]);    -- wrong row width
SELECT bad_pnbd('{1,3,5,0,0}'::float8[]);                -- shorter than the header
SELECT bad_pnbd('{NaN,3,5,0,0,0,1,0.5,2}'::float8[]);    -- NaN count
SELECT bad_mbg('{1,3,4,0,0,0,1,3,2}'::float8[]);         -- t_x > T
SELECT bad_mbg('{1,3,4,0,0,0,1,0,2}'::float8[]);         -- x > 0 at t_x = 0
SELECT bad_mbg('{1,3,4,NaN,0,0,1,0.5,2}'::float8[]);     -- NaN penalizer
SELECT bad_combine(s) FROM (VALUES ('{1,3,5,0,0,0,1,0.5,2}'::float8[]),
                                   ('{1,3,4,0,0,0,1,0.5,2}'::float8[])) AS v(s);  -- mixed kinds
SELECT bad_combine(s) FROM (VALUES ('{1,3,5,0,0,0,1,0.5,2}'::float8[]),
                                   ('{1,3,9,0,0,0,1,0.5,2}'::float8[])) AS v(s);  -- unknown kind
-- the support functions cannot be called outside an aggregate
SELECT r > 0 AS direct_call
  FROM segment_internal.pareto_nbd_fit_final(NULL::float8[]) AS f WHERE false;
DROP AGGREGATE bad_pnbd(double precision[]);
DROP AGGREGATE bad_mbg(double precision[]);
DROP AGGREGATE bad_combine(double precision[]);

-- Holdout validation on a small shop: the shape of the table, its totals,
-- and its errors.  (The CDNOW table is checked in test/clv_cdnow_models.sql.)
CREATE TABLE "Holdout Orders" ("Customer" int, "Ordered At" timestamptz);
INSERT INTO "Holdout Orders"
SELECT c, timestamptz '2024-01-01 12:00+00' + ((c * 7 + k * (3 + c % 11)) % 200) * interval '1 day'
  FROM generate_series(1, 300) AS c, generate_series(0, c % 6) AS k;
SET TimeZone = 'UTC';
SELECT model, calibration_purchases, customers,
       round(actual_mean::numeric, 3) AS actual, predicted_mean >= 0 AS predicted_ok
  FROM segment.clv_holdout('"Holdout Orders"', 'Customer', 'Ordered At', '2024-05-31', '2024-07-31',
                           'day')
 WHERE calibration_purchases IN ('0', 'total');
SELECT count(*) AS rows, count(DISTINCT model) AS models
  FROM segment.clv_holdout('"Holdout Orders"', 'Customer', 'Ordered At', '2024-05-31', '2024-07-31');
SELECT model, customers, actual_total, bucket_mae >= 0 AS mae_ok, total_error > -1 AS error_ok
  FROM segment.clv_holdout_errors('"Holdout Orders"', 'Customer', 'Ordered At', '2024-05-31',
                                  '2024-07-31');
RESET TimeZone;
SELECT * FROM segment.clv_holdout('"Holdout Orders"', 'Customer', 'Ordered At', '2024-05-31', '2024-05-31');
SELECT * FROM segment.clv_holdout('"Holdout Orders"', 'Customer', 'Ordered At', '2024-05-31', '2024-07-31', 'month');
SELECT * FROM segment.clv_holdout('"Holdout Orders"', 'Customer', NULL, '2024-05-31', '2024-07-31');
SELECT * FROM segment.clv_holdout('"Holdout Orders"', 'Customer', 'nowhere', '2024-05-31', '2024-07-31');
SELECT * FROM segment.clv_holdout('"Holdout Orders"', 'Customer', 'Customer', '2024-05-31', '2024-07-31');
-- an identifier is quoted, never interpolated
SELECT * FROM segment.clv_holdout('"Holdout Orders"', 'Customer"; DROP TABLE x; --', 'Ordered At',
                                  '2024-05-31', '2024-07-31');
-- the relation is read with the caller's privileges
CREATE ROLE regress_holdout_reader;
GRANT USAGE ON SCHEMA segment TO regress_holdout_reader;
SET ROLE regress_holdout_reader;
\set VERBOSITY terse
SELECT * FROM segment.clv_holdout('"Holdout Orders"', 'Customer', 'Ordered At', '2024-05-31', '2024-07-31');
\set VERBOSITY default
RESET ROLE;
REVOKE USAGE ON SCHEMA segment FROM regress_holdout_reader;
DROP ROLE regress_holdout_reader;
