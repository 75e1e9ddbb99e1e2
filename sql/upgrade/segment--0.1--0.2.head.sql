-- segment 0.1 -> 0.2 (docs/upgrading.md: what changed and how to move calls).
\echo Use "ALTER EXTENSION segment UPDATE TO '0.2'" to load this file. \quit

-- The internals move to their own schema (sql/install/00_header.sql says why).
CREATE SCHEMA segment_internal;
GRANT USAGE ON SCHEMA segment_internal TO PUBLIC;

ALTER FUNCTION segment.bgnbd_fit_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.bgnbd_fit_trans(double precision[],double precision,double precision,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.bgnbd_fit_trans(double precision[],double precision,double precision,double precision,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.breaks_combine(double precision[],double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.breaks_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.breaks_trans(double precision[],double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.breaks_trans(double precision[],double precision,integer) SET SCHEMA segment_internal;
ALTER FUNCTION segment.builtin_predicate(text,segment.segmentations,numeric,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.capture_trigger_name(text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.capture_unsupported(regclass) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_clusters(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_clv(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_contact_source(segment.segmentations,segment.contact_sources) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_customers_unique(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_event_source(segment.segmentations,segment.event_sources) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_fixed_breaks(text,double precision[],integer) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_product_source(segment.segmentations,segment.product_sources) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_segmentation(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_source_key(regclass,name,text,text,text,regtype,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_source_time(regclass,name,text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_source_window(interval) SET SCHEMA segment_internal;
ALTER FUNCTION segment.check_sources(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.citus_partition_method(regclass) SET SCHEMA segment_internal;
ALTER FUNCTION segment.cluster_feature_columns(boolean) SET SCHEMA segment_internal;
ALTER FUNCTION segment.cluster_features_sql(segment.segmentations,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.cluster_fit_options(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.cluster_model_name(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.cluster_ready_sql(segment.segmentations,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_fit_combine(double precision[],double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_predictions_sql(segment.segmentations,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_summary_combine(double precision[],double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_summary_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_summary_trans(double precision[],timestamp with time zone,numeric,timestamp with time zone) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_summary_trans(double precision[],timestamp with time zone,numeric,timestamp with time zone,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_summary_trans(double precision[],timestamp with time zone,numeric,timestamp with time zone,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.clv_summary_trans(double precision[],timestamp with time zone,numeric,timestamp with time zone,text,text,segment.time_zone) SET SCHEMA segment_internal;
ALTER FUNCTION segment.column_type(regclass,name) SET SCHEMA segment_internal;
ALTER FUNCTION segment.contacts_combine(internal,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.contacts_deserial(bytea,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.contacts_final(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.contacts_serial(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.contacts_trans(internal,timestamp with time zone,boolean,timestamp with time zone,interval) SET SCHEMA segment_internal;
ALTER FUNCTION segment.create_profile(name,regtype,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.days_since_sql(segment.segmentations,timestamp with time zone,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.drop_capture(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.drop_refresh_tables() SET SCHEMA segment_internal;
ALTER FUNCTION segment.duplicate_key(regclass,name) SET SCHEMA segment_internal;
ALTER FUNCTION segment.events_combine(internal,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.events_deserial(bytea,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.events_final(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.events_serial(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.events_trans(internal,text,timestamp with time zone,text,timestamp with time zone,interval) SET SCHEMA segment_internal;
ALTER FUNCTION segment.events_trans(internal,text,timestamp with time zone,text,timestamp with time zone,interval,jsonb) SET SCHEMA segment_internal;
ALTER FUNCTION segment.figures_sql(segment.segmentations,timestamp with time zone,text,text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.finite_outputs_sql(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.fixed_breaks_valid(double precision[],integer) SET SCHEMA segment_internal;
ALTER FUNCTION segment.gamma_gamma_fit_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.gamma_gamma_fit_trans(double precision[],double precision,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.gamma_gamma_fit_trans(double precision[],double precision,double precision,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.has_customer_index(regclass,name) SET SCHEMA segment_internal;
ALTER FUNCTION segment.html_escape(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.impulse_columns_sql(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.incremental_blocker(segment.segmentations,timestamp with time zone,text[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.is_citus_table(regclass) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kept_orders_sql(segment.segmentations,timestamp with time zone) SET SCHEMA segment_internal;
ALTER FUNCTION segment.key_narrows(regtype,regtype) SET SCHEMA segment_internal;
ALTER FUNCTION segment.keys_compatible(regtype,regtype) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_choose_k_run(text,integer,jsonb,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_combine(double precision[],double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_describe_run(segment.kmeans_model,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_finish(segment.kmeans_model,double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_fit_run(text,text,integer,jsonb,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_fit_step_run(text,integer,jsonb,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_model_in(cstring) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_model_out(segment.kmeans_model) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_moments_combine(double precision[],double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_moments_trans(double precision[],double precision[],segment.kmeans_model) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_scores_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_shift(segment.kmeans_model,segment.kmeans_model) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_source(regclass,name) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_start(integer,integer,jsonb,double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_step_combine(double precision[],double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_step_trans(double precision[],double precision[],segment.kmeans_model) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_train_run(text,integer,jsonb,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_trans(double precision[],double precision[],integer) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_trans(double precision[],double precision[],integer,jsonb) SET SCHEMA segment_internal;
ALTER FUNCTION segment.kmeans_update(segment.kmeans_model,double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.later_orders_sql(segment.segmentations,timestamp with time zone,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.mbgnbd_fit_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.mbgnbd_fit_trans(double precision[],double precision,double precision,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.mbgnbd_fit_trans(double precision[],double precision,double precision,double precision,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.moved_cuts_sql(timestamp with time zone,boolean,double precision[],double precision[],double precision[],double precision[],double precision[],double precision[],numeric,numeric) SET SCHEMA segment_internal;
ALTER FUNCTION segment.narrow_blocker(segment.segmentations,text,text,regclass) SET SCHEMA segment_internal;
ALTER FUNCTION segment.order_lines_combine(internal,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.order_lines_deserial(bytea,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.order_lines_final(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.order_lines_serial(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.order_lines_trans(internal,timestamp with time zone,timestamp with time zone,text,integer) SET SCHEMA segment_internal;
ALTER FUNCTION segment.owner_rows_check() SET SCHEMA segment_internal;
ALTER FUNCTION segment.pareto_nbd_fit_final(double precision[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.pareto_nbd_fit_trans(double precision[],double precision,double precision,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.profile_columns_sql(text,name,name) SET SCHEMA segment_internal;
ALTER FUNCTION segment.query_reads_only_row(text,regclass) SET SCHEMA segment_internal;
ALTER FUNCTION segment.reads_as_float8(regtype) SET SCHEMA segment_internal;
ALTER FUNCTION segment.reads_customer(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.recompute_by_customer_sql(segment.segmentations,timestamp with time zone,text,text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_fit_clusters(segment.segmentations,bigint,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_fit_clv(segment.segmentations,bigint,bigint) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_history(segment.segmentations,bigint,timestamp with time zone,regclass,boolean) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_impulse_stage(segment.segmentations,timestamp with time zone,text[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_lock_key(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_rules(segment.segmentations,numeric,double precision,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_run(text,timestamp with time zone,boolean,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_source_counts(segment.segmentations,text[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_source_stages(segment.segmentations,timestamp with time zone,text[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_stage(segment.segmentations,timestamp with time zone,text,text,text,text[],text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_table(text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.refresh_write_profile(regclass,boolean,bigint,bigint) SET SCHEMA segment_internal;
ALTER FUNCTION segment.report_bars(text,text,text[],double precision[],text[],text[]) SET SCHEMA segment_internal;
ALTER FUNCTION segment.report_css() SET SCHEMA segment_internal;
ALTER FUNCTION segment.report_label(text,integer) SET SCHEMA segment_internal;
ALTER FUNCTION segment.report_number(numeric,integer) SET SCHEMA segment_internal;
ALTER FUNCTION segment.report_shade(double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.require_pg_cron(text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.restock_combine(internal,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.restock_deserial(bytea,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.restock_final(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.restock_serial(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.restock_trans(internal,timestamp with time zone,double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_combine(internal,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_deserial(bytea,internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_final(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_segment_map_remove_default() SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_segment_map_replace() SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_segment_map_track() SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_serial(internal) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_trans(internal,timestamp with time zone,numeric) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rfm_trans(internal,timestamp with time zone,numeric,segment.time_zone) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rule_input_query(segment.segmentations,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rule_lateral_sql(text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rule_scope_sql(segment.segmentations,text,boolean) SET SCHEMA segment_internal;
ALTER FUNCTION segment.rules_check() SET SCHEMA segment_internal;
ALTER FUNCTION segment.run_as_owner(text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.run_source_statement(segment.segmentations,text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.schedule_role(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.score_key(segment.segmentations,timestamp with time zone) SET SCHEMA segment_internal;
ALTER FUNCTION segment.scored_query(segment.segmentations,timestamp with time zone,timestamp with time zone,double precision[],double precision[],double precision[],boolean,text[],text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.segmentation_row(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.segmentations_owner_check() SET SCHEMA segment_internal;
ALTER FUNCTION segment.setup_capture(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.short_float(double precision) SET SCHEMA segment_internal;
ALTER FUNCTION segment.source_column(regclass,name,text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.source_columns_sql(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.source_configure_function(text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.source_configured(text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.source_hint(text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.source_relation(text,text,text,text) SET SCHEMA segment_internal;
ALTER FUNCTION segment.stage_indexes(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.stage_key(segment.segmentations) SET SCHEMA segment_internal;
ALTER FUNCTION segment.sync_directory() SET SCHEMA segment_internal;
ALTER FUNCTION segment.sync_directory_trigger() SET SCHEMA segment_internal;
ALTER FUNCTION segment.time_zone_in(cstring) SET SCHEMA segment_internal;
ALTER FUNCTION segment.time_zone_out(segment.time_zone) SET SCHEMA segment_internal;

-- One naming scheme: functions that create, read or drop what the extension
-- stores by name are verb_object.
ALTER FUNCTION segment.kmeans_fit(text, regclass, name, integer, jsonb) RENAME TO create_kmeans_model;
ALTER FUNCTION segment.kmeans_fit(text, text, integer, jsonb) RENAME TO create_kmeans_model;
ALTER FUNCTION segment_internal.kmeans_fit_run(text, text, integer, jsonb, text) RENAME TO create_kmeans_model_run;
ALTER FUNCTION segment.kmeans_get(text) RENAME TO get_kmeans_model;
ALTER FUNCTION segment.kmeans_drop(text) RENAME TO drop_kmeans_model;

-- Functions whose parameters changed (segmentation right after the required
-- arguments, lookback for the reserved word window, the sources' configure
-- functions renamed): dropped here, created again below.  A view of the
-- user's that calls one of them stops the update; it names the view.
DROP FUNCTION segment.configure_events(regclass, name, name, name, name, jsonb, interval, text,
                                       integer, integer, integer, integer, double precision, integer);
DROP FUNCTION segment.configure_contacts(regclass, name, name, name, double precision, interval, text, integer);
DROP FUNCTION segment.configure_products(regclass, name, name, name, regclass, name, name, name, name,
                                         integer, text, double precision, integer, integer, integer, name);
DROP FUNCTION segment.enable_rule(text, boolean, text);
DROP FUNCTION segment.transitions(bigint, bigint, text);
DROP FUNCTION segment.schedule(text, text);
DROP FUNCTION segment.set_owner(text, regrole);
DROP FUNCTION segment_internal.refresh_source_counts(segment.segmentations, text[]);
DROP FUNCTION segment_internal.recompute_by_customer_sql(segment.segmentations, timestamptz, text, text, text, text);
DROP AGGREGATE segment.events(text, timestamptz, text, timestamptz, interval);
DROP AGGREGATE segment.events(text, timestamptz, text, timestamptz, interval, jsonb);
DROP AGGREGATE segment.contacts(timestamptz, boolean, timestamptz, interval);
-- The sources' pass of a refresh became refresh_product_stage() and
-- refresh_impulse_stage(s, as_of, sources, mode, store).
DROP FUNCTION segment_internal.refresh_source_stages(segment.segmentations, timestamp with time zone, text[]);
DROP FUNCTION segment_internal.refresh_impulse_stage(segment.segmentations, timestamp with time zone, text[]);
-- refresh_fit_clv() takes the models refresh_figures() fitted, if it did.
DROP FUNCTION segment_internal.refresh_fit_clv(segment.segmentations, bigint, bigint);
-- refresh_rules() is gone: refresh_run() runs segment_internal.rules_query()
-- inside the statement that writes the profile (or into a table for Citus).
DROP FUNCTION segment_internal.refresh_rules(segment.segmentations, numeric, double precision, text);
-- refresh_stage() returns where the figures are (a full refresh may write
-- them straight into the stage), and scored_query() reads them from there.
DROP FUNCTION segment_internal.refresh_stage(segment.segmentations, timestamptz, text, text, text, text[], text);
DROP FUNCTION segment_internal.scored_query(segment.segmentations, timestamptz, timestamptz, double precision[],
                                            double precision[], double precision[], boolean, text[], text);

-- The sources' window column is lookback, like the parameter.
ALTER TABLE segment.event_sources RENAME COLUMN "window" TO lookback;
ALTER TABLE segment.event_sources RENAME CONSTRAINT event_sources_window_check TO event_sources_lookback_check;
ALTER TABLE segment.contact_sources RENAME COLUMN "window" TO lookback;
ALTER TABLE segment.contact_sources RENAME CONSTRAINT contact_sources_window_check TO contact_sources_lookback_check;
-- PostgreSQL 18 names NOT NULL constraints after their column too.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['event_sources', 'contact_sources'] LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_constraint AS c
                    WHERE c.conrelid = pg_catalog.format('segment.%I', t)::regclass
                      AND c.conname = t || '_window_not_null') THEN
            EXECUTE pg_catalog.format('ALTER TABLE segment.%I RENAME CONSTRAINT %I TO %I',
                                      t, t || '_window_not_null', t || '_lookback_not_null');
        END IF;
    END LOOP;
END
$$;

-- Refreshes keep the ranks of their cut points (incremental refreshes move
-- the cut points by the figures that changed).
ALTER TABLE segment.refreshes ADD COLUMN cut_ranks double precision[];

-- The result type of the one pass over the order lines (42_products.sql).
CREATE TYPE segment_internal.line_stages_result AS (
    l               segment.order_line_summary,
    next_restock    date,
    restock_product text
);
COMMENT ON TYPE segment_internal.line_stages_result IS
    'Result of the line_stages aggregate: the order_lines summary of a customer''s lines, and the earliest expected re-stock date still to come and its product (internal)';

-- Incremental refreshes with lifetime value: the stage of a segmentation
-- with it keeps its summary too (setup_capture()); its next refresh is
-- full (the stage key changed), the ones after incremental.
DO $$
DECLARE
    seg text;
BEGIN
    FOR seg IN SELECT x.name FROM segment.segmentations AS x
                WHERE x.clv AND pg_catalog.to_regclass(pg_catalog.format('segment.%I', 'stage_' || x.name)) IS NOT NULL
    LOOP
        EXECUTE pg_catalog.format('ALTER TABLE segment.%I ADD COLUMN IF NOT EXISTS clv_x integer,
                                                   ADD COLUMN IF NOT EXISTS clv_t_x double precision,
                                                   ADD COLUMN IF NOT EXISTS clv_first double precision,
                                                   ADD COLUMN IF NOT EXISTS clv_mean_value double precision',
                                  'stage_' || seg);
    END LOOP;
END
$$;
