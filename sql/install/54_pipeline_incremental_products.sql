-- The pipeline, part 4c: incremental refreshes with a products source.
--
-- A customer's order-line figures (segment_refresh_lines: order_lines, the
-- next re-stock, the counts of lines skipped) depend on the lines of their
-- orders, on those orders (time, amount, status, customer), on the products
-- relation and, for the next re-stock, on as_of.  The last refresh's are
-- kept in a stage (segment.products_stage_<segmentation>), and an
-- incremental refresh recomputes the customers:
--   - of the orders' change log (segment.changes_<segmentation>, every entry
--     read, due or not: a line of an order dated after as_of counts as
--     skipped);
--   - whose orders have a key in the products' change log: the order keys of
--     the lines inserted, updated or deleted, and of the orders (which adopt
--     lines or leave them without an order);
--   - whose next re-stock date is before the new as_of's day (the earliest
--     one still to come is then another, or none).
-- Lines without a customer (no order, or an order without a customer) are
-- kept per order key, and those of the logged keys recomputed.  A change of
-- the products relation (launch dates, categories), a TRUNCATE of the lines
-- or a product column not told apart by its text make the refresh full.
-- Impulse Buyers' figures are kept in a stage of their own
-- (segment.impulse_stage_<segmentation>, 56_pipeline_impulse.sql).

-- The triggers of the products source's capture: on the order lines, the
-- orders and the products relation.
CREATE FUNCTION segment_internal.product_capture_relations(s segment.segmentations,
                                                           OUT relation regclass, OUT what text, OUT key name)
    RETURNS SETOF record
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT r.relation, r.what, r.key
      FROM segment.product_sources AS p,
           LATERAL (VALUES (pg_catalog.to_regclass(p.order_lines), 'products', p.line_order),
                           (pg_catalog.to_regclass(s.orders), 'products_orders', p.orders_key),
                           (pg_catalog.to_regclass(p.products), 'products_catalog', NULL::name)) AS r(relation, what, key)
     WHERE p.segmentation = s.name AND (r.what <> 'products_catalog' OR p.products IS NOT NULL)
$$;
COMMENT ON FUNCTION segment_internal.product_capture_relations(segment.segmentations) IS
    'The relations the change capture of a segmentation''s products source watches: order lines and orders (their order-key column) and the products relation, with the prefix of their triggers'' names (internal)';

-- Sets up the change capture of a segmentation's products source
-- (configure() and configure_product_source() call it, as the role that
-- configures): log, stage, trigger function and four triggers on each
-- watched relation.  Returns NULL, or why there is none (then every refresh
-- is a full one).  Needs the orders' capture.
CREATE FUNCTION segment_internal.setup_product_capture(s segment.segmentations) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r     record;
    why   text;
    event text;
    body  text := '';
    log   text := segment_internal.source_capture_name(s.name, 'products', 'changes');
    stage text := segment_internal.source_capture_name(s.name, 'products', 'stage');
    fn    text := segment_internal.source_capture_name(s.name, 'products', 'capture');
    impulse text := segment_internal.source_capture_name(s.name, 'impulse', 'stage');
BEGIN
    IF NOT EXISTS (SELECT FROM segment.product_sources AS x WHERE x.segmentation = s.name) THEN
        RETURN 'no products source';
    END IF;
    IF pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name)) IS NULL THEN
        RETURN 'the orders'' changes are not captured';
    END IF;
    FOR r IN SELECT * FROM segment_internal.product_capture_relations(s) LOOP
        why := pg_catalog.replace(segment_internal.capture_unsupported(r.relation), 'the orders relation',
                                  format('the %s relation', CASE r.what WHEN 'products' THEN 'order lines'
                                                                        WHEN 'products_orders' THEN 'orders'
                                                                        ELSE 'products' END));
        IF why IS NOT NULL THEN
            RETURN why;
        END IF;
        -- order keys as text (NULL: a line without one); the products
        -- relation only says that it changed
        body := body || format($b$
                %1$s TG_RELID = %2$s::pg_catalog.oid THEN
                    IF TG_OP = 'TRUNCATE' OR %3$s THEN
                        INSERT INTO %4$s (truncated, products_changed) VALUES (TG_OP = 'TRUNCATE' AND NOT %3$s, %3$s);
                    ELSE
                        IF TG_OP IN ('INSERT', 'UPDATE') THEN
                            INSERT INTO %4$s (order_key) SELECT DISTINCT n.%5$I::text FROM new_rows AS n;
                        END IF;
                        IF TG_OP IN ('DELETE', 'UPDATE') THEN
                            INSERT INTO %4$s (order_key) SELECT DISTINCT o.%5$I::text FROM old_rows AS o;
                        END IF;
                    END IF;$b$,
            CASE WHEN body = '' THEN 'IF' ELSE 'ELSIF' END, r.relation::oid,
            CASE WHEN r.key IS NULL THEN 'true' ELSE 'false' END, log,
            coalesce(r.key, 'unused'));
    END LOOP;
    BEGIN
        IF pg_catalog.to_regclass(log) IS NULL THEN
            EXECUTE format('CREATE TABLE %s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_key text,
                                             truncated boolean NOT NULL DEFAULT false,
                                             products_changed boolean NOT NULL DEFAULT false)', log);
            EXECUTE format('COMMENT ON TABLE %s IS %L', log,
                           format('Order keys whose lines or order changed since the last refresh of segmentation %s (NULL: lines without one), a TRUNCATE, or a change of the products relation (the change log of incremental refreshes)',
                                  s.name));
        END IF;
        IF pg_catalog.to_regclass(stage) IS NULL THEN
            EXECUTE format('CREATE TABLE %s (customer_id %s, order_key text, l segment.order_line_summary,
                                             n bigint, no_order bigint, excluded_order bigint, bad_quantity bigint,
                                             missing_product bigint, next_restock date, restock_product text)',
                           stage, s.key_type);
            EXECUTE format('CREATE INDEX ON %s (customer_id)', stage);
            -- (the customers whose next re-stock an as_of passed)
            EXECUTE format('CREATE INDEX ON %s (next_restock)', stage);
            EXECUTE format('COMMENT ON TABLE %s IS %L', stage,
                           format('Per-customer order-line figures of the last refresh of segmentation %s, those of the lines without a customer per order key (incremental refreshes recompute the changed customers'' and keys'' rows)',
                                  s.name));
        END IF;
        -- Impulse Buyers' figures, when the events have products too
        -- (segment_internal.refresh_impulse_stage()).
        IF pg_catalog.to_regclass(impulse) IS NULL THEN
            EXECUTE format('CREATE TABLE %s (customer_id %s PRIMARY KEY, lines bigint, unbrowsed bigint,
                                             first_at timestamptz)', impulse, s.key_type);
            EXECUTE format('CREATE INDEX ON %s (first_at)', impulse);
            EXECUTE format('COMMENT ON TABLE %s IS %L', impulse,
                           format('Per-customer Impulse Buyers figures of the last refresh of segmentation %s: lines of the window, unbrowsed lines, the earliest order of the window (incremental refreshes recompute the changed customers'' rows)',
                                  s.name));
        END IF;
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION %1$s RETURNS trigger
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
            BEGIN%2$s
                END IF;
                RETURN NULL;
            END
            $body$ $f$, fn, body);
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('COMMENT ON FUNCTION %s IS %L', fn,
                       format('Trigger on the order lines, orders and products of segmentation %s: logs the order keys whose lines or order changed, for its incremental refreshes (internal)',
                              s.name));
        FOR r IN SELECT * FROM segment_internal.product_capture_relations(s) LOOP
            FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
                IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                                WHERE t.tgrelid = r.relation
                                  AND t.tgname = segment_internal.capture_trigger_name(s.name, r.what || '_' || event)) THEN
                    EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s',
                                   segment_internal.capture_trigger_name(s.name, r.what || '_' || event), event,
                                   r.relation,
                                   CASE WHEN r.key IS NULL OR event = 'truncate' THEN ''
                                        WHEN event = 'insert' THEN 'REFERENCING NEW TABLE AS new_rows'
                                        WHEN event = 'delete' THEN 'REFERENCING OLD TABLE AS old_rows'
                                        ELSE 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows' END, fn);
                END IF;
            END LOOP;
        END LOOP;
    EXCEPTION
        WHEN insufficient_privilege THEN
            RETURN 'no privilege to create triggers on the order lines, orders or products (TRIGGER privilege or ownership)';
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
            RETURN format('the change-capture triggers of the products source could not be created: %s', why);
    END;
    -- The owner's, as the orders' capture (refreshes write them as the owner).
    PERFORM segment_internal.give_capture_to_owner(s, log, stage, fn);
    BEGIN
        IF (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = pg_catalog.to_regclass(impulse))
           <> (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = pg_catalog.to_regclass(stage)) THEN
            EXECUTE format('ALTER TABLE %s OWNER TO %s', impulse,
                           (SELECT c.relowner::regrole FROM pg_catalog.pg_class AS c WHERE c.oid = pg_catalog.to_regclass(stage)));
        END IF;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    -- Fire in replica sessions too, where the tables' owners allow it.
    FOR r IN SELECT * FROM segment_internal.product_capture_relations(s) LOOP
        BEGIN
            FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
                EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', r.relation,
                               segment_internal.capture_trigger_name(s.name, r.what || '_' || event));
            END LOOP;
        EXCEPTION WHEN insufficient_privilege THEN
            NULL;
        END;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.setup_product_capture(segment.segmentations) IS
    'Creates the change log, stage, capture function and triggers (on the order lines, orders and products) of a segmentation''s products source; returns NULL or why it cannot (internal)';

-- A digest of what the stored order-line figures depend on besides the
-- orders: the source's configuration but the rules' thresholds, the lines'
-- and products' relations and columns, the key type, the time zone
-- (purchase days), the log and the stages, and for Impulse Buyers the
-- events source's configuration (its relation is in its own digest).  NULL
-- without a products source.
CREATE FUNCTION segment_internal.product_stage_key(s segment.segmentations) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.md5(pg_catalog.concat_ws('|',
               pg_catalog.to_jsonb(p) - ARRAY['trend_share', 'trend_lines', 'restock_days'],
               (SELECT pg_catalog.string_agg(format('%s.%s:%s', t.attrelid, t.attname, t.atttypid), ','
                                             ORDER BY t.attrelid, t.attnum)
                  FROM pg_catalog.pg_attribute AS t
                 WHERE t.attrelid IN (pg_catalog.to_regclass(p.order_lines), pg_catalog.to_regclass(p.products))
                   AND t.attnum > 0 AND NOT t.attisdropped),
               s.key_type, pg_catalog.current_setting('TimeZone'),
               pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, 'products', 'changes'))::oid,
               pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, 'products', 'stage'))::oid,
               -- Impulse Buyers: the events source as they read it
               pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, 'impulse', 'stage'))::oid,
               (SELECT pg_catalog.to_jsonb(e) - ARRAY['abandoned_days', 'indecisive_visits', 'indecisive_cart_adds',
                                                      'impulse_share', 'impulse_lines']
                  FROM segment.event_sources AS e WHERE e.segmentation = s.name)))
      FROM segment.product_sources AS p
     WHERE p.segmentation = s.name
$$;
COMMENT ON FUNCTION segment_internal.product_stage_key(segment.segmentations) IS
    'A digest of what the stored order-line figures of a segmentation''s products source depend on besides the orders, NULL without that source (internal)';

-- Why the stored order-line figures cannot be brought forward
-- incrementally (NULL: they can).
CREATE FUNCTION segment_internal.product_incremental_blocker(s segment.segmentations) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p     segment.product_sources;
    r     record;
    fn    regprocedure := pg_catalog.to_regprocedure(segment_internal.source_capture_name(s.name, 'products', 'capture'));
    log   regclass := pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, 'products', 'changes'));
    event text;
    flags record;
BEGIN
    SELECT * INTO p FROM segment.product_sources AS x WHERE x.segmentation = s.name;
    IF NOT (SELECT x.one_pass FROM segment_internal.line_pass_parts(s, p) AS x) THEN
        RETURN format('the product column %s of the order lines is not told apart by its text (order lines are then grouped by product in a pass of their own)',
                      p.line_product);
    END IF;
    IF fn IS NULL OR log IS NULL
       OR pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, 'products', 'stage')) IS NULL
       OR pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, 'impulse', 'stage')) IS NULL THEN
        RETURN 'no change capture on the products source: run segment.configure_product_source() again (configured before change capture, or it could not create its triggers)';
    END IF;
    FOR r IN SELECT * FROM segment_internal.product_capture_relations(s) LOOP
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = r.relation AND t.tgfoid = fn AND t.tgenabled <> 'D'
                              AND t.tgname = segment_internal.capture_trigger_name(s.name, r.what || '_' || event)) THEN
                RETURN format('the %s capture trigger of the products source on %s is missing or disabled (run segment.configure_product_source() again)',
                              event, r.relation);
            END IF;
        END LOOP;
    END LOOP;
    EXECUTE format('SELECT pg_catalog.bool_or(c.truncated) AS truncated, pg_catalog.bool_or(c.products_changed) AS changed
                      FROM %s AS c WHERE c.truncated OR c.products_changed', log) INTO flags;
    IF flags.truncated THEN
        RETURN 'the order lines or the orders were truncated';
    ELSIF flags.changed THEN
        RETURN 'the products relation changed (launch dates and categories count for every line of the product)';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.product_incremental_blocker(segment.segmentations) IS
    'Why the stored order-line figures of a segmentation''s products source cannot be brought forward incrementally (NULL: they can) (internal)';

-- Step 1b of a refresh for the products source: the order lines' pass.  A
-- full refresh (mode) reads every line into pg_temp.segment_refresh_lines
-- and segment_refresh_restock (segment_internal.refresh_line_pass()) and,
-- when store (the refresh stores the orders' figures too), keeps them in
-- the stage, writing only the rows that changed, and consumes the log.  An
-- incremental one recomputes in the stage the customers and order keys
-- described above, and adds the customers to
-- pg_temp.segment_refresh_source_affected (rescored);
-- segment_internal.activity_tables() then reads the figures from the
-- stage.  Returns how many customers it recomputed.
CREATE FUNCTION segment_internal.refresh_product_stage(s segment.segmentations, as_of timestamptz, sources text[],
                                                       mode text, store boolean)
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p      segment.product_sources;
    stage  text := segment_internal.source_capture_name(s.name, 'products', 'stage');
    log    text := segment_internal.source_capture_name(s.name, 'products', 'changes');
    whole  boolean;
    nulls  boolean;
    keys   text;
    cols   text := 'order_key, l, n, no_order, excluded_order, bad_quantity, missing_product, next_restock, restock_product';
    n      bigint;
BEGIN
    IF NOT 'products' = ANY (sources) THEN
        RETURN NULL;
    END IF;
    SELECT * INTO p FROM segment.product_sources AS x WHERE x.segmentation = s.name;
    IF mode = 'incremental' THEN
        -- The log as this refresh reads it: later entries wait for the next.
        PERFORM segment_internal.refresh_table('segment_refresh_source_consumed', format(
            'SELECT c.id, c.order_key, c.truncated, c.products_changed FROM %s AS c', log));
        -- A TRUNCATE or a change of the products since incremental_blocker()
        -- looked: every row of the stage is recomputed.
        whole := EXISTS (SELECT FROM pg_temp.segment_refresh_source_consumed AS c
                          WHERE c.truncated OR c.products_changed);
    ELSIF store AND pg_catalog.to_regclass(stage) IS NOT NULL AND pg_catalog.to_regclass(log) IS NOT NULL THEN
        PERFORM segment_internal.refresh_table('segment_refresh_source_consumed',
                                               format('SELECT c.id FROM %s AS c', log));
        whole := true;
    ELSE
        PERFORM segment_internal.refresh_line_pass(s, as_of, '');
        SELECT pg_catalog.count(*) INTO n FROM pg_temp.segment_refresh_lines AS ln WHERE ln.customer_id IS NOT NULL;
        RETURN n;
    END IF;

    IF whole THEN
        PERFORM segment_internal.refresh_line_pass(s, as_of, '');
        -- Only the rows whose figures changed are written.
        PERFORM segment_internal.write_stage(stage, 'segment_refresh_lines', pg_catalog.string_to_array(cols, ', '),
                                             pg_catalog.string_to_array('n.' || pg_catalog.replace(cols, ', ', ', n.'), ', '));
        SELECT pg_catalog.count(*) INTO n FROM pg_temp.segment_refresh_lines AS ln WHERE ln.customer_id IS NOT NULL;
        IF mode = 'incremental' THEN
            PERFORM segment_internal.refresh_table('segment_refresh_source_keys',
                'SELECT ln.customer_id AS k FROM pg_temp.segment_refresh_lines AS ln WHERE ln.customer_id IS NOT NULL');
        END IF;
    ELSE
        -- The customers to recompute: those of the orders' log (every entry
        -- read), of the logged order keys' orders, and those whose next
        -- re-stock is before as_of's day.
        keys := format('ARRAY(SELECT c.order_key::%s FROM pg_temp.segment_refresh_source_consumed AS c
                               WHERE c.order_key IS NOT NULL)',
                       segment_internal.column_type(pg_catalog.to_regclass(s.orders), p.orders_key));
        PERFORM segment_internal.refresh_table('segment_refresh_source_keys', format($q$
            SELECT c.customer_id::%1$s AS k FROM pg_temp.segment_refresh_consumed AS c
             WHERE NOT c.truncated AND c.customer_id IS NOT NULL
            UNION
            SELECT o.%2$I::%1$s FROM %3$s AS o WHERE o.%4$I = ANY (%5$s) AND o.%2$I IS NOT NULL
            UNION
            SELECT st.customer_id FROM %6$s AS st WHERE st.next_restock < %7$L::timestamptz::date$q$,
            s.key_type, s.customer, pg_catalog.to_regclass(s.orders), p.orders_key, keys, stage, as_of));
        ANALYZE pg_temp.segment_refresh_source_keys;
        nulls := EXISTS (SELECT FROM pg_temp.segment_refresh_source_consumed AS c
                          WHERE c.order_key IS NULL AND NOT c.truncated AND NOT c.products_changed);
        -- the logged order keys, of the lines' order column's type
        keys := format('ARRAY(SELECT c.order_key::%s FROM pg_temp.segment_refresh_source_consumed AS c
                               WHERE c.order_key IS NOT NULL)',
                       segment_internal.column_type(pg_catalog.to_regclass(p.order_lines), p.line_order));
        EXECUTE format('DELETE FROM %s AS st
                         WHERE st.customer_id = ANY (ARRAY(SELECT k.k FROM pg_temp.segment_refresh_source_keys AS k))',
                       stage);
        -- (keys compared as the lines' order column compares them)
        EXECUTE format('DELETE FROM %s AS st
                         WHERE st.customer_id IS NULL AND (st.order_key::%s = ANY (%s)%s)',
                       stage, segment_internal.column_type(pg_catalog.to_regclass(p.order_lines), p.line_order),
                       keys, CASE WHEN nulls THEN ' OR st.order_key IS NULL' ELSE '' END);
        -- The customers' lines, through their orders; then the lines without
        -- a customer of the logged order keys.
        PERFORM segment_internal.refresh_line_pass(s, as_of, format(
            'o.%I = ANY (ARRAY(SELECT k.k FROM pg_temp.segment_refresh_source_keys AS k))', s.customer));
        EXECUTE format('INSERT INTO %s (customer_id, %s) SELECT ln.customer_id, %s FROM pg_temp.segment_refresh_lines AS ln',
                       stage, cols, 'ln.' || pg_catalog.replace(cols, ', ', ', ln.'));
        DROP TABLE pg_temp.segment_refresh_lines;
        DROP TABLE pg_temp.segment_refresh_restock;
        PERFORM segment_internal.refresh_line_pass(s, as_of, format(
            'o.%1$I IS NULL AND (l.%2$I = ANY (%3$s)%4$s)', s.customer, p.line_order, keys,
            CASE WHEN nulls THEN format(' OR l.%I IS NULL', p.line_order) ELSE '' END));
        EXECUTE format('INSERT INTO %s (customer_id, %s) SELECT ln.customer_id, %s FROM pg_temp.segment_refresh_lines AS ln',
                       stage, cols, 'ln.' || pg_catalog.replace(cols, ', ', ', ln.'));
        SELECT pg_catalog.count(*) INTO n FROM pg_temp.segment_refresh_source_keys;
    END IF;
    IF mode = 'incremental' THEN
        -- Read from the stage (activity_tables()).
        DROP TABLE pg_temp.segment_refresh_lines;
        DROP TABLE pg_temp.segment_refresh_restock;
        -- The customers recomputed, with those of the other sources (refresh_run() rescores them).
        PERFORM segment_internal.add_source_affected();
    END IF;
    EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_source_consumed AS c)',
                   log);
    DROP TABLE pg_temp.segment_refresh_source_consumed;
    RETURN n;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_product_stage(segment.segmentations, timestamptz, text[], text, boolean) IS
    'Step 1b of a refresh for the products source: the per-customer order-line figures from every line (stored for the next refresh) or, incrementally, from the stored ones with the changed customers'' and order keys'' recomputed (internal)';
