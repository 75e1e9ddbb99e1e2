-- Pareto/NBD P(X(t) = n) (pareto_nbd_probability_of_purchases): the
-- probabilities over n sum to 1, and their mean is the model's expected
-- number of purchases E[X(t)] = r beta / (alpha (s - 1)) (1 - (beta/(beta+t))^(s-1))
-- (Fader and Hardie 2005, "A note on deriving the Pareto/NBD model and
-- related expressions", eq. 17), a closed form independent of the pmf's
-- hypergeometric series; at the published CDNOW parameters (r 0.553,
-- alpha 10.578, s 0.606, beta 11.669) and with alpha and beta swapped (the
-- expression's other case).
\set ON_ERROR_STOP 1
BEGIN;
SELECT plan(10);

CREATE TEMP TABLE models AS
SELECT name, ROW(r, alpha, s, beta, NULL, NULL, true, NULL)::segment.pareto_nbd_model AS m, r, alpha, s, beta
  FROM (VALUES ('CDNOW', 0.553, 10.578, 0.606, 11.669),
               ('alpha < beta', 0.553, 10.578, 0.606, 31.0),
               ('alpha > beta', 1.2, 30.0, 2.5, 8.0)) AS v(name, r, alpha, s, beta);
CREATE TEMP TABLE pmf AS
SELECT name, t, n, segment.pareto_nbd_probability_of_purchases(m, t, n) AS p
  FROM models, (VALUES (39.0), (78.0)) AS h(t), generate_series(0, 300) AS n;

SELECT is((SELECT count(*) FROM (SELECT name, t, sum(p) AS total FROM pmf GROUP BY 1, 2) AS x
            WHERE abs(total - 1) > 1e-6), 0::bigint,
          'the probabilities of 0..300 purchases sum to 1, for every model and horizon');
SELECT is((SELECT count(*) FROM (SELECT name, t, sum(n * p) AS mean FROM pmf GROUP BY 1, 2) AS x
            JOIN models USING (name)
            WHERE abs(mean - r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ^ (s - 1)))
                  > 1e-6 * mean), 0::bigint,
          'their mean is the closed-form E[X(t)], for every model and horizon');
SELECT ok((SELECT bool_and(p >= 0 AND p <= 1) FROM pmf), 'every probability lies in [0, 1]');
SELECT ok((SELECT p FROM pmf WHERE name = 'CDNOW' AND t = 39 AND n = 0)
          > (SELECT p FROM pmf WHERE name = 'CDNOW' AND t = 39 AND n = 1),
          'CDNOW: no purchase in 39 weeks is the likeliest count');
SELECT is(segment.pareto_nbd_probability_of_purchases((SELECT m FROM models WHERE name = 'CDNOW'), 0, 0), 1::float8,
          'nothing happens in no time: P(0) = 1');
SELECT is(segment.pareto_nbd_probability_of_purchases((SELECT m FROM models WHERE name = 'CDNOW'), 0, 3), 0::float8,
          'and P(3) = 0');
SELECT throws_ok($$SELECT segment.pareto_nbd_probability_of_purchases((SELECT m FROM models WHERE name = 'CDNOW'), 39, -1)$$,
                 '22023', NULL, 'a negative n: an error');
SELECT throws_ok($$SELECT segment.pareto_nbd_probability_of_purchases((SELECT m FROM models WHERE name = 'CDNOW'), 39, 2.5)$$,
                 '22023', NULL, 'a fractional n: an error');
SELECT throws_ok($$SELECT segment.pareto_nbd_probability_of_purchases((SELECT m FROM models WHERE name = 'CDNOW'), 39, 100001)$$,
                 '54000', NULL, 'n beyond the limit: an error');
SELECT throws_ok($$SELECT segment.pareto_nbd_probability_of_purchases(ROW(0.5, 'NaN', 0.6, 11, NULL, NULL, true, NULL)::segment.pareto_nbd_model, 39, 1)$$,
                 '22023', NULL, 'a crafted model with a NaN parameter: an error');

SELECT * FROM finish();
ROLLBACK;
