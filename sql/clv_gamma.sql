-- Gamma-Gamma spend model and customer lifetime value.  References from an
-- independent computation (mpmath, 30 digits) with the published CDNOW
-- parameters: BG/NBD (0.243, 4.414, 0.793, 2.426), Gamma-Gamma (6.25, 3.74, 15.44).
CREATE TABLE gg_models AS
SELECT ROW(0.243, 4.414, 0.793, 2.426, NULL, NULL, NULL, NULL)::segment.bgnbd_model AS bg,
       ROW(6.25, 3.74, 15.44, NULL, NULL, NULL, NULL)::segment.gamma_gamma_model AS gg;

-- Expected average order value: p (v + x m) / (p x + q - 1); the population
-- mean p v / (q - 1) for a one-time buyer, whatever the mean value given.
SELECT x, m, round(segment.gamma_gamma_expected_value(gg, x, m)::numeric, 10) AS value,
       abs(segment.gamma_gamma_expected_value(gg, x, m) / ref - 1) < 1e-13 AS ok
  FROM gg_models, (VALUES (2, 22.35, 24.6637139107612), (0, 0, 35.2189781021898),
                       (0, 99, 35.2189781021898), (10, 50, 49.3792152053955)) AS v(x, m, ref);

-- CLV as lifetimes' customer_lifetime_value: monthly steps of 4.345 weeks or
-- 30 days, discounted monthly.
SELECT round(segment.clv(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, 'week')::numeric, 8) AS clv_1,
       abs(segment.clv(bg, gg, 2, 30.43, 38.86, 22.35, 12, 0.01, 'week') / 36.2892111255992 - 1) < 1e-11 AS ok_1,
       round(segment.clv(bg, gg, 0, 0, 38.86, 0, 24, 0.02, 'week')::numeric, 8) AS clv_2,
       abs(segment.clv(bg, gg, 0, 0, 38.86, 0, 24, 0.02, 'week') / 12.8490365342716 - 1) < 1e-11 AS ok_2,
       round(segment.clv(bg, gg, 5, 200, 250, 40, 6, 0)::numeric, 8) AS clv_3,
       abs(segment.clv(bg, gg, 5, 200, 250, 40, 6, 0) / 88.6782737284837 - 1) < 1e-11 AS ok_3
  FROM gg_models;

-- Defaults: 12 months, 1% a month, model time in days.  No horizon, no value;
-- without discount, 12 months of one unit = the expectation over 12 months.
SELECT segment.clv(bg, gg, 2, 30, 40, 20) = segment.clv(bg, gg, 2, 30, 40, 20, 12, 0.01, 'day') AS defaults,
       segment.clv(bg, gg, 2, 30, 40, 20, 0) AS zero_months,
       abs(segment.clv(bg, gg, 2, 30, 40, 20, 3, 0, 'month')
           - segment.gamma_gamma_expected_value(gg, 2, 20)
             * segment.bgnbd_expected_purchases(bg, 3, 2, 30, 40)) < 1e-12 AS undiscounted
  FROM gg_models;

-- Fit on a small fixed data set; one-time buyers and NULLs are skipped.
CREATE TABLE gg_customers (x int, m float8);
INSERT INTO gg_customers VALUES
    (1, 12.5), (2, 30.0), (1, 8.0), (4, 22.0), (3, 15.5), (1, 40.0), (2, 11.0), (6, 19.0),
    (1, 25.0), (2, 60.0), (3, 9.5), (1, 14.0), (5, 33.0), (2, 17.5), (1, 21.0), (2, 27.0),
    (0, 0), (0, 0), (NULL, 5), (1, NULL);
SELECT round(p::numeric, 3) AS p, round(q::numeric, 3) AS q, round(v::numeric, 3) AS v,
       round(log_likelihood::numeric, 4) AS ll, converged, customers
  FROM (SELECT (segment.gamma_gamma_fit(x, m)).* FROM gg_customers) AS f;
SELECT p.p ^ 2 + p.q ^ 2 + p.v ^ 2 < f.p ^ 2 + f.q ^ 2 + f.v ^ 2 AS penalty_shrinks,
       p.log_likelihood < f.log_likelihood AS penalty_costs
  FROM (SELECT (segment.gamma_gamma_fit(x, m)).* FROM gg_customers) AS f,
       (SELECT (segment.gamma_gamma_fit(x, m, 0.001)).* FROM gg_customers) AS p;

-- No rows, only NULLs: NULL.  Only one-time buyers: an error.
SELECT segment.gamma_gamma_fit(x, m) IS NULL AS no_rows FROM gg_customers WHERE false;
SELECT segment.gamma_gamma_fit(x, m) IS NULL AS only_nulls FROM gg_customers WHERE x IS NULL;
SELECT segment.gamma_gamma_fit(x, m) FROM gg_customers WHERE x = 0;

-- Errors: bad rows, bad gg_models, bad CLV arguments.
SELECT segment.gamma_gamma_fit(x, m) FROM (VALUES (2, -5.0)) AS v(x, m);
SELECT segment.gamma_gamma_fit(x, m) FROM (VALUES (2, 0.0)) AS v(x, m);
SELECT segment.gamma_gamma_fit(x, m) FROM (VALUES (-2, 5.0)) AS v(x, m);
SELECT segment.gamma_gamma_fit(x, m) FROM (VALUES (2.5, 5.0)) AS v(x, m);
SELECT segment.gamma_gamma_fit(x, m) FROM (VALUES (2, 'NaN'::float8)) AS v(x, m);
SELECT segment.gamma_gamma_fit(x, m, -1) FROM gg_customers;
SELECT segment.gamma_gamma_expected_value(ROW(6, 0.9, 15, NULL, NULL, NULL, NULL), 1, 10);
SELECT segment.gamma_gamma_expected_value(ROW(6, 1, 15, NULL, NULL, NULL, NULL), 1, 10);
SELECT segment.gamma_gamma_expected_value(ROW(NULL, 3, 15, NULL, NULL, NULL, NULL), 1, 10);
SELECT segment.gamma_gamma_expected_value(gg, 2, -3) FROM gg_models;
SELECT segment.gamma_gamma_expected_value(gg, -1, 3) FROM gg_models;
SELECT segment.clv(bg, gg, 2, 30, 40, 20, -1) FROM gg_models;
SELECT segment.clv(bg, gg, 2, 30, 40, 20, 12, -1) FROM gg_models;
SELECT segment.clv(bg, gg, 2, 30, 40, 20, 12, 'NaN') FROM gg_models;
SELECT segment.clv(bg, gg, 2, 30, 40, 20, 12, 0.01, 'fortnight') FROM gg_models;
SELECT segment.clv(bg, gg, 2, 50, 40, 20) FROM gg_models;
SELECT segment.clv(bg, gg, 2, 30, 40, 20, NULL) IS NULL AS strict FROM gg_models;

-- The per-customer log-likelihood sums to the fit's (two implementations).
SELECT abs(sum(segment.gamma_gamma_log_likelihood(f.model, c.x, c.m)) - (f.model).log_likelihood)
           < 1e-9 AS ll_sums
  FROM gg_customers AS c,
       (SELECT segment.gamma_gamma_fit(x, m) AS model FROM gg_customers) AS f
 WHERE c.x > 0
 GROUP BY f.model;
SELECT segment.gamma_gamma_log_likelihood(gg, 0, 10) FROM gg_models;
SELECT segment.gamma_gamma_log_likelihood(gg, 2, 0) FROM gg_models;
SELECT segment.gamma_gamma_log_likelihood(ROW(1, -1, 1, NULL, NULL, NULL, NULL), 2, 3);

-- clv() evaluates all months in one series pass; the same sum written with
-- bgnbd_expected_purchases (one series per horizon) agrees, also for
-- frequent customers (x in the hundreds), short and long histories, and a
-- model with a = 1 (the removable singularity, where both are good to about
-- 1e-8 only).
WITH bgs(bg) AS (
    SELECT bg FROM gg_models
    UNION ALL SELECT ROW(0.5, 5, 1, 2, NULL, NULL, NULL, NULL)::segment.bgnbd_model
    UNION ALL SELECT ROW(2.0, 30, 3.5, 8, NULL, NULL, NULL, NULL)::segment.bgnbd_model
), customers(x, t_x, t_cal, m) AS (
    VALUES (0, 0, 0, 0), (0, 0, 300, 0), (1, 2, 3, 10), (3, 200, 365, 25), (40, 700, 710, 60),
           (250, 300, 310, 30), (600, 720, 730, 15), (5, 1, 700, 80)
)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE abs(c.v - r.v) <= 1e-8 * greatest(abs(r.v), 1e-3)) AS equal
  FROM bgs, customers AS cu, gg_models AS g,
       LATERAL (SELECT segment.clv(bgs.bg, g.gg, cu.x, cu.t_x, cu.t_cal, cu.m, 24, 0.015, 'day') AS v) AS c,
       LATERAL (SELECT sum(segment.gamma_gamma_expected_value(g.gg, cu.x, cu.m)
                           * (segment.bgnbd_expected_purchases(bgs.bg, 30 * k, cu.x, cu.t_x, cu.t_cal)
                              - segment.bgnbd_expected_purchases(bgs.bg, 30 * (k - 1), cu.x, cu.t_x, cu.t_cal))
                           / 1.015 ^ k) AS v
                  FROM generate_series(1, 24) AS k) AS r;
-- More months than one series pass takes (64): chunks give the same sum.
SELECT abs(segment.clv(bg, gg, 3, 20, 40, 25, 100, 0.01, 'week')
           - (SELECT sum(segment.gamma_gamma_expected_value(gg, 3, 25)
                         * (segment.bgnbd_expected_purchases(bg, 4.345 * k, 3, 20, 40)
                            - segment.bgnbd_expected_purchases(bg, 4.345 * (k - 1), 3, 20, 40))
                         / 1.01 ^ k) FROM generate_series(1, 100) AS k)) < 1e-9 AS chunks_equal
  FROM gg_models;
