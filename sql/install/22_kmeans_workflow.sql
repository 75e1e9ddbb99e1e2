-- k-means over a query or a relation: stored models, fit, describe, choose k.

CREATE TABLE segment.kmeans_models (
    name       text PRIMARY KEY,
    created    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    parameters jsonb NOT NULL,
    model      segment.kmeans_model NOT NULL
);
COMMENT ON TABLE segment.kmeans_models IS
    'Stored k-means models: name, creation time, fit parameters (source, k, options), model; written by create_kmeans_model, removed by drop_kmeans_model';
SELECT pg_catalog.pg_extension_config_dump('segment.kmeans_models', '');

-- The query whose first column holds the features of a relation's column,
-- after checking that the column is an array of numbers.
CREATE FUNCTION segment_internal.kmeans_source(relation regclass, features name) RETURNS text
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    typ regtype := segment_internal.column_type(relation, features);
    elem oid;
BEGIN
    SELECT t.typelem INTO elem FROM pg_type AS t WHERE t.oid = typ AND t.typcategory = 'A';
    IF elem IS NULL OR (SELECT e.typcategory FROM pg_type AS e WHERE e.oid = elem) <> 'N' THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected an array of numbers',
                        features, relation, typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Build the feature vector with ARRAY[...]::float8[] in a view.';
    END IF;
    RETURN format('SELECT %I FROM %s', features, relation);
END
$$;
COMMENT ON FUNCTION segment_internal.kmeans_source(regclass, name) IS
    'The query selecting a relation''s feature column, after checking it is an array of numbers';

-- Functions that run a caller's query text: the query must resolve its names
-- as the caller would, and nothing of ours may resolve through the caller's
-- search_path (a schema on it could hold an operator or function that would
-- run with the caller's privileges: CVE-2018-1058).  So each is a thin SQL
-- wrapper, without SET, that passes the caller's search_path to a *_run
-- function pinned to pg_catalog, pg_temp; that one sets the caller's path only
-- around the statements that embed the query, and those statements use only
-- schema-qualified names and OPERATOR(pg_catalog.x) forms.  Tested in
-- test/search_path.sql.

-- The model fitted on a query's first column, in memory or with the step driver.
CREATE FUNCTION segment_internal.kmeans_train_run(query text, k integer, options jsonb, caller_path text)
    RETURNS segment.kmeans_model
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m segment.kmeans_model;
    setup_cost text;
BEGIN
    IF query IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'query and k must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    options := coalesce(options, '{}');
    IF pg_catalog.jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'k-means options must be a jsonb object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(options->>'method', 'memory') = 'step' THEN
        m := segment_internal.kmeans_fit_step_run(query, k, options, caller_path);
    ELSE
        -- Every point goes to one process: a parallel plan would only add
        -- passing them all through tuple queues and merging the workers'
        -- arrays (slower than the serial scan at every size measured, see
        -- README "k-means performance").  The restarts still run in parallel
        -- workers: they follow max_parallel_workers_per_gather, untouched.
        setup_cost := pg_catalog.current_setting('parallel_setup_cost');
        PERFORM pg_catalog.set_config('parallel_setup_cost', '1e300', true);
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        EXECUTE pg_catalog.format(
            'SELECT segment.kmeans(q.f::double precision[], $1, $2) FROM (%s) AS q(f)', query)
            INTO m USING k, options;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        PERFORM pg_catalog.set_config('parallel_setup_cost', setup_cost, true);
    END IF;
    IF m IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The query returned no rows with non-null features.';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION segment_internal.kmeans_train_run(text, integer, jsonb, text) IS
    'segment.kmeans_train() with the caller''s search_path, which only the query is run under (internal)';

CREATE FUNCTION segment.kmeans_train(query text, k integer, options jsonb)
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE AS
$$
    SELECT segment_internal.kmeans_train_run(query, k, options, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION segment.kmeans_train(text, integer, jsonb) IS
    'Fit k-means on the first column (float8[]) of a query; option method "memory" (default) or "step"';

-- Fit and store a model under a new name.
CREATE FUNCTION segment_internal.create_kmeans_model_run(name text, query text, k integer, options jsonb, caller_path text)
    RETURNS segment.kmeans_model
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m segment.kmeans_model;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'model name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM segment.kmeans_models AS s WHERE s.name = create_kmeans_model_run.name) THEN
        RAISE EXCEPTION 'k-means model "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first with segment.drop_kmeans_model(), or choose another name.';
    END IF;
    m := segment_internal.kmeans_train_run(query, k, options, caller_path);
    INSERT INTO segment.kmeans_models (name, parameters, model)
    VALUES (name, pg_catalog.jsonb_build_object('source', query, 'k', k,
                                                'options', coalesce(options, '{}')), m);
    RETURN m;
END
$$;
COMMENT ON FUNCTION segment_internal.create_kmeans_model_run(text, text, integer, jsonb, text) IS
    'segment.create_kmeans_model() with the caller''s search_path, which only the query is run under (internal)';

CREATE FUNCTION segment.create_kmeans_model(name text, query text, k integer, options jsonb DEFAULT '{}')
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE AS
$$
    SELECT segment_internal.create_kmeans_model_run(name, query, k, options, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION segment.create_kmeans_model(text, text, integer, jsonb) IS
    'Fit k-means on the first column (float8[]) of a query and store the model under a new name';

CREATE FUNCTION segment.create_kmeans_model(name text, relation regclass, features name, k integer,
                                   options jsonb DEFAULT '{}')
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment.create_kmeans_model(name, segment_internal.kmeans_source(relation, features), k, options);
$$;
COMMENT ON FUNCTION segment.create_kmeans_model(text, regclass, name, integer, jsonb) IS
    'Fit k-means on a feature column (array of numbers) of a relation and store the model under a new name';

CREATE FUNCTION segment.get_kmeans_model(name text) RETURNS segment.kmeans_model
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m segment.kmeans_model;
BEGIN
    SELECT s.model INTO m FROM segment.kmeans_models AS s WHERE s.name = get_kmeans_model.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'k-means model "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN m;
END
$$;
COMMENT ON FUNCTION segment.get_kmeans_model(text) IS
    'The stored k-means model of that name; raises undefined_object when there is none';

CREATE FUNCTION segment.drop_kmeans_model(name text) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    DELETE FROM segment.kmeans_models AS s WHERE s.name = drop_kmeans_model.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'k-means model "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
END
$$;
COMMENT ON FUNCTION segment.drop_kmeans_model(text) IS
    'Remove a stored k-means model; raises undefined_object when there is none';

-- Size, share, mean raw features and mean distance of each cluster.
CREATE FUNCTION segment_internal.kmeans_describe_run(model segment.kmeans_model, query text, caller_path text)
    RETURNS TABLE (cluster integer, size bigint, share double precision,
                   mean_features double precision[], mean_distance double precision)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF model IS NULL OR query IS NULL THEN
        RAISE EXCEPTION 'model and query must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    RETURN QUERY EXECUTE pg_catalog.format($q$
        WITH assigned AS MATERIALIZED (
            SELECT segment.kmeans_assign($1, q.f::double precision[]) AS c,
                   segment.kmeans_distance($1, q.f::double precision[]) AS dist,
                   q.f::double precision[] AS f
              FROM (%s) AS q(f)
             WHERE q.f IS NOT NULL
        ), per_cluster AS (
            SELECT a.c, pg_catalog.count(*) AS n, pg_catalog.avg(a.dist) AS md
              FROM assigned AS a GROUP BY a.c
        ), per_feature AS (
            SELECT a.c, u.i, pg_catalog.avg(u.v) AS v
              FROM assigned AS a
             CROSS JOIN LATERAL pg_catalog.unnest(a.f) WITH ORDINALITY AS u(v, i)
             GROUP BY a.c, u.i
        )
        SELECT g.c::integer, coalesce(p.n, 0)::bigint,
               coalesce(p.n::double precision OPERATOR(pg_catalog./)
                        (pg_catalog.sum(p.n) OVER ())::double precision, 0),
               (SELECT pg_catalog.array_agg(pf.v ORDER BY pf.i)
                  FROM per_feature AS pf WHERE pf.c OPERATOR(pg_catalog.=) g.c),
               p.md
          FROM pg_catalog.generate_series(1, (SELECT pg_catalog.count(*)::integer
                                               FROM segment.kmeans_centroids($1))) AS g(c)
          LEFT JOIN per_cluster AS p ON p.c OPERATOR(pg_catalog.=) g.c
         ORDER BY g.c
        $q$, query) USING model;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
END
$$;
COMMENT ON FUNCTION segment_internal.kmeans_describe_run(segment.kmeans_model, text, text) IS
    'segment.kmeans_describe() with the caller''s search_path, which only the query is run under (internal)';

CREATE FUNCTION segment.kmeans_describe(model segment.kmeans_model, query text)
    RETURNS TABLE (cluster integer, size bigint, share double precision,
                   mean_features double precision[], mean_distance double precision)
    LANGUAGE sql VOLATILE AS
$$
    SELECT * FROM segment_internal.kmeans_describe_run(model, query, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION segment.kmeans_describe(segment.kmeans_model, text) IS
    'Describe each cluster of a model over a query''s first column: size, share, mean raw features, mean distance to the centroid';

CREATE FUNCTION segment.kmeans_describe(model segment.kmeans_model, relation regclass, features name)
    RETURNS TABLE (cluster integer, size bigint, share double precision,
                   mean_features double precision[], mean_distance double precision)
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT * FROM segment.kmeans_describe(model, segment_internal.kmeans_source(relation, features));
$$;
COMMENT ON FUNCTION segment.kmeans_describe(segment.kmeans_model, regclass, name) IS
    'Describe each cluster of a model over a relation''s feature column: size, share, mean raw features, mean distance';

-- Fit k = 1..k_max and score each.
CREATE FUNCTION segment_internal.kmeans_choose_k_run(query text, k_max integer, options jsonb, caller_path text)
    RETURNS SETOF segment.kmeans_k_score
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    scores segment.kmeans_k_score[];
BEGIN
    IF query IS NULL OR k_max IS NULL THEN
        RAISE EXCEPTION 'query and k_max must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    options := coalesce(options, '{}');
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT segment.kmeans_k_scores(q.f::double precision[], $1, $2) FROM (%s) AS q(f)', query)
        INTO scores USING k_max, options;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF scores IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The query returned no rows with non-null features.';
    END IF;
    RETURN QUERY SELECT * FROM pg_catalog.unnest(scores);
END
$$;
COMMENT ON FUNCTION segment_internal.kmeans_choose_k_run(text, integer, jsonb, text) IS
    'segment.kmeans_choose_k() with the caller''s search_path, which only the query is run under (internal)';

CREATE FUNCTION segment.kmeans_choose_k(query text, k_max integer, options jsonb DEFAULT '{}')
    RETURNS SETOF segment.kmeans_k_score
    LANGUAGE sql VOLATILE AS
$$
    SELECT * FROM segment_internal.kmeans_choose_k_run(query, k_max, options, pg_catalog.current_setting('search_path'))
$$;
COMMENT ON FUNCTION segment.kmeans_choose_k(text, integer, jsonb) IS
    'For k = 1..k_max: inertia (elbow), silhouette on a sample, simplified silhouette on all points, and the model';

CREATE FUNCTION segment.kmeans_choose_k(relation regclass, features name, k_max integer,
                                        options jsonb DEFAULT '{}')
    RETURNS SETOF segment.kmeans_k_score
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT * FROM segment.kmeans_choose_k(segment_internal.kmeans_source(relation, features), k_max, options);
$$;
COMMENT ON FUNCTION segment.kmeans_choose_k(regclass, name, integer, jsonb) IS
    'For k = 1..k_max over a relation''s feature column: inertia, silhouette, simplified silhouette, model';
