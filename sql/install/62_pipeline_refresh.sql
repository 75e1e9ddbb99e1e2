-- The pipeline, part 3: refresh() computes every customer's profile and
-- replaces a segmentation's profile table in one transaction.
--
-- The profile table is updated in place (UPDATE the customers it has, INSERT
-- the new ones, DELETE those gone), not rebuilt as a new table and renamed in:
-- readers are never blocked (no ACCESS EXCLUSIVE lock at all), a reader whose
-- snapshot predates the commit still sees the old rows (a renamed-in table
-- would look empty to it), and the table keeps its OID, so segment_of() never
-- has to find a new relation.  Profile tables have fillfactor 50, so each
-- page has room for the new versions of its rows: the updates are HOT (no
-- index entries added) and old versions are pruned without waiting for VACUUM.

CREATE TABLE segment.refreshes (
    id              bigserial PRIMARY KEY,
    segmentation    text NOT NULL REFERENCES segment.segmentations (name)
                         ON DELETE CASCADE ON UPDATE CASCADE,
    as_of           timestamptz NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    buckets         integer NOT NULL,
    fixed_breaks    text[] NOT NULL DEFAULT '{}',
    r_breaks        double precision[],
    f_breaks        double precision[],
    m_breaks        double precision[],
    top_spender_min numeric,
    customers       bigint,
    buyers          bigint,
    prospects       bigint,
    changed         bigint,
    segments        jsonb
);
COMMENT ON TABLE segment.refreshes IS
    'One row per completed refresh: as-of time, the cut points it scored with (recency in days, frequency in orders, monetary; fixed_breaks lists those set by the segmentation rather than computed as quantiles), the top-spender cut, customer counts per segment';
SELECT pg_catalog.pg_extension_config_dump('segment.refreshes', '');
SELECT pg_catalog.pg_extension_config_dump('segment.refreshes_id_seq', '');

CREATE TABLE segment.history (
    refresh_id   bigint NOT NULL,
    segmentation text NOT NULL,
    customer_id  text NOT NULL,
    from_segment text,
    to_segment   text,
    changed_at   timestamptz NOT NULL
);
COMMENT ON TABLE segment.history IS
    'Segment changes: each refresh records the customers whose final segment differs from the previous refresh (the first refresh records everyone, from NULL; a customer who disappears goes to NULL)';
CREATE INDEX history_customer ON segment.history (segmentation, customer_id, refresh_id);
SELECT pg_catalog.pg_extension_config_dump('segment.history', '');

-- Lock key of the refreshes of one segmentation.
CREATE FUNCTION segment.refresh_lock_key(segmentation text, OUT classid integer, OUT objid integer)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.hashtext('segment.refresh'), pg_catalog.hashtext(segmentation)
$$;
COMMENT ON FUNCTION segment.refresh_lock_key(text) IS
    'The advisory lock key that serializes the refreshes of a segmentation';

-- The SELECT of the scored rows a refresh produces before rules: the rule
-- input (segment.rule_columns()), from pg_temp.segment_refresh_stage.
CREATE FUNCTION segment.scored_query(s segment.segmentations, as_of timestamptz,
                                     refreshed_at timestamptz, r_breaks double precision[],
                                     f_breaks double precision[], m_breaks double precision[])
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    prospects text := '';
BEGIN
    IF s.customers IS NOT NULL THEN
        prospects := format($q$
            UNION ALL
            SELECT c.k, NULL::timestamptz, NULL::timestamptz, NULL::integer, NULL::integer,
                   0::bigint, 0::integer, 0::numeric, NULL::numeric, NULL::double precision,
                   NULL::double precision
              FROM (SELECT DISTINCT c.%1$I::%2$s AS k FROM %3$s AS c WHERE c.%1$I IS NOT NULL) AS c
             WHERE NOT EXISTS (SELECT 1 FROM pg_temp.segment_refresh_stage AS st
                                WHERE st.customer_id = c.k)$q$,
            s.customers_key, s.key_type, pg_catalog.to_regclass(s.customers));
    END IF;
    RETURN format($q$
        SELECT x.customer_id, x.first_order, x.last_order, x.tenure_days, x.recency_days,
               x.frequency, x.purchase_days, x.monetary, x.mean_amount, x.mean_gap_days,
               x.discount_share,
               CASE WHEN x.mean_gap_days IS NOT NULL
                    THEN pg_catalog.ceil(x.mean_gap_days - x.recency_days)::integer END AS due_in_days,
               sc.r, sc.f, sc.m, sc.r::text || sc.f::text || sc.m::text AS rfm_code,
               segment.rfm_segment(sc.r, sc.f, sc.m) AS rfm_segment,
               %1$L::timestamptz AS as_of, %2$L::timestamptz AS refreshed_at
          FROM (SELECT st.customer_id, (st.s).first_order, (st.s).last_order,
                       %1$L::timestamptz::date - ((st.s).first_order)::date AS tenure_days,
                       %1$L::timestamptz::date - ((st.s).last_order)::date AS recency_days,
                       (st.s).orders AS frequency, (st.s).purchase_days, (st.s).monetary,
                       (st.s).mean_amount, (st.s).mean_gap_days,
                       st.discounted::double precision / (st.s).orders AS discount_share
                  FROM pg_temp.segment_refresh_stage AS st
                %3$s) AS x
         CROSS JOIN LATERAL (
               SELECT CASE WHEN x.frequency > 0
                           THEN segment.score(x.recency_days, %4$L::double precision[], false) END AS r,
                      CASE WHEN x.frequency > 0
                           THEN segment.score(x.frequency, %5$L::double precision[]) END AS f,
                      CASE WHEN x.frequency > 0
                           THEN segment.score(x.monetary::double precision, %6$L::double precision[]) END AS m
               ) AS sc$q$,
        as_of, refreshed_at, prospects, r_breaks, f_breaks, m_breaks);
END
$$;
COMMENT ON FUNCTION segment.scored_query(segment.segmentations, timestamptz, timestamptz,
                                         double precision[], double precision[], double precision[]) IS
    'The query of a refresh''s scored rows before rules (internal)';

-- See the README.  Runs in the caller's transaction: nothing is visible to
-- other sessions until it commits, and an error leaves the profile as it was.
CREATE FUNCTION segment.refresh(segmentation text DEFAULT NULL, as_of timestamptz DEFAULT NULL,
                                wait boolean DEFAULT true)
    RETURNS segment.refreshes
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s        segment.segmentations := segment.segmentation_row(segmentation);
    orders   regclass;
    prof     regclass;
    key_type regtype;
    res      segment.refreshes;
    src      text;
    disc     text;
    scored   text;
    parts    text[] := '{}';
    flags    text;
    rule     record;
    rb       double precision[];
    fb       double precision[];
    mb       double precision[];
    sets     text;
    gone     bigint;
    added    bigint;
    state    text;
    msg      text;
BEGIN
    IF wait THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(k.classid, k.objid)
           FROM segment.refresh_lock_key(s.name) AS k;
    ELSIF NOT (SELECT pg_catalog.pg_try_advisory_xact_lock(k.classid, k.objid)
                 FROM segment.refresh_lock_key(s.name) AS k) THEN
        RAISE EXCEPTION 'segmentation "%" is being refreshed by another session', s.name
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Try again when that refresh has finished, or pass wait => true to wait for it.';
    END IF;
    -- Read the configuration again: it may have changed while we waited.
    s := segment.segmentation_row(s.name);
    key_type := segment.check_segmentation(s);
    IF key_type <> s.key_type THEN
        RAISE EXCEPTION 'customer column "%" of relation "%" changed type from % to %',
                        s.customer, s.orders, s.key_type, key_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Run segment.configure() again to rebuild the profile with the new key type.';
    END IF;
    orders := pg_catalog.to_regclass(s.orders);
    prof := pg_catalog.to_regclass(format('segment.%I', s.profile));
    IF prof IS NULL THEN
        RAISE EXCEPTION 'profile table "segment.%" of segmentation "%" does not exist', s.profile, s.name
            USING ERRCODE = 'undefined_table',
                  HINT = 'Run segment.configure() again to create it.';
    END IF;

    src := format('FROM %s AS o WHERE o.%I IS NOT NULL AND o.%I IS NOT NULL AND o.%I IS NOT NULL',
                  orders, s.customer, s.ordered_at, s.amount);
    IF s.status IS NOT NULL THEN
        src := src || format(' AND (o.%1$I IS NULL OR o.%1$I::text <> ALL (%2$L::text[]))',
                             s.status, s.exclude_status);
    END IF;

    res.as_of := refresh.as_of;
    IF res.as_of IS NULL AND s.as_of_rule = 'last_order' THEN
        EXECUTE format('SELECT pg_catalog.max(o.%I)::timestamptz %s', s.ordered_at, src) INTO res.as_of;
    END IF;
    res.as_of := coalesce(res.as_of, pg_catalog.now());
    IF NOT pg_catalog.isfinite(res.as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    res.started_at := pg_catalog.clock_timestamp();
    res.segmentation := s.name;
    res.buckets := s.buckets;
    res.id := pg_catalog.nextval('segment.refreshes_id_seq');

    IF s.discount IS NULL THEN
        disc := 'NULL::bigint';
    ELSE
        disc := format('pg_catalog.count(*) FILTER (WHERE %s)',
                       CASE (SELECT t.typcategory FROM pg_catalog.pg_type AS t
                              WHERE t.oid = segment.column_type(orders, s.discount))
                           WHEN 'B' THEN format('o.%I', s.discount)
                           WHEN 'N' THEN format('o.%I > ''0''', s.discount)
                           ELSE format('o.%I <> ''''', s.discount) END);
    END IF;

    -- 1. One row per customer with orders (parallel-safe CREATE TABLE AS).
    IF pg_catalog.to_regclass('pg_temp.segment_refresh_stage') IS NOT NULL THEN
        DROP TABLE pg_temp.segment_refresh_stage;
    END IF;
    IF pg_catalog.to_regclass('pg_temp.segment_refresh_new') IS NOT NULL THEN
        DROP TABLE pg_temp.segment_refresh_new;
    END IF;
    EXECUTE format($q$
        CREATE TEMP TABLE segment_refresh_stage ON COMMIT DROP AS
        SELECT o.%1$I AS customer_id,
               segment.rfm(o.%2$I::timestamptz, o.%3$I::numeric) AS s,
               %4$s AS discounted
          %5$s AND o.%2$I <= %6$L::timestamptz
         GROUP BY o.%1$I$q$,
        s.customer, s.ordered_at, s.amount, disc, src, res.as_of);

    RAISE DEBUG 'segment.refresh: per-customer figures in % ms',
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    -- 2. Cut points: quantiles of this refresh unless the segmentation fixes them.
    EXECUTE format($q$
        SELECT segment.breaks((%1$L::timestamptz::date - ((st.s).last_order)::date)::double precision, %2$s),
               segment.breaks(((st.s).orders)::double precision, %2$s),
               segment.breaks(((st.s).monetary)::double precision, %2$s),
               pg_catalog.percentile_disc(%3$s) WITHIN GROUP (ORDER BY (st.s).monetary),
               pg_catalog.count(*)
          FROM pg_temp.segment_refresh_stage AS st$q$,
        res.as_of, s.buckets, 1 - s.top_spender_share)
        INTO rb, fb, mb, res.top_spender_min, res.buyers;
    res.r_breaks := coalesce(s.r_breaks, rb);
    res.f_breaks := coalesce(s.f_breaks, fb);
    res.m_breaks := coalesce(s.m_breaks, mb);
    res.fixed_breaks := array_remove(ARRAY[CASE WHEN s.r_breaks IS NOT NULL THEN 'r' END,
                                           CASE WHEN s.f_breaks IS NOT NULL THEN 'f' END,
                                           CASE WHEN s.m_breaks IS NOT NULL THEN 'm' END], NULL);

    RAISE DEBUG 'segment.refresh: cut points at % ms',
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    -- 3. Scores, RFM segment, rules.
    scored := segment.scored_query(s, res.as_of, res.started_at, res.r_breaks, res.f_breaks, res.m_breaks);
    FOR rule IN
        SELECT r.name, coalesce(r.predicate,
                                segment.builtin_predicate(r.builtin, s, res.top_spender_min)) AS predicate
          FROM segment.rules AS r
         WHERE r.segmentation = s.name AND r.enabled
         ORDER BY r.priority
    LOOP
        parts := parts || format('CASE WHEN (%s) THEN %L END', rule.predicate, rule.name);
    END LOOP;
    flags := CASE WHEN parts = '{}' THEN 'ARRAY[]::text[]'
                  ELSE format('pg_catalog.array_remove(ARRAY[%s]::text[], NULL)',
                              pg_catalog.array_to_string(parts, ', ')) END;
    BEGIN
        EXECUTE format($q$
            CREATE TEMP TABLE segment_refresh_new ON COMMIT DROP AS
            SELECT p.customer_id, p.first_order, p.last_order, p.tenure_days, p.recency_days,
                   p.frequency, p.purchase_days, p.monetary, p.mean_amount, p.mean_gap_days,
                   p.discount_share, p.due_in_days, p.r, p.f, p.m, p.rfm_code, p.rfm_segment,
                   fl.flags, coalesce(fl.flags[1], p.rfm_segment) AS segment,
                   p.as_of, p.refreshed_at
              FROM (%s) AS p
             CROSS JOIN LATERAL (SELECT %s AS flags) AS fl$q$, scored, flags);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        -- Name the rule that fails, if one does.
        FOR rule IN
            SELECT r.name, coalesce(r.predicate,
                                    segment.builtin_predicate(r.builtin, s, res.top_spender_min)) AS predicate
              FROM segment.rules AS r
             WHERE r.segmentation = s.name AND r.enabled
             ORDER BY r.priority
        LOOP
            BEGIN
                EXECUTE format('SELECT pg_catalog.count(*) FROM (%s) AS p WHERE (%s)', scored, rule.predicate);
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
                RAISE EXCEPTION 'rule "%" of segmentation "%" failed: %', rule.name, s.name, msg
                    USING ERRCODE = state,
                          DETAIL = format('The predicate is: %s', rule.predicate),
                          HINT = 'Fix it (UPDATE segment.rules) or disable it with segment.enable_rule(name, false); the profile was left unchanged.';
            END;
        END LOOP;
        RAISE EXCEPTION '%', msg USING ERRCODE = state;
    END;

    ANALYZE pg_temp.segment_refresh_new;
    RAISE DEBUG 'segment.refresh: scores and rules at % ms',
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    -- 4. History: who changed segment since the profile we replace; and how
    -- many customers are gone or new, to skip step 5's joins when none are.
    EXECUTE format($q$
        WITH j AS MATERIALIZED (
            SELECT n.customer_id AS new_id, o.customer_id AS old_id,
                   n.segment AS new_segment, o.segment AS old_segment
              FROM pg_temp.segment_refresh_new AS n
              FULL JOIN %s AS o ON o.customer_id = n.customer_id
        ), changes AS (
            INSERT INTO segment.history
                   (refresh_id, segmentation, customer_id, from_segment, to_segment, changed_at)
            SELECT $1, $2, coalesce(j.new_id, j.old_id)::text, j.old_segment, j.new_segment, $3
              FROM j
             WHERE j.new_segment IS DISTINCT FROM j.old_segment
            RETURNING 1
        )
        SELECT (SELECT pg_catalog.count(*) FROM changes),
               pg_catalog.count(*) FILTER (WHERE j.new_id IS NULL),
               pg_catalog.count(*) FILTER (WHERE j.old_id IS NULL)
          FROM j$q$, prof)
        INTO res.changed, gone, added
        USING res.id, s.name, res.started_at;

    RAISE DEBUG 'segment.refresh: history at % ms',
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    -- 5. Replace the profile, in place (see the top of this file).
    IF gone > 0 THEN
        EXECUTE format($q$
            DELETE FROM %s AS p
             WHERE NOT EXISTS (SELECT FROM pg_temp.segment_refresh_new AS n
                                WHERE n.customer_id = p.customer_id)$q$, prof);
    END IF;
    SELECT pg_catalog.string_agg(format('%1$I = n.%1$I', a.attname), ', ' ORDER BY a.attnum)
      INTO sets
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'segment.customer_profile'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format($q$
        UPDATE %s AS p SET %s
          FROM pg_temp.segment_refresh_new AS n
         WHERE n.customer_id = p.customer_id$q$, prof, sets);
    IF added > 0 THEN
        EXECUTE format($q$
            INSERT INTO %1$s
            SELECT n.* FROM pg_temp.segment_refresh_new AS n
             WHERE NOT EXISTS (SELECT FROM %1$s AS p WHERE p.customer_id = n.customer_id)$q$, prof);
    END IF;
    RAISE DEBUG 'segment.refresh: profile replaced at % ms',
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE n.frequency = 0)
      INTO res.customers, res.prospects
      FROM pg_temp.segment_refresh_new AS n;
    SELECT pg_catalog.jsonb_object_agg(g.segment, g.n) INTO res.segments
      FROM (SELECT coalesce(n.segment, '(none)') AS segment, pg_catalog.count(*) AS n
              FROM pg_temp.segment_refresh_new AS n GROUP BY 1) AS g;
    DROP TABLE pg_temp.segment_refresh_stage, pg_temp.segment_refresh_new;

    res.finished_at := pg_catalog.clock_timestamp();
    INSERT INTO segment.refreshes SELECT res.*;
    UPDATE segment.segmentations AS x SET last_refresh = res.id WHERE x.name = s.name;
    RETURN res;
END
$$;
COMMENT ON FUNCTION segment.refresh(text, timestamptz, boolean) IS
    'Recomputes the profile of a segmentation (NULL: the default one) as of a time (NULL: its as-of rule) and records the changes; waits for a concurrent refresh of the same segmentation unless wait is false';

-- The latest refresh of each segmentation, with its cut points.
CREATE VIEW segment.cut_points AS
    SELECT s.name AS segmentation, r.id AS refresh_id, r.as_of, r.buckets, r.fixed_breaks,
           r.r_breaks AS recency_days_breaks, r.f_breaks AS frequency_breaks,
           r.m_breaks AS monetary_breaks, r.top_spender_min
      FROM segment.segmentations AS s
      JOIN segment.refreshes AS r ON r.id = s.last_refresh;
COMMENT ON VIEW segment.cut_points IS
    'Cut points used by the latest refresh of each segmentation: score(value, breaks) = 1 + number of breaks below the value (recency reversed: fewer days scores higher)';
-- The rules as a refresh applies them, built-in thresholds filled in from the
-- segmentation and the top-spender cut of its last refresh.
CREATE VIEW segment.rule_predicates AS
    SELECT r.segmentation, r.priority, r.name, r.enabled, r.builtin,
           coalesce(r.predicate,
                    segment.builtin_predicate(r.builtin, s, lr.top_spender_min)) AS predicate
      FROM segment.rules AS r
      JOIN segment.segmentations AS s ON s.name = r.segmentation
      LEFT JOIN segment.refreshes AS lr ON lr.id = s.last_refresh;
COMMENT ON VIEW segment.rule_predicates IS
    'Rules as the next refresh applies them, built-in thresholds filled in (the top-spender cut is that of the latest refresh)';
