-- The pipeline, part 5: incremental refreshes.  A refresh's costly step is
-- the pass over every order that computes each customer's figures (step 1 of
-- refresh_run()); everything after it works from those figures, one row per
-- customer.  So a segmentation whose orders relation is a plain table keeps
-- the figures of its last refresh in segment.stage_<name>, and statement
-- triggers on the orders (transition tables) write the keys of the customers
-- whose orders were inserted, updated or deleted into segment.changes_<name>.
-- An incremental refresh recomputes the figures of those customers only,
-- then scores, applies the rules and writes the profile from the figures of
-- everyone as a full refresh does: the result is the same (test/
-- pipeline_incremental.sql checks it on random changes).
--
-- The log keeps, per customer and statement, the earliest order time the
-- statement touched.  An entry dated after a refresh's as_of does not count
-- yet and stays until an as_of passes it; a recomputed customer with orders
-- dated after as_of gets an entry for the earliest of them (and a full
-- refresh that starts the stage lists every such customer).
-- A refresh falls back to a full one, and says why in refreshes.full_reason,
-- whenever the stored figures could differ from those a full pass would
-- compute: no stage or change capture, another configuration, time zone or
-- orders relation, as_of moved back, the orders truncated, lifetime value or
-- sources configured (their figures move with as_of).

-- The change capture of a segmentation is a trigger function of its own,
-- segment.capture_<name>() (setup_capture() writes it), with static SQL: its
-- plans are cached, so a one-row INSERT into the orders pays a statement
-- trigger and one small INSERT into the log (bench/capture.sh).  It runs as
-- the segmentation's owner, who owns the log, so that any role that may write
-- the orders logs its changes; nobody else may attach it to a table, and it
-- logs nothing on a table other than the orders it was written for.

-- The names of the capture triggers of a segmentation, by event.
CREATE FUNCTION segment_internal.capture_trigger_name(segmentation text, event text) RETURNS name
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.left(format('segment_%s_%s', event, segmentation), 63)::name
$$;
COMMENT ON FUNCTION segment_internal.capture_trigger_name(text, text) IS
    'Name of a change-capture trigger of a segmentation on its orders relation (internal)';

-- Drops a change capture: the triggers of its function, wherever they are
-- (the relation may have been renamed), the function, and its tables (the
-- change log and the stored figures or summaries) where they exist.
CREATE FUNCTION segment_internal.drop_capture_objects(fn regprocedure, tables text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    trg record;
    tbl regclass;
BEGIN
    IF fn IS NOT NULL THEN
        FOR trg IN SELECT t.tgrelid::regclass AS rel, t.tgname FROM pg_catalog.pg_trigger AS t WHERE t.tgfoid = fn LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
        END LOOP;
        EXECUTE format('DROP FUNCTION %s', fn);
    END IF;
    FOR tbl IN SELECT pg_catalog.to_regclass(t) FROM pg_catalog.unnest(tables) AS u(t) LOOP
        IF tbl IS NOT NULL THEN
            EXECUTE format('DROP TABLE %s', tbl);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION segment_internal.drop_capture_objects(regprocedure, text[]) IS
    'Drops a change-capture function with its triggers, and its tables (internal)';

-- Drops the change capture of a segmentation: that of its orders, and those
-- of its events, contacts and products sources.
CREATE FUNCTION segment_internal.drop_capture(segmentation text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM segment_internal.drop_capture_objects(
                pg_catalog.to_regprocedure(format('segment.%I()', 'capture_' || segmentation)),
                ARRAY[format('segment.%I', 'changes_' || segmentation), format('segment.%I', 'stage_' || segmentation)]);
    PERFORM segment_internal.drop_source_capture(segmentation, k) FROM pg_catalog.unnest(ARRAY['events', 'contacts', 'products']) AS u(k);
END
$$;
COMMENT ON FUNCTION segment_internal.drop_capture(text) IS
    'Drops the change-capture triggers and function, change log and stage of a segmentation, and those of its events and contacts sources (internal)';

-- Why the changes of an orders relation cannot be captured with triggers
-- (NULL: they can): a view, a foreign, partitioned (its partitions can be
-- written directly) or Citus table, a partition or an inheritance parent or
-- child (rows written through another table fire no trigger of its own).
CREATE FUNCTION segment_internal.capture_unsupported(orders regclass) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    kind "char";
BEGIN
    SELECT c.relkind INTO kind FROM pg_catalog.pg_class AS c WHERE c.oid = orders;
    IF EXISTS (SELECT FROM pg_catalog.pg_inherits AS i WHERE i.inhrelid = orders OR i.inhparent = orders) THEN
        RETURN format('the orders relation %s is a partition or in an inheritance tree (its rows can be written through another table)',
                      orders);
    END IF;
    IF kind IS DISTINCT FROM 'r' THEN
        RETURN format('the orders relation %s is not a plain table but %s', orders,
                      CASE kind WHEN 'v' THEN 'a view' WHEN 'm' THEN 'a materialized view'
                                WHEN 'f' THEN 'a foreign table' WHEN 'p' THEN 'a partitioned table'
                                ELSE 'of relkind ' || coalesce(kind::text, 'none') END);
    END IF;
    IF segment_internal.is_citus_table(orders) THEN
        RETURN format('the orders relation %s is a Citus table', orders);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.capture_unsupported(regclass) IS
    'Why the changes of an orders relation cannot be captured with triggers, NULL if they can (internal)';

-- Sets up the change capture of a segmentation (configure() calls it, as
-- the role that configures): the change log and the four triggers on the
-- orders relation.  Returns NULL, or why there is none (then every refresh
-- is a full one).
CREATE FUNCTION segment_internal.setup_capture(s segment.segmentations) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    orders    regclass := pg_catalog.to_regclass(s.orders);
    customers regclass := pg_catalog.to_regclass(s.customers);
    event     text;
    trg       record;
    why       text := segment_internal.capture_unsupported(orders);
BEGIN
    IF why IS NOT NULL THEN
        RETURN why;
    END IF;
    IF customers = orders OR segment_internal.capture_unsupported(customers) IS NOT NULL THEN
        customers := NULL;
    END IF;
    -- The log and the triggers together, or neither.
    BEGIN
        IF pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name)) IS NULL THEN
            EXECUTE format('CREATE TABLE segment.%I (
                                id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                customer_id text,
                                ordered_at  timestamptz,
                                truncated   boolean NOT NULL DEFAULT false)', 'changes_' || s.name);
            EXECUTE format('COMMENT ON TABLE segment.%I IS %L', 'changes_' || s.name,
                           format('Customers whose orders changed since the last refresh of segmentation %s (the change log of incremental refreshes)', s.name));
        END IF;
        -- Inserted orders are logged one row each with what their figures
        -- need (segment_internal.refresh_stage() appends them to the stored
        -- figures); a log made by 0.1 gets the columns here.
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid = pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name))
                          AND a.attname = 'appended' AND NOT a.attisdropped) THEN
            EXECUTE format('ALTER TABLE segment.%I ADD COLUMN amount numeric, ADD COLUMN status text,
                                                   ADD COLUMN discounted boolean,
                                                   ADD COLUMN appended boolean NOT NULL DEFAULT false',
                           'changes_' || s.name);
        END IF;
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION segment.%1$I() RETURNS trigger
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
            BEGIN
                IF TG_RELID = %6$s::pg_catalog.oid AND TG_RELID <> %2$s::pg_catalog.oid THEN
                    -- the customers relation: its changed customers are rescored
                    IF TG_OP = 'TRUNCATE' THEN
                        INSERT INTO segment.%3$I (truncated) VALUES (true);
                    END IF;
                    IF TG_OP IN ('INSERT', 'UPDATE') THEN
                        INSERT INTO segment.%3$I (customer_id)
                        SELECT DISTINCT n.%7$I::text FROM new_rows AS n WHERE n.%7$I IS NOT NULL;
                    END IF;
                    IF TG_OP IN ('DELETE', 'UPDATE') THEN
                        INSERT INTO segment.%3$I (customer_id)
                        SELECT DISTINCT o.%7$I::text FROM old_rows AS o WHERE o.%7$I IS NOT NULL;
                    END IF;
                    RETURN NULL;
                END IF;
                IF TG_RELID <> %2$s::pg_catalog.oid THEN
                    RETURN NULL;
                END IF;
                IF TG_OP = 'TRUNCATE' THEN
                    INSERT INTO segment.%3$I (truncated) VALUES (true);
                END IF;
                IF TG_OP = 'INSERT' AND %8$s THEN
                    INSERT INTO segment.%3$I (customer_id, ordered_at, amount, status, discounted, appended)
                    SELECT n.%4$I::text, n.%5$I, n.%9$I::numeric, %10$s, %11$s, true FROM new_rows AS n
                     WHERE n.%4$I IS NOT NULL;
                ELSIF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO segment.%3$I (customer_id, ordered_at)
                    SELECT n.%4$I::text, pg_catalog.min(n.%5$I::timestamptz) FROM new_rows AS n
                     WHERE n.%4$I IS NOT NULL GROUP BY 1;
                END IF;
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    INSERT INTO segment.%3$I (customer_id, ordered_at)
                    SELECT o.%4$I::text, pg_catalog.min(o.%5$I::timestamptz) FROM old_rows AS o
                     WHERE o.%4$I IS NOT NULL GROUP BY 1;
                END IF;
                RETURN NULL;
            END
            $body$ $f$, 'capture_' || s.name, orders::oid, 'changes_' || s.name, s.customer, s.ordered_at,
               coalesce(customers::oid, 0), coalesce(s.customers_key, 'customer_id'),
               -- one row per inserted order when its time is a timestamptz
               -- (a timestamp or date would be read in the writer's time zone)
               CASE WHEN segment_internal.column_type(orders, s.ordered_at) = 'timestamptz'::regtype
                    THEN 'true' ELSE 'false' END,
               s.amount,
               CASE WHEN s.status IS NULL THEN 'NULL::text' ELSE format('n.%I::text', s.status) END,
               CASE WHEN s.discount IS NULL THEN 'NULL::boolean'
                    ELSE CASE (SELECT t.typcategory FROM pg_catalog.pg_type AS t
                                WHERE t.oid = segment_internal.column_type(orders, s.discount))
                             WHEN 'B' THEN format('n.%I', s.discount)
                             WHEN 'N' THEN format('n.%I > ''0''', s.discount)
                             ELSE format('n.%I <> ''''', s.discount) END END);
        EXECUTE format('REVOKE EXECUTE ON FUNCTION segment.%I() FROM PUBLIC', 'capture_' || s.name);
        EXECUTE format('COMMENT ON FUNCTION segment.%I() IS %L', 'capture_' || s.name,
                       format('Trigger on %s: logs the customers whose orders changed, with the earliest order time, for the incremental refreshes of segmentation %s (internal)',
                              orders, s.name));
        IF pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name)) IS NULL THEN
            EXECUTE format('CREATE TABLE segment.%I (customer_id %s PRIMARY KEY, s segment.rfm_summary,
                                                     discounted bigint)', 'stage_' || s.name, s.key_type);
            EXECUTE format('COMMENT ON TABLE segment.%I IS %L', 'stage_' || s.name,
                           format('Per-customer figures of the last refresh of segmentation %s (incremental refreshes recompute the changed customers'' rows)', s.name));
        END IF;
        -- With lifetime value, its summary too: clv_first is the start of
        -- the first purchase period as days since 2000-01-01, from which
        -- each refresh computes t_cal at its as_of (stage_clv_columns_sql()).
        IF s.clv THEN
            EXECUTE format('ALTER TABLE segment.%I ADD COLUMN IF NOT EXISTS clv_x integer,
                                                ADD COLUMN IF NOT EXISTS clv_t_x double precision,
                                                ADD COLUMN IF NOT EXISTS clv_first double precision,
                                                ADD COLUMN IF NOT EXISTS clv_mean_value double precision',
                           'stage_' || s.name);
        END IF;
        PERFORM segment_internal.stage_indexes(s);
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = orders AND t.tgname = segment_internal.capture_trigger_name(s.name, event)) THEN
                EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s
                                FOR EACH STATEMENT EXECUTE FUNCTION segment.%I()',
                               segment_internal.capture_trigger_name(s.name, event), event, orders,
                               CASE event WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                                          WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                                          ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END,
                               'capture_' || s.name);
            END IF;
        END LOOP;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                        WHERE t.tgrelid = orders AND t.tgname = segment_internal.capture_trigger_name(s.name, 'truncate')) THEN
            EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s
                            FOR EACH STATEMENT EXECUTE FUNCTION segment.%I()',
                           segment_internal.capture_trigger_name(s.name, 'truncate'), orders, 'capture_' || s.name);
        END IF;
    EXCEPTION
        WHEN insufficient_privilege THEN
            RETURN format('no privilege to create triggers on %s (TRIGGER privilege or ownership)', orders);
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
            RETURN format('the change-capture triggers could not be created on %s: %s', orders, why);
    END;
    -- The customers relation's triggers (configured again: only on the one
    -- configured now).  Without them refreshes still recompute incrementally
    -- but rescore every customer (segment_internal.narrow_blocker()).
    FOR trg IN SELECT t.tgrelid::regclass AS rel, t.tgname FROM pg_catalog.pg_trigger AS t
                WHERE t.tgfoid = pg_catalog.to_regprocedure(format('segment.%I()', 'capture_' || s.name))
                  AND t.tgrelid <> orders AND t.tgrelid IS DISTINCT FROM customers LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
    END LOOP;
    BEGIN
        FOREACH event IN ARRAY CASE WHEN customers IS NULL THEN '{}'::text[]
                                    ELSE ARRAY['insert', 'update', 'delete', 'truncate'] END LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = customers
                              AND t.tgname = segment_internal.capture_trigger_name(s.name, 'customers_' || event)) THEN
                EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION segment.%I()',
                               segment_internal.capture_trigger_name(s.name, 'customers_' || event), event, customers,
                               CASE event WHEN 'insert' THEN 'REFERENCING NEW TABLE AS new_rows'
                                          WHEN 'delete' THEN 'REFERENCING OLD TABLE AS old_rows'
                                          WHEN 'update' THEN 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                                          ELSE '' END,
                               'capture_' || s.name);
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        NULL;
    END;
    -- Fire in replica sessions too (a logical replication subscriber, a
    -- restore with --disable-triggers), where the table's owner allows it.
    BEGIN
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', orders,
                           segment_internal.capture_trigger_name(s.name, event));
        END LOOP;
        FOR trg IN SELECT t.tgname FROM pg_catalog.pg_trigger AS t
                    WHERE t.tgrelid = customers
                      AND t.tgfoid = pg_catalog.to_regprocedure(format('segment.%I()', 'capture_' || s.name)) LOOP
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', customers, trg.tgname);
        END LOOP;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    -- The events', contacts' and products' capture, where the segmentation has them.
    PERFORM segment_internal.setup_source_capture(s, k) FROM pg_catalog.unnest(ARRAY['events', 'contacts']) AS u(k);
    PERFORM segment_internal.setup_product_capture(s);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.setup_capture(segment.segmentations) IS
    'Creates the change log, stage, capture function and change-capture triggers of a segmentation on its orders relation; returns NULL or why it cannot (internal)';

-- The indexes of a segmentation's stage besides its primary key: the last
-- order and monetary figures, with which an incremental refresh finds the
-- customers whose scores moved with the cut points without reading every row
-- (segment_internal.moved_cuts_sql()).  Not the orders: the frequency cut
-- points are counts that nearly never move (a whole count's customers are
-- rescored when one does, and a pass over the stage finds them), while every
-- changed customer's stage row would write an entry in that index too.
-- Created by configure() (the role that configures may create objects in
-- schema segment; the owner a refresh runs as may not), so refreshes only
-- write the stage's rows, and a full refresh only those whose figures
-- changed.
CREATE FUNCTION segment_internal.stage_indexes(s segment.segmentations) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    stage regclass := pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name));
    fig   text;
BEGIN
    FOREACH fig IN ARRAY CASE WHEN stage IS NULL THEN '{}'::text[] ELSE ARRAY['last_order', 'monetary'] END LOOP
        CONTINUE WHEN pg_catalog.to_regclass(format('segment.%I', pg_catalog.left('stage_' || s.name, 48) || '_' || fig))
                      IS NOT NULL;
        EXECUTE format('CREATE INDEX %I ON %s (((s).%I))',
                       pg_catalog.left('stage_' || s.name, 48) || '_' || fig, stage, fig);
    END LOOP;
END
$$;
COMMENT ON FUNCTION segment_internal.stage_indexes(segment.segmentations) IS
    'Creates the missing indexes of a segmentation''s stage on its last order and monetary figures (internal)';

-- The relations of the capture of an events or contacts source (what:
-- changes, stage) by name, and its trigger function (what: capture).
CREATE FUNCTION segment_internal.source_capture_name(segmentation text, kind text, what text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN what = 'capture' THEN format('segment.%I()', kind || '_capture_' || segmentation)
                ELSE format('segment.%I', kind || '_' || what || '_' || segmentation) END
$$;
COMMENT ON FUNCTION segment_internal.source_capture_name(text, text, text) IS
    'Qualified name of the change log, stage or capture function of a segmentation''s events, contacts or products source (internal)';

-- The configuration of an events or contacts source as an incremental
-- refresh reads it: relation, customer and time columns, lookback, and what
-- the summaries depend on (config: the row without the rules' thresholds).
CREATE FUNCTION segment_internal.activity_source(s segment.segmentations, kind text,
                                                 OUT relation regclass, OUT customer name, OUT at name,
                                                 OUT lookback interval, OUT config jsonb)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF kind = 'events' THEN
        SELECT pg_catalog.to_regclass(x.relation), x.customer, x.occurred_at, x.lookback,
               pg_catalog.to_jsonb(x) - ARRAY['abandoned_days', 'indecisive_visits', 'indecisive_cart_adds',
                                              'impulse_days', 'impulse_share', 'impulse_lines']
          INTO relation, customer, at, lookback, config
          FROM segment.event_sources AS x WHERE x.segmentation = s.name;
    ELSIF kind = 'contacts' THEN
        SELECT pg_catalog.to_regclass(x.relation), x.customer, x.opened_at, x.lookback,
               pg_catalog.to_jsonb(x) - 'angry_contacts'
          INTO relation, customer, at, lookback, config
          FROM segment.contact_sources AS x WHERE x.segmentation = s.name;
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.activity_source(segment.segmentations, text) IS
    'The relation, customer and time columns, lookback and summary-relevant configuration of a segmentation''s events or contacts source (internal)';

-- A digest of what the stored summaries of a source depend on: its
-- configuration, relation and columns (names and types), the key type, the
-- time zone (window starts of days and months), its change log and stage
-- (recreated: new ones).  NULL when the segmentation has no such source.
CREATE FUNCTION segment_internal.source_stage_key(s segment.segmentations, kind text) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.md5(pg_catalog.concat_ws('|', kind, a.config::text, a.relation::oid,
               (SELECT pg_catalog.string_agg(format('%s:%s', t.attname, t.atttypid), ',' ORDER BY t.attnum)
                  FROM pg_catalog.pg_attribute AS t
                 WHERE t.attrelid = a.relation AND t.attnum > 0 AND NOT t.attisdropped),
               s.key_type, pg_catalog.current_setting('TimeZone'),
               pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, kind, 'changes'))::oid,
               pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, kind, 'stage'))::oid))
      FROM segment_internal.activity_source(s, kind) AS a
     WHERE a.config IS NOT NULL
$$;
COMMENT ON FUNCTION segment_internal.source_stage_key(segment.segmentations, text) IS
    'A digest of what the stored summaries of a segmentation''s events or contacts source depend on, NULL without that source (internal)';

-- What the figures of a segmentation's customers depend on besides the
-- orders: a refresh may reuse stored figures only when this is unchanged.
-- The change log and the stage are in it: recreated (configure() after a
-- rename of the orders), they hold nothing of the last refresh.
CREATE FUNCTION segment_internal.stage_key(s segment.segmentations) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.md5(pg_catalog.concat_ws('|', pg_catalog.to_regclass(s.orders)::oid, s.customer,
                                               s.ordered_at, s.amount, s.discount, s.status,
                                               s.exclude_status::text, s.key_type,
                                               pg_catalog.current_setting('TimeZone'),
                                               pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name))::oid,
                                               pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name))::oid))
           -- lifetime value's summary, in its time unit
           || CASE WHEN s.clv THEN ' clv=' || s.clv_time_unit ELSE '' END
           -- the events' and contacts' summaries, when configured
           || coalesce(' events=' || segment_internal.source_stage_key(s, 'events'), '')
           || coalesce(' contacts=' || segment_internal.source_stage_key(s, 'contacts'), '')
           || coalesce(' products=' || segment_internal.product_stage_key(s), '')
$$;
COMMENT ON FUNCTION segment_internal.stage_key(segment.segmentations) IS
    'A digest of what the stored per-customer figures of a segmentation depend on: orders relation, columns, statuses, key type, time zone, and the change log and stage themselves (recreated: new ones); followed by lifetime value''s time unit and those of its events, contacts and products sources'' summaries (internal)';

-- Whether the stage of s keeps lifetime value's summary (setup_capture()).
CREATE FUNCTION segment_internal.stage_has_clv(s segment.segmentations) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.count(*) = 4
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name))
       AND a.attname IN ('clv_x', 'clv_t_x', 'clv_first', 'clv_mean_value') AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION segment_internal.stage_has_clv(segment.segmentations) IS
    'Whether the stored figures of a segmentation keep lifetime value''s summary (internal)';

-- The start of as_of's purchase period (clv_time_unit day or week, weeks
-- from Monday) as days since 2000-01-01, in the session's time zone: what
-- clv_summary() and refresh_figures() count t_cal to (src/clv_summary.c).
CREATE FUNCTION segment_internal.clv_period_start(as_of timestamptz, time_unit text) RETURNS double precision
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT (CASE WHEN time_unit = 'week' THEN x.d - ((x.d + 5) % 7 + 7) % 7 ELSE x.d END)::double precision
      FROM (SELECT as_of::date - date '2000-01-01' AS d) AS x
$$;
COMMENT ON FUNCTION segment_internal.clv_period_start(timestamptz, text) IS
    'The first day of as_of''s purchase period of a time unit (day, or week from Monday), in days since 2000-01-01 (internal)';

-- The stage's columns of a row with lifetime value from a row f of figures
-- (f.clv_t_cal as of as_of): its first purchase period is as_of's less
-- t_cal time units, exact (whole periods, in whole days).  Empty without.
CREATE FUNCTION segment_internal.stage_clv_columns_sql(s segment.segmentations, as_of timestamptz,
                                              OUT columns text, OUT clv_values text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN s.clv THEN ', clv_x, clv_t_x, clv_first, clv_mean_value' ELSE '' END,
           CASE WHEN s.clv
                THEN format(', f.clv_x, f.clv_t_x, %s::double precision - f.clv_t_cal * %s, f.clv_mean_value',
                            segment_internal.clv_period_start(as_of, s.clv_time_unit),
                            CASE s.clv_time_unit WHEN 'week' THEN 7 ELSE 1 END)
                ELSE '' END
$$;
COMMENT ON FUNCTION segment_internal.stage_clv_columns_sql(segment.segmentations, timestamptz) IS
    'The stage''s lifetime-value columns and their values from a row f of figures as of as_of, empty without lifetime value (internal)';

-- The stage's rows as step 1 gives them (customer_id, s, discounted, and
-- with lifetime value clv_x, clv_t_x, clv_t_cal as of as_of, clv_mean_value).
CREATE FUNCTION segment_internal.stage_rows_sql(s segment.segmentations, as_of timestamptz) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('SELECT st.customer_id, st.s, st.discounted%s FROM segment.%I AS st',
                  CASE WHEN s.clv
                       THEN format(', st.clv_x, st.clv_t_x, (%s::double precision - st.clv_first) / %s AS clv_t_cal, st.clv_mean_value',
                                   segment_internal.clv_period_start(as_of, s.clv_time_unit),
                                   CASE s.clv_time_unit WHEN 'week' THEN 7 ELSE 1 END)
                       ELSE '' END,
                  'stage_' || s.name)
$$;
COMMENT ON FUNCTION segment_internal.stage_rows_sql(segment.segmentations, timestamptz) IS
    'The query of the stored figures as step 1 of a refresh as of as_of gives them, lifetime value''s t_cal included (internal)';

-- Why a refresh of s at as_of cannot reuse the stored figures (NULL: it can).
CREATE FUNCTION segment_internal.incremental_blocker(s segment.segmentations, as_of timestamptz, sources text[])
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    orders regclass := pg_catalog.to_regclass(s.orders);
    last   segment.refreshes;
    event  text;
    why    text;
BEGIN
    IF s.clv AND NOT segment_internal.stage_has_clv(s) THEN
        RETURN 'lifetime value is configured but the stored figures have no lifetime-value summary (configure() adds it)';
    END IF;
    IF pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name)) IS NULL THEN
        RETURN 'no change capture: ' || coalesce(segment_internal.capture_unsupported(orders),
                                                 'configure() could not create its triggers on ' || orders::text);
    END IF;
    FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                        WHERE t.tgrelid = orders AND t.tgname = segment_internal.capture_trigger_name(s.name, event)
                          AND t.tgenabled <> 'D') THEN
            RETURN format('the %s capture trigger on %s is missing or disabled', event, orders);
        END IF;
    END LOOP;
    SELECT * INTO last FROM segment.refreshes AS r WHERE r.id = s.last_refresh;
    IF pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name)) IS NULL OR last.stage_key IS NULL THEN
        RETURN 'the last refresh stored no figures';
    END IF;
    IF pg_catalog.split_part(last.stage_key, ' ', 1)
       IS DISTINCT FROM pg_catalog.split_part(segment_internal.stage_key(s), ' ', 1) THEN
        RETURN 'the orders relation, its columns, the statuses, the key type or the time zone changed';
    END IF;
    -- The events and contacts sources: captured, and as the last refresh
    -- stored them (stage_key() has their digests after the orders').
    FOREACH event IN ARRAY ARRAY['events', 'contacts'] LOOP
        CONTINUE WHEN NOT event = ANY (sources);
        why := segment_internal.source_incremental_blocker(s, event);
        IF why IS NOT NULL THEN
            RETURN why;
        END IF;
    END LOOP;
    -- The order lines: 54_pipeline_incremental_products.sql.
    IF 'products' = ANY (sources) THEN
        why := segment_internal.product_incremental_blocker(s);
        IF why IS NOT NULL THEN
            RETURN why;
        END IF;
    END IF;
    IF last.stage_key IS DISTINCT FROM segment_internal.stage_key(s) THEN
        RETURN 'a source was added, or its relation, columns, lookback, kinds or negative rule changed';
    END IF;
    IF as_of < last.as_of THEN
        RETURN 'as_of is earlier than the last refresh''s';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.incremental_blocker(segment.segmentations, timestamptz, text[]) IS
    'Why a refresh cannot recompute only the changed customers (NULL: it can) (internal)';

-- The figures of the kept orders, one row per customer: src is the FROM and
-- WHERE of the kept orders, disc and summary the discount count and the
-- lifetime-value columns, more further conditions.
CREATE FUNCTION segment_internal.figures_sql(s segment.segmentations, as_of timestamptz, src text, disc text,
                                    summary text, more text)
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format($q$
        SELECT o.%1$I AS customer_id,
               segment.rfm(o.%2$I::timestamptz, o.%3$I::numeric, %8$L::segment.time_zone) AS s,
               %4$s AS discounted%7$s
          %5$s AND o.%2$I <= %6$L::timestamptz%9$s
         GROUP BY o.%1$I$q$,
        s.customer, s.ordered_at, s.amount, disc, src, as_of, summary,
        pg_catalog.current_setting('TimeZone'), more)
$$;
COMMENT ON FUNCTION segment_internal.figures_sql(segment.segmentations, timestamptz, text, text, text, text) IS
    'The query of step 1 of a refresh: per-customer figures of the kept orders (internal)';

-- The same figures of every customer by a hash table of our own fed
-- straight from a scan of the orders (src/refresh_figures.c, the engine of
-- rfm_figures()): about the cost of a bare GROUP BY with count and sum.
-- Over foreign or custom scans (postgres_fdw, Citus) it runs figures_sql()'s
-- GROUP BY, which the shards run.  key is a value of the customer column's
-- type (NULL will do): the type of customer_id.  discount and status are NULL
-- when none is configured (discounted is then NULL).
CREATE FUNCTION segment_internal.refresh_figures(orders regclass, key anyelement, customer name, ordered_at name,
                                        amount name, discount name, status name, exclude_status text[],
                                        as_of timestamptz, time_zone segment.time_zone)
    RETURNS TABLE (customer_id anyelement, s segment.rfm_summary, discounted bigint)
    AS 'MODULE_PATHNAME', 'segment_refresh_figures' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO' ROWS 100000;
COMMENT ON FUNCTION segment_internal.refresh_figures(regclass, anyelement, name, name, name, name, name, text[],
                                            timestamptz, segment.time_zone) IS
    'Per-customer figures of the kept orders up to as_of, as figures_sql() computes them, by a hash table fed from a scan (internal)';

-- The same with lifetime value: also the columns of refresh_run()'s
-- clv_summary(ordered_at, amount, as_of, clv_time_unit, clv_time_unit,
-- time_zone) FILTER (WHERE amount >= 0), the same floats, in the same pass.
CREATE FUNCTION segment_internal.refresh_figures(orders regclass, key anyelement, customer name, ordered_at name,
                                        amount name, discount name, status name, exclude_status text[],
                                        as_of timestamptz, time_zone segment.time_zone, clv_time_unit text)
    RETURNS TABLE (customer_id anyelement, s segment.rfm_summary, discounted bigint, clv_x integer,
                   clv_t_x double precision, clv_t_cal double precision, clv_mean_value double precision)
    AS 'MODULE_PATHNAME', 'segment_refresh_figures' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO' ROWS 100000;
COMMENT ON FUNCTION segment_internal.refresh_figures(regclass, anyelement, name, name, name, name, name, text[],
                                            timestamptz, segment.time_zone, text) IS
    'Per-customer figures of the kept orders up to as_of with their lifetime-value summary (clv_summary of the purchases in clv_time_unit), as figures_sql() computes them, by a hash table fed from a scan (internal)';

-- The same with lifetime value's models too (src/refresh_clv.c): BG/NBD
-- and Gamma-Gamma fitted over every buyer's summary before the rows are
-- written, and each customer's predictions with its row (p_alive,
-- expected_purchases in t, clv over months at monthly_discount_rate), as
-- refresh_fit_clv() and bgnbd_predictions() would give them; what was fitted
-- is then read with refresh_figures_models().  Nothing is fitted, and the
-- predictions are NULL, when the rows spill to disk, over foreign or custom
-- scans, or with too few repeat buyers: the refresh then fits them itself.
-- bgnbd and gamma_gamma are NULLs of the models' types.
CREATE FUNCTION segment_internal.refresh_figures(orders regclass, key anyelement, customer name, ordered_at name,
                                        amount name, discount name, status name, exclude_status text[],
                                        as_of timestamptz, time_zone segment.time_zone, clv_time_unit text,
                                        bgnbd segment.bgnbd_model, gamma_gamma segment.gamma_gamma_model,
                                        penalizer double precision, min_repeat_buyers integer,
                                        t double precision, months integer,
                                        monthly_discount_rate double precision,
                                        high_value_share double precision)
    RETURNS TABLE (customer_id anyelement, s segment.rfm_summary, discounted bigint, clv_x integer,
                   clv_t_x double precision, clv_t_cal double precision, clv_mean_value double precision,
                   p_alive double precision, expected_purchases double precision, clv double precision)
    AS 'MODULE_PATHNAME', 'segment_refresh_figures' LANGUAGE C VOLATILE
    SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO' ROWS 100000;
COMMENT ON FUNCTION segment_internal.refresh_figures(regclass, anyelement, name, name, name, name, name, text[],
                                            timestamptz, segment.time_zone, text, segment.bgnbd_model,
                                            segment.gamma_gamma_model, double precision, integer,
                                            double precision, integer, double precision, double precision) IS
    'Per-customer figures of the kept orders up to as_of with their lifetime-value summary, the BG/NBD and Gamma-Gamma models fitted over them and each customer''s predictions, by a hash table fed from a scan (internal)';

-- What the last refresh_figures() with models fitted in this session, read
-- once: fitted false when it fitted nothing; the models, the high-value cut
-- (percentile_disc(1 - high_value_share) of the finite CLVs) and how many
-- customers got a value out of range (left NULL).
CREATE FUNCTION segment_internal.refresh_figures_models(OUT fitted boolean, OUT model segment.bgnbd_model,
                                                        OUT gamma_gamma segment.gamma_gamma_model,
                                                        OUT high_value_min double precision, OUT bad bigint)
    AS 'MODULE_PATHNAME', 'segment_refresh_figures_models' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION segment_internal.refresh_figures_models() IS
    'The lifetime-value models the last refresh_figures() of the session fitted, its high-value cut and count of values out of range, once (internal)';

-- The query of step 1 of a full refresh: refresh_figures(), with lifetime
-- value (summary: refresh_run()'s clv_summary columns, not empty) its
-- variant that adds them.
CREATE FUNCTION segment_internal.full_figures_sql(s segment.segmentations, as_of timestamptz, src text, disc text,
                                         summary text)
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format($q$
        SELECT f.customer_id::%1$s AS customer_id, f.s, f.discounted%11$s
          FROM segment_internal.refresh_figures(%2$L::regclass, NULL::%1$s, %3$L, %4$L, %5$L, %6$L, %7$L, %8$L::text[],
                                       %9$L::timestamptz, %10$L::segment.time_zone%12$s) AS f$q$,
        s.key_type, pg_catalog.to_regclass(s.orders)::oid::regclass::text, s.customer, s.ordered_at, s.amount,
        s.discount, s.status, CASE WHEN s.status IS NOT NULL THEN s.exclude_status END, as_of,
        pg_catalog.current_setting('TimeZone'),
        CASE WHEN summary = '' THEN ''
             WHEN s.clv_model = 'bgnbd'
             THEN ', f.clv_x, f.clv_t_x, f.clv_t_cal, f.clv_mean_value, f.p_alive, f.expected_purchases, f.clv'
             ELSE ', f.clv_x, f.clv_t_x, f.clv_t_cal, f.clv_mean_value' END,
        CASE WHEN summary = '' THEN ''
             -- BG/NBD: the models too (refresh_fit_clv()'s settings, clv_predictions_sql()'s t)
             WHEN s.clv_model = 'bgnbd'
             THEN format(', %L, NULL::segment.bgnbd_model, NULL::segment.gamma_gamma_model, %s::double precision, %s, %s::double precision, %s, %s::double precision, %s::double precision',
                         s.clv_time_unit, s.clv_penalizer, s.clv_min_repeat_buyers,
                         s.clv_months * CASE s.clv_time_unit WHEN 'week' THEN 4.345 ELSE 30 END,
                         s.clv_months, s.clv_discount_rate, s.high_value_share)
             ELSE format(', %L', s.clv_time_unit) END)
$$;
COMMENT ON FUNCTION segment_internal.full_figures_sql(segment.segmentations, timestamptz, text, text, text) IS
    'The query of step 1 of a full refresh: per-customer figures of the kept orders, with the lifetime-value summary when summary is not empty, by refresh_figures() (internal)';

-- Whether an index can find the orders of one customer (its first column is
-- the customer column, it covers every row): then the changed customers'
-- figures are recomputed one customer at a time, else in one pass.
CREATE FUNCTION segment_internal.has_customer_index(orders regclass, customer name) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT EXISTS (SELECT FROM pg_catalog.pg_index AS i
                     JOIN pg_catalog.pg_class AS c ON c.oid = i.indexrelid
                     JOIN pg_catalog.pg_am AS am ON am.oid = c.relam
                     JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                    WHERE i.indrelid = orders AND a.attname = customer AND i.indisvalid AND i.indpred IS NULL
                      AND am.amname IN ('btree', 'hash'))
$$;
COMMENT ON FUNCTION segment_internal.has_customer_index(regclass, name) IS
    'Whether an index of the orders relation finds one customer''s orders (internal)';

-- The statement that recomputes the figures of the customers of
-- pg_temp.segment_refresh_recompute into the stage (and adds them to
-- pg_temp.segment_refresh_delta), and logs those with
-- orders dated after as_of, reading their orders once, one customer at a
-- time (an index probe each): the planner would rather scan every order for
-- a few percent of the customers.
CREATE FUNCTION segment_internal.recompute_by_customer_sql(s segment.segmentations, as_of timestamptz, src text,
                                                  disc text, summary text, stage text, changes text)
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format($q$
        WITH o AS MATERIALIZED (
            SELECT o.* FROM pg_temp.segment_refresh_recompute AS r
             CROSS JOIN LATERAL (SELECT o.* %5$s AND o.%1$I = r.k OFFSET 0) AS o
        ), later AS (
            INSERT INTO %8$s (customer_id, ordered_at)
            SELECT o.%1$I::text, pg_catalog.min(o.%2$I::timestamptz) FROM o
             WHERE o.%2$I > %6$L::timestamptz GROUP BY o.%1$I
        ), added AS (
            INSERT INTO %9$s (customer_id, s, discounted%10$s)
            SELECT f.customer_id, f.s, f.discounted%11$s
              FROM (SELECT o.%1$I AS customer_id,
                           segment.rfm(o.%2$I::timestamptz, o.%3$I::numeric, %7$L::segment.time_zone) AS s,
                           %4$s AS discounted%12$s
                      FROM o WHERE o.%2$I <= %6$L::timestamptz GROUP BY o.%1$I) AS f
            RETURNING ctid, s
        )
        INSERT INTO pg_temp.segment_refresh_delta
        SELECT 1, (a.s).last_order, (a.s).orders, (a.s).monetary, a.ctid FROM added AS a$q$,
        s.customer, s.ordered_at, s.amount, disc, src, as_of, pg_catalog.current_setting('TimeZone'),
        changes, stage, c.columns, c.clv_values, summary)
      FROM segment_internal.stage_clv_columns_sql(s, as_of) AS c
$$;
COMMENT ON FUNCTION segment_internal.recompute_by_customer_sql(segment.segmentations, timestamptz, text, text, text, text, text) IS
    'The statement that recomputes the changed customers'' figures into the stage and logs their later orders, one index probe per customer (internal)';

-- The customers with kept orders dated after as_of, and the earliest date.
CREATE FUNCTION segment_internal.later_orders_sql(s segment.segmentations, as_of timestamptz, src text, more text)
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format($q$
        SELECT o.%1$I::text, pg_catalog.min(o.%2$I::timestamptz)
          %3$s AND o.%2$I > %4$L::timestamptz%5$s
         GROUP BY o.%1$I$q$, s.customer, s.ordered_at, src, as_of, more)
$$;
COMMENT ON FUNCTION segment_internal.later_orders_sql(segment.segmentations, timestamptz, text, text) IS
    'The customers with orders dated after as_of and the earliest such date (internal)';

-- Step 1 of a refresh: one row per customer with orders up to as_of (src:
-- the FROM and WHERE of the kept orders; disc and summary: the discount
-- count and lifetime-value columns), computed from every order (full) or
-- from the stored figures with the changed customers' recomputed
-- (incremental), in the relation it returns as figures: the stage, or
-- pg_temp.segment_refresh_stage when there is none or lifetime value's
-- predictions come with them.  mode: auto, full or incremental (an error
-- when it cannot be).  With change capture, the figures are stored for the
-- next refresh and the change log is consumed.  recomputed: the customers
-- whose figures were computed from their orders, NULL when every buyer's
-- went straight into the stage.
CREATE FUNCTION segment_internal.refresh_stage(s segment.segmentations, as_of timestamptz, src text, disc text,
                                      summary text, sources text[], mode text,
                                      OUT mode_done text, OUT full_reason text, OUT recomputed bigint,
                                      OUT stage_key text, OUT figures text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    stage   text := format('segment.%I', 'stage_' || s.name);
    changes text := format('segment.%I', 'changes_' || s.name);
    orders  regclass := pg_catalog.to_regclass(s.orders);
    capture boolean;
    fresh   boolean;
    due     text := format('(c.ordered_at IS NULL OR c.ordered_at <= %L::timestamptz)', as_of);
    -- a logged inserted order the figures keep (as src keeps the orders)
    kept    text := 'c.ordered_at IS NOT NULL AND c.amount IS NOT NULL'
                    || CASE WHEN s.status IS NOT NULL
                            THEN format(' AND (c.status IS NULL OR c.status <> ALL (%L::text[]))', s.exclude_status)
                            ELSE '' END;
    appendable boolean := false;
    clv_columns text;
    clv_values  text;
    new_rows    text;           -- a full refresh's figures, as the stage stores them
    -- Only the customers an incremental refresh recomputes.
    recompute_only text := format(' AND o.%I IN (SELECT r.k FROM pg_temp.segment_refresh_recompute AS r)', s.customer);
BEGIN
    IF mode IS NULL THEN
        RAISE EXCEPTION 'refresh mode must not be null' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'The modes are auto (incremental where it is safe), full and incremental.';
    END IF;
    IF mode NOT IN ('auto', 'full', 'incremental') THEN
        RAISE EXCEPTION 'invalid refresh mode "%"', mode
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The modes are auto (incremental where it is safe), full and incremental.';
    END IF;
    full_reason := segment_internal.incremental_blocker(s, as_of, sources);
    capture := pg_catalog.to_regclass(changes) IS NOT NULL AND pg_catalog.to_regclass(stage) IS NOT NULL
               AND (NOT s.clv OR segment_internal.stage_has_clv(s));
    SELECT c.columns, c.clv_values INTO clv_columns, clv_values
      FROM segment_internal.stage_clv_columns_sql(s, as_of) AS c;
    IF capture THEN
        stage_key := segment_internal.stage_key(s);
        -- The log as this refresh reads it: later entries wait for the next.
        appendable := EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                               WHERE a.attrelid = pg_catalog.to_regclass(changes) AND a.attname = 'appended'
                                 AND NOT a.attisdropped);
        PERFORM segment_internal.refresh_table('segment_refresh_consumed',
                                      format('SELECT c.id, c.customer_id, c.ordered_at, c.truncated, %s FROM %s AS c',
                                             CASE WHEN appendable THEN 'c.amount, c.status, c.discounted, c.appended'
                                                  ELSE 'NULL::numeric AS amount, NULL::text AS status, NULL::boolean AS discounted, false AS appended' END,
                                             changes));
        IF full_reason IS NULL AND EXISTS (SELECT FROM pg_temp.segment_refresh_consumed AS c WHERE c.truncated) THEN
            full_reason := 'the orders relation was truncated';
        END IF;
    END IF;
    IF mode = 'full' THEN
        full_reason := 'a full refresh was asked for';
    ELSIF mode = 'incremental' AND full_reason IS NOT NULL THEN
        RAISE EXCEPTION 'segmentation "%" cannot be refreshed incrementally: %', s.name, full_reason
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Refresh with mode => ''auto'' or ''full''.';
    END IF;

    IF full_reason IS NULL THEN
        -- Incremental: recompute the customers of the due entries.
        mode_done := 'incremental';
        PERFORM segment_internal.refresh_table('segment_refresh_recompute', format(
            'SELECT DISTINCT c.customer_id::%s AS k FROM pg_temp.segment_refresh_consumed AS c
              WHERE NOT c.truncated AND c.customer_id IS NOT NULL AND %s', s.key_type, due));
        ANALYZE pg_temp.segment_refresh_recompute;
        SELECT pg_catalog.count(*) INTO recomputed FROM pg_temp.segment_refresh_recompute;
        -- The stored figures replaced, before (-1) and after (+1): the cut
        -- points move by them (segment_internal.moved_breaks()).
        PERFORM segment_internal.refresh_table('segment_refresh_delta', format(
            'SELECT -1 AS sign, (st.s).last_order, (st.s).orders, (st.s).monetary, st.ctid AS tid FROM %s AS st WHERE false',
            stage));
        -- The customers whose due entries are all inserted orders, on their
        -- stored last order's day or later (or who have no stored figures): their
        -- new orders' figures, from the log alone, append to the stored ones
        -- (segment_internal.rfm_append()); only the others' orders are read.
        -- Their stored rows are updated where this lookup found them (tid:
        -- only refreshes write the stage, and the refresh lock serializes
        -- them), not looked up by key again (a third fewer buffer accesses
        -- in the update after 1% of a million customers changed).
        PERFORM segment_internal.refresh_table('segment_refresh_appended', format($q$
            SELECT a.k, a.s AS new_s, a.discounted, st.s AS old_s, st.customer_id IS NOT NULL AS stored,
                   st.ctid AS tid
              FROM (SELECT c.customer_id::%1$s AS k,
                           segment.rfm(c.ordered_at, c.amount, %2$L::segment.time_zone) FILTER (WHERE %3$s) AS s,
                           %4$s AS discounted
                      FROM pg_temp.segment_refresh_consumed AS c
                     WHERE NOT c.truncated AND c.customer_id IS NOT NULL AND %5$s
                     GROUP BY 1 HAVING pg_catalog.bool_and(c.appended)) AS a
              LEFT JOIN %6$s AS st ON st.customer_id = a.k
             WHERE %7$s AND (st.customer_id IS NULL OR (a.s).orders IS NULL
                             OR ((a.s).first_order)::date >= ((st.s).last_order)::date)$q$,
            s.key_type, pg_catalog.current_setting('TimeZone'), kept,
            CASE WHEN s.discount IS NULL THEN 'NULL::bigint'
                 ELSE format('pg_catalog.count(*) FILTER (WHERE %s AND c.discounted)', kept) END,
            due, stage,
            -- lifetime value's summary does not append: those customers' orders are read
            CASE WHEN s.clv THEN 'false' ELSE 'true' END));
        EXECUTE format($q$
            WITH updated AS (
                UPDATE %1$s AS st SET s = segment_internal.rfm_append(a.old_s, a.new_s,
                                                                  ((a.new_s).first_order)::date = ((a.old_s).last_order)::date),
                                      discounted = st.discounted + a.discounted
                  FROM pg_temp.segment_refresh_appended AS a
                 WHERE a.stored AND (a.new_s).orders IS NOT NULL AND st.ctid = a.tid
                   AND st.ctid = ANY (ARRAY(SELECT b.tid FROM pg_temp.segment_refresh_appended AS b))
                RETURNING a.old_s, st.s, st.ctid
            ), inserted AS (
                INSERT INTO %1$s (customer_id, s, discounted)
                SELECT a.k, a.new_s, a.discounted FROM pg_temp.segment_refresh_appended AS a
                 WHERE NOT a.stored AND (a.new_s).orders IS NOT NULL
                RETURNING s, ctid
            )
            INSERT INTO pg_temp.segment_refresh_delta
            SELECT -1, (u.old_s).last_order, (u.old_s).orders, (u.old_s).monetary, NULL FROM updated AS u
            UNION ALL
            SELECT 1, (u.s).last_order, (u.s).orders, (u.s).monetary, u.ctid FROM updated AS u
            UNION ALL
            SELECT 1, (i.s).last_order, (i.s).orders, (i.s).monetary, i.ctid FROM inserted AS i$q$, stage);
        -- (set aside while the others' orders are read; they are rescored too)
        DELETE FROM pg_temp.segment_refresh_recompute AS r USING pg_temp.segment_refresh_appended AS a WHERE r.k = a.k;
        ANALYZE pg_temp.segment_refresh_recompute;
        IF EXISTS (SELECT FROM pg_temp.segment_refresh_recompute) THEN
            EXECUTE format('WITH gone AS (
                                DELETE FROM %s AS st
                                 WHERE st.customer_id = ANY (ARRAY(SELECT r.k FROM pg_temp.segment_refresh_recompute AS r))
                                RETURNING st.s)
                            INSERT INTO pg_temp.segment_refresh_delta
                            SELECT -1, (g.s).last_order, (g.s).orders, (g.s).monetary, NULL FROM gone AS g',
                           stage);
            IF segment_internal.has_customer_index(orders, s.customer) THEN
                EXECUTE segment_internal.recompute_by_customer_sql(s, as_of, src, disc, summary, stage, changes);
            ELSE
                EXECUTE format('WITH added AS (INSERT INTO %1$s (customer_id, s, discounted%2$s)
                                               SELECT f.customer_id, f.s, f.discounted%3$s FROM (%4$s) AS f
                                               RETURNING ctid, s)
                                INSERT INTO pg_temp.segment_refresh_delta
                                SELECT 1, (a.s).last_order, (a.s).orders, (a.s).monetary, a.ctid FROM added AS a',
                               stage, clv_columns, clv_values,
                               segment_internal.figures_sql(s, as_of, src, disc, summary, recompute_only));
                EXECUTE format('INSERT INTO %s (customer_id, ordered_at) %s', changes,
                               segment_internal.later_orders_sql(s, as_of, src, recompute_only));
            END IF;
            -- A customer read from its orders keeps no inserted-order entry:
            -- an order committed after the log was read, but before the read
            -- of the orders, is in the stored figures already, and its entry
            -- must not append it again (plain entries only recompute).
            IF appendable THEN
                EXECUTE format('UPDATE %s AS l SET appended = false
                                 WHERE l.appended
                                   AND l.customer_id = ANY (ARRAY(SELECT r.k::text FROM pg_temp.segment_refresh_recompute AS r))',
                               changes);
            END IF;
        END IF;
        INSERT INTO pg_temp.segment_refresh_recompute SELECT a.k FROM pg_temp.segment_refresh_appended AS a;
        -- (its statistics as refresh_run() joins it: they were taken without
        -- the appended customers)
        ANALYZE pg_temp.segment_refresh_recompute;
        EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_consumed AS c WHERE %s)',
                       changes, due);
        RAISE DEBUG 'segment.refresh: % customers recomputed at % ms', recomputed,
            round(extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000);
        -- The figures are read from the stage (refresh_run() copies the rows
        -- it rescores into pg_temp.segment_refresh_stage).
        figures := stage;
        RETURN;
    END IF;

    mode_done := 'full';
    -- Where the stage holds what the pass gives (no lifetime value, whose
    -- pass also writes the predictions), the pass's rows go straight into
    -- the comparison with it, and the refresh then reads its figures from
    -- the stage: no temporary copy of every customer's (0.5 s of 16 at a
    -- million customers).  Then recomputed is left NULL: every buyer, whom
    -- the cut points count (counting the stage's rows here took 0.4 s).
    IF capture AND NOT s.clv THEN
        figures := stage;
        new_rows := segment_internal.full_figures_sql(s, as_of, src, disc, summary);
    ELSE
        figures := 'pg_temp.segment_refresh_stage';
        PERFORM segment_internal.refresh_table('segment_refresh_stage', segment_internal.full_figures_sql(s, as_of, src, disc, summary));
        SELECT pg_catalog.count(*) INTO recomputed FROM pg_temp.segment_refresh_stage;
        new_rows := format('SELECT f.customer_id, f.s, f.discounted%s FROM pg_temp.segment_refresh_stage AS f',
                           clv_values);
    END IF;
    IF NOT capture THEN
        RETURN;
    END IF;
    -- Store the figures.  A stage of another configuration (or none), or an
    -- as_of earlier than the last (whose log entries up to it are consumed),
    -- starts a new log: every customer with orders dated after as_of.
    fresh := NOT EXISTS (SELECT FROM segment.refreshes AS r
                          WHERE r.id = s.last_refresh AND r.stage_key = refresh_stage.stage_key
                            AND r.as_of <= refresh_stage.as_of);
    -- Only the rows whose figures changed are written (after incremental
    -- refreshes, few; a stage with three indexes is costly to fill), found by
    -- one join of the new figures with the stored ones; the three writes
    -- touch disjoint customers.  New rows go in in key order (the stage's
    -- key index filled from left to right).
    EXECUTE format($q$
        WITH d AS MATERIALIZED (
            SELECT coalesce(n.customer_id, st.customer_id) AS customer_id, n.s, n.discounted%3$s,
                   n.customer_id IS NULL AS gone, st.customer_id IS NULL AS added
              FROM (%8$s) AS n(customer_id, s, discounted%6$s)
              FULL JOIN %1$s AS st ON st.customer_id = n.customer_id
             WHERE n.customer_id IS NULL OR st.customer_id IS NULL
                OR (st.s, st.discounted%4$s) IS DISTINCT FROM (n.s, n.discounted%3$s)
        ), deleted AS (
            DELETE FROM %1$s AS st USING d WHERE d.gone AND st.customer_id = d.customer_id
        ), updated AS (
            UPDATE %1$s AS st SET s = d.s, discounted = d.discounted%5$s
              FROM d WHERE NOT d.gone AND NOT d.added AND st.customer_id = d.customer_id
        )
        INSERT INTO %1$s (customer_id, s, discounted%6$s)
        SELECT d.customer_id, d.s, d.discounted%7$s FROM d WHERE d.added ORDER BY d.customer_id$q$,
        stage, clv_values, pg_catalog.replace(clv_columns, ', ', ', n.'), pg_catalog.replace(clv_columns, ', ', ', st.'),
        (SELECT pg_catalog.string_agg(format(', %1$I = d.%1$I', c), '')
           FROM pg_catalog.unnest(pg_catalog.string_to_array(pg_catalog.ltrim(clv_columns, ', '), ', ')) AS c),
        clv_columns, pg_catalog.replace(clv_columns, ', ', ', d.'), new_rows);
    IF fresh THEN
        EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_consumed AS c)',
                       changes);
        EXECUTE format('INSERT INTO %s (customer_id, ordered_at) %s', changes,
                       segment_internal.later_orders_sql(s, as_of, src, ''));
    ELSE
        EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_consumed AS c
                                                            WHERE c.truncated OR %s)', changes, due);
    END IF;
    -- Every customer was read from the orders: the inserted-order entries
    -- left stay as plain ones, which recompute (after a TRUNCATE they stand
    -- for orders that are gone; one committed after the log was read may be
    -- in the figures already).  An order updated or deleted logs its old
    -- row, on the same date, so its entry is never due alone.
    IF appendable THEN
        EXECUTE format('UPDATE %s AS l SET appended = false WHERE l.appended', changes);
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_stage(segment.segmentations, timestamptz, text, text, text, text[], text) IS
    'Step 1 of a refresh: the per-customer figures, from every order or, incrementally, from the stored figures and the changed customers'' orders; stores them and consumes the change log; figures: the relation every buyer''s figures are then read from (internal)';

-- An incremental refresh rescores only the customers whose row can have
-- changed (refresh_run(): "narrow") when everything else a customer's
-- segment depends on is as the last refresh left it: the same
-- configuration, rules and as-of day (this key), cut points that moved only
-- over the customers it rescores, and rules whose result depends on the
-- customer's row alone (segment_internal.narrow_blocker()).
CREATE FUNCTION segment_internal.score_key(s segment.segmentations, as_of timestamptz) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.md5(pg_catalog.concat_ws('|',
               pg_catalog.to_jsonb(s) - 'last_refresh',
               (SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.priority, r.name)
                  FROM segment.rules AS r WHERE r.segmentation = s.name AND r.enabled),
               pg_catalog.to_regclass(format('segment.%I', s.profile))::oid,
               pg_catalog.to_regclass(s.customers)::oid,
               pg_catalog.current_setting('TimeZone'),
               -- elapsed days move with as_of itself
               CASE WHEN s.recency = 'elapsed' THEN as_of::text ELSE as_of::date::text END))
$$;
COMMENT ON FUNCTION segment_internal.score_key(segment.segmentations, timestamptz) IS
    'A digest of what the customers'' segments depend on besides their figures and the cut points: configuration, enabled rules, profile, customers relation, time zone and as-of day (internal)';

-- Whether a query is one SELECT that calls only immutable functions and reads
-- no relation but allowed (src/rule_inputs.c).
CREATE FUNCTION segment_internal.query_reads_only_row(query text, allowed regclass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'segment_query_reads_only_row' LANGUAGE C STABLE;
COMMENT ON FUNCTION segment_internal.query_reads_only_row(text, regclass) IS
    'Whether a query is one SELECT that calls only immutable functions and reads no relation but the one allowed (parsed, never run) (internal)';

-- Why an incremental refresh must rescore every customer (NULL: only those
-- whose figures were recomputed or lie where the cut points moved).
CREATE FUNCTION segment_internal.narrow_blocker(s segment.segmentations, last_key text, key text, prof regclass)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    customers regclass := pg_catalog.to_regclass(s.customers);
    rule      record;
    row_only  boolean;
BEGIN
    IF s.clusters IS NOT NULL THEN
        RETURN 'clusters are configured (the k-means fit reads every customer)';
    END IF;
    IF s.clv THEN
        RETURN 'lifetime value is configured (its models are fitted again over every customer)';
    END IF;
    IF segment_internal.is_citus_table(prof) THEN
        RETURN 'the profile is a Citus table';
    END IF;
    IF last_key IS DISTINCT FROM key THEN
        RETURN 'the configuration, the rules, the time zone or the as-of day changed since the last refresh';
    END IF;
    IF customers IS NOT NULL AND
       (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger AS t
         WHERE t.tgrelid = customers AND t.tgenabled <> 'D'
           AND t.tgfoid = pg_catalog.to_regprocedure(format('segment.%I()', 'capture_' || s.name))) < 4 THEN
        RETURN format('the changes of the customers relation %s are not captured', customers);
    END IF;
    FOR rule IN
        SELECT r.name, coalesce(r.predicate, segment_internal.builtin_predicate(r.builtin, s, 0, 0)) AS predicate
          FROM segment.rules AS r
         WHERE r.segmentation = s.name AND r.enabled
    LOOP
        BEGIN
            -- The profile's columns without as_of and refreshed_at, which
            -- change with every refresh: a rule that reads them fails here.
            -- Its as-of day (as_of::date, as Due to Re-stock reads it) is in
            -- the key: a constant until the day changes, so it is read as one.
            row_only := segment_internal.query_reads_only_row(format('SELECT 1 FROM %s %s',
                            segment_internal.rule_scope_sql(s, format('SELECT %s FROM (SELECT NULL::%s AS customer_id, (NULL::segment.customer_profile).*) AS p',
                                                             pg_catalog.replace(segment.rule_columns(), ', as_of, refreshed_at', ''),
                                                             s.key_type),
                                                   segment_internal.reads_customer(rule.predicate)),
                            segment_internal.rule_lateral_sql('', pg_catalog.regexp_replace(rule.predicate, '\mas_of::date\M',
                                                                                            '''2000-01-01''::date', 'g'),
                                                              'r')), customers);
        EXCEPTION WHEN OTHERS THEN
            row_only := false;
        END;
        IF NOT row_only THEN
            RETURN format('rule "%s" depends on more than the customer''s row (as_of, refreshed_at, a function that is not immutable, or a relation)',
                          rule.name);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.narrow_blocker(segment.segmentations, text, text, regclass) IS
    'Why an incremental refresh must rescore every customer, NULL when it may rescore only those whose figures changed or lie where the cut points moved (internal)';

-- The condition on a stage row (alias st) for its scores to differ between
-- two sets of cut points: a value above the lower and at or below the
-- higher of an old and a new cut (recency in days as of as_of, frequency,
-- monetary), or a monetary between the old and new top-spender cut.  NULL
-- when nothing moved.  Written as ranges of the stage's figures
-- ((s).last_order, (s).orders, (s).monetary), so that the stage's indexes on
-- the last order and monetary find the rows (a moved frequency cut, rare,
-- reads the whole stage): recency as a range of last-order times (the days'
-- midnights in the session's time zone), monetary compared as numeric with a
-- margin that covers its conversion to double precision (a few more rows
-- rescored, never fewer).
CREATE FUNCTION segment_internal.moved_cuts_sql(as_of timestamptz, elapsed boolean,
                                       old_r double precision[], new_r double precision[],
                                       old_f double precision[], new_f double precision[],
                                       old_m double precision[], new_m double precision[],
                                       old_top numeric, new_top numeric)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    conds text[] := '{}';
    dim   text;
    o     double precision[];
    n     double precision[];
    lo    double precision;
    hi    double precision;
    i     integer;
BEGIN
    FOREACH dim IN ARRAY ARRAY['r', 'f', 'm'] LOOP
        o := CASE dim WHEN 'r' THEN old_r WHEN 'f' THEN old_f ELSE old_m END;
        n := CASE dim WHEN 'r' THEN new_r WHEN 'f' THEN new_f ELSE new_m END;
        CONTINUE WHEN o IS NOT DISTINCT FROM n;
        IF o IS NULL OR n IS NULL OR pg_catalog.cardinality(o) <> pg_catalog.cardinality(n) THEN
            RETURN 'true';
        END IF;
        FOR i IN 1 .. pg_catalog.cardinality(o) LOOP
            CONTINUE WHEN o[i] IS NOT DISTINCT FROM n[i];
            lo := LEAST(o[i], n[i]);
            hi := GREATEST(o[i], n[i]);
            -- A score is 1 + the number of cuts below the value, so only a
            -- value in (lo, hi] scores differently under the two cuts.
            conds := conds || CASE dim
                -- recency (whole days) in [lo + 1, hi]: a last order on a day
                -- from as_of's day - hi to as_of's day - lo - 1; elapsed, from
                -- hi + 1 (excluded) to lo + 1 24-hour periods before as_of
                WHEN 'r' THEN CASE WHEN elapsed
                    THEN format('((st.s).last_order > %L::timestamptz AND (st.s).last_order <= %L::timestamptz)',
                                as_of - (pg_catalog.ceil(hi)::integer + 1) * interval '24 hours',
                                as_of - (pg_catalog.floor(lo)::integer + 1) * interval '24 hours')
                    ELSE format('((st.s).last_order >= %L::timestamptz AND (st.s).last_order < %L::timestamptz)',
                                (as_of::date - pg_catalog.ceil(hi)::integer)::timestamptz,
                                (as_of::date - pg_catalog.floor(lo)::integer)::timestamptz) END
                WHEN 'f' THEN format('(st.s).orders BETWEEN %s AND %s', pg_catalog.floor(lo) + 1, pg_catalog.ceil(hi))
                ELSE '(' || segment_internal.monetary_range_sql(lo, hi) || ')'
                END;
        END LOOP;
    END LOOP;
    IF old_top IS DISTINCT FROM new_top THEN
        IF old_top IS NULL OR new_top IS NULL THEN
            RETURN 'true';
        END IF;
        conds := conds || format('(st.s).monetary BETWEEN %s AND %s', LEAST(old_top, new_top),
                                 GREATEST(old_top, new_top));
    END IF;
    RETURN CASE WHEN conds = '{}' THEN NULL ELSE pg_catalog.array_to_string(conds, ' OR ') END;
END
$$;
COMMENT ON FUNCTION segment_internal.moved_cuts_sql(timestamptz, boolean, double precision[], double precision[],
                                           double precision[], double precision[], double precision[],
                                           double precision[], numeric, numeric) IS
    'SQL condition on a stage row whose scores or top-spender flag may differ between two sets of cuts (internal)';

-- The cut points of an incremental refresh, moved from the last refresh's
-- by the stored figures that changed instead of computed again over every
-- customer.  The last refresh kept them in cut_ranks:
--   [1] its customers with figures (buyers), [2] buckets, [3] 1 for
--   elapsed recency, 0 for calendar days, [4:5] the top-spender cut's
--   counts above and at or above it, -1 when not known
--   (segment_internal.top_spender_cut());
--   then recency (days) and then frequency, each as k, the k distinct values
--   ascending, their k counts (segment_internal.breaks_histogram());
--   then monetary (as double precision, as breaks() sorts it) as the n-1 cut
--   points v, then below = #{x < v} of each, then through = #{x <= v}
--   (segment_internal.breaks_ranked()).
-- pg_temp.segment_refresh_delta holds the replaced figures (-1) and their
-- new values (+1, with tid, where the new row lies: refresh_run() reads the
-- recomputed customers' rows there, not by key): the histograms and the
-- number of buyers move by them, and so do a monetary cut's below and
-- through.  Cut point i of n buckets is the value at 0-based position
-- p = ceil(i * buyers / n) - 1: for monetary, v still when
-- below <= p < through, else the value p - through places above
-- v (or below - 1 - p places below), found by the stage's index on
-- monetary, which reads as many rows as the cut point moved.  Recency keeps
-- its histogram when as_of moves by calendar days (every customer's days
-- move alike).  NULL when the cut points must be computed over every
-- customer: no usable ranks, no buyers left, elapsed recency with another
-- as_of, or ranks that do not add up (never trusted).
CREATE FUNCTION segment_internal.moved_breaks(s segment.segmentations, as_of timestamptz, last segment.refreshes,
                                     stage regclass, OUT r_breaks double precision[],
                                     OUT f_breaks double precision[], OUT m_breaks double precision[],
                                     OUT ranks double precision[])
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET extra_float_digits = 3 SET DateStyle = 'ISO' AS
$$
DECLARE
    nb      integer := s.buckets - 1;
    old     double precision[] := last.cut_ranks;
    kind    double precision := CASE WHEN s.recency = 'elapsed' THEN 1 ELSE 0 END;
    shift   integer := 0;
    buyers  bigint;
    pos     integer := 6;
    fig     integer;
    k       integer;
    vals    double precision[];
    cnts    double precision[];
    cuts    double precision[];
    val     text;
    counts  bigint[];
    v       double precision;
    w       double precision;
    below   bigint;
    through bigint;
    p       bigint;
    c1      bigint;
    c2      bigint;
    total   bigint;
    belows  double precision[] := '{}';
    throughs double precision[] := '{}';
    i       integer;
    j       integer;
BEGIN
    -- Ranks are read back from the refresh log: any that are not plain
    -- finite numbers are not trusted.
    IF old IS NULL OR pg_catalog.cardinality(old) < 5 OR old[2] <> s.buckets OR old[3] <> kind
       OR EXISTS (SELECT FROM pg_catalog.unnest(old) AS x WHERE x IS NULL OR NOT (abs(x) < 1e15)) THEN
        RETURN;
    END IF;
    IF last.as_of <> as_of THEN
        IF kind = 1 THEN
            RETURN;
        END IF;
        shift := as_of::date - last.as_of::date;
    END IF;
    SELECT old[1] + coalesce(pg_catalog.sum(d.sign), 0) INTO buyers FROM pg_temp.segment_refresh_delta AS d;
    IF buyers <= 0 THEN
        RETURN;
    END IF;
    ranks := ARRAY[buyers, s.buckets, kind, -1, -1]::double precision[];

    -- Recency and frequency: the histogram moved by the delta, then the values
    -- at the cut positions.
    FOR fig IN 1 .. 2 LOOP
        k := old[pos];
        IF k IS NULL OR k < 1 OR pg_catalog.cardinality(old) < pos + 2 * k THEN
            ranks := NULL;
            RETURN;
        END IF;
        EXECUTE format($q$
            SELECT pg_catalog.array_agg(h.v ORDER BY h.v), pg_catalog.array_agg(h.c ORDER BY h.v)
              FROM (SELECT u.v, pg_catalog.sum(u.c) AS c
                      FROM (SELECT x.v + $3, x.c FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS x(v, c)
                            UNION ALL
                            SELECT %s, d.sign FROM pg_temp.segment_refresh_delta AS d) AS u(v, c)
                     GROUP BY u.v HAVING pg_catalog.sum(u.c) <> 0) AS h$q$,
            CASE fig WHEN 1 THEN segment_internal.days_since_sql(s, as_of, 'd.last_order') || '::double precision'
                     ELSE 'd.orders::double precision' END)
            INTO vals, cnts
            USING old[pos + 1 : pos + k], old[pos + k + 1 : pos + 2 * k], CASE WHEN fig = 1 THEN shift ELSE 0 END;
        pos := pos + 2 * k + 1;
        cuts := '{}';
        total := 0;
        i := 1;
        FOR j IN 1 .. coalesce(pg_catalog.cardinality(vals), 0) LOOP
            IF cnts[j] < 0 THEN
                ranks := NULL;
                RETURN;
            END IF;
            total := total + cnts[j]::bigint;
            WHILE i <= nb AND total > (i * buyers + s.buckets - 1) / s.buckets - 1 LOOP
                cuts := cuts || vals[j];
                i := i + 1;
            END LOOP;
        END LOOP;
        IF total <> buyers OR i <> nb + 1 THEN
            ranks := NULL;
            RETURN;
        END IF;
        IF fig = 1 THEN
            r_breaks := cuts;
        ELSE
            f_breaks := cuts;
        END IF;
        ranks := ranks || pg_catalog.cardinality(vals)::double precision || vals || cnts;
    END LOOP;

    -- Monetary: each cut's below and through moved by the delta (2 * nb sums
    -- in one scan), then the cut moved along the stage's index where its
    -- position left its run of equal values.
    IF pg_catalog.cardinality(old) <> pos - 1 + 3 * nb THEN
        ranks := NULL;
        RETURN;
    END IF;
    val := '((st.s).monetary)::double precision';
    cuts := old[pos : pos + nb - 1];
    -- (each figure converted once, not once for each of the 2 * nb sums:
    -- OFFSET 0 keeps the planner from pulling the conversion up into them)
    EXECUTE format('SELECT ARRAY[%s]::bigint[]
                      FROM (SELECT d.sign, d.monetary::double precision AS m
                              FROM pg_temp.segment_refresh_delta AS d OFFSET 0) AS d',
                   (SELECT pg_catalog.string_agg(format('coalesce(pg_catalog.sum(d.sign) FILTER (WHERE d.m < %1$s), 0), '
                                                        'coalesce(pg_catalog.sum(d.sign) FILTER (WHERE d.m <= %1$s), 0)',
                                                        format('%L::double precision', c)), ', ' ORDER BY o)
                      FROM pg_catalog.unnest(cuts) WITH ORDINALITY AS u(c, o)))
        INTO counts;
    FOR i IN 1 .. nb LOOP
        v := cuts[i];
        below := old[pos + nb + i - 1]::bigint + counts[2 * i - 1];
        through := old[pos + 2 * nb + i - 1]::bigint + counts[2 * i];
        p := (i * buyers + s.buckets - 1) / s.buckets - 1;
        IF p >= through THEN
            -- Up: the (p - through)-th value above v.
            EXECUTE format('SELECT %1$s FROM %2$s AS st WHERE %3$s AND %1$s > %4$s ORDER BY (st.s).monetary OFFSET %5$s LIMIT 1',
                           val, stage, segment_internal.monetary_range_sql(v, NULL), format('%L::double precision', v),
                           p - through)
                INTO w;
            EXIT WHEN w IS NULL;
            EXECUTE format('SELECT pg_catalog.count(*) FILTER (WHERE %1$s < %4$s), pg_catalog.count(*)
                              FROM %2$s AS st WHERE %3$s AND %1$s > %5$s AND %1$s <= %4$s',
                           val, stage, segment_internal.monetary_range_sql(v, w),
                           format('%L::double precision', w), format('%L::double precision', v))
                INTO c1, c2;
            below := through + c1;
            through := through + c2;
            v := w;
        ELSIF p < below THEN
            -- Down: the (below - 1 - p)-th value below v.
            EXECUTE format('SELECT %1$s FROM %2$s AS st WHERE %3$s AND %1$s < %4$s ORDER BY (st.s).monetary DESC OFFSET %5$s LIMIT 1',
                           val, stage, segment_internal.monetary_range_sql(NULL, v), format('%L::double precision', v),
                           below - 1 - p)
                INTO w;
            EXIT WHEN w IS NULL;
            EXECUTE format('SELECT pg_catalog.count(*) FILTER (WHERE %1$s > %4$s), pg_catalog.count(*)
                              FROM %2$s AS st WHERE %3$s AND %1$s >= %4$s AND %1$s < %5$s',
                           val, stage, segment_internal.monetary_range_sql(w, v),
                           format('%L::double precision', w), format('%L::double precision', v))
                INTO c1, c2;
            through := below - c1;
            below := below - c2;
            v := w;
        END IF;
        EXIT WHEN NOT (below <= p AND p < through AND below >= 0 AND through <= buyers);
        cuts[i] := v;
        belows := belows || below::double precision;
        throughs := throughs || through::double precision;
    END LOOP;
    IF pg_catalog.cardinality(throughs) <> nb THEN
        ranks := NULL;
        RETURN;
    END IF;
    m_breaks := cuts;
    ranks := ranks || cuts || belows || throughs;
END
$$;
COMMENT ON FUNCTION segment_internal.moved_breaks(segment.segmentations, timestamptz, segment.refreshes, regclass) IS
    'The cut points of an incremental refresh with their ranks, moved from the last refresh''s by the figures that changed; NULL ranks when they must be computed over every customer (internal)';

-- The top-spender cut of an incremental refresh: percentile_disc(1 - share)
-- of the stored monetary figures, the value at 0-based position
-- max(ceil((1 - share) * buyers), 1) - 1, i.e. r = buyers - 1 - that from
-- the top.  From the last refresh's cut t with its counts above (> t) and at
-- or above (>= t) (cut_ranks[4:5], -1 when unknown), moved by the figures
-- that changed: t still when above <= r < at_or_above, else the stage's
-- monetary index walked from t by as many rows as the cut moved.  Without
-- them (the first incremental refresh after a full one), the index walked
-- from the top and the counts taken.  Exact: numeric throughout.
CREATE FUNCTION segment_internal.top_spender_cut(s segment.segmentations, last segment.refreshes, stage regclass,
                                        buyers bigint, OUT top numeric, OUT above bigint,
                                        OUT at_or_above bigint)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    r  bigint := buyers - greatest(pg_catalog.ceil((1 - s.top_spender_share) * buyers::double precision), 1)::bigint;
    t  numeric := last.top_spender_min;
    c1 bigint;
    c2 bigint;
BEGIN
    IF buyers <= 0 THEN
        RETURN;
    END IF;
    IF t IS NOT NULL AND pg_catalog.cardinality(last.cut_ranks) >= 5 AND last.cut_ranks[4] >= 0
       AND last.cut_ranks[5] > last.cut_ranks[4] AND last.cut_ranks[5] <= last.cut_ranks[1] AND last.cut_ranks[1] < 1e15 THEN
        SELECT last.cut_ranks[4]::bigint + coalesce(pg_catalog.sum(d.sign) FILTER (WHERE d.monetary > t), 0),
               last.cut_ranks[5]::bigint + coalesce(pg_catalog.sum(d.sign) FILTER (WHERE d.monetary >= t), 0)
          INTO above, at_or_above
          FROM pg_temp.segment_refresh_delta AS d;
        top := t;
        IF r >= at_or_above THEN
            -- down from t
            EXECUTE format('SELECT (st.s).monetary FROM %s AS st WHERE (st.s).monetary < $1
                             ORDER BY (st.s).monetary DESC OFFSET $2 LIMIT 1', stage)
                INTO top USING t, r - at_or_above;
            EXECUTE format('SELECT pg_catalog.count(*) FILTER (WHERE (st.s).monetary > $1), pg_catalog.count(*)
                              FROM %s AS st WHERE (st.s).monetary >= $1 AND (st.s).monetary < $2', stage)
                INTO c1, c2 USING top, t;
            above := at_or_above + c1;
            at_or_above := at_or_above + c2;
        ELSIF r < above THEN
            -- up from t
            EXECUTE format('SELECT (st.s).monetary FROM %s AS st WHERE (st.s).monetary > $1
                             ORDER BY (st.s).monetary OFFSET $2 LIMIT 1', stage)
                INTO top USING t, above - 1 - r;
            EXECUTE format('SELECT pg_catalog.count(*) FILTER (WHERE (st.s).monetary < $2), pg_catalog.count(*)
                              FROM %s AS st WHERE (st.s).monetary > $1 AND (st.s).monetary <= $2', stage)
                INTO c1, c2 USING t, top;
            at_or_above := above - c1;
            above := above - c2;
        END IF;
        IF top IS NOT NULL AND above <= r AND r < at_or_above THEN
            RETURN;
        END IF;
    END IF;
    -- From the top: percentile_disc's row, and its counts.
    EXECUTE format('SELECT (st.s).monetary FROM %s AS st ORDER BY (st.s).monetary DESC OFFSET $1 LIMIT 1', stage)
        INTO top USING r;
    EXECUTE format('SELECT pg_catalog.count(*) FILTER (WHERE (st.s).monetary > $1), pg_catalog.count(*)
                      FROM %s AS st WHERE (st.s).monetary >= $1', stage)
        INTO above, at_or_above USING top;
END
$$;
COMMENT ON FUNCTION segment_internal.top_spender_cut(segment.segmentations, segment.refreshes, regclass, bigint) IS
    'The top-spender cut of an incremental refresh from the stored figures, with its counts above and at or above, moved from the last refresh''s (internal)';

-- The top-spender cut of a full refresh: percentile_disc(1 - share) of the
-- stored monetary figures, exact as numeric, from rank_at()'s double at that
-- position (ranked: {value, below, at or below, count, position}).  The
-- conversion to double keeps the order, so the numerics whose double is that
-- value are those ranked between below and at or below, and the cut is the
-- one at its position among them: a few rows found by the stage's index,
-- where percentile_disc() sorted every figure.  With its counts above and at
-- or above for the next, incremental, refresh (top_spender_cut()).
CREATE FUNCTION segment_internal.top_spender_at(stage regclass, ranked double precision[],
                                       OUT top numeric, OUT above bigint, OUT at_or_above bigint)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    tied numeric[];
BEGIN
    IF pg_catalog.cardinality(ranked) IS DISTINCT FROM 5 THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT pg_catalog.array_agg((st.s).monetary ORDER BY (st.s).monetary) FROM %s AS st
                     WHERE %s AND ((st.s).monetary)::double precision = $1',
                   stage, segment_internal.monetary_range_sql(ranked[1], ranked[1]))
        INTO tied USING ranked[1];
    IF pg_catalog.cardinality(tied) IS DISTINCT FROM (ranked[3] - ranked[2])::integer
       OR NOT (ranked[5] >= ranked[2] AND ranked[5] < ranked[3]) THEN
        RAISE EXCEPTION 'the top-spender cut of % was not found among its stored figures', stage
            USING ERRCODE = 'internal_error',
                  DETAIL = format('Ranks %s, %s figures with that value.', ranked, pg_catalog.cardinality(tied));
    END IF;
    top := tied[(ranked[5] - ranked[2])::integer + 1];
    SELECT ranked[4]::bigint - ranked[3]::bigint + pg_catalog.count(*) FILTER (WHERE t.v > top),
           ranked[4]::bigint - ranked[3]::bigint + pg_catalog.count(*) FILTER (WHERE t.v >= top)
      INTO above, at_or_above
      FROM pg_catalog.unnest(tied) AS t(v);
END
$$;
COMMENT ON FUNCTION segment_internal.top_spender_at(regclass, double precision[]) IS
    'The top-spender cut of a full refresh, exact, from the rank_at() aggregate''s value and ranks in double precision, with its counts above and at or above (internal)';

-- A condition on a stage row (st) that its monetary as double precision may
-- lie in [lo, hi] (NULL: unbounded), on the indexed numeric so that the
-- stage's index finds the rows, with a margin over the conversion (the
-- caller adds the exact test).
CREATE FUNCTION segment_internal.monetary_range_sql(lo double precision, hi double precision) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET extra_float_digits = 3 AS
$$
    SELECT pg_catalog.concat_ws(' AND ', 'true',
        CASE WHEN lo IS NOT NULL THEN format('(st.s).monetary >= %s', lo::numeric - abs(lo::numeric) * 1e-9 - 1e-9) END,
        CASE WHEN hi IS NOT NULL THEN format('(st.s).monetary <= %s', hi::numeric + abs(hi::numeric) * 1e-9 + 1e-9) END)
$$;
COMMENT ON FUNCTION segment_internal.monetary_range_sql(double precision, double precision) IS
    'SQL condition on a stage row, on its indexed monetary, that its monetary as double precision may lie in a range (wider than exact) (internal)';

-- Incremental refreshes of the events and contacts sources.  Each source
-- has, like the orders, a change log (segment.<kind>_changes_<name>: the
-- customers of the rows a statement inserted, updated or deleted, NULL for
-- rows without a customer, or a TRUNCATE) written by statement triggers with
-- transition tables (segment.<kind>_capture_<name>()), and a stage
-- (segment.<kind>_stage_<name>): the per-customer summary of the last
-- refresh, with as_of and window_start left NULL (they are those of every
-- row).  An incremental refresh from as_of A0 to A1 recomputes the summaries
-- of the customers in the log and of those with rows whose time lies in
-- (A0 - lookback, A1 - lookback] (they leave the window) or in (A0, A1]
-- (they enter it, or stop being after as_of): the aggregates (src/events.c,
-- src/contacts.c) count in their window rows in (as_of - lookback, as_of],
-- take their first and last times, cart and subscription from rows at or
-- before as_of and count the rows after it, so no other field of a
-- customer's summary moves with as_of; the unknown rows and those without a
-- time count at any as_of.  What the summaries feed that depends on the
-- orders (abandoned_at() and abandoned_products() take the last order) is
-- computed when the customers are scored, from the current figures.

-- Drops the change capture of a segmentation's events or contacts source:
-- the triggers of its function (wherever they are), the function, the log
-- and the stage.
CREATE FUNCTION segment_internal.drop_source_capture(segmentation text, kind text) RETURNS void
    LANGUAGE sql SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment_internal.drop_capture_objects(
               pg_catalog.to_regprocedure(segment_internal.source_capture_name(segmentation, kind, 'capture')),
               ARRAY[segment_internal.source_capture_name(segmentation, kind, 'changes'),
                     segment_internal.source_capture_name(segmentation, kind, 'stage')]
               -- (Impulse Buyers' stage goes with the products')
               || CASE WHEN kind = 'products' THEN ARRAY[segment_internal.source_capture_name(segmentation, 'impulse', 'stage')]
                       ELSE '{}'::text[] END);
$$;
COMMENT ON FUNCTION segment_internal.drop_source_capture(text, text) IS
    'Drops the change-capture triggers and function, change log and stage of a segmentation''s events or contacts source (internal)';

-- Hands a source's change log, stage and capture function to the owner of
-- segmentation s, where the configuring role may (a superuser, or a member
-- of the owner's role); otherwise they stay the configuring role's.
CREATE FUNCTION segment_internal.give_capture_to_owner(s segment.segmentations, log text, stage text, fn text)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    owner regrole := (SELECT x.owner FROM segment.segmentations AS x WHERE x.name = s.name);
BEGIN
    IF owner IS NOT NULL AND owner::oid <> (SELECT c.relowner FROM pg_catalog.pg_class AS c
                                             WHERE c.oid = pg_catalog.to_regclass(log)) THEN
        EXECUTE format('ALTER TABLE %s OWNER TO %s', log, owner);
        EXECUTE format('ALTER TABLE %s OWNER TO %s', stage, owner);
        EXECUTE format('ALTER FUNCTION %s OWNER TO %s', fn, owner);
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.give_capture_to_owner(segment.segmentations, text, text, text) IS
    'Gives the change log, stage and capture function of a segmentation''s source to its owner, where the role may (internal)';

-- Sets up the change capture of a segmentation's events or contacts source
-- (configure(), configure_event_source() and configure_contact_source() call
-- it, as the role that configures): log, stage, trigger function and the
-- four triggers.  Returns NULL, or why there is none (then every refresh is
-- a full one).  Needs the orders' capture: without it refreshes are full.
CREATE FUNCTION segment_internal.setup_source_capture(s segment.segmentations, kind text) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a     record;
    why   text;
    event text;
    log   text := segment_internal.source_capture_name(s.name, kind, 'changes');
    stage text := segment_internal.source_capture_name(s.name, kind, 'stage');
    fn    text := segment_internal.source_capture_name(s.name, kind, 'capture');
BEGIN
    SELECT * INTO a FROM segment_internal.activity_source(s, kind) AS x;
    IF a.config IS NULL THEN
        RETURN format('no %s source', kind);
    END IF;
    IF pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name)) IS NULL THEN
        RETURN 'the orders'' changes are not captured';
    END IF;
    why := pg_catalog.replace(segment_internal.capture_unsupported(a.relation), 'the orders relation',
                              format('the %s relation', kind));
    IF why IS NOT NULL THEN
        RETURN why;
    END IF;
    BEGIN
        IF pg_catalog.to_regclass(log) IS NULL THEN
            EXECUTE format('CREATE TABLE %s (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                                             customer_id text, truncated boolean NOT NULL DEFAULT false)', log);
            EXECUTE format('COMMENT ON TABLE %s IS %L', log,
                           format('Customers whose %s changed since the last refresh of segmentation %s (NULL: rows without a customer; the change log of incremental refreshes)',
                                  kind, s.name));
        END IF;
        IF pg_catalog.to_regclass(stage) IS NULL THEN
            EXECUTE format('CREATE TABLE %s (customer_id %s, %s segment.%s, n bigint, no_time bigint)', stage,
                           s.key_type, CASE kind WHEN 'events' THEN 'e' ELSE 'c' END,
                           CASE kind WHEN 'events' THEN 'event_summary' ELSE 'contact_summary' END);
            EXECUTE format('CREATE INDEX ON %s (customer_id)', stage);
            EXECUTE format('COMMENT ON TABLE %s IS %L', stage,
                           format('Per-customer %s summaries of the last refresh of segmentation %s, as_of and window_start left NULL (incremental refreshes recompute the changed customers'' rows)',
                                  kind, s.name));
        END IF;
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION %1$s RETURNS trigger
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
            BEGIN
                IF TG_RELID <> %2$s::pg_catalog.oid THEN
                    RETURN NULL;
                END IF;
                IF TG_OP = 'TRUNCATE' THEN
                    INSERT INTO %3$s (truncated) VALUES (true);
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO %3$s (customer_id) SELECT DISTINCT n.%4$I::text FROM new_rows AS n;
                END IF;
                IF TG_OP IN ('DELETE', 'UPDATE') THEN
                    INSERT INTO %3$s (customer_id) SELECT DISTINCT o.%4$I::text FROM old_rows AS o;
                END IF;
                RETURN NULL;
            END
            $body$ $f$, fn, a.relation::oid, log, a.customer);
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', fn);
        EXECUTE format('COMMENT ON FUNCTION %s IS %L', fn,
                       format('Trigger on %s: logs the customers whose %s changed for the incremental refreshes of segmentation %s (internal)',
                              a.relation, kind, s.name));
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = a.relation
                              AND t.tgname = segment_internal.capture_trigger_name(s.name, kind || '_' || event)) THEN
                EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s',
                               segment_internal.capture_trigger_name(s.name, kind || '_' || event), event, a.relation,
                               CASE event WHEN 'insert' THEN 'REFERENCING NEW TABLE AS new_rows'
                                          WHEN 'delete' THEN 'REFERENCING OLD TABLE AS old_rows'
                                          WHEN 'update' THEN 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                                          ELSE '' END, fn);
            END IF;
        END LOOP;
    EXCEPTION
        WHEN insufficient_privilege THEN
            RETURN format('no privilege to create triggers on %s (TRIGGER privilege or ownership)', a.relation);
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
            RETURN format('the change-capture triggers could not be created on %s: %s', a.relation, why);
    END;
    -- The owner's, as the orders' capture (refreshes write them as the owner).
    PERFORM segment_internal.give_capture_to_owner(s, log, stage, fn);
    -- Fire in replica sessions too, where the table's owner allows it.
    BEGIN
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', a.relation,
                           segment_internal.capture_trigger_name(s.name, kind || '_' || event));
        END LOOP;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.setup_source_capture(segment.segmentations, text) IS
    'Creates the change log, stage, capture function and triggers of a segmentation''s events or contacts source; returns NULL or why it cannot (internal)';

-- Why the stored summaries of a segmentation's events or contacts source
-- cannot be brought forward incrementally (NULL: they can).
CREATE FUNCTION segment_internal.source_incremental_blocker(s segment.segmentations, kind text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    a     record;
    fn    regprocedure := pg_catalog.to_regprocedure(segment_internal.source_capture_name(s.name, kind, 'capture'));
    log   regclass := pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, kind, 'changes'));
    event text;
    truncated boolean;
BEGIN
    SELECT * INTO a FROM segment_internal.activity_source(s, kind) AS x;
    IF fn IS NULL OR log IS NULL
       OR pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, kind, 'stage')) IS NULL THEN
        RETURN format('no change capture on the %s source: %s', kind,
                      coalesce(pg_catalog.replace(segment_internal.capture_unsupported(a.relation), 'the orders relation',
                                                  format('the %s relation', kind)),
                               format('run %s again (configured before change capture, or it could not create its triggers on %s)',
                                      segment_internal.source_configure_function(kind), a.relation)));
    END IF;
    FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                        WHERE t.tgrelid = a.relation AND t.tgfoid = fn AND t.tgenabled <> 'D'
                          AND t.tgname = segment_internal.capture_trigger_name(s.name, kind || '_' || event)) THEN
            RETURN format('the %s capture trigger on the %s relation %s is missing or disabled (run %s again)',
                          event, kind, a.relation, segment_internal.source_configure_function(kind));
        END IF;
    END LOOP;
    EXECUTE format('SELECT EXISTS (SELECT FROM %s AS c WHERE c.truncated)', log) INTO truncated;
    IF truncated THEN
        RETURN format('the %s relation was truncated', kind);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment_internal.source_incremental_blocker(segment.segmentations, text) IS
    'Why the stored summaries of a segmentation''s events or contacts source cannot be recomputed for the changed customers only (NULL: they can) (internal)';

-- An event or contact summary (the composite expr) with as_of and
-- window_start set to as_of and start (SQL expressions): the stage keeps
-- them NULL.  A NULL summary stays NULL.
CREATE FUNCTION segment_internal.summary_at_sql(kind text, expr text, as_of text, start text) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    -- the third field, a count, is never NULL in a summary
    SELECT format('CASE WHEN (%1$s).as_of IS NOT NULL OR (%1$s).%6$I IS NOT NULL THEN ROW(%2$s, %3$s%4$s)::segment.%5$s END',
                  expr, as_of, start,
                  pg_catalog.string_agg(format(', (%s).%I', expr, a.attname), '' ORDER BY a.attnum),
                  t.typname, (pg_catalog.array_agg(a.attname::text) FILTER (WHERE a.attnum = 3))[1])
      FROM pg_catalog.pg_type AS t
      JOIN pg_catalog.pg_attribute AS a ON a.attrelid = t.typrelid AND a.attnum > 2 AND NOT a.attisdropped
     WHERE t.oid = CASE kind WHEN 'events' THEN 'segment.event_summary'::regtype
                             ELSE 'segment.contact_summary'::regtype END
     GROUP BY t.typname
$$;
COMMENT ON FUNCTION segment_internal.summary_at_sql(text, text, text, text) IS
    'SQL of an event or contact summary with its as_of and window_start fields replaced (NULL stays NULL) (internal)';

-- The query of a refresh's per-customer summaries of an events or contacts
-- source as of a time (the columns of pg_temp.segment_refresh_events:
-- customer_id, e, n, no_time; of segment_refresh_contacts: customer_id, c,
-- n, no_time), over the rows (alias r) that satisfy more (SQL; NULL: every
-- row).  A NULL key forms a group of its own, which the counts read; the
-- aggregates skip rows with a NULL time.
CREATE FUNCTION segment_internal.activity_summary_sql(s segment.segmentations, kind text, as_of timestamptz,
                                                      more text)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    e segment.event_sources;
    c segment.contact_sources;
BEGIN
    IF kind = 'events' THEN
        SELECT * INTO e FROM segment.event_sources AS x WHERE x.segmentation = s.name;
        RETURN format($q$
            SELECT r.%1$I::%2$s AS customer_id,
                   segment.events(r.%3$I::text, r.%4$I::timestamptz, %5$s,
                                  %6$L::timestamptz, %7$L::interval%8$s) AS e,
                   pg_catalog.count(*) AS n,
                   pg_catalog.count(*) FILTER (WHERE r.%4$I IS NULL) AS no_time
              FROM %9$s AS r%10$s
             GROUP BY r.%1$I$q$,
            e.customer, s.key_type, e.event_type, e.occurred_at,
            CASE WHEN e.product IS NULL THEN 'NULL::text' ELSE format('r.%I::text', e.product) END,
            as_of, e.lookback,
            CASE WHEN e.kinds IS NULL THEN '' ELSE format(', %L::jsonb', e.kinds) END,
            pg_catalog.to_regclass(e.relation), coalesce(' WHERE ' || more, ''));
    END IF;
    SELECT * INTO c FROM segment.contact_sources AS x WHERE x.segmentation = s.name;
    RETURN format($q$
        SELECT r.%1$I::%2$s AS customer_id,
               segment.contacts(r.%3$I::timestamptz, %4$s, %5$L::timestamptz, %6$L::interval) AS c,
               pg_catalog.count(*) AS n,
               pg_catalog.count(*) FILTER (WHERE r.%3$I IS NULL) AS no_time
          FROM %7$s AS r%8$s
         GROUP BY r.%1$I$q$,
        c.customer, s.key_type, c.opened_at,
        CASE WHEN c.negative IS NULL THEN 'true'
             WHEN c.negative_below IS NULL THEN format('r.%I', c.negative)
             ELSE format('r.%I::double precision < %L::double precision', c.negative, c.negative_below) END,
        as_of, c.lookback, pg_catalog.to_regclass(c.relation), coalesce(' WHERE ' || more, ''));
END
$$;
COMMENT ON FUNCTION segment_internal.activity_summary_sql(segment.segmentations, text, timestamptz, text) IS
    'The query of the per-customer summaries of a segmentation''s events or contacts source as of a time, over every row or those satisfying a condition (internal)';

-- Brings a source's stored stage (keyed by customer_id) to the rows of a
-- refresh's temporary table tbl, writing only those whose values changed:
-- the stage's columns cols take the SQL expressions vals over tbl's row n.
-- The rows without a customer are replaced.
CREATE FUNCTION segment_internal.write_stage(stage text, tbl text, cols text[], vals text[]) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    stage_cols text := (SELECT pg_catalog.string_agg('st.' || pg_catalog.quote_ident(c), ', ')
                          FROM pg_catalog.unnest(cols) AS u(c));
    names      text := (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ')
                          FROM pg_catalog.unnest(cols) AS u(c));
    new_vals   text := pg_catalog.array_to_string(vals, ', ');
BEGIN
    EXECUTE format('DELETE FROM %s AS st
                     WHERE st.customer_id IS NULL
                        OR NOT EXISTS (SELECT FROM pg_temp.%I AS n WHERE n.customer_id = st.customer_id)',
                   stage, tbl);
    EXECUTE format('UPDATE %1$s AS st SET (%2$s) = ROW(%3$s)
                      FROM pg_temp.%4$I AS n
                     WHERE n.customer_id = st.customer_id AND (%5$s) IS DISTINCT FROM (%3$s)',
                   stage, names, new_vals, tbl, stage_cols);
    EXECUTE format('INSERT INTO %1$s (customer_id, %2$s)
                    SELECT n.customer_id, %3$s FROM pg_temp.%4$I AS n
                     WHERE n.customer_id IS NULL
                        OR NOT EXISTS (SELECT FROM %1$s AS st WHERE st.customer_id = n.customer_id)',
                   stage, names, new_vals, tbl);
END
$$;
COMMENT ON FUNCTION segment_internal.write_stage(text, text, text[], text[]) IS
    'Writes into a source''s stored stage the rows of a refresh''s temporary table whose values changed, and deletes those gone (internal)';

-- After an incremental refresh recomputed some customers' figures of a
-- source (pg_temp.segment_refresh_source_keys): adds them to those it
-- rescores (pg_temp.segment_refresh_source_affected, of every source) and
-- drops the keys.
CREATE FUNCTION segment_internal.add_source_affected() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF pg_catalog.to_regclass('pg_temp.segment_refresh_source_affected') IS NULL THEN
        PERFORM segment_internal.refresh_table('segment_refresh_source_affected',
            'SELECT DISTINCT k.k FROM pg_temp.segment_refresh_source_keys AS k WHERE k.k IS NOT NULL');
    ELSE
        INSERT INTO pg_temp.segment_refresh_source_affected
        SELECT DISTINCT k.k FROM pg_temp.segment_refresh_source_keys AS k WHERE k.k IS NOT NULL;
    END IF;
    DROP TABLE pg_temp.segment_refresh_source_keys;
END
$$;
COMMENT ON FUNCTION segment_internal.add_source_affected() IS
    'Adds the customers whose source figures an incremental refresh recomputed to those it rescores (internal)';

-- Step 1b of a refresh for the events and contacts sources (the kinds in
-- sources): pg_temp.segment_refresh_events and segment_refresh_contacts.  A
-- full refresh (mode) summarises every row and, when store (the refresh
-- stores the orders' figures too), keeps the summaries in the source's
-- stage and consumes its log; an incremental one recomputes in the stage
-- the customers of the log and those whose window moved over one of their
-- rows since the last refresh (see above) and lists them in
-- pg_temp.segment_refresh_source_affected; activity_tables() then reads
-- the summaries from the stage.  Returns the customers recomputed per kind.
CREATE FUNCTION segment_internal.refresh_activity_stages(s segment.segmentations, as_of timestamptz, sources text[],
                                                         mode text, store boolean)
    RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    kind    text;
    a       record;
    col     text;
    tbl     text;
    stage   text;
    log     text;
    last_as_of timestamptz;
    start0  timestamptz;
    start1  timestamptz;
    whole   boolean;
    nulls   boolean;
    n       bigint;
    result  jsonb := '{}';
BEGIN
    SELECT r.as_of INTO last_as_of FROM segment.refreshes AS r WHERE r.id = s.last_refresh;
    FOREACH kind IN ARRAY ARRAY['events', 'contacts'] LOOP
        CONTINUE WHEN NOT kind = ANY (sources);
        SELECT * INTO a FROM segment_internal.activity_source(s, kind) AS x;
        col := CASE kind WHEN 'events' THEN 'e' ELSE 'c' END;
        tbl := 'segment_refresh_' || kind;
        stage := segment_internal.source_capture_name(s.name, kind, 'stage');
        log := segment_internal.source_capture_name(s.name, kind, 'changes');
        -- the window's start as the aggregates compute it (as_of - lookback)
        start1 := as_of - a.lookback;
        IF mode <> 'incremental' THEN
            IF store AND pg_catalog.to_regclass(stage) IS NOT NULL AND pg_catalog.to_regclass(log) IS NOT NULL THEN
                -- The log as this refresh reads it, before the rows.
                PERFORM segment_internal.refresh_table('segment_refresh_source_consumed',
                                                       format('SELECT c.id FROM %s AS c', log));
            END IF;
            PERFORM segment_internal.run_source_statement(s, kind, tbl,
                                                          segment_internal.activity_summary_sql(s, kind, as_of, NULL));
            IF pg_catalog.to_regclass('pg_temp.segment_refresh_source_consumed') IS NOT NULL THEN
                PERFORM segment_internal.write_stage(stage, tbl, ARRAY[col, 'n', 'no_time'],
                                                     ARRAY[segment_internal.summary_at_sql(kind, 'n.' || col, 'NULL', 'NULL'),
                                                           'n.n', 'n.no_time']);
                EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_source_consumed AS c)',
                               log);
                DROP TABLE pg_temp.segment_refresh_source_consumed;
            END IF;
            CONTINUE;
        END IF;

        -- Incremental: the log as this refresh reads it, then the customers
        -- to recompute: those of the log and those with rows where the
        -- window moved (their key NULL: the rows without a customer).
        PERFORM segment_internal.refresh_table('segment_refresh_source_consumed',
                                               format('SELECT c.id, c.customer_id, c.truncated FROM %s AS c', log));
        -- A TRUNCATE logged since the check of incremental_blocker(): every
        -- summary of this source is recomputed.
        whole := EXISTS (SELECT FROM pg_temp.segment_refresh_source_consumed AS c WHERE c.truncated);
        IF NOT whole THEN
            start0 := last_as_of - a.lookback;
            PERFORM segment_internal.refresh_table('segment_refresh_source_keys', format($q$
                SELECT c.customer_id::%1$s AS k FROM pg_temp.segment_refresh_source_consumed AS c
                UNION
                SELECT r.%2$I::%1$s FROM %3$s AS r
                 WHERE (r.%4$I::timestamptz > %5$L::timestamptz AND r.%4$I::timestamptz <= %6$L::timestamptz)
                    OR (r.%4$I::timestamptz > %7$L::timestamptz AND r.%4$I::timestamptz <= %8$L::timestamptz)$q$,
                s.key_type, a.customer, a.relation, a.at, start0, start1, last_as_of, as_of));
            ANALYZE pg_temp.segment_refresh_source_keys;
            nulls := EXISTS (SELECT FROM pg_temp.segment_refresh_source_keys AS k WHERE k.k IS NULL);
            SELECT pg_catalog.count(*) INTO n FROM pg_temp.segment_refresh_source_keys;
            EXECUTE format('DELETE FROM %s AS st
                             WHERE st.customer_id = ANY (ARRAY(SELECT k.k FROM pg_temp.segment_refresh_source_keys AS k
                                                                WHERE k.k IS NOT NULL))%s',
                           stage, CASE WHEN nulls THEN ' OR st.customer_id IS NULL' ELSE '' END);
            PERFORM segment_internal.run_source_statement(s, kind, tbl, segment_internal.activity_summary_sql(s, kind, as_of, format(
                -- a hashed semi-join, or index probes
                'r.%1$I::%2$s IN (SELECT k.k FROM pg_temp.segment_refresh_source_keys AS k
                                   WHERE k.k IS NOT NULL)%3$s',
                a.customer, s.key_type, CASE WHEN nulls THEN format(' OR r.%I IS NULL', a.customer) ELSE '' END)));
        ELSE
            -- every customer of the source, before and after
            PERFORM segment_internal.refresh_table('segment_refresh_source_keys', format(
                'SELECT st.customer_id AS k FROM %s AS st', stage));
            EXECUTE format('DELETE FROM %s', stage);
            PERFORM segment_internal.run_source_statement(s, kind, tbl, segment_internal.activity_summary_sql(s, kind, as_of, NULL));
            EXECUTE format('SELECT pg_catalog.count(*) FROM pg_temp.%I', tbl) INTO n;
            EXECUTE format('INSERT INTO pg_temp.segment_refresh_source_keys SELECT x.customer_id FROM pg_temp.%I AS x', tbl);
        END IF;
        -- (read through run_source_statement(), which names the source that fails)
        EXECUTE format('INSERT INTO %s SELECT x.customer_id, %s, x.n, x.no_time FROM pg_temp.%I AS x', stage,
                       segment_internal.summary_at_sql(kind, 'x.' || col, 'NULL', 'NULL'), tbl);
        EXECUTE format('DROP TABLE pg_temp.%I', tbl);
        -- The customers whose summaries were recomputed, of every source
        -- (refresh_run() rescores them).
        PERFORM segment_internal.add_source_affected();
        EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_source_consumed AS c)',
                       log);
        DROP TABLE pg_temp.segment_refresh_source_consumed;
        result := result || pg_catalog.jsonb_build_object(kind, n);
    END LOOP;
    RETURN result;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_activity_stages(segment.segmentations, timestamptz, text[], text, boolean) IS
    'Step 1b of a refresh for the events and contacts sources: their per-customer summaries from every row (stored for the next refresh) or, incrementally, from the stored ones with the changed customers'' recomputed (internal)';

-- After an incremental refresh_activity_stages() and refresh_product_stage():
-- pg_temp.segment_refresh_events and segment_refresh_contacts from the
-- stages, with this refresh's as_of and window start, and
-- segment_refresh_lines; only the rescored
-- customers' (narrow: those of pg_temp.segment_refresh_affected), or every
-- customer's.
CREATE FUNCTION segment_internal.activity_tables(s segment.segmentations, as_of timestamptz, sources text[],
                                                 narrow boolean)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    kind text;
    col  text;
    a    record;
BEGIN
    FOREACH kind IN ARRAY ARRAY['events', 'contacts'] LOOP
        CONTINUE WHEN NOT kind = ANY (sources);
        SELECT * INTO a FROM segment_internal.activity_source(s, kind) AS x;
        col := CASE kind WHEN 'events' THEN 'e' ELSE 'c' END;
        PERFORM segment_internal.refresh_table('segment_refresh_' || kind, format(
            'SELECT st.customer_id, %s AS %I, st.n, st.no_time FROM %s AS st%s',
            segment_internal.summary_at_sql(kind, 'st.' || col, format('%L::timestamptz', as_of),
                                            format('%L::timestamptz', as_of - a.lookback)),
            col, segment_internal.source_capture_name(s.name, kind, 'stage'),
            CASE WHEN narrow THEN ' WHERE st.customer_id = ANY (ARRAY(SELECT a.k FROM pg_temp.segment_refresh_affected AS a))'
                 ELSE '' END));
    END LOOP;
    -- Impulse Buyers' figures (refresh_impulse_stage()), where it keeps them.
    IF segment_internal.has_impulse(s, sources) THEN
        PERFORM segment_internal.refresh_table('segment_refresh_impulse', format(
            'SELECT st.customer_id, st.lines, st.unbrowsed, st.first_at FROM %s AS st%s',
            segment_internal.source_capture_name(s.name, 'impulse', 'stage'),
            CASE WHEN narrow THEN ' WHERE st.customer_id = ANY (ARRAY(SELECT a.k FROM pg_temp.segment_refresh_affected AS a))'
                 ELSE '' END));
    END IF;
    -- The order lines' figures (refresh_product_stage()): the customers'
    -- (the counts read those of the lines without one from the stage).
    IF 'products' = ANY (sources) THEN
        PERFORM segment_internal.refresh_table('segment_refresh_lines', format(
            'SELECT st.customer_id, st.order_key, st.l, st.n, st.no_order, st.excluded_order, st.bad_quantity,
                    st.missing_product, st.next_restock, st.restock_product
               FROM %s AS st%s',
            segment_internal.source_capture_name(s.name, 'products', 'stage'),
            CASE WHEN narrow THEN ' WHERE st.customer_id = ANY (ARRAY(SELECT a.k FROM pg_temp.segment_refresh_affected AS a))'
                 ELSE '' END));
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.activity_tables(segment.segmentations, timestamptz, text[], boolean) IS
    'The temporary tables of the events and contacts summaries and of the order lines'' figures of an incremental refresh, from their stages: every customer''s or only the rescored ones'' (internal)';
