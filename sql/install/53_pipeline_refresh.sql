-- The pipeline, part 4: refresh() computes every customer's profile and
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
-- Only rows whose values changed are written: the time of the refresh and its
-- as-of time are in segment.refreshes, not in every row, so a customer whose
-- figures did not move costs nothing (refreshes.written counts the rows).

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
    high_value_min  double precision,
    customers       bigint,
    buyers          bigint,
    prospects       bigint,
    changed         bigint,
    segments        jsonb,
    clv_status      text CHECK (clv_status IN ('fitted', 'partial', 'failed')),
    clv_note        text,
    bgnbd           jsonb,
    gamma_gamma     jsonb,
    cluster_status  text CHECK (cluster_status IN ('fitted', 'reused', 'failed')),
    cluster_note    text,
    cluster_model   jsonb,
    sources         jsonb,
    written         bigint,
    mode            text CHECK (mode IN ('full', 'incremental')),
    full_reason     text,
    recomputed      bigint,
    stage_key       text,
    score_key       text,
    rescored        bigint,
    rescore_reason  text,
    clv_model       text,
    clv_fit         jsonb,
    cut_ranks       double precision[]
);
COMMENT ON TABLE segment.refreshes IS
    'One row per completed refresh: as-of time, the cut points it scored with (recency in days, frequency in orders, monetary; fixed_breaks lists those set by the segmentation rather than computed as quantiles), the top-spender and high-value cuts, customer counts per segment, and the models it fitted: lifetime value (status, note, BG/NBD and Gamma-Gamma parameters) and clusters (status, note, k-means model); what it read from each source (events, contacts, products: rows, customers, rows skipped and why); written: the profile rows it inserted, updated or deleted (a customer whose values did not change is not written); mode: full or incremental, full_reason why not incremental, recomputed the customers whose figures it computed from their orders, stage_key what the stored figures depend on; rescored the customers whose segment it evaluated (an incremental refresh rescores only those whose figures changed or lie where the cut points moved, unless rescore_reason says why it rescored everyone), score_key what the segments depend on besides the figures; clv_model the purchase model lifetime value used (bgnbd, mbgnbd, pareto_nbd) and clv_fit its fitted parameters (bgnbd repeats them when it is BG/NBD); cut_ranks, for each computed cut point, how many stored figures lie below it and at or below it (the next incremental refresh moves the cut points by the figures that changed); see the views segment.refresh_models and segment.refresh_sources';
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
CREATE FUNCTION segment_internal.refresh_lock_key(segmentation text, OUT classid integer, OUT objid integer)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.hashtext('segment.refresh'), pg_catalog.hashtext(segmentation)
$$;
COMMENT ON FUNCTION segment_internal.refresh_lock_key(text) IS
    'The advisory lock key that serializes the refreshes of a segmentation';

-- A SELECT of the model outputs of the row aliased alias, NULL where they
-- are not finite numbers (probabilities also in [0, 1]).
CREATE FUNCTION segment_internal.finite_outputs_sql(alias text) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format($q$SELECT CASE WHEN %1$I.p_alive >= 0 AND %1$I.p_alive <= 1 THEN %1$I.p_alive END AS p_alive,
                      CASE WHEN %1$I.expected_purchases >= 0 AND %1$I.expected_purchases < 'Infinity'
                           THEN %1$I.expected_purchases END AS expected_purchases,
                      CASE WHEN %1$I.clv > '-Infinity' AND %1$I.clv < 'Infinity' THEN %1$I.clv END AS clv$q$,
                  alias)
$$;
COMMENT ON FUNCTION segment_internal.finite_outputs_sql(text) IS
    'SQL of the lifetime-value outputs of a row with non-finite values nulled (internal)';

-- Creates the temporary table name of a refresh (ON COMMIT DROP) and fills
-- it with a query.  A refresh runs as the segmentation's owner inside a
-- security-restricted operation (segment.refresh(), src/owner.c), where
-- temporary tables cannot be created: the table is created WITH NO DATA (no
-- query runs) outside it, and filled inside it.  Only the names of a
-- refresh's tables are accepted.
CREATE FUNCTION segment_internal.refresh_table(name text, query text) RETURNS void
    AS 'MODULE_PATHNAME', 'segment_refresh_table' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION segment_internal.refresh_table(text, text) IS
    'Creates a temporary table of a refresh and fills it with a query, outside and inside the security-restricted operation (internal)';

-- A refresh's three predictions of a BG/NBD customer in one call
-- (src/clv_value.c), equal to bgnbd_p_alive(), bgnbd_expected_purchases()
-- at t and, with gamma_gamma and x = 0 or mean_value > 0, clv(); out of
-- range values NULL and bad true, as segment_internal.finite_outputs_sql().
CREATE FUNCTION segment_internal.bgnbd_predictions(model segment.bgnbd_model,
                                                   gamma_gamma segment.gamma_gamma_model,
                                                   t double precision, months integer,
                                                   monthly_discount_rate double precision, time_unit text,
                                                   x double precision, t_x double precision,
                                                   t_cal double precision, mean_value double precision,
                                                   OUT p_alive double precision,
                                                   OUT expected_purchases double precision,
                                                   OUT clv double precision, OUT bad boolean)
    AS 'MODULE_PATHNAME', 'segment_bgnbd_predictions' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.bgnbd_predictions(segment.bgnbd_model, segment.gamma_gamma_model,
                                                       double precision, integer, double precision, text,
                                                       double precision, double precision, double precision,
                                                       double precision) IS
    'A customer''s p_alive, expected purchases in t and CLV over the months with BG/NBD and Gamma-Gamma in one call, equal to the public functions'' values, out-of-range values NULL and flagged (internal)';

-- The query of pg_temp.segment_refresh_clv: the rows of
-- pg_temp.segment_refresh_stage (clv_summary in columns clv_*) with the
-- predictions of the fitted models (text form; gamma_gamma NULL: no CLV),
-- which the scored rows are then read from (a copy costs less than a join:
-- at 300,000 customers 0.35 s of CPU, against 0.29 s for a table of the
-- keys and predictions alone and 0.12 s more to join it).
-- Values that are not finite numbers are stored as NULL and counted in bad.
-- The CLV needs a positive mean spend of a repeat customer.
CREATE FUNCTION segment_internal.clv_predictions_sql(s segment.segmentations, model text, gamma_gamma text)
    RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
    -- BG/NBD: the three in one call (its odds of death computed once).
    SELECT format($q$
        SELECT p.customer_id, p.s, p.discounted, (p.g).p_alive, (p.g).expected_purchases, (p.g).clv,
               (p.g).bad
          FROM (SELECT st.customer_id, st.s, st.discounted,
                       segment_internal.bgnbd_predictions(%1$L::segment.bgnbd_model,
                                                          %3$L::segment.gamma_gamma_model, %2$s,
                                                          %4$s, %5$s, %6$L, st.clv_x, st.clv_t_x,
                                                          st.clv_t_cal, st.clv_mean_value) AS g
                  FROM pg_temp.segment_refresh_stage AS st
                OFFSET 0) AS p$q$,
        model, s.clv_months * CASE s.clv_time_unit WHEN 'week' THEN 4.345 ELSE 30 END, gamma_gamma,
        s.clv_months, s.clv_discount_rate, s.clv_time_unit)
     WHERE s.clv_model = 'bgnbd'
    UNION ALL
    SELECT format($q$
        SELECT p.customer_id, p.s, p.discounted, g.p_alive, g.expected_purchases, g.clv,
               (g.p_alive, g.expected_purchases, g.clv) IS DISTINCT FROM
                   (p.p_alive, p.expected_purchases, p.clv) AS bad
          FROM (SELECT st.customer_id, st.s, st.discounted,
                       segment.%5$s_p_alive(%1$L::segment.%5$s_model,
                                            st.clv_x, st.clv_t_x, st.clv_t_cal) AS p_alive,
                       segment.%5$s_expected_purchases(%1$L::segment.%5$s_model, %2$s,
                                                       st.clv_x, st.clv_t_x, st.clv_t_cal)
                           AS expected_purchases,
                       %3$s AS clv
                  FROM pg_temp.segment_refresh_stage AS st
                OFFSET 0) AS p
         CROSS JOIN LATERAL (%4$s) AS g$q$,
        model, s.clv_months * CASE s.clv_time_unit WHEN 'week' THEN 4.345 ELSE 30 END,
        CASE WHEN gamma_gamma IS NULL THEN 'NULL::double precision'
             WHEN s.clv_model = 'bgnbd' THEN
                 format($q$CASE WHEN st.clv_x = 0 OR st.clv_mean_value > 0
                       THEN segment.clv(%1$L::segment.bgnbd_model, %2$L::segment.gamma_gamma_model,
                                        st.clv_x, st.clv_t_x, st.clv_t_cal, st.clv_mean_value,
                                        %3$s, %4$s, %5$L) END$q$,
                         model, gamma_gamma, s.clv_months, s.clv_discount_rate, s.clv_time_unit)
             -- The same sum as segment.clv() (src/clv_value.c): per month k,
             -- the expected value of a purchase times the purchases expected
             -- in the month, discounted by k months.
             ELSE format($q$CASE WHEN st.clv_x = 0 OR st.clv_mean_value > 0
                       THEN segment.gamma_gamma_expected_value(%2$L::segment.gamma_gamma_model, st.clv_x, st.clv_mean_value)
                            * (SELECT pg_catalog.sum((segment.%6$s_expected_purchases(%1$L::segment.%6$s_model, k * %5$s,
                                                                                       st.clv_x, st.clv_t_x, st.clv_t_cal)
                                                      - CASE WHEN k = 1 THEN 0
                                                             ELSE segment.%6$s_expected_purchases(%1$L::segment.%6$s_model, (k - 1) * %5$s,
                                                                                                  st.clv_x, st.clv_t_x, st.clv_t_cal) END)
                                                     / (1 + %4$s::double precision) ^ k)
                                 FROM pg_catalog.generate_series(1, %3$s) AS k) END$q$,
                         model, gamma_gamma, s.clv_months, s.clv_discount_rate,
                         CASE s.clv_time_unit WHEN 'week' THEN 4.345 ELSE 30 END, s.clv_model) END,
        segment_internal.finite_outputs_sql('p'), s.clv_model)
     WHERE s.clv_model <> 'bgnbd'
$$;
COMMENT ON FUNCTION segment_internal.clv_predictions_sql(segment.segmentations, text, text) IS
    'The query of a refresh''s lifetime-value predictions per buyer with the fitted models (text forms; gamma_gamma NULL: no CLV) of the segmentation''s purchase model (internal)';

-- The SQL of the whole days from a time (expr, a timestamptz) to as_of, as
-- the segmentation counts them: calendar days of the session's time zone
-- (the dates' difference), or elapsed 24-hour periods (as rfm_scores()).
CREATE FUNCTION segment_internal.days_since_sql(s segment.segmentations, as_of timestamptz, expr text)
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN s.recency = 'elapsed'
                THEN format('pg_catalog.floor(pg_catalog.date_part(''epoch'', %L::timestamptz - (%s)) / 86400)::integer',
                            as_of, expr)
                ELSE format('(%L::timestamptz::date - (%s)::date)', as_of, expr) END
$$;
COMMENT ON FUNCTION segment_internal.days_since_sql(segment.segmentations, timestamptz, text) IS
    'SQL of the whole days from a time to as_of: calendar days of the time zone, or elapsed 24-hour periods, as the segmentation says (internal)';

-- A customer's figures in plain form (src/rfm_summary.c): read once per row
-- below an OFFSET 0, their fields are read without copying the stored
-- composite for each of them.
-- numeric::double precision without its text round trip (numeric_out, then
-- strtod: about 0.6 s per million figures), for the monetary figures a
-- refresh ranks and scores: the same double (src/rfm_summary.c).
CREATE FUNCTION segment_internal.numeric_double(numeric) RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_numeric_double' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.numeric_double(numeric) IS
    'The numeric as double precision, equal to its cast, without the text round trip (internal)';

CREATE FUNCTION segment_internal.unpacked(s segment.rfm_summary) RETURNS segment.rfm_summary
    AS 'MODULE_PATHNAME', 'segment_unpacked' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segment_internal.unpacked(segment.rfm_summary) IS
    'The figures of a customer in plain form, so that reading their fields does not copy the stored composite once per field (internal)';

-- The SELECT of the scored rows a refresh produces before clusters and
-- rules, from the buyers' figures in figures (pg_temp.segment_refresh_stage,
-- or the segmentation's stage after a full refresh), or with_clv from
-- pg_temp.segment_refresh_clv, its copy with the predictions (the stage
-- itself when refresh_figures() wrote them into it); with the
-- figures of the sources (the kinds in sources) from their stage tables
-- (refresh_product_stage(), refresh_activity_stages(), refresh_impulse_stage()).
CREATE FUNCTION segment_internal.scored_query(s segment.segmentations, as_of timestamptz,
                                     refreshed_at timestamptz, r_breaks double precision[],
                                     f_breaks double precision[], m_breaks double precision[],
                                     with_clv boolean, sources text[], customer_keys text, figures text)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    prospects text := '';
    customers_cte text := '';
    rows      text := figures;
    lv        text := 'NULL::double precision, NULL::double precision, NULL::double precision';
    joins     text := '';
    ev_cols   text := 'NULL::bigint AS visits, NULL::bigint AS product_views, NULL::bigint AS cart_adds,
               NULL::bigint AS newsletter_opens, NULL::timestamptz AS last_visit,
               NULL::integer AS days_since_visit, NULL::timestamptz AS abandoned_at,
               NULL::text[] AS abandoned_products, NULL::boolean AS subscribed';
    ct_cols   text := 'NULL::bigint AS support_contacts, NULL::bigint AS negative_contacts,
               NULL::timestamptz AS last_negative_contact';
    ln_cols   text := 'NULL::double precision AS trend_share, NULL::bigint AS trend_lines, NULL::text AS top_category,
               NULL::date AS next_restock, NULL::text AS restock_product';
    ib_cols   text := 'NULL::bigint AS unbrowsed_lines, NULL::double precision AS unbrowsed_share';
    -- the columns of a customer without orders, after its key
    no_orders text := 'NULL::timestamptz, NULL::timestamptz, NULL::integer, NULL::integer,
                   0::bigint, 0::integer, 0::numeric, NULL::numeric, NULL::double precision,
                   NULL::double precision,
                   NULL::double precision, NULL::double precision, NULL::double precision';
BEGIN
    IF with_clv THEN
        -- refresh_figures() may have written the predictions into the stage
        IF pg_catalog.to_regclass('pg_temp.segment_refresh_clv') IS NOT NULL THEN
            rows := 'pg_temp.segment_refresh_clv';
        END IF;
        lv := 'st.p_alive, st.expected_purchases, st.clv';
    END IF;
    IF s.customers IS NOT NULL THEN
        -- The customers' keys given by customer_keys are read first, on
        -- their own (a materialized CTE): a customers table distributed with
        -- Citus (refresh_run() copies its keys to a temporary table first)
        -- cannot be joined with the refresh's temporary tables, and a query
        -- that reads one goes through Citus's planner whole (three times
        -- slower here); an incremental refresh rescores some.  Otherwise
        -- the CTE is inlined: the planner may then find the prospects with
        -- a merge anti join over the key's index, instead of writing every
        -- key to a tuplestore and probing a hash of the stage (0.6 s of 3.5
        -- at a million customers).
        IF customer_keys IS NOT NULL THEN
            customers_cte := format($q$
        WITH segment_customers AS MATERIALIZED (%s)$q$, customer_keys);
        ELSE
            customers_cte := format($q$
        WITH segment_customers AS (
            SELECT DISTINCT c.%1$I::%2$s AS k FROM %3$s AS c WHERE c.%1$I IS NOT NULL)$q$,
                s.customers_key, s.key_type, pg_catalog.to_regclass(s.customers));
        END IF;
        prospects := format($q$
            UNION ALL
            SELECT c.k, %1$s
              FROM segment_customers AS c
             WHERE NOT EXISTS (SELECT 1 FROM %2$s AS st
                                WHERE st.customer_id = c.k)$q$, no_orders, figures);
    END IF;
    IF 'events' = ANY (sources) THEN
        joins := joins || '
          LEFT JOIN pg_temp.segment_refresh_events AS ev ON ev.customer_id = x.customer_id';
        -- Counts are 0, not NULL, for a customer without events: the source is there.
        ev_cols := format($q$coalesce((ev.e).visits, 0) AS visits,
               coalesce((ev.e).product_views, 0) AS product_views,
               coalesce((ev.e).cart_adds, 0) AS cart_adds,
               coalesce((ev.e).newsletter_opens, 0) AS newsletter_opens,
               (ev.e).last_visit AS last_visit,
               %1$L::timestamptz::date - ((ev.e).last_visit)::date AS days_since_visit,
               segment.abandoned_at(ev.e, x.last_order) AS abandoned_at,
               CASE WHEN segment.abandoned_at(ev.e, x.last_order) IS NOT NULL
                    THEN segment.abandoned_products(ev.e, x.last_order) END AS abandoned_products,
               coalesce((ev.e).subscribed, false) AS subscribed$q$, as_of);
        -- Without a customers relation, the events are what tells who the
        -- customers are: those with an event of a known kind who never
        -- ordered join the profile as prospects.
        IF s.customers IS NULL THEN
            prospects := prospects || format($q$
            UNION ALL
            SELECT ev.customer_id, %s
              FROM pg_temp.segment_refresh_events AS ev
             WHERE ev.customer_id IS NOT NULL
               AND coalesce((ev.e).last_visit, (ev.e).subscription_changed_at,
                            (ev.e).last_newsletter_open) IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM %2$s AS st
                                WHERE st.customer_id = ev.customer_id)$q$, no_orders, figures);
        END IF;
    END IF;
    IF 'contacts' = ANY (sources) THEN
        joins := joins || '
          LEFT JOIN pg_temp.segment_refresh_contacts AS ct ON ct.customer_id = x.customer_id';
        ct_cols := 'coalesce((ct.c).contacts, 0) AS support_contacts,
               coalesce((ct.c).negative_contacts, 0) AS negative_contacts,
               (ct.c).last_negative AS last_negative_contact';
    END IF;
    IF 'products' = ANY (sources) THEN
        -- (segment_refresh_lines carries each customer's next re-stock too)
        joins := joins || '
          LEFT JOIN pg_temp.segment_refresh_lines AS ln ON ln.customer_id = x.customer_id';
        ln_cols := '(ln.l).trend_share AS trend_share, coalesce((ln.l).trend_lines, 0) AS trend_lines,
               (ln.l).top_category AS top_category,
               ln.next_restock AS next_restock, ln.restock_product AS restock_product';
    END IF;
    IF pg_catalog.to_regclass('pg_temp.segment_refresh_impulse') IS NOT NULL THEN
        joins := joins || '
          LEFT JOIN pg_temp.segment_refresh_impulse AS ib ON ib.customer_id = x.customer_id';
        ib_cols := segment_internal.impulse_columns_sql('ib');
    END IF;
    -- The scores are computed below an OFFSET 0, once per row: flattened,
    -- the planner would copy each score's expression into rfm_code and
    -- rfm_segment too (nine calls of score() per row, not three).
    RETURN customers_cte || format($q$
        SELECT x.customer_id, x.first_order, x.last_order, x.tenure_days, x.recency_days,
               x.frequency, x.purchase_days, x.monetary, x.mean_amount, x.mean_gap_days,
               x.discount_share,
               CASE WHEN x.mean_gap_days IS NOT NULL
                    THEN pg_catalog.ceil(x.mean_gap_days - x.recency_days)::integer END AS due_in_days,
               x.r, x.f, x.m, x.r::text || x.f::text || x.m::text AS rfm_code,
               segment.rfm_segment(x.r, x.f, x.m) AS rfm_segment,
               x.p_alive, x.expected_purchases, x.clv,
               %9$s,
               %10$s,
               %11$s, %13$s,
               %1$L::timestamptz AS as_of, %2$L::timestamptz AS refreshed_at
          FROM (SELECT u.*,
                       CASE WHEN u.frequency > 0
                            THEN segment.score(u.recency_days, %4$L::double precision[], false) END AS r,
                       CASE WHEN u.frequency > 0
                            THEN segment.score(u.frequency, %5$L::double precision[]) END AS f,
                       CASE WHEN u.frequency > 0
                            THEN segment.score(segment_internal.numeric_double(u.monetary), %6$L::double precision[]) END AS m
                  FROM (SELECT st.customer_id, (st.s).first_order, (st.s).last_order,
                               %14$s AS tenure_days,
                               %15$s AS recency_days,
                               (st.s).orders AS frequency, (st.s).purchase_days, (st.s).monetary,
                               (st.s).mean_amount, (st.s).mean_gap_days,
                               st.discounted::double precision / (st.s).orders AS discount_share,
                               %7$s
                          FROM (SELECT st.customer_id, segment_internal.unpacked(st.s) AS s, st.discounted%16$s
                                  FROM %8$s AS st OFFSET 0) AS st
                        %3$s) AS u(customer_id, first_order, last_order, tenure_days, recency_days, frequency,
                                   purchase_days, monetary, mean_amount, mean_gap_days, discount_share,
                                   p_alive, expected_purchases, clv)
                OFFSET 0) AS x%12$s$q$,
        as_of, refreshed_at, prospects, r_breaks, f_breaks, m_breaks, lv, rows, ev_cols, ct_cols, ln_cols,
        joins, ib_cols, segment_internal.days_since_sql(s, as_of, '(st.s).first_order'),
        segment_internal.days_since_sql(s, as_of, '(st.s).last_order'),
        CASE WHEN with_clv THEN ', st.p_alive, st.expected_purchases, st.clv' ELSE '' END);
END
$$;
COMMENT ON FUNCTION segment_internal.scored_query(segment.segmentations, timestamptz, timestamptz,
                                         double precision[], double precision[], double precision[],
                                         boolean, text[], text, text) IS
    'The query of a refresh''s scored rows, with the lifetime-value predictions when with_clv and the figures of the sources, before clusters and rules (internal)';

-- The feature vector of a segmentation's clustering over the rows aliased alias.
CREATE FUNCTION segment_internal.cluster_features_sql(s segment.segmentations, alias text) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('ARRAY[%s]::double precision[]',
                  pg_catalog.string_agg(format('%I.%I', alias, f), ', ' ORDER BY i))
      FROM pg_catalog.unnest(s.cluster_features) WITH ORDINALITY AS u(f, i)
$$;
COMMENT ON FUNCTION segment_internal.cluster_features_sql(segment.segmentations, text) IS
    'SQL expression of the feature vector a segmentation clusters on (internal)';

-- The condition for a row to be clustered: a buyer whose features are all known.
CREATE FUNCTION segment_internal.cluster_ready_sql(s segment.segmentations, alias text) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('%I.frequency > 0', alias) ||
           pg_catalog.string_agg(format(' AND %I.%I IS NOT NULL', alias, f), '' ORDER BY i)
      FROM pg_catalog.unnest(s.cluster_features) WITH ORDINALITY AS u(f, i)
$$;
COMMENT ON FUNCTION segment_internal.cluster_ready_sql(segment.segmentations, text) IS
    'SQL condition for a profile row to be clustered: a buyer whose clustering features are all known (internal)';

-- The SELECT of the rows the rules see (segment.rule_columns()), from a
-- query of scored rows (source): with a k-means model (text form; NULL: no
-- clusters) each buyer whose features are all known gets the nearest
-- cluster, its distance and its name.
CREATE FUNCTION segment_internal.rule_input_query(s segment.segmentations, source text, kmeans text)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF kmeans IS NULL THEN
        RETURN format($q$
        SELECT g.customer_id, %3$s,
               NULL::integer AS cluster, NULL::text AS cluster_name,
               NULL::double precision AS cluster_distance,
               %4$s, %1$s, g.as_of, g.refreshed_at
          FROM (%2$s) AS g$q$, segment_internal.source_columns_sql('g'), source,
            segment_internal.profile_columns_sql('g', NULL, 'rfm_segment'),
            segment_internal.profile_columns_sql('g', 'p_alive', 'clv'));
    END IF;
    RETURN format($q$
        SELECT g.customer_id, %7$s,
               k.cluster, cn.name AS cluster_name, k.cluster_distance,
               %8$s, %6$s, g.as_of, g.refreshed_at
          FROM (%1$s) AS g
         CROSS JOIN LATERAL (
               SELECT CASE WHEN %3$s THEN segment.kmeans_assign(%2$L::segment.kmeans_model, %4$s) END
                          AS cluster,
                      CASE WHEN %3$s THEN segment.kmeans_distance(%2$L::segment.kmeans_model, %4$s) END
                          AS cluster_distance) AS k
          LEFT JOIN segment.cluster_names AS cn
                 ON cn.segmentation = %5$L AND cn.cluster = k.cluster$q$,
        source, kmeans, segment_internal.cluster_ready_sql(s, 'g'), segment_internal.cluster_features_sql(s, 'g'), s.name,
        segment_internal.source_columns_sql('g'), segment_internal.profile_columns_sql('g', NULL, 'rfm_segment'),
        segment_internal.profile_columns_sql('g', 'p_alive', 'clv'));
END
$$;
COMMENT ON FUNCTION segment_internal.rule_input_query(segment.segmentations, text, text) IS
    'The query of the rows a refresh''s rules see: scored rows and, given a k-means model, their clusters (internal)';

-- The condition for an order (alias o) to count in a refresh as of a time:
-- the conditions of the refresh's pass over the orders.
CREATE FUNCTION segment_internal.kept_orders_sql(s segment.segmentations, as_of timestamptz) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('o.%1$I IS NOT NULL AND o.%2$I IS NOT NULL AND o.%3$I IS NOT NULL AND o.%2$I <= %4$L::timestamptz',
                  s.customer, s.ordered_at, s.amount, as_of)
           || CASE WHEN s.status IS NULL THEN ''
                   ELSE format(' AND (o.%1$I IS NULL OR o.%1$I::text <> ALL (%2$L::text[]))',
                               s.status, s.exclude_status) END
$$;
COMMENT ON FUNCTION segment_internal.kept_orders_sql(segment.segmentations, timestamptz) IS
    'SQL condition for an order (alias o) to count in a refresh as of a time: key, time and amount known, status not excluded, not after as_of (internal)';

-- Fills the temporary table tbl of a refresh with a query that reads a
-- source (segment_internal.refresh_table()); an error says which source.
CREATE FUNCTION segment_internal.run_source_statement(s segment.segmentations, kind text, tbl text, query text)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    state  text;
    msg    text;
    detail text;
    hint   text;
BEGIN
    PERFORM segment_internal.refresh_table(tbl, query);
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
                            hint = PG_EXCEPTION_HINT;
    RAISE EXCEPTION 'the % source of segmentation "%" could not be read: %', kind, s.name, msg
        USING ERRCODE = state,
              DETAIL = concat_ws(' ', nullif(detail, ''), 'The profile was left unchanged.'),
              HINT = coalesce(nullif(hint, ''),
                              CASE WHEN kind = 'products' AND msg LIKE 'complex joins are only supported%'
                                   THEN 'On Citus, distribute the order lines by customer, colocated with the orders, and name their customer column: segment.configure_product_source(..., line_customer => ...).'
                              END,
                              format('Fix the data, or run segment.drop_source(%L, %L) to refresh without it.',
                                     kind, s.name));
END
$$;
COMMENT ON FUNCTION segment_internal.run_source_statement(segment.segmentations, text, text, text) IS
    'Fills a temporary table of a refresh with a query that reads a source; an error is raised again naming the source (internal)';

-- Drops the temporary tables of a refresh, those of an earlier refresh in
-- the same transaction before it starts, its own when it is done.
CREATE FUNCTION segment_internal.drop_refresh_tables() RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    tmp text;
BEGIN
    FOREACH tmp IN ARRAY ARRAY['segment_refresh_stage', 'segment_refresh_clv', 'segment_refresh_scored',
                               'segment_refresh_new', 'segment_refresh_events', 'segment_refresh_contacts',
                               'segment_refresh_lines', 'segment_refresh_restock', 'segment_refresh_old',
                               'segment_refresh_customers', 'segment_refresh_consumed',
                               'segment_refresh_recompute', 'segment_refresh_affected',
                               'segment_refresh_impulse', 'segment_refresh_impulse_lines',
                               'segment_refresh_impulse_views', 'segment_refresh_source_consumed',
                               'segment_refresh_source_keys', 'segment_refresh_source_affected',
                               'segment_refresh_delta', 'segment_refresh_appended'] LOOP
        IF pg_catalog.to_regclass('pg_temp.' || tmp) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', tmp);
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION segment_internal.drop_refresh_tables() IS
    'Drops the temporary tables a refresh works in (internal)';

-- The query of a refresh's pass over the order lines, grouped by the
-- customer of their order: aggregate (segment.order_lines, or
-- segment_internal.line_stages with extra_args after the order_lines
-- arguments) as column g, with the counts of the lines it could not use
-- (no order, an order the refresh does not count, a bad quantity, a product
-- missing from the products relation).  Lines of an order that does not
-- count are counted, not summarised (their time is NULL).  Lines without a
-- customer (no order, or an order without one) are grouped by their order
-- key as text, order_key (NULL for the customers' groups): an incremental
-- refresh recomputes those of the order keys that changed.  more, when not
-- empty, is a condition on l and o: only those lines.
CREATE FUNCTION segment_internal.line_groups_sql(s segment.segmentations, p segment.product_sources,
                                                 as_of timestamptz, good text, pjoin text, same_customer text,
                                                 aggregate text, extra_args text, more text DEFAULT '')
    RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format($q$
        SELECT o.%1$I::%2$s AS customer_id,
               CASE WHEN o.%1$I IS NULL THEN l.%12$I::text END AS order_key,
               %16$s(CASE WHEN %3$s AND %14$s THEN o.%4$I::timestamptz END, %5$s, %6$s, %7$s%17$s) AS g,
               pg_catalog.count(*) AS n,
               pg_catalog.count(*) FILTER (WHERE o.%11$I IS NULL) AS no_order,
               pg_catalog.count(*) FILTER (WHERE o.%11$I IS NOT NULL AND NOT coalesce(%14$s, false))
                   AS excluded_order,
               pg_catalog.count(*) FILTER (WHERE %14$s AND NOT %3$s) AS bad_quantity,
               %8$s AS missing_product
          FROM %9$s AS l
          LEFT JOIN %10$s AS o ON o.%11$I = l.%12$I%15$s
          %13$s%18$s
         GROUP BY o.%1$I, CASE WHEN o.%1$I IS NULL THEN l.%12$I::text END$q$,
        s.customer, s.key_type, good, s.ordered_at,
        CASE WHEN p.launched_at IS NULL THEN 'NULL::timestamptz' ELSE format('pr.%I::timestamptz', p.launched_at) END,
        CASE WHEN p.category IS NULL THEN 'NULL::text' ELSE format('pr.%I::text', p.category) END,
        p.launch_days,
        CASE WHEN p.products IS NULL THEN '0::bigint'
             ELSE format('pg_catalog.count(*) FILTER (WHERE %s AND %s AND l.%I IS NOT NULL AND pr.%I IS NULL)',
                         segment_internal.kept_orders_sql(s, as_of), good, p.line_product, p.product_key) END,
        pg_catalog.to_regclass(p.order_lines), pg_catalog.to_regclass(s.orders), p.orders_key,
        p.line_order, pjoin, '(' || segment_internal.kept_orders_sql(s, as_of) || ')', same_customer,
        aggregate, extra_args, CASE WHEN more <> '' THEN E'\n         WHERE ' || more ELSE '' END)
$$;
COMMENT ON FUNCTION segment_internal.line_groups_sql(segment.segmentations, segment.product_sources, timestamptz,
                                                     text, text, text, text, text, text) IS
    'The query of a refresh''s pass over the order lines per customer (the lines without one per order key): an order_lines or line_stages aggregate and the counts of the lines it could not use, over every line or those satisfying a condition (internal)';

-- The product stages of a refresh in two passes over the lines, the way a
-- product column that is not told apart by its text needs them
-- (refresh_line_pass() says which): order_lines per customer, then the
-- restock state per customer and product, GROUP BY the product itself.
-- The same tables as the one pass: pg_temp.segment_refresh_lines (with
-- next_restock and restock_product) and pg_temp.segment_refresh_restock.
CREATE FUNCTION segment_internal.refresh_line_stages_by_product(s segment.segmentations, p segment.product_sources,
                                                       as_of timestamptz, good text, quantity text,
                                                       pjoin text, same_customer text)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    kept text := segment_internal.kept_orders_sql(s, as_of);
BEGIN
    PERFORM segment_internal.run_source_statement(s, 'products', 'segment_refresh_restock', format($q$
        SELECT DISTINCT ON (x.customer_id) x.customer_id, (x.r).expected_restock AS next_restock,
               x.product AS restock_product
          FROM (SELECT o.%1$I::%2$s AS customer_id, l.%3$I::text AS product,
                       segment.restock(o.%4$I::timestamptz, %5$s) AS r
                  FROM %6$s AS l
                  JOIN %7$s AS o ON o.%8$I = l.%9$I%14$s
                 WHERE %10$s AND %11$s AND l.%3$I IS NOT NULL
                 GROUP BY o.%1$I, l.%3$I) AS x
         WHERE (x.r).purchase_days >= %12$s AND (x.r).expected_restock >= %13$L::timestamptz::date
         ORDER BY x.customer_id, (x.r).expected_restock, x.product$q$,
        s.customer, s.key_type, p.line_product, s.ordered_at, quantity,
        pg_catalog.to_regclass(p.order_lines), pg_catalog.to_regclass(s.orders), p.orders_key,
        p.line_order, kept, good, p.restock_purchases, as_of, same_customer));
    PERFORM segment_internal.run_source_statement(s, 'products', 'segment_refresh_lines', format($q$
        SELECT x.customer_id, x.order_key, x.g AS l, x.n, x.no_order, x.excluded_order, x.bad_quantity,
               x.missing_product, NULL::date AS next_restock, NULL::text AS restock_product
          FROM (%s) AS x$q$,
        segment_internal.line_groups_sql(s, p, as_of, good, pjoin, same_customer, 'segment.order_lines', '')));
    -- (joined here, between temporary tables: Citus plans no join of them
    -- with distributed ones)
    UPDATE pg_temp.segment_refresh_lines AS ln
       SET next_restock = rs.next_restock, restock_product = rs.restock_product
      FROM pg_temp.segment_refresh_restock AS rs
     WHERE rs.customer_id = ln.customer_id;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_line_stages_by_product(segment.segmentations, segment.product_sources, timestamptz, text, text, text, text) IS
    'The product stages of a refresh in two passes, grouped by the product itself, for a product column whose text does not tell products apart (internal)';

-- How a refresh reads the order lines (p) of a segmentation s: good, the SQL
-- condition of a line's quantity (NULL is one unit; zero, negative
-- (returns), NaN or infinite lines are skipped, and counted); quantity, its
-- value; pjoin, the join of the products; same_customer, the join condition
-- of a line's own customer column with its order's (Citus then joins lines
-- and orders colocated by customer on each shard; on one server the same
-- rows); product_collation, the collation of the product column; one_pass,
-- whether products are told apart by their text, which is their equality
-- for text in a deterministic collation, integers and uuids (other product
-- columns: numeric 1.0 and 1.00 are one product, so is a case-insensitive
-- collation's 'A' and 'a').
CREATE FUNCTION segment_internal.line_pass_parts(s segment.segmentations, p segment.product_sources,
                                                 OUT good text, OUT quantity text, OUT pjoin text,
                                                 OUT same_customer text, OUT product_collation text,
                                                 OUT one_pass boolean)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF p.quantity IS NULL THEN
        good := 'true';
        quantity := 'NULL::double precision';
    ELSE
        good := format($q$(l.%1$I IS NULL OR (l.%1$I::double precision > 0 AND l.%1$I::double precision < 'Infinity'))$q$,
                       p.quantity);
        quantity := format('l.%I::double precision', p.quantity);
    END IF;
    same_customer := '';
    IF p.line_customer IS NOT NULL THEN
        same_customer := format(' AND o.%I = l.%I', s.customer, p.line_customer);
    END IF;
    pjoin := '';
    IF p.products IS NOT NULL THEN
        pjoin := format('LEFT JOIN %s AS pr ON pr.%I = l.%I',
                        pg_catalog.to_regclass(p.products), p.product_key, p.line_product);
    END IF;
    SELECT CASE WHEN a.attcollation <> 0 THEN pg_catalog.format(' COLLATE %I.%I', n.nspname, c.collname)
                ELSE ' COLLATE pg_catalog."default"' END,
           a.atttypid IN ('pg_catalog.text'::regtype, 'pg_catalog.varchar'::regtype, 'pg_catalog.int2'::regtype,
                          'pg_catalog.int4'::regtype, 'pg_catalog.int8'::regtype, 'pg_catalog.uuid'::regtype)
           AND coalesce(c.collisdeterministic, true)
      INTO product_collation, one_pass
      FROM pg_catalog.pg_attribute AS a
      LEFT JOIN pg_catalog.pg_collation AS c ON c.oid = a.attcollation
      LEFT JOIN pg_catalog.pg_namespace AS n ON n.oid = c.collnamespace
     WHERE a.attrelid = pg_catalog.to_regclass(p.order_lines) AND a.attname = p.line_product
       AND NOT a.attisdropped;
END
$$;
COMMENT ON FUNCTION segment_internal.line_pass_parts(segment.segmentations, segment.product_sources) IS
    'The SQL pieces of a refresh''s pass over the order lines of a products source: quantity condition and value, products join, customer join, product collation, and whether one pass tells the products apart (internal)';

-- The pass of a refresh over the order lines of s as of as_of, into
-- pg_temp.segment_refresh_lines (customer_id, order_key, l
-- order_line_summary, n, no_order, excluded_order, bad_quantity,
-- missing_product, next_restock, restock_product) and
-- pg_temp.segment_refresh_restock (customer_id, next_restock,
-- restock_product: the customers with a re-stock to come).  Every line is
-- read once, in one pass that fills both: those of an order the refresh
-- does not count (excluded status, after as_of, no time or amount) or of no
-- order at all are counted, not summarised.
-- segment_internal.line_stages() keeps, besides order_lines, a restock
-- state per product the customer bought and returns the earliest re-stock
-- date still to come over the products bought on restock_purchases days or
-- more (ties: by product, in the collation of the product column, as an
-- ORDER BY on it; a product column that is not text is ordered as text).
-- Product columns not told apart by their text take two passes, as before:
-- GROUP BY the product itself.  more (SQL over l and o, '' for every line)
-- restricts the pass to some lines: one pass only.
CREATE FUNCTION segment_internal.refresh_line_pass(s segment.segmentations, as_of timestamptz, more text)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    p  segment.product_sources;
    lp record;
BEGIN
    SELECT * INTO p FROM segment.product_sources AS x WHERE x.segmentation = s.name;
    SELECT * INTO lp FROM segment_internal.line_pass_parts(s, p) AS x;
    IF NOT lp.one_pass THEN
        -- (an incremental refresh never asks: product_incremental_blocker())
        IF more <> '' THEN
            RAISE EXCEPTION 'order lines whose products are not told apart by their text are read in full'
                USING ERRCODE = 'feature_not_supported';
        END IF;
        PERFORM segment_internal.refresh_line_stages_by_product(s, p, as_of, lp.good, lp.quantity, lp.pjoin,
                                                                lp.same_customer);
        RETURN;
    END IF;
    PERFORM segment_internal.run_source_statement(s, 'products', 'segment_refresh_lines', format($q$
        SELECT x.customer_id, x.order_key, (x.g).l, x.n, x.no_order, x.excluded_order, x.bad_quantity,
               x.missing_product, (x.g).next_restock, (x.g).restock_product
          FROM (%s OFFSET 0) AS x$q$,
        segment_internal.line_groups_sql(s, p, as_of, lp.good, lp.pjoin, lp.same_customer, 'segment_internal.line_stages',
                                format(', l.%I::text%s, %s, %s, %L::timestamptz::date', p.line_product,
                                       lp.product_collation, lp.quantity, p.restock_purchases, as_of), more)));
    PERFORM segment_internal.refresh_table('segment_refresh_restock',
        'SELECT ln.customer_id, ln.next_restock, ln.restock_product
           FROM pg_temp.segment_refresh_lines AS ln
          WHERE ln.next_restock IS NOT NULL');
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_line_pass(segment.segmentations, timestamptz, text) IS
    'A refresh''s pass over the order lines of a products source: order_lines and the next re-stock per customer (lines without a customer per order key), over every line or those satisfying a condition (internal)';

-- What a refresh read from each source (the kinds in sources), once the new
-- profile is built (members: its rows, pg_temp.segment_refresh_new or the
-- profile written): rows read, customers of the profile with data from it,
-- rows skipped, and why.  Raises a notice for a source that had rows
-- skipped or lines of missing products.  A refresh that rescored only some
-- customers (staged) read the events and contacts of those only: they are
-- then counted from their stages, every customer.
CREATE FUNCTION segment_internal.refresh_source_counts(s segment.segmentations, sources text[], members regclass,
                                              staged boolean)
    RETURNS jsonb
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    result  jsonb := '{}';
    d       jsonb;
    n       bigint;
    rows    bigint;
    custs   bigint;
    skipped bigint;
    parts   text[];
BEGIN
    IF 'events' = ANY (sources) THEN
        EXECUTE format($q$
        SELECT coalesce(pg_catalog.sum(ev.n), 0),
               pg_catalog.count(*) FILTER (WHERE nw.customer_id IS NOT NULL),
               pg_catalog.jsonb_build_object(
                   'unknown_type', coalesce(pg_catalog.sum((ev.e).unknown_events)
                                                           FILTER (WHERE nw.customer_id IS NOT NULL), 0),
                   'after_as_of', coalesce(pg_catalog.sum((ev.e).future_events)
                                                          FILTER (WHERE nw.customer_id IS NOT NULL), 0),
                   'no_time', coalesce(pg_catalog.sum(ev.no_time)
                                                      FILTER (WHERE nw.customer_id IS NOT NULL), 0),
                   'unknown_customer', coalesce(pg_catalog.sum(ev.n)
                       FILTER (WHERE ev.customer_id IS NOT NULL AND nw.customer_id IS NULL), 0),
                   'unknown_customer_keys',
                       pg_catalog.count(*) FILTER (WHERE ev.customer_id IS NOT NULL AND nw.customer_id IS NULL),
                   'no_customer', coalesce(pg_catalog.sum(ev.n) FILTER (WHERE ev.customer_id IS NULL), 0))
          FROM %s AS ev
          LEFT JOIN %s AS nw ON nw.customer_id = ev.customer_id$q$,
            CASE WHEN staged THEN segment_internal.source_capture_name(s.name, 'events', 'stage')
                 ELSE 'pg_temp.segment_refresh_events' END, members)
          INTO rows, custs, d;
        skipped := (d->>'unknown_type')::bigint + (d->>'after_as_of')::bigint + (d->>'no_time')::bigint
                   + (d->>'unknown_customer')::bigint + (d->>'no_customer')::bigint;
        result := result || pg_catalog.jsonb_build_object('events', pg_catalog.jsonb_build_object(
            'rows', rows, 'customers', custs, 'skipped', skipped, 'details', d));
        IF skipped > 0 THEN
            parts := array_remove(ARRAY[
                CASE WHEN (d->>'unknown_type')::bigint > 0 THEN format('%s of an unknown type', d->>'unknown_type') END,
                CASE WHEN (d->>'after_as_of')::bigint > 0 THEN format('%s after as_of', d->>'after_as_of') END,
                CASE WHEN (d->>'no_time')::bigint > 0 THEN format('%s without a time', d->>'no_time') END,
                CASE WHEN (d->>'unknown_customer')::bigint > 0
                     THEN format('%s for %s %s not in the profile', d->>'unknown_customer', d->>'unknown_customer_keys',
                                 CASE WHEN d->>'unknown_customer_keys' = '1' THEN 'customer' ELSE 'customers' END) END,
                CASE WHEN (d->>'no_customer')::bigint > 0 THEN format('%s without a customer', d->>'no_customer') END],
                NULL);
            IF (d->>'unknown_type')::bigint > 0 THEN
                RAISE NOTICE 'segmentation "%": % of % events skipped: %', s.name, skipped, rows,
                             pg_catalog.array_to_string(parts, ', ')
                    USING DETAIL = 'The counts are in segment.refresh_sources.',
                          HINT = 'Map event types to kinds with segment.configure_event_source(kinds => ...), "ignore" for the types to leave out; segment.event_kind(type, kinds) shows what a type maps to.';
            ELSE
                RAISE NOTICE 'segmentation "%": % of % events skipped: %', s.name, skipped, rows,
                             pg_catalog.array_to_string(parts, ', ')
                    USING DETAIL = 'The counts are in segment.refresh_sources.';
            END IF;
        END IF;
    END IF;
    IF 'contacts' = ANY (sources) THEN
        EXECUTE format($q$
        SELECT coalesce(pg_catalog.sum(ct.n), 0),
               pg_catalog.count(*) FILTER (WHERE nw.customer_id IS NOT NULL),
               pg_catalog.jsonb_build_object(
                   'after_as_of', coalesce(pg_catalog.sum((ct.c).future_contacts)
                                                          FILTER (WHERE nw.customer_id IS NOT NULL), 0),
                   'no_time', coalesce(pg_catalog.sum(ct.no_time)
                                                      FILTER (WHERE nw.customer_id IS NOT NULL), 0),
                   'unknown_customer', coalesce(pg_catalog.sum(ct.n)
                       FILTER (WHERE ct.customer_id IS NOT NULL AND nw.customer_id IS NULL), 0),
                   'unknown_customer_keys',
                       pg_catalog.count(*) FILTER (WHERE ct.customer_id IS NOT NULL AND nw.customer_id IS NULL),
                   'no_customer', coalesce(pg_catalog.sum(ct.n) FILTER (WHERE ct.customer_id IS NULL), 0),
                   'unrated_in_window', coalesce(pg_catalog.sum((ct.c).unrated_contacts)
                                                                FILTER (WHERE nw.customer_id IS NOT NULL), 0))
          FROM %s AS ct
          LEFT JOIN %s AS nw ON nw.customer_id = ct.customer_id$q$,
            CASE WHEN staged THEN segment_internal.source_capture_name(s.name, 'contacts', 'stage')
                 ELSE 'pg_temp.segment_refresh_contacts' END, members)
          INTO rows, custs, d;
        skipped := (d->>'after_as_of')::bigint + (d->>'no_time')::bigint
                   + (d->>'unknown_customer')::bigint + (d->>'no_customer')::bigint;
        result := result || pg_catalog.jsonb_build_object('contacts', pg_catalog.jsonb_build_object(
            'rows', rows, 'customers', custs, 'skipped', skipped, 'details', d));
        IF skipped > 0 THEN
            parts := array_remove(ARRAY[
                CASE WHEN (d->>'after_as_of')::bigint > 0 THEN format('%s after as_of', d->>'after_as_of') END,
                CASE WHEN (d->>'no_time')::bigint > 0 THEN format('%s without a time', d->>'no_time') END,
                CASE WHEN (d->>'unknown_customer')::bigint > 0
                     THEN format('%s for %s %s not in the profile', d->>'unknown_customer', d->>'unknown_customer_keys',
                                 CASE WHEN d->>'unknown_customer_keys' = '1' THEN 'customer' ELSE 'customers' END) END,
                CASE WHEN (d->>'no_customer')::bigint > 0 THEN format('%s without a customer', d->>'no_customer') END],
                NULL);
            RAISE NOTICE 'segmentation "%": % of % support contacts skipped: %', s.name, skipped, rows,
                         pg_catalog.array_to_string(parts, ', ')
                USING DETAIL = 'The counts are in segment.refresh_sources.';
        END IF;
    END IF;
    IF 'products' = ANY (sources) THEN
        EXECUTE format($q$
        SELECT coalesce(pg_catalog.sum(ln.n), 0),
               pg_catalog.count(*) FILTER (WHERE ln.customer_id IS NOT NULL AND (ln.l).lines > 0),
               pg_catalog.jsonb_build_object(
                   'no_order', coalesce(pg_catalog.sum(ln.no_order), 0),
                   'excluded_order', coalesce(pg_catalog.sum(ln.excluded_order), 0),
                   'bad_quantity', coalesce(pg_catalog.sum(ln.bad_quantity), 0),
                   'missing_product', coalesce(pg_catalog.sum(ln.missing_product), 0))
          FROM %s AS ln$q$,
            CASE WHEN staged THEN segment_internal.source_capture_name(s.name, 'products', 'stage')
                 ELSE 'pg_temp.segment_refresh_lines' END)
          INTO rows, custs, d;
        skipped := (d->>'no_order')::bigint + (d->>'excluded_order')::bigint + (d->>'bad_quantity')::bigint;
        result := result || pg_catalog.jsonb_build_object('products', pg_catalog.jsonb_build_object(
            'rows', rows, 'customers', custs, 'skipped', skipped, 'details', d));
        IF skipped > 0 THEN
            parts := array_remove(ARRAY[
                CASE WHEN (d->>'no_order')::bigint > 0
                     THEN format('%s whose order is not in the orders relation', d->>'no_order') END,
                CASE WHEN (d->>'excluded_order')::bigint > 0
                     THEN format('%s of orders the refresh does not count (excluded status, after as_of, or no customer, time or amount)',
                                 d->>'excluded_order') END,
                CASE WHEN (d->>'bad_quantity')::bigint > 0
                     THEN format('%s with a quantity that is not a positive number', d->>'bad_quantity') END],
                NULL);
            RAISE NOTICE 'segmentation "%": % of % order lines skipped: %', s.name, skipped, rows,
                         pg_catalog.array_to_string(parts, ', ')
                USING DETAIL = 'The counts are in segment.refresh_sources.';
        END IF;
        n := (d->>'missing_product')::bigint;
        IF n > 0 THEN
            RAISE NOTICE 'segmentation "%": % of % order lines name a product that is not in the products relation',
                         s.name, n, rows
                USING DETAIL = 'They count as lines without a launch date or category: not in trend_share nor in top_category. The counts are in segment.refresh_sources.';
        END IF;
    END IF;
    RETURN result;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_source_counts(segment.segmentations, text[], regclass, boolean) IS
    'What a refresh read from each source: rows, customers with data, rows skipped and why (as jsonb); raises a notice when rows were skipped (internal)';

-- Step 4 of a refresh, the rules: the query of the rows of input
-- (segment_internal.rule_input_query()) with their flags (every enabled rule
-- that holds, in priority order) and their segment (the first one that is
-- not flag-only, else the RFM segment), in the profile's columns.
CREATE FUNCTION segment_internal.rules_query(s segment.segmentations, top_spender_min numeric,
                                    high_value_min double precision, input text)
    RETURNS text
    LANGUAGE plpgsql
    -- the cuts written into the built-in predicates read back exactly
    SET search_path = pg_catalog, pg_temp SET extra_float_digits = 3 AS
$$
DECLARE
    label    text := 'fl.flags';
    parts    text[] := '{}';
    flags    text;
    rule     record;
    with_customer boolean;
BEGIN
    FOR rule IN
        SELECT r.name, coalesce(r.predicate,
                                segment_internal.builtin_predicate(r.builtin, s, top_spender_min,
                                                          high_value_min)) AS predicate,
               r.flag_only
          FROM segment.rules AS r
         WHERE r.segmentation = s.name AND r.enabled
         ORDER BY r.priority
    LOOP
        parts := parts || format('CASE WHEN (%s) THEN %L END', rule.predicate, rule.name);
        IF rule.flag_only THEN
            label := format('pg_catalog.array_remove(%s, %L)', label, rule.name);
        END IF;
    END LOOP;
    flags := CASE WHEN parts = '{}' THEN 'ARRAY[]::text[]'
                  ELSE format('pg_catalog.array_remove(ARRAY[%s]::text[], NULL)',
                              pg_catalog.array_to_string(parts, ', ')) END;
    -- The customers relation's row, for the rules that read customer.<column>.
    with_customer := segment_internal.rules_read_customer(s);
    IF with_customer THEN
        PERFORM segment_internal.check_customers_unique(s);
    END IF;
    -- OFFSET 0: the flags are computed once per customer; flattened, the
    -- planner would copy their expression into the segment's too.
    RETURN format($q$
            SELECT fl.customer_id, %s,
                   fl.flags, coalesce((%s)[1], fl.rfm_segment) AS segment
              FROM (SELECT p0.*, r.flags FROM %s %s OFFSET 0) AS fl$q$,
        segment_internal.profile_columns_sql('fl', NULL, NULL), label,
        segment_internal.rule_scope_sql(s, input, with_customer),
        segment_internal.rule_lateral_sql(flags || ' AS flags', NULL, 'r'));
END
$$;
COMMENT ON FUNCTION segment_internal.rules_query(segment.segmentations, numeric, double precision, text) IS
    'Step 4 of a refresh: the query of the rows the rules see with their flags and segment, in the profile''s columns (internal)';

-- Whether the enabled rules of a segmentation with a customers relation
-- read its rows (customer.<column>); a false positive only costs a join.
CREATE FUNCTION segment_internal.rules_read_customer(s segment.segmentations)
    RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT s.customers IS NOT NULL AND EXISTS (
        SELECT FROM segment.rules AS r
         WHERE r.segmentation = s.name AND r.enabled AND segment_internal.reads_customer(r.predicate))
$$;
COMMENT ON FUNCTION segment_internal.rules_read_customer(segment.segmentations) IS
    'Whether the enabled rules of a segmentation read the rows of its customers relation (internal)';

-- A statement that read the rules' query (segment_internal.rules_query())
-- failed with this error: names what fails, the rows the rules read (the
-- scores, the sources, the prospects) or else the first rule that fails on
-- them, and raises it; an error of neither is raised as it was.
CREATE FUNCTION segment_internal.rules_failed(s segment.segmentations, top_spender_min numeric,
                                     high_value_min double precision, input text,
                                     state text, msg text, err_detail text, err_hint text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp SET extra_float_digits = 3 AS
$$
DECLARE
    rule     record;
    scope    text := segment_internal.rule_scope_sql(s, input, segment_internal.rules_read_customer(s));
BEGIN
    BEGIN
        EXECUTE format('SELECT pg_catalog.count(*) FROM %s %s', scope,
                       segment_internal.rule_lateral_sql('', 'true', 'r'));
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                                err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
        RAISE EXCEPTION 'segmentation "%": computing the rows its rules read failed: %', s.name, msg
            USING ERRCODE = state,
                  DETAIL = coalesce(nullif(err_detail, '') || E'\n', '') || 'No rule is at fault: the statement that scores the customers and joins the sources and the customers relation failed; the profile was left unchanged.',
                  HINT = coalesce(nullif(err_hint, ''), 'Check the relations the segmentation names (segment.segmentations and its sources).');
    END;
    FOR rule IN
        SELECT r.name, coalesce(r.predicate,
                                segment_internal.builtin_predicate(r.builtin, s, top_spender_min,
                                                          high_value_min)) AS predicate
          FROM segment.rules AS r
         WHERE r.segmentation = s.name AND r.enabled
         ORDER BY r.priority
    LOOP
        BEGIN
            EXECUTE format('SELECT pg_catalog.count(*) FROM %s %s', scope,
                           segment_internal.rule_lateral_sql('', rule.predicate, 'r'));
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
            RAISE EXCEPTION 'rule "%" of segmentation "%" failed: %', rule.name, s.name, msg
                USING ERRCODE = state,
                      DETAIL = format('The predicate is: %s', rule.predicate),
                      HINT = 'Fix it (UPDATE segment.rules) or disable it with segment.enable_rule(name, false); the profile was left unchanged.';
        END;
    END LOOP;
    -- Not a rule's either: the error as it was, its detail and hint kept.
    IF err_detail = '' AND err_hint = '' THEN
        RAISE EXCEPTION '%', msg USING ERRCODE = state;
    ELSIF err_hint = '' THEN
        RAISE EXCEPTION '%', msg USING ERRCODE = state, DETAIL = err_detail;
    ELSIF err_detail = '' THEN
        RAISE EXCEPTION '%', msg USING ERRCODE = state, HINT = err_hint;
    END IF;
    RAISE EXCEPTION '%', msg USING ERRCODE = state, DETAIL = err_detail, HINT = err_hint;
END
$$;
COMMENT ON FUNCTION segment_internal.rules_failed(segment.segmentations, numeric, double precision, text, text, text, text, text) IS
    'Raises the error of a statement that read the rules'' query, naming the rule or the rows that fail (internal)';

-- What a refresh that rescores some customers counts over j, the join of
-- their new rows with their old ones (new_id, old_id, new_segment,
-- old_segment, new_frequency, old_frequency): how many prospects more, and
-- how each segment's size moved (a jsonb of the non-zero moves' keys; a
-- row that kept its segment moves no count).  Steps 5 and 6 put it in their
-- select list (refresh_history(), refresh_history_and_profile()).
CREATE FUNCTION segment_internal.moves_sql() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT $q$pg_catalog.count(*) FILTER (WHERE j.new_id IS NOT NULL AND j.new_frequency = 0)
                     - pg_catalog.count(*) FILTER (WHERE j.old_id IS NOT NULL AND j.old_frequency = 0),
               (SELECT pg_catalog.jsonb_object_agg(d.segment, d.n)
                  FROM (SELECT x.segment, pg_catalog.sum(x.n) AS n
                          FROM j CROSS JOIN LATERAL (
                               VALUES (coalesce(j.new_segment, '(none)'), CASE WHEN j.new_id IS NOT NULL THEN 1 ELSE 0 END),
                                      (coalesce(j.old_segment, '(none)'), CASE WHEN j.old_id IS NOT NULL THEN -1 ELSE 0 END)
                               ) AS x(segment, n)
                         WHERE j.new_segment IS DISTINCT FROM j.old_segment OR j.new_id IS NULL OR j.old_id IS NULL
                         GROUP BY x.segment) AS d)$q$
$$;
COMMENT ON FUNCTION segment_internal.moves_sql() IS
    'The select-list text that counts, over the join j of rescored customers'' new and old rows, the prospects gained and each segment''s move (internal)';

-- Step 5 of a refresh: the history (who changed segment since the profile
-- it replaces), and how many customers are gone or new (step 6 skips its
-- joins when none are); rescoring some (narrow), only those customers' rows
-- are compared, and the prospects' and segments' changes are counted.
CREATE FUNCTION segment_internal.refresh_history(s segment.segmentations, refresh_id bigint,
                                        started_at timestamptz, prof regclass, narrow boolean,
                                        OUT changed bigint, OUT gone bigint, OUT added bigint,
                                        OUT prospect_delta bigint, OUT segment_delta jsonb)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    old_rows text := prof::text;
BEGIN
    -- Citus plans no join of a distributed profile with temporary tables:
    -- its rows are read into one first.
    IF segment_internal.is_citus_table(prof) THEN
        PERFORM segment_internal.refresh_table('segment_refresh_old', format('SELECT p.* FROM %s AS p', prof));
        old_rows := 'pg_temp.segment_refresh_old';
    ELSIF narrow THEN
        old_rows := format('(SELECT p.* FROM %s AS p
                             WHERE p.customer_id = ANY (ARRAY(SELECT a.k FROM pg_temp.segment_refresh_affected AS a)))',
                           prof);
    END IF;
    EXECUTE format($q$
        WITH j AS MATERIALIZED (
            SELECT n.customer_id AS new_id, o.customer_id AS old_id,
                   n.segment AS new_segment, o.segment AS old_segment,
                   n.frequency AS new_frequency, o.frequency AS old_frequency
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
               pg_catalog.count(*) FILTER (WHERE j.old_id IS NULL),
               %2$s
          FROM j$q$, old_rows,
        -- Rescoring some: how the prospects and the segments' sizes moved.
        CASE WHEN NOT narrow THEN 'NULL::bigint, NULL::jsonb' ELSE segment_internal.moves_sql() END)
        INTO changed, gone, added, prospect_delta, segment_delta
        USING refresh_id, s.name, started_at;

END
$$;
COMMENT ON FUNCTION segment_internal.refresh_history(segment.segmentations, bigint, timestamptz, regclass, boolean) IS
    'Step 5 of a refresh: records the segment changes in segment.history and counts the customers gone and new (internal)';

-- Steps 4, 5 and 6 of a refresh of a plain profile in one statement: one
-- join of the new rows (rules: the query of segment_internal.rules_query())
-- with the profile (narrow: with the rows of the customers rescored) finds
-- the customers gone, new or with any value changed; the history records
-- those whose segment changed and the profile writes only those rows (what
-- a table of the new rows, refresh_history() and refresh_write_profile() do
-- in two joins, which a Citus profile still uses).  No table of the
-- new rows: at a million customers, writing and analysing one cost more
-- than the join it fed.  Narrow, it also counts the customers rescored (the
-- new rows, kept for that: a few) and how the prospects and the segments'
-- sizes moved: a row that did not change moves neither.  Every part reads
-- the profile as it was before the statement.
CREATE FUNCTION segment_internal.refresh_history_and_profile(s segment.segmentations, refresh_id bigint,
                                                    started_at timestamptz, prof regclass, narrow boolean,
                                                    rules text, OUT changed bigint, OUT gone bigint, OUT added bigint,
                                                    OUT written bigint, OUT rescored bigint, OUT prospect_delta bigint,
                                                    OUT segment_delta jsonb)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    sets    text;
    columns text;
    old_row text;
    new_row text;
BEGIN
    -- The new rows' columns are copied into j as columns of its own: read
    -- through a composite, each would walk the row from its start.  The
    -- columns that say what to do with a row come first: the scans that only
    -- filter or count (history, deletes, inserts, counts) then take apart the
    -- first seven of j's fifty-odd columns, not all of them.
    SELECT pg_catalog.string_agg(format('%1$I = j.%1$I', a.attname), ', ' ORDER BY a.attnum),
           pg_catalog.string_agg(format('j.%I', a.attname), ', ' ORDER BY a.attnum),
           pg_catalog.string_agg(format('o.%I', a.attname), ', ' ORDER BY a.attnum),
           pg_catalog.string_agg(format('n.%I', a.attname), ', ' ORDER BY a.attnum)
      INTO sets, columns, old_row, new_row
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'segment.customer_profile'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    -- The profile's rows are read once: the join keeps where each lies
    -- (old_tid), and the update and delete go there (a TID scan of the
    -- list) rather than look the customers up again or scan the profile.
    -- Nothing else writes the profile meanwhile (the refresh holds the
    -- segmentation's lock).  New rows go in in their index's order (history
    -- by customer, the profile by key): a first refresh then fills each index
    -- from left to right, not a million leaves at random.
    EXECUTE format($q$
        WITH n AS %9$s (%8$s
        ), j AS MATERIALIZED (
            SELECT n.customer_id AS new_id, o.customer_id AS old_id, o.old_tid,
                   n.segment AS new_segment, o.segment AS old_segment,
                   n.frequency AS new_frequency, o.frequency AS old_frequency, n.*
              FROM n
              FULL JOIN %3$s AS o ON o.customer_id = n.customer_id
             WHERE n.customer_id IS NULL OR o.customer_id IS NULL OR ROW(%6$s) IS DISTINCT FROM ROW(%7$s)
        ), history AS (
            INSERT INTO segment.history
                   (refresh_id, segmentation, customer_id, from_segment, to_segment, changed_at)
            SELECT $1, $2, coalesce(j.new_id, j.old_id)::text, j.old_segment, j.new_segment, $3
              FROM j
             WHERE j.new_segment IS DISTINCT FROM j.old_segment
             ORDER BY 3
            RETURNING 1
        ), deleted AS (
            DELETE FROM %1$s AS p WHERE p.ctid = ANY (ARRAY(SELECT d.old_tid FROM j AS d WHERE d.new_id IS NULL))
            RETURNING 1
        ), updated AS (
            UPDATE %1$s AS p SET %2$s
              FROM j WHERE j.new_id IS NOT NULL AND j.old_id IS NOT NULL AND p.ctid = j.old_tid
               AND p.ctid = ANY (ARRAY(SELECT u.old_tid FROM j AS u WHERE u.new_id IS NOT NULL AND u.old_id IS NOT NULL))
            RETURNING 1
        ), inserted AS (
            INSERT INTO %1$s SELECT j.new_id, %5$s FROM j WHERE j.old_id IS NULL ORDER BY j.new_id
            RETURNING 1
        )
        SELECT (SELECT pg_catalog.count(*) FROM history),
               pg_catalog.count(*) FILTER (WHERE j.new_id IS NULL),
               pg_catalog.count(*) FILTER (WHERE j.old_id IS NULL),
               (SELECT pg_catalog.count(*) FROM deleted) + (SELECT pg_catalog.count(*) FROM updated)
               + (SELECT pg_catalog.count(*) FROM inserted),
               %4$s
          FROM j$q$, prof, sets,
        format('(SELECT p.ctid AS old_tid, p.* FROM %s AS p%s)', prof,
               CASE WHEN narrow
                    THEN ' WHERE p.customer_id = ANY (ARRAY(SELECT a.k FROM pg_temp.segment_refresh_affected AS a))'
                    ELSE '' END),
        CASE WHEN NOT narrow THEN 'NULL::bigint, NULL::bigint, NULL::jsonb'
             ELSE '(SELECT pg_catalog.count(*) FROM n), ' || segment_internal.moves_sql() END,
        columns, old_row, new_row, rules,
        -- every customer's row is read once, by the join; a few are kept
        -- for their count
        CASE WHEN narrow THEN 'MATERIALIZED' ELSE 'NOT MATERIALIZED' END)
        INTO changed, gone, added, written, rescored, prospect_delta, segment_delta
        USING refresh_id, s.name, started_at;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_history_and_profile(segment.segmentations, bigint, timestamptz, regclass, boolean, text) IS
    'Steps 4 to 6 of a refresh of a plain profile in one join of the rules'' rows with the profile: records the segment changes in segment.history and writes the profile rows whose values changed; narrow (some customers rescored), also how many were rescored and how the prospects and segments moved (internal)';

-- Step 6 of a refresh: replaces the profile's rows by those of
-- pg_temp.segment_refresh_new, in place (see the top of this file), writing
-- only the rows whose values changed: an unchanged customer costs no dead
-- row, WAL or replica traffic.  A Citus profile by an upsert from the
-- coordinator of the changed rows (Citus updates no distributed table from a
-- join with a temporary one).  Returns the rows written.
CREATE FUNCTION segment_internal.refresh_write_profile(prof regclass, narrow boolean, gone bigint, added bigint)
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    sets        text;
    upsert_sets text;
    written     bigint;
    total       bigint := 0;
BEGIN
    SELECT pg_catalog.string_agg(format('%1$I = n.%1$I', a.attname), ', ' ORDER BY a.attnum),
           pg_catalog.string_agg(format('%1$I = excluded.%1$I', a.attname), ', ' ORDER BY a.attnum)
      INTO sets, upsert_sets
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = 'segment.customer_profile'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    IF segment_internal.is_citus_table(prof) THEN
        IF gone > 0 THEN
            EXECUTE format($q$
                DELETE FROM %s AS p
                 WHERE p.customer_id IN (SELECT o.customer_id FROM pg_temp.segment_refresh_old AS o
                                          WHERE NOT EXISTS (SELECT FROM pg_temp.segment_refresh_new AS n
                                                             WHERE n.customer_id = o.customer_id))$q$, prof);
            GET DIAGNOSTICS written = ROW_COUNT;
            total := written;
        END IF;
        EXECUTE format($q$
            INSERT INTO %s AS p
            SELECT n.* FROM pg_temp.segment_refresh_new AS n
             WHERE NOT EXISTS (SELECT FROM pg_temp.segment_refresh_old AS o
                                WHERE o.customer_id = n.customer_id AND ROW(o.*) IS NOT DISTINCT FROM ROW(n.*))
                ON CONFLICT (customer_id) DO UPDATE SET %s$q$, prof, upsert_sets);
        GET DIAGNOSTICS written = ROW_COUNT;
        total := total + written;
    ELSE
        IF gone > 0 THEN
            EXECUTE format($q$
                DELETE FROM %s AS p
                 WHERE NOT EXISTS (SELECT FROM pg_temp.segment_refresh_new AS n
                                    WHERE n.customer_id = p.customer_id)%s$q$, prof,
                CASE WHEN narrow THEN ' AND p.customer_id = ANY (ARRAY(SELECT a.k FROM pg_temp.segment_refresh_affected AS a))'
                     ELSE '' END);
            GET DIAGNOSTICS written = ROW_COUNT;
            total := written;
        END IF;
        EXECUTE format($q$
            UPDATE %s AS p SET %s
              FROM pg_temp.segment_refresh_new AS n
             WHERE n.customer_id = p.customer_id AND ROW(p.*) IS DISTINCT FROM ROW(n.*)%s$q$, prof, sets,
            CASE WHEN narrow THEN ' AND p.customer_id = ANY (ARRAY(SELECT a.k FROM pg_temp.segment_refresh_affected AS a))'
                 ELSE '' END);
        GET DIAGNOSTICS written = ROW_COUNT;
        total := total + written;
        IF added > 0 THEN
            EXECUTE format($q$
                INSERT INTO %1$s
                SELECT n.* FROM pg_temp.segment_refresh_new AS n
                 WHERE NOT EXISTS (SELECT FROM %1$s AS p WHERE p.customer_id = n.customer_id)$q$, prof);
            GET DIAGNOSTICS written = ROW_COUNT;
            total := total + written;
        END IF;
    END IF;
    RETURN total;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_write_profile(regclass, boolean, bigint, bigint) IS
    'Step 6 of a refresh: writes the changed rows of pg_temp.segment_refresh_new into the profile; returns how many (internal)';

-- See the README.  Runs in the caller's transaction: nothing is visible to
-- other sessions until it commits, and an error leaves the profile as it was.
CREATE FUNCTION segment_internal.refresh_run(segmentation text, as_of timestamptz, wait boolean, mode text)
    RETURNS segment.refreshes
    LANGUAGE plpgsql
    -- floats written into the rule predicates and model literals read back
    -- exactly; times written into the refresh's SQL (as_of) with numeric UTC
    -- offsets, which read back exactly (DateStyle Postgres or SQL prints zone
    -- abbreviations, and IST read back is Israel's, not India's); 'ISO'
    -- alone keeps the session's day/month order for the rules' literals
    SET search_path = pg_catalog, pg_temp SET extra_float_digits = 3 SET DateStyle = 'ISO' AS
$$
DECLARE
    s        segment.segmentations := segment_internal.segmentation_row(segmentation);
    orders   regclass;
    prof     regclass;
    key_type regtype;
    res      segment.refreshes;
    src      text;
    disc     text;
    scored   text;
    input    text;
    summary  text := '';
    fit      record;
    bg       text;
    gg       text;
    km       text;
    bad      bigint;
    clv_buyers bigint;
    repeaters bigint;
    rb       double precision[];
    fb       double precision[];
    mb       double precision[];
    ranks    double precision[];
    moved_ranks boolean := false;
    top_above bigint;
    top_at_or_above bigint;
    top_ranked double precision[];
    sources  text[];
    gone     bigint;
    added    bigint;
    last     segment.refreshes;
    figures  text;
    narrow   boolean := false;
    moved    text;
    keys     text;
    source_keys boolean;
    stage_rows text;            -- the stored figures as step 1 gives them
    prospect_delta bigint;
    segment_delta jsonb;
    tmp      text;
    engine   record;
    rules    text;
    citus_profile boolean;
    new_rows regclass;
    err_state text;
    err_msg  text;
    err_detail text;
    err_hint text;
BEGIN
    IF wait THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(k.classid, k.objid)
           FROM segment_internal.refresh_lock_key(s.name) AS k;
    ELSIF NOT (SELECT pg_catalog.pg_try_advisory_xact_lock(k.classid, k.objid)
                 FROM segment_internal.refresh_lock_key(s.name) AS k) THEN
        RAISE EXCEPTION 'segmentation "%" is being refreshed by another session', s.name
            USING ERRCODE = 'lock_not_available',
                  HINT = 'Try again when that refresh has finished, or pass wait => true to wait for it.';
    END IF;
    -- Read the configuration again: it may have changed while we waited.
    s := segment_internal.segmentation_row(s.name);
    key_type := segment_internal.check_segmentation(s);
    IF key_type <> s.key_type THEN
        RAISE EXCEPTION 'customer column "%" of relation "%" changed type from % to %',
                        s.customer, s.orders, s.key_type, key_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Run segment.configure() again to rebuild the profile with the new key type.';
    END IF;
    s.key_type := key_type;
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

    res.as_of := refresh_run.as_of;
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
                              WHERE t.oid = segment_internal.column_type(orders, s.discount))
                           WHEN 'B' THEN format('o.%I', s.discount)
                           WHEN 'N' THEN format('o.%I > ''0''', s.discount)
                           ELSE format('o.%I <> ''''', s.discount) END);
    END IF;

    -- 1. One row per customer with orders (parallel-safe CREATE TABLE AS).
    PERFORM segment_internal.drop_refresh_tables();
    -- Purchase days are counted in the session's time zone, passed as a value
    -- so that shards of a partitioned orders table (postgres_fdw runs its
    -- remote sessions in UTC) count the same days.
    -- With lifetime value, the models' input in the same pass over the
    -- orders, in columns of its own (one aggregate, computed once); refunds
    -- (negative amounts) are not purchases.
    IF s.clv THEN
        SELECT pg_catalog.string_agg(format(',
               (segment.clv_summary(o.%1$I::timestamptz, o.%2$I::numeric, %3$L::timestamptz, %4$L, %4$L, %7$L::segment.time_zone)
                   FILTER (WHERE o.%2$I::numeric >= 0)).%5$I AS %6$I',
                                            s.ordered_at, s.amount, res.as_of, s.clv_time_unit, f, 'clv_' || f,
                                            pg_catalog.current_setting('TimeZone')),
                                     '' ORDER BY i)
          INTO summary
          FROM pg_catalog.unnest(ARRAY['x', 't_x', 't_cal', 'mean_value']) WITH ORDINALITY AS u(f, i);
    END IF;
    sources := segment_internal.check_sources(s);
    SELECT st.mode_done, st.full_reason, st.recomputed, st.stage_key, st.figures
      INTO res.mode, res.full_reason, res.recomputed, res.stage_key, figures
      FROM segment_internal.refresh_stage(s, res.as_of, src, disc, summary, sources, refresh_run.mode) AS st;
    -- A full refresh with BG/NBD: the models refresh_figures() fitted with
    -- the rows, and the predictions it wrote into them (src/refresh_clv.c).
    IF s.clv AND s.clv_model = 'bgnbd' AND res.mode = 'full' THEN
        SELECT * INTO engine FROM segment_internal.refresh_figures_models() AS m;
    ELSE
        SELECT false AS fitted, NULL::segment.bgnbd_model AS model,
               NULL::segment.gamma_gamma_model AS gamma_gamma INTO engine;
    END IF;

    -- An incremental refresh reads the figures from the stage, and so does
    -- a full one that wrote them straight into it; the scores of an
    -- incremental one are of the customers it copies from the stage into
    -- pg_temp.segment_refresh_stage (step 2b).
    RAISE DEBUG 'segment.refresh: per-customer figures in % ms',
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    -- 1b. The same for each source: events, support contacts, order lines.
    IF sources <> '{}' THEN
        PERFORM segment_internal.refresh_activity_stages(s, res.as_of, sources, res.mode, res.stage_key IS NOT NULL);
        PERFORM segment_internal.refresh_product_stage(s, res.as_of, sources, res.mode, res.stage_key IS NOT NULL);
        PERFORM segment_internal.refresh_impulse_stage(s, res.as_of, sources, res.mode, res.stage_key IS NOT NULL);
        RAISE DEBUG 'segment.refresh: sources (%) at % ms', pg_catalog.array_to_string(sources, ', '),
            round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);
    END IF;

    -- 2. Cut points: quantiles of this refresh unless the segmentation fixes
    -- them.  An incremental refresh moves the last refresh's by the figures
    -- that changed (segment_internal.moved_breaks()) where it can; otherwise
    -- they are computed over every customer, with their ranks for the next.
    IF res.mode = 'incremental' THEN
        SELECT * INTO last FROM segment.refreshes AS r WHERE r.id = s.last_refresh;
        IF last.stage_key IS NOT DISTINCT FROM res.stage_key THEN
            SELECT mv.r_breaks, mv.f_breaks, mv.m_breaks, mv.ranks INTO rb, fb, mb, ranks
              FROM segment_internal.moved_breaks(s, res.as_of, last, figures::regclass) AS mv;
            moved_ranks := ranks IS NOT NULL;
        END IF;
    END IF;
    IF moved_ranks THEN
        res.buyers := ranks[1];
    ELSE
        EXECUTE format($q$
            SELECT segment_internal.breaks_histogram((%7$s)::double precision, %2$s),
                   segment_internal.breaks_histogram(((st.s).orders)::double precision, %2$s),
                   segment_internal.breaks_ranked(segment_internal.numeric_double((st.s).monetary), %2$s),
                   %8$s,
                   pg_catalog.count(*), %4$s, %5$s
              FROM (SELECT segment_internal.unpacked(st.s) AS s%9$s FROM %6$s AS st OFFSET 0) AS st$q$,
            res.as_of, s.buckets, 1 - s.top_spender_share,
            CASE WHEN s.clv THEN 'pg_catalog.count(st.clv_x)' ELSE 'NULL::bigint' END,
            CASE WHEN s.clv THEN 'pg_catalog.count(*) FILTER (WHERE st.clv_x > 0)' ELSE 'NULL::bigint' END,
            figures, segment_internal.days_since_sql(s, res.as_of, '(st.s).last_order'),
            CASE WHEN res.mode = 'incremental' THEN 'NULL::double precision[]'
                 ELSE format('segment_internal.rank_at(segment_internal.numeric_double((st.s).monetary), %s)',
                             1 - s.top_spender_share) END,
            CASE WHEN s.clv THEN ', st.clv_x' ELSE '' END)
            INTO rb, fb, mb, top_ranked, res.buyers, clv_buyers, repeaters;
        -- a full refresh that wrote its figures straight into the stage
        -- recomputed every buyer (refresh_stage())
        res.recomputed := coalesce(res.recomputed, res.buyers);
        -- The ranks for the next refresh (segment_internal.moved_breaks()):
        -- none past breaks_histogram()'s distinct values.
        ranks := NULL;
        IF res.buyers > 0 AND pg_catalog.cardinality(rb) > s.buckets - 1
           AND pg_catalog.cardinality(fb) > s.buckets - 1 THEN
            ranks := ARRAY[res.buyers, s.buckets, CASE WHEN s.recency = 'elapsed' THEN 1 ELSE 0 END, -1, -1,
                           (pg_catalog.cardinality(rb) - s.buckets + 1) / 2]::double precision[]
                     || rb[s.buckets :] || ((pg_catalog.cardinality(fb) - s.buckets + 1) / 2)::double precision
                     || fb[s.buckets :] || mb;
        END IF;
        rb := rb[1 : s.buckets - 1];
        fb := fb[1 : s.buckets - 1];
        mb := mb[1 : s.buckets - 1];
    END IF;
    -- A full refresh: the top-spender cut from rank_at()'s double, with its
    -- counts for the next refresh, found in the stage kept for incremental
    -- refreshes (the same figures, and indexed) where there is one.
    IF top_ranked IS NOT NULL THEN
        SELECT t.top, t.above, t.at_or_above INTO res.top_spender_min, top_above, top_at_or_above
          FROM segment_internal.top_spender_at(CASE WHEN res.stage_key IS NOT NULL
                                                    THEN format('segment.%I', 'stage_' || s.name)
                                                    ELSE figures END::regclass, top_ranked) AS t;
        IF ranks IS NOT NULL THEN
            ranks[4] := top_above;
            ranks[5] := top_at_or_above;
        END IF;
    END IF;
    IF res.stage_key IS NOT NULL THEN
        res.cut_ranks := ranks;
    END IF;
    -- From the stage, the top-spender cut is found with its monetary index
    -- (segment_internal.stage_indexes()), moved from the last one by what
    -- changed, with its counts for the next refresh (cut_ranks[4:5]).
    IF res.mode = 'incremental' AND res.buyers > 0 THEN
        SELECT t.top, t.above, t.at_or_above INTO res.top_spender_min, top_above, top_at_or_above
          FROM segment_internal.top_spender_cut(s, last, figures::regclass, res.buyers) AS t;
        IF res.cut_ranks IS NOT NULL THEN
            res.cut_ranks[4] := top_above;
            res.cut_ranks[5] := top_at_or_above;
        END IF;
    END IF;
    res.r_breaks := coalesce(s.r_breaks, rb);
    res.f_breaks := coalesce(s.f_breaks, fb);
    res.m_breaks := coalesce(s.m_breaks, mb);
    res.fixed_breaks := array_remove(ARRAY[CASE WHEN s.r_breaks IS NOT NULL THEN 'r' END,
                                           CASE WHEN s.f_breaks IS NOT NULL THEN 'f' END,
                                           CASE WHEN s.m_breaks IS NOT NULL THEN 'm' END], NULL);

    RAISE DEBUG 'segment.refresh: cut points (%) at % ms',
        CASE WHEN moved_ranks THEN 'moved' ELSE 'computed' END,
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    -- 2b. Who is rescored.  An incremental refresh whose segments depend on
    -- nothing else that moved (segment_internal.narrow_blocker()) rescores the
    -- customers it recomputed, or whose customers row changed, and those
    -- whose figures lie where the cut points moved; the others keep their
    -- profile row.  Otherwise every customer.
    IF res.stage_key IS NOT NULL THEN
        res.score_key := segment_internal.score_key(s, res.as_of);
    END IF;
    IF res.mode = 'incremental' THEN
        res.rescore_reason := segment_internal.narrow_blocker(s, last.score_key, res.score_key, prof);
        narrow := res.rescore_reason IS NULL;
        IF narrow THEN
            moved := segment_internal.moved_cuts_sql(res.as_of, s.recency = 'elapsed', last.r_breaks, res.r_breaks, last.f_breaks, res.f_breaks,
                                            last.m_breaks, res.m_breaks, last.top_spender_min, res.top_spender_min);
            -- The recomputed customers' rows are read where step 1 wrote them
            -- (their tid in pg_temp.segment_refresh_delta; those whose
            -- appended orders were all left out kept theirs), not looked up
            -- by key; the stage's indexes find those where the cut points
            -- moved (segment_internal.stage_indexes()), and those whose events
            -- or contacts summaries were recomputed, the others.
            source_keys := pg_catalog.to_regclass('pg_temp.segment_refresh_source_affected') IS NOT NULL;
            stage_rows := segment_internal.stage_rows_sql(s, res.as_of);
            PERFORM segment_internal.refresh_table('segment_refresh_stage', format(
                '%1$s
                  WHERE st.ctid = ANY (ARRAY(SELECT d.tid FROM pg_temp.segment_refresh_delta AS d WHERE d.tid IS NOT NULL
                                             UNION ALL
                                             SELECT a.tid FROM pg_temp.segment_refresh_appended AS a
                                              WHERE a.stored AND (a.new_s).orders IS NULL))%2$s',
                stage_rows,
                CASE WHEN moved IS NOT NULL OR source_keys
                     THEN format(' UNION ALL %s
                                   WHERE (%s)
                                     AND NOT EXISTS (SELECT FROM pg_temp.segment_refresh_recompute AS r
                                                      WHERE r.k = st.customer_id)',
                                 stage_rows,
                                 pg_catalog.concat_ws(' OR ', moved,
                                           CASE WHEN source_keys
                                                THEN 'st.customer_id = ANY (ARRAY(SELECT k.k FROM pg_temp.segment_refresh_source_affected AS k))' END))
                     ELSE '' END));
            PERFORM segment_internal.refresh_table('segment_refresh_affected',
                'SELECT st.customer_id AS k FROM pg_temp.segment_refresh_stage AS st
                 UNION SELECT r.k FROM pg_temp.segment_refresh_recompute AS r'
                || CASE WHEN source_keys THEN ' UNION SELECT k.k FROM pg_temp.segment_refresh_source_affected AS k'
                        ELSE '' END);
            ANALYZE pg_temp.segment_refresh_affected;
        ELSE
            -- (with lifetime value, t_cal as of this as_of)
            PERFORM segment_internal.refresh_table('segment_refresh_stage', segment_internal.stage_rows_sql(s, res.as_of));
            IF s.clv THEN
                SELECT pg_catalog.count(st.clv_x), pg_catalog.count(*) FILTER (WHERE st.clv_x > 0)
                  INTO clv_buyers, repeaters
                  FROM pg_temp.segment_refresh_stage AS st;
            END IF;
        END IF;
        RAISE DEBUG 'segment.refresh: rescoring % at % ms', coalesce(res.rescore_reason, 'some customers'),
            round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);
        -- The events' and contacts' summaries of the customers rescored.
        PERFORM segment_internal.activity_tables(s, res.as_of, sources, narrow);
    END IF;

    -- 3. Lifetime value: BG/NBD and Gamma-Gamma over every buyer, then their
    -- predictions per buyer and the high-value cut (before the rules).  A fit
    -- that is not usable leaves the columns NULL, with a warning and a note.
    IF s.clv THEN
        SELECT f.status, f.note, f.model, f.model_fit, f.gamma_gamma INTO fit
          FROM segment_internal.refresh_fit_clv(s, clv_buyers, repeaters, engine.model, engine.gamma_gamma) AS f;
        res.clv_status := fit.status;
        res.clv_note := fit.note;
        res.clv_model := s.clv_model;
        res.clv_fit := fit.model_fit;
        IF s.clv_model = 'bgnbd' THEN
            res.bgnbd := fit.model_fit;
        END IF;
        res.gamma_gamma := pg_catalog.to_jsonb(fit.gamma_gamma);
        IF fit.status IN ('fitted', 'partial') THEN
            bg := fit.model;
        END IF;
        IF fit.status = 'fitted' THEN
            gg := fit.gamma_gamma::text;
        END IF;
        RAISE DEBUG 'segment.refresh: lifetime-value fits at % ms',
            round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);
    END IF;
    IF bg IS NOT NULL AND engine.fitted THEN
        -- in the stage already, and the cut with them
        res.high_value_min := engine.high_value_min;
        bad := engine.bad;
    ELSIF bg IS NOT NULL THEN
        PERFORM segment_internal.refresh_table('segment_refresh_clv', segment_internal.clv_predictions_sql(s, bg, gg));
        -- percentile_disc(1 - share) over the finite CLVs (NULLs skipped, NULL
        -- when there is none), by selection rather than a sort.
        EXECUTE format($q$
            SELECT (segment_internal.rank_at(lv.clv, %s))[1],
                   pg_catalog.count(*) FILTER (WHERE lv.bad)
              FROM pg_temp.segment_refresh_clv AS lv$q$, 1 - s.high_value_share)
            INTO res.high_value_min, bad;
        IF bad > 0 THEN
            res.clv_note := concat_ws('; ', res.clv_note,
                                      format('%s customers got a value that is not a finite number, left NULL', bad));
            RAISE WARNING 'segmentation "%": % customers got a lifetime value that is not a finite number',
                          s.name, bad
                USING DETAIL = 'Their p_alive, expected_purchases or clv is NULL.';
        END IF;
        RAISE DEBUG 'segment.refresh: lifetime-value predictions at % ms',
            round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);
    END IF;

    -- 4. Scores, RFM segment, lifetime value; clusters; rules.  With clusters
    -- the rows are computed once into a table, which the k-means fit reads.
    IF narrow AND s.customers IS NOT NULL THEN
        -- The keys are read for the prospects among the rescored (those
        -- without figures): the others need not be looked up in the
        -- customers relation (32,000 index descents after 1% changed).
        -- Those are among the recomputed and the sources' affected (the
        -- rescoring set's other customers have figures): the anti join
        -- sorts a third as many keys as it would over all the rescored.
        keys := format('SELECT DISTINCT c.%1$I::%2$s AS k FROM %3$s AS c
                         WHERE c.%1$I IS NOT NULL
                           AND c.%1$I::%2$s = ANY (ARRAY(SELECT a.k
                                                           FROM (SELECT r.k FROM pg_temp.segment_refresh_recompute AS r%4$s) AS a
                                                          WHERE NOT EXISTS (SELECT FROM pg_temp.segment_refresh_stage AS st
                                                                             WHERE st.customer_id = a.k)))',
                       s.customers_key, s.key_type, pg_catalog.to_regclass(s.customers),
                       CASE WHEN source_keys
                            THEN ' UNION ALL SELECT k.k FROM pg_temp.segment_refresh_source_affected AS k' ELSE '' END);
    ELSIF segment_internal.is_citus_table(pg_catalog.to_regclass(s.customers)) THEN
        PERFORM segment_internal.refresh_table('segment_refresh_customers', format(
            'SELECT DISTINCT c.%1$I::%2$s AS k FROM %3$s AS c WHERE c.%1$I IS NOT NULL',
            s.customers_key, s.key_type, pg_catalog.to_regclass(s.customers)));
        keys := 'SELECT k FROM pg_temp.segment_refresh_customers';
    END IF;
    -- The sources' tables joined by customer: their row counts and key
    -- statistics, so that the joins are hashed (unanalysed, a million rows
    -- were estimated at a few, and joined by sorting both sides).
    FOREACH tmp IN ARRAY ARRAY['segment_refresh_events', 'segment_refresh_contacts', 'segment_refresh_lines',
                               'segment_refresh_impulse'] LOOP
        IF pg_catalog.to_regclass('pg_temp.' || tmp) IS NOT NULL THEN
            EXECUTE format('ANALYZE pg_temp.%I (customer_id)', tmp);
        END IF;
    END LOOP;
    scored := segment_internal.scored_query(s, res.as_of, res.started_at, res.r_breaks, res.f_breaks, res.m_breaks,
                                   bg IS NOT NULL, sources, keys,
                                   CASE WHEN res.mode = 'full' THEN figures ELSE 'pg_temp.segment_refresh_stage' END);
    IF s.clusters IS NOT NULL THEN
        PERFORM segment_internal.refresh_table('segment_refresh_scored', scored);
        SELECT f.status, f.note, f.model INTO fit
          FROM segment_internal.refresh_fit_clusters(s, res.id,
                                            segment_internal.rule_input_query(s, 'SELECT * FROM pg_temp.segment_refresh_scored',
                                                                     NULL)) AS f;
        res.cluster_status := fit.status;
        res.cluster_note := fit.note;
        km := fit.model::text;
        res.cluster_model := km::jsonb;
        input := segment_internal.rule_input_query(s, 'SELECT * FROM pg_temp.segment_refresh_scored', km);
        RAISE DEBUG 'segment.refresh: k-means at % ms',
            round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);
    ELSE
        input := segment_internal.rule_input_query(s, scored, NULL);
    END IF;

    -- The final segment is the first rule that holds, flag-only rules left out.
    -- A plain profile: 4, 5 and 6 at once, the rules' rows, the history and
    -- the profile's changed rows.  A Citus profile, which Citus does not
    -- join with a temporary table's rows in one statement: the rows into
    -- pg_temp.segment_refresh_new first.  Either way a failure of the rules'
    -- query is named: the rule at fault, or the rows the rules read.
    citus_profile := segment_internal.is_citus_table(prof);
    rules := segment_internal.rules_query(s, res.top_spender_min, res.high_value_min, input);
    BEGIN
        IF NOT citus_profile THEN
            SELECT h.changed, h.gone, h.added, h.written, h.rescored, h.prospect_delta, h.segment_delta
              INTO res.changed, gone, added, res.written, res.rescored, prospect_delta, segment_delta
              FROM segment_internal.refresh_history_and_profile(s, res.id, res.started_at, prof, narrow, rules) AS h;
        ELSE
            PERFORM segment_internal.refresh_table('segment_refresh_new', rules);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err_state = RETURNED_SQLSTATE, err_msg = MESSAGE_TEXT,
                                err_detail = PG_EXCEPTION_DETAIL, err_hint = PG_EXCEPTION_HINT;
        PERFORM segment_internal.rules_failed(s, res.top_spender_min, res.high_value_min, input,
                                              err_state, err_msg, err_detail, err_hint);
    END;
    IF NOT citus_profile THEN
        new_rows := prof;
    ELSE
        -- Its row count and its key's statistics, for the joins with the
        -- profile (all on customer_id): a quarter of the time of every
        -- column's (sorting a sample of each of ~45 columns) at a million
        -- customers.
        ANALYZE pg_temp.segment_refresh_new (customer_id);
        RAISE DEBUG 'segment.refresh: scores and rules at % ms',
            round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

        -- 5. History: who changed segment since the profile we replace.
        SELECT h.changed, h.gone, h.added, h.prospect_delta, h.segment_delta
          INTO res.changed, gone, added, prospect_delta, segment_delta
          FROM segment_internal.refresh_history(s, res.id, res.started_at, prof, narrow) AS h;

        RAISE DEBUG 'segment.refresh: history at % ms',
            round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

        -- 6. Replace the profile, writing only the rows whose values changed.
        res.written := segment_internal.refresh_write_profile(prof, narrow, gone, added);
        new_rows := 'pg_temp.segment_refresh_new'::regclass;
        IF narrow THEN
            SELECT pg_catalog.count(*) INTO res.rescored FROM pg_temp.segment_refresh_new;
        END IF;
    END IF;
    RAISE DEBUG 'segment.refresh: profile replaced at % ms',
        round(extract(epoch FROM pg_catalog.clock_timestamp() - res.started_at) * 1000);

    IF narrow THEN
        -- The last refresh's counts, moved by the customers rescored.
        res.customers := last.customers + added - gone;
        res.prospects := last.prospects + prospect_delta;
        SELECT pg_catalog.jsonb_object_agg(g.segment, g.n) INTO res.segments
          FROM (SELECT e.key AS segment, pg_catalog.sum(e.value::bigint) AS n
                  FROM (SELECT * FROM pg_catalog.jsonb_each_text(last.segments)
                        UNION ALL
                        SELECT * FROM pg_catalog.jsonb_each_text(segment_delta)) AS e
                 GROUP BY e.key HAVING pg_catalog.sum(e.value::bigint) <> 0) AS g;
    ELSE
        -- (one pass over the new rows, in the profile now or in the table:
        -- the counts by segment, summed)
        EXECUTE format($q$
            SELECT coalesce(pg_catalog.sum(g.n), 0), coalesce(pg_catalog.sum(g.prospects), 0),
                   pg_catalog.jsonb_object_agg(g.segment, g.n)
              FROM (SELECT coalesce(n.segment, '(none)') AS segment, pg_catalog.count(*) AS n,
                           pg_catalog.count(*) FILTER (WHERE n.frequency = 0) AS prospects
                      FROM %s AS n GROUP BY 1) AS g$q$, new_rows)
          INTO res.customers, res.prospects, res.segments;
        res.rescored := res.customers;
    END IF;
    IF sources <> '{}' THEN
        res.sources := segment_internal.refresh_source_counts(s, sources, CASE WHEN narrow THEN prof ELSE new_rows END,
                                                              narrow);
    END IF;
    PERFORM segment_internal.drop_refresh_tables();

    res.finished_at := pg_catalog.clock_timestamp();
    INSERT INTO segment.refreshes SELECT res.*;
    UPDATE segment.segmentations AS x SET last_refresh = res.id WHERE x.name = s.name;
    RETURN res;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_run(text, timestamptz, boolean, text) IS
    'The body of segment.refresh(), which runs it as the owner of the segmentation (internal: not executable by PUBLIC)';

-- Runs segment_internal.refresh_run() as the segmentation's owner (src/owner.c): the
-- stored SQL of a segmentation (rules, relations) never runs with the
-- privileges of whoever refreshes it.
CREATE FUNCTION segment.refresh(segmentation text DEFAULT NULL, as_of timestamptz DEFAULT NULL,
                                wait boolean DEFAULT true, mode text DEFAULT 'auto')
    RETURNS segment.refreshes
    AS 'MODULE_PATHNAME', 'segment_refresh_as_owner' LANGUAGE C VOLATILE;
COMMENT ON FUNCTION segment.refresh(text, timestamptz, boolean, text) IS
    'Recomputes the profile of a segmentation (NULL: the default one) as of a time (NULL: its as-of rule) and records the changes; waits for a concurrent refresh of the same segmentation unless wait is false; mode auto (incremental where it is safe), full or incremental';

-- The latest refresh of each segmentation, with its cut points.
CREATE VIEW segment.cut_points AS
    SELECT s.name AS segmentation, r.id AS refresh_id, r.as_of, r.buckets, r.fixed_breaks,
           r.r_breaks AS recency_days_breaks, r.f_breaks AS frequency_breaks,
           r.m_breaks AS monetary_breaks, r.top_spender_min, r.high_value_min
      FROM segment.segmentations AS s
      JOIN segment.refreshes AS r ON r.id = s.last_refresh;
COMMENT ON VIEW segment.cut_points IS
    'Cut points used by the latest refresh of each segmentation: score(value, breaks) = 1 + number of breaks below the value (recency reversed: fewer days scores higher); the top-spender (monetary) and high-value (clv) cuts of the built-in rules';
-- The rules as a refresh applies them, built-in thresholds filled in from the
-- segmentation (and its sources) and the top-spender cut of its last refresh.
CREATE VIEW segment.rule_predicates AS
    SELECT r.segmentation, r.priority, r.name, r.enabled, r.builtin,
           coalesce(r.predicate,
                    segment_internal.builtin_predicate(r.builtin, s, lr.top_spender_min,
                                              lr.high_value_min)) AS predicate,
           r.flag_only
      FROM segment.rules AS r
      JOIN segment.segmentations AS s ON s.name = r.segmentation
      LEFT JOIN segment.refreshes AS lr ON lr.id = s.last_refresh;
COMMENT ON VIEW segment.rule_predicates IS
    'Rules as the next refresh applies them, built-in thresholds filled in (the top-spender cut is that of the latest refresh; a rule of a source the segmentation does not have is false)';

-- What each refresh read from the sources, one row per source.
CREATE VIEW segment.refresh_sources AS
    SELECT r.segmentation, r.id AS refresh_id, r.as_of, x.key AS source,
           (x.value->>'rows')::bigint AS rows, (x.value->>'customers')::bigint AS customers,
           (x.value->>'skipped')::bigint AS skipped, x.value->'details' AS details
      FROM segment.refreshes AS r
     CROSS JOIN LATERAL pg_catalog.jsonb_each(r.sources) AS x;
COMMENT ON VIEW segment.refresh_sources IS
    'What each refresh read from each source (events, contacts, products): rows read, customers of the profile with data from it, rows skipped, and the counts by reason (details: unknown_type, after_as_of, no_time, unknown_customer, no_customer; no_order, excluded_order, bad_quantity; also unrated_in_window and missing_product, which are used, not skipped)';
