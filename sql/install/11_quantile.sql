-- Exact quantile cut points and scoring (src/quantile.c).

CREATE FUNCTION segment_internal.breaks_trans(double precision[], double precision, integer)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.breaks_trans(double precision[], double precision, integer) IS
    'Transition function of the breaks aggregate';

CREATE FUNCTION segment_internal.breaks_trans(double precision[], double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.breaks_trans(double precision[], double precision) IS
    'Transition function of the breaks aggregate (5 buckets)';

CREATE FUNCTION segment_internal.breaks_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.breaks_combine(double precision[], double precision[]) IS
    'Combine function of the breaks aggregate';

CREATE FUNCTION segment_internal.breaks_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.breaks_final(double precision[]) IS
    'Final function of the breaks aggregate';

CREATE FUNCTION segment_internal.breaks_ranked_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_ranked_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.breaks_ranked_final(double precision[]) IS
    'Final function of the breaks_ranked aggregate (internal)';

-- The cut points of breaks() with their ranks: n-1 cut points, then the
-- number of values below each, then the number at or below each.  A refresh
-- keeps them so that the next, incremental, one moves the cut points by the
-- figures that changed (segment_internal.moved_breaks()).
CREATE AGGREGATE segment_internal.breaks_ranked(value double precision, buckets integer) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_ranked_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment_internal.breaks_ranked(double precision, integer) IS
    'The buckets-1 cut points of breaks(), then the number of values below each, then the number at or below each (internal)';

-- percentile_disc(fraction) of double precision values by selection, with
-- its ranks: {value, number below it, number at or below it, number of
-- values, its 0-based position}.  A full refresh finds the top-spender cut
-- with it (segment_internal.top_spender_at()).
CREATE FUNCTION segment_internal.rank_at_trans(double precision[], double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_rank_at_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rank_at_trans(double precision[], double precision, double precision) IS
    'Transition function of the rank_at aggregate (internal)';

CREATE FUNCTION segment_internal.rank_at_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_rank_at_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rank_at_combine(double precision[], double precision[]) IS
    'Combine function of the rank_at aggregate (internal)';

CREATE FUNCTION segment_internal.rank_at_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_rank_at_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rank_at_final(double precision[]) IS
    'Final function of the rank_at aggregate (internal)';

CREATE AGGREGATE segment_internal.rank_at(value double precision, fraction double precision) (
    SFUNC = segment_internal.rank_at_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.rank_at_final,
    COMBINEFUNC = segment_internal.rank_at_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment_internal.rank_at(double precision, double precision) IS
    'percentile_disc(fraction) of the values, found by selection, then the number of values below it, at or below it, all values and its position (internal)';

CREATE FUNCTION segment_internal.breaks_histogram_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_histogram_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.breaks_histogram_final(double precision[]) IS
    'Final function of the breaks_histogram aggregate (internal)';

-- The cut points of breaks() with every distinct value and its count, for
-- the figures with few distinct values (recency in days, frequency): n-1 cut
-- points, then the k distinct values ascending, then their counts (only the
-- cut points past 100,000 distinct values).
CREATE AGGREGATE segment_internal.breaks_histogram(value double precision, buckets integer) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_histogram_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment_internal.breaks_histogram(double precision, integer) IS
    'The buckets-1 cut points of breaks(), then the distinct values ascending, then how many times each occurs (internal)';

CREATE AGGREGATE segment.breaks(value double precision, buckets integer) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.breaks(double precision, integer) IS
    'The buckets-1 cut points percentile_disc(i/buckets) of the values, for score(); buckets 2..10';

CREATE AGGREGATE segment.breaks(value double precision) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.breaks(double precision) IS
    'The 4 quintile cut points percentile_disc(i/5) of the values, for score()';

CREATE FUNCTION segment.score(value double precision, breaks double precision[],
                              higher_is_better boolean DEFAULT true)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'segment_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment.score(double precision, double precision[], boolean) IS
    'Score 1..n of a value against n-1 ascending breaks: 1 + number of breaks below the value (reversed when higher_is_better is false); equal values get equal scores';
