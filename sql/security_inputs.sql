-- Hostile and careless inputs (issue 12, findings 1, 2, 3 and 9): every C
-- function that reads a state (float8[] or serialized), a model or a
-- composite validates it completely, and raises an error with a SQLSTATE
-- rather than crash, hang, or answer NaN.  A state may come from anywhere:
-- anyone may bind our final functions to an aggregate of their own (with
-- array_cat as the transition) or give our transition functions a crafted
-- initial condition.
-- The former hangs ran under no interrupt check: with this timeout a
-- regression fails in seconds instead of hanging the suite.
SET statement_timeout = '60s';

-- pg_temp.try(query): 'ok: ' and the first value of the query, or the
-- SQLSTATE and message of its error.  WHEN OTHERS does not catch a cancel
-- (57014): a hang still fails the test.
CREATE FUNCTION pg_temp.try(query text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    result text;
BEGIN
    EXECUTE query INTO result;
    RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- Finding 1 (was a segmentation fault): NULL arrays in an event_summary.
SELECT segment.abandoned_products(ROW(NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL, now(),
       NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL)::segment.event_summary, NULL);

-- Finding 2 (was a segmentation fault): a user's aggregate feeding
-- bgnbd_fit_final a state with NaN in its rows.
CREATE AGGREGATE pg_temp.bg(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                       finalfunc = segment_internal.bgnbd_fit_final);
SELECT pg_temp.bg('{5,3,1,0,0,0, 1,1,2, 2,NaN,3, 3,2,5, 1,4,NaN, 2,0.5,9}');

-- Finding 3 (was a backend that only kill -9 stopped): a row loop that
-- never advanced past NaN, in both fits.
SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, NaN,1,2}');
CREATE AGGREGATE pg_temp.gg(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                       finalfunc = segment_internal.gamma_gamma_fit_final);
SELECT pg_temp.gg('{2,2,2,0,0,0, 1,10, NaN,10}');

-- Finding 9, and the classes behind the findings.  More aggregates over
-- crafted states: each final function, a combine function and two
-- transition functions with a crafted initial condition.
CREATE AGGREGATE pg_temp.cs(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                       finalfunc = segment_internal.clv_summary_final);
CREATE AGGREGATE pg_temp.br(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                       finalfunc = segment_internal.breaks_final);
CREATE AGGREGATE pg_temp.km(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                       finalfunc = segment_internal.kmeans_final);
CREATE AGGREGATE pg_temp.ks(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                       finalfunc = segment_internal.kmeans_scores_final);
CREATE AGGREGATE pg_temp.bg_combined(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                                combinefunc = segment_internal.clv_fit_combine,
                                                finalfunc = segment_internal.bgnbd_fit_final);
CREATE AGGREGATE pg_temp.bg_trans(float8, float8, float8) (sfunc = segment_internal.bgnbd_fit_trans,
    stype = float8[], initcond = '{1,3,1,0,0,0, NaN,1,2}', finalfunc = segment_internal.bgnbd_fit_final);
CREATE AGGREGATE pg_temp.br_trans(float8) (sfunc = segment_internal.breaks_trans, stype = float8[],
    initcond = '{1,2.5,NaN}', finalfunc = segment_internal.breaks_final);

-- Each crafted input and what it gets.  Layouts: the fits' state is [rows,
-- width, kind, 3 settings, rows...] (src/clv.h), breaks' [count, buckets,
-- values...], kmeans' [tag, k, dim, n, options..., points...]
-- (src/kmeans_state.c), kmeans_moments' [tag, dim, n, means, M2s] and
-- kmeans_step's [tag, k, dim, n, inertia, (count, sums) per cluster,
-- (distance, label, point) per farthest point] (src/kmeans_step.c).
CREATE TEMP TABLE crafted (id serial, input text, query text);
INSERT INTO crafted (input, query) VALUES
    ('bgnbd_fit: NaN in a row (finding 2)',
     $q$SELECT pg_temp.bg('{5,3,1,0,0,0, 1,1,2, 2,NaN,3, 3,2,5, 1,4,NaN, 2,0.5,9}')$q$),
    ('bgnbd_fit: NaN x (finding 3, a hang)',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, NaN,1,2}')$q$),
    ('bgnbd_fit: infinite T',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, 1,1,Infinity}')$q$),
    ('bgnbd_fit: negative x',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, -1,0,2}')$q$),
    ('bgnbd_fit: fractional x',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, 1.5,1,2}')$q$),
    ('bgnbd_fit: t_x > T',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, 1,3,2}')$q$),
    ('bgnbd_fit: x > 0 with t_x = 0',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, 1,0,2}')$q$),
    ('bgnbd_fit: x = 0 with t_x > 0',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, 0,1,2}')$q$),
    ('bgnbd_fit: NaN penalizer',
     $q$SELECT pg_temp.bg('{2,3,1,NaN,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: negative penalizer',
     $q$SELECT pg_temp.bg('{2,3,1,-1,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: infinite penalizer',
     $q$SELECT pg_temp.bg('{2,3,1,Infinity,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: unused setting set',
     $q$SELECT pg_temp.bg('{2,3,1,0,5,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: fractional row count',
     $q$SELECT pg_temp.bg('{1.5,3,1,0,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: more rows than the array holds',
     $q$SELECT pg_temp.bg('{3,3,1,0,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: negative row count',
     $q$SELECT pg_temp.bg('{-1,3,1,0,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: NaN row count',
     $q$SELECT pg_temp.bg('{NaN,3,1,0,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: wrong row width',
     $q$SELECT pg_temp.bg('{2,2,1,0,0,0, 1,1,2, 2}')$q$),
    ('bgnbd_fit: Gamma-Gamma state',
     $q$SELECT pg_temp.bg('{2,3,2,0,0,0, 1,1,2, 2,1,2}')$q$),
    ('bgnbd_fit: header cut short',
     $q$SELECT pg_temp.bg('{2,3,1}')$q$),
    ('bgnbd_fit: empty array',
     $q$SELECT pg_temp.bg('{}')$q$),
    ('bgnbd_fit: two-dimensional array',
     $q$SELECT pg_temp.bg('{{2,3},{1,0}}')$q$),
    ('bgnbd_fit: NULL element',
     $q$SELECT pg_temp.bg('{2,3,1,0,0,0, 1,1,2, 2,1,NULL}')$q$),
    ('bgnbd_fit: a valid state still fits',
     $q$SELECT (pg_temp.bg('{2,3,1,0,0,0, 1,1,2, 2,1,2}')).customers$q$),
    ('bgnbd_fit: NaN through the combine function',
     $q$SELECT pg_temp.bg_combined(a) FROM (VALUES ('{2,3,1,0,0,0, 1,1,2, NaN,1,2}'::float8[])) AS v(a)$q$),
    ('bgnbd_fit: crafted initial state of the transition',
     $q$SELECT pg_temp.bg_trans(1, 1, 2)$q$),
    ('gamma_gamma_fit: NaN x (finding 3, a hang)',
     $q$SELECT pg_temp.gg('{2,2,2,0,0,0, 1,10, NaN,10}')$q$),
    ('gamma_gamma_fit: NaN count of one-time buyers',
     $q$SELECT pg_temp.gg('{0,2,2,0,NaN,0}')$q$),
    ('gamma_gamma_fit: negative count of one-time buyers',
     $q$SELECT pg_temp.gg('{0,2,2,0,-3,0}')$q$),
    ('gamma_gamma_fit: fractional count of one-time buyers',
     $q$SELECT pg_temp.gg('{0,2,2,0,1.5,0}')$q$),
    ('gamma_gamma_fit: negative mean value',
     $q$SELECT pg_temp.gg('{2,2,2,0,0,0, 1,10, 1,-1}')$q$),
    ('gamma_gamma_fit: row of a one-time buyer',
     $q$SELECT pg_temp.gg('{2,2,2,0,0,0, 1,10, 0,10}')$q$),
    ('gamma_gamma_fit: NaN penalizer',
     $q$SELECT pg_temp.gg('{2,2,2,NaN,0,0, 1,10, 2,10}')$q$),
    ('gamma_gamma_fit: negative penalizer',
     $q$SELECT pg_temp.gg('{2,2,2,-0.5,0,0, 1,10, 2,10}')$q$),
    ('clv_summary: time unit 0',
     $q$SELECT pg_temp.cs('{2,2,3,100,0,1, 1,10, 5,10}')$q$),
    ('clv_summary: time unit 2 days',
     $q$SELECT pg_temp.cs('{2,2,3,100,2,1, 1,10, 5,10}')$q$),
    ('clv_summary: purchase period 3 days',
     $q$SELECT pg_temp.cs('{2,2,3,100,1,3, 1,10, 5,10}')$q$),
    ('clv_summary: NaN as_of',
     $q$SELECT pg_temp.cs('{2,2,3,NaN,1,1, 1,10, 5,10}')$q$),
    ('clv_summary: fractional as_of',
     $q$SELECT pg_temp.cs('{2,2,3,100.5,1,1, 1,10, 5,10}')$q$),
    ('clv_summary: order after as_of',
     $q$SELECT pg_temp.cs('{2,2,3,100,1,1, 1,10, 500,10}')$q$),
    ('clv_summary: NaN amount',
     $q$SELECT pg_temp.cs('{2,2,3,100,1,1, 1,10, 5,NaN}')$q$),
    ('clv_summary: negative amount',
     $q$SELECT pg_temp.cs('{2,2,3,100,1,1, 1,10, 5,-1}')$q$),
    ('clv_summary: fractional day',
     $q$SELECT pg_temp.cs('{2,2,3,100,1,1, 1.5,10, 5,1}')$q$),
    ('clv_summary: NaN day',
     $q$SELECT pg_temp.cs('{2,2,3,100,1,1, NaN,10, 5,1}')$q$),
    ('clv_summary: a valid state',
     $q$SELECT pg_temp.cs('{2,2,3,100,1,1, 1,10, 5,10}')$q$),
    ('breaks: fractional number of buckets',
     $q$SELECT pg_temp.br('{2,2.5,1,2}')$q$),
    ('breaks: NaN number of buckets',
     $q$SELECT pg_temp.br('{2,NaN,1,2}')$q$),
    ('breaks: 11 buckets',
     $q$SELECT pg_temp.br('{2,11,1,2}')$q$),
    ('breaks: fractional count',
     $q$SELECT pg_temp.br('{1.5,3,1,2}')$q$),
    ('breaks: NaN value',
     $q$SELECT pg_temp.br('{2,3,1,NaN}')$q$),
    ('breaks: infinite value',
     $q$SELECT pg_temp.br('{2,3,1,Infinity}')$q$),
    ('breaks: crafted initial state of the transition',
     $q$SELECT pg_temp.br_trans(1)$q$),
    ('breaks: a valid state',
     $q$SELECT pg_temp.br('{2,3,1,2}')$q$),
    ('kmeans: wrong tag',
     $q$SELECT pg_temp.km('{1,1,1,1, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5}')$q$),
    ('kmeans: fractional k',
     $q$SELECT pg_temp.km('{71003,1.5,1,1, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5}')$q$),
    ('kmeans: fractional dimension',
     $q$SELECT pg_temp.km('{71003,1,1.5,1, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5}')$q$),
    ('kmeans: fractional count',
     $q$SELECT pg_temp.km('{71003,1,1,0.5, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5}')$q$),
    ('kmeans: NaN point',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, NaN}')$q$),
    ('kmeans: infinite point',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, Infinity}')$q$),
    ('kmeans: negative n_init option',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,-1,300,0.0001,0,0,0,0,100,0,0,-1, 5}')$q$),
    ('kmeans: NaN tol option',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,10,300,NaN,0,0,0,0,100,0,0,-1, 5}')$q$),
    ('kmeans: log1p flag 2',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,10,300,0.0001,0,0,0,1,100,0,0,-1, 2, 5}')$q$),
    ('kmeans: NaN initial centroid',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,10,300,0.0001,0,0,0,0,100,1,1,-1, NaN, 5}')$q$),
    ('kmeans: initial centroids of another dimension',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,10,300,0.0001,0,0,0,0,100,1,2,-1, 1,1, 5}')$q$),
    ('kmeans: log1p flags for another dimension',
     $q$SELECT pg_temp.km('{71003,1,1,1, 0,0,10,300,0.0001,0,0,0,2,100,0,0,-1, 1,1, 5}')$q$),
    ('kmeans: k above the number of points',
     $q$SELECT pg_temp.km('{71003,2,1,1, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5}')$q$),
    ('kmeans: a valid state',
     $q$SELECT (pg_temp.km('{71003,1,1,1, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5}')::text::jsonb)->'centroids'$q$),
    ('kmeans_k_scores: k_max 1',
     $q$SELECT pg_temp.ks('{71003,1,1,2, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5, 6}')$q$),
    ('kmeans_k_scores: NaN point',
     $q$SELECT pg_temp.ks('{71003,2,1,2, 0,0,10,300,0.0001,0,0,0,0,100,0,0,-1, 5, NaN}')$q$),
    ('kmeans_start: NaN mean',
     $q$SELECT segment_internal.kmeans_start(1, 1, NULL, '{71001,1,3,NaN,1}')$q$),
    ('kmeans_start: negative M2',
     $q$SELECT segment_internal.kmeans_start(1, 1, NULL, '{71001,1,3,1,-1}')$q$),
    ('kmeans_start: fractional dimension',
     $q$SELECT segment_internal.kmeans_start(1, 1, NULL, '{71001,1.5,3,1,1}')$q$),
    ('kmeans_start: fractional count',
     $q$SELECT segment_internal.kmeans_start(1, 1, NULL, '{71001,1,2.5,1,1}')$q$),
    ('kmeans_start: NaN count',
     $q$SELECT segment_internal.kmeans_start(1, 1, NULL, '{71001,1,NaN,1,1}')$q$),
    ('kmeans_update: label out of range',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,1, 0,0, 1,5, 1,5,5, 1,2,7}')$q$),
    ('kmeans_update: fractional label',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,1, 0,0, 1,5, 1,0.5,5, -1,0,0}')$q$),
    ('kmeans_update: NaN label',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,1, 0,0, 1,5, 1,NaN,5, -1,0,0}')$q$),
    ('kmeans_update: NaN sum',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,1, 1,NaN, 0,0, 1,0,5, -1,0,0}')$q$),
    ('kmeans_update: fractional counts',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,1, 0.5,5, 0.5,0, 1,0,5, -1,0,0}')$q$),
    ('kmeans_update: counts not adding up to n',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,7,1, 1,5, 0,0, 1,0,5, -1,0,0}')$q$),
    ('kmeans_update: negative inertia',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,-1, 1,5, 0,0, 1,0,5, -1,0,0}')$q$),
    ('kmeans_update: fractional k',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2.5,1,1,1, 1,5, 0,0, 1,0,5, -1,0,0}')$q$),
    ('kmeans_update: a valid step',
     $q$SELECT segment_internal.kmeans_update(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,1, 1,5, 0,0, 1,0,5, -1,0,0}')::text::jsonb->'centroids'$q$),
    ('kmeans_finish: NaN cluster size',
     $q$SELECT segment_internal.kmeans_finish(segment_internal.kmeans_start(2, 1, NULL, NULL), '{71002,2,1,1,1, NaN,5, 0,0, 1,0,5, -1,0,0}')$q$),
    ('kmeans_model: negative n_init',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": -1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: n_init beyond int32',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1099511627777, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: negative cluster size',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [-1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: fractional cluster size',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [0.5], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: negative n',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": -5, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: negative inertia',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": -1, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: negative tol',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": -1, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: negative max_iter',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": -1, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: k 0',
     $q$SELECT '{"version": 1, "k": 0, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [], "centroids": []}'::segment.kmeans_model$q$),
    ('kmeans_model: fractional k',
     $q$SELECT '{"version": 1, "k": 1.5, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_model: scale 0',
     $q$SELECT '{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [0], "sizes": [1], "centroids": [[5]]}'::segment.kmeans_model$q$),
    ('kmeans_distance: features overflowing a tiny scale',
     $q$SELECT segment.kmeans_distance('{"version": 1, "k": 1, "dim": 1, "n": 1, "inertia": 0, "iterations": 1, "n_init": 1, "max_iter": 300, "tol": 0.0001, "tol_abs": 0, "seed": 0, "algorithm": "hamerly", "method": "memory", "standardize": false, "log1p": [false], "center": [0], "scale": [1e-300], "sizes": [1], "centroids": [[1e300]]}', '{1e300}')$q$),
    ('kmeans_assign: wrong length',
     $q$SELECT segment.kmeans_assign(segment_internal.kmeans_start(2, 1, NULL, NULL), '{1,2}')$q$),
    ('kmeans_assign: two-dimensional',
     $q$SELECT segment.kmeans_assign(segment_internal.kmeans_start(2, 1, NULL, NULL), '{{1}}')$q$),
    ('kmeans_assign: NULL element',
     $q$SELECT segment.kmeans_assign(segment_internal.kmeans_start(2, 1, NULL, NULL), '{NULL}')$q$),
    ('kmeans_assign: NaN feature',
     $q$SELECT segment.kmeans_assign(segment_internal.kmeans_start(2, 1, NULL, NULL), '{NaN}')$q$),
    ('bgnbd model: NULL r',
     $q$SELECT segment.bgnbd_p_alive(ROW(NULL,1,1,1,0,0,true,1)::segment.bgnbd_model, 1, 1, 2)$q$),
    ('bgnbd model: NaN r',
     $q$SELECT segment.bgnbd_p_alive(ROW('NaN',1,1,1,0,0,true,1)::segment.bgnbd_model, 1, 1, 2)$q$),
    ('bgnbd model: negative r',
     $q$SELECT segment.bgnbd_p_alive(ROW(-1,1,1,1,0,0,true,1)::segment.bgnbd_model, 1, 1, 2)$q$),
    ('bgnbd model: infinite r',
     $q$SELECT segment.bgnbd_p_alive(ROW('Infinity',1,1,1,0,0,true,1)::segment.bgnbd_model, 1, 1, 2)$q$),
    ('bgnbd model: x near DBL_MAX',
     $q$SELECT segment.bgnbd_expected_purchases(ROW(1e308,1e-308,1e308,1e-308,0,0,true,1)::segment.bgnbd_model, 1, 1e308, 1, 2)$q$),
    ('bgnbd model: alpha negligible beside t',
     $q$SELECT segment.bgnbd_expected_purchases_new(ROW(1,1e-300,2,2,0,0,true,1)::segment.bgnbd_model, 1)$q$),
    ('bgnbd model: log-likelihood of extreme parameters',
     $q$SELECT segment.bgnbd_log_likelihood(ROW(1e308,1e308,1e308,1e308,0,0,true,1)::segment.bgnbd_model, 1e308, 1, 2)$q$),
    ('gamma_gamma model: NULL p',
     $q$SELECT segment.gamma_gamma_expected_value(ROW(NULL,2,1,0,0,true,1)::segment.gamma_gamma_model, 1, 10)$q$),
    ('gamma_gamma model: q = 1',
     $q$SELECT segment.gamma_gamma_expected_value(ROW(1,1,1,0,0,true,1)::segment.gamma_gamma_model, 1, 10)$q$),
    ('gamma_gamma model: extreme parameters',
     $q$SELECT segment.gamma_gamma_expected_value(ROW(1e308,1e308,1e308,0,0,true,1)::segment.gamma_gamma_model, 1e308, 1e308)$q$),
    ('gamma_gamma model: log-likelihood of extreme parameters',
     $q$SELECT segment.gamma_gamma_log_likelihood(ROW(1e308,1e308,1e308,0,0,true,1)::segment.gamma_gamma_model, 1e308, 1e308)$q$),
    ('clv: a discount rate near -1 overflows',
     $q$SELECT segment.clv(ROW(1,1,1,1,0,0,true,1)::segment.bgnbd_model, ROW(1,2,1,0,0,true,1)::segment.gamma_gamma_model, 1, 1, 2, 10, 1200, -0.999999, 'day')$q$),
    ('event_summary: NULL cart fields (finding 1)',
     $q$SELECT segment.abandoned_products(ROW(NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL, now(), NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL)::segment.event_summary, NULL)$q$),
    ('event_summary: two-dimensional cart',
     $q$SELECT segment.abandoned_products(ROW(NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL, now(), NULL,NULL,NULL,NULL,'{{a},{b}}','{{2020-01-01},{2020-01-02}}',NULL,NULL)::segment.event_summary, NULL)$q$),
    ('event_summary: cart arrays of different lengths',
     $q$SELECT segment.abandoned_products(ROW(NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL, now(), NULL,NULL,NULL,NULL,'{a,b}','{2020-01-01}',NULL,NULL)::segment.event_summary, NULL)$q$),
    ('event_summary: NULL product',
     $q$SELECT segment.abandoned_products(ROW(NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL, now(), NULL,NULL,NULL,NULL,'{a,NULL}','{2020-01-01,2020-01-02}',NULL,NULL)::segment.event_summary, NULL)$q$),
    ('event_summary: all fields NULL',
     $q$SELECT segment.abandoned_at(ROW(NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL,NULL)::segment.event_summary, NULL)$q$),
    ('score: NaN break',
     $q$SELECT segment.score(1, '{NaN}', true)$q$),
    ('score: two-dimensional breaks',
     $q$SELECT segment.score(1, '{{1,2}}', true)$q$),
    ('score: no breaks',
     $q$SELECT segment.score(1, '{}', true)$q$),
    ('score: NULL break',
     $q$SELECT segment.score(1, '{1,NULL}', true)$q$);
SELECT id, input, pg_temp.try(query) AS result FROM crafted ORDER BY id;

-- Support functions of the float8[] aggregates called outside an aggregate:
-- a feature-not-supported error (0A000), not an internal one (XX000).
CREATE TEMP TABLE direct (id serial, call text);
INSERT INTO direct (call) VALUES
    ($q$segment_internal.breaks_trans(NULL, 1, 5)$q$),
    ($q$segment_internal.breaks_combine(NULL, '{0,5}')$q$),
    ($q$segment_internal.breaks_final('{0,5}')$q$),
    ($q$segment_internal.kmeans_trans(NULL, '{1}', 2)$q$),
    ($q$segment_internal.kmeans_combine(NULL, NULL)$q$),
    ($q$segment_internal.kmeans_final(NULL)$q$),
    ($q$segment_internal.kmeans_scores_final(NULL)$q$),
    ($q$segment_internal.kmeans_moments_trans(NULL, '{1}', segment_internal.kmeans_start(1, 1, NULL, NULL))$q$),
    ($q$segment_internal.kmeans_moments_combine(NULL, NULL)$q$),
    ($q$segment_internal.kmeans_step_trans(NULL, '{1}', segment_internal.kmeans_start(1, 1, NULL, NULL))$q$),
    ($q$segment_internal.kmeans_step_combine(NULL, NULL)$q$),
    ($q$segment_internal.bgnbd_fit_trans(NULL, 1, 1, 2)$q$),
    ($q$segment_internal.clv_fit_combine(NULL, NULL)$q$),
    ($q$segment_internal.bgnbd_fit_final(NULL)$q$),
    ($q$segment_internal.gamma_gamma_fit_trans(NULL, 1, 10)$q$),
    ($q$segment_internal.gamma_gamma_fit_final(NULL)$q$),
    ($q$segment_internal.clv_summary_trans(NULL, now(), 1, now())$q$),
    ($q$segment_internal.clv_summary_combine(NULL, NULL)$q$),
    ($q$segment_internal.clv_summary_final(NULL)$q$);
SELECT id, pg_temp.try('SELECT ' || call) AS result FROM direct ORDER BY id;

-- Serialized (bytea) states: each internal-state aggregate's bytes read by
-- every deserial function, its own included.  Only a superuser may create an
-- aggregate with an internal state; a parallel plan makes its partial states
-- go through the serial and deserial functions (the leader's too).
CREATE TABLE security_rows AS
    SELECT i, '2024-01-01'::timestamptz + i * interval '1 day' AS t FROM generate_series(1, 100) AS i;
ANALYZE security_rows;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
CREATE TEMP TABLE internal_aggregate (name text, argtypes text, args text);
INSERT INTO internal_aggregate VALUES
    ('rfm', 'timestamptz, numeric', 't, 10.5'),
    ('events', 'text, timestamptz, text, timestamptz, interval',
     $$'cart_add', t, 'p' || (i % 3), '2024-06-01', '30 days'$$),
    ('contacts', 'timestamptz, boolean, timestamptz, interval', $$t, i % 2 = 0, '2024-06-01', '30 days'$$),
    ('order_lines', 'timestamptz, timestamptz, text, integer', $$t, '2024-01-01', 'c' || (i % 2), 30$$),
    ('restock', 'timestamptz, double precision', 't, 2.0'),
    ('line_stages', 'timestamptz, timestamptz, text, integer, text, double precision, integer, date',
     $$t, '2024-01-01', 'c' || (i % 2), 30, 'p' || (i % 3), 2.0, 2, '2024-01-01'$$);
DO $$
DECLARE
    w record;
    r record;
BEGIN
    FOR w IN SELECT * FROM internal_aggregate LOOP
        FOR r IN SELECT * FROM internal_aggregate LOOP
            EXECUTE format('CREATE AGGREGATE pg_temp.%I(%s) (sfunc = segment_internal.%I, stype = internal,
                                serialfunc = segment_internal.%I, deserialfunc = segment_internal.%I,
                                combinefunc = segment_internal.%I, finalfunc = segment_internal.%I, parallel = safe)',
                           w.name || '_read_by_' || r.name, w.argtypes, w.name || '_trans',
                           w.name || '_serial', r.name || '_deserial', r.name || '_combine',
                           r.name || '_final');
        END LOOP;
    END LOOP;
END
$$;
SELECT w.name AS bytes_of, r.name AS read_by,
       CASE WHEN result ~ '^ok' THEN 'ok' ELSE result END AS result
  FROM internal_aggregate AS w CROSS JOIN internal_aggregate AS r,
       LATERAL pg_temp.try(format('SELECT pg_temp.%I(%s)::text FROM security_rows',
                                  w.name || '_read_by_' || r.name, w.args)) AS result
 ORDER BY w.name, r.name;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
DROP TABLE security_rows;

-- Every loop over user data checks for interrupts: a long k-means fit stops
-- at statement_timeout, at once.
CREATE TEMP TABLE canceled (seconds float8);
SET statement_timeout = '200ms';
DO $$
DECLARE
    t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM segment.kmeans(ARRAY[i % 97, i % 89, i % 83]::float8[], 100,
                           '{"n_init": 1000, "max_iter": 100000, "tol": 0}')
      FROM generate_series(1, 20000) AS i;
EXCEPTION WHEN query_canceled THEN
    INSERT INTO canceled VALUES (extract(epoch FROM clock_timestamp() - t0));
END
$$;
RESET statement_timeout;
SELECT count(*) AS canceled, max(seconds) < 5 AS within_5_seconds FROM canceled;

-- A state read without the final function (an aggregate of one's own over
-- the transition function, as a superuser may write) shows no uninitialised
-- memory: the spare capacity of the growing states is zeroed (found by
-- scripts/fuzz.sh and scripts/memcheck.sh).
CREATE AGGREGATE pg_temp.raw_breaks(float8, integer) (
    sfunc = segment_internal.breaks_trans, stype = float8[]);
CREATE AGGREGATE pg_temp.raw_bgnbd(float8, float8, float8) (
    sfunc = segment_internal.bgnbd_fit_trans, stype = float8[]);
CREATE AGGREGATE pg_temp.raw_gamma(float8, float8) (
    sfunc = segment_internal.gamma_gamma_fit_trans, stype = float8[]);
-- Header and rows are followed by spare room (2 + 3 values for breaks; 6 +
-- 3 rows of 3 or of 2 values for the fits); the spare room is all zero.
SELECT 'breaks' AS state, count(*) > 2 + 3 AS has_spare,
       bool_and(v = 0) FILTER (WHERE i > 2 + 3) AS spare_zero
  FROM unnest((SELECT pg_temp.raw_breaks(x, 4) FROM generate_series(1, 3) AS x)) WITH ORDINALITY AS u(v, i)
UNION ALL
SELECT 'bgnbd', count(*) > 6 + 9, bool_and(v = 0) FILTER (WHERE i > 6 + 9)
  FROM unnest((SELECT pg_temp.raw_bgnbd(x, x, x + 1) FROM generate_series(1, 3) AS x)) WITH ORDINALITY AS u(v, i)
UNION ALL
SELECT 'gamma_gamma', count(*) > 6 + 6, bool_and(v = 0) FILTER (WHERE i > 6 + 6)
  FROM unnest((SELECT pg_temp.raw_gamma(x, 10 * x) FROM generate_series(1, 3) AS x)) WITH ORDINALITY AS u(v, i);
