-- BG/NBD and Gamma-Gamma on the CDNOW sample of the original papers
-- (Fader, Hardie and Lee 2005): the published parameters, to 3 significant
-- digits, and the published customer summaries.  scripts/test.sh loads
-- ../shared/data/cdnow into cdnow_summary and cdnow_orders when it exists;
-- otherwise every test here is skipped with a message.
BEGIN;
SELECT plan(12);

CREATE FUNCTION pg_temp.cdnow_tests() RETURNS SETOF text LANGUAGE plpgsql AS
$$
DECLARE
    bg segment.bgnbd_model;
    gg segment.gamma_gamma_model;
    bg2 segment.bgnbd_model;
    gg2 segment.gamma_gamma_model;
BEGIN
    IF to_regclass('cdnow_summary') IS NULL OR to_regclass('cdnow_orders') IS NULL THEN
        RETURN NEXT skip('CDNOW sample not loaded (../shared/data/cdnow is absent)', 12);
        RETURN;
    END IF;
    EXECUTE 'SELECT (segment.bgnbd_fit(x, t_x, t_cal)).* FROM cdnow_summary' INTO bg;
    IF bg IS NULL THEN
        RETURN NEXT skip('CDNOW summary table is empty', 12);
        RETURN;
    END IF;

    -- published: r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4
    RETURN NEXT is(round(bg.r::numeric, 3), 0.243, 'BG/NBD r = 0.243');
    RETURN NEXT is(round(bg.alpha::numeric, 3), 4.414, 'BG/NBD alpha = 4.414');
    RETURN NEXT is(round(bg.a::numeric, 3), 0.793, 'BG/NBD a = 0.793');
    RETURN NEXT is(round(bg.b::numeric, 3), 2.426, 'BG/NBD b = 2.426');
    RETURN NEXT ok(round(bg.log_likelihood::numeric, 1) = -9582.4 AND bg.converged
                   AND bg.customers = 2357,
                   format('BG/NBD log-likelihood -9582.4, converged, 2357 customers (got %s, %s, %s)',
                          bg.log_likelihood, bg.converged, bg.customers));

    -- published: p = 6.25, q = 3.74, v = 15.44 (lifetimes gets 15.447; both 15.4)
    EXECUTE 'SELECT (segment.gamma_gamma_fit(x, zbar)).* FROM cdnow_summary' INTO gg;
    RETURN NEXT ok(round(gg.p::numeric, 2) = 6.25 AND round(gg.q::numeric, 2) = 3.74
                   AND round(gg.v::numeric, 1) = 15.4 AND gg.converged AND gg.customers = 946,
                   format('Gamma-Gamma p = 6.25, q = 3.74, v = 15.4 on 946 repeat buyers (got %s, %s, %s, %s)',
                          gg.p, gg.q, gg.v, gg.customers));

    -- Fader and Hardie's spreadsheet note: E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226
    RETURN NEXT is(round(segment.bgnbd_expected_purchases(bg, 39, 2, 30.43, 38.86)::numeric, 3),
                   1.226, 'conditional expectation of the note''s example customer: 1.226');

    -- the summaries rebuilt from the transactions equal the published file
    RETURN NEXT is_empty(
        $q$WITH s AS (
               SELECT customer_id,
                      (segment.clv_summary(ordered_on, amount, '1997-09-30', 'week')).*
                 FROM cdnow_orders WHERE ordered_on <= '1997-09-30' GROUP BY customer_id)
           SELECT c.id FROM cdnow_summary AS c FULL JOIN s ON s.customer_id = c.id
            WHERE s.x IS DISTINCT FROM c.x
               OR round(s.t_x::numeric, 2) IS DISTINCT FROM round(c.t_x::numeric, 2)
               OR round(s.t_cal::numeric, 2) IS DISTINCT FROM round(c.t_cal::numeric, 2)
               OR round(s.mean_value::numeric, 2) IS DISTINCT FROM round(c.zbar::numeric, 2)$q$,
        'clv_summary of CDNOW_sample.txt equals the published summary (x, t_x, T, zbar)');

    EXECUTE $q$SELECT (segment.bgnbd_fit(x, t_x, t_cal)).*
                 FROM (SELECT (segment.clv_summary(ordered_on, amount, '1997-09-30', 'week')).*
                         FROM cdnow_orders WHERE ordered_on <= '1997-09-30'
                        GROUP BY customer_id) AS s$q$ INTO bg2;
    RETURN NEXT is(round(bg2.log_likelihood::numeric, 1), -9582.4,
                   'fitting on the rebuilt summaries reaches the same optimum');

    -- a parallel plan (partial states combined) fits the same model
    SET LOCAL max_parallel_workers_per_gather = 2;
    SET LOCAL parallel_setup_cost = 0;
    SET LOCAL parallel_tuple_cost = 0;
    SET LOCAL min_parallel_table_scan_size = 0;
    SET LOCAL parallel_leader_participation = off;
    RETURN NEXT ok(
        (SELECT bool_or(l ~ 'Partial Aggregate')
           FROM (SELECT * FROM pg_temp.explain_lines(
                 'SELECT segment.bgnbd_fit(x, t_x, t_cal) FROM cdnow_summary')) AS e(l)),
        'the fit runs as a partial aggregate under a parallel plan');
    EXECUTE 'SELECT (segment.bgnbd_fit(x, t_x, t_cal)).* FROM cdnow_summary' INTO bg2;
    RETURN NEXT ok(bg2.r = bg.r AND bg2.alpha = bg.alpha AND bg2.a = bg.a AND bg2.b = bg.b
                   AND bg2.log_likelihood = bg.log_likelihood,
                   'the parallel fit equals the serial fit exactly');
    EXECUTE 'SELECT (segment.gamma_gamma_fit(x, zbar)).* FROM cdnow_summary' INTO gg2;
    RETURN NEXT ok(gg2.p = gg.p AND gg2.q = gg.q AND gg2.v = gg.v AND gg2.customers = 946,
                   'the parallel Gamma-Gamma fit equals the serial one (one-time buyers skipped in every worker)');
    RESET max_parallel_workers_per_gather;
    RESET parallel_setup_cost;
    RESET parallel_tuple_cost;
    RESET min_parallel_table_scan_size;
    RESET parallel_leader_participation;
END
$$;

CREATE FUNCTION pg_temp.explain_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS
$$
DECLARE
    l text;
BEGIN
    FOR l IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        RETURN NEXT l;
    END LOOP;
END
$$;

SELECT * FROM pg_temp.cdnow_tests();

SELECT * FROM finish();
ROLLBACK;
