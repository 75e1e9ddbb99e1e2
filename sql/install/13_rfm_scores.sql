-- rfm_scores(): RFM figures, scores and segments of every customer of an
-- orders relation, in one call.

-- The type of a column, or a clear error naming it.
CREATE FUNCTION segment_internal.column_type(rel regclass, col name) RETURNS regtype
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid INTO typ
      FROM pg_attribute AS a
     WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, rel
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN typ;
END
$$;
COMMENT ON FUNCTION segment_internal.column_type(regclass, name) IS
    'Type of a column of a relation; raises undefined_column when there is none';

-- The per-customer figures rfm_scores() scores, by a hash table of its own
-- (src/rfm_scores.c); over foreign or custom scans, a GROUP BY with the rfm
-- aggregate, which the shards run.
CREATE FUNCTION segment.rfm_figures(
    orders regclass,
    customer name,
    ordered_at name,
    amount name,
    as_of timestamptz DEFAULT pg_catalog.now())
    RETURNS TABLE (
        customer_id text,
        first_order timestamptz,
        last_order  timestamptz,
        frequency   bigint,
        monetary    numeric)
    AS 'MODULE_PATHNAME', 'segment_rfm_figures' LANGUAGE C STABLE STRICT PARALLEL SAFE
    ROWS 100000;
COMMENT ON FUNCTION segment.rfm_figures(regclass, name, name, name, timestamptz) IS
    'First and last order, number of orders and total amount of every customer of an orders relation, as of a time (orders after as_of and rows with a NULL key, time or amount are ignored)';

-- Validates the arguments and the columns' types, then runs one query: the
-- figures per customer (rfm_figures), breaks over all customers, scores and
-- segment labels.
CREATE FUNCTION segment.rfm_scores(
    orders regclass,
    customer name,
    ordered_at name,
    amount name,
    as_of timestamptz DEFAULT pg_catalog.now(),
    buckets integer DEFAULT 5,
    recency text DEFAULT 'calendar')
    RETURNS TABLE (
        customer_id  text,
        first_order  timestamptz,
        last_order   timestamptz,
        recency_days integer,
        frequency    bigint,
        monetary     numeric,
        r            integer,
        f            integer,
        m            integer,
        rfm_code     text,
        segment      text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ts_type  regtype;
    amt_type regtype;
BEGIN
    IF orders IS NULL OR customer IS NULL OR ordered_at IS NULL OR amount IS NULL THEN
        RAISE EXCEPTION 'orders, customer, ordered_at and amount must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to score as of now().';
    END IF;
    IF buckets IS NULL OR buckets NOT BETWEEN 2 AND 10 THEN
        RAISE EXCEPTION 'number of score buckets must be between 2 and 10'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(buckets::text, 'NULL'));
    END IF;

    -- calendar: days between the calendar dates (session TimeZone) of the
    -- last order and as_of; elapsed: whole 24-hour periods between them (what
    -- pandas' (as_of - last).days gives), a day less when the last order's
    -- time of day is later than as_of's
    IF recency IS NULL OR recency NOT IN ('calendar', 'elapsed') THEN
        RAISE EXCEPTION 'invalid recency "%"', coalesce(recency, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''calendar'' (calendar days, the default) or ''elapsed'' (24-hour periods).';
    END IF;

    PERFORM segment_internal.column_type(orders, customer);
    ts_type := segment_internal.column_type(orders, ordered_at);
    IF ts_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a timestamp',
                        ordered_at, orders, ts_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a timestamptz, timestamp or date column, or a view that casts it.';
    END IF;
    amt_type := segment_internal.column_type(orders, amount);
    IF amt_type <> 'money'::regtype AND
       (SELECT t.typcategory FROM pg_type AS t WHERE t.oid = amt_type) <> 'N' THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a number',
                        amount, orders, amt_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a numeric, integer or floating-point column, or a view that casts it.';
    END IF;

    RETURN QUERY EXECUTE $q$
        WITH figures AS MATERIALIZED (
            SELECT p.customer_id, p.first_order, p.last_order,
                   CASE WHEN $7 THEN pg_catalog.floor(pg_catalog.date_part('epoch', $1 - p.last_order)
                                                      / 86400)::integer
                        ELSE $1::date - (p.last_order)::date END AS recency_days,
                   p.frequency, p.monetary,
                   p.monetary::double precision AS monetary_f   -- cast once, not twice
              FROM segment.rfm_figures($3, $4, $5, $6, $1) AS p
        ), cuts AS (
            SELECT segment.breaks(x.recency_days, $2) AS rb,
                   segment.breaks(x.frequency, $2) AS fb,
                   segment.breaks(x.monetary_f, $2) AS mb
              FROM figures AS x
        )
        SELECT x.customer_id, x.first_order, x.last_order, x.recency_days,
               x.frequency, x.monetary, sc.r, sc.f, sc.m,
               sc.r::text || sc.f::text || sc.m::text,
               segment.rfm_segment(sc.r, sc.f, sc.m)
          FROM figures AS x
         CROSS JOIN cuts AS c
         CROSS JOIN LATERAL (
               SELECT segment.score(x.recency_days, c.rb, false) AS r,
                      segment.score(x.frequency, c.fb) AS f,
                      segment.score(x.monetary_f, c.mb) AS m) AS sc
        $q$
        USING as_of, buckets, orders, customer, ordered_at, amount, recency = 'elapsed';
END
$$;
COMMENT ON FUNCTION segment.rfm_scores(regclass, name, name, name, timestamptz, integer, text) IS
    'RFM figures, scores (1..buckets), code and named segment of every customer of an orders relation, as of a time (orders after as_of are ignored); recency in calendar days of the session''s TimeZone (recency => ''calendar'', the default) or in elapsed 24-hour periods (''elapsed'')';
