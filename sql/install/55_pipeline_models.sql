-- The pipeline, part 6: the models a refresh fits (after the model types of
-- 2x_kmeans*.sql and 3x_clv_*.sql): lifetime value (BG/NBD and Gamma-Gamma)
-- and k-means clusters, the view of what each refresh fitted, and the
-- description and names of the clusters.  See README "Lifetime value in the
-- pipeline" and "Clusters in the pipeline".

-- A float in four significant digits, for the notes of a refresh.
CREATE FUNCTION segment_internal.short_float(v double precision) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.btrim(pg_catalog.to_char(v, '9.999EEEE'))
$$;
COMMENT ON FUNCTION segment_internal.short_float(double precision) IS
    'A number in scientific notation with four significant digits, as the notes of a refresh show parameters';

-- Fits the segmentation's purchase model (BG/NBD, MBG/NBD or Pareto/NBD:
-- s.clv_model) and Gamma-Gamma over the clv_summary of every buyer in
-- pg_temp.segment_refresh_stage (columns clv_*: x, t_x, t_cal, mean_value),
-- given how many buyers and repeat buyers it has, unless refresh_figures()
-- fitted them already (fitted and fitted_gamma_gamma not NULL: the same
-- fits, over the same rows; src/refresh_clv.c).  model: the purchase
-- model's text form, model_fit the same as jsonb.  status: fitted (both
-- usable), partial (the purchase model only: p_alive and expected purchases,
-- no CLV), failed (neither); note says why, and a warning is raised unless
-- fitted.
CREATE FUNCTION segment_internal.refresh_fit_clv(s segment.segmentations, buyers bigint, repeaters bigint,
                                        fitted segment.bgnbd_model,
                                        fitted_gamma_gamma segment.gamma_gamma_model,
                                        OUT status text, OUT note text,
                                        OUT model text, OUT model_fit jsonb,
                                        OUT gamma_gamma segment.gamma_gamma_model)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    penalty   text := '';
    msg       text;
    gg        text;
    name      text := CASE s.clv_model WHEN 'mbgnbd' THEN 'MBG/NBD' WHEN 'pareto_nbd' THEN 'Pareto/NBD'
                           ELSE 'BG/NBD' END;
BEGIN
    IF buyers = 0 THEN
        status := 'failed';
        note := 'no customer has an order up to as_of';
    ELSIF repeaters < s.clv_min_repeat_buyers THEN
        status := 'failed';
        note := format('%s of %s customers made a repeat purchase, fewer than clv_min_repeat_buyers (%s)',
                       repeaters, buyers, s.clv_min_repeat_buyers);
    ELSE
        IF s.clv_penalizer > 0 THEN
            penalty := format(', %s::double precision', s.clv_penalizer);
        END IF;
        IF fitted IS NOT NULL AND fitted_gamma_gamma IS NOT NULL THEN
            model := fitted::text;
            model_fit := pg_catalog.to_jsonb(fitted);
            gamma_gamma := fitted_gamma_gamma;
        ELSE
            BEGIN
                -- Gamma-Gamma describes positive spend: a repeat customer whose
                -- repeat orders were all free is left out of its fit.
                -- (The purchase model as text and jsonb: its type is the model's.)
                EXECUTE format($q$
                    SELECT f.pm::text, pg_catalog.to_jsonb(f.pm), f.gg::text
                      FROM (SELECT segment.%2$s_fit(st.clv_x, st.clv_t_x, st.clv_t_cal%3$s) AS pm,
                                   segment.gamma_gamma_fit(st.clv_x, st.clv_mean_value%1$s)
                                       FILTER (WHERE st.clv_x = 0 OR st.clv_mean_value > 0) AS gg
                              FROM pg_temp.segment_refresh_stage AS st
                             WHERE st.clv_x IS NOT NULL) AS f$q$, penalty, s.clv_model,
                    CASE WHEN s.clv_model = 'pareto_nbd' THEN '' ELSE penalty END)
                    INTO model, model_fit, gg;
                gamma_gamma := gg::segment.gamma_gamma_model;
            EXCEPTION WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                status := 'failed';
                note := 'the fit failed: ' || msg;
            END;
        END IF;
        IF status IS NULL THEN
            IF NOT (model_fit->>'converged')::boolean THEN
                status := 'failed';
                note := format('the %s fit did not converge (%s iterations, %s)', name, model_fit->>'iterations',
                               (SELECT pg_catalog.string_agg(format('%s %s', p.key, segment_internal.short_float((model_fit->>p.key)::double precision)),
                                                             ', ' ORDER BY p.ord)
                                  FROM pg_catalog.unnest(ARRAY['r', 'alpha', 'a', 'b', 's', 'beta']) WITH ORDINALITY AS p(key, ord)
                                 WHERE model_fit ? p.key));
            ELSIF gamma_gamma IS NULL THEN
                status := 'partial';
                note := 'no repeat customer spent more than 0, so there is no Gamma-Gamma fit';
            ELSIF NOT (gamma_gamma).converged THEN
                status := 'partial';
                note := format('the Gamma-Gamma fit did not converge (%s iterations, p %s, q %s, v %s)',
                               (gamma_gamma).iterations, segment_internal.short_float((gamma_gamma).p),
                               segment_internal.short_float((gamma_gamma).q), segment_internal.short_float((gamma_gamma).v));
            ELSIF NOT (gamma_gamma).q > 1 THEN
                status := 'partial';
                note := format('the Gamma-Gamma fit has q = %s, at most 1: the expected spend is not finite',
                               round((gamma_gamma).q::numeric, 4));
            ELSE
                status := 'fitted';
            END IF;
        END IF;
    END IF;
    IF status = 'failed' THEN
        RAISE WARNING 'segmentation "%": no lifetime value in this refresh: %', s.name, note
            USING DETAIL = 'p_alive, expected_purchases and clv are NULL; the reason is in segment.refreshes (clv_note).',
                  HINT = 'More history (orders over a longer period) helps; so may clv_penalizer => 0.001.';
    ELSIF status = 'partial' THEN
        RAISE WARNING 'segmentation "%": no CLV in this refresh: %', s.name, note
            USING DETAIL = 'p_alive and expected_purchases are computed, clv is NULL; the reason is in segment.refreshes (clv_note).',
                  HINT = 'Gamma-Gamma needs spend that varies between orders; clv_penalizer => 0.001 may help.';
    END IF;
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_fit_clv(segment.segmentations, bigint, bigint, segment.bgnbd_model,
                                                     segment.gamma_gamma_model) IS
    'Fits the lifetime-value models of a refresh over its per-customer summaries, or takes those refresh_figures() fitted; the status says which are usable, the note why not (internal)';

-- Fits (or reuses) the k-means model of a segmentation over the buyers of
-- input (segment_internal.rule_input_query() without clusters), and stores it in
-- segment.kmeans_models under segment_internal.cluster_model_name().  A model fitted
-- with other features, k or options is not used.  cluster_model 'refit'
-- starts from the stored model's centroids, so that cluster numbers keep
-- their meaning (and their names) from one refresh to the next; k-means++
-- with restarts when there is none, or when that fails.  On failure the
-- stored model is left as it was and model is NULL, with a warning.
CREATE FUNCTION segment_internal.refresh_fit_clusters(s segment.segmentations, refresh_id bigint, input text,
                                             OUT status text, OUT note text,
                                             OUT model segment.kmeans_model)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    model_name text := segment_internal.cluster_model_name(s.name);
    params     jsonb := pg_catalog.jsonb_build_object('segmentation', s.name,
                                                      'features', pg_catalog.to_jsonb(s.cluster_features),
                                                      'k', s.clusters, 'options', s.cluster_options);
    options    jsonb := segment_internal.cluster_fit_options(s);
    init       jsonb;
    stored     segment.kmeans_models;
    query      text;
    msg        text;
BEGIN
    SELECT * INTO stored FROM segment.kmeans_models AS m WHERE m.name = model_name FOR UPDATE;
    IF FOUND AND (stored.parameters->'features', stored.parameters->'k', stored.parameters->'options')
                 IS DISTINCT FROM (params->'features', params->'k', params->'options') THEN
        note := 'the stored model was fitted on other features, k or options';
        stored := NULL;
    END IF;
    IF stored.model IS NOT NULL AND s.cluster_model = 'reuse' THEN
        status := 'reused';
        note := format('model fitted at refresh %s', coalesce(stored.parameters->>'refresh_id', '?'));
        model := stored.model;
        RETURN;
    END IF;
    IF stored.model IS NOT NULL THEN
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c.centroid) ORDER BY c.cluster) INTO init
          FROM segment.kmeans_centroids(stored.model) AS c;
    END IF;

    query := format('SELECT %s FROM (%s) AS g WHERE %s',
                    segment_internal.cluster_features_sql(s, 'g'), input, segment_internal.cluster_ready_sql(s, 'g'));
    -- First from the previous centroids, if any, then from k-means++.  Points
    -- beyond the in-memory fit's limit (maintenance_work_mem) are fitted
    -- with the step driver instead, which reads them again each iteration.
    FOR attempt IN CASE WHEN init IS NULL THEN 2 ELSE 1 END .. 2 LOOP
        FOR tries IN 1..2 LOOP
            BEGIN
                DELETE FROM segment.kmeans_models AS m WHERE m.name = model_name;
                model := segment.create_kmeans_model(model_name, query, s.clusters,
                                            CASE WHEN attempt = 1
                                                 THEN options || pg_catalog.jsonb_build_object('init', init)
                                                 ELSE options END);
                -- The source the model describes once this refresh commits.
                UPDATE segment.kmeans_models AS m
                   SET parameters = params || pg_catalog.jsonb_build_object(
                           'refresh_id', refresh_id,
                           'warm_start', attempt = 1,
                           'source', format('SELECT %s FROM segment.%I AS p WHERE %s',
                                            segment_internal.cluster_features_sql(s, 'p'), s.profile,
                                            segment_internal.cluster_ready_sql(s, 'p')))
                 WHERE m.name = model_name;
                status := 'fitted';
                note := concat_ws('; ', note, CASE WHEN attempt = 1 THEN 'started from the previous centroids'
                                                   ELSE 'started from k-means++' END);
                RETURN;
            EXCEPTION
                WHEN program_limit_exceeded THEN
                    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                    EXIT WHEN coalesce(options->>'method', 'memory') = 'step';
                    options := options || '{"method": "step"}';
                    note := concat_ws('; ', note, 'the points exceed maintenance_work_mem: fitted with the step driver');
                WHEN OTHERS THEN
                    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
                    EXIT;
            END;
        END LOOP;
    END LOOP;
    status := 'failed';
    note := 'the k-means fit failed: ' || msg;
    model := NULL;
    RAISE WARNING 'segmentation "%": no clusters in this refresh: %', s.name, msg
        USING DETAIL = 'cluster, cluster_name and cluster_distance are NULL; the reason is in segment.refreshes (cluster_note).';
END
$$;
COMMENT ON FUNCTION segment_internal.refresh_fit_clusters(segment.segmentations, bigint, text) IS
    'Fits or reuses the k-means model of a refresh and stores it in segment.kmeans_models; the status says which, the note why (internal)';

-- What each refresh fitted, with the models in their own types, ready for
-- the prediction functions (segment.bgnbd_p_alive(m.bgnbd, ...), ...).
CREATE VIEW segment.refresh_models AS
    SELECT r.segmentation, r.id AS refresh_id, r.as_of,
           r.clv_status, r.clv_note,
           CASE WHEN r.bgnbd IS NOT NULL
                THEN pg_catalog.jsonb_populate_record(NULL::segment.bgnbd_model, r.bgnbd) END AS bgnbd,
           CASE WHEN r.gamma_gamma IS NOT NULL
                THEN pg_catalog.jsonb_populate_record(NULL::segment.gamma_gamma_model, r.gamma_gamma)
           END AS gamma_gamma,
           r.high_value_min,
           r.cluster_status, r.cluster_note,
           (r.cluster_model::text)::segment.kmeans_model AS kmeans,
           r.clv_model,
           CASE WHEN r.clv_model = 'mbgnbd' AND r.clv_fit IS NOT NULL
                THEN pg_catalog.jsonb_populate_record(NULL::segment.mbgnbd_model, r.clv_fit) END AS mbgnbd,
           CASE WHEN r.clv_model = 'pareto_nbd' AND r.clv_fit IS NOT NULL
                THEN pg_catalog.jsonb_populate_record(NULL::segment.pareto_nbd_model, r.clv_fit) END AS pareto_nbd
      FROM segment.refreshes AS r
     WHERE r.clv_status IS NOT NULL OR r.cluster_status IS NOT NULL;
COMMENT ON VIEW segment.refresh_models IS
    'Models fitted by each refresh that computed lifetime value or clusters: status and note of each, BG/NBD and Gamma-Gamma parameters, the high-value CLV cut, the k-means model, and which purchase model lifetime value used (clv_model) with the MBG/NBD or Pareto/NBD parameters when it was one of those';

-- Names (or with NULL unnames) a cluster of a segmentation.
CREATE FUNCTION segment.name_cluster(cluster integer, name text, segmentation text DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s     segment.segmentations := segment_internal.segmentation_row(segmentation);
    other integer;
BEGIN
    IF s.clusters IS NULL THEN
        RAISE EXCEPTION 'segmentation "%" has no clusters', s.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Configure it with clusters => k first.';
    END IF;
    IF cluster IS NULL OR cluster NOT BETWEEN 1 AND s.clusters THEN
        RAISE EXCEPTION 'cluster must be between 1 and %', s.clusters
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(cluster::text, 'NULL'));
    END IF;
    IF name IS NULL THEN
        DELETE FROM segment.cluster_names AS n
         WHERE n.segmentation = s.name AND n.cluster = name_cluster.cluster;
        RETURN;
    END IF;
    IF name = '' THEN
        RAISE EXCEPTION 'cluster name must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL to remove the name.';
    END IF;
    SELECT n.cluster INTO other FROM segment.cluster_names AS n
     WHERE n.segmentation = s.name AND n.name = name_cluster.name AND n.cluster <> name_cluster.cluster;
    IF FOUND THEN
        RAISE EXCEPTION 'cluster % of segmentation "%" is already named "%"', other, s.name, name
            USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO segment.cluster_names AS n (segmentation, cluster, name)
    VALUES (s.name, name_cluster.cluster, name_cluster.name)
        ON CONFLICT ON CONSTRAINT cluster_names_pkey DO UPDATE SET name = excluded.name;
END
$$;
COMMENT ON FUNCTION segment.name_cluster(integer, text, text) IS
    'Names a cluster of a segmentation (NULL: the default one), or removes its name when name is NULL; the next refresh copies it into the profile''s cluster_name';

-- One row per cluster of a segmentation's latest refresh, for a marketer to
-- name them: size, the centroid and the mean of each feature, the mean RFM
-- figures and lifetime value, and the share of each RFM segment.
CREATE FUNCTION segment.describe_clusters(segmentation text DEFAULT NULL)
    RETURNS TABLE (cluster integer, name text, customers bigint, share double precision,
                   centroid jsonb, mean_features jsonb, mean_recency_days double precision,
                   mean_frequency double precision, mean_monetary double precision,
                   mean_clv double precision, mean_distance double precision, rfm_segments jsonb)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s   segment.segmentations := segment_internal.segmentation_row(segmentation);
    r   segment.refreshes;
    m   segment.kmeans_model;
    means text;
BEGIN
    IF s.clusters IS NULL THEN
        RAISE EXCEPTION 'segmentation "%" has no clusters', s.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Configure it with clusters => k, then refresh it.';
    END IF;
    SELECT * INTO r FROM segment.refreshes AS x WHERE x.id = s.last_refresh;
    IF r.cluster_model IS NULL THEN
        RAISE EXCEPTION 'the latest refresh of segmentation "%" has no clusters', s.name
            USING ERRCODE = 'no_data_found',
                  DETAIL = CASE WHEN r.cluster_note IS NULL THEN 'It has not been refreshed with clusters yet.'
                                ELSE format('Its clusters were not computed: %s.', r.cluster_note) END,
                  HINT = format('Run SELECT segment.refresh(%L);', s.name);
    END IF;
    m := (r.cluster_model::text)::segment.kmeans_model;
    SELECT pg_catalog.string_agg(format('%L, pg_catalog.avg(p.%I)::double precision', f, f), ', ' ORDER BY i) INTO means
      FROM pg_catalog.unnest(s.cluster_features) WITH ORDINALITY AS u(f, i);
    RETURN QUERY EXECUTE format($q$
        WITH per_cluster AS (
            SELECT p.cluster, pg_catalog.count(*) AS n,
                   pg_catalog.jsonb_build_object(%1$s) AS mean_features,
                   pg_catalog.avg(p.recency_days)::double precision AS r,
                   pg_catalog.avg(p.frequency)::double precision AS f,
                   pg_catalog.avg(p.monetary)::double precision AS m,
                   pg_catalog.avg(p.clv) AS clv,
                   pg_catalog.avg(p.cluster_distance) AS d
              FROM segment.%2$I AS p
             WHERE p.cluster IS NOT NULL
             GROUP BY p.cluster
        ), per_segment AS (
            SELECT x.cluster, pg_catalog.jsonb_object_agg(x.rfm_segment, x.share) AS shares
              FROM (SELECT p.cluster, p.rfm_segment,
                           round(pg_catalog.count(*)::numeric
                                 / pg_catalog.sum(pg_catalog.count(*)) OVER (PARTITION BY p.cluster), 3)
                               AS share
                      FROM segment.%2$I AS p
                     WHERE p.cluster IS NOT NULL
                     GROUP BY p.cluster, p.rfm_segment) AS x
             GROUP BY x.cluster
        )
        SELECT c.cluster, cn.name, coalesce(pc.n, 0),
               coalesce(pc.n::double precision / nullif(pg_catalog.sum(pc.n) OVER (), 0), 0),
               (SELECT pg_catalog.jsonb_object_agg(u.f, u.v)
                  FROM ROWS FROM (pg_catalog.unnest(%3$L::text[]), pg_catalog.unnest(c.centroid)) AS u(f, v)),
               pc.mean_features, pc.r, pc.f, pc.m, pc.clv, pc.d, ps.shares
          FROM segment.kmeans_centroids($1) AS c
          LEFT JOIN per_cluster AS pc ON pc.cluster = c.cluster
          LEFT JOIN per_segment AS ps ON ps.cluster = c.cluster
          LEFT JOIN segment.cluster_names AS cn ON cn.segmentation = $2 AND cn.cluster = c.cluster
         ORDER BY c.cluster$q$, means, s.profile, s.cluster_features)
        USING m, s.name;
END
$$;
COMMENT ON FUNCTION segment.describe_clusters(text) IS
    'Each cluster of a segmentation''s latest refresh (NULL: the default one): name, customers, share, centroid and mean of each feature, mean recency, frequency, monetary and CLV, mean distance to the centroid, share of each RFM segment';

-- Chooses the purchase model of a segmentation's lifetime value by a holdout
-- test on its own orders (the kept ones: statuses excluded as configured):
-- each model is fitted on the orders up to calibration_end and predicts the
-- purchases of (calibration_end, holdout_end]; the one with the smallest
-- bucket_mae (segment.clv_holdout_errors()) becomes the segmentation's
-- clv_model, used by its next refreshes and recorded in each refresh's log.
-- Reads the orders with the caller's privileges; only the segmentation's
-- owner (or a role with its privileges) may change it.
CREATE FUNCTION segment.choose_clv_model(calibration_end date, holdout_end date,
                                         segmentation text DEFAULT NULL)
    RETURNS TABLE (model text, customers bigint, total_error double precision,
                   bucket_mae double precision, chosen boolean)
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s    segment.segmentations := segment_internal.segmentation_row(segmentation);
    best text;
BEGIN
    IF NOT pg_catalog.pg_has_role(s.owner, 'USAGE') THEN
        RAISE EXCEPTION 'must have the privileges of role "%" to choose the model of segmentation "%"',
                        s.owner, s.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- The kept orders, as the refreshes read them.
    EXECUTE format('CREATE OR REPLACE TEMP VIEW segment_holdout_orders AS SELECT o.%1$I AS customer_id, o.%2$I AS ordered_at %3$s',
                   s.customer, s.ordered_at,
                   format('FROM %s AS o WHERE o.%I IS NOT NULL AND o.%I IS NOT NULL AND o.%I IS NOT NULL',
                          pg_catalog.to_regclass(s.orders), s.customer, s.ordered_at, s.amount)
                   || CASE WHEN s.status IS NULL THEN ''
                           ELSE format(' AND (o.%1$I IS NULL OR o.%1$I::text <> ALL (%2$L::text[]))',
                                       s.status, s.exclude_status) END);
    CREATE TEMP TABLE IF NOT EXISTS segment_holdout_errors (model text, customers bigint,
                                                            total_error double precision,
                                                            bucket_mae double precision);
    TRUNCATE pg_temp.segment_holdout_errors;
    INSERT INTO pg_temp.segment_holdout_errors
    SELECT e.model, e.customers, e.total_error, e.bucket_mae
      FROM segment.clv_holdout_errors('pg_temp.segment_holdout_orders', 'customer_id', 'ordered_at',
                                      calibration_end, holdout_end,
                                      CASE s.clv_time_unit WHEN 'week' THEN 'week' ELSE 'day' END) AS e;
    DROP VIEW pg_temp.segment_holdout_orders;
    SELECT e.model INTO best FROM pg_temp.segment_holdout_errors AS e
     WHERE e.bucket_mae IS NOT NULL AND (e.model <> 'pareto_nbd' OR s.clv_penalizer = 0)
     ORDER BY e.bucket_mae NULLS LAST, e.model LIMIT 1;
    IF best IS NULL THEN
        RAISE EXCEPTION 'no model could be fitted on the orders of segmentation "%" up to %', s.name, calibration_end
            USING ERRCODE = 'data_exception',
                  HINT = 'Choose a calibration period with repeat purchases.';
    END IF;
    UPDATE segment.segmentations AS x SET clv_model = best WHERE x.name = s.name;
    RETURN QUERY SELECT e.model, e.customers, e.total_error, e.bucket_mae, e.model = best
                   FROM pg_temp.segment_holdout_errors AS e ORDER BY e.bucket_mae NULLS LAST;
END
$$;
COMMENT ON FUNCTION segment.choose_clv_model(date, date, text) IS
    'Chooses a segmentation''s lifetime-value purchase model (BG/NBD, MBG/NBD, Pareto/NBD) by the holdout error on its own orders, sets clv_model, and returns each model''s errors';
