-- clv_summary: one customer's orders as (x, t_x, t_cal, mean_value) for the
-- BG/NBD and Gamma-Gamma fits (src/clv_summary.c).

CREATE TYPE segment.clv_summary AS (
    x          integer,
    t_x        double precision,
    t_cal      double precision,
    mean_value double precision
);
COMMENT ON TYPE segment.clv_summary IS
    'Result of the clv_summary aggregate: x repeat purchases (distinct purchase periods - 1), t_x time of the last and t_cal of as_of since the first purchase, mean value of the repeat purchases (0 when x = 0)';

-- STABLE, not IMMUTABLE: a purchase day is a calendar day in the session's TimeZone.
CREATE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz) IS
    'Transition function of the clv_summary aggregate';

CREATE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz,
                                          text)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz, text) IS
    'Transition function of the clv_summary aggregate with a time unit';

CREATE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz,
                                          text, text)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz, text, text) IS
    'Transition function of the clv_summary aggregate with a time unit and a purchase period';

-- IMMUTABLE: calendar days in the time zone it is given.
CREATE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz,
                                          text, text, segment.time_zone)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz, text, text, segment.time_zone) IS
    'Transition function of the clv_summary aggregate with a time unit, a purchase period and a time zone';

CREATE FUNCTION segment_internal.clv_summary_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.clv_summary_combine(double precision[], double precision[]) IS
    'Combine function of the clv_summary aggregate';

CREATE FUNCTION segment_internal.clv_summary_final(double precision[]) RETURNS segment.clv_summary
    AS 'MODULE_PATHNAME', 'segment_clv_summary_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.clv_summary_final(double precision[]) IS
    'Final function of the clv_summary aggregate';

CREATE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz) IS
    'One customer''s orders up to as_of as (x, t_x, t_cal, mean_value) in days, purchases counted on distinct calendar days of the session TimeZone';

CREATE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz,
                                     time_unit text) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz, text) IS
    'clv_summary with t_x and t_cal in time_unit (day or week), purchases counted on distinct days';

CREATE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz,
                                     time_unit text, period text) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz, text, text) IS
    'clv_summary with t_x and t_cal in time_unit and purchases counted on distinct purchase periods (day, or week starting on Monday)';

-- The same with the time zone of calendar days given explicitly, rather than
-- the session's (for queries shipped to other servers: postgres_fdw runs its
-- remote sessions in UTC).
CREATE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz,
                                     time_unit text, period text, time_zone segment.time_zone) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz, text, text, segment.time_zone) IS
    'clv_summary with calendar days (of the orders and of as_of) in the given time zone, a name as SET TimeZone takes';
