-- The pipeline, part 2: the other tables a shop has, each optional, named
-- per segmentation: its site and newsletter events (configure_event_source), its
-- support contacts (configure_contact_source), its order lines with the products
-- (configure_product_source).  Checked when configured and again by every
-- refresh, which summarises each with the aggregates of 80-82_*.sql (see
-- 53_pipeline_refresh.sql).  Relations are stored by name, as in
-- segment.segmentations.

CREATE TABLE segment.event_sources (
    segmentation         text PRIMARY KEY REFERENCES segment.segmentations (name)
                              ON DELETE CASCADE ON UPDATE CASCADE,
    relation             text NOT NULL,
    customer             name NOT NULL,
    event_type           name NOT NULL,
    occurred_at          name NOT NULL,
    product              name,
    kinds                jsonb CHECK (kinds IS NULL OR pg_catalog.jsonb_typeof(kinds) = 'object'),
    lookback             interval NOT NULL DEFAULT '30 days'
                         CHECK (lookback > interval '0' AND lookback <= interval '100 years'),
    abandoned_days       integer NOT NULL DEFAULT 7 CHECK (abandoned_days BETWEEN 1 AND 36525),
    indecisive_visits    integer NOT NULL DEFAULT 5 CHECK (indecisive_visits >= 1),
    indecisive_cart_adds integer NOT NULL DEFAULT 3 CHECK (indecisive_cart_adds >= 1),
    -- Impulse Buyers (56_pipeline_impulse.sql): a purchased product is browsed when
    -- it was viewed or put in the cart within impulse_days before the order
    impulse_days         integer NOT NULL DEFAULT 7 CHECK (impulse_days BETWEEN 1 AND 36525),
    impulse_share        double precision NOT NULL DEFAULT 0.6
                         CHECK (impulse_share > 0 AND impulse_share <= 1),
    impulse_lines        integer NOT NULL DEFAULT 2 CHECK (impulse_lines >= 1)
);
COMMENT ON TABLE segment.event_sources IS
    'The events relation of each segmentation that has one (set with segment.configure_event_source()): its columns, the mapping of event types to kinds, the window, and the thresholds of the built-in rules Abandoned Cart, Indecisive and Impulse Buyers (may be updated in place)';
SELECT pg_catalog.pg_extension_config_dump('segment.event_sources', '');

CREATE TABLE segment.contact_sources (
    segmentation   text PRIMARY KEY REFERENCES segment.segmentations (name)
                        ON DELETE CASCADE ON UPDATE CASCADE,
    relation       text NOT NULL,
    customer       name NOT NULL,
    opened_at      name NOT NULL,
    negative       name,
    negative_below double precision CHECK (negative_below > '-Infinity' AND negative_below < 'Infinity'),
    lookback       interval NOT NULL DEFAULT '30 days'
                   CHECK (lookback > interval '0' AND lookback <= interval '100 years'),
    angry_contacts integer NOT NULL DEFAULT 1 CHECK (angry_contacts >= 1),
    CHECK (negative_below IS NULL OR negative IS NOT NULL)
);
COMMENT ON TABLE segment.contact_sources IS
    'The support contacts relation of each segmentation that has one (set with segment.configure_contact_source()): its columns, how a contact is negative (a boolean column, a score below negative_below, or every contact when negative is NULL), the window, and the threshold of the built-in rule Angry Customers';
SELECT pg_catalog.pg_extension_config_dump('segment.contact_sources', '');

CREATE TABLE segment.product_sources (
    segmentation      text PRIMARY KEY REFERENCES segment.segmentations (name)
                           ON DELETE CASCADE ON UPDATE CASCADE,
    order_lines       text NOT NULL,
    line_order        name NOT NULL,
    line_product      name NOT NULL,
    quantity          name,
    orders_key        name NOT NULL,
    products          text,
    product_key       name,
    launched_at       name,
    category          name,
    launch_days       integer NOT NULL DEFAULT 30 CHECK (launch_days BETWEEN 0 AND 36525),
    trend_share       double precision NOT NULL DEFAULT 0.5 CHECK (trend_share > 0 AND trend_share <= 1),
    trend_lines       integer NOT NULL DEFAULT 2 CHECK (trend_lines >= 1),
    restock_purchases integer NOT NULL DEFAULT 3 CHECK (restock_purchases >= 2),
    restock_days      integer NOT NULL DEFAULT 14 CHECK (restock_days BETWEEN 0 AND 36525),
    line_customer     name,
    CHECK ((products IS NULL) = (product_key IS NULL)),
    CHECK (products IS NOT NULL OR (launched_at IS NULL AND category IS NULL))
);
COMMENT ON TABLE segment.product_sources IS
    'The order lines (and products) of each segmentation that has them (set with segment.configure_product_source()): the lines'' order, product, quantity and optional customer columns, the orders relation''s order key, the products relation''s key, launch time and category, and the thresholds of the built-in rules Trend Followers and Due to Re-stock';
SELECT pg_catalog.pg_extension_config_dump('segment.product_sources', '');

-- Whether two key types can be compared as keys: the same type, two integer
-- widths, or text and varchar (the rule configure applies to the customers key).
-- Whether a key of type a, cast to type b, can fail: an integer type wider
-- than b (a bigint customer key of the events read as the orders' integer).
CREATE FUNCTION segment_internal.key_narrows(a regtype, b regtype) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.array_position(ARRAY['smallint', 'integer', 'bigint']::regtype[], a)
           > pg_catalog.array_position(ARRAY['smallint', 'integer', 'bigint']::regtype[], b)
$$;
COMMENT ON FUNCTION segment_internal.key_narrows(regtype, regtype) IS
    'Whether casting a key of the first integer type to the second can fail (internal)';

-- Whether a numeric column can be read as double precision (money, oid and
-- the reg* types are numbers to the catalog, but have no such cast).
CREATE FUNCTION segment_internal.reads_as_float8(t regtype) RETURNS boolean
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT t = 'double precision'::regtype
        OR EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                    WHERE c.castsource = t AND c.casttarget = 'double precision'::regtype)
$$;
COMMENT ON FUNCTION segment_internal.reads_as_float8(regtype) IS
    'Whether a column type can be cast to double precision, as scores and quantities are read (internal)';

CREATE FUNCTION segment_internal.keys_compatible(a regtype, b regtype) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT a = b
        OR (a IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) AND
            b IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype))
        OR (a IN ('text'::regtype, 'varchar'::regtype) AND b IN ('text'::regtype, 'varchar'::regtype))
$$;
COMMENT ON FUNCTION segment_internal.keys_compatible(regtype, regtype) IS
    'Whether two key types compare as keys: equal, both integers, or both text/varchar';

-- The configure function of a kind of source, for hints.
CREATE FUNCTION segment_internal.source_configure_function(kind text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE kind WHEN 'events' THEN 'segment.configure_event_source()'
                     WHEN 'contacts' THEN 'segment.configure_contact_source()'
                     WHEN 'products' THEN 'segment.configure_product_source()' END
$$;
COMMENT ON FUNCTION segment_internal.source_configure_function(text) IS
    'The function that configures a kind of source (events, contacts, products), for hints (internal)';

-- Whether a segmentation has a source of a kind yet (errors raised while it
-- is being configured for the first time say so).
CREATE FUNCTION segment_internal.source_configured(kind text, segmentation text) RETURNS boolean
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE kind
        WHEN 'events' THEN EXISTS (SELECT FROM segment.event_sources AS x WHERE x.segmentation = $2)
        WHEN 'contacts' THEN EXISTS (SELECT FROM segment.contact_sources AS x WHERE x.segmentation = $2)
        WHEN 'products' THEN EXISTS (SELECT FROM segment.product_sources AS x WHERE x.segmentation = $2)
        ELSE false END
$$;
COMMENT ON FUNCTION segment_internal.source_configured(text, text) IS
    'Whether a segmentation has a source of a kind (events, contacts, products) (internal)';

-- The hint of an error about a missing column or relation (what) of a source.
CREATE FUNCTION segment_internal.source_hint(kind text, segmentation text, what text) RETURNS text
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN segment_internal.source_configured(kind, segmentation)
                THEN format('Run %s again with the new %s, or segment.drop_source(%L, %L).',
                            segment_internal.source_configure_function(kind), what, kind, segmentation)
                ELSE format('Pass %s the name of an existing %s.', segment_internal.source_configure_function(kind), what)
           END
$$;
COMMENT ON FUNCTION segment_internal.source_hint(text, text, text) IS
    'The hint of an error about a missing column or relation of a source: configure it again or drop it, or, while it is first configured, name an existing one (internal)';

-- A key of a relation that is on several rows (NULL: none), unless a unique
-- index on that column alone rules it out.
CREATE FUNCTION segment_internal.duplicate_key(rel regclass, col name) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    dup text;
BEGIN
    IF EXISTS (
        SELECT FROM pg_catalog.pg_index AS i
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = rel AND i.indisunique AND i.indnkeyatts = 1
           AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = col) THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT x.%1$I::text FROM %2$s AS x WHERE x.%1$I IS NOT NULL GROUP BY x.%1$I HAVING pg_catalog.count(*) > 1 LIMIT 1',
                   col, rel)
        INTO dup;
    RETURN dup;
END
$$;
COMMENT ON FUNCTION segment_internal.duplicate_key(regclass, name) IS
    'A value of a key column that is on several rows of a relation, NULL when there is none or a unique index on the column rules it out (internal)';

-- A configured relation of a source, or a clear error when it is gone.
CREATE FUNCTION segment_internal.source_relation(relation text, what text, kind text, segmentation text)
    RETURNS regclass
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rel regclass := pg_catalog.to_regclass(relation);
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION '% relation "%" of segmentation "%" does not exist', what, relation, segmentation
            USING ERRCODE = 'undefined_table',
                  HINT = segment_internal.source_hint(kind, segmentation, 'relation');
    END IF;
    RETURN rel;
END
$$;
COMMENT ON FUNCTION segment_internal.source_relation(text, text, text, text) IS
    'The relation of a source as a regclass; raises undefined_table, naming the source, when it does not exist (internal)';

-- The type of a configured column of a source, or a clear error naming the
-- source when the column is gone (dropped or renamed since).
CREATE FUNCTION segment_internal.source_column(rel regclass, col name, role text, kind text, segmentation text)
    RETURNS regtype
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid INTO typ
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, rel
            USING ERRCODE = 'undefined_column',
                  DETAIL = CASE WHEN segment_internal.source_configured(kind, segmentation)
                                THEN format('The %s source of segmentation "%s" reads it as the %s.',
                                            kind, segmentation, role)
                                ELSE format('It was named as the %s of the %s source of segmentation "%s".',
                                            role, kind, segmentation) END,
                  HINT = segment_internal.source_hint(kind, segmentation, 'column');
    END IF;
    RETURN typ;
END
$$;
COMMENT ON FUNCTION segment_internal.source_column(regclass, name, text, text, text) IS
    'Type of a column a source reads; raises undefined_column, naming the source and the column''s role, when it does not exist (internal)';

-- Raises an error unless a column of a source has a timestamp type.
CREATE FUNCTION segment_internal.check_source_time(rel regclass, col name, role text, kind text, segmentation text)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    typ regtype := segment_internal.source_column(rel, col, role, kind, segmentation);
BEGIN
    IF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION '% column "%" of relation "%" has type %, expected a timestamp', role, col, rel, typ
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('It is the %s of the %s source of segmentation "%s".', role, kind, segmentation),
                  HINT = 'Use a timestamptz, timestamp or date column, or a view that casts it.';
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_source_time(regclass, name, text, text, text) IS
    'Raises datatype_mismatch unless a column of a source is a timestamptz, timestamp or date (internal)';

-- Raises an error unless a key column of a source compares with another key type.
CREATE FUNCTION segment_internal.check_source_key(rel regclass, col name, role text, kind text, segmentation text,
                                         key_type regtype, keyed text)
    RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    typ regtype := segment_internal.source_column(rel, col, role, kind, segmentation);
BEGIN
    IF NOT segment_internal.keys_compatible(typ, key_type) THEN
        RAISE EXCEPTION '% column "%" of relation "%" has type %, but % keyed by %',
                        role, col, rel, typ, keyed, key_type
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('It is the %s of the %s source of segmentation "%s".', role, kind, segmentation),
                  HINT = format('Use a view that casts it to %s.', key_type);
    END IF;
    -- Customer keys are read as the orders' key type: a wider one could fail
    -- on a value beyond it in the middle of a refresh.
    IF role = 'customer' AND segment_internal.key_narrows(typ, key_type) THEN
        RAISE EXCEPTION '% column "%" of relation "%" has type %, wider than the % key of the orders',
                        role, col, rel, typ, key_type
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('The %s source of segmentation "%s" reads its customer keys as %s; a value beyond that type would fail every refresh.',
                                  kind, segmentation, key_type),
                  HINT = format('Use a view that casts it to %s and leaves out the keys beyond that type.', key_type);
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_source_key(regclass, name, text, text, text, regtype, text) IS
    'Raises datatype_mismatch unless a key column of a source has a type comparable with key_type (internal)';

-- Raises an error unless a window is a positive interval of at most 100
-- years (PostgreSQL 17 has infinite intervals; a window reaching past the
-- timestamps' range would fail every refresh).
CREATE FUNCTION segment_internal.check_source_window(w interval) RETURNS void
    LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF w > interval '100 years' THEN
        RAISE EXCEPTION 'lookback must be at most 100 years'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', w),
                  HINT = 'For example lookback => ''30 days''.';
    END IF;
    -- Every part positive or zero: '1 mon -29 days' is positive on average
    -- but reaches past as_of from some dates.
    IF w IS NULL OR NOT w > interval '0'
       OR pg_catalog.date_part('year', w) < 0 OR pg_catalog.date_part('month', w) < 0
       OR pg_catalog.date_part('day', w) < 0
       OR w - pg_catalog.date_trunc('day', w) < interval '0' THEN
        RAISE EXCEPTION 'lookback must be a positive interval'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(w::text, 'NULL')),
                  HINT = 'For example lookback => ''30 days''.';
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_source_window(interval) IS
    'Raises invalid_parameter_value unless a window is a positive interval of at most 100 years (internal)';

-- Checks an events source against the catalog as it is now.
CREATE FUNCTION segment_internal.check_event_source(s segment.segmentations, e segment.event_sources) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rel regclass := segment_internal.source_relation(e.relation, 'events', 'events', s.name);
    typ regtype;
BEGIN
    PERFORM segment_internal.check_source_key(rel, e.customer, 'customer', 'events', s.name, s.key_type,
                                     'orders are');
    typ := segment_internal.source_column(rel, e.event_type, 'event type', 'events', s.name);
    IF (SELECT t.typcategory FROM pg_catalog.pg_type AS t WHERE t.oid = typ) NOT IN ('S', 'E') THEN
        RAISE EXCEPTION 'event type column "%" of relation "%" has type %, expected text', e.event_type, rel, typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a text, varchar or enum column, or a view that casts it.';
    END IF;
    PERFORM segment_internal.check_source_time(rel, e.occurred_at, 'event time', 'events', s.name);
    IF e.product IS NOT NULL THEN
        PERFORM segment_internal.source_column(rel, e.product, 'product', 'events', s.name);
    END IF;
    IF e.kinds IS NOT NULL THEN
        -- event_kind() parses the whole mapping and raises for a bad one.
        PERFORM segment.event_kind('', e.kinds);
    END IF;
    PERFORM segment_internal.check_source_window(e.lookback);
    IF NOT coalesce(e.abandoned_days >= 1 AND e.indecisive_visits >= 1 AND e.indecisive_cart_adds >= 1, false) THEN
        RAISE EXCEPTION 'abandoned_days, indecisive_visits and indecisive_cart_adds must be at least 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got abandoned_days %s, indecisive_visits %s, indecisive_cart_adds %s.',
                                  coalesce(e.abandoned_days::text, 'NULL'),
                                  coalesce(e.indecisive_visits::text, 'NULL'),
                                  coalesce(e.indecisive_cart_adds::text, 'NULL'));
    END IF;
    IF e.abandoned_days > 36525 THEN
        RAISE EXCEPTION 'abandoned_days must be at most 36525'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', e.abandoned_days),
                  HINT = 'A cart is abandoned when it was filled within abandoned_days days of as_of (default 7).';
    END IF;
    -- NaN passes "> 0" (it sorts above every number): <= 1 catches it.
    IF NOT coalesce(e.impulse_days BETWEEN 1 AND 36525 AND e.impulse_share > 0 AND e.impulse_share <= 1
                    AND e.impulse_lines >= 1, false) THEN
        RAISE EXCEPTION 'invalid Impulse Buyers threshold'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got impulse_days %s, impulse_share %s, impulse_lines %s.',
                                  coalesce(e.impulse_days::text, 'NULL'), coalesce(e.impulse_share::text, 'NULL'),
                                  coalesce(e.impulse_lines::text, 'NULL')),
                  HINT = 'impulse_days is 1 to 36525 (default 7), impulse_share above 0 and at most 1 (default 0.6), impulse_lines at least 1 (default 2).';
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_event_source(segment.segmentations, segment.event_sources) IS
    'Raises an error unless the events source of a segmentation is usable: relation and columns exist, the key compares with the orders'' key, types, mapping, window and thresholds are valid';

-- Checks a support contacts source against the catalog as it is now.
CREATE FUNCTION segment_internal.check_contact_source(s segment.segmentations, c segment.contact_sources) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    rel regclass := segment_internal.source_relation(c.relation, 'support contacts', 'contacts', s.name);
    typ regtype;
    cat "char";
BEGIN
    PERFORM segment_internal.check_source_key(rel, c.customer, 'customer', 'contacts', s.name, s.key_type,
                                     'orders are');
    PERFORM segment_internal.check_source_time(rel, c.opened_at, 'contact time', 'contacts', s.name);
    IF c.negative IS NOT NULL THEN
        typ := segment_internal.source_column(rel, c.negative, 'negative flag or score', 'contacts', s.name);
        cat := (SELECT t.typcategory FROM pg_catalog.pg_type AS t WHERE t.oid = typ);
        IF cat = 'N' AND NOT segment_internal.reads_as_float8(typ) THEN
            cat := 'X';					-- a number that cannot be read as one (money)
        END IF;
        IF cat = 'B' AND c.negative_below IS NOT NULL THEN
            RAISE EXCEPTION 'negative_below is for a score column, but column "%" of relation "%" is boolean',
                            c.negative, rel
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Leave negative_below out: a boolean column is the negative flag itself.';
        ELSIF cat = 'N' AND c.negative_below IS NULL THEN
            RAISE EXCEPTION 'a score column needs negative_below, the score under which a contact is negative'
                USING ERRCODE = 'invalid_parameter_value',
                      DETAIL = format('Column "%s" of relation "%s" has type %s.', c.negative, rel, typ),
                      HINT = 'For example negative_below => 3 for ratings from 1 to 5, or 0 for a sentiment from -1 to 1.';
        ELSIF cat NOT IN ('B', 'N') THEN
            RAISE EXCEPTION 'negative column "%" of relation "%" has type %, expected a boolean or a number',
                            c.negative, rel, typ
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use a boolean flag, a numeric score with negative_below, or a view that computes one.';
        END IF;
    ELSIF c.negative_below IS NOT NULL THEN
        RAISE EXCEPTION 'negative_below needs a score column (negative)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT coalesce(c.negative_below > '-Infinity' AND c.negative_below < 'Infinity', c.negative_below IS NULL) THEN
        RAISE EXCEPTION 'negative_below must be a finite number'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', c.negative_below);
    END IF;
    PERFORM segment_internal.check_source_window(c.lookback);
    IF NOT coalesce(c.angry_contacts >= 1, false) THEN
        RAISE EXCEPTION 'angry_contacts must be at least 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(c.angry_contacts::text, 'NULL'));
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_contact_source(segment.segmentations, segment.contact_sources) IS
    'Raises an error unless the support contacts source of a segmentation is usable: relation and columns exist, the key compares with the orders'' key, the negative flag or score and the thresholds are valid';

-- Checks an order lines (and products) source against the catalog as it is now.
CREATE FUNCTION segment_internal.check_product_source(s segment.segmentations, p segment.product_sources) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    lines    regclass := segment_internal.source_relation(p.order_lines, 'order lines', 'products', s.name);
    orders   regclass := pg_catalog.to_regclass(s.orders);
    products regclass;
    typ      regtype;
    dup      text;
BEGIN
    IF orders IS NULL THEN
        RAISE EXCEPTION 'orders relation "%" of segmentation "%" does not exist', s.orders, s.name
            USING ERRCODE = 'undefined_table',
                  HINT = 'Run segment.configure() again with the new relation.';
    END IF;
    typ := segment_internal.source_column(orders, p.orders_key, 'order key of the orders', 'products', s.name);
    PERFORM segment_internal.check_source_key(lines, p.line_order, 'order', 'products', s.name, typ, 'the orders are');
    -- Each line joins one order: a key on two orders would count its lines twice.
    dup := segment_internal.duplicate_key(orders, p.orders_key);
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'orders relation "%" of segmentation "%" has several rows for order %', orders, s.name, dup
            USING ERRCODE = 'cardinality_violation',
                  DETAIL = format('The products source joins each order line to one order by %s.', p.orders_key),
                  HINT = format('Name the orders relation''s unique order key with orders_key => ..., or make %s unique in %s (a primary key).',
                                p.orders_key, orders);
    END IF;
    IF p.line_customer IS NOT NULL THEN
        PERFORM segment_internal.check_source_key(lines, p.line_customer, 'customer', 'products', s.name,
                                         s.key_type, 'the orders are');
    END IF;
    typ := segment_internal.source_column(lines, p.line_product, 'product', 'products', s.name);
    IF p.quantity IS NOT NULL THEN
        typ := segment_internal.source_column(lines, p.quantity, 'quantity', 'products', s.name);
        IF (SELECT t.typcategory FROM pg_catalog.pg_type AS t WHERE t.oid = typ) <> 'N'
           OR NOT segment_internal.reads_as_float8(typ) THEN
            RAISE EXCEPTION 'quantity column "%" of relation "%" has type %, expected a number', p.quantity, lines, typ
                USING ERRCODE = 'datatype_mismatch',
                      HINT = 'Use an integer or numeric column, or a view that casts it.';
        END IF;
    END IF;
    IF p.products IS NOT NULL THEN
        products := segment_internal.source_relation(p.products, 'products', 'products', s.name);
        PERFORM segment_internal.check_source_key(products, p.product_key, 'product key', 'products', s.name,
                                         segment_internal.source_column(lines, p.line_product, 'product', 'products', s.name),
                                         'the order lines'' products are');
        -- Each line joins one product: a key on two products would count its lines twice.
        dup := segment_internal.duplicate_key(products, p.product_key);
        IF dup IS NOT NULL THEN
            RAISE EXCEPTION 'products relation "%" of segmentation "%" has several rows for product %', products, s.name, dup
                USING ERRCODE = 'cardinality_violation',
                      DETAIL = format('The products source joins each order line to one product by %s.', p.product_key),
                      HINT = format('Make %s unique in %s (a primary key), or use a view with one row per product.',
                                    p.product_key, products);
        END IF;
        IF p.launched_at IS NOT NULL THEN
            PERFORM segment_internal.check_source_time(products, p.launched_at, 'launch time', 'products', s.name);
        END IF;
        IF p.category IS NOT NULL THEN
            PERFORM segment_internal.source_column(products, p.category, 'category', 'products', s.name);
        END IF;
    END IF;
    IF NOT coalesce(p.launch_days BETWEEN 0 AND 36525, false) THEN
        RAISE EXCEPTION 'launch_days must be between 0 and 36525'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(p.launch_days::text, 'NULL'));
    END IF;
    IF NOT coalesce(p.trend_share > 0 AND p.trend_share <= 1, false) THEN
        RAISE EXCEPTION 'trend_share must be above 0 and at most 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(p.trend_share::text, 'NULL'));
    END IF;
    IF NOT coalesce(p.trend_lines >= 1, false) THEN
        RAISE EXCEPTION 'trend_lines must be at least 1'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(p.trend_lines::text, 'NULL'));
    END IF;
    IF NOT coalesce(p.restock_purchases >= 2 AND p.restock_days >= 0, false) THEN
        RAISE EXCEPTION 'restock_purchases must be at least 2 and restock_days at least 0'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got restock_purchases %s, restock_days %s.',
                                  coalesce(p.restock_purchases::text, 'NULL'),
                                  coalesce(p.restock_days::text, 'NULL')),
                  HINT = 'An expected re-stock date needs at least two purchase days of a product.';
    END IF;
    IF p.restock_days > 36525 THEN
        RAISE EXCEPTION 'restock_days must be at most 36525'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', p.restock_days),
                  HINT = 'Due to Re-stock holds when the next re-stock falls within restock_days days of as_of (default 14).';
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.check_product_source(segment.segmentations, segment.product_sources) IS
    'Raises an error unless the order lines and products source of a segmentation is usable: relations and columns exist, the order and product keys compare, types and thresholds are valid';

-- Checks every source of a segmentation; returns the kinds it has.
CREATE FUNCTION segment_internal.check_sources(s segment.segmentations) RETURNS text[]
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    e     segment.event_sources;
    c     segment.contact_sources;
    p     segment.product_sources;
    kinds text[] := '{}';
BEGIN
    SELECT * INTO e FROM segment.event_sources AS x WHERE x.segmentation = s.name;
    IF FOUND THEN
        PERFORM segment_internal.check_event_source(s, e);
        kinds := kinds || 'events'::text;
    END IF;
    SELECT * INTO c FROM segment.contact_sources AS x WHERE x.segmentation = s.name;
    IF FOUND THEN
        PERFORM segment_internal.check_contact_source(s, c);
        kinds := kinds || 'contacts'::text;
    END IF;
    SELECT * INTO p FROM segment.product_sources AS x WHERE x.segmentation = s.name;
    IF FOUND THEN
        PERFORM segment_internal.check_product_source(s, p);
        kinds := kinds || 'products'::text;
    END IF;
    RETURN kinds;
END
$$;
COMMENT ON FUNCTION segment_internal.check_sources(segment.segmentations) IS
    'Checks the events, contacts and products sources of a segmentation against the catalog; returns the kinds it has';

-- See the README.  Creates or replaces the events source of a segmentation.
CREATE FUNCTION segment.configure_event_source(
    events               regclass,
    customer             name,
    event_type           name,
    occurred_at          name,
    segmentation         text DEFAULT NULL,
    product              name DEFAULT NULL,
    kinds                jsonb DEFAULT NULL,
    lookback             interval DEFAULT '30 days',
    abandoned_days       integer DEFAULT 7,
    indecisive_visits    integer DEFAULT 5,
    indecisive_cart_adds integer DEFAULT 3,
    impulse_days         integer DEFAULT 7,
    impulse_share        double precision DEFAULT 0.6,
    impulse_lines        integer DEFAULT 2)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s   segment.segmentations := segment_internal.segmentation_row(segmentation);
    src segment.event_sources;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(k.classid, k.objid)
       FROM segment_internal.refresh_lock_key(s.name) AS k;     -- not while a refresh reads the sources
    IF events IS NULL OR customer IS NULL OR event_type IS NULL OR occurred_at IS NULL THEN
        RAISE EXCEPTION 'events, customer, event_type and occurred_at must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF kinds IS NOT NULL AND pg_catalog.jsonb_typeof(kinds) <> 'object' THEN
        RAISE EXCEPTION 'kinds must be a jsonb object mapping event types to kinds'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', kinds),
                  HINT = 'For example kinds => ''{"session": "visit", "add_to_cart": "cart_add", "search": "ignore"}''.';
    END IF;
    src.segmentation := s.name;
    src.relation := events::text;
    src.customer := customer;
    src.event_type := event_type;
    src.occurred_at := occurred_at;
    src.product := product;
    src.kinds := kinds;
    src.lookback := configure_event_source.lookback;
    src.abandoned_days := abandoned_days;
    src.indecisive_visits := indecisive_visits;
    src.indecisive_cart_adds := indecisive_cart_adds;
    src.impulse_days := impulse_days;
    src.impulse_share := impulse_share;
    src.impulse_lines := impulse_lines;
    PERFORM segment_internal.check_event_source(s, src);
    INSERT INTO segment.event_sources SELECT src.*
        ON CONFLICT ON CONSTRAINT event_sources_pkey DO UPDATE SET
            relation = excluded.relation, customer = excluded.customer,
            event_type = excluded.event_type, occurred_at = excluded.occurred_at,
            product = excluded.product, kinds = excluded.kinds, lookback = excluded.lookback,
            abandoned_days = excluded.abandoned_days, indecisive_visits = excluded.indecisive_visits,
            indecisive_cart_adds = excluded.indecisive_cart_adds, impulse_days = excluded.impulse_days,
            impulse_share = excluded.impulse_share, impulse_lines = excluded.impulse_lines;
    PERFORM segment.add_builtin_rules(s.name);
    -- Change capture for incremental refreshes, on the relation now configured.
    PERFORM segment_internal.drop_source_capture(s.name, 'events');
    PERFORM segment_internal.setup_source_capture(s, 'events');
END
$$;
COMMENT ON FUNCTION segment.configure_event_source(regclass, name, name, name, text, name, jsonb, interval,
                                                integer, integer, integer, integer, double precision, integer) IS
    'Sets the events relation of a segmentation (NULL: the default one) after checking it: customer key, event type, time and optional product columns, an optional mapping of event types to kinds, the window, and the thresholds of Abandoned Cart, Indecisive and Impulse Buyers';

-- See the README.  Creates or replaces the support contacts source of a segmentation.
CREATE FUNCTION segment.configure_contact_source(
    contacts       regclass,
    customer       name,
    opened_at      name,
    segmentation   text DEFAULT NULL,
    negative       name DEFAULT NULL,
    negative_below double precision DEFAULT NULL,
    lookback       interval DEFAULT '30 days',
    angry_contacts integer DEFAULT 1)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s   segment.segmentations := segment_internal.segmentation_row(segmentation);
    src segment.contact_sources;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(k.classid, k.objid)
       FROM segment_internal.refresh_lock_key(s.name) AS k;     -- not while a refresh reads the sources
    IF contacts IS NULL OR customer IS NULL OR opened_at IS NULL THEN
        RAISE EXCEPTION 'contacts, customer and opened_at must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    src.segmentation := s.name;
    src.relation := contacts::text;
    src.customer := customer;
    src.opened_at := opened_at;
    src.negative := negative;
    src.negative_below := negative_below;
    src.lookback := configure_contact_source.lookback;
    src.angry_contacts := angry_contacts;
    PERFORM segment_internal.check_contact_source(s, src);
    INSERT INTO segment.contact_sources SELECT src.*
        ON CONFLICT ON CONSTRAINT contact_sources_pkey DO UPDATE SET
            relation = excluded.relation, customer = excluded.customer,
            opened_at = excluded.opened_at, negative = excluded.negative,
            negative_below = excluded.negative_below, lookback = excluded.lookback,
            angry_contacts = excluded.angry_contacts;
    PERFORM segment.add_builtin_rules(s.name);
    -- Change capture for incremental refreshes, on the relation now configured.
    PERFORM segment_internal.drop_source_capture(s.name, 'contacts');
    PERFORM segment_internal.setup_source_capture(s, 'contacts');
END
$$;
COMMENT ON FUNCTION segment.configure_contact_source(regclass, name, name, text, name, double precision, interval,
                                                  integer) IS
    'Sets the support contacts relation of a segmentation (NULL: the default one) after checking it: customer key, time, and a negative flag (boolean) or score (with negative_below; no column: every contact is negative), the window, and the threshold of Angry Customers';

-- See the README.  Creates or replaces the order lines and products source of a segmentation.
CREATE FUNCTION segment.configure_product_source(
    order_lines       regclass,
    order_key         name,
    product           name,
    segmentation      text DEFAULT NULL,
    quantity          name DEFAULT NULL,
    products          regclass DEFAULT NULL,
    product_key       name DEFAULT NULL,
    launched_at       name DEFAULT NULL,
    category          name DEFAULT NULL,
    orders_key        name DEFAULT NULL,
    launch_days       integer DEFAULT 30,
    trend_share       double precision DEFAULT 0.5,
    restock_purchases integer DEFAULT 3,
    restock_days      integer DEFAULT 14,
    trend_lines       integer DEFAULT 2,
    line_customer     name DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s   segment.segmentations := segment_internal.segmentation_row(segmentation);
    src segment.product_sources;
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(k.classid, k.objid)
       FROM segment_internal.refresh_lock_key(s.name) AS k;     -- not while a refresh reads the sources
    IF order_lines IS NULL OR order_key IS NULL OR product IS NULL THEN
        RAISE EXCEPTION 'order_lines, order_key and product must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF products IS NULL AND (product_key IS NOT NULL OR launched_at IS NOT NULL OR category IS NOT NULL) THEN
        RAISE EXCEPTION 'product_key, launched_at and category are columns of the products relation'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass products => ''the products relation'' as well.';
    END IF;
    src.segmentation := s.name;
    src.order_lines := order_lines::text;
    src.line_order := order_key;
    src.line_product := product;
    src.quantity := quantity;
    src.orders_key := coalesce(orders_key, order_key);
    src.products := products::text;
    src.product_key := CASE WHEN products IS NOT NULL THEN coalesce(product_key, product) END;
    src.launched_at := launched_at;
    src.category := category;
    src.launch_days := launch_days;
    src.trend_share := trend_share;
    src.trend_lines := trend_lines;
    src.restock_purchases := restock_purchases;
    src.restock_days := restock_days;
    src.line_customer := line_customer;
    PERFORM segment_internal.check_product_source(s, src);
    INSERT INTO segment.product_sources SELECT src.*
        ON CONFLICT ON CONSTRAINT product_sources_pkey DO UPDATE SET
            order_lines = excluded.order_lines, line_order = excluded.line_order,
            line_product = excluded.line_product, quantity = excluded.quantity,
            orders_key = excluded.orders_key, products = excluded.products,
            product_key = excluded.product_key, launched_at = excluded.launched_at,
            category = excluded.category, launch_days = excluded.launch_days,
            trend_share = excluded.trend_share, restock_purchases = excluded.restock_purchases,
            restock_days = excluded.restock_days, trend_lines = excluded.trend_lines,
            line_customer = excluded.line_customer;
    PERFORM segment.add_builtin_rules(s.name);
    -- Change capture for incremental refreshes, on the relations now configured.
    PERFORM segment_internal.drop_source_capture(s.name, 'products');
    PERFORM segment_internal.setup_product_capture(s);
END
$$;
COMMENT ON FUNCTION segment.configure_product_source(regclass, name, name, text, name, regclass, name, name, name, name,
                                                  integer, double precision, integer, integer, integer, name) IS
    'Sets the order lines (order key, product, optional quantity) and optional products relation (key, launch time, category) of a segmentation (NULL: the default one) after checking them; orders_key is the orders relation''s order key (default: order_key); the thresholds of Trend Followers and Due to Re-stock; line_customer, the lines'' own customer column, joins lines to orders by customer too (Citus: lines and orders colocated by customer)';

-- Removes a source of a segmentation; its built-in rules stay and evaluate to false.
CREATE FUNCTION segment.drop_source(kind text, segmentation text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock(k.classid, k.objid)
       FROM segment_internal.refresh_lock_key(s.name) AS k;     -- not while a refresh reads the sources
    CASE kind
        WHEN 'events' THEN
            DELETE FROM segment.event_sources AS x WHERE x.segmentation = s.name;
        WHEN 'contacts' THEN
            DELETE FROM segment.contact_sources AS x WHERE x.segmentation = s.name;
        WHEN 'products' THEN
            DELETE FROM segment.product_sources AS x WHERE x.segmentation = s.name;
        ELSE
            RAISE EXCEPTION 'unknown source kind "%"', kind
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'The kinds of source are events, contacts and products.';
    END CASE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'segmentation "%" has no % source', s.name, kind
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM segment_internal.drop_source_capture(s.name, kind);
END
$$;
COMMENT ON FUNCTION segment.drop_source(text, text) IS
    'Removes the events, contacts or products source of a segmentation (NULL: the default one); the next refresh leaves its profile columns NULL and its built-in rules do not hold';

-- The profile columns that come from the sources, in their order, over the
-- rows aliased alias: those of segment.customer_profile from visits on.
CREATE FUNCTION segment_internal.source_columns_sql(alias text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment_internal.profile_columns_sql(alias, 'visits', NULL)
$$;
COMMENT ON FUNCTION segment_internal.source_columns_sql(text) IS
    'The profile columns computed from the events, contacts and products sources (and from events with products: unbrowsed_lines, unbrowsed_share), qualified by alias (internal)';
