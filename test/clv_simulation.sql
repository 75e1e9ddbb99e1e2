-- BG/NBD and Gamma-Gamma recover the parameters of data simulated from the
-- models themselves (seeded, so the data and the outcome are fixed), and the
-- predictions match what the simulation then did.
BEGIN;
SELECT plan(11);

-- Standard gamma variate (Marsaglia and Tsang 2000; shape < 1 by boosting).
CREATE FUNCTION pg_temp.rgamma(k float8) RETURNS float8 LANGUAGE plpgsql AS
$$
DECLARE
    d float8;
    c float8;
    z float8;
    v float8;
    u float8;
BEGIN
    IF k < 1 THEN
        RETURN pg_temp.rgamma(k + 1) * power(1 - random(), 1 / k);
    END IF;
    d := k - 1.0 / 3;
    c := 1 / sqrt(9 * d);
    LOOP
        z := sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random());
        v := power(1 + c * z, 3);
        u := 1 - random();
        IF v > 0 AND ln(u) < z * z / 2 + d - d * v + d * ln(v) THEN
            RETURN d * v;
        END IF;
    END LOOP;
END
$$;

-- BG/NBD customers (Fader, Hardie and Lee 2005, section 2): purchase rate
-- lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b); exponential gaps, and
-- after each repeat purchase the customer leaves with probability p.  Each
-- is observed for T in [t_lo, t_hi] after the first purchase, then for a holdout
-- of 26 more.  Spend: nu ~ Gamma(q, v), each purchase ~ Gamma(p, nu).
CREATE FUNCTION pg_temp.simulate(n int, r float8, alpha float8, a float8, b float8,
                                 gp float8, gq float8, gv float8,
                                 t_lo float8 DEFAULT 10, t_hi float8 DEFAULT 50)
    RETURNS TABLE (id int, x int, t_x float8, t_cal float8, mean_value float8,
                   alive boolean, holdout int)
    LANGUAGE plpgsql AS
$$
DECLARE
    lambda float8;
    p float8;
    g float8;
    nu float8;
    t float8;
    total float8;
BEGIN
    FOR i IN 1..n LOOP
        id := i;
        lambda := pg_temp.rgamma(r) / alpha;
        g := pg_temp.rgamma(a);
        p := g / (g + pg_temp.rgamma(b));
        nu := pg_temp.rgamma(gq) / gv;
        t_cal := t_lo + (t_hi - t_lo) * random();
        x := 0; t_x := 0; holdout := 0; total := 0; alive := true; t := 0;
        LOOP
            t := t - ln(1 - random()) / lambda;
            EXIT WHEN t > t_cal + 26;
            IF t <= t_cal THEN
                x := x + 1;
                t_x := t;
                total := total + pg_temp.rgamma(gp) / nu;
            ELSE
                holdout := holdout + 1;
            END IF;
            IF random() < p THEN
                alive := alive AND t > t_cal;
                EXIT;
            END IF;
        END LOOP;
        mean_value := CASE WHEN x > 0 THEN total / x ELSE 0 END;
        RETURN NEXT;
    END LOOP;
END
$$;

SELECT setseed(0.2005);
CREATE TEMP TABLE sim AS
SELECT * FROM pg_temp.simulate(20000, 0.5, 4.0, 0.6, 2.5, 4.0, 3.5, 20.0);
CREATE TEMP TABLE fit AS
SELECT segment.bgnbd_fit(x, t_x, t_cal) AS bg,
       segment.gamma_gamma_fit(x, mean_value) AS gg FROM sim;
CREATE TEMP TABLE truth AS
SELECT ROW(0.5, 4.0, 0.6, 2.5, NULL, NULL, NULL, NULL)::segment.bgnbd_model AS bg,
       ROW(4.0, 3.5, 20.0, NULL, NULL, NULL, NULL)::segment.gamma_gamma_model AS gg;

SELECT ok((bg).converged AND (gg).converged, 'both fits converge') FROM fit;

-- The fit's log-likelihood is the sum of the per-customer formula at its
-- parameters (two independent implementations), and at least the
-- likelihood at the true parameters (the optimiser found the maximum).
SELECT ok(abs(s.ll - (f.bg).log_likelihood) < 1e-6 * abs(s.ll),
          format('bgnbd_fit log-likelihood %s = sum of bgnbd_log_likelihood %s',
                 (f.bg).log_likelihood, s.ll))
  FROM fit AS f,
       (SELECT sum(segment.bgnbd_log_likelihood(f.bg, x, t_x, t_cal)) AS ll
          FROM sim, fit AS f) AS s;
SELECT ok(abs(s.ll - (f.gg).log_likelihood) < 1e-6 * abs(s.ll),
          format('gamma_gamma_fit log-likelihood %s = sum of gamma_gamma_log_likelihood %s',
                 (f.gg).log_likelihood, s.ll))
  FROM fit AS f,
       (SELECT sum(segment.gamma_gamma_log_likelihood(f.gg, x, mean_value)) AS ll
          FROM sim, fit AS f WHERE x > 0) AS s;

-- The true parameters lie in the 99.9% likelihood-ratio confidence region:
-- 2 (LL(fit) - LL(truth)) < chi-square quantile (4 df: 18.47, 3 df: 16.27).
SELECT ok(lr >= 0 AND lr < 18.47, format('BG/NBD: 0 <= 2 (LL(fit) - LL(truth)) = %s < 18.47', lr))
  FROM (SELECT 2 * ((f.bg).log_likelihood
                    - sum(segment.bgnbd_log_likelihood(t.bg, x, t_x, t_cal))) AS lr
          FROM sim, fit AS f, truth AS t GROUP BY f.bg) AS s;
SELECT ok(lr >= 0 AND lr < 16.27, format('Gamma-Gamma: 0 <= 2 (LL(fit) - LL(truth)) = %s < 16.27', lr))
  FROM (SELECT 2 * ((f.gg).log_likelihood
                    - sum(segment.gamma_gamma_log_likelihood(t.gg, x, mean_value))) AS lr
          FROM sim, fit AS f, truth AS t WHERE x > 0 GROUP BY f.gg) AS s;

-- And each parameter near its true value (a loose bound: 20,000 customers).
SELECT ok(abs((bg).r / 0.5 - 1) < 0.1 AND abs((bg).alpha / 4.0 - 1) < 0.15,
          format('purchase rate: r = %s (0.5), alpha = %s (4.0)', (bg).r, (bg).alpha)) FROM fit;
SELECT ok(abs((bg).a / 0.6 - 1) < 0.25 AND abs((bg).b / 2.5 - 1) < 0.3,
          format('dropout: a = %s (0.6), b = %s (2.5)', (bg).a, (bg).b)) FROM fit;
SELECT ok(abs((gg).p / 4.0 - 1) < 0.15 AND abs((gg).q / 3.5 - 1) < 0.25 AND abs((gg).v / 20.0 - 1) < 0.3,
          format('spend: p = %s (4.0), q = %s (3.5), v = %s (20.0)', (gg).p, (gg).q, (gg).v)) FROM fit;

-- Predictions against what the simulated customers then did: purchases in
-- the 26-week holdout, share still alive at T, spend of a new purchase.
SELECT ok(abs(e / h - 1) < 0.05,
          format('expected holdout purchases %s vs simulated %s', round(e::numeric, 1), h))
  FROM (SELECT sum(segment.bgnbd_expected_purchases(f.bg, 26, x, t_x, t_cal)) AS e,
               sum(holdout) AS h FROM sim, fit AS f) AS s;
SELECT ok(abs(e - h) < 0.01,
          format('mean probability alive %s vs simulated share alive %s',
                 round(e::numeric, 4), round(h::numeric, 4)))
  FROM (SELECT avg(segment.bgnbd_p_alive(f.bg, x, t_x, t_cal)) AS e,
               avg(alive::int) AS h FROM sim, fit AS f) AS s;
SELECT ok(abs(e / h - 1) < 0.05,
          format('new customers: expected purchases in 26 weeks %s vs simulated %s',
                 round(e::numeric, 3), round(h::numeric, 3)))
  FROM (SELECT segment.bgnbd_expected_purchases_new(t.bg, 26) AS e FROM truth AS t) AS s,
       (SELECT avg(x)::float8 AS h
          FROM pg_temp.simulate(20000, 0.5, 4.0, 0.6, 2.5, 4.0, 3.5, 20.0, 26, 26)) AS n;

SELECT * FROM finish();
ROLLBACK;
