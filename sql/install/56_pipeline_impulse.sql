-- The pipeline, part 7: the Impulse Buyers stage, for customers who buy
-- products they had not looked at.  From the events (with their product column) and the order lines of a
-- segmentation, a refresh counts each customer's order lines of the events
-- window (kept orders after as_of - window) whose product the customer had
-- neither viewed nor put in the cart within impulse_days before the order:
-- unbrowsed_lines, and their share of the window's lines, unbrowsed_share.
-- The built-in rule Impulse Buyers holds at impulse_lines such lines or more
-- making impulse_share of the lines or more (thresholds in
-- segment.event_sources).  See docs/impulse-buyers.md.
--
-- Three statements, each over one distributed relation or over the refresh's
-- temporary tables, so that Citus runs them as the other sources' (the
-- order lines joined with their orders as segment_refresh_lines does).  The
-- lines are not taken from segment_refresh_lines' pass: that pass groups
-- them per customer, and these joins need each line of the window (its
-- product and time) as a row.

-- The profile columns of the stage table aliased alias.
CREATE FUNCTION segment_internal.impulse_columns_sql(alias text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('coalesce(%1$I.unbrowsed, 0) AS unbrowsed_lines, '
                  '%1$I.unbrowsed::double precision / nullif(%1$I.lines, 0) AS unbrowsed_share', alias)
$$;
COMMENT ON FUNCTION segment_internal.impulse_columns_sql(text) IS
    'The profile columns unbrowsed_lines and unbrowsed_share from the Impulse Buyers stage table aliased alias (internal)';

-- Whether a refresh of s computes Impulse Buyers: its sources (sources) are
-- events with a product column and order lines.
CREATE FUNCTION segment_internal.has_impulse(s segment.segmentations, sources text[]) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT 'events' = ANY (sources) AND 'products' = ANY (sources)
           AND EXISTS (SELECT FROM segment.event_sources AS e WHERE e.segmentation = s.name AND e.product IS NOT NULL)
           AND EXISTS (SELECT FROM segment.product_sources AS p WHERE p.segmentation = s.name)
$$;
COMMENT ON FUNCTION segment_internal.has_impulse(segment.segmentations, text[]) IS
    'Whether a refresh computes Impulse Buyers: events with a product column and order lines among its sources (internal)';

-- The Impulse Buyers pass of a refresh, when the segmentation has both an
-- events source with a product column and a products source (the kinds in
-- sources): fills pg_temp.segment_refresh_impulse (customer_id, lines,
-- unbrowsed, first_at: the time of the customer's earliest order of the
-- window).  keys, when not empty, is the SQL of an array of the customers to
-- compute (only theirs).  Returns whether the segmentation has Impulse
-- Buyers.
CREATE FUNCTION segment_internal.refresh_impulse_pass(s segment.segmentations, as_of timestamptz, sources text[],
                                                      keys text)
    RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    e        segment.event_sources;
    p        segment.product_sources;
    good     text := 'true';
    same_customer text := '';
BEGIN
    IF NOT segment_internal.has_impulse(s, sources) THEN
        RETURN false;
    END IF;
    SELECT * INTO e FROM segment.event_sources AS x WHERE x.segmentation = s.name;
    SELECT * INTO p FROM segment.product_sources AS x WHERE x.segmentation = s.name;
    -- A line bought: a kept order of the window, a product, a quantity above
    -- 0 (returns and bad quantities are not purchases).
    IF p.quantity IS NOT NULL THEN
        good := format($q$(l.%1$I IS NULL OR (l.%1$I::double precision > 0 AND l.%1$I::double precision < 'Infinity'))$q$,
                       p.quantity);
    END IF;
    IF p.line_customer IS NOT NULL THEN
        same_customer := format(' AND o.%I = l.%I', s.customer, p.line_customer);
    END IF;
    PERFORM segment_internal.run_source_statement(s, 'products', 'segment_refresh_impulse_lines', format($q$
        SELECT o.%1$I::%2$s AS customer_id, l.%3$I::text AS product, o.%4$I::timestamptz AS ordered_at
          FROM %5$s AS l
          JOIN %6$s AS o ON o.%7$I = l.%8$I%9$s
         WHERE %10$s AND %11$s AND l.%3$I IS NOT NULL
           AND o.%4$I::timestamptz > %12$L::timestamptz - %13$L::interval%14$s$q$,
        s.customer, s.key_type, p.line_product, s.ordered_at,
        pg_catalog.to_regclass(p.order_lines), pg_catalog.to_regclass(s.orders), p.orders_key, p.line_order,
        same_customer, segment_internal.kept_orders_sql(s, as_of), good, as_of, e.lookback,
        CASE WHEN keys <> '' THEN format(' AND o.%I = ANY (%s)', s.customer, keys) ELSE '' END));
    -- The views and cart adds that can count: from impulse_days before the
    -- window's first order on, up to as_of.
    PERFORM segment_internal.run_source_statement(s, 'events', 'segment_refresh_impulse_views', format($q$
        SELECT e.%1$I::%2$s AS customer_id, e.%3$I::text AS product, e.%4$I::timestamptz AS at
          FROM %5$s AS e
         WHERE e.%1$I IS NOT NULL AND e.%3$I IS NOT NULL
           AND e.%4$I::timestamptz > %6$L::timestamptz - %7$L::interval - %8$s * interval '1 day'
           AND e.%4$I::timestamptz <= %6$L::timestamptz
           AND segment.event_kind(e.%9$I::text, %10$L::jsonb) IN ('product_view', 'cart_add')%11$s$q$,
        e.customer, s.key_type, e.product, e.occurred_at, pg_catalog.to_regclass(e.relation),
        as_of, e.lookback, e.impulse_days, e.event_type, e.kinds,
        CASE WHEN keys <> '' THEN format(' AND e.%I::%s = ANY (%s)', e.customer, s.key_type, keys) ELSE '' END));
    -- EXISTS and NOT EXISTS in WHERE, so that they are hash semi and anti
    -- joins on (customer, product) (in an aggregate's FILTER a NOT EXISTS is
    -- a subplan run for every line: 26 s for the demo shop's June).
    PERFORM segment_internal.run_source_statement(s, 'events', 'segment_refresh_impulse', format($q$
        SELECT x.customer_id, pg_catalog.count(*) AS lines,
               pg_catalog.count(*) FILTER (WHERE NOT x.browsed) AS unbrowsed,
               pg_catalog.min(x.ordered_at) AS first_at
          FROM (SELECT l.customer_id, l.ordered_at, true AS browsed
                  FROM pg_temp.segment_refresh_impulse_lines AS l
                 WHERE EXISTS (%1$s)
                UNION ALL
                SELECT l.customer_id, l.ordered_at, false
                  FROM pg_temp.segment_refresh_impulse_lines AS l
                 WHERE NOT EXISTS (%1$s)) AS x
         GROUP BY x.customer_id$q$,
        format($q$SELECT FROM pg_temp.segment_refresh_impulse_views AS v
                   WHERE v.customer_id = l.customer_id AND v.product = l.product
                     AND v.at < l.ordered_at AND v.at >= l.ordered_at - %s * interval '1 day'$q$,
               e.impulse_days)));
    DROP TABLE pg_temp.segment_refresh_impulse_lines;
    DROP TABLE pg_temp.segment_refresh_impulse_views;
    RETURN true;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_impulse_pass(segment.segmentations, timestamptz, text[], text) IS
    'The Impulse Buyers pass of a refresh: per customer, the order lines of the events window and those whose product was not viewed or put in the cart within impulse_days before the order, over every customer or some (internal)';

-- Step 1b of a refresh for Impulse Buyers: pg_temp.segment_refresh_impulse.
-- A full refresh (mode) computes every customer's and, when store (the
-- refresh stores the orders' figures too) and the segmentation has the
-- stage (segment.impulse_stage_<name>, made with the products' capture),
-- keeps them there.  An incremental one recomputes in the stage the
-- customers whose orders, lines or events were recomputed
-- (pg_temp.segment_refresh_source_affected) and those whose earliest order
-- of the window leaves it; nothing else moves with as_of: a line's views
-- count from impulse_days before it, inside the views' window.
-- segment_internal.activity_tables() then reads the stage.
CREATE FUNCTION segment_internal.refresh_impulse_stage(s segment.segmentations, as_of timestamptz, sources text[],
                                                       mode text, store boolean)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    stage    text := segment_internal.source_capture_name(s.name, 'impulse', 'stage');
    lookback interval := (SELECT x.lookback FROM segment.event_sources AS x WHERE x.segmentation = s.name);
    cols     text[] := ARRAY['lines', 'unbrowsed', 'first_at'];
BEGIN
    IF mode <> 'incremental' THEN
        IF segment_internal.refresh_impulse_pass(s, as_of, sources, '') AND store
           AND pg_catalog.to_regclass(stage) IS NOT NULL THEN
            PERFORM segment_internal.write_stage(stage, 'segment_refresh_impulse', cols,
                                                 ARRAY['n.lines', 'n.unbrowsed', 'n.first_at']);
        END IF;
        RETURN;
    END IF;
    IF NOT segment_internal.has_impulse(s, sources) THEN
        RETURN;
    END IF;
    PERFORM segment_internal.refresh_table('segment_refresh_source_keys', format($q$
        SELECT a.k FROM pg_temp.segment_refresh_source_affected AS a
        UNION
        SELECT st.customer_id FROM %s AS st WHERE st.first_at <= %L::timestamptz - %L::interval$q$,
        stage, as_of, lookback));
    EXECUTE format('DELETE FROM %s AS st
                     WHERE st.customer_id = ANY (ARRAY(SELECT k.k FROM pg_temp.segment_refresh_source_keys AS k))',
                   stage);
    PERFORM segment_internal.refresh_impulse_pass(s, as_of, sources,
                                                  'ARRAY(SELECT k.k FROM pg_temp.segment_refresh_source_keys AS k)');
    EXECUTE format('INSERT INTO %s (customer_id, lines, unbrowsed, first_at)
                    SELECT i.customer_id, i.lines, i.unbrowsed, i.first_at FROM pg_temp.segment_refresh_impulse AS i',
                   stage);
    -- (read from the stage, activity_tables(); rescored with the others)
    DROP TABLE pg_temp.segment_refresh_impulse;
    PERFORM segment_internal.add_source_affected();
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_impulse_stage(segment.segmentations, timestamptz, text[], text, boolean) IS
    'Step 1b of a refresh for Impulse Buyers: every customer''s figures (stored for the next refresh) or, incrementally, the stored ones with the changed customers'' and those whose window moved recomputed (internal)';
