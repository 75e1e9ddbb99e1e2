-- The per-customer rfm(ordered_at, amount) aggregate (src/rfm.c).

CREATE TYPE segment.rfm_summary AS (
    first_order   timestamptz,
    last_order    timestamptz,
    orders        bigint,
    purchase_days integer,
    monetary      numeric,
    mean_amount   numeric,
    mean_gap_days double precision
);
COMMENT ON TYPE segment.rfm_summary IS
    'Result of the rfm aggregate: first and last order, number of orders, distinct purchase days, total and mean amount, mean days between purchase days';

-- STABLE, not IMMUTABLE: a purchase day is a calendar day in the session's TimeZone.
CREATE FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric) IS
    'Transition function of the rfm aggregate';

-- IMMUTABLE: purchase days in the time zone it is given.
CREATE FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric, segment.time_zone) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric, segment.time_zone) IS
    'Transition function of the rfm aggregate with an explicit time zone';

CREATE FUNCTION segment_internal.rfm_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rfm_combine(internal, internal) IS
    'Combine function of the rfm aggregate';

CREATE FUNCTION segment_internal.rfm_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_rfm_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rfm_serial(internal) IS
    'Serialization function of the rfm aggregate';

CREATE FUNCTION segment_internal.rfm_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rfm_deserial(bytea, internal) IS
    'Deserialization function of the rfm aggregate';

CREATE FUNCTION segment_internal.rfm_final(internal) RETURNS segment.rfm_summary
    AS 'MODULE_PATHNAME', 'segment_rfm_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rfm_final(internal) IS
    'Final function of the rfm aggregate';

CREATE AGGREGATE segment.rfm(ordered_at timestamptz, amount numeric) (
    SFUNC = segment_internal.rfm_trans,
    STYPE = internal,
    SSPACE = 128,
    FINALFUNC = segment_internal.rfm_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.rfm_combine,
    SERIALFUNC = segment_internal.rfm_serial,
    DESERIALFUNC = segment_internal.rfm_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.rfm(timestamptz, numeric) IS
    'Recency, frequency and monetary figures of one customer''s orders (rows with a NULL timestamp or amount are skipped)';

-- The same with the time zone of purchase days given explicitly, rather than
-- the session's: a query shipped to other servers (postgres_fdw runs its
-- remote sessions in UTC) then counts the same days as one server would.
CREATE AGGREGATE segment.rfm(ordered_at timestamptz, amount numeric, time_zone segment.time_zone) (
    SFUNC = segment_internal.rfm_trans,
    STYPE = internal,
    SSPACE = 128,
    FINALFUNC = segment_internal.rfm_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.rfm_combine,
    SERIALFUNC = segment_internal.rfm_serial,
    DESERIALFUNC = segment_internal.rfm_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.rfm(timestamptz, numeric, segment.time_zone) IS
    'The rfm aggregate with purchase days counted in the given time zone (a name as SET TimeZone takes, e.g. current_setting(''TimeZone'')::segment.time_zone)';

-- The figures of a customer whose new orders all fall on the stored last
-- order's day (same_day: the first of them does) or later days
-- (src/rfm_summary.c): what an incremental refresh computes from the change
-- log alone.
CREATE FUNCTION segment_internal.rfm_append(stored segment.rfm_summary, appended segment.rfm_summary,
                                            same_day boolean)
    RETURNS segment.rfm_summary
    AS 'MODULE_PATHNAME', 'segment_rfm_append' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.rfm_append(segment.rfm_summary, segment.rfm_summary, boolean) IS
    'The rfm_summary of the orders of stored and appended, appended''s on stored''s last day (same_day) or later days (internal)';
