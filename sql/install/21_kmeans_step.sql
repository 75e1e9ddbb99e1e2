-- k-means beyond memory and beyond one machine (src/kmeans_step.c): the
-- moments and one-iteration step aggregates, whose state is a float8[] (so
-- Citus pushes them down partially), and the driver that iterates them.

CREATE FUNCTION segment_internal.kmeans_moments_trans(double precision[], double precision[],
                                             segment.kmeans_model)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_moments_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_moments_trans(double precision[], double precision[], segment.kmeans_model) IS
    'Transition function of the kmeans_moments aggregate';

CREATE FUNCTION segment_internal.kmeans_moments_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_moments_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_moments_combine(double precision[], double precision[]) IS
    'Combine function of the kmeans_moments aggregate';

CREATE AGGREGATE segment.kmeans_moments(features double precision[], model segment.kmeans_model) (
    SFUNC = segment_internal.kmeans_moments_trans,
    STYPE = double precision[],
    COMBINEFUNC = segment_internal.kmeans_moments_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.kmeans_moments(double precision[], segment.kmeans_model) IS
    'Count, mean and M2 of each feature after the model''s log1p, as a float8[] state: [tag, dim, n, mean..., m2...]';

CREATE FUNCTION segment_internal.kmeans_step_trans(double precision[], double precision[],
                                          segment.kmeans_model)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_step_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_step_trans(double precision[], double precision[], segment.kmeans_model) IS
    'Transition function of the kmeans_step aggregate';

CREATE FUNCTION segment_internal.kmeans_step_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_step_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_step_combine(double precision[], double precision[]) IS
    'Combine function of the kmeans_step aggregate';

CREATE AGGREGATE segment.kmeans_step(features double precision[], model segment.kmeans_model) (
    SFUNC = segment_internal.kmeans_step_trans,
    STYPE = double precision[],
    COMBINEFUNC = segment_internal.kmeans_step_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.kmeans_step(double precision[], segment.kmeans_model) IS
    'One k-means iteration''s partial result against the model''s centroids: per cluster count and sum, inertia, farthest points; float8[] state for partial pushdown';

CREATE FUNCTION segment_internal.kmeans_start(k integer, dim integer, options jsonb,
                                     moments double precision[])
    RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_start' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_start(integer, integer, jsonb, double precision[]) IS
    'First model of the step driver: transform from the options and kmeans_moments, initial centroids from option init (raw units)';

CREATE FUNCTION segment_internal.kmeans_update(model segment.kmeans_model, step double precision[])
    RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_update' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_update(segment.kmeans_model, double precision[]) IS
    'Next model of Lloyd''s iteration from a kmeans_step result: new centroids, empty clusters moved to the farthest points';

CREATE FUNCTION segment_internal.kmeans_shift(a segment.kmeans_model, b segment.kmeans_model)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_kmeans_shift' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_shift(segment.kmeans_model, segment.kmeans_model) IS
    'Sum of squared distances between the matching centroids of two models (the convergence measure)';

CREATE FUNCTION segment_internal.kmeans_finish(model segment.kmeans_model, step double precision[])
    RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_finish' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_finish(segment.kmeans_model, double precision[]) IS
    'The model with inertia and cluster sizes from a kmeans_step computed with its own centroids';

-- The driver.  A wrapper passes the caller's search_path, which only the
-- statements embedding the query run under (see 22_kmeans_workflow.sql).
-- Without option "init", the initial centroids come from an in-memory fit
-- (k-means++, n_init restarts) on a deterministic hash sample of about
-- init_sample rows (default 100000; all rows when there are fewer).
CREATE FUNCTION segment_internal.kmeans_fit_step_run(query text, k integer, options jsonb, caller_path text)
    RETURNS segment.kmeans_model
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    opts     jsonb := coalesce(options, '{}');
    dim      integer;
    skeleton segment.kmeans_model;
    moments  double precision[];
    sample   segment.kmeans_model;
    init     jsonb;
    m        segment.kmeans_model;
    nm       segment.kmeans_model;
    step     double precision[];
    shift    double precision;
    tol_abs  double precision;
    max_iter integer;
    wanted   bigint;
    cutoff   bigint;
    sample_opts jsonb;
    seed     bigint;
BEGIN
    IF query IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'query and k must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- validates the options and k
    PERFORM segment_internal.kmeans_start(k, 1, opts - 'log1p' - 'init', NULL);

    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.array_length(q.f::double precision[], 1) FROM (%s) AS q(f) WHERE q.f IS NOT NULL LIMIT 1',
        query) INTO dim;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF dim IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The query returned no rows with non-null features.';
    END IF;
    skeleton := segment_internal.kmeans_start(k, dim, opts - 'init', NULL);
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT segment.kmeans_moments(q.f::double precision[], $1) FROM (%s) AS q(f)', query)
        INTO moments USING skeleton;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF moments IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- checks k against the number of points before any sampling
    PERFORM segment_internal.kmeans_start(k, dim, opts - 'init', moments);

    IF NOT opts ? 'init' THEN
        wanted := coalesce((opts->>'init_sample')::bigint, 100000);
        IF moments[3] <= wanted THEN
            cutoff := 1048576;
        ELSE
            cutoff := pg_catalog.ceil(1048576 * wanted / moments[3]);
        END IF;
        -- computed here: the USING expressions run under the caller's path
        sample_opts := opts - 'method' - 'init_sample';
        seed := coalesce((opts->>'seed')::bigint, 0);
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        EXECUTE pg_catalog.format(
            'SELECT segment.kmeans(q.f::double precision[], $1, $2) FROM (%s) AS q(f)'
            ' WHERE q.f IS NOT NULL AND'
            ' (pg_catalog.hash_array_extended(q.f::double precision[], $3) OPERATOR(pg_catalog.&) 1048575)'
            ' OPERATOR(pg_catalog.<) $4', query)
            INTO sample
            USING k, sample_opts, seed, cutoff;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF sample IS NULL OR (sample::text::jsonb->>'n')::bigint < k THEN
            RAISE EXCEPTION 'the initialisation sample has fewer than k points'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Raise the option init_sample, or give initial centroids with option init.';
        END IF;
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c.centroid) ORDER BY c.cluster) INTO init
          FROM segment.kmeans_centroids(sample) AS c;
        opts := opts || pg_catalog.jsonb_build_object('init', init);
        m := segment_internal.kmeans_start(k, dim, opts, moments);
        -- the restarts happened on the sample: record them
        m := (pg_catalog.jsonb_set(m::text::jsonb, '{n_init}',
                                   sample::text::jsonb->'n_init'))::text::segment.kmeans_model;
    ELSE
        m := segment_internal.kmeans_start(k, dim, opts, moments);
    END IF;

    tol_abs := (m::text::jsonb->>'tol_abs')::double precision;
    max_iter := (m::text::jsonb->>'max_iter')::integer;
    FOR i IN 1 .. max_iter LOOP
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        EXECUTE pg_catalog.format(
            'SELECT segment.kmeans_step(q.f::double precision[], $1) FROM (%s) AS q(f)', query)
            INTO step USING m;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        nm := segment_internal.kmeans_update(m, step);
        shift := segment_internal.kmeans_shift(m, nm);
        m := nm;
        EXIT WHEN shift <= tol_abs;
    END LOOP;
    -- inertia and sizes against the final centroids
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT segment.kmeans_step(q.f::double precision[], $1) FROM (%s) AS q(f)', query)
        INTO step USING m;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    RETURN segment_internal.kmeans_finish(m, step);
END
$$;
COMMENT ON FUNCTION segment_internal.kmeans_fit_step_run(text, integer, jsonb, text) IS
    'segment.kmeans_fit_step() with the caller''s search_path, which only the query is run under (internal)';

CREATE FUNCTION segment.kmeans_fit_step(query text, k integer, options jsonb DEFAULT '{}')
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE AS
$$
    SELECT segment_internal.kmeans_fit_step_run(query, k, options, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION segment.kmeans_fit_step(text, integer, jsonb) IS
    'Fit k-means by iterating the kmeans_step aggregate over a query (parallel query, sharded tables); initial centroids from option init or a k-means++ fit on a sample';
