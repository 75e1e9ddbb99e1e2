-- Over 50,000 distinct histories or more, the BG/NBD and Gamma-Gamma fits
-- start from a fit of a sample of them (every stride-th distinct row, its
-- curvature too: src/clv_optim.c clv_warm_start()): a few passes over all
-- the rows instead of some twenty-five.  What must hold is what a cold
-- start gives: the fit converges to the maximum of the whole likelihood (no
-- parameter moved by 1e-4 either way raises it, summed customer by customer
-- with the public log-likelihood functions), and the reported
-- log-likelihood is that sum; the fit does not depend on the rows' order.
BEGIN;
SELECT plan(7);
SELECT setseed(0.61);
-- 160,000 customers of a BG/NBD shop in days (a personal rate, a chance of
-- leaving after each purchase), summarised directly: x repeat purchases,
-- t_x the last one's age, T the first one's, whole days up to two years.
CREATE TEMP TABLE tap_fw AS
SELECT i, x, CASE WHEN x = 0 THEN 0 ELSE least(t_cal, greatest(x, floor(t_cal * (1 - random() ^ (x + 1))))) END AS t_x,
       t_cal, CASE WHEN x = 0 THEN 0 ELSE round((10 + 90 * random() ^ 2)::numeric, 2)::double precision END AS mean_value
  FROM (SELECT i, t_cal, least(60, t_cal, floor(-ln(1 - random()) * t_cal / (8 + 60 * random())
                                             * (random() < 0.7)::int)) AS x
          FROM (SELECT i, 1 + floor(random() * 730) AS t_cal FROM generate_series(1, 160000) AS i) AS c) AS s;
SELECT ok((SELECT count(DISTINCT (x, t_x, t_cal)) >= 50000 AND count(DISTINCT (x, mean_value)) FILTER (WHERE x > 0) >= 50000
             FROM tap_fw),
          'over 50,000 distinct histories and repeat spends: the fits start from a sample');

CREATE TEMP TABLE tap_fw_bg AS SELECT segment.bgnbd_fit(x, t_x, t_cal) AS m FROM tap_fw;
CREATE TEMP TABLE tap_fw_gg AS
SELECT segment.gamma_gamma_fit(x, mean_value) FILTER (WHERE x = 0 OR mean_value > 0) AS m FROM tap_fw;
SELECT ok((SELECT (m).converged FROM tap_fw_bg) AND (SELECT (m).converged FROM tap_fw_gg), 'both fits converge');

-- The whole log-likelihood at the model, and at the model with one
-- parameter moved by a factor 1 +- 1e-4 (the largest of the eight).
CREATE FUNCTION pg_temp.bg_ll(m segment.bgnbd_model) RETURNS double precision LANGUAGE sql AS
$$ SELECT sum(segment.bgnbd_log_likelihood(m, x, t_x, t_cal)) FROM tap_fw $$;
CREATE FUNCTION pg_temp.gg_ll(m segment.gamma_gamma_model) RETURNS double precision LANGUAGE sql AS
$$ SELECT sum(segment.gamma_gamma_log_likelihood(m, x, mean_value)) FROM tap_fw WHERE x > 0 $$;
SELECT cmp_ok((SELECT pg_temp.bg_ll(m) FROM tap_fw_bg), '>=',
              (SELECT max(pg_temp.bg_ll(((m).r * CASE k WHEN 1 THEN f ELSE 1 END, (m).alpha * CASE k WHEN 2 THEN f ELSE 1 END,
                                          (m).a * CASE k WHEN 3 THEN f ELSE 1 END, (m).b * CASE k WHEN 4 THEN f ELSE 1 END,
                                          0, 0, true, 0)::segment.bgnbd_model))
                 FROM tap_fw_bg, generate_series(1, 4) AS k, unnest(ARRAY[1 - 1e-4, 1 + 1e-4]) AS f),
              'BG/NBD: no parameter moved by 1e-4 raises the likelihood');
SELECT cmp_ok((SELECT pg_temp.gg_ll(m) FROM tap_fw_gg), '>=',
              (SELECT max(pg_temp.gg_ll(((m).p * CASE k WHEN 1 THEN f ELSE 1 END, (m).q * CASE k WHEN 2 THEN f ELSE 1 END,
                                          (m).v * CASE k WHEN 3 THEN f ELSE 1 END, 0, 0, true, 0)::segment.gamma_gamma_model))
                 FROM tap_fw_gg, generate_series(1, 3) AS k, unnest(ARRAY[1 - 1e-4, 1 + 1e-4]) AS f),
              'Gamma-Gamma: no parameter moved by 1e-4 raises the likelihood');
SELECT ok((SELECT abs((m).log_likelihood - pg_temp.bg_ll(m)) <= 1e-9 * abs((m).log_likelihood) FROM tap_fw_bg),
          'BG/NBD: the reported log-likelihood is the whole one');
SELECT ok((SELECT abs((m).log_likelihood - pg_temp.gg_ll(m)) <= 1e-9 * abs((m).log_likelihood) FROM tap_fw_gg),
          'Gamma-Gamma: the reported log-likelihood is the whole one');
SELECT is((SELECT segment.bgnbd_fit(x, t_x, t_cal ORDER BY md5(i::text))::text FROM tap_fw),
          (SELECT m::text FROM tap_fw_bg), 'the same fit whatever the order of the rows');

SELECT * FROM finish();
ROLLBACK;
