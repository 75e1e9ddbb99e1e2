-- segment.time_zone: a time zone name, checked on input (src/rfm_day.c).  The
-- per-customer aggregates take the zone of purchase days as this type: text
-- is collatable, and postgres_fdw ships no aggregate with a collatable
-- argument that does not come from a column.

CREATE TYPE segment.time_zone;

CREATE FUNCTION segment_internal.time_zone_in(cstring) RETURNS segment.time_zone
    AS 'MODULE_PATHNAME', 'segment_time_zone_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.time_zone_in(cstring) IS
    'Input function of type segment.time_zone: checks that the name is a time zone';

CREATE FUNCTION segment_internal.time_zone_out(segment.time_zone) RETURNS cstring
    AS 'MODULE_PATHNAME', 'segment_time_zone_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.time_zone_out(segment.time_zone) IS
    'Output function of type segment.time_zone';

CREATE TYPE segment.time_zone (
    INPUT = segment_internal.time_zone_in,
    OUTPUT = segment_internal.time_zone_out,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended,
    CATEGORY = 'S'
);
COMMENT ON TYPE segment.time_zone IS
    'A time zone name as SET TimeZone takes it (''Europe/Berlin'', ''UTC'', ''<+03>-03''), checked on input';

CREATE CAST (text AS segment.time_zone) WITH INOUT AS ASSIGNMENT;
