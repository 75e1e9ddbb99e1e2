-- Products and order lines: order_lines(ordered_at, launched_at, category,
-- launch_days) per customer (trend followers, category affinity) and
-- restock(ordered_at, quantity) per customer and product (replenishment)
-- (src/products.c).  See docs-events.md.

CREATE TYPE segment.order_line_summary AS (
    lines               bigint,
    dated_lines         bigint,
    trend_lines         bigint,
    trend_share         double precision,
    undated_lines       bigint,
    categories          integer,
    top_category        text,
    top_category_lines  bigint,
    top_category_share  double precision,
    uncategorized_lines bigint
);
COMMENT ON TYPE segment.order_line_summary IS
    'Result of the order_lines aggregate: lines; lines whose product has a launch date, and of those the lines bought within launch_days of the launch (and their share); lines without a launch date (product missing or launch unknown); distinct categories, the top category (most lines, then latest purchase, then name), its lines and share of the categorized lines; lines without a category';

-- IMMUTABLE: launch_days are 24-hour days, nothing depends on the TimeZone.
CREATE FUNCTION segment_internal.order_lines_trans(internal, timestamptz, timestamptz, text, integer)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_lines_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.order_lines_trans(internal, timestamptz, timestamptz, text, integer) IS
    'Transition function of the order_lines aggregate';

CREATE FUNCTION segment_internal.order_lines_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_lines_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.order_lines_combine(internal, internal) IS
    'Combine function of the order_lines aggregate';

CREATE FUNCTION segment_internal.order_lines_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_lines_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.order_lines_serial(internal) IS
    'Serialization function of the order_lines aggregate';

CREATE FUNCTION segment_internal.order_lines_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_lines_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.order_lines_deserial(bytea, internal) IS
    'Deserialization function of the order_lines aggregate';

CREATE FUNCTION segment_internal.order_lines_final(internal) RETURNS segment.order_line_summary
    AS 'MODULE_PATHNAME', 'segment_lines_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.order_lines_final(internal) IS
    'Final function of the order_lines aggregate';

CREATE AGGREGATE segment.order_lines(ordered_at timestamptz, launched_at timestamptz,
                                     category text, launch_days integer) (
    SFUNC = segment_internal.order_lines_trans,
    STYPE = internal,
    SSPACE = 200,
    FINALFUNC = segment_internal.order_lines_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.order_lines_combine,
    SERIALFUNC = segment_internal.order_lines_serial,
    DESERIALFUNC = segment_internal.order_lines_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.order_lines(timestamptz, timestamptz, text, integer) IS
    'One customer''s order lines joined with their products: share bought within launch_days of the product''s launch (before it included), top category; lines with a NULL ordered_at are skipped, a NULL launched_at or category is counted';

CREATE TYPE segment.restock_summary AS (
    purchase_days    integer,
    first_purchase   timestamptz,
    last_purchase    timestamptz,
    units            double precision,
    last_units       double precision,
    mean_gap_days    double precision,
    days_per_unit    double precision,
    expected_restock date
);
COMMENT ON TYPE segment.restock_summary IS
    'Result of the restock aggregate over one customer''s lines of one product: distinct purchase days, first and last purchase, units in all and on the last purchase day, mean days between purchase days, days one unit lasted, and the expected re-stock date (last purchase day + last_units * days_per_unit; NULL with one purchase day)';

-- STABLE: purchase days are calendar days in the session's TimeZone.
CREATE FUNCTION segment_internal.restock_trans(internal, timestamptz, double precision) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_restock_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.restock_trans(internal, timestamptz, double precision) IS
    'Transition function of the restock aggregate';

CREATE FUNCTION segment_internal.restock_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_restock_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.restock_combine(internal, internal) IS
    'Combine function of the restock aggregate';

CREATE FUNCTION segment_internal.restock_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_restock_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.restock_serial(internal) IS
    'Serialization function of the restock aggregate';

CREATE FUNCTION segment_internal.restock_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_restock_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.restock_deserial(bytea, internal) IS
    'Deserialization function of the restock aggregate';

CREATE FUNCTION segment_internal.restock_final(internal) RETURNS segment.restock_summary
    AS 'MODULE_PATHNAME', 'segment_restock_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.restock_final(internal) IS
    'Final function of the restock aggregate';

CREATE AGGREGATE segment.restock(ordered_at timestamptz, quantity double precision) (
    SFUNC = segment_internal.restock_trans,
    STYPE = internal,
    SSPACE = 100,
    FINALFUNC = segment_internal.restock_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.restock_combine,
    SERIALFUNC = segment_internal.restock_serial,
    DESERIALFUNC = segment_internal.restock_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment.restock(timestamptz, double precision) IS
    'Re-stock figures of one customer''s purchases of one product (GROUP BY customer, product): purchase days, units, mean gap and the expected re-stock date; lines with a NULL ordered_at are skipped, a NULL quantity is one unit, a quantity <= 0 is an error';

-- Both product stages of a refresh in one pass over a customer's lines
-- (segment_internal.refresh_line_pass()): order_lines, and restock per
-- product (told apart by their text) reduced to the product due first.
CREATE TYPE segment_internal.line_stages_result AS (
    l               segment.order_line_summary,
    next_restock    date,
    restock_product text
);
COMMENT ON TYPE segment_internal.line_stages_result IS
    'Result of the line_stages aggregate: the order_lines summary of a customer''s lines, and the earliest expected re-stock date still to come and its product (internal)';

-- STABLE: purchase days are calendar days in the session's TimeZone.
CREATE FUNCTION segment_internal.line_stages_trans(internal, timestamptz, timestamptz, text, integer,
                                                   text, double precision, integer, date)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_line_stages_trans' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.line_stages_trans(internal, timestamptz, timestamptz, text, integer,
                                                       text, double precision, integer, date) IS
    'Transition function of the line_stages aggregate (internal)';

CREATE FUNCTION segment_internal.line_stages_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_line_stages_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.line_stages_combine(internal, internal) IS
    'Combine function of the line_stages aggregate (internal)';

CREATE FUNCTION segment_internal.line_stages_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_line_stages_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.line_stages_serial(internal) IS
    'Serialization function of the line_stages aggregate (internal)';

CREATE FUNCTION segment_internal.line_stages_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_line_stages_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.line_stages_deserial(bytea, internal) IS
    'Deserialization function of the line_stages aggregate (internal)';

CREATE FUNCTION segment_internal.line_stages_final(internal) RETURNS segment_internal.line_stages_result
    AS 'MODULE_PATHNAME', 'segment_line_stages_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.line_stages_final(internal) IS
    'Final function of the line_stages aggregate (internal)';

CREATE AGGREGATE segment_internal.line_stages(ordered_at timestamptz, launched_at timestamptz,
                                              category text, launch_days integer, product text,
                                              quantity double precision, restock_purchases integer,
                                              restock_from date) (
    SFUNC = segment_internal.line_stages_trans,
    STYPE = internal,
    SSPACE = 400,
    FINALFUNC = segment_internal.line_stages_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.line_stages_combine,
    SERIALFUNC = segment_internal.line_stages_serial,
    DESERIALFUNC = segment_internal.line_stages_deserial,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE segment_internal.line_stages(timestamptz, timestamptz, text, integer, text,
                                                  double precision, integer, date) IS
    'One customer''s order lines: order_lines(ordered_at, launched_at, category, launch_days), and of the products (lines with a product) bought on restock_purchases days or more, the one whose expected re-stock (as restock(ordered_at, quantity)) is due first on or after restock_from, ties by product in the collation of the arguments; lines with a NULL ordered_at are skipped (internal)';
