-- Lifetime value in the pipeline with each purchase model: BG/NBD (the
-- default), MBG/NBD and Pareto/NBD (configure(clv_model => ...)); the model
-- each refresh used is in its log; the predictions are the primitives'
-- (p_alive, expected purchases) and the lifetime value the same discounted
-- monthly sum as segment.clv() computes for BG/NBD; choose_clv_model() picks
-- one by a holdout test on the segmentation's orders.
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(18);
SET LOCAL TimeZone = 'UTC';

CREATE SCHEMA tap_clvm;
-- 600 customers with a personal pace, chance of leaving after each order and
-- basket, ordering through 2024 and 2025.
SELECT setseed(0.25);
CREATE TABLE tap_clvm.customers AS
SELECT id AS customer_id, timestamptz '2024-01-01' + random() * interval '360 days' AS first_order,
       5 + 90 * random() ^ 2 AS pace_days, 0.05 + 0.4 * random() AS churn, 15 + 100 * random() ^ 2 AS basket
  FROM generate_series(1, 600) AS id;
CREATE TABLE tap_clvm.orders AS
WITH RECURSIVE o(customer_id, ordered_at, pace_days, churn, basket, alive) AS (
    SELECT customer_id, first_order, pace_days, churn, basket, true FROM tap_clvm.customers
  UNION ALL
    SELECT customer_id, ordered_at - ln(1 - random()) * pace_days * interval '1 day', pace_days, churn, basket,
           random() >= churn
      FROM o WHERE alive AND ordered_at < '2026-01-01')
SELECT customer_id, ordered_at, round((basket * (0.5 + random()))::numeric, 2) AS amount, 'paid'::text AS status
  FROM o WHERE ordered_at < '2026-01-01';

SELECT lives_ok($$
    SELECT segment.configure('tap_clvm.orders', 'customer_id', 'ordered_at', 'amount', segmentation => 'm_' || m,
                             clv => true, clv_model => m, is_default => false)
      FROM unnest(ARRAY['bgnbd', 'mbgnbd', 'pareto_nbd']) AS m$$,
    'a segmentation per purchase model');
SELECT throws_ok($$SELECT segment.configure('tap_clvm.orders', 'customer_id', 'ordered_at', 'amount',
                                            segmentation => 'bad', clv => true, clv_model => 'paretonbd')$$,
                 '22023', 'invalid lifetime-value model "paretonbd"', 'an unknown model: an error');
SELECT throws_ok($$SELECT segment.configure('tap_clvm.orders', 'customer_id', 'ordered_at', 'amount',
                                            segmentation => 'bad', clv => true, clv_model => 'pareto_nbd',
                                            clv_penalizer => 0.01)$$,
                 '22023', 'clv_penalizer is not available with the Pareto/NBD model', 'Pareto/NBD with a penalizer: an error');

SET LOCAL client_min_messages = warning;
CREATE TEMP TABLE r AS
SELECT m, x.* FROM unnest(ARRAY['bgnbd', 'mbgnbd', 'pareto_nbd']) AS m,
       LATERAL segment.refresh('m_' || m, '2025-10-01') AS x;
RESET client_min_messages;

SELECT is((SELECT array_agg(clv_model || ':' || clv_status ORDER BY m) FROM r),
          ARRAY['bgnbd:fitted', 'mbgnbd:fitted', 'pareto_nbd:fitted'],
          'each refresh fitted its model and records which');
SELECT ok((SELECT bgnbd IS NOT NULL AND clv_fit = bgnbd FROM r WHERE m = 'bgnbd')
          AND (SELECT bgnbd IS NULL AND clv_fit ? 'beta' FROM r WHERE m = 'pareto_nbd'),
          'the fitted parameters are in clv_fit (and in bgnbd for BG/NBD only)');
SELECT ok((SELECT (mbgnbd).converged FROM segment.refresh_models WHERE segmentation = 'm_mbgnbd')
          AND (SELECT (pareto_nbd).converged FROM segment.refresh_models WHERE segmentation = 'm_pareto_nbd'),
          'refresh_models shows the MBG/NBD and Pareto/NBD fits in their types');

-- Each model's fit over the same summaries, by the aggregates themselves.
CREATE TEMP TABLE summary AS
SELECT customer_id, (s).*
  FROM (SELECT customer_id, segment.clv_summary(ordered_at, amount, '2025-10-01', 'day') AS s
          FROM tap_clvm.orders WHERE ordered_at <= '2025-10-01' GROUP BY customer_id) AS q;
SELECT is((SELECT clv_fit FROM r WHERE m = 'mbgnbd'),
          (SELECT to_jsonb(segment.mbgnbd_fit(x, t_x, t_cal)) FROM summary),
          'the refresh''s MBG/NBD fit is mbgnbd_fit over the customers'' summaries');
SELECT is((SELECT clv_fit FROM r WHERE m = 'pareto_nbd'),
          (SELECT to_jsonb(segment.pareto_nbd_fit(x, t_x, t_cal)) FROM summary),
          'the refresh''s Pareto/NBD fit is pareto_nbd_fit over the customers'' summaries');

-- The predictions of each profile are the model's functions.
SELECT is((SELECT count(*) FROM segment.profile_m_mbgnbd AS p JOIN summary AS c USING (customer_id)
            WHERE abs(p.p_alive - segment.mbgnbd_p_alive(
                      jsonb_populate_record(NULL::segment.mbgnbd_model, (SELECT clv_fit FROM r WHERE m = 'mbgnbd')),
                      c.x, c.t_x, c.t_cal)) > 1e-12),
          0::bigint, 'MBG/NBD: p_alive of every customer is mbgnbd_p_alive');
SELECT is((SELECT count(*) FROM segment.profile_m_pareto_nbd AS p JOIN summary AS c USING (customer_id)
            WHERE abs(p.expected_purchases - segment.pareto_nbd_expected_purchases(
                      jsonb_populate_record(NULL::segment.pareto_nbd_model, (SELECT clv_fit FROM r WHERE m = 'pareto_nbd')),
                      360, c.x, c.t_x, c.t_cal)) > 1e-9 * (1 + p.expected_purchases)),
          0::bigint, 'Pareto/NBD: expected purchases over 12 months of 30 days are pareto_nbd_expected_purchases');

-- Lifetime value: the monthly discounted sum, written out here with the
-- BG/NBD functions, is what segment.clv() (C) gives: so the same sum over
-- the other models' expectations is the same definition.
CREATE FUNCTION pg_temp.monthly_sum(model text, fit jsonb, gg jsonb, x float8, t_x float8, t_cal float8, v float8)
    RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    total float8 := 0;
    prev  float8 := 0;
    cum   float8;
BEGIN
    FOR k IN 1..12 LOOP
        EXECUTE format('SELECT segment.%s_expected_purchases(jsonb_populate_record(NULL::segment.%s_model, $1), $2, $3, $4, $5)',
                       model, model)
           INTO cum USING fit, 30.0 * k, x, t_x, t_cal;
        total := total + (cum - prev) / 1.01 ^ k;
        prev := cum;
    END LOOP;
    RETURN total * segment.gamma_gamma_expected_value(jsonb_populate_record(NULL::segment.gamma_gamma_model, gg), x, v);
END
$$;
SELECT is((SELECT count(*) FROM segment.profile_m_bgnbd AS p JOIN summary AS c USING (customer_id)
            WHERE abs(p.clv - pg_temp.monthly_sum('bgnbd', (SELECT clv_fit FROM r WHERE m = 'bgnbd'),
                                                  (SELECT gamma_gamma FROM r WHERE m = 'bgnbd'),
                                                  c.x, c.t_x, c.t_cal, c.mean_value)) > 1e-9 * (1 + p.clv)),
          0::bigint, 'the monthly discounted sum written out equals segment.clv() for BG/NBD');
SELECT is((SELECT count(*) FROM segment.profile_m_mbgnbd AS p JOIN summary AS c USING (customer_id)
            WHERE abs(p.clv - pg_temp.monthly_sum('mbgnbd', (SELECT clv_fit FROM r WHERE m = 'mbgnbd'),
                                                  (SELECT gamma_gamma FROM r WHERE m = 'mbgnbd'),
                                                  c.x, c.t_x, c.t_cal, c.mean_value)) > 1e-9 * (1 + p.clv)),
          0::bigint, 'and the MBG/NBD profile''s clv is that sum');
SELECT is((SELECT count(*) FROM segment.profile_m_pareto_nbd WHERE frequency > 0 AND clv IS NULL), 0::bigint,
          'every Pareto/NBD buyer has a lifetime value');

-- Choosing by a holdout test: calibration to 2025-06-30, holdout to 2025-12-31.
SELECT is((SELECT count(*) FROM segment.choose_clv_model('2025-06-30', '2025-12-31', 'm_bgnbd')), 3::bigint,
          'choose_clv_model() reports the three models');
SELECT is((SELECT clv_model FROM segment.segmentations WHERE name = 'm_bgnbd'),
          (SELECT model FROM segment.clv_holdout_errors('tap_clvm.orders', 'customer_id', 'ordered_at',
                                                         '2025-06-30', '2025-12-31', 'day')
            ORDER BY bucket_mae LIMIT 1),
          'and sets the one with the smallest holdout error');
-- Another role may not choose a segmentation's model, nor name an unknown one.
CREATE ROLE tap_clvm_other;
GRANT USAGE ON SCHEMA tap_clvm TO tap_clvm_other;
GRANT SELECT ON tap_clvm.orders TO tap_clvm_other;
SET LOCAL ROLE tap_clvm_other;
SELECT throws_ok($$SELECT * FROM segment.choose_clv_model('2025-06-30', '2025-12-31', 'm_bgnbd')$$,
                 '42501', NULL, 'a role without the owner''s privileges cannot choose the model');
RESET ROLE;
SELECT throws_ok($$SELECT * FROM segment.choose_clv_model('2025-06-30', '2025-12-31', 'no_such')$$,
                 '42704', NULL, 'an unknown segmentation: an error');
SET LOCAL client_min_messages = warning;
SELECT is((SELECT clv_model FROM segment.refresh('m_bgnbd', '2025-10-01')),
          (SELECT clv_model FROM segment.segmentations WHERE name = 'm_bgnbd'),
          'which the next refresh uses and records');
RESET client_min_messages;

SELECT * FROM finish();
ROLLBACK;
