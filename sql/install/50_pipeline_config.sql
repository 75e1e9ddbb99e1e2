-- The pipeline, part 1: named segmentations (configure) and their profile
-- tables.  See README "Pipeline".

-- Whether fixed cut points fit a number of buckets: NULL (quantiles), or one
-- dimension of buckets - 1 finite, ascending values.  The CHECK constraints
-- of segment.segmentations use it, so that an UPDATE cannot store what
-- configure() refuses (check_fixed_breaks() says why).
CREATE FUNCTION segment_internal.fixed_breaks_valid(breaks double precision[], buckets integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT breaks IS NULL OR (
        pg_catalog.array_ndims(breaks) = 1 AND pg_catalog.cardinality(breaks) = buckets - 1 AND
        NOT EXISTS (SELECT FROM pg_catalog.unnest(breaks) WITH ORDINALITY AS b(v, i)
                     WHERE b.v IS NULL OR NOT (b.v > '-Infinity' AND b.v < 'Infinity')
                        OR b.v < breaks[pg_catalog.array_lower(breaks, 1) + b.i - 2]))
$$;
COMMENT ON FUNCTION segment_internal.fixed_breaks_valid(double precision[], integer) IS
    'Whether fixed cut points are NULL or buckets-1 finite ascending values in one dimension (internal)';

-- One row per named segmentation.  Relations are stored by name, not regclass,
-- so that a dump restores them and a dropped relation gives a clear error at
-- the next refresh instead of a dangling OID.
CREATE TABLE segment.segmentations (
    name              text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,39}$'),
    is_default        boolean NOT NULL DEFAULT false,
    orders            text NOT NULL,
    customer          name NOT NULL,
    ordered_at        name NOT NULL,
    amount            name NOT NULL,
    discount          name,
    status            name,
    exclude_status    text[],
    customers         text,
    customers_key     name,
    key_type          regtype NOT NULL,
    buckets           integer NOT NULL DEFAULT 5 CHECK (buckets BETWEEN 2 AND 10),
    as_of_rule        text NOT NULL DEFAULT 'now' CHECK (as_of_rule IN ('now', 'last_order')),
    r_breaks          double precision[],
    f_breaks          double precision[],
    m_breaks          double precision[],
    new_days          integer NOT NULL DEFAULT 30 CHECK (new_days >= 0),
    top_spender_share double precision NOT NULL DEFAULT 0.1
                      CHECK (top_spender_share > 0 AND top_spender_share < 1),
    discount_share    double precision NOT NULL DEFAULT 0.5
                      CHECK (discount_share >= 0 AND discount_share < 1),
    lapsing_factor    double precision NOT NULL DEFAULT 2
                      CHECK (lapsing_factor > 0 AND lapsing_factor <= 1000),
    rebuy_days        integer NOT NULL DEFAULT 7 CHECK (rebuy_days >= 0),
    -- k-means clusters (off while clusters is NULL)
    clusters          integer CHECK (clusters BETWEEN 2 AND 50),
    cluster_features  text[] NOT NULL DEFAULT '{recency_days,frequency,monetary}',
    cluster_options   jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(cluster_options) = 'object'),
    cluster_model     text NOT NULL DEFAULT 'refit' CHECK (cluster_model IN ('refit', 'reuse')),
    -- lifetime value: BG/NBD and Gamma-Gamma (off unless clv)
    clv               boolean NOT NULL DEFAULT false,
    clv_time_unit     text NOT NULL DEFAULT 'day' CHECK (clv_time_unit IN ('day', 'week')),
    clv_months        integer NOT NULL DEFAULT 12 CHECK (clv_months BETWEEN 1 AND 120),
    clv_discount_rate double precision NOT NULL DEFAULT 0.01
                      CHECK (clv_discount_rate >= 0 AND clv_discount_rate < 1),
    clv_penalizer     double precision NOT NULL DEFAULT 0
                      CHECK (clv_penalizer >= 0 AND clv_penalizer < 'Infinity'),
    clv_min_repeat_buyers integer NOT NULL DEFAULT 10 CHECK (clv_min_repeat_buyers >= 1),
    -- the purchase model of lifetime value: BG/NBD, MBG/NBD or Pareto/NBD
    clv_model         text NOT NULL DEFAULT 'bgnbd' CHECK (clv_model IN ('bgnbd', 'mbgnbd', 'pareto_nbd')),
    at_risk_p_alive   double precision NOT NULL DEFAULT 0.5
                      CHECK (at_risk_p_alive > 0 AND at_risk_p_alive < 1),
    high_value_share  double precision NOT NULL DEFAULT 0.2
                      CHECK (high_value_share > 0 AND high_value_share < 1),
    -- recency and tenure in calendar days of the session's time zone, or in
    -- elapsed 24-hour periods (segment_internal.days_since_sql())
    recency           text NOT NULL DEFAULT 'calendar' CHECK (recency IN ('calendar', 'elapsed')),
    profile           name NOT NULL UNIQUE,
    last_refresh      bigint,
    -- the role a refresh runs as (set and checked by 52_pipeline_rules.sql)
    owner             regrole NOT NULL,
    CONSTRAINT r_breaks_valid CHECK (segment_internal.fixed_breaks_valid(r_breaks, buckets)),
    CONSTRAINT f_breaks_valid CHECK (segment_internal.fixed_breaks_valid(f_breaks, buckets)),
    CONSTRAINT m_breaks_valid CHECK (segment_internal.fixed_breaks_valid(m_breaks, buckets)),
    CHECK (status IS NULL OR exclude_status IS NOT NULL),
    CHECK ((customers IS NULL) = (customers_key IS NULL))
);
COMMENT ON TABLE segment.segmentations IS
    'Named segmentations: the orders relation and columns, options and rule thresholds of each (edit with segment.configure(); thresholds may be updated in place)';
CREATE UNIQUE INDEX segmentations_one_default ON segment.segmentations (is_default)
    WHERE is_default;
SELECT pg_catalog.pg_extension_config_dump('segment.segmentations', '');

-- The names a shop gives the clusters of a segmentation, after reading
-- segment.describe_clusters(); a refresh copies them into the profile's
-- cluster_name, where rules can use them.
CREATE TABLE segment.cluster_names (
    segmentation text NOT NULL REFERENCES segment.segmentations (name)
                      ON DELETE CASCADE ON UPDATE CASCADE,
    cluster      integer NOT NULL CHECK (cluster >= 1),
    name         text NOT NULL CHECK (name <> ''),
    PRIMARY KEY (segmentation, cluster),
    UNIQUE (segmentation, name)
);
COMMENT ON TABLE segment.cluster_names IS
    'Names of the k-means clusters of each segmentation (set with segment.name_cluster()), copied into the profile''s cluster_name by the next refresh';
SELECT pg_catalog.pg_extension_config_dump('segment.cluster_names', '');

-- The columns of a profile row after the customer key; profile_of() returns
-- this type, and every profile table is (customer_id <key type>, these).
CREATE TYPE segment.customer_profile AS (
    first_order        timestamptz,
    last_order         timestamptz,
    tenure_days        integer,
    recency_days       integer,
    frequency          bigint,
    purchase_days      integer,
    monetary           numeric,
    mean_amount        numeric,
    mean_gap_days      double precision,
    discount_share     double precision,
    due_in_days        integer,
    r                  integer,
    f                  integer,
    m                  integer,
    rfm_code           text,
    rfm_segment        text,
    cluster            integer,
    cluster_name       text,
    cluster_distance   double precision,
    p_alive            double precision,
    expected_purchases double precision,
    clv                double precision,
    visits             bigint,
    product_views      bigint,
    cart_adds          bigint,
    newsletter_opens   bigint,
    last_visit         timestamptz,
    days_since_visit   integer,
    abandoned_at       timestamptz,
    abandoned_products text[],
    subscribed         boolean,
    support_contacts   bigint,
    negative_contacts  bigint,
    last_negative_contact timestamptz,
    trend_share        double precision,
    trend_lines        bigint,
    top_category       text,
    next_restock       date,
    restock_product    text,
    unbrowsed_lines    bigint,
    unbrowsed_share    double precision,
    flags              text[],
    segment            text
);
COMMENT ON TYPE segment.customer_profile IS
    'A customer''s profile (the columns of a profile table after customer_id), as returned by profile_of()';

-- The profile's shape is defined once, by segment.customer_profile: the
-- profile tables (create_profile()), profile_of() and segment_of()
-- (src/lookup.c), the columns rules see (rule_columns()) and the select lists
-- of a refresh (profile_columns_sql()) are read from it.  This gives the
-- columns a refresh computes before the rules (all but flags and segment),
-- from the one named first to the one named last (NULL: from the first, to
-- the last), qualified by alias, in their order.
CREATE FUNCTION segment_internal.profile_columns_sql(alias text, first_column name, last_column name)
    RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    WITH c AS (
        SELECT a.attname, a.attnum
          FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid = 'segment.customer_profile'::regclass AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT IN ('flags', 'segment')
    )
    SELECT pg_catalog.string_agg(CASE WHEN alias IS NULL THEN format('%I', c.attname)
                                      ELSE format('%I.%I', alias, c.attname) END, ', ' ORDER BY c.attnum)
      FROM c
     WHERE c.attnum >= coalesce((SELECT f.attnum FROM c AS f WHERE f.attname = first_column), 0)
       AND c.attnum <= coalesce((SELECT l.attnum FROM c AS l WHERE l.attname = last_column), 32767)
$$;
COMMENT ON FUNCTION segment_internal.profile_columns_sql(text, name, name) IS
    'The profile columns (segment.customer_profile) a refresh computes before the rules (all but flags and segment), from first_column to last_column (NULL: from the first, to the last), qualified by alias (NULL: bare), in their order (internal)';

-- The segmentation row of a name (NULL: the default one), or a clear error.
CREATE FUNCTION segment_internal.segmentation_row(segmentation text) RETURNS segment.segmentations
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations;
BEGIN
    IF segmentation IS NULL THEN
        SELECT * INTO s FROM segment.segmentations AS x WHERE x.is_default;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no segmentation is configured'
                USING ERRCODE = 'object_not_in_prerequisite_state',
                      HINT = 'Run segment.configure(orders => ..., customer => ..., ordered_at => ..., amount => ...) first.';
        END IF;
    ELSE
        SELECT * INTO s FROM segment.segmentations AS x WHERE x.name = segmentation;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'segmentation "%" does not exist', segmentation
                USING ERRCODE = 'undefined_object',
                      HINT = 'The configured segmentations are listed in segment.segmentations.';
        END IF;
    END IF;
    RETURN s;
END
$$;
COMMENT ON FUNCTION segment_internal.segmentation_row(text) IS
    'The configuration row of a segmentation (NULL: the default one); raises an error when there is none';

-- Checks that a fixed list of cut points fits the number of buckets.
CREATE FUNCTION segment_internal.check_fixed_breaks(what text, breaks double precision[], buckets integer)
    RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF breaks IS NULL THEN
        RETURN;
    END IF;
    IF pg_catalog.cardinality(breaks) <> buckets - 1 OR pg_catalog.array_ndims(breaks) <> 1 THEN
        RAISE EXCEPTION '% must have % elements, one less than the number of buckets', what, buckets - 1
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', breaks);
    END IF;
    IF pg_catalog.array_position(breaks, NULL) IS NOT NULL OR EXISTS (
        SELECT 1 FROM pg_catalog.unnest(breaks) WITH ORDINALITY AS b(v, i)
         WHERE b.v = ANY (ARRAY['NaN', 'Infinity', '-Infinity']::double precision[])
            OR b.v < breaks[pg_catalog.array_lower(breaks, 1) + b.i - 2]) THEN
        RAISE EXCEPTION '% must be finite and ascending', what
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', breaks);
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_fixed_breaks(text, double precision[], integer) IS
    'Raises an error unless fixed cut points are finite, ascending and buckets-1 in number';

-- The profile columns k-means may cluster on (the lifetime-value ones only
-- when the segmentation computes them).
CREATE FUNCTION segment_internal.cluster_feature_columns(clv boolean) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ARRAY['tenure_days', 'recency_days', 'frequency', 'purchase_days', 'monetary',
                 'mean_amount', 'mean_gap_days', 'discount_share', 'due_in_days', 'r', 'f', 'm']
           || CASE WHEN clv THEN ARRAY['p_alive', 'expected_purchases', 'clv'] ELSE '{}' END
$$;
COMMENT ON FUNCTION segment_internal.cluster_feature_columns(boolean) IS
    'The numeric profile columns a segmentation may cluster on (with lifetime value: also p_alive, expected_purchases, clv)';

-- The name of a segmentation's k-means model in segment.kmeans_models.
CREATE FUNCTION segment_internal.cluster_model_name(segmentation text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT 'segmentation.' || segmentation
$$;
COMMENT ON FUNCTION segment_internal.cluster_model_name(text) IS
    'Name under which a refresh stores the k-means model of a segmentation in segment.kmeans_models';

-- The k-means options a refresh fits with: log1p and z-scores unless the
-- segmentation's cluster_options say otherwise.
CREATE FUNCTION segment_internal.cluster_fit_options(s segment.segmentations) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT '{"log1p": true, "standardize": true}'::jsonb || s.cluster_options
$$;
COMMENT ON FUNCTION segment_internal.cluster_fit_options(segment.segmentations) IS
    'The k-means options of a segmentation: {"log1p": true, "standardize": true} overridden by its cluster_options';

-- Raises an error unless the clustering of a segmentation is usable: k in
-- range, features that are numeric profile columns, options the k-means
-- aggregate accepts.
CREATE FUNCTION segment_internal.check_clusters(s segment.segmentations) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    allowed text[] := segment_internal.cluster_feature_columns(s.clv);
    feature text;
    d       integer := pg_catalog.cardinality(s.cluster_features);
    state   text;
    msg     text;
    hint    text;
BEGIN
    IF s.clusters IS NULL THEN
        RETURN;
    END IF;
    IF s.clusters NOT BETWEEN 2 AND 50 THEN
        RAISE EXCEPTION 'number of clusters must be between 2 and 50'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', s.clusters),
                  HINT = 'Pass clusters => NULL to turn clustering off.';
    END IF;
    IF coalesce(d, 0) = 0 OR pg_catalog.array_ndims(s.cluster_features) <> 1 THEN
        RAISE EXCEPTION 'cluster_features must name at least one profile column'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example cluster_features => ''{recency_days,frequency,monetary}'' (the default).';
    END IF;
    FOREACH feature IN ARRAY s.cluster_features LOOP
        IF feature IS NULL THEN
            RAISE EXCEPTION 'cluster_features must not contain NULL'
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        IF feature <> ALL (allowed) AND feature = ANY (segment_internal.cluster_feature_columns(true)) THEN
            RAISE EXCEPTION 'clustering feature "%" needs lifetime value', feature
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Pass clv => true as well, or cluster on other columns.';
        END IF;
        IF feature <> ALL (allowed) THEN
            RAISE EXCEPTION 'unknown clustering feature "%"', feature
                USING ERRCODE = 'undefined_column',
                      DETAIL = 'A clustering feature is a numeric column of the profile.',
                      HINT = 'Use some of: ' || pg_catalog.array_to_string(allowed, ', ') || '.';
        END IF;
    END LOOP;
    IF (SELECT pg_catalog.count(DISTINCT f) FROM pg_catalog.unnest(s.cluster_features) AS f) < d THEN
        RAISE EXCEPTION 'cluster_features must not name a column twice'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', s.cluster_features);
    END IF;
    IF s.cluster_options ? 'init' THEN
        RAISE EXCEPTION 'cluster_options must not set "init"'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'A refresh starts from the centroids of the previous model, or from k-means++ when there is none.';
    END IF;
    -- The k-means aggregate checks the options, on k made-up points.
    BEGIN
        PERFORM segment.kmeans(pg_catalog.array_fill(i::double precision, ARRAY[d]), s.clusters,
                               segment_internal.cluster_fit_options(s))
           FROM pg_catalog.generate_series(1, s.clusters) AS i;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
        RAISE EXCEPTION 'invalid cluster_options: %', msg
            USING ERRCODE = state,
                  DETAIL = format('Got %s.', s.cluster_options),
                  HINT = coalesce(nullif(hint, ''), 'The options are those of segment.kmeans().');
    END;
END
$$;
COMMENT ON FUNCTION segment_internal.check_clusters(segment.segmentations) IS
    'Raises an error unless the clustering of a segmentation (k, features, options) is usable';

-- Raises an error unless the lifetime-value settings of a segmentation are usable.
CREATE FUNCTION segment_internal.check_clv(s segment.segmentations) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF s.clv IS NULL THEN
        RAISE EXCEPTION 'clv must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass clv => true to compute lifetime values, false not to.';
    END IF;
    IF s.clv_time_unit IS NULL OR s.clv_time_unit NOT IN ('day', 'week') THEN
        RAISE EXCEPTION 'invalid clv_time_unit "%"', s.clv_time_unit
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''day'' (purchases counted on distinct days) or ''week'' (on distinct weeks).';
    END IF;
    IF NOT coalesce(s.clv_months BETWEEN 1 AND 120, false) THEN
        RAISE EXCEPTION 'clv_months must be between 1 and 120'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(s.clv_months::text, 'NULL'));
    END IF;
    IF NOT coalesce(s.clv_discount_rate >= 0 AND s.clv_discount_rate < 1, false) THEN
        RAISE EXCEPTION 'clv_discount_rate must be at least 0 and below 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(s.clv_discount_rate::text, 'NULL')),
                  HINT = 'The rate is a fraction per month: 0.01 discounts by 1% a month.';
    END IF;
    IF NOT coalesce(s.clv_penalizer >= 0 AND s.clv_penalizer < 'Infinity', false) THEN
        RAISE EXCEPTION 'clv_penalizer must be a finite number of at least 0'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(s.clv_penalizer::text, 'NULL'));
    END IF;
    IF NOT coalesce(s.clv_min_repeat_buyers >= 1, false) THEN
        RAISE EXCEPTION 'clv_min_repeat_buyers must be at least 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(s.clv_min_repeat_buyers::text, 'NULL'));
    END IF;
    IF NOT coalesce(s.at_risk_p_alive > 0 AND s.at_risk_p_alive < 1
                    AND s.high_value_share > 0 AND s.high_value_share < 1, false) THEN
        RAISE EXCEPTION 'at_risk_p_alive and high_value_share must be above 0 and below 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got at_risk_p_alive %s, high_value_share %s.',
                                  coalesce(s.at_risk_p_alive::text, 'NULL'),
                                  coalesce(s.high_value_share::text, 'NULL'));
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_clv(segment.segmentations) IS
    'Raises an error unless the lifetime-value settings of a segmentation are in range';

-- Validates a segmentation against the catalog as it is now: relations and
-- columns exist, types are usable.  Returns the customer key type.  Called by
-- configure() and again by every refresh(), since tables change.
CREATE FUNCTION segment_internal.check_segmentation(s segment.segmentations) RETURNS regtype
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    orders    regclass := pg_catalog.to_regclass(s.orders);
    customers regclass;
    key_type  regtype;
    typ       regtype;
BEGIN
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders relation "%" of segmentation "%" does not exist', s.orders, s.name
            USING ERRCODE = 'undefined_table',
                  HINT = 'Run segment.configure() again with the new relation.';
    END IF;
    key_type := segment_internal.column_type(orders, s.customer);
    IF key_type NOT IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype,
                        'text'::regtype, 'varchar'::regtype, 'uuid'::regtype) THEN
        RAISE EXCEPTION 'customer column "%" of relation "%" has type %, expected integer, bigint, text or uuid',
                        s.customer, orders, key_type
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    typ := segment_internal.column_type(orders, s.ordered_at);
    IF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a timestamp',
                        s.ordered_at, orders, typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a timestamptz, timestamp or date column, or a view that casts it.';
    END IF;
    typ := segment_internal.column_type(orders, s.amount);
    IF typ <> 'money'::regtype AND
       (SELECT t.typcategory FROM pg_type AS t WHERE t.oid = typ) <> 'N' THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a number',
                        s.amount, orders, typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a numeric, integer or floating-point column, or a view that casts it.';
    END IF;
    IF s.discount IS NOT NULL THEN
        typ := segment_internal.column_type(orders, s.discount);
        IF (SELECT t.typcategory FROM pg_type AS t WHERE t.oid = typ) NOT IN ('N', 'B', 'S') THEN
            RAISE EXCEPTION 'discount column "%" of relation "%" has type %, expected a number, boolean or text',
                            s.discount, orders, typ
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'An order is discounted when the number is above zero, the boolean is true or the text (a coupon code) is not empty.';
        END IF;
    END IF;
    IF s.status IS NOT NULL THEN
        PERFORM segment_internal.column_type(orders, s.status);
    END IF;
    IF s.customers IS NOT NULL THEN
        customers := pg_catalog.to_regclass(s.customers);
        IF customers IS NULL THEN
            RAISE EXCEPTION 'customers relation "%" of segmentation "%" does not exist', s.customers, s.name
                USING ERRCODE = 'undefined_table',
                      HINT = 'Run segment.configure() again with the new relation.';
        END IF;
        typ := segment_internal.column_type(customers, s.customers_key);
        IF typ <> key_type AND NOT
           (typ IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) AND
            key_type IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype)) AND NOT
           (typ IN ('text'::regtype, 'varchar'::regtype) AND
            key_type IN ('text'::regtype, 'varchar'::regtype)) THEN
            RAISE EXCEPTION 'customer key "%" of relation "%" has type %, but orders are keyed by %',
                            s.customers_key, customers, typ, key_type
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    END IF;
    IF NOT (s.new_days >= 0 AND s.rebuy_days >= 0 AND s.lapsing_factor > 0 AND
            s.top_spender_share > 0 AND s.top_spender_share < 1 AND
            s.discount_share >= 0 AND s.discount_share < 1) THEN
        RAISE EXCEPTION 'invalid rule threshold'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got new_days %s, rebuy_days %s, lapsing_factor %s, top_spender_share %s, discount_share %s.',
                                  s.new_days, s.rebuy_days, s.lapsing_factor, s.top_spender_share, s.discount_share),
                  HINT = 'Days must not be negative, lapsing_factor must be positive, the shares must be at least 0 (top_spender_share above 0) and below 1.';
    END IF;
    -- NaN passes "> 0" (it sorts above every number), and a huge factor
    -- overflows when the Lapsing rule multiplies it by a mean gap.
    IF NOT (s.lapsing_factor <= 1000) THEN
        RAISE EXCEPTION 'lapsing_factor must be a finite number above 0 and at most 1000'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', s.lapsing_factor),
                  HINT = 'A customer is lapsing when the days since their last order exceed lapsing_factor times their mean gap between purchase days (default 2).';
    END IF;
    PERFORM segment_internal.check_fixed_breaks('r_breaks', s.r_breaks, s.buckets),
            segment_internal.check_fixed_breaks('f_breaks', s.f_breaks, s.buckets),
            segment_internal.check_fixed_breaks('m_breaks', s.m_breaks, s.buckets);
    PERFORM segment_internal.check_clv(s);
    PERFORM segment_internal.check_clusters(s);
    RETURN key_type;
END
$$;
COMMENT ON FUNCTION segment_internal.check_segmentation(segment.segmentations) IS
    'Checks that the relations and columns of a segmentation exist and have usable types and that its options are in range; returns the customer key type';

-- Creates the empty profile table of a segmentation, keyed by the native key type.
CREATE FUNCTION segment_internal.create_profile(profile name, key_type regtype, segmentation text)
    RETURNS regclass
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cols text;
BEGIN
    SELECT pg_catalog.string_agg(format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)),
                                 ', ' ORDER BY a.attnum)
      INTO cols
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'segment.customer_profile'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    -- fillfactor 50: room on each page for the next refresh's HOT updates
    EXECUTE format('CREATE TABLE segment.%I (customer_id %s PRIMARY KEY, %s) WITH (fillfactor = 50)',
                   profile, key_type, cols);
    EXECUTE format('COMMENT ON TABLE segment.%I IS %L', profile,
                   format('Profile of segmentation %s: one row per customer, replaced by segment.refresh()',
                          segmentation));
    RETURN format('segment.%I', profile)::regclass;
END
$$;
COMMENT ON FUNCTION segment_internal.create_profile(name, regtype, text) IS
    'Creates the empty profile table of a segmentation';

-- See the README for the parameters.  Configuring an existing name replaces
-- its whole configuration (parameters left out get their defaults); its rules
-- and history are kept, and so is its profile unless the key type changed.
CREATE FUNCTION segment.configure(
    orders            regclass,
    customer          name,
    ordered_at        name,
    amount            name,
    segmentation      text DEFAULT 'default',
    discount          name DEFAULT NULL,
    status            name DEFAULT NULL,
    exclude_status    text[] DEFAULT NULL,
    customers         regclass DEFAULT NULL,
    customers_key     name DEFAULT NULL,
    buckets           integer DEFAULT 5,
    as_of             text DEFAULT 'now',
    r_breaks          double precision[] DEFAULT NULL,
    f_breaks          double precision[] DEFAULT NULL,
    m_breaks          double precision[] DEFAULT NULL,
    new_days          integer DEFAULT 30,
    top_spender_share double precision DEFAULT 0.1,
    discount_share    double precision DEFAULT 0.5,
    lapsing_factor    double precision DEFAULT 2,
    rebuy_days        integer DEFAULT 7,
    clusters          integer DEFAULT NULL,
    cluster_features  text[] DEFAULT '{recency_days,frequency,monetary}',
    cluster_options   jsonb DEFAULT '{}',
    cluster_model     text DEFAULT 'refit',
    clv               boolean DEFAULT false,
    clv_time_unit     text DEFAULT 'day',
    clv_months        integer DEFAULT 12,
    clv_discount_rate double precision DEFAULT 0.01,
    clv_penalizer     double precision DEFAULT 0,
    clv_min_repeat_buyers integer DEFAULT 10,
    at_risk_p_alive   double precision DEFAULT 0.5,
    high_value_share  double precision DEFAULT 0.2,
    is_default        boolean DEFAULT NULL,
    recency           text DEFAULT 'calendar',
    clv_model         text DEFAULT 'bgnbd')
    RETURNS regclass
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s        segment.segmentations;
    old      segment.segmentations;
    key_type regtype;
    prof     regclass;
    dropped  boolean := false;
BEGIN
    IF orders IS NULL OR customer IS NULL OR ordered_at IS NULL OR amount IS NULL THEN
        RAISE EXCEPTION 'orders, customer, ordered_at and amount must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF segmentation IS NULL OR segmentation !~ '^[a-z_][a-z0-9_]{0,39}$' THEN
        RAISE EXCEPTION 'invalid segmentation name "%"', segmentation
            USING ERRCODE = 'invalid_name',
                  DETAIL = 'A segmentation name is 1 to 40 lower-case letters, digits or underscores, not starting with a digit.';
    END IF;
    IF buckets IS NULL OR buckets NOT BETWEEN 2 AND 10 THEN
        RAISE EXCEPTION 'number of score buckets must be between 2 and 10'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(buckets::text, 'NULL'));
    END IF;
    IF as_of IS NULL OR as_of NOT IN ('now', 'last_order') THEN
        RAISE EXCEPTION 'invalid as_of rule "%"', as_of
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''now'' (score as of the time of the refresh) or ''last_order'' (as of the latest order, for historical data).';
    END IF;
    IF status IS NOT NULL AND exclude_status IS NULL THEN
        RAISE EXCEPTION 'a status column needs exclude_status, the statuses to leave out'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example exclude_status => ''{cancelled,refunded}''.';
    END IF;
    IF cluster_model IS NULL OR cluster_model NOT IN ('refit', 'reuse') THEN
        RAISE EXCEPTION 'invalid cluster_model "%"', cluster_model
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''refit'' (fit again at every refresh, from the previous centroids) or ''reuse'' (fit once, then assign with that model).';
    END IF;
    IF cluster_options IS NULL OR pg_catalog.jsonb_typeof(cluster_options) <> 'object' THEN
        RAISE EXCEPTION 'cluster_options must be a jsonb object'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example cluster_options => ''{"seed": 7, "n_init": 20}''.';
    END IF;

    s.name := segmentation;
    s.orders := orders::text;
    s.customer := customer;
    s.ordered_at := ordered_at;
    s.amount := amount;
    s.discount := discount;
    s.status := status;
    s.exclude_status := exclude_status;
    s.customers := customers::text;
    s.customers_key := CASE WHEN customers IS NOT NULL THEN coalesce(customers_key, customer) END;
    s.buckets := buckets;
    s.as_of_rule := as_of;
    s.r_breaks := r_breaks;
    s.f_breaks := f_breaks;
    s.m_breaks := m_breaks;
    s.new_days := new_days;
    s.top_spender_share := top_spender_share;
    s.discount_share := discount_share;
    s.lapsing_factor := lapsing_factor;
    s.rebuy_days := rebuy_days;
    s.clusters := clusters;
    s.cluster_features := cluster_features;
    s.cluster_options := cluster_options;
    s.cluster_model := cluster_model;
    s.clv := clv;
    s.clv_time_unit := clv_time_unit;
    s.clv_months := clv_months;
    s.clv_discount_rate := clv_discount_rate;
    s.clv_penalizer := clv_penalizer;
    s.clv_min_repeat_buyers := clv_min_repeat_buyers;
    s.at_risk_p_alive := at_risk_p_alive;
    s.high_value_share := high_value_share;
    IF recency IS NULL OR recency NOT IN ('calendar', 'elapsed') THEN
        RAISE EXCEPTION 'invalid recency "%"', coalesce(recency, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''calendar'' (calendar days, the default) or ''elapsed'' (24-hour periods).';
    END IF;
    s.recency := recency;
    IF clv_model IS NULL OR clv_model NOT IN ('bgnbd', 'mbgnbd', 'pareto_nbd') THEN
        RAISE EXCEPTION 'invalid lifetime-value model "%"', coalesce(clv_model, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The models are bgnbd (BG/NBD, the default), mbgnbd (MBG/NBD) and pareto_nbd (Pareto/NBD); segment.choose_clv_model() picks one by a holdout test.';
    END IF;
    IF clv_model = 'pareto_nbd' AND clv_penalizer > 0 THEN
        RAISE EXCEPTION 'clv_penalizer is not available with the Pareto/NBD model'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use clv_penalizer => 0, or the bgnbd or mbgnbd model.';
    END IF;
    s.clv_model := clv_model;
    s.profile := 'profile_' || segmentation;
    key_type := segment_internal.check_segmentation(s);
    s.key_type := key_type;
    -- The sources it keeps must fit the new configuration too (key type, orders).
    PERFORM segment_internal.check_sources(s);

    SELECT * INTO old FROM segment.segmentations AS x WHERE x.name = segmentation FOR UPDATE;
    IF FOUND THEN
        s.last_refresh := old.last_refresh;
        s.is_default := coalesce(configure.is_default, old.is_default);
        IF old.key_type <> key_type OR pg_catalog.to_regclass(format('segment.%I', old.profile)) IS NULL THEN
            EXECUTE format('DROP TABLE IF EXISTS segment.%I', old.profile);
            PERFORM segment_internal.create_profile(s.profile, key_type, segmentation);
            s.last_refresh := NULL;
        END IF;
        -- Another clustering: the stored model and the cluster names no longer apply.
        IF (old.clusters, old.cluster_features, old.cluster_options) IS DISTINCT FROM
           (s.clusters, s.cluster_features, s.cluster_options) THEN
            DELETE FROM segment.kmeans_models AS m WHERE m.name = segment_internal.cluster_model_name(segmentation);
            dropped := FOUND;
            DELETE FROM segment.cluster_names AS n WHERE n.segmentation = configure.segmentation;
            IF dropped OR FOUND THEN
                RAISE NOTICE 'the clustering of segmentation "%" changed: its k-means model and cluster names were dropped',
                             segmentation;
            END IF;
        END IF;
    ELSE
        s.is_default := coalesce(configure.is_default,
                                 NOT EXISTS (SELECT 1 FROM segment.segmentations AS x WHERE x.is_default));
        PERFORM segment_internal.create_profile(s.profile, key_type, segmentation);
    END IF;
    IF s.is_default THEN
        UPDATE segment.segmentations AS x SET is_default = false
         WHERE x.is_default AND x.name <> segmentation;
    END IF;
    -- Update in place rather than delete and insert: rules reference the row.
    INSERT INTO segment.segmentations SELECT s.*
        ON CONFLICT (name) DO UPDATE SET
            is_default = excluded.is_default, orders = excluded.orders,
            customer = excluded.customer, ordered_at = excluded.ordered_at,
            amount = excluded.amount, discount = excluded.discount, status = excluded.status,
            exclude_status = excluded.exclude_status, customers = excluded.customers,
            customers_key = excluded.customers_key, key_type = excluded.key_type,
            buckets = excluded.buckets, as_of_rule = excluded.as_of_rule,
            r_breaks = excluded.r_breaks, f_breaks = excluded.f_breaks, m_breaks = excluded.m_breaks,
            new_days = excluded.new_days, top_spender_share = excluded.top_spender_share,
            discount_share = excluded.discount_share, lapsing_factor = excluded.lapsing_factor,
            rebuy_days = excluded.rebuy_days, clusters = excluded.clusters,
            cluster_features = excluded.cluster_features, cluster_options = excluded.cluster_options,
            cluster_model = excluded.cluster_model, clv = excluded.clv,
            clv_time_unit = excluded.clv_time_unit, clv_months = excluded.clv_months,
            clv_discount_rate = excluded.clv_discount_rate, clv_penalizer = excluded.clv_penalizer,
            clv_min_repeat_buyers = excluded.clv_min_repeat_buyers,
            at_risk_p_alive = excluded.at_risk_p_alive, high_value_share = excluded.high_value_share,
            recency = excluded.recency, clv_model = excluded.clv_model,
            profile = excluded.profile, last_refresh = excluded.last_refresh;
    PERFORM segment.add_builtin_rules(segmentation);
    -- Change capture for incremental refreshes, on the orders and columns now
    -- configured (without it, or where it cannot be, refreshes are full).
    IF old.name IS NOT NULL AND (old.orders, old.customer, old.ordered_at, old.key_type) IS DISTINCT FROM
                                (s.orders, s.customer, s.ordered_at, s.key_type) THEN
        PERFORM segment_internal.drop_capture(segmentation);
    END IF;
    PERFORM segment_internal.setup_capture(s);
    RETURN format('segment.%I', s.profile)::regclass;
END
$$;
COMMENT ON FUNCTION segment.configure(regclass, name, name, name, text, name, name, text[], regclass, name,
                                      integer, text, double precision[], double precision[],
                                      double precision[], integer, double precision, double precision,
                                      double precision, integer, integer, text[], jsonb, text, boolean,
                                      text, integer, double precision, double precision, integer,
                                      double precision, double precision, boolean, text, text) IS
    'Creates or replaces a named segmentation of an orders relation after checking its columns and options (clusters, lifetime value); returns its profile table';

-- Drops a segmentation, its profile table, rules and history.
CREATE FUNCTION segment.drop_segmentation(segmentation text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    IF segmentation IS NULL THEN
        RAISE EXCEPTION 'segmentation name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('DROP TABLE IF EXISTS segment.%I', s.profile);
    PERFORM segment_internal.drop_capture(s.name);
    DELETE FROM segment.kmeans_models AS m WHERE m.name = segment_internal.cluster_model_name(s.name);
    DELETE FROM segment.history AS h WHERE h.segmentation = s.name;
    DELETE FROM segment.refreshes AS r WHERE r.segmentation = s.name;
    DELETE FROM segment.segmentations AS x WHERE x.name = s.name;
END
$$;
COMMENT ON FUNCTION segment.drop_segmentation(text) IS
    'Drops a segmentation with its profile table, rules, cluster names and k-means model, refreshes and history';
