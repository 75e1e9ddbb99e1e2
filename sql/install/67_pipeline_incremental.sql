-- The pipeline, part 8: incremental refreshes.  A refresh's costly step is
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
CREATE FUNCTION segment.capture_trigger_name(segmentation text, event text) RETURNS name
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.left(format('segment_%s_%s', event, segmentation), 63)::name
$$;
COMMENT ON FUNCTION segment.capture_trigger_name(text, text) IS
    'Name of a change-capture trigger of a segmentation on its orders relation (internal)';

-- Drops the change capture of a segmentation: the triggers of its capture
-- function, wherever they are (the orders may have been renamed), the
-- function, its change log and stage.
CREATE FUNCTION segment.drop_capture(segmentation text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    fn  regprocedure := pg_catalog.to_regprocedure(format('segment.%I()', 'capture_' || segmentation));
    trg record;
BEGIN
    IF fn IS NOT NULL THEN
        FOR trg IN SELECT t.tgrelid::regclass AS rel, t.tgname FROM pg_catalog.pg_trigger AS t WHERE t.tgfoid = fn LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
        END LOOP;
        EXECUTE format('DROP FUNCTION %s', fn);
    END IF;
    IF pg_catalog.to_regclass(format('segment.%I', 'changes_' || segmentation)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE segment.%I', 'changes_' || segmentation);
    END IF;
    IF pg_catalog.to_regclass(format('segment.%I', 'stage_' || segmentation)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE segment.%I', 'stage_' || segmentation);
    END IF;
END
$$;
COMMENT ON FUNCTION segment.drop_capture(text) IS
    'Drops the change-capture triggers and function, change log and stage of a segmentation (internal)';

-- Why the changes of an orders relation cannot be captured with triggers
-- (NULL: they can): a view, a foreign, partitioned (its partitions can be
-- written directly) or Citus table, a partition or an inheritance parent or
-- child (rows written through another table fire no trigger of its own).
CREATE FUNCTION segment.capture_unsupported(orders regclass) RETURNS text
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
    IF segment.is_citus_table(orders) THEN
        RETURN format('the orders relation %s is a Citus table', orders);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment.capture_unsupported(regclass) IS
    'Why the changes of an orders relation cannot be captured with triggers, NULL if they can (internal)';

-- Sets up the change capture of a segmentation (configure() calls it, as
-- the role that configures): the change log and the four triggers on the
-- orders relation.  Returns NULL, or why there is none (then every refresh
-- is a full one).
CREATE FUNCTION segment.setup_capture(s segment.segmentations) RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    orders regclass := pg_catalog.to_regclass(s.orders);
    event  text;
    why    text := segment.capture_unsupported(orders);
BEGIN
    IF why IS NOT NULL THEN
        RETURN why;
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
        EXECUTE format($f$
            CREATE OR REPLACE FUNCTION segment.%1$I() RETURNS trigger
                LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
            BEGIN
                IF TG_RELID <> %2$s::pg_catalog.oid THEN
                    RETURN NULL;
                END IF;
                IF TG_OP = 'TRUNCATE' THEN
                    INSERT INTO segment.%3$I (truncated) VALUES (true);
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
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
            $body$ $f$, 'capture_' || s.name, orders::oid, 'changes_' || s.name, s.customer, s.ordered_at);
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
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                            WHERE t.tgrelid = orders AND t.tgname = segment.capture_trigger_name(s.name, event)) THEN
                EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s
                                FOR EACH STATEMENT EXECUTE FUNCTION segment.%I()',
                               segment.capture_trigger_name(s.name, event), event, orders,
                               CASE event WHEN 'insert' THEN 'NEW TABLE AS new_rows'
                                          WHEN 'delete' THEN 'OLD TABLE AS old_rows'
                                          ELSE 'OLD TABLE AS old_rows NEW TABLE AS new_rows' END,
                               'capture_' || s.name);
            END IF;
        END LOOP;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                        WHERE t.tgrelid = orders AND t.tgname = segment.capture_trigger_name(s.name, 'truncate')) THEN
            EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s
                            FOR EACH STATEMENT EXECUTE FUNCTION segment.%I()',
                           segment.capture_trigger_name(s.name, 'truncate'), orders, 'capture_' || s.name);
        END IF;
    EXCEPTION
        WHEN insufficient_privilege THEN
            RETURN format('no privilege to create triggers on %s (TRIGGER privilege or ownership)', orders);
        WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS why = MESSAGE_TEXT;
            RETURN format('the change-capture triggers could not be created on %s: %s', orders, why);
    END;
    -- Fire in replica sessions too (a logical replication subscriber, a
    -- restore with --disable-triggers), where the table's owner allows it.
    BEGIN
        FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', orders,
                           segment.capture_trigger_name(s.name, event));
        END LOOP;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment.setup_capture(segment.segmentations) IS
    'Creates the change log, stage, capture function and change-capture triggers of a segmentation on its orders relation; returns NULL or why it cannot (internal)';

-- What the figures of a segmentation's customers depend on besides the
-- orders: a refresh may reuse stored figures only when this is unchanged.
-- The change log and the stage are in it: recreated (configure() after a
-- rename of the orders), they hold nothing of the last refresh.
CREATE FUNCTION segment.stage_key(s segment.segmentations) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.md5(pg_catalog.concat_ws('|', pg_catalog.to_regclass(s.orders)::oid, s.customer,
                                               s.ordered_at, s.amount, s.discount, s.status,
                                               s.exclude_status::text, s.key_type,
                                               pg_catalog.current_setting('TimeZone'),
                                               pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name))::oid,
                                               pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name))::oid))
$$;
COMMENT ON FUNCTION segment.stage_key(segment.segmentations) IS
    'A digest of what the stored per-customer figures of a segmentation depend on: orders relation, columns, statuses, key type, time zone, and the change log and stage themselves (recreated: new ones) (internal)';

-- Why a refresh of s at as_of cannot reuse the stored figures (NULL: it can).
CREATE FUNCTION segment.incremental_blocker(s segment.segmentations, as_of timestamptz, sources text[])
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    orders regclass := pg_catalog.to_regclass(s.orders);
    last   segment.refreshes;
    event  text;
BEGIN
    IF s.clv THEN
        RETURN 'lifetime value is configured (its customer ages move with as_of)';
    END IF;
    IF sources <> '{}' THEN
        RETURN 'sources are configured (their windows move with as_of)';
    END IF;
    IF pg_catalog.to_regclass(format('segment.%I', 'changes_' || s.name)) IS NULL THEN
        RETURN 'no change capture: ' || coalesce(segment.capture_unsupported(orders),
                                                 'configure() could not create its triggers on ' || orders::text);
    END IF;
    FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS t
                        WHERE t.tgrelid = orders AND t.tgname = segment.capture_trigger_name(s.name, event)
                          AND t.tgenabled <> 'D') THEN
            RETURN format('the %s capture trigger on %s is missing or disabled', event, orders);
        END IF;
    END LOOP;
    SELECT * INTO last FROM segment.refreshes AS r WHERE r.id = s.last_refresh;
    IF pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name)) IS NULL OR last.stage_key IS NULL THEN
        RETURN 'the last refresh stored no figures';
    END IF;
    IF last.stage_key IS DISTINCT FROM segment.stage_key(s) THEN
        RETURN 'the orders relation, its columns, the statuses, the key type or the time zone changed';
    END IF;
    IF as_of < last.as_of THEN
        RETURN 'as_of is earlier than the last refresh''s';
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION segment.incremental_blocker(segment.segmentations, timestamptz, text[]) IS
    'Why a refresh cannot recompute only the changed customers (NULL: it can) (internal)';

-- The figures of the kept orders, one row per customer: src is the FROM and
-- WHERE of the kept orders, disc and summary the discount count and the
-- lifetime-value columns, more further conditions.
CREATE FUNCTION segment.figures_sql(s segment.segmentations, as_of timestamptz, src text, disc text,
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
COMMENT ON FUNCTION segment.figures_sql(segment.segmentations, timestamptz, text, text, text, text) IS
    'The query of step 1 of a refresh: per-customer figures of the kept orders (internal)';

-- The customers with kept orders dated after as_of, and the earliest date.
CREATE FUNCTION segment.later_orders_sql(s segment.segmentations, as_of timestamptz, src text, more text)
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format($q$
        SELECT o.%1$I::text, pg_catalog.min(o.%2$I::timestamptz)
          %3$s AND o.%2$I > %4$L::timestamptz%5$s
         GROUP BY o.%1$I$q$, s.customer, s.ordered_at, src, as_of, more)
$$;
COMMENT ON FUNCTION segment.later_orders_sql(segment.segmentations, timestamptz, text, text) IS
    'The customers with orders dated after as_of and the earliest such date (internal)';

-- Step 1 of a refresh: pg_temp.segment_refresh_stage, one row per customer
-- with orders up to as_of (src: the FROM and WHERE of the kept orders; disc
-- and summary: the discount count and lifetime-value columns), computed from
-- every order (full) or from the stored figures with the changed customers'
-- recomputed (incremental).  mode: auto, full or incremental (an error when
-- it cannot be).  With change capture, the figures are stored for the next
-- refresh and the change log is consumed.
CREATE FUNCTION segment.refresh_stage(s segment.segmentations, as_of timestamptz, src text, disc text,
                                      summary text, sources text[], mode text,
                                      OUT mode_done text, OUT full_reason text, OUT recomputed bigint,
                                      OUT stage_key text)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    stage   text := format('segment.%I', 'stage_' || s.name);
    changes text := format('segment.%I', 'changes_' || s.name);
    orders  regclass := pg_catalog.to_regclass(s.orders);
    capture boolean;
    fresh   boolean;
    due     text := format('(c.ordered_at IS NULL OR c.ordered_at <= %L::timestamptz)', as_of);
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
    full_reason := segment.incremental_blocker(s, as_of, sources);
    capture := pg_catalog.to_regclass(changes) IS NOT NULL AND pg_catalog.to_regclass(stage) IS NOT NULL
               AND NOT s.clv AND sources = '{}';
    IF capture THEN
        stage_key := segment.stage_key(s);
        -- The log as this refresh reads it: later entries wait for the next.
        PERFORM segment.refresh_table('segment_refresh_consumed',
                                      format('SELECT c.id, c.customer_id, c.ordered_at, c.truncated FROM %s AS c',
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
        PERFORM segment.refresh_table('segment_refresh_recompute', format(
            'SELECT DISTINCT c.customer_id::%s AS k FROM pg_temp.segment_refresh_consumed AS c
              WHERE NOT c.truncated AND c.customer_id IS NOT NULL AND %s', s.key_type, due));
        ANALYZE pg_temp.segment_refresh_recompute;
        SELECT pg_catalog.count(*) INTO recomputed FROM pg_temp.segment_refresh_recompute;
        EXECUTE format('DELETE FROM %s AS st WHERE st.customer_id IN (SELECT r.k FROM pg_temp.segment_refresh_recompute AS r)',
                       stage);
        EXECUTE format('INSERT INTO %s %s', stage, segment.figures_sql(s, as_of, src, disc, summary, recompute_only));
        EXECUTE format('INSERT INTO %s (customer_id, ordered_at) %s', changes,
                       segment.later_orders_sql(s, as_of, src, recompute_only));
        EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_consumed AS c WHERE %s)',
                       changes, due);
        RAISE DEBUG 'segment.refresh: % customers recomputed at % ms', recomputed,
            round(extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.statement_timestamp()) * 1000);
        PERFORM segment.refresh_table('segment_refresh_stage', format('SELECT * FROM %s', stage));
        RETURN;
    END IF;

    mode_done := 'full';
    PERFORM segment.refresh_table('segment_refresh_stage', segment.figures_sql(s, as_of, src, disc, summary, ''));
    SELECT pg_catalog.count(*) INTO recomputed FROM pg_temp.segment_refresh_stage;
    IF NOT capture THEN
        RETURN;
    END IF;
    -- Store the figures.  A stage of another configuration (or none), or an
    -- as_of earlier than the last (whose log entries up to it are consumed),
    -- starts a new log: every customer with orders dated after as_of.
    fresh := NOT EXISTS (SELECT FROM segment.refreshes AS r
                          WHERE r.id = s.last_refresh AND r.stage_key = refresh_stage.stage_key
                            AND r.as_of <= refresh_stage.as_of);
    EXECUTE format('TRUNCATE %s', stage);
    EXECUTE format('INSERT INTO %s SELECT * FROM pg_temp.segment_refresh_stage', stage);
    IF fresh THEN
        EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_consumed AS c)',
                       changes);
        EXECUTE format('INSERT INTO %s (customer_id, ordered_at) %s', changes,
                       segment.later_orders_sql(s, as_of, src, ''));
    ELSE
        EXECUTE format('DELETE FROM %s AS l WHERE l.id IN (SELECT c.id FROM pg_temp.segment_refresh_consumed AS c
                                                            WHERE c.truncated OR %s)', changes, due);
    END IF;
END
$$;
COMMENT ON FUNCTION segment.refresh_stage(segment.segmentations, timestamptz, text, text, text, text[], text) IS
    'Step 1 of a refresh: the per-customer figures, from every order or, incrementally, from the stored figures and the changed customers'' orders; stores them and consumes the change log (internal)';
