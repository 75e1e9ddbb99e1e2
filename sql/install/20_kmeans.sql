-- k-means: the model type, the in-memory fit aggregates, assignment
-- (src/kmeans_model.c, src/kmeans_fit.c, src/kmeans_core.c).

CREATE TYPE segment.kmeans_model;

CREATE FUNCTION segment_internal.kmeans_model_in(cstring) RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_model_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_model_in(cstring) IS
    'Input function of kmeans_model: parses and validates the JSON text form';

CREATE FUNCTION segment_internal.kmeans_model_out(segment.kmeans_model) RETURNS cstring
    AS 'MODULE_PATHNAME', 'segment_kmeans_model_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_model_out(segment.kmeans_model) IS
    'Output function of kmeans_model: a JSON object (castable to jsonb via text)';

CREATE TYPE segment.kmeans_model (
    INPUT = segment_internal.kmeans_model_in,
    OUTPUT = segment_internal.kmeans_model_out,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = extended
);
COMMENT ON TYPE segment.kmeans_model IS
    'A fitted k-means model: centroids, feature transform (log1p, z-score), inertia, iterations, restarts, seed; text form is JSON';

CREATE FUNCTION segment.kmeans_assign(model segment.kmeans_model, features double precision[])
    RETURNS integer
    AS 'MODULE_PATHNAME', 'segment_kmeans_assign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.kmeans_assign(segment.kmeans_model, double precision[]) IS
    'Cluster 1..k of the centroid nearest to the features, after the model''s transform (lowest number on ties)';

CREATE FUNCTION segment.kmeans_distance(model segment.kmeans_model, features double precision[])
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_kmeans_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.kmeans_distance(segment.kmeans_model, double precision[]) IS
    'Euclidean distance from the features to the nearest centroid, in the model''s transformed space';

CREATE FUNCTION segment.kmeans_centroids(model segment.kmeans_model)
    RETURNS TABLE (cluster integer, size bigint, centroid double precision[],
                   scaled_centroid double precision[])
    AS 'MODULE_PATHNAME', 'segment_kmeans_centroids' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    ROWS 8;
COMMENT ON FUNCTION segment.kmeans_centroids(segment.kmeans_model) IS
    'One row per cluster: number, size at fit time, centroid in raw feature units and in the model''s transformed space';

-- The in-memory fit: a float8[] state collecting the points (a concrete
-- type, so that Citus pushes the aggregates down partially).
CREATE FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer, jsonb)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer, jsonb) IS
    'Transition function of the kmeans and kmeans_k_scores aggregates';

CREATE FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer) IS
    'Transition function of the kmeans and kmeans_k_scores aggregates (default options)';

CREATE FUNCTION segment_internal.kmeans_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_combine(double precision[], double precision[]) IS
    'Combine function of the kmeans and kmeans_k_scores aggregates';

CREATE FUNCTION segment_internal.kmeans_final(double precision[]) RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_final(double precision[]) IS
    'Final function of the kmeans aggregate: runs the fit';

CREATE AGGREGATE segment.kmeans(features double precision[], k integer, options jsonb) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.kmeans(double precision[], integer, jsonb) IS
    'Fit k-means (k-means++ restarts, Hamerly or Lloyd) on the feature vectors in memory; options: seed, n_init, max_iter, tol, algorithm, standardize, log1p, init';

CREATE AGGREGATE segment.kmeans(features double precision[], k integer) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.kmeans(double precision[], integer) IS
    'Fit k-means on the feature vectors in memory with default options (seed 0, 10 restarts, no transform)';

CREATE TYPE segment.kmeans_k_score AS (
    k                     integer,
    inertia               double precision,
    silhouette            double precision,
    simplified_silhouette double precision,
    model                 segment.kmeans_model
);
COMMENT ON TYPE segment.kmeans_k_score IS
    'Scores of one k when choosing k: inertia (elbow), silhouette on a sample, simplified silhouette on all points, and the model';

CREATE FUNCTION segment_internal.kmeans_scores_final(double precision[]) RETURNS segment.kmeans_k_score[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_scores_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.kmeans_scores_final(double precision[]) IS
    'Final function of the kmeans_k_scores aggregate: fits and scores k = 1..k_max';

CREATE AGGREGATE segment.kmeans_k_scores(features double precision[], k_max integer, options jsonb) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_scores_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.kmeans_k_scores(double precision[], integer, jsonb) IS
    'Fit k = 1..k_max and score each: inertia, silhouette on a sample (option silhouette_sample, default 1000), simplified silhouette on all';

CREATE AGGREGATE segment.kmeans_k_scores(features double precision[], k_max integer) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_scores_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.kmeans_k_scores(double precision[], integer) IS
    'Fit k = 1..k_max with default options and score each: inertia, silhouette, simplified silhouette';
