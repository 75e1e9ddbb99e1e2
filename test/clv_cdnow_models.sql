-- Pareto/NBD, MBG/NBD and the holdout validation on the CDNOW sample
-- (loaded by scripts/test.sh from ../shared/data/cdnow; skipped without it).
BEGIN;
SELECT plan(9);

CREATE FUNCTION pg_temp.cdnow_model_tests() RETURNS SETOF text LANGUAGE plpgsql AS
$$
DECLARE
    pn segment.pareto_nbd_model;
    mbg segment.mbgnbd_model;
    pn2 segment.pareto_nbd_model;
    near float8;
BEGIN
    IF to_regclass('cdnow_summary') IS NULL OR to_regclass('cdnow_orders') IS NULL THEN
        RETURN NEXT skip('CDNOW sample not loaded (../shared/data/cdnow is absent)', 9);
        RETURN;
    END IF;
    EXECUTE 'SELECT (segment.pareto_nbd_fit(x, t_x, t_cal)).* FROM cdnow_summary' INTO pn;

    -- Published (Fader, Hardie and Lee 2005, "Counting your customers the
    -- easy way", section 4, the Pareto/NBD benchmark on this sample):
    -- r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669, LL = -9595.0.
    -- Each to 1e-3 relative (within the published rounding).
    RETURN NEXT ok(abs(pn.r / 0.553 - 1) < 1e-3 AND abs(pn.alpha / 10.578 - 1) < 1e-3
                   AND abs(pn.s / 0.606 - 1) < 1e-3 AND abs(pn.beta / 11.669 - 1) < 1e-3,
                   format('Pareto/NBD r, alpha, s, beta = 0.553, 10.578, 0.606, 11.669 (got %s, %s, %s, %s)',
                          pn.r, pn.alpha, pn.s, pn.beta));
    RETURN NEXT ok(round(pn.log_likelihood::numeric, 1) = -9595.0 AND pn.converged
                   AND pn.customers = 2357,
                   format('Pareto/NBD log-likelihood -9595.0, converged, 2357 customers (got %s, %s)',
                          pn.log_likelihood, pn.converged));
    RETURN NEXT ok(abs((SELECT sum(segment.pareto_nbd_log_likelihood(pn, x, t_x, t_cal)) FROM cdnow_summary)
                       - pn.log_likelihood) < 1e-6,
                   'the per-customer Pareto/NBD log-likelihoods sum to the fit''s');

    -- MBG/NBD: no published CDNOW figures; the fit must be a maximum of the
    -- likelihood written out by lifetimes' ModifiedBetaGeoFitter
    -- (_negative_log_likelihood): no parameter moved by 0.1% improves it.
    EXECUTE 'SELECT (segment.mbgnbd_fit(x, t_x, t_cal)).* FROM cdnow_summary' INTO mbg;
    RETURN NEXT ok(mbg.converged AND mbg.customers = 2357
                   AND abs(mbg.r - 0.5248) < 1e-3 AND abs(mbg.alpha - 6.183) < 1e-2
                   AND abs(mbg.a - 0.8914) < 1e-3 AND abs(mbg.b - 1.614) < 1e-2,
                   format('MBG/NBD fit converged: r %s, alpha %s, a %s, b %s, LL %s',
                          mbg.r, mbg.alpha, mbg.a, mbg.b, mbg.log_likelihood));
    SELECT max(ll) INTO near FROM (
        SELECT sum(lgamma_free.v) AS ll
          FROM (VALUES (1.001, 1, 1, 1), (0.999, 1, 1, 1), (1, 1.001, 1, 1), (1, 0.999, 1, 1),
                       (1, 1, 1.001, 1), (1, 1, 0.999, 1), (1, 1, 1, 1.001), (1, 1, 1, 0.999))
                   AS f(fr, fa, fa2, fb),
               LATERAL (SELECT segment.mbgnbd_log_likelihood(
                                   ROW(mbg.r * fr, mbg.alpha * fa, mbg.a * fa2, mbg.b * fb,
                                       NULL, NULL, NULL, NULL)::segment.mbgnbd_model,
                                   c.x, c.t_x, c.t_cal) AS v
                          FROM cdnow_summary AS c) AS lgamma_free
         GROUP BY fr, fa, fa2, fb) AS n;
    RETURN NEXT ok(near < mbg.log_likelihood,
                   format('MBG/NBD: every neighbouring parameter set is less likely (%s < %s)',
                          near, mbg.log_likelihood));
    RETURN NEXT ok(abs((SELECT sum(segment.mbgnbd_log_likelihood(mbg, x, t_x, t_cal)) FROM cdnow_summary)
                       - mbg.log_likelihood) < 1e-6,
                   'the per-customer MBG/NBD log-likelihoods sum to the fit''s');

    -- the parallel fit (partial states combined) equals the serial one
    SET LOCAL max_parallel_workers_per_gather = 2;
    SET LOCAL parallel_setup_cost = 0;
    SET LOCAL parallel_tuple_cost = 0;
    SET LOCAL min_parallel_table_scan_size = 0;
    EXECUTE 'SELECT (segment.pareto_nbd_fit(x, t_x, t_cal)).* FROM cdnow_summary' INTO pn2;
    RETURN NEXT ok(pn2.r = pn.r AND pn2.beta = pn.beta AND pn2.log_likelihood = pn.log_likelihood,
                   'the parallel Pareto/NBD fit equals the serial fit');
    RESET max_parallel_workers_per_gather;
    RESET parallel_setup_cost;
    RESET parallel_tuple_cost;
    RESET min_parallel_table_scan_size;

    -- Holdout: calibration 1997-01-01..1997-09-30 (39 weeks), holdout to
    -- 1998-06-30 (39 weeks), as in the paper; 2357 customers, 1882 holdout
    -- purchase days (same-day orders merged, as in the calibration summary).
    RETURN NEXT is(
        (SELECT string_agg(format('%s %s %s %s %s', model, calibration_purchases, customers,
                                  round(actual_mean::numeric, 3), round(predicted_mean::numeric, 3)),
                           '; ' ORDER BY model, calibration_purchases = 'total', calibration_purchases)
           FROM segment.clv_holdout('cdnow_orders', 'customer_id', 'ordered_on',
                                    '1997-09-30', '1998-06-30')
          WHERE calibration_purchases IN ('0', '7+', 'total')),
        'bgnbd 0 1411 0.237 0.225; bgnbd 7+ 64 6.359 6.157; bgnbd total 2357 0.798 0.701; '
        || 'mbgnbd 0 1411 0.237 0.185; mbgnbd 7+ 64 6.359 5.849; mbgnbd total 2357 0.798 0.669; '
        || 'pareto_nbd 0 1411 0.237 0.138; pareto_nbd 7+ 64 6.359 6.403; pareto_nbd total 2357 0.798 0.707',
        'CDNOW holdout table (buckets 0, 7+ and total)');
    RETURN NEXT is(
        (SELECT string_agg(format('%s %s %s %s', model, round(actual_total::numeric),
                                  round(predicted_total::numeric, 1), round(bucket_mae::numeric, 4)),
                           '; ' ORDER BY model)
           FROM segment.clv_holdout_errors('cdnow_orders', 'customer_id', 'ordered_on',
                                           '1997-09-30', '1998-06-30')),
        'bgnbd 1882 1653.4 0.0970; mbgnbd 1882 1576.7 0.1295; pareto_nbd 1882 1665.5 0.1073',
        'CDNOW holdout errors: totals and customer-weighted bucket MAE');
END
$$;

SELECT * FROM pg_temp.cdnow_model_tests();

SELECT * FROM finish();
ROLLBACK;
