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

-- Every function, aggregate, view, comment and privilege of 0.2, as CREATE
-- OR REPLACE: the same definitions as sql/install/ (objects of 0.1 keep their
-- OIDs, so the views, triggers and aggregates that use them hold).

GRANT USAGE ON SCHEMA segment_internal TO PUBLIC;

COMMENT ON SCHEMA segment_internal IS
    'Internals of the segment extension (aggregate support functions, refresh steps, checks); not an API';

CREATE OR REPLACE FUNCTION segment_internal.time_zone_in(cstring) RETURNS segment.time_zone
    AS 'MODULE_PATHNAME', 'segment_time_zone_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.time_zone_in(cstring) IS
    'Input function of type segment.time_zone: checks that the name is a time zone';

CREATE OR REPLACE FUNCTION segment_internal.time_zone_out(segment.time_zone) RETURNS cstring
    AS 'MODULE_PATHNAME', 'segment_time_zone_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.time_zone_out(segment.time_zone) IS
    'Output function of type segment.time_zone';

COMMENT ON TYPE segment.time_zone IS
    'A time zone name as SET TimeZone takes it (''Europe/Berlin'', ''UTC'', ''<+03>-03''), checked on input';

COMMENT ON TYPE segment.rfm_summary IS
    'Result of the rfm aggregate: first and last order, number of orders, distinct purchase days, total and mean amount, mean days between purchase days';

CREATE OR REPLACE FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric) IS
    'Transition function of the rfm aggregate';

CREATE OR REPLACE FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric, segment.time_zone) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rfm_trans(internal, timestamptz, numeric, segment.time_zone) IS
    'Transition function of the rfm aggregate with an explicit time zone';

CREATE OR REPLACE FUNCTION segment_internal.rfm_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rfm_combine(internal, internal) IS
    'Combine function of the rfm aggregate';

CREATE OR REPLACE FUNCTION segment_internal.rfm_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_rfm_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rfm_serial(internal) IS
    'Serialization function of the rfm aggregate';

CREATE OR REPLACE FUNCTION segment_internal.rfm_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_rfm_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rfm_deserial(bytea, internal) IS
    'Deserialization function of the rfm aggregate';

CREATE OR REPLACE FUNCTION segment_internal.rfm_final(internal) RETURNS segment.rfm_summary
    AS 'MODULE_PATHNAME', 'segment_rfm_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rfm_final(internal) IS
    'Final function of the rfm aggregate';

CREATE OR REPLACE AGGREGATE segment.rfm(ordered_at timestamptz, amount numeric) (
    SFUNC = segment_internal.rfm_trans,
    STYPE = internal,
    SSPACE = 128,
    FINALFUNC = segment_internal.rfm_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.rfm_combine,
    SERIALFUNC = segment_internal.rfm_serial,
    DESERIALFUNC = segment_internal.rfm_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.rfm(timestamptz, numeric) IS
    'Recency, frequency and monetary figures of one customer''s orders (rows with a NULL timestamp or amount are skipped)';

CREATE OR REPLACE AGGREGATE segment.rfm(ordered_at timestamptz, amount numeric, time_zone segment.time_zone) (
    SFUNC = segment_internal.rfm_trans,
    STYPE = internal,
    SSPACE = 128,
    FINALFUNC = segment_internal.rfm_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.rfm_combine,
    SERIALFUNC = segment_internal.rfm_serial,
    DESERIALFUNC = segment_internal.rfm_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.rfm(timestamptz, numeric, segment.time_zone) IS
    'The rfm aggregate with purchase days counted in the given time zone (a name as SET TimeZone takes, e.g. current_setting(''TimeZone'')::segment.time_zone)';

CREATE OR REPLACE FUNCTION segment_internal.rfm_append(stored segment.rfm_summary, appended segment.rfm_summary,
                                            same_day boolean)
    RETURNS segment.rfm_summary
    AS 'MODULE_PATHNAME', 'segment_rfm_append' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rfm_append(segment.rfm_summary, segment.rfm_summary, boolean) IS
    'The rfm_summary of the orders of stored and appended, appended''s on stored''s last day (same_day) or later days (internal)';

CREATE OR REPLACE FUNCTION segment_internal.breaks_trans(double precision[], double precision, integer)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.breaks_trans(double precision[], double precision, integer) IS
    'Transition function of the breaks aggregate';

CREATE OR REPLACE FUNCTION segment_internal.breaks_trans(double precision[], double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.breaks_trans(double precision[], double precision) IS
    'Transition function of the breaks aggregate (5 buckets)';

CREATE OR REPLACE FUNCTION segment_internal.breaks_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.breaks_combine(double precision[], double precision[]) IS
    'Combine function of the breaks aggregate';

CREATE OR REPLACE FUNCTION segment_internal.breaks_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.breaks_final(double precision[]) IS
    'Final function of the breaks aggregate';

CREATE OR REPLACE FUNCTION segment_internal.breaks_ranked_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_ranked_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.breaks_ranked_final(double precision[]) IS
    'Final function of the breaks_ranked aggregate (internal)';

CREATE OR REPLACE AGGREGATE segment_internal.breaks_ranked(value double precision, buckets integer) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_ranked_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment_internal.breaks_ranked(double precision, integer) IS
    'The buckets-1 cut points of breaks(), then the number of values below each, then the number at or below each (internal)';

CREATE OR REPLACE FUNCTION segment_internal.rank_at_trans(double precision[], double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_rank_at_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rank_at_trans(double precision[], double precision, double precision) IS
    'Transition function of the rank_at aggregate (internal)';

CREATE OR REPLACE FUNCTION segment_internal.rank_at_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_rank_at_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rank_at_combine(double precision[], double precision[]) IS
    'Combine function of the rank_at aggregate (internal)';

CREATE OR REPLACE FUNCTION segment_internal.rank_at_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_rank_at_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.rank_at_final(double precision[]) IS
    'Final function of the rank_at aggregate (internal)';

CREATE OR REPLACE AGGREGATE segment_internal.rank_at(value double precision, fraction double precision) (
    SFUNC = segment_internal.rank_at_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.rank_at_final,
    COMBINEFUNC = segment_internal.rank_at_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment_internal.rank_at(double precision, double precision) IS
    'percentile_disc(fraction) of the values, found by selection, then the number of values below it, at or below it, all values and its position (internal)';

CREATE OR REPLACE FUNCTION segment_internal.breaks_histogram_final(double precision[]) RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_breaks_histogram_final' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.breaks_histogram_final(double precision[]) IS
    'Final function of the breaks_histogram aggregate (internal)';

CREATE OR REPLACE AGGREGATE segment_internal.breaks_histogram(value double precision, buckets integer) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_histogram_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment_internal.breaks_histogram(double precision, integer) IS
    'The buckets-1 cut points of breaks(), then the distinct values ascending, then how many times each occurs (internal)';

CREATE OR REPLACE AGGREGATE segment.breaks(value double precision, buckets integer) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.breaks(double precision, integer) IS
    'The buckets-1 cut points percentile_disc(i/buckets) of the values, for score(); buckets 2..10';

CREATE OR REPLACE AGGREGATE segment.breaks(value double precision) (
    SFUNC = segment_internal.breaks_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.breaks_final,
    COMBINEFUNC = segment_internal.breaks_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.breaks(double precision) IS
    'The 4 quintile cut points percentile_disc(i/5) of the values, for score()';

CREATE OR REPLACE FUNCTION segment.score(value double precision, breaks double precision[],
                              higher_is_better boolean DEFAULT true)
    RETURNS integer
    AS 'MODULE_PATHNAME', 'segment_score' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.score(double precision, double precision[], boolean) IS
    'Score 1..n of a value against n-1 ascending breaks: 1 + number of breaks below the value (reversed when higher_is_better is false); equal values get equal scores';

COMMENT ON TABLE segment.rfm_segment_map IS
    'Named RFM segments: a score triple (r, f, m) belongs to the first row, by priority, whose ranges hold it. Editable; saved by pg_dump';

CREATE OR REPLACE FUNCTION segment.rfm_segment_map_defaults() RETURNS SETOF segment.rfm_segment_map
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT v.priority, v.segment, v.r_min, v.r_max, v.f_min, v.f_max, v.m_min, v.m_max
      FROM (VALUES
        ( 10, 'Champions',           4, 5, 4, 5, 4, 5),
        ( 20, 'Loyal Customers',     4, 5, 4, 5, 1, 3),
        ( 21, 'Loyal Customers',     3, 3, 4, 5, 1, 5),
        ( 30, 'Potential Loyalists', 4, 5, 2, 3, 1, 5),
        ( 40, 'New Customers',       5, 5, 1, 1, 1, 5),
        ( 50, 'Promising',           4, 4, 1, 1, 1, 5),
        ( 60, 'Need Attention',      3, 3, 2, 3, 1, 5),
        ( 70, 'About to Sleep',      3, 3, 1, 1, 1, 5),
        ( 80, 'Can''t Lose Them',    1, 2, 4, 5, 4, 5),
        ( 90, 'At Risk',             1, 2, 3, 5, 1, 3),
        ( 91, 'At Risk',             1, 2, 3, 3, 4, 5),
        (100, 'Hibernating',         2, 2, 1, 2, 1, 5),
        (110, 'Lost',                1, 1, 1, 2, 1, 5))
           AS v(priority, segment, r_min, r_max, f_min, f_max, m_min, m_max)
$$;

COMMENT ON FUNCTION segment.rfm_segment_map_defaults() IS
    'The default rows of segment.rfm_segment_map, as CREATE EXTENSION inserts them';

COMMENT ON TABLE segment.rfm_segment_map_removed IS
    'Priorities of the default rfm_segment_map rows that the map no longer has (kept by triggers, saved by pg_dump so that a restore removes those rows again; inserting one removes the default row)';

CREATE OR REPLACE FUNCTION segment_internal.rfm_segment_map_track() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    stale integer[];
BEGIN
    -- The listed priorities the map has again, or that are no default.
    -- Statement triggers fire for no rows too: only a DELETE that deletes
    -- something, or the triggers would call each other for ever.
    SELECT pg_catalog.array_agg(x.priority) INTO stale
      FROM segment.rfm_segment_map_removed AS x
     WHERE EXISTS (SELECT FROM segment.rfm_segment_map AS m WHERE m.priority = x.priority)
        OR NOT EXISTS (SELECT FROM segment.rfm_segment_map_defaults() AS d WHERE d.priority = x.priority);
    IF stale IS NOT NULL THEN
        DELETE FROM segment.rfm_segment_map_removed AS x WHERE x.priority = ANY (stale);
    END IF;
    INSERT INTO segment.rfm_segment_map_removed AS x (priority)
    SELECT d.priority FROM segment.rfm_segment_map_defaults() AS d
     WHERE NOT EXISTS (SELECT FROM segment.rfm_segment_map AS m WHERE m.priority = d.priority)
        ON CONFLICT (priority) DO NOTHING;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION segment_internal.rfm_segment_map_track() IS
    'Trigger: records in rfm_segment_map_removed the default priorities that rfm_segment_map does not have';

CREATE OR REPLACE FUNCTION segment_internal.rfm_segment_map_remove_default() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF EXISTS (SELECT FROM segment.rfm_segment_map AS m, segment.rfm_segment_map_defaults() AS d
                WHERE m.priority = NEW.priority AND d.priority = NEW.priority AND m = d) THEN
        DELETE FROM segment.rfm_segment_map AS m WHERE m.priority = NEW.priority;
    END IF;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION segment_internal.rfm_segment_map_remove_default() IS
    'Trigger: a priority inserted into rfm_segment_map_removed deletes the default rfm_segment_map row of that priority';

CREATE OR REPLACE FUNCTION segment_internal.rfm_segment_map_replace() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    DELETE FROM segment.rfm_segment_map WHERE priority = NEW.priority;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION segment_internal.rfm_segment_map_replace() IS
    'Trigger: an inserted rfm_segment_map row replaces the row of the same priority';

CREATE OR REPLACE FUNCTION segment.rfm_segment(r integer, f integer, m integer) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_rfm_segment' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.rfm_segment(integer, integer, integer) IS
    'Named RFM segment of a score triple, from segment.rfm_segment_map (NULL when no row holds it)';

CREATE OR REPLACE FUNCTION segment.rfm_segment_map_check(buckets integer DEFAULT 5)
    RETURNS TABLE (r integer, f integer, m integer, segments text[])
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
        SELECT r.r, f.f, m.m,
               pg_catalog.array_agg(map.segment ORDER BY map.priority)
                   FILTER (WHERE map.segment IS NOT NULL)
          FROM pg_catalog.generate_series(1, buckets) AS r(r)
         CROSS JOIN pg_catalog.generate_series(1, buckets) AS f(f)
         CROSS JOIN pg_catalog.generate_series(1, buckets) AS m(m)
          LEFT JOIN segment.rfm_segment_map AS map
                 ON r.r BETWEEN map.r_min AND map.r_max
                AND f.f BETWEEN map.f_min AND map.f_max
                AND m.m BETWEEN map.m_min AND map.m_max
         GROUP BY r.r, f.f, m.m
        HAVING pg_catalog.count(map.segment) <> 1
         ORDER BY r.r, f.f, m.m
$$;

COMMENT ON FUNCTION segment.rfm_segment_map_check(integer) IS
    'Score triples that rfm_segment_map leaves unmapped or maps more than once (none for the default map)';

CREATE OR REPLACE FUNCTION segment_internal.column_type(rel regclass, col name) RETURNS regtype
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    typ regtype;
BEGIN
    SELECT a.atttypid INTO typ
      FROM pg_attribute AS a
     WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, rel
            USING ERRCODE = 'undefined_column';
    END IF;
    RETURN typ;
END
$$;

COMMENT ON FUNCTION segment_internal.column_type(regclass, name) IS
    'Type of a column of a relation; raises undefined_column when there is none';

CREATE OR REPLACE FUNCTION segment.rfm_figures(
    orders regclass,
    customer name,
    ordered_at name,
    amount name,
    as_of timestamptz DEFAULT pg_catalog.now())
    RETURNS TABLE (
        customer_id text,
        first_order timestamptz,
        last_order  timestamptz,
        frequency   bigint,
        monetary    numeric)
    AS 'MODULE_PATHNAME', 'segment_rfm_figures' LANGUAGE C STABLE STRICT PARALLEL SAFE
    ROWS 100000;

COMMENT ON FUNCTION segment.rfm_figures(regclass, name, name, name, timestamptz) IS
    'First and last order, number of orders and total amount of every customer of an orders relation, as of a time (orders after as_of and rows with a NULL key, time or amount are ignored)';

CREATE OR REPLACE FUNCTION segment.rfm_scores(
    orders regclass,
    customer name,
    ordered_at name,
    amount name,
    as_of timestamptz DEFAULT pg_catalog.now(),
    buckets integer DEFAULT 5,
    recency text DEFAULT 'calendar')
    RETURNS TABLE (
        customer_id  text,
        first_order  timestamptz,
        last_order   timestamptz,
        recency_days integer,
        frequency    bigint,
        monetary     numeric,
        r            integer,
        f            integer,
        m            integer,
        rfm_code     text,
        segment      text)
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    ts_type  regtype;
    amt_type regtype;
BEGIN
    IF orders IS NULL OR customer IS NULL OR ordered_at IS NULL OR amount IS NULL THEN
        RAISE EXCEPTION 'orders, customer, ordered_at and amount must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF as_of IS NULL OR NOT isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite timestamp'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to score as of now().';
    END IF;
    IF buckets IS NULL OR buckets NOT BETWEEN 2 AND 10 THEN
        RAISE EXCEPTION 'number of score buckets must be between 2 and 10'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got %s.', coalesce(buckets::text, 'NULL'));
    END IF;

    -- calendar: days between the calendar dates (session TimeZone) of the
    -- last order and as_of; elapsed: whole 24-hour periods between them (what
    -- pandas' (as_of - last).days gives), a day less when the last order's
    -- time of day is later than as_of's
    IF recency IS NULL OR recency NOT IN ('calendar', 'elapsed') THEN
        RAISE EXCEPTION 'invalid recency "%"', coalesce(recency, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''calendar'' (calendar days, the default) or ''elapsed'' (24-hour periods).';
    END IF;

    PERFORM segment_internal.column_type(orders, customer);
    ts_type := segment_internal.column_type(orders, ordered_at);
    IF ts_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a timestamp',
                        ordered_at, orders, ts_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a timestamptz, timestamp or date column, or a view that casts it.';
    END IF;
    amt_type := segment_internal.column_type(orders, amount);
    IF amt_type <> 'money'::regtype AND
       (SELECT t.typcategory FROM pg_type AS t WHERE t.oid = amt_type) <> 'N' THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a number',
                        amount, orders, amt_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a numeric, integer or floating-point column, or a view that casts it.';
    END IF;

    RETURN QUERY EXECUTE $q$
        WITH figures AS MATERIALIZED (
            SELECT p.customer_id, p.first_order, p.last_order,
                   CASE WHEN $7 THEN pg_catalog.floor(pg_catalog.date_part('epoch', $1 - p.last_order)
                                                      / 86400)::integer
                        ELSE $1::date - (p.last_order)::date END AS recency_days,
                   p.frequency, p.monetary,
                   p.monetary::double precision AS monetary_f   -- cast once, not twice
              FROM segment.rfm_figures($3, $4, $5, $6, $1) AS p
        ), cuts AS (
            SELECT segment.breaks(x.recency_days, $2) AS rb,
                   segment.breaks(x.frequency, $2) AS fb,
                   segment.breaks(x.monetary_f, $2) AS mb
              FROM figures AS x
        )
        SELECT x.customer_id, x.first_order, x.last_order, x.recency_days,
               x.frequency, x.monetary, sc.r, sc.f, sc.m,
               sc.r::text || sc.f::text || sc.m::text,
               segment.rfm_segment(sc.r, sc.f, sc.m)
          FROM figures AS x
         CROSS JOIN cuts AS c
         CROSS JOIN LATERAL (
               SELECT segment.score(x.recency_days, c.rb, false) AS r,
                      segment.score(x.frequency, c.fb) AS f,
                      segment.score(x.monetary_f, c.mb) AS m) AS sc
        $q$
        USING as_of, buckets, orders, customer, ordered_at, amount, recency = 'elapsed';
END
$$;

COMMENT ON FUNCTION segment.rfm_scores(regclass, name, name, name, timestamptz, integer, text) IS
    'RFM figures, scores (1..buckets), code and named segment of every customer of an orders relation, as of a time (orders after as_of are ignored); recency in calendar days of the session''s TimeZone (recency => ''calendar'', the default) or in elapsed 24-hour periods (''elapsed'')';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_model_in(cstring) RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_model_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_model_in(cstring) IS
    'Input function of kmeans_model: parses and validates the JSON text form';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_model_out(segment.kmeans_model) RETURNS cstring
    AS 'MODULE_PATHNAME', 'segment_kmeans_model_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_model_out(segment.kmeans_model) IS
    'Output function of kmeans_model: a JSON object (castable to jsonb via text)';

COMMENT ON TYPE segment.kmeans_model IS
    'A fitted k-means model: centroids, feature transform (log1p, z-score), inertia, iterations, restarts, seed; text form is JSON';

CREATE OR REPLACE FUNCTION segment.kmeans_assign(model segment.kmeans_model, features double precision[])
    RETURNS integer
    AS 'MODULE_PATHNAME', 'segment_kmeans_assign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.kmeans_assign(segment.kmeans_model, double precision[]) IS
    'Cluster 1..k of the centroid nearest to the features, after the model''s transform (lowest number on ties)';

CREATE OR REPLACE FUNCTION segment.kmeans_distance(model segment.kmeans_model, features double precision[])
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_kmeans_distance' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.kmeans_distance(segment.kmeans_model, double precision[]) IS
    'Euclidean distance from the features to the nearest centroid, in the model''s transformed space';

CREATE OR REPLACE FUNCTION segment.kmeans_centroids(model segment.kmeans_model)
    RETURNS TABLE (cluster integer, size bigint, centroid double precision[],
                   scaled_centroid double precision[])
    AS 'MODULE_PATHNAME', 'segment_kmeans_centroids' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    ROWS 8;

COMMENT ON FUNCTION segment.kmeans_centroids(segment.kmeans_model) IS
    'One row per cluster: number, size at fit time, centroid in raw feature units and in the model''s transformed space';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer, jsonb)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer, jsonb) IS
    'Transition function of the kmeans and kmeans_k_scores aggregates';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_trans(double precision[], double precision[], integer) IS
    'Transition function of the kmeans and kmeans_k_scores aggregates (default options)';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_combine(double precision[], double precision[]) IS
    'Combine function of the kmeans and kmeans_k_scores aggregates';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_final(double precision[]) RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_final(double precision[]) IS
    'Final function of the kmeans aggregate: runs the fit';

CREATE OR REPLACE AGGREGATE segment.kmeans(features double precision[], k integer, options jsonb) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.kmeans(double precision[], integer, jsonb) IS
    'Fit k-means (k-means++ restarts, Hamerly or Lloyd) on the feature vectors in memory; options: seed, n_init, max_iter, tol, algorithm, standardize, log1p, init';

CREATE OR REPLACE AGGREGATE segment.kmeans(features double precision[], k integer) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.kmeans(double precision[], integer) IS
    'Fit k-means on the feature vectors in memory with default options (seed 0, 10 restarts, no transform)';

COMMENT ON TYPE segment.kmeans_k_score IS
    'Scores of one k when choosing k: inertia (elbow), silhouette on a sample, simplified silhouette on all points, and the model';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_scores_final(double precision[]) RETURNS segment.kmeans_k_score[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_scores_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_scores_final(double precision[]) IS
    'Final function of the kmeans_k_scores aggregate: fits and scores k = 1..k_max';

CREATE OR REPLACE AGGREGATE segment.kmeans_k_scores(features double precision[], k_max integer, options jsonb) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_scores_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.kmeans_k_scores(double precision[], integer, jsonb) IS
    'Fit k = 1..k_max and score each: inertia, silhouette on a sample (option silhouette_sample, default 1000), simplified silhouette on all';

CREATE OR REPLACE AGGREGATE segment.kmeans_k_scores(features double precision[], k_max integer) (
    SFUNC = segment_internal.kmeans_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.kmeans_scores_final,
    COMBINEFUNC = segment_internal.kmeans_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.kmeans_k_scores(double precision[], integer) IS
    'Fit k = 1..k_max with default options and score each: inertia, silhouette, simplified silhouette';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_moments_trans(double precision[], double precision[],
                                             segment.kmeans_model)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_moments_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_moments_trans(double precision[], double precision[], segment.kmeans_model) IS
    'Transition function of the kmeans_moments aggregate';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_moments_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_moments_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_moments_combine(double precision[], double precision[]) IS
    'Combine function of the kmeans_moments aggregate';

CREATE OR REPLACE AGGREGATE segment.kmeans_moments(features double precision[], model segment.kmeans_model) (
    SFUNC = segment_internal.kmeans_moments_trans,
    STYPE = double precision[],
    COMBINEFUNC = segment_internal.kmeans_moments_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.kmeans_moments(double precision[], segment.kmeans_model) IS
    'Count, mean and M2 of each feature after the model''s log1p, as a float8[] state: [tag, dim, n, mean..., m2...]';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_step_trans(double precision[], double precision[],
                                          segment.kmeans_model)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_step_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_step_trans(double precision[], double precision[], segment.kmeans_model) IS
    'Transition function of the kmeans_step aggregate';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_step_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_kmeans_step_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_step_combine(double precision[], double precision[]) IS
    'Combine function of the kmeans_step aggregate';

CREATE OR REPLACE AGGREGATE segment.kmeans_step(features double precision[], model segment.kmeans_model) (
    SFUNC = segment_internal.kmeans_step_trans,
    STYPE = double precision[],
    COMBINEFUNC = segment_internal.kmeans_step_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.kmeans_step(double precision[], segment.kmeans_model) IS
    'One k-means iteration''s partial result against the model''s centroids: per cluster count and sum, inertia, farthest points; float8[] state for partial pushdown';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_start(k integer, dim integer, options jsonb,
                                     moments double precision[])
    RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_start' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_start(integer, integer, jsonb, double precision[]) IS
    'First model of the step driver: transform from the options and kmeans_moments, initial centroids from option init (raw units)';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_update(model segment.kmeans_model, step double precision[])
    RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_update' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_update(segment.kmeans_model, double precision[]) IS
    'Next model of Lloyd''s iteration from a kmeans_step result: new centroids, empty clusters moved to the farthest points';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_shift(a segment.kmeans_model, b segment.kmeans_model)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_kmeans_shift' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_shift(segment.kmeans_model, segment.kmeans_model) IS
    'Sum of squared distances between the matching centroids of two models (the convergence measure)';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_finish(model segment.kmeans_model, step double precision[])
    RETURNS segment.kmeans_model
    AS 'MODULE_PATHNAME', 'segment_kmeans_finish' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.kmeans_finish(segment.kmeans_model, double precision[]) IS
    'The model with inertia and cluster sizes from a kmeans_step computed with its own centroids';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_fit_step_run(query text, k integer, options jsonb, caller_path text)
    RETURNS segment.kmeans_model
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    opts     jsonb := coalesce(options, '{}');
    dim      integer;
    skeleton segment.kmeans_model;
    moments  double precision[];
    sample   segment.kmeans_model;
    init     jsonb;
    m        segment.kmeans_model;
    nm       segment.kmeans_model;
    step     double precision[];
    shift    double precision;
    tol_abs  double precision;
    max_iter integer;
    wanted   bigint;
    cutoff   bigint;
    sample_opts jsonb;
    seed     bigint;
BEGIN
    IF query IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'query and k must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    -- validates the options and k
    PERFORM segment_internal.kmeans_start(k, 1, opts - 'log1p' - 'init', NULL);

    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT pg_catalog.array_length(q.f::double precision[], 1) FROM (%s) AS q(f) WHERE q.f IS NOT NULL LIMIT 1',
        query) INTO dim;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF dim IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The query returned no rows with non-null features.';
    END IF;
    skeleton := segment_internal.kmeans_start(k, dim, opts - 'init', NULL);
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT segment.kmeans_moments(q.f::double precision[], $1) FROM (%s) AS q(f)', query)
        INTO moments USING skeleton;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF moments IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- checks k against the number of points before any sampling
    PERFORM segment_internal.kmeans_start(k, dim, opts - 'init', moments);

    IF NOT opts ? 'init' THEN
        wanted := coalesce((opts->>'init_sample')::bigint, 100000);
        IF moments[3] <= wanted THEN
            cutoff := 1048576;
        ELSE
            cutoff := pg_catalog.ceil(1048576 * wanted / moments[3]);
        END IF;
        -- computed here: the USING expressions run under the caller's path
        sample_opts := opts - 'method' - 'init_sample';
        seed := coalesce((opts->>'seed')::bigint, 0);
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        EXECUTE pg_catalog.format(
            'SELECT segment.kmeans(q.f::double precision[], $1, $2) FROM (%s) AS q(f)'
            ' WHERE q.f IS NOT NULL AND'
            ' (pg_catalog.hash_array_extended(q.f::double precision[], $3) OPERATOR(pg_catalog.&) 1048575)'
            ' OPERATOR(pg_catalog.<) $4', query)
            INTO sample
            USING k, sample_opts, seed, cutoff;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF sample IS NULL OR (sample::text::jsonb->>'n')::bigint < k THEN
            RAISE EXCEPTION 'the initialisation sample has fewer than k points'
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Raise the option init_sample, or give initial centroids with option init.';
        END IF;
        SELECT pg_catalog.jsonb_agg(pg_catalog.to_jsonb(c.centroid) ORDER BY c.cluster) INTO init
          FROM segment.kmeans_centroids(sample) AS c;
        opts := opts || pg_catalog.jsonb_build_object('init', init);
        m := segment_internal.kmeans_start(k, dim, opts, moments);
        -- the restarts happened on the sample: record them
        m := (pg_catalog.jsonb_set(m::text::jsonb, '{n_init}',
                                   sample::text::jsonb->'n_init'))::text::segment.kmeans_model;
    ELSE
        m := segment_internal.kmeans_start(k, dim, opts, moments);
    END IF;

    tol_abs := (m::text::jsonb->>'tol_abs')::double precision;
    max_iter := (m::text::jsonb->>'max_iter')::integer;
    FOR i IN 1 .. max_iter LOOP
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        EXECUTE pg_catalog.format(
            'SELECT segment.kmeans_step(q.f::double precision[], $1) FROM (%s) AS q(f)', query)
            INTO step USING m;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        nm := segment_internal.kmeans_update(m, step);
        shift := segment_internal.kmeans_shift(m, nm);
        m := nm;
        EXIT WHEN shift <= tol_abs;
    END LOOP;
    -- inertia and sizes against the final centroids
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT segment.kmeans_step(q.f::double precision[], $1) FROM (%s) AS q(f)', query)
        INTO step USING m;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    RETURN segment_internal.kmeans_finish(m, step);
END
$$;

COMMENT ON FUNCTION segment_internal.kmeans_fit_step_run(text, integer, jsonb, text) IS
    'segment.kmeans_fit_step() with the caller''s search_path, which only the query is run under (internal)';

CREATE OR REPLACE FUNCTION segment.kmeans_fit_step(query text, k integer, options jsonb DEFAULT '{}')
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE AS
$$
    SELECT segment_internal.kmeans_fit_step_run(query, k, options, pg_catalog.current_setting('search_path'))
$$;

COMMENT ON FUNCTION segment.kmeans_fit_step(text, integer, jsonb) IS
    'Fit k-means by iterating the kmeans_step aggregate over a query (parallel query, sharded tables); initial centroids from option init or a k-means++ fit on a sample';

COMMENT ON TABLE segment.kmeans_models IS
    'Stored k-means models: name, creation time, fit parameters (source, k, options), model; written by create_kmeans_model, removed by drop_kmeans_model';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_source(relation regclass, features name) RETURNS text
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    typ regtype := segment_internal.column_type(relation, features);
    elem oid;
BEGIN
    SELECT t.typelem INTO elem FROM pg_type AS t WHERE t.oid = typ AND t.typcategory = 'A';
    IF elem IS NULL OR (SELECT e.typcategory FROM pg_type AS e WHERE e.oid = elem) <> 'N' THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected an array of numbers',
                        features, relation, typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Build the feature vector with ARRAY[...]::float8[] in a view.';
    END IF;
    RETURN format('SELECT %I FROM %s', features, relation);
END
$$;

COMMENT ON FUNCTION segment_internal.kmeans_source(regclass, name) IS
    'The query selecting a relation''s feature column, after checking it is an array of numbers';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_train_run(query text, k integer, options jsonb, caller_path text)
    RETURNS segment.kmeans_model
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m segment.kmeans_model;
    setup_cost text;
BEGIN
    IF query IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'query and k must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    options := coalesce(options, '{}');
    IF pg_catalog.jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'k-means options must be a jsonb object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(options->>'method', 'memory') = 'step' THEN
        m := segment_internal.kmeans_fit_step_run(query, k, options, caller_path);
    ELSE
        -- Every point goes to one process: a parallel plan would only add
        -- passing them all through tuple queues and merging the workers'
        -- arrays (slower than the serial scan at every size measured, see
        -- README "k-means performance").  The restarts still run in parallel
        -- workers: they follow max_parallel_workers_per_gather, untouched.
        setup_cost := pg_catalog.current_setting('parallel_setup_cost');
        PERFORM pg_catalog.set_config('parallel_setup_cost', '1e300', true);
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        EXECUTE pg_catalog.format(
            'SELECT segment.kmeans(q.f::double precision[], $1, $2) FROM (%s) AS q(f)', query)
            INTO m USING k, options;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        PERFORM pg_catalog.set_config('parallel_setup_cost', setup_cost, true);
    END IF;
    IF m IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The query returned no rows with non-null features.';
    END IF;
    RETURN m;
END
$$;

COMMENT ON FUNCTION segment_internal.kmeans_train_run(text, integer, jsonb, text) IS
    'segment.kmeans_train() with the caller''s search_path, which only the query is run under (internal)';

CREATE OR REPLACE FUNCTION segment.kmeans_train(query text, k integer, options jsonb)
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE AS
$$
    SELECT segment_internal.kmeans_train_run(query, k, options, pg_catalog.current_setting('search_path'))
$$;

COMMENT ON FUNCTION segment.kmeans_train(text, integer, jsonb) IS
    'Fit k-means on the first column (float8[]) of a query; option method "memory" (default) or "step"';

CREATE OR REPLACE FUNCTION segment_internal.create_kmeans_model_run(name text, query text, k integer, options jsonb, caller_path text)
    RETURNS segment.kmeans_model
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m segment.kmeans_model;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'model name must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM segment.kmeans_models AS s WHERE s.name = create_kmeans_model_run.name) THEN
        RAISE EXCEPTION 'k-means model "%" already exists', name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Drop it first with segment.drop_kmeans_model(), or choose another name.';
    END IF;
    m := segment_internal.kmeans_train_run(query, k, options, caller_path);
    INSERT INTO segment.kmeans_models (name, parameters, model)
    VALUES (name, pg_catalog.jsonb_build_object('source', query, 'k', k,
                                                'options', coalesce(options, '{}')), m);
    RETURN m;
END
$$;

COMMENT ON FUNCTION segment_internal.create_kmeans_model_run(text, text, integer, jsonb, text) IS
    'segment.create_kmeans_model() with the caller''s search_path, which only the query is run under (internal)';

CREATE OR REPLACE FUNCTION segment.create_kmeans_model(name text, query text, k integer, options jsonb DEFAULT '{}')
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE AS
$$
    SELECT segment_internal.create_kmeans_model_run(name, query, k, options, pg_catalog.current_setting('search_path'))
$$;

COMMENT ON FUNCTION segment.create_kmeans_model(text, text, integer, jsonb) IS
    'Fit k-means on the first column (float8[]) of a query and store the model under a new name';

CREATE OR REPLACE FUNCTION segment.create_kmeans_model(name text, relation regclass, features name, k integer,
                                   options jsonb DEFAULT '{}')
    RETURNS segment.kmeans_model
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment.create_kmeans_model(name, segment_internal.kmeans_source(relation, features), k, options);
$$;

COMMENT ON FUNCTION segment.create_kmeans_model(text, regclass, name, integer, jsonb) IS
    'Fit k-means on a feature column (array of numbers) of a relation and store the model under a new name';

CREATE OR REPLACE FUNCTION segment.get_kmeans_model(name text) RETURNS segment.kmeans_model
    LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    m segment.kmeans_model;
BEGIN
    SELECT s.model INTO m FROM segment.kmeans_models AS s WHERE s.name = get_kmeans_model.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'k-means model "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
    RETURN m;
END
$$;

COMMENT ON FUNCTION segment.get_kmeans_model(text) IS
    'The stored k-means model of that name; raises undefined_object when there is none';

CREATE OR REPLACE FUNCTION segment.drop_kmeans_model(name text) RETURNS void
    LANGUAGE plpgsql VOLATILE STRICT SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    DELETE FROM segment.kmeans_models AS s WHERE s.name = drop_kmeans_model.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'k-means model "%" does not exist', name USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION segment.drop_kmeans_model(text) IS
    'Remove a stored k-means model; raises undefined_object when there is none';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_describe_run(model segment.kmeans_model, query text, caller_path text)
    RETURNS TABLE (cluster integer, size bigint, share double precision,
                   mean_features double precision[], mean_distance double precision)
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF model IS NULL OR query IS NULL THEN
        RAISE EXCEPTION 'model and query must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    RETURN QUERY EXECUTE pg_catalog.format($q$
        WITH assigned AS MATERIALIZED (
            SELECT segment.kmeans_assign($1, q.f::double precision[]) AS c,
                   segment.kmeans_distance($1, q.f::double precision[]) AS dist,
                   q.f::double precision[] AS f
              FROM (%s) AS q(f)
             WHERE q.f IS NOT NULL
        ), per_cluster AS (
            SELECT a.c, pg_catalog.count(*) AS n, pg_catalog.avg(a.dist) AS md
              FROM assigned AS a GROUP BY a.c
        ), per_feature AS (
            SELECT a.c, u.i, pg_catalog.avg(u.v) AS v
              FROM assigned AS a
             CROSS JOIN LATERAL pg_catalog.unnest(a.f) WITH ORDINALITY AS u(v, i)
             GROUP BY a.c, u.i
        )
        SELECT g.c::integer, coalesce(p.n, 0)::bigint,
               coalesce(p.n::double precision OPERATOR(pg_catalog./)
                        (pg_catalog.sum(p.n) OVER ())::double precision, 0),
               (SELECT pg_catalog.array_agg(pf.v ORDER BY pf.i)
                  FROM per_feature AS pf WHERE pf.c OPERATOR(pg_catalog.=) g.c),
               p.md
          FROM pg_catalog.generate_series(1, (SELECT pg_catalog.count(*)::integer
                                               FROM segment.kmeans_centroids($1))) AS g(c)
          LEFT JOIN per_cluster AS p ON p.c OPERATOR(pg_catalog.=) g.c
         ORDER BY g.c
        $q$, query) USING model;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
END
$$;

COMMENT ON FUNCTION segment_internal.kmeans_describe_run(segment.kmeans_model, text, text) IS
    'segment.kmeans_describe() with the caller''s search_path, which only the query is run under (internal)';

CREATE OR REPLACE FUNCTION segment.kmeans_describe(model segment.kmeans_model, query text)
    RETURNS TABLE (cluster integer, size bigint, share double precision,
                   mean_features double precision[], mean_distance double precision)
    LANGUAGE sql VOLATILE AS
$$
    SELECT * FROM segment_internal.kmeans_describe_run(model, query, pg_catalog.current_setting('search_path'))
$$;

COMMENT ON FUNCTION segment.kmeans_describe(segment.kmeans_model, text) IS
    'Describe each cluster of a model over a query''s first column: size, share, mean raw features, mean distance to the centroid';

CREATE OR REPLACE FUNCTION segment.kmeans_describe(model segment.kmeans_model, relation regclass, features name)
    RETURNS TABLE (cluster integer, size bigint, share double precision,
                   mean_features double precision[], mean_distance double precision)
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT * FROM segment.kmeans_describe(model, segment_internal.kmeans_source(relation, features));
$$;

COMMENT ON FUNCTION segment.kmeans_describe(segment.kmeans_model, regclass, name) IS
    'Describe each cluster of a model over a relation''s feature column: size, share, mean raw features, mean distance';

CREATE OR REPLACE FUNCTION segment_internal.kmeans_choose_k_run(query text, k_max integer, options jsonb, caller_path text)
    RETURNS SETOF segment.kmeans_k_score
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    scores segment.kmeans_k_score[];
BEGIN
    IF query IS NULL OR k_max IS NULL THEN
        RAISE EXCEPTION 'query and k_max must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    options := coalesce(options, '{}');
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
    EXECUTE pg_catalog.format(
        'SELECT segment.kmeans_k_scores(q.f::double precision[], $1, $2) FROM (%s) AS q(f)', query)
        INTO scores USING k_max, options;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF scores IS NULL THEN
        RAISE EXCEPTION 'no feature vectors to cluster'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'The query returned no rows with non-null features.';
    END IF;
    RETURN QUERY SELECT * FROM pg_catalog.unnest(scores);
END
$$;

COMMENT ON FUNCTION segment_internal.kmeans_choose_k_run(text, integer, jsonb, text) IS
    'segment.kmeans_choose_k() with the caller''s search_path, which only the query is run under (internal)';

CREATE OR REPLACE FUNCTION segment.kmeans_choose_k(query text, k_max integer, options jsonb DEFAULT '{}')
    RETURNS SETOF segment.kmeans_k_score
    LANGUAGE sql VOLATILE AS
$$
    SELECT * FROM segment_internal.kmeans_choose_k_run(query, k_max, options, pg_catalog.current_setting('search_path'))
$$;

COMMENT ON FUNCTION segment.kmeans_choose_k(text, integer, jsonb) IS
    'For k = 1..k_max: inertia (elbow), silhouette on a sample, simplified silhouette on all points, and the model';

CREATE OR REPLACE FUNCTION segment.kmeans_choose_k(relation regclass, features name, k_max integer,
                                        options jsonb DEFAULT '{}')
    RETURNS SETOF segment.kmeans_k_score
    LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT * FROM segment.kmeans_choose_k(segment_internal.kmeans_source(relation, features), k_max, options);
$$;

COMMENT ON FUNCTION segment.kmeans_choose_k(regclass, name, integer, jsonb) IS
    'For k = 1..k_max over a relation''s feature column: inertia, silhouette, simplified silhouette, model';

COMMENT ON TYPE segment.clv_summary IS
    'Result of the clv_summary aggregate: x repeat purchases (distinct purchase periods - 1), t_x time of the last and t_cal of as_of since the first purchase, mean value of the repeat purchases (0 when x = 0)';

CREATE OR REPLACE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz) IS
    'Transition function of the clv_summary aggregate';

CREATE OR REPLACE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz,
                                          text)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz, text) IS
    'Transition function of the clv_summary aggregate with a time unit';

CREATE OR REPLACE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz,
                                          text, text)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz, text, text) IS
    'Transition function of the clv_summary aggregate with a time unit and a purchase period';

CREATE OR REPLACE FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric, timestamptz,
                                          text, text, segment.time_zone)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.clv_summary_trans(double precision[], timestamptz, numeric,
                                              timestamptz, text, text, segment.time_zone) IS
    'Transition function of the clv_summary aggregate with a time unit, a purchase period and a time zone';

CREATE OR REPLACE FUNCTION segment_internal.clv_summary_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_clv_summary_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.clv_summary_combine(double precision[], double precision[]) IS
    'Combine function of the clv_summary aggregate';

CREATE OR REPLACE FUNCTION segment_internal.clv_summary_final(double precision[]) RETURNS segment.clv_summary
    AS 'MODULE_PATHNAME', 'segment_clv_summary_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.clv_summary_final(double precision[]) IS
    'Final function of the clv_summary aggregate';

CREATE OR REPLACE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz) IS
    'One customer''s orders up to as_of as (x, t_x, t_cal, mean_value) in days, purchases counted on distinct calendar days of the session TimeZone';

CREATE OR REPLACE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz,
                                     time_unit text) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz, text) IS
    'clv_summary with t_x and t_cal in time_unit (day or week), purchases counted on distinct days';

CREATE OR REPLACE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz,
                                     time_unit text, period text) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz, text, text) IS
    'clv_summary with t_x and t_cal in time_unit and purchases counted on distinct purchase periods (day, or week starting on Monday)';

CREATE OR REPLACE AGGREGATE segment.clv_summary(ordered_at timestamptz, amount numeric, as_of timestamptz,
                                     time_unit text, period text, time_zone segment.time_zone) (
    SFUNC = segment_internal.clv_summary_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.clv_summary_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_summary_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.clv_summary(timestamptz, numeric, timestamptz, text, text, segment.time_zone) IS
    'clv_summary with calendar days (of the orders and of as_of) in the given time zone, a name as SET TimeZone takes';

COMMENT ON TYPE segment.bgnbd_model IS
    'A fitted BG/NBD model: parameters r, alpha (purchase rate), a, b (dropout), the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of customers';

CREATE OR REPLACE FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision, double precision,
                                        double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision,
                                            double precision, double precision) IS
    'Transition function of the bgnbd_fit aggregate';

CREATE OR REPLACE FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision, double precision,
                                        double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.bgnbd_fit_trans(double precision[], double precision,
                                            double precision, double precision,
                                            double precision) IS
    'Transition function of the bgnbd_fit aggregate with an L2 penalizer';

CREATE OR REPLACE FUNCTION segment_internal.clv_fit_combine(double precision[], double precision[])
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.clv_fit_combine(double precision[], double precision[]) IS
    'Combine function of the bgnbd_fit and gamma_gamma_fit aggregates';

CREATE OR REPLACE FUNCTION segment_internal.bgnbd_fit_final(double precision[]) RETURNS segment.bgnbd_model
    AS 'MODULE_PATHNAME', 'segment_bgnbd_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.bgnbd_fit_final(double precision[]) IS
    'Final function of the bgnbd_fit aggregate: the maximum-likelihood fit';

CREATE OR REPLACE AGGREGATE segment.bgnbd_fit(x double precision, t_x double precision,
                                   t_cal double precision) (
    SFUNC = segment_internal.bgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.bgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.bgnbd_fit(double precision, double precision, double precision) IS
    'Maximum-likelihood BG/NBD fit over one row per customer: x repeat purchases, t_x time of the last purchase and t_cal age, both since the first purchase (rows with a NULL are skipped)';

CREATE OR REPLACE AGGREGATE segment.bgnbd_fit(x double precision, t_x double precision,
                                   t_cal double precision, penalizer double precision) (
    SFUNC = segment_internal.bgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.bgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.bgnbd_fit(double precision, double precision, double precision,
                                       double precision) IS
    'BG/NBD fit with an L2 penalty penalizer * (r^2 + alpha^2 + a^2 + b^2) on the mean log-likelihood, time measured in units of the longest T while fitting, as lifetimes'' penalizer_coef (alpha is returned in the caller''s unit)';

CREATE OR REPLACE FUNCTION segment.bgnbd_p_alive(model segment.bgnbd_model, x double precision,
                                      t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.bgnbd_p_alive(segment.bgnbd_model, double precision,
                                          double precision, double precision) IS
    'BG/NBD probability that a customer with history (x, t_x, t_cal) is still active (1 when x = 0)';

CREATE OR REPLACE FUNCTION segment.bgnbd_expected_purchases(model segment.bgnbd_model, t double precision,
                                                 x double precision, t_x double precision,
                                                 t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_expected_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.bgnbd_expected_purchases(segment.bgnbd_model, double precision,
                                                     double precision, double precision,
                                                     double precision) IS
    'BG/NBD expected number of purchases in the next t time units of a customer with history (x, t_x, t_cal)';

CREATE OR REPLACE FUNCTION segment.bgnbd_expected_purchases_new(model segment.bgnbd_model,
                                                     t double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_expected_purchases_new'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.bgnbd_expected_purchases_new(segment.bgnbd_model, double precision) IS
    'BG/NBD expected number of repeat purchases in the first t time units of a newly acquired customer';

CREATE OR REPLACE FUNCTION segment.bgnbd_log_likelihood(model segment.bgnbd_model, x double precision,
                                             t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_log_likelihood' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.bgnbd_log_likelihood(segment.bgnbd_model, double precision,
                                                 double precision, double precision) IS
    'BG/NBD log-likelihood of one customer''s history (x, t_x, t_cal); its sum over customers is what bgnbd_fit maximises';

COMMENT ON TYPE segment.gamma_gamma_model IS
    'A fitted Gamma-Gamma spend model: parameters p, q, v, the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of repeat customers it was fitted on';

CREATE OR REPLACE FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                              double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_gg_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                                  double precision) IS
    'Transition function of the gamma_gamma_fit aggregate';

CREATE OR REPLACE FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                              double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_gg_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.gamma_gamma_fit_trans(double precision[], double precision,
                                                  double precision, double precision) IS
    'Transition function of the gamma_gamma_fit aggregate with an L2 penalizer';

CREATE OR REPLACE FUNCTION segment_internal.gamma_gamma_fit_final(double precision[])
    RETURNS segment.gamma_gamma_model
    AS 'MODULE_PATHNAME', 'segment_gg_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.gamma_gamma_fit_final(double precision[]) IS
    'Final function of the gamma_gamma_fit aggregate: the maximum-likelihood fit';

CREATE OR REPLACE AGGREGATE segment.gamma_gamma_fit(x double precision, mean_value double precision) (
    SFUNC = segment_internal.gamma_gamma_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.gamma_gamma_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.gamma_gamma_fit(double precision, double precision) IS
    'Maximum-likelihood Gamma-Gamma fit over one row per customer: x repeat purchases and their mean value; one-time buyers (x = 0) and rows with a NULL are skipped';

CREATE OR REPLACE AGGREGATE segment.gamma_gamma_fit(x double precision, mean_value double precision,
                                         penalizer double precision) (
    SFUNC = segment_internal.gamma_gamma_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.gamma_gamma_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.gamma_gamma_fit(double precision, double precision,
                                             double precision) IS
    'Gamma-Gamma fit with an L2 penalty penalizer * (p^2 + q^2 + v^2) on the mean log-likelihood, as lifetimes'' penalizer_coef';

CREATE OR REPLACE FUNCTION segment.gamma_gamma_expected_value(model segment.gamma_gamma_model,
                                                   x double precision,
                                                   mean_value double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_gg_expected_value' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.gamma_gamma_expected_value(segment.gamma_gamma_model,
                                                       double precision, double precision) IS
    'Gamma-Gamma expected mean purchase value of a customer with x repeat purchases of mean value mean_value: p (v + x mean_value) / (p x + q - 1); needs q > 1';

CREATE OR REPLACE FUNCTION segment.clv(bgnbd segment.bgnbd_model, gamma_gamma segment.gamma_gamma_model,
                            x double precision, t_x double precision, t_cal double precision,
                            mean_value double precision,
                            months integer DEFAULT 12,
                            monthly_discount_rate double precision DEFAULT 0.01,
                            time_unit text DEFAULT 'day')
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_clv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.clv(segment.bgnbd_model, segment.gamma_gamma_model,
                                double precision, double precision, double precision,
                                double precision, integer, double precision, text) IS
    'Customer lifetime value over the next months: expected purchases per month (BG/NBD) times expected value (Gamma-Gamma), discounted monthly, as lifetimes'' customer_lifetime_value; time_unit (day, week or month) is the unit of x, t_x, t_cal';

CREATE OR REPLACE FUNCTION segment.gamma_gamma_log_likelihood(model segment.gamma_gamma_model,
                                                   x double precision,
                                                   mean_value double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_gg_log_likelihood' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.gamma_gamma_log_likelihood(segment.gamma_gamma_model,
                                                       double precision, double precision) IS
    'Gamma-Gamma log-likelihood of one repeat customer (x >= 1, mean_value > 0); its sum is what gamma_gamma_fit maximises';

COMMENT ON TYPE segment.pareto_nbd_model IS
    'A fitted Pareto/NBD model: parameters r, alpha (gamma-distributed purchase rate), s, beta (gamma-distributed dropout rate), the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of customers';

CREATE OR REPLACE FUNCTION segment_internal.pareto_nbd_fit_trans(double precision[], double precision,
                                             double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.pareto_nbd_fit_trans(double precision[], double precision,
                                                 double precision, double precision) IS
    'Transition function of the pareto_nbd_fit aggregate';

CREATE OR REPLACE FUNCTION segment_internal.pareto_nbd_fit_final(double precision[]) RETURNS segment.pareto_nbd_model
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.pareto_nbd_fit_final(double precision[]) IS
    'Final function of the pareto_nbd_fit aggregate: the maximum-likelihood fit';

CREATE OR REPLACE AGGREGATE segment.pareto_nbd_fit(x double precision, t_x double precision,
                                        t_cal double precision) (
    SFUNC = segment_internal.pareto_nbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.pareto_nbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.pareto_nbd_fit(double precision, double precision, double precision) IS
    'Maximum-likelihood Pareto/NBD fit over one row per customer: x repeat purchases, t_x time of the last purchase and t_cal age, both since the first purchase (rows with a NULL are skipped)';

CREATE OR REPLACE FUNCTION segment.pareto_nbd_p_alive(model segment.pareto_nbd_model, x double precision,
                                           t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.pareto_nbd_p_alive(segment.pareto_nbd_model, double precision,
                                               double precision, double precision) IS
    'Pareto/NBD probability that a customer with history (x, t_x, t_cal) is still active';

CREATE OR REPLACE FUNCTION segment.pareto_nbd_expected_purchases(model segment.pareto_nbd_model,
                                                      t double precision, x double precision,
                                                      t_x double precision,
                                                      t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_expected_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.pareto_nbd_expected_purchases(segment.pareto_nbd_model,
                                                          double precision, double precision,
                                                          double precision, double precision) IS
    'Pareto/NBD expected number of purchases in the next t time units of a customer with history (x, t_x, t_cal)';

CREATE OR REPLACE FUNCTION segment.pareto_nbd_log_likelihood(model segment.pareto_nbd_model,
                                                  x double precision, t_x double precision,
                                                  t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_log_likelihood'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.pareto_nbd_log_likelihood(segment.pareto_nbd_model, double precision,
                                                      double precision, double precision) IS
    'Pareto/NBD log-likelihood of one customer''s history (x, t_x, t_cal); its sum over customers is what pareto_nbd_fit maximises';

CREATE OR REPLACE FUNCTION segment.pareto_nbd_probability_of_purchases(model segment.pareto_nbd_model,
                                                            t double precision, n double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_pareto_nbd_probability_of_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.pareto_nbd_probability_of_purchases(segment.pareto_nbd_model, double precision,
                                                                double precision) IS
    'Pareto/NBD probability P(X(t) = n) that a newly acquired customer makes exactly n purchases in t time units (Fader and Hardie, "Deriving an expression for P(X(t) = x) under the Pareto/NBD model"); n at most 100000';

COMMENT ON TYPE segment.mbgnbd_model IS
    'A fitted MBG/NBD model: parameters r, alpha (purchase rate), a, b (dropout, also possible at the first purchase), the log-likelihood at the optimum, optimiser iterations, whether a maximum was found (false when the optimiser did not converge, a parameter ran off, or the likelihood is flat in some direction), and the number of customers';

CREATE OR REPLACE FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision, double precision,
                                         double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision,
                                             double precision, double precision) IS
    'Transition function of the mbgnbd_fit aggregate';

CREATE OR REPLACE FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision, double precision,
                                         double precision, double precision)
    RETURNS double precision[]
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_fit_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.mbgnbd_fit_trans(double precision[], double precision,
                                             double precision, double precision,
                                             double precision) IS
    'Transition function of the mbgnbd_fit aggregate with an L2 penalizer';

CREATE OR REPLACE FUNCTION segment_internal.mbgnbd_fit_final(double precision[]) RETURNS segment.mbgnbd_model
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_fit_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.mbgnbd_fit_final(double precision[]) IS
    'Final function of the mbgnbd_fit aggregate: the maximum-likelihood fit';

CREATE OR REPLACE AGGREGATE segment.mbgnbd_fit(x double precision, t_x double precision,
                                    t_cal double precision) (
    SFUNC = segment_internal.mbgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.mbgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.mbgnbd_fit(double precision, double precision, double precision) IS
    'Maximum-likelihood MBG/NBD fit over one row per customer: x repeat purchases, t_x time of the last purchase and t_cal age, both since the first purchase (rows with a NULL are skipped)';

CREATE OR REPLACE AGGREGATE segment.mbgnbd_fit(x double precision, t_x double precision,
                                    t_cal double precision, penalizer double precision) (
    SFUNC = segment_internal.mbgnbd_fit_trans,
    STYPE = double precision[],
    FINALFUNC = segment_internal.mbgnbd_fit_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.clv_fit_combine,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.mbgnbd_fit(double precision, double precision, double precision,
                                        double precision) IS
    'MBG/NBD fit with an L2 penalty penalizer * (r^2 + alpha^2 + a^2 + b^2) on the mean log-likelihood, time measured in units of the longest T while fitting, as bgnbd_fit''s';

CREATE OR REPLACE FUNCTION segment.mbgnbd_p_alive(model segment.mbgnbd_model, x double precision,
                                       t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.mbgnbd_p_alive(segment.mbgnbd_model, double precision,
                                           double precision, double precision) IS
    'MBG/NBD probability that a customer with history (x, t_x, t_cal) is still active (below 1 also when x = 0)';

CREATE OR REPLACE FUNCTION segment.mbgnbd_expected_purchases(model segment.mbgnbd_model, t double precision,
                                                  x double precision, t_x double precision,
                                                  t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_expected_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.mbgnbd_expected_purchases(segment.mbgnbd_model, double precision,
                                                      double precision, double precision,
                                                      double precision) IS
    'MBG/NBD expected number of purchases in the next t time units of a customer with history (x, t_x, t_cal)';

CREATE OR REPLACE FUNCTION segment.mbgnbd_log_likelihood(model segment.mbgnbd_model, x double precision,
                                              t_x double precision, t_cal double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_log_likelihood'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.mbgnbd_log_likelihood(segment.mbgnbd_model, double precision,
                                                  double precision, double precision) IS
    'MBG/NBD log-likelihood of one customer''s history (x, t_x, t_cal); its sum over customers is what mbgnbd_fit maximises';

CREATE OR REPLACE FUNCTION segment.bgnbd_probability_of_purchases(model segment.bgnbd_model,
                                                       t double precision, n double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_bgnbd_probability_of_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.bgnbd_probability_of_purchases(segment.bgnbd_model, double precision,
                                                           double precision) IS
    'BG/NBD probability P(X(t) = n) that a newly acquired customer makes exactly n repeat purchases in t time units (Fader, Hardie and Lee 2005, eq. 8)';

CREATE OR REPLACE FUNCTION segment.mbgnbd_probability_of_purchases(model segment.mbgnbd_model,
                                                        t double precision, n double precision)
    RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_mbgnbd_probability_of_purchases'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment.mbgnbd_probability_of_purchases(segment.mbgnbd_model, double precision,
                                                            double precision) IS
    'MBG/NBD probability P(X(t) = n) that a newly acquired customer makes exactly n repeat purchases in t time units';

CREATE OR REPLACE FUNCTION segment.clv_holdout(orders regclass, customer_column name, ordered_at_column name,
                                    calibration_end date, holdout_end date,
                                    time_unit text DEFAULT 'week')
    RETURNS TABLE (model text, calibration_purchases text, customers bigint,
                   actual_mean double precision, predicted_mean double precision)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    days_per_unit integer;
    ts_type regtype;
BEGIN
    IF orders IS NULL OR customer_column IS NULL OR ordered_at_column IS NULL
       OR calibration_end IS NULL OR holdout_end IS NULL OR time_unit IS NULL THEN
        RAISE EXCEPTION 'clv_holdout arguments must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF holdout_end <= calibration_end THEN
        RAISE EXCEPTION 'holdout_end must be later than calibration_end'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = format('Got calibration_end %s and holdout_end %s.',
                                  to_char(calibration_end, 'YYYY-MM-DD'), to_char(holdout_end, 'YYYY-MM-DD'));
    END IF;
    days_per_unit := CASE time_unit WHEN 'day' THEN 1 WHEN 'week' THEN 7 END;
    IF days_per_unit IS NULL THEN
        RAISE EXCEPTION 'invalid time unit "%"', time_unit
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use ''day'' or ''week''.';
    END IF;
    PERFORM segment_internal.column_type(orders, customer_column);
    ts_type := segment_internal.column_type(orders, ordered_at_column);
    IF ts_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, expected a timestamp',
                        ordered_at_column, orders, ts_type
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Use a timestamptz, timestamp or date column, or a view that casts it.';
    END IF;
    -- Purchase days are calendar days in the session's TimeZone, as
    -- clv_summary counts them; orders of one day are one purchase.
    RETURN QUERY EXECUTE format(
        $q$WITH o AS (
               SELECT %1$I AS c, (%2$I)::timestamptz AS at FROM %3$s
                WHERE %1$I IS NOT NULL AND %2$I IS NOT NULL),
           cal AS (
               SELECT o.c, (segment.clv_summary(o.at, 0::numeric, $1, $5)).*
                 FROM o WHERE o.at < $2 GROUP BY o.c),
           hold AS (
               SELECT o.c, count(DISTINCT (o.at)::date) AS n
                 FROM o WHERE o.at >= $2 AND o.at < $3 GROUP BY o.c),
           d AS (
               SELECT cal.x, cal.t_x, cal.t_cal, coalesce(hold.n, 0)::double precision AS actual
                 FROM cal LEFT JOIN hold ON hold.c = cal.c),
           m AS (
               SELECT segment.bgnbd_fit(d.x, d.t_x, d.t_cal) AS bg,
                      segment.pareto_nbd_fit(d.x, d.t_x, d.t_cal) AS pn,
                      segment.mbgnbd_fit(d.x, d.t_x, d.t_cal) AS mbg
                 FROM d),
           p AS (
               SELECT d.x, d.actual,
                      segment.bgnbd_expected_purchases(m.bg, $4, d.x, d.t_x, d.t_cal) AS bg,
                      segment.pareto_nbd_expected_purchases(m.pn, $4, d.x, d.t_x, d.t_cal) AS pn,
                      segment.mbgnbd_expected_purchases(m.mbg, $4, d.x, d.t_x, d.t_cal) AS mbg
                 FROM d, m),
           l AS (
               SELECT v.model, CASE WHEN p.x >= 7 THEN '7+' ELSE p.x::text END AS bucket,
                      p.actual, v.predicted
                 FROM p CROSS JOIN LATERAL (VALUES ('bgnbd', p.bg), ('pareto_nbd', p.pn),
                                                   ('mbgnbd', p.mbg)) AS v(model, predicted))
           SELECT l.model, coalesce(l.bucket, 'total'), count(*), avg(l.actual), avg(l.predicted)
             FROM l
            GROUP BY l.model, ROLLUP (l.bucket)
            ORDER BY l.model, l.bucket IS NULL, l.bucket$q$,
        customer_column, ordered_at_column, orders)
        USING calibration_end::timestamptz, (calibration_end + 1)::timestamptz,
              (holdout_end + 1)::timestamptz,
              (holdout_end - calibration_end)::double precision / days_per_unit, time_unit;
END
$$;

COMMENT ON FUNCTION segment.clv_holdout(regclass, name, name, date, date, text) IS
    'Holdout validation: fits BG/NBD, Pareto/NBD and MBG/NBD on the orders up to calibration_end and compares, per model and number of calibration repeat purchases (0..6, 7+, total), the actual and predicted mean number of purchase days in (calibration_end, holdout_end]; reads the relation with the caller''s privileges';

CREATE OR REPLACE FUNCTION segment.clv_holdout_errors(orders regclass, customer_column name,
                                           ordered_at_column name, calibration_end date,
                                           holdout_end date, time_unit text DEFAULT 'week')
    RETURNS TABLE (model text, customers bigint, actual_total double precision,
                   predicted_total double precision, total_error double precision,
                   bucket_mae double precision)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.model,
           max(h.customers) FILTER (WHERE h.calibration_purchases = 'total'),
           max(h.customers * h.actual_mean) FILTER (WHERE h.calibration_purchases = 'total'),
           max(h.customers * h.predicted_mean) FILTER (WHERE h.calibration_purchases = 'total'),
           max(h.predicted_mean / nullif(h.actual_mean, 0) - 1)
               FILTER (WHERE h.calibration_purchases = 'total'),
           sum(h.customers * abs(h.predicted_mean - h.actual_mean))
               FILTER (WHERE h.calibration_purchases <> 'total')
             / sum(h.customers) FILTER (WHERE h.calibration_purchases <> 'total')
      FROM segment.clv_holdout(orders, customer_column, ordered_at_column, calibration_end,
                               holdout_end, time_unit) AS h
     GROUP BY h.model
     ORDER BY h.model
$$;

COMMENT ON FUNCTION segment.clv_holdout_errors(regclass, name, name, date, date, text) IS
    'Error figures of clv_holdout per model: customers, actual and predicted total holdout purchases, total_error = predicted / actual - 1, and bucket_mae = the mean absolute error of the per-bucket means weighted by customers';

COMMENT ON TYPE segment.event_summary IS
    'Result of the events aggregate: window counts of visits, product views, cart adds, checkouts and newsletter opens; first and last site visit, last cart add, checkout and newsletter open; subscription state; the products put in the cart after the last checkout (most recent first, at most 10); rows of unknown type and rows after as_of';

CREATE OR REPLACE FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval) IS
    'Transition function of the events aggregate (event types are the kind names)';

CREATE OR REPLACE FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval, jsonb)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.events_trans(internal, text, timestamptz, text, timestamptz, interval, jsonb) IS
    'Transition function of the events aggregate with a mapping of event types to kinds';

CREATE OR REPLACE FUNCTION segment_internal.events_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.events_combine(internal, internal) IS
    'Combine function of the events aggregate';

CREATE OR REPLACE FUNCTION segment_internal.events_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_events_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.events_serial(internal) IS
    'Serialization function of the events aggregate';

CREATE OR REPLACE FUNCTION segment_internal.events_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_events_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.events_deserial(bytea, internal) IS
    'Deserialization function of the events aggregate';

CREATE OR REPLACE FUNCTION segment_internal.events_final(internal) RETURNS segment.event_summary
    AS 'MODULE_PATHNAME', 'segment_events_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.events_final(internal) IS
    'Final function of the events aggregate';

CREATE OR REPLACE AGGREGATE segment.events(event_type text, occurred_at timestamptz, product text,
                                as_of timestamptz, lookback interval) (
    SFUNC = segment_internal.events_trans,
    STYPE = internal,
    SSPACE = 400,
    FINALFUNC = segment_internal.events_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.events_combine,
    SERIALFUNC = segment_internal.events_serial,
    DESERIALFUNC = segment_internal.events_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.events(text, timestamptz, text, timestamptz, interval) IS
    'One customer''s site and newsletter events as of a time, counted over a window (NULL: all history); the event types are the kind names (visit, product_view, cart_add, checkout, newsletter_open, subscribe, unsubscribe); other types are counted in unknown_events, rows after as_of in future_events, rows with a NULL time skipped';

CREATE OR REPLACE AGGREGATE segment.events(event_type text, occurred_at timestamptz, product text,
                                as_of timestamptz, lookback interval, kinds jsonb) (
    SFUNC = segment_internal.events_trans,
    STYPE = internal,
    SSPACE = 400,
    FINALFUNC = segment_internal.events_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.events_combine,
    SERIALFUNC = segment_internal.events_serial,
    DESERIALFUNC = segment_internal.events_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.events(text, timestamptz, text, timestamptz, interval, jsonb) IS
    'As events(event_type, occurred_at, product, as_of, window), with the shop''s event types mapped to kinds by a JSON object {"type": "kind"} (kind "ignore": known, not counted; types it does not name are unknown)';

CREATE OR REPLACE FUNCTION segment.event_kind(event_type text, kinds jsonb DEFAULT NULL) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_event_kind' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment.event_kind(text, jsonb) IS
    'The kind an event type maps to (NULL kinds: the kind names themselves), NULL for an unknown type; raises an error for an invalid mapping';

CREATE OR REPLACE FUNCTION segment.abandoned_at(summary segment.event_summary, last_order timestamptz)
    RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'segment_abandoned_at' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment.abandoned_at(segment.event_summary, timestamptz) IS
    'The latest cart add of an event summary when it came after the last checkout event and after last_order (NULL: no order), else NULL';

CREATE OR REPLACE FUNCTION segment.abandoned_products(summary segment.event_summary, last_order timestamptz)
    RETURNS text[]
    AS 'MODULE_PATHNAME', 'segment_abandoned_products' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment.abandoned_products(segment.event_summary, timestamptz) IS
    'The products put in the cart after the last checkout event and after last_order (NULL: no order), most recent first (at most 10)';

COMMENT ON TYPE segment.contact_summary IS
    'Result of the contacts aggregate: contacts, negative and unrated contacts in the window; first and last contact and last negative contact at or before as_of; contacts after as_of';

CREATE OR REPLACE FUNCTION segment_internal.contacts_trans(internal, timestamptz, boolean, timestamptz, interval)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_contacts_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.contacts_trans(internal, timestamptz, boolean, timestamptz, interval) IS
    'Transition function of the contacts aggregate';

CREATE OR REPLACE FUNCTION segment_internal.contacts_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_contacts_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.contacts_combine(internal, internal) IS
    'Combine function of the contacts aggregate';

CREATE OR REPLACE FUNCTION segment_internal.contacts_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_contacts_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.contacts_serial(internal) IS
    'Serialization function of the contacts aggregate';

CREATE OR REPLACE FUNCTION segment_internal.contacts_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_contacts_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.contacts_deserial(bytea, internal) IS
    'Deserialization function of the contacts aggregate';

CREATE OR REPLACE FUNCTION segment_internal.contacts_final(internal) RETURNS segment.contact_summary
    AS 'MODULE_PATHNAME', 'segment_contacts_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.contacts_final(internal) IS
    'Final function of the contacts aggregate';

CREATE OR REPLACE AGGREGATE segment.contacts(opened_at timestamptz, negative boolean,
                                  as_of timestamptz, lookback interval) (
    SFUNC = segment_internal.contacts_trans,
    STYPE = internal,
    SSPACE = 120,
    FINALFUNC = segment_internal.contacts_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.contacts_combine,
    SERIALFUNC = segment_internal.contacts_serial,
    DESERIALFUNC = segment_internal.contacts_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.contacts(timestamptz, boolean, timestamptz, interval) IS
    'One customer''s support contacts as of a time, counted over a window (NULL: all history); negative is the contact''s flag (or an expression over its score, such as score <= 2; NULL: unrated); rows after as_of are counted in future_contacts, rows with a NULL time skipped';

COMMENT ON TYPE segment.order_line_summary IS
    'Result of the order_lines aggregate: lines; lines whose product has a launch date, and of those the lines bought within launch_days of the launch (and their share); lines without a launch date (product missing or launch unknown); distinct categories, the top category (most lines, then latest purchase, then name), its lines and share of the categorized lines; lines without a category';

CREATE OR REPLACE FUNCTION segment_internal.order_lines_trans(internal, timestamptz, timestamptz, text, integer)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_lines_trans' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.order_lines_trans(internal, timestamptz, timestamptz, text, integer) IS
    'Transition function of the order_lines aggregate';

CREATE OR REPLACE FUNCTION segment_internal.order_lines_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_lines_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.order_lines_combine(internal, internal) IS
    'Combine function of the order_lines aggregate';

CREATE OR REPLACE FUNCTION segment_internal.order_lines_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_lines_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.order_lines_serial(internal) IS
    'Serialization function of the order_lines aggregate';

CREATE OR REPLACE FUNCTION segment_internal.order_lines_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_lines_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.order_lines_deserial(bytea, internal) IS
    'Deserialization function of the order_lines aggregate';

CREATE OR REPLACE FUNCTION segment_internal.order_lines_final(internal) RETURNS segment.order_line_summary
    AS 'MODULE_PATHNAME', 'segment_lines_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.order_lines_final(internal) IS
    'Final function of the order_lines aggregate';

CREATE OR REPLACE AGGREGATE segment.order_lines(ordered_at timestamptz, launched_at timestamptz,
                                     category text, launch_days integer) (
    SFUNC = segment_internal.order_lines_trans,
    STYPE = internal,
    SSPACE = 200,
    FINALFUNC = segment_internal.order_lines_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.order_lines_combine,
    SERIALFUNC = segment_internal.order_lines_serial,
    DESERIALFUNC = segment_internal.order_lines_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.order_lines(timestamptz, timestamptz, text, integer) IS
    'One customer''s order lines joined with their products: share bought within launch_days of the product''s launch (before it included), top category; lines with a NULL ordered_at are skipped, a NULL launched_at or category is counted';

COMMENT ON TYPE segment.restock_summary IS
    'Result of the restock aggregate over one customer''s lines of one product: distinct purchase days, first and last purchase, units in all and on the last purchase day, mean days between purchase days, days one unit lasted, and the expected re-stock date (last purchase day + last_units * days_per_unit; NULL with one purchase day)';

CREATE OR REPLACE FUNCTION segment_internal.restock_trans(internal, timestamptz, double precision) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_restock_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.restock_trans(internal, timestamptz, double precision) IS
    'Transition function of the restock aggregate';

CREATE OR REPLACE FUNCTION segment_internal.restock_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_restock_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.restock_combine(internal, internal) IS
    'Combine function of the restock aggregate';

CREATE OR REPLACE FUNCTION segment_internal.restock_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_restock_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.restock_serial(internal) IS
    'Serialization function of the restock aggregate';

CREATE OR REPLACE FUNCTION segment_internal.restock_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_restock_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.restock_deserial(bytea, internal) IS
    'Deserialization function of the restock aggregate';

CREATE OR REPLACE FUNCTION segment_internal.restock_final(internal) RETURNS segment.restock_summary
    AS 'MODULE_PATHNAME', 'segment_restock_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.restock_final(internal) IS
    'Final function of the restock aggregate';

CREATE OR REPLACE AGGREGATE segment.restock(ordered_at timestamptz, quantity double precision) (
    SFUNC = segment_internal.restock_trans,
    STYPE = internal,
    SSPACE = 100,
    FINALFUNC = segment_internal.restock_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.restock_combine,
    SERIALFUNC = segment_internal.restock_serial,
    DESERIALFUNC = segment_internal.restock_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment.restock(timestamptz, double precision) IS
    'Re-stock figures of one customer''s purchases of one product (GROUP BY customer, product): purchase days, units, mean gap and the expected re-stock date; lines with a NULL ordered_at are skipped, a NULL quantity is one unit, a quantity <= 0 is an error';

COMMENT ON TYPE segment_internal.line_stages_result IS
    'Result of the line_stages aggregate: the order_lines summary of a customer''s lines, and the earliest expected re-stock date still to come and its product (internal)';

CREATE OR REPLACE FUNCTION segment_internal.line_stages_trans(internal, timestamptz, timestamptz, text, integer,
                                                   text, double precision, integer, date)
    RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_line_stages_trans' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.line_stages_trans(internal, timestamptz, timestamptz, text, integer,
                                                       text, double precision, integer, date) IS
    'Transition function of the line_stages aggregate (internal)';

CREATE OR REPLACE FUNCTION segment_internal.line_stages_combine(internal, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_line_stages_combine' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.line_stages_combine(internal, internal) IS
    'Combine function of the line_stages aggregate (internal)';

CREATE OR REPLACE FUNCTION segment_internal.line_stages_serial(internal) RETURNS bytea
    AS 'MODULE_PATHNAME', 'segment_line_stages_serial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.line_stages_serial(internal) IS
    'Serialization function of the line_stages aggregate (internal)';

CREATE OR REPLACE FUNCTION segment_internal.line_stages_deserial(bytea, internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'segment_line_stages_deserial' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.line_stages_deserial(bytea, internal) IS
    'Deserialization function of the line_stages aggregate (internal)';

CREATE OR REPLACE FUNCTION segment_internal.line_stages_final(internal) RETURNS segment_internal.line_stages_result
    AS 'MODULE_PATHNAME', 'segment_line_stages_final' LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.line_stages_final(internal) IS
    'Final function of the line_stages aggregate (internal)';

CREATE OR REPLACE AGGREGATE segment_internal.line_stages(ordered_at timestamptz, launched_at timestamptz,
                                              category text, launch_days integer, product text,
                                              quantity double precision, restock_purchases integer,
                                              restock_from date) (
    SFUNC = segment_internal.line_stages_trans,
    STYPE = internal,
    SSPACE = 400,
    FINALFUNC = segment_internal.line_stages_final,
    FINALFUNC_MODIFY = READ_ONLY,
    COMBINEFUNC = segment_internal.line_stages_combine,
    SERIALFUNC = segment_internal.line_stages_serial,
    DESERIALFUNC = segment_internal.line_stages_deserial,
    PARALLEL = SAFE
);

COMMENT ON AGGREGATE segment_internal.line_stages(timestamptz, timestamptz, text, integer, text,
                                                  double precision, integer, date) IS
    'One customer''s order lines: order_lines(ordered_at, launched_at, category, launch_days), and of the products (lines with a product) bought on restock_purchases days or more, the one whose expected re-stock (as restock(ordered_at, quantity)) is due first on or after restock_from, ties by product in the collation of the arguments; lines with a NULL ordered_at are skipped (internal)';

CREATE OR REPLACE FUNCTION segment_internal.fixed_breaks_valid(breaks double precision[], buckets integer) RETURNS boolean
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

COMMENT ON TABLE segment.segmentations IS
    'Named segmentations: the orders relation and columns, options and rule thresholds of each (edit with segment.configure(); thresholds may be updated in place)';

COMMENT ON TABLE segment.cluster_names IS
    'Names of the k-means clusters of each segmentation (set with segment.name_cluster()), copied into the profile''s cluster_name by the next refresh';

COMMENT ON TYPE segment.customer_profile IS
    'A customer''s profile (the columns of a profile table after customer_id), as returned by profile_of()';

CREATE OR REPLACE FUNCTION segment_internal.profile_columns_sql(alias text, first_column name, last_column name)
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

CREATE OR REPLACE FUNCTION segment_internal.segmentation_row(segmentation text) RETURNS segment.segmentations
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

CREATE OR REPLACE FUNCTION segment_internal.check_fixed_breaks(what text, breaks double precision[], buckets integer)
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

CREATE OR REPLACE FUNCTION segment_internal.cluster_feature_columns(clv boolean) RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT ARRAY['tenure_days', 'recency_days', 'frequency', 'purchase_days', 'monetary',
                 'mean_amount', 'mean_gap_days', 'discount_share', 'due_in_days', 'r', 'f', 'm']
           || CASE WHEN clv THEN ARRAY['p_alive', 'expected_purchases', 'clv'] ELSE '{}' END
$$;

COMMENT ON FUNCTION segment_internal.cluster_feature_columns(boolean) IS
    'The numeric profile columns a segmentation may cluster on (with lifetime value: also p_alive, expected_purchases, clv)';

CREATE OR REPLACE FUNCTION segment_internal.cluster_model_name(segmentation text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT 'segmentation.' || segmentation
$$;

COMMENT ON FUNCTION segment_internal.cluster_model_name(text) IS
    'Name under which a refresh stores the k-means model of a segmentation in segment.kmeans_models';

CREATE OR REPLACE FUNCTION segment_internal.cluster_fit_options(s segment.segmentations) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT '{"log1p": true, "standardize": true}'::jsonb || s.cluster_options
$$;

COMMENT ON FUNCTION segment_internal.cluster_fit_options(segment.segmentations) IS
    'The k-means options of a segmentation: {"log1p": true, "standardize": true} overridden by its cluster_options';

CREATE OR REPLACE FUNCTION segment_internal.check_clusters(s segment.segmentations) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.check_clv(s segment.segmentations) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.check_segmentation(s segment.segmentations) RETURNS regtype
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

CREATE OR REPLACE FUNCTION segment_internal.create_profile(profile name, key_type regtype, segmentation text)
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

CREATE OR REPLACE FUNCTION segment.configure(
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

CREATE OR REPLACE FUNCTION segment.drop_segmentation(segmentation text) RETURNS void
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

COMMENT ON TABLE segment.event_sources IS
    'The events relation of each segmentation that has one (set with segment.configure_event_source()): its columns, the mapping of event types to kinds, the window, and the thresholds of the built-in rules Abandoned Cart, Indecisive and Impulse Buyers (may be updated in place)';

COMMENT ON TABLE segment.contact_sources IS
    'The support contacts relation of each segmentation that has one (set with segment.configure_contact_source()): its columns, how a contact is negative (a boolean column, a score below negative_below, or every contact when negative is NULL), the window, and the threshold of the built-in rule Angry Customers';

COMMENT ON TABLE segment.product_sources IS
    'The order lines (and products) of each segmentation that has them (set with segment.configure_product_source()): the lines'' order, product, quantity and optional customer columns, the orders relation''s order key, the products relation''s key, launch time and category, and the thresholds of the built-in rules Trend Followers and Due to Re-stock';

CREATE OR REPLACE FUNCTION segment_internal.key_narrows(a regtype, b regtype) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.array_position(ARRAY['smallint', 'integer', 'bigint']::regtype[], a)
           > pg_catalog.array_position(ARRAY['smallint', 'integer', 'bigint']::regtype[], b)
$$;

COMMENT ON FUNCTION segment_internal.key_narrows(regtype, regtype) IS
    'Whether casting a key of the first integer type to the second can fail (internal)';

CREATE OR REPLACE FUNCTION segment_internal.reads_as_float8(t regtype) RETURNS boolean
    LANGUAGE sql STABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT t = 'double precision'::regtype
        OR EXISTS (SELECT FROM pg_catalog.pg_cast AS c
                    WHERE c.castsource = t AND c.casttarget = 'double precision'::regtype)
$$;

COMMENT ON FUNCTION segment_internal.reads_as_float8(regtype) IS
    'Whether a column type can be cast to double precision, as scores and quantities are read (internal)';

CREATE OR REPLACE FUNCTION segment_internal.keys_compatible(a regtype, b regtype) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT a = b
        OR (a IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype) AND
            b IN ('smallint'::regtype, 'integer'::regtype, 'bigint'::regtype))
        OR (a IN ('text'::regtype, 'varchar'::regtype) AND b IN ('text'::regtype, 'varchar'::regtype))
$$;

COMMENT ON FUNCTION segment_internal.keys_compatible(regtype, regtype) IS
    'Whether two key types compare as keys: equal, both integers, or both text/varchar';

CREATE OR REPLACE FUNCTION segment_internal.source_configure_function(kind text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE kind WHEN 'events' THEN 'segment.configure_event_source()'
                     WHEN 'contacts' THEN 'segment.configure_contact_source()'
                     WHEN 'products' THEN 'segment.configure_product_source()' END
$$;

COMMENT ON FUNCTION segment_internal.source_configure_function(text) IS
    'The function that configures a kind of source (events, contacts, products), for hints (internal)';

CREATE OR REPLACE FUNCTION segment_internal.source_configured(kind text, segmentation text) RETURNS boolean
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

CREATE OR REPLACE FUNCTION segment_internal.source_hint(kind text, segmentation text, what text) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.duplicate_key(rel regclass, col name) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.source_relation(relation text, what text, kind text, segmentation text)
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

CREATE OR REPLACE FUNCTION segment_internal.source_column(rel regclass, col name, role text, kind text, segmentation text)
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

CREATE OR REPLACE FUNCTION segment_internal.check_source_time(rel regclass, col name, role text, kind text, segmentation text)
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

CREATE OR REPLACE FUNCTION segment_internal.check_source_key(rel regclass, col name, role text, kind text, segmentation text,
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

CREATE OR REPLACE FUNCTION segment_internal.check_source_window(w interval) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.check_event_source(s segment.segmentations, e segment.event_sources) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.check_contact_source(s segment.segmentations, c segment.contact_sources) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.check_product_source(s segment.segmentations, p segment.product_sources) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.check_sources(s segment.segmentations) RETURNS text[]
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

CREATE OR REPLACE FUNCTION segment.configure_event_source(
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

CREATE OR REPLACE FUNCTION segment.configure_contact_source(
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

CREATE OR REPLACE FUNCTION segment.configure_product_source(
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

CREATE OR REPLACE FUNCTION segment.drop_source(kind text, segmentation text DEFAULT NULL) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.source_columns_sql(alias text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment_internal.profile_columns_sql(alias, 'visits', NULL)
$$;

COMMENT ON FUNCTION segment_internal.source_columns_sql(text) IS
    'The profile columns computed from the events, contacts and products sources (and from events with products: unbrowsed_lines, unbrowsed_share), qualified by alias (internal)';

CREATE OR REPLACE FUNCTION segment_internal.segmentations_owner_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.owner := coalesce(NEW.owner, current_user::regrole);
    ELSIF NOT pg_catalog.pg_has_role(OLD.owner::oid, 'USAGE') THEN
        RAISE EXCEPTION 'permission denied for segmentation "%"', OLD.name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = format('Only roles with the privileges of its owner, role %s, may change or drop it.', OLD.owner);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF (TG_OP = 'INSERT' OR NEW.owner IS DISTINCT FROM OLD.owner)
       AND NOT pg_catalog.pg_has_role(NEW.owner::oid, 'USAGE') THEN
        RAISE EXCEPTION 'must have the privileges of role % to make it the owner of segmentation "%"',
                        NEW.owner, NEW.name
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION segment_internal.segmentations_owner_check() IS
    'Trigger: records the owner of a new segmentation (the current user) and refuses changes by roles without the owner''s privileges (internal)';

CREATE OR REPLACE FUNCTION segment.set_owner(owner regrole, segmentation text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s   segment.segmentations := segment_internal.segmentation_row(segmentation);
    tbl regclass;
    fn  regprocedure;
BEGIN
    IF owner IS NULL THEN
        RAISE EXCEPTION 'owner must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE segment.segmentations AS x SET owner = set_owner.owner WHERE x.name = s.name;
    -- The tables a refresh writes as the owner: the profile, and the change
    -- log and stored figures of incremental refreshes.
    FOR tbl IN SELECT pg_catalog.to_regclass(format('segment.%I', t))
                 FROM pg_catalog.unnest(ARRAY[s.profile, 'changes_' || s.name, 'stage_' || s.name]) AS u(t)
               UNION ALL
               SELECT pg_catalog.to_regclass(segment_internal.source_capture_name(s.name, k, w))
                 FROM pg_catalog.unnest(ARRAY['events', 'contacts', 'products', 'impulse']) AS k, pg_catalog.unnest(ARRAY['changes', 'stage']) AS w
    LOOP
        IF tbl IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %s OWNER TO %s', tbl, owner);
        END IF;
    END LOOP;
    -- The change-capture trigger functions run as the owner of the logs.
    FOR fn IN SELECT pg_catalog.to_regprocedure(format('segment.%I()', 'capture_' || s.name))
               UNION ALL
               SELECT pg_catalog.to_regprocedure(segment_internal.source_capture_name(s.name, k, 'capture'))
                 FROM pg_catalog.unnest(ARRAY['events', 'contacts', 'products']) AS k
    LOOP
        IF fn IS NOT NULL THEN
            EXECUTE format('ALTER FUNCTION %s OWNER TO %s', fn, owner);
        END IF;
    END LOOP;
END
$$;

COMMENT ON FUNCTION segment.set_owner(regrole, text) IS
    'Makes a role the owner of a segmentation and its tables (profile, change log, stored figures): refreshes run as that role (only by superusers or roles with the privileges of both the old and the new owner)';

COMMENT ON TABLE segment.rules IS
    'Segment rules of each segmentation: name (the segment label), priority (lower first), SQL predicate over the profile columns (and customer.<column> of the customers relation), or a built-in behavioural rule whose thresholds live in segment.segmentations or its source table; a flag_only rule is listed in the flags but never gives the final segment';

CREATE OR REPLACE FUNCTION segment.rule_columns() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    -- the profile's columns but its flags and segment (the rules make those)
    SELECT 'customer_id, ' || segment_internal.profile_columns_sql(NULL, NULL, NULL) || ', as_of, refreshed_at'
$$;

COMMENT ON FUNCTION segment.rule_columns() IS
    'The profile columns a rule predicate may refer to';

CREATE OR REPLACE FUNCTION segment_internal.builtin_predicate(kind text, s segment.segmentations, top_spender_min numeric,
                                          high_value_min double precision)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    e segment.event_sources;
    c segment.contact_sources;
    p segment.product_sources;
BEGIN
    CASE kind
        WHEN 'prospect' THEN
            RETURN 'frequency = 0';
        WHEN 'newcomer' THEN
            RETURN format('frequency > 0 AND tenure_days <= %s', s.new_days);
        WHEN 'at_risk_high_value' THEN
            RETURN CASE WHEN high_value_min IS NULL THEN 'false'
                        ELSE format('p_alive < %s AND clv > %s', s.at_risk_p_alive, high_value_min) END;
        WHEN 'lapsing' THEN
            RETURN format('frequency > 1 AND recency_days > %s * mean_gap_days', s.lapsing_factor);
        WHEN 'due_to_rebuy' THEN
            RETURN format('frequency > 1 AND due_in_days BETWEEN 0 AND %s', s.rebuy_days);
        WHEN 'top_spender' THEN
            RETURN CASE WHEN top_spender_min IS NULL THEN 'false'
                        ELSE format('frequency > 0 AND monetary > %s', top_spender_min) END;
        WHEN 'discount_shopper' THEN
            RETURN format('discount_share > %s', s.discount_share);
        WHEN 'one_time_buyer' THEN
            RETURN 'frequency = 1';
        WHEN 'abandoned_cart', 'indecisive', 'curious_prospect', 'newsletter_subscriber' THEN
            SELECT * INTO e FROM segment.event_sources AS x WHERE x.segmentation = s.name;
            IF NOT FOUND THEN
                RETURN 'false';
            END IF;
            RETURN CASE kind
                WHEN 'abandoned_cart' THEN
                    format('abandoned_at > as_of - interval %L', e.abandoned_days || ' days')
                WHEN 'indecisive' THEN
                    format('(visits >= %s OR cart_adds >= %s) AND (last_order IS NULL OR last_order <= as_of - interval %L)',
                           e.indecisive_visits, e.indecisive_cart_adds, e.lookback)
                WHEN 'curious_prospect' THEN
                    format('frequency = 0 AND last_visit > as_of - interval %L', e.lookback)
                ELSE 'subscribed' END;
        WHEN 'impulse_buyer' THEN
            -- Needs the events' products and the order lines (56_pipeline_impulse.sql).
            SELECT * INTO e FROM segment.event_sources AS x WHERE x.segmentation = s.name;
            IF NOT FOUND OR e.product IS NULL
               OR NOT EXISTS (SELECT FROM segment.product_sources AS x WHERE x.segmentation = s.name) THEN
                RETURN 'false';
            END IF;
            RETURN format('unbrowsed_lines >= %s AND unbrowsed_share >= %s', e.impulse_lines, e.impulse_share);
        WHEN 'angry' THEN
            SELECT * INTO c FROM segment.contact_sources AS x WHERE x.segmentation = s.name;
            RETURN CASE WHEN NOT FOUND THEN 'false'
                        ELSE format('negative_contacts >= %s', c.angry_contacts) END;
        WHEN 'trend_follower', 'due_to_restock' THEN
            SELECT * INTO p FROM segment.product_sources AS x WHERE x.segmentation = s.name;
            IF NOT FOUND THEN
                RETURN 'false';
            END IF;
            RETURN CASE kind
                WHEN 'trend_follower' THEN format('trend_share >= %s AND trend_lines >= %s', p.trend_share, p.trend_lines)
                ELSE format('next_restock BETWEEN as_of::date AND as_of::date + %s', p.restock_days) END;
        ELSE
            RETURN NULL;
    END CASE;
END
$$;

COMMENT ON FUNCTION segment_internal.builtin_predicate(text, segment.segmentations, numeric, double precision) IS
    'SQL predicate of a built-in rule with the thresholds of a segmentation and its sources (top_spender_min: the monetary cut of the top share; high_value_min: the lifetime-value cut of the high-value share); ''false'' for a rule of a source the segmentation does not have';

CREATE OR REPLACE FUNCTION segment.builtin_rules()
    RETURNS TABLE (kind text, name text, priority integer, flag_only boolean, source text)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    VALUES ('angry', 'Angry Customers', 2, false, 'contacts'),
           ('abandoned_cart', 'Abandoned Cart', 6, false, 'events'),
           ('indecisive', 'Indecisive', 7, false, 'events'),
           ('curious_prospect', 'Curious Prospects', 8, false, 'events'),
           ('prospect', 'Prospects', 10, false, NULL),
           ('newcomer', 'Newcomers', 20, false, NULL),
           ('at_risk_high_value', 'At Risk, High Value', 25, false, NULL),
           ('lapsing', 'Lapsing', 30, false, NULL),
           ('due_to_restock', 'Due to Re-stock', 35, false, 'products'),
           ('due_to_rebuy', 'Due to Re-buy', 40, false, NULL),
           ('top_spender', 'Top Spenders', 50, false, NULL),
           ('trend_follower', 'Trend Followers', 55, false, 'products'),
           ('impulse_buyer', 'Impulse Buyers', 57, false, 'events'),
           ('discount_shopper', 'Discount Shoppers', 60, false, NULL),
           ('one_time_buyer', 'One-time Buyers', 70, false, NULL),
           ('newsletter_subscriber', 'Newsletter Subscribers', 80, true, 'events')
$$;

COMMENT ON FUNCTION segment.builtin_rules() IS
    'The built-in rules: kind, segment name, priority, whether it only flags, and the source it needs (NULL: the orders)';

CREATE OR REPLACE FUNCTION segment.add_builtin_rules(segmentation text) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    b     record;
    other text;
BEGIN
    FOR b IN
        SELECT r.* FROM segment.builtin_rules() AS r
         WHERE r.source IS NULL
            OR (r.source = 'events' AND EXISTS (SELECT FROM segment.event_sources AS x
                                                 WHERE x.segmentation = add_builtin_rules.segmentation))
            OR (r.source = 'contacts' AND EXISTS (SELECT FROM segment.contact_sources AS x
                                                   WHERE x.segmentation = add_builtin_rules.segmentation))
            OR (r.source = 'products' AND EXISTS (SELECT FROM segment.product_sources AS x
                                                   WHERE x.segmentation = add_builtin_rules.segmentation))
         ORDER BY r.priority
    LOOP
        CONTINUE WHEN EXISTS (SELECT FROM segment.rules AS r
                               WHERE r.segmentation = add_builtin_rules.segmentation AND r.builtin = b.kind);
        SELECT r.name INTO other FROM segment.rules AS r
         WHERE r.segmentation = add_builtin_rules.segmentation AND (r.name = b.name OR r.priority = b.priority)
         LIMIT 1;
        IF FOUND THEN
            -- Only for the rules of a source: the orders' ones a shop dropped
            -- and replaced are left out quietly, as they always were.
            IF b.source IS NOT NULL THEN
                RAISE NOTICE 'built-in rule "%" was not added to segmentation "%": rule "%" has its name or priority %',
                             b.name, add_builtin_rules.segmentation, other, b.priority
                    USING HINT = format('To add it under another name or priority: INSERT INTO segment.rules (segmentation, name, priority, builtin, flag_only) VALUES (%L, %L, <priority>, %L, %s);',
                                        add_builtin_rules.segmentation, b.name, b.kind, b.flag_only);
            END IF;
            CONTINUE;
        END IF;
        INSERT INTO segment.rules (segmentation, name, priority, builtin, flag_only)
        VALUES (add_builtin_rules.segmentation, b.name, b.priority, b.kind, b.flag_only);
    END LOOP;
END
$$;

COMMENT ON FUNCTION segment.add_builtin_rules(text) IS
    'Adds the built-in behavioural rules (enabled) that a segmentation does not have yet: those of the orders and those of the sources it has';

CREATE OR REPLACE FUNCTION segment_internal.rule_scope_sql(s segment.segmentations, input text, with_customer boolean)
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    customers regclass := pg_catalog.to_regclass(s.customers);
BEGIN
    IF NOT with_customer OR customers IS NULL THEN
        RETURN format('(%s) AS p0', input);
    END IF;
    RETURN format('(%s) AS p0 LEFT JOIN %s AS customer ON customer.%I = p0.customer_id',
                  input, customers, s.customers_key);
END
$$;

COMMENT ON FUNCTION segment_internal.rule_scope_sql(segment.segmentations, text, boolean) IS
    'The FROM clause of the rows the rules see, joined with the customers relation as "customer" when with_customer (internal)';

CREATE OR REPLACE FUNCTION segment_internal.rule_lateral_sql(targets text, predicate text, alias text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('CROSS JOIN LATERAL (SELECT %s FROM (SELECT p0.*) AS p%s) AS %I',
                  targets, CASE WHEN predicate IS NOT NULL THEN format(' WHERE (%s)', predicate) ELSE '' END,
                  alias)
$$;

COMMENT ON FUNCTION segment_internal.rule_lateral_sql(text, text, text) IS
    'The LATERAL subquery that evaluates rule expressions over the profile columns (as p) in the scope of segment_internal.rule_scope_sql() (internal)';

CREATE OR REPLACE FUNCTION segment_internal.reads_customer(predicate text) RETURNS boolean
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT predicate ~* '\mcustomer"?\s*\.'
$$;

COMMENT ON FUNCTION segment_internal.reads_customer(text) IS
    'Whether a rule predicate may refer to customer.<column> of the customers relation (internal)';

CREATE OR REPLACE FUNCTION segment_internal.check_customers_unique(s segment.segmentations) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    customers regclass := pg_catalog.to_regclass(s.customers);
    dup       text;
BEGIN
    IF customers IS NULL THEN
        RETURN;
    END IF;
    dup := segment_internal.duplicate_key(customers, s.customers_key);
    IF dup IS NOT NULL THEN
        RAISE EXCEPTION 'customers relation "%" of segmentation "%" has several rows for customer %',
                        customers, s.name, dup
            USING ERRCODE = 'cardinality_violation',
                  DETAIL = 'Rules that read customer.<column> need one row per customer.',
                  HINT = format('Make %s unique in %s (a primary key), or configure a view with one row per customer.',
                                s.customers_key, customers);
    END IF;
END
$$;

COMMENT ON FUNCTION segment_internal.check_customers_unique(segment.segmentations) IS
    'Raises cardinality_violation when the customers relation of a segmentation has a key on several rows, unless a unique index rules it out (internal)';

CREATE OR REPLACE FUNCTION segment_internal.run_as_owner(segmentation text, statement text) RETURNS void
    AS 'MODULE_PATHNAME', 'segment_run_as_owner' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION segment_internal.run_as_owner(text, text) IS
    'Runs a statement as the owner of a segmentation inside a security-restricted operation; only for roles with the owner''s privileges (internal)';

CREATE OR REPLACE FUNCTION segment_internal.rules_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s     segment.segmentations;
    state text;
    msg   text;
BEGIN
    IF NEW.predicate IS NULL THEN
        RETURN NEW;
    END IF;
    IF pg_catalog.strpos(NEW.predicate, ';') > 0 THEN
        RAISE EXCEPTION 'invalid predicate for rule "%": a predicate is one expression, without ";"', NEW.name
            USING ERRCODE = 'syntax_error';
    END IF;
    SELECT * INTO s FROM segment.segmentations AS x WHERE x.name = NEW.segmentation;
    BEGIN
        -- Planned as the owner, in a security-restricted operation: the
        -- planner runs the immutable functions it folds.
        -- The profile's columns from a row of NULLs of their types, not from
        -- the table: Citus plans no such join over a distributed profile.
        PERFORM segment_internal.run_as_owner(s.name, format('SELECT 1 FROM %s %s LIMIT 0',
                       segment_internal.rule_scope_sql(s, format('SELECT %s FROM (SELECT NULL::%s AS customer_id, (NULL::segment.customer_profile).*, NULL::timestamptz AS as_of, NULL::timestamptz AS refreshed_at) AS p',
                                                        segment.rule_columns(), s.key_type),
                                              segment_internal.reads_customer(NEW.predicate)),
                       segment_internal.rule_lateral_sql('', NEW.predicate, 'r')));
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
        RAISE EXCEPTION 'invalid predicate for rule "%": %', NEW.name, msg
            USING ERRCODE = state,
                  DETAIL = format('The predicate is: %s', NEW.predicate),
                  HINT = 'A predicate is a boolean SQL expression over the profile columns ' ||
                         segment.rule_columns() ||
                         CASE WHEN s.customers IS NOT NULL
                              THEN format(', and the columns of %s, written customer.<column>.', s.customers)
                              WHEN segment_internal.reads_customer(NEW.predicate)
                              THEN '; customer.<column> needs a customers relation: segment.configure(customers => ...).'
                              ELSE '.' END;
    END;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION segment_internal.rules_check() IS
    'Trigger: checks a rule predicate against the profile columns and the customers relation when it is written';

CREATE OR REPLACE FUNCTION segment_internal.owner_rows_check() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    seg   text;
    owner regrole;
BEGIN
    FOREACH seg IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW.segmentation]
                                    WHEN 'DELETE' THEN ARRAY[OLD.segmentation]
                                    ELSE ARRAY[OLD.segmentation, NEW.segmentation] END LOOP
        SELECT x.owner INTO owner FROM segment.segmentations AS x WHERE x.name = seg;
        IF FOUND AND NOT pg_catalog.pg_has_role(owner::oid, 'USAGE') THEN
            RAISE EXCEPTION 'permission denied for the % of segmentation "%"',
                            pg_catalog.replace(TG_TABLE_NAME, '_', ' '), seg
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = format('Only roles with the privileges of its owner, role %s, may change them.', owner);
        END IF;
    END LOOP;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;

COMMENT ON FUNCTION segment_internal.owner_rows_check() IS
    'Trigger: refuses writes to the rows of a segmentation (rules, sources, cluster names) by roles without the privileges of its owner (internal)';

CREATE OR REPLACE FUNCTION segment.add_rule(name text, predicate text, priority integer,
                                 segmentation text DEFAULT NULL, flag_only boolean DEFAULT false)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    IF name IS NULL OR predicate IS NULL OR priority IS NULL OR flag_only IS NULL THEN
        RAISE EXCEPTION 'name, predicate, priority and flag_only must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM segment.rules AS r WHERE r.segmentation = s.name AND r.name = add_rule.name) THEN
        RAISE EXCEPTION 'rule "%" of segmentation "%" already exists', name, s.name
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Use segment.drop_rule() first, or UPDATE segment.rules.';
    END IF;
    IF EXISTS (SELECT 1 FROM segment.rules AS r WHERE r.segmentation = s.name AND r.priority = add_rule.priority) THEN
        RAISE EXCEPTION 'segmentation "%" already has a rule of priority %', s.name, priority
            USING ERRCODE = 'duplicate_object',
                  DETAIL = format('Rule "%s" has it.', (SELECT r.name FROM segment.rules AS r
                                                         WHERE r.segmentation = s.name
                                                           AND r.priority = add_rule.priority));
    END IF;
    INSERT INTO segment.rules (segmentation, name, priority, predicate, flag_only)
    VALUES (s.name, name, priority, predicate, flag_only);
END
$$;

COMMENT ON FUNCTION segment.add_rule(text, text, integer, text, boolean) IS
    'Adds a user rule (segment label, SQL predicate over the profile columns and customer.<column>, priority: lower wins; flag_only: listed in the flags, never the final segment) after checking the predicate';

CREATE OR REPLACE FUNCTION segment.drop_rule(name text, segmentation text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    DELETE FROM segment.rules AS r WHERE r.segmentation = s.name AND r.name = drop_rule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule "%" of segmentation "%" does not exist', name, s.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION segment.drop_rule(text, text) IS
    'Drops a rule of a segmentation (a built-in one too: segment.add_builtin_rules() brings those back)';

CREATE OR REPLACE FUNCTION segment.enable_rule(name text, segmentation text DEFAULT NULL,
                                    enabled boolean DEFAULT true)
    RETURNS void
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
BEGIN
    UPDATE segment.rules AS r SET enabled = coalesce(enable_rule.enabled, false)
     WHERE r.segmentation = s.name AND r.name = enable_rule.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'rule "%" of segmentation "%" does not exist', name, s.name
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION segment.enable_rule(text, text, boolean) IS
    'Enables (or with false disables) a rule of a segmentation';

COMMENT ON TABLE segment.refreshes IS
    'One row per completed refresh: as-of time, the cut points it scored with (recency in days, frequency in orders, monetary; fixed_breaks lists those set by the segmentation rather than computed as quantiles), the top-spender and high-value cuts, customer counts per segment, and the models it fitted: lifetime value (status, note, BG/NBD and Gamma-Gamma parameters) and clusters (status, note, k-means model); what it read from each source (events, contacts, products: rows, customers, rows skipped and why); written: the profile rows it inserted, updated or deleted (a customer whose values did not change is not written); mode: full or incremental, full_reason why not incremental, recomputed the customers whose figures it computed from their orders, stage_key what the stored figures depend on; rescored the customers whose segment it evaluated (an incremental refresh rescores only those whose figures changed or lie where the cut points moved, unless rescore_reason says why it rescored everyone), score_key what the segments depend on besides the figures; clv_model the purchase model lifetime value used (bgnbd, mbgnbd, pareto_nbd) and clv_fit its fitted parameters (bgnbd repeats them when it is BG/NBD); cut_ranks, for each computed cut point, how many stored figures lie below it and at or below it (the next incremental refresh moves the cut points by the figures that changed); see the views segment.refresh_models and segment.refresh_sources';

COMMENT ON TABLE segment.history IS
    'Segment changes: each refresh records the customers whose final segment differs from the previous refresh (the first refresh records everyone, from NULL; a customer who disappears goes to NULL)';

CREATE OR REPLACE FUNCTION segment_internal.refresh_lock_key(segmentation text, OUT classid integer, OUT objid integer)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.hashtext('segment.refresh'), pg_catalog.hashtext(segmentation)
$$;

COMMENT ON FUNCTION segment_internal.refresh_lock_key(text) IS
    'The advisory lock key that serializes the refreshes of a segmentation';

CREATE OR REPLACE FUNCTION segment_internal.finite_outputs_sql(alias text) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_table(name text, query text) RETURNS void
    AS 'MODULE_PATHNAME', 'segment_refresh_table' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION segment_internal.refresh_table(text, text) IS
    'Creates a temporary table of a refresh and fills it with a query, outside and inside the security-restricted operation (internal)';

CREATE OR REPLACE FUNCTION segment_internal.bgnbd_predictions(model segment.bgnbd_model,
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

CREATE OR REPLACE FUNCTION segment_internal.clv_predictions_sql(s segment.segmentations, model text, gamma_gamma text)
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

CREATE OR REPLACE FUNCTION segment_internal.days_since_sql(s segment.segmentations, as_of timestamptz, expr text)
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

CREATE OR REPLACE FUNCTION segment_internal.numeric_double(numeric) RETURNS double precision
    AS 'MODULE_PATHNAME', 'segment_numeric_double' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.numeric_double(numeric) IS
    'The numeric as double precision, equal to its cast, without the text round trip (internal)';

CREATE OR REPLACE FUNCTION segment_internal.unpacked(s segment.rfm_summary) RETURNS segment.rfm_summary
    AS 'MODULE_PATHNAME', 'segment_unpacked' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segment_internal.unpacked(segment.rfm_summary) IS
    'The figures of a customer in plain form, so that reading their fields does not copy the stored composite once per field (internal)';

CREATE OR REPLACE FUNCTION segment_internal.scored_query(s segment.segmentations, as_of timestamptz,
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

CREATE OR REPLACE FUNCTION segment_internal.cluster_features_sql(s segment.segmentations, alias text) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('ARRAY[%s]::double precision[]',
                  pg_catalog.string_agg(format('%I.%I', alias, f), ', ' ORDER BY i))
      FROM pg_catalog.unnest(s.cluster_features) WITH ORDINALITY AS u(f, i)
$$;

COMMENT ON FUNCTION segment_internal.cluster_features_sql(segment.segmentations, text) IS
    'SQL expression of the feature vector a segmentation clusters on (internal)';

CREATE OR REPLACE FUNCTION segment_internal.cluster_ready_sql(s segment.segmentations, alias text) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('%I.frequency > 0', alias) ||
           pg_catalog.string_agg(format(' AND %I.%I IS NOT NULL', alias, f), '' ORDER BY i)
      FROM pg_catalog.unnest(s.cluster_features) WITH ORDINALITY AS u(f, i)
$$;

COMMENT ON FUNCTION segment_internal.cluster_ready_sql(segment.segmentations, text) IS
    'SQL condition for a profile row to be clustered: a buyer whose clustering features are all known (internal)';

CREATE OR REPLACE FUNCTION segment_internal.rule_input_query(s segment.segmentations, source text, kmeans text)
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

CREATE OR REPLACE FUNCTION segment_internal.kept_orders_sql(s segment.segmentations, as_of timestamptz) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.run_source_statement(s segment.segmentations, kind text, tbl text, query text)
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

CREATE OR REPLACE FUNCTION segment_internal.drop_refresh_tables() RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.line_groups_sql(s segment.segmentations, p segment.product_sources,
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_line_stages_by_product(s segment.segmentations, p segment.product_sources,
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

CREATE OR REPLACE FUNCTION segment_internal.line_pass_parts(s segment.segmentations, p segment.product_sources,
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_line_pass(s segment.segmentations, as_of timestamptz, more text)
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_source_counts(s segment.segmentations, sources text[], members regclass,
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

CREATE OR REPLACE FUNCTION segment_internal.rules_query(s segment.segmentations, top_spender_min numeric,
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

CREATE OR REPLACE FUNCTION segment_internal.rules_read_customer(s segment.segmentations)
    RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT s.customers IS NOT NULL AND EXISTS (
        SELECT FROM segment.rules AS r
         WHERE r.segmentation = s.name AND r.enabled AND segment_internal.reads_customer(r.predicate))
$$;

COMMENT ON FUNCTION segment_internal.rules_read_customer(segment.segmentations) IS
    'Whether the enabled rules of a segmentation read the rows of its customers relation (internal)';

CREATE OR REPLACE FUNCTION segment_internal.rules_failed(s segment.segmentations, top_spender_min numeric,
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

CREATE OR REPLACE FUNCTION segment_internal.moves_sql() RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_history(s segment.segmentations, refresh_id bigint,
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_history_and_profile(s segment.segmentations, refresh_id bigint,
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_write_profile(prof regclass, narrow boolean, gone bigint, added bigint)
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_run(segmentation text, as_of timestamptz, wait boolean, mode text)
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

CREATE OR REPLACE FUNCTION segment.refresh(segmentation text DEFAULT NULL, as_of timestamptz DEFAULT NULL,
                                wait boolean DEFAULT true, mode text DEFAULT 'auto')
    RETURNS segment.refreshes
    AS 'MODULE_PATHNAME', 'segment_refresh_as_owner' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION segment.refresh(text, timestamptz, boolean, text) IS
    'Recomputes the profile of a segmentation (NULL: the default one) as of a time (NULL: its as-of rule) and records the changes; waits for a concurrent refresh of the same segmentation unless wait is false; mode auto (incremental where it is safe), full or incremental';

CREATE OR REPLACE VIEW segment.cut_points AS
    SELECT s.name AS segmentation, r.id AS refresh_id, r.as_of, r.buckets, r.fixed_breaks,
           r.r_breaks AS recency_days_breaks, r.f_breaks AS frequency_breaks,
           r.m_breaks AS monetary_breaks, r.top_spender_min, r.high_value_min
      FROM segment.segmentations AS s
      JOIN segment.refreshes AS r ON r.id = s.last_refresh;

COMMENT ON VIEW segment.cut_points IS
    'Cut points used by the latest refresh of each segmentation: score(value, breaks) = 1 + number of breaks below the value (recency reversed: fewer days scores higher); the top-spender (monetary) and high-value (clv) cuts of the built-in rules';

CREATE OR REPLACE VIEW segment.rule_predicates AS
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

CREATE OR REPLACE VIEW segment.refresh_sources AS
    SELECT r.segmentation, r.id AS refresh_id, r.as_of, x.key AS source,
           (x.value->>'rows')::bigint AS rows, (x.value->>'customers')::bigint AS customers,
           (x.value->>'skipped')::bigint AS skipped, x.value->'details' AS details
      FROM segment.refreshes AS r
     CROSS JOIN LATERAL pg_catalog.jsonb_each(r.sources) AS x;

COMMENT ON VIEW segment.refresh_sources IS
    'What each refresh read from each source (events, contacts, products): rows read, customers of the profile with data from it, rows skipped, and the counts by reason (details: unknown_type, after_as_of, no_time, unknown_customer, no_customer; no_order, excluded_order, bad_quantity; also unrated_in_window and missing_product, which are used, not skipped)';

CREATE OR REPLACE FUNCTION segment_internal.capture_trigger_name(segmentation text, event text) RETURNS name
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.left(format('segment_%s_%s', event, segmentation), 63)::name
$$;

COMMENT ON FUNCTION segment_internal.capture_trigger_name(text, text) IS
    'Name of a change-capture trigger of a segmentation on its orders relation (internal)';

CREATE OR REPLACE FUNCTION segment_internal.drop_capture_objects(fn regprocedure, tables text[]) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.drop_capture(segmentation text) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.capture_unsupported(orders regclass) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.setup_capture(s segment.segmentations) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.stage_indexes(s segment.segmentations) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.source_capture_name(segmentation text, kind text, what text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN what = 'capture' THEN format('segment.%I()', kind || '_capture_' || segmentation)
                ELSE format('segment.%I', kind || '_' || what || '_' || segmentation) END
$$;

COMMENT ON FUNCTION segment_internal.source_capture_name(text, text, text) IS
    'Qualified name of the change log, stage or capture function of a segmentation''s events, contacts or products source (internal)';

CREATE OR REPLACE FUNCTION segment_internal.activity_source(s segment.segmentations, kind text,
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

CREATE OR REPLACE FUNCTION segment_internal.source_stage_key(s segment.segmentations, kind text) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.stage_key(s segment.segmentations) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.stage_has_clv(s segment.segmentations) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.count(*) = 4
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = pg_catalog.to_regclass(format('segment.%I', 'stage_' || s.name))
       AND a.attname IN ('clv_x', 'clv_t_x', 'clv_first', 'clv_mean_value') AND NOT a.attisdropped
$$;

COMMENT ON FUNCTION segment_internal.stage_has_clv(segment.segmentations) IS
    'Whether the stored figures of a segmentation keep lifetime value''s summary (internal)';

CREATE OR REPLACE FUNCTION segment_internal.clv_period_start(as_of timestamptz, time_unit text) RETURNS double precision
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT (CASE WHEN time_unit = 'week' THEN x.d - ((x.d + 5) % 7 + 7) % 7 ELSE x.d END)::double precision
      FROM (SELECT as_of::date - date '2000-01-01' AS d) AS x
$$;

COMMENT ON FUNCTION segment_internal.clv_period_start(timestamptz, text) IS
    'The first day of as_of''s purchase period of a time unit (day, or week from Monday), in days since 2000-01-01 (internal)';

CREATE OR REPLACE FUNCTION segment_internal.stage_clv_columns_sql(s segment.segmentations, as_of timestamptz,
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

CREATE OR REPLACE FUNCTION segment_internal.stage_rows_sql(s segment.segmentations, as_of timestamptz) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.incremental_blocker(s segment.segmentations, as_of timestamptz, sources text[])
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

CREATE OR REPLACE FUNCTION segment_internal.figures_sql(s segment.segmentations, as_of timestamptz, src text, disc text,
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_figures(orders regclass, key anyelement, customer name, ordered_at name,
                                        amount name, discount name, status name, exclude_status text[],
                                        as_of timestamptz, time_zone segment.time_zone)
    RETURNS TABLE (customer_id anyelement, s segment.rfm_summary, discounted bigint)
    AS 'MODULE_PATHNAME', 'segment_refresh_figures' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO' ROWS 100000;

COMMENT ON FUNCTION segment_internal.refresh_figures(regclass, anyelement, name, name, name, name, name, text[],
                                            timestamptz, segment.time_zone) IS
    'Per-customer figures of the kept orders up to as_of, as figures_sql() computes them, by a hash table fed from a scan (internal)';

CREATE OR REPLACE FUNCTION segment_internal.refresh_figures(orders regclass, key anyelement, customer name, ordered_at name,
                                        amount name, discount name, status name, exclude_status text[],
                                        as_of timestamptz, time_zone segment.time_zone, clv_time_unit text)
    RETURNS TABLE (customer_id anyelement, s segment.rfm_summary, discounted bigint, clv_x integer,
                   clv_t_x double precision, clv_t_cal double precision, clv_mean_value double precision)
    AS 'MODULE_PATHNAME', 'segment_refresh_figures' LANGUAGE C STABLE
    SET search_path = pg_catalog, pg_temp SET DateStyle = 'ISO' ROWS 100000;

COMMENT ON FUNCTION segment_internal.refresh_figures(regclass, anyelement, name, name, name, name, name, text[],
                                            timestamptz, segment.time_zone, text) IS
    'Per-customer figures of the kept orders up to as_of with their lifetime-value summary (clv_summary of the purchases in clv_time_unit), as figures_sql() computes them, by a hash table fed from a scan (internal)';

CREATE OR REPLACE FUNCTION segment_internal.refresh_figures(orders regclass, key anyelement, customer name, ordered_at name,
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_figures_models(OUT fitted boolean, OUT model segment.bgnbd_model,
                                                        OUT gamma_gamma segment.gamma_gamma_model,
                                                        OUT high_value_min double precision, OUT bad bigint)
    AS 'MODULE_PATHNAME', 'segment_refresh_figures_models' LANGUAGE C VOLATILE;

COMMENT ON FUNCTION segment_internal.refresh_figures_models() IS
    'The lifetime-value models the last refresh_figures() of the session fitted, its high-value cut and count of values out of range, once (internal)';

CREATE OR REPLACE FUNCTION segment_internal.full_figures_sql(s segment.segmentations, as_of timestamptz, src text, disc text,
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

CREATE OR REPLACE FUNCTION segment_internal.has_customer_index(orders regclass, customer name) RETURNS boolean
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

CREATE OR REPLACE FUNCTION segment_internal.recompute_by_customer_sql(s segment.segmentations, as_of timestamptz, src text,
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

CREATE OR REPLACE FUNCTION segment_internal.later_orders_sql(s segment.segmentations, as_of timestamptz, src text, more text)
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_stage(s segment.segmentations, as_of timestamptz, src text, disc text,
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

CREATE OR REPLACE FUNCTION segment_internal.score_key(s segment.segmentations, as_of timestamptz) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.query_reads_only_row(query text, allowed regclass) RETURNS boolean
    AS 'MODULE_PATHNAME', 'segment_query_reads_only_row' LANGUAGE C STABLE;

COMMENT ON FUNCTION segment_internal.query_reads_only_row(text, regclass) IS
    'Whether a query is one SELECT that calls only immutable functions and reads no relation but the one allowed (parsed, never run) (internal)';

CREATE OR REPLACE FUNCTION segment_internal.narrow_blocker(s segment.segmentations, last_key text, key text, prof regclass)
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

CREATE OR REPLACE FUNCTION segment_internal.moved_cuts_sql(as_of timestamptz, elapsed boolean,
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

CREATE OR REPLACE FUNCTION segment_internal.moved_breaks(s segment.segmentations, as_of timestamptz, last segment.refreshes,
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

CREATE OR REPLACE FUNCTION segment_internal.top_spender_cut(s segment.segmentations, last segment.refreshes, stage regclass,
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

CREATE OR REPLACE FUNCTION segment_internal.top_spender_at(stage regclass, ranked double precision[],
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

CREATE OR REPLACE FUNCTION segment_internal.monetary_range_sql(lo double precision, hi double precision) RETURNS text
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET extra_float_digits = 3 AS
$$
    SELECT pg_catalog.concat_ws(' AND ', 'true',
        CASE WHEN lo IS NOT NULL THEN format('(st.s).monetary >= %s', lo::numeric - abs(lo::numeric) * 1e-9 - 1e-9) END,
        CASE WHEN hi IS NOT NULL THEN format('(st.s).monetary <= %s', hi::numeric + abs(hi::numeric) * 1e-9 + 1e-9) END)
$$;

COMMENT ON FUNCTION segment_internal.monetary_range_sql(double precision, double precision) IS
    'SQL condition on a stage row, on its indexed monetary, that its monetary as double precision may lie in a range (wider than exact) (internal)';

CREATE OR REPLACE FUNCTION segment_internal.drop_source_capture(segmentation text, kind text) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.give_capture_to_owner(s segment.segmentations, log text, stage text, fn text)
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

CREATE OR REPLACE FUNCTION segment_internal.setup_source_capture(s segment.segmentations, kind text) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.source_incremental_blocker(s segment.segmentations, kind text) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.summary_at_sql(kind text, expr text, as_of text, start text) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.activity_summary_sql(s segment.segmentations, kind text, as_of timestamptz,
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

CREATE OR REPLACE FUNCTION segment_internal.write_stage(stage text, tbl text, cols text[], vals text[]) RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.add_source_affected() RETURNS void
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_activity_stages(s segment.segmentations, as_of timestamptz, sources text[],
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

CREATE OR REPLACE FUNCTION segment_internal.activity_tables(s segment.segmentations, as_of timestamptz, sources text[],
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

CREATE OR REPLACE FUNCTION segment_internal.product_capture_relations(s segment.segmentations,
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

CREATE OR REPLACE FUNCTION segment_internal.setup_product_capture(s segment.segmentations) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.product_stage_key(s segment.segmentations) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.product_incremental_blocker(s segment.segmentations) RETURNS text
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_product_stage(s segment.segmentations, as_of timestamptz, sources text[],
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

CREATE OR REPLACE FUNCTION segment_internal.short_float(v double precision) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.btrim(pg_catalog.to_char(v, '9.999EEEE'))
$$;

COMMENT ON FUNCTION segment_internal.short_float(double precision) IS
    'A number in scientific notation with four significant digits, as the notes of a refresh show parameters';

CREATE OR REPLACE FUNCTION segment_internal.refresh_fit_clv(s segment.segmentations, buyers bigint, repeaters bigint,
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_fit_clusters(s segment.segmentations, refresh_id bigint, input text,
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

CREATE OR REPLACE VIEW segment.refresh_models AS
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

CREATE OR REPLACE FUNCTION segment.name_cluster(cluster integer, name text, segmentation text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION segment.describe_clusters(segmentation text DEFAULT NULL)
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

CREATE OR REPLACE FUNCTION segment.choose_clv_model(calibration_end date, holdout_end date,
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

CREATE OR REPLACE FUNCTION segment_internal.impulse_columns_sql(alias text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('coalesce(%1$I.unbrowsed, 0) AS unbrowsed_lines, '
                  '%1$I.unbrowsed::double precision / nullif(%1$I.lines, 0) AS unbrowsed_share', alias)
$$;

COMMENT ON FUNCTION segment_internal.impulse_columns_sql(text) IS
    'The profile columns unbrowsed_lines and unbrowsed_share from the Impulse Buyers stage table aliased alias (internal)';

CREATE OR REPLACE FUNCTION segment_internal.has_impulse(s segment.segmentations, sources text[]) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT 'events' = ANY (sources) AND 'products' = ANY (sources)
           AND EXISTS (SELECT FROM segment.event_sources AS e WHERE e.segmentation = s.name AND e.product IS NOT NULL)
           AND EXISTS (SELECT FROM segment.product_sources AS p WHERE p.segmentation = s.name)
$$;

COMMENT ON FUNCTION segment_internal.has_impulse(segment.segmentations, text[]) IS
    'Whether a refresh computes Impulse Buyers: events with a product column and order lines among its sources (internal)';

CREATE OR REPLACE FUNCTION segment_internal.refresh_impulse_pass(s segment.segmentations, as_of timestamptz, sources text[],
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

CREATE OR REPLACE FUNCTION segment_internal.refresh_impulse_stage(s segment.segmentations, as_of timestamptz, sources text[],
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

CREATE OR REPLACE FUNCTION segment.segments_at(refresh_id bigint)
    RETURNS TABLE (customer_id text, segment text)
    LANGUAGE sql STABLE STRICT SET search_path = pg_catalog, pg_temp AS
$$
    SELECT l.customer_id, l.to_segment
      FROM (SELECT DISTINCT ON (h.customer_id) h.customer_id, h.to_segment
              FROM segment.history AS h
             WHERE h.segmentation = (SELECT r.segmentation FROM segment.refreshes AS r
                                      WHERE r.id = segments_at.refresh_id)
               AND h.refresh_id <= segments_at.refresh_id
             ORDER BY h.customer_id, h.refresh_id DESC) AS l
     WHERE l.to_segment IS NOT NULL
$$;

COMMENT ON FUNCTION segment.segments_at(bigint) IS
    'Each customer''s segment as of a refresh, rebuilt from segment.history (customers without one are left out)';

CREATE OR REPLACE FUNCTION segment.transitions(segmentation text DEFAULT NULL,
                                    from_refresh bigint DEFAULT NULL, to_refresh bigint DEFAULT NULL)
    RETURNS TABLE (from_segment text, to_segment text, customers bigint)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s    segment.segmentations;
    a    segment.refreshes;
    b    segment.refreshes;
BEGIN
    IF to_refresh IS NULL THEN
        s := segment_internal.segmentation_row(segmentation);
        SELECT * INTO b FROM segment.refreshes AS r WHERE r.id = s.last_refresh;
    ELSE
        SELECT * INTO b FROM segment.refreshes AS r WHERE r.id = to_refresh;
    END IF;
    IF b.id IS NULL THEN
        RAISE EXCEPTION 'refresh % does not exist', coalesce(to_refresh::text, '(latest)')
            USING ERRCODE = 'no_data_found',
                  HINT = 'Completed refreshes are listed in segment.refreshes.';
    END IF;
    IF from_refresh IS NULL THEN
        SELECT * INTO a FROM segment.refreshes AS r
         WHERE r.segmentation = b.segmentation AND r.id < b.id ORDER BY r.id DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'refresh % is the first of segmentation "%"', b.id, b.segmentation
                USING ERRCODE = 'no_data_found',
                      HINT = 'Transitions need two refreshes.';
        END IF;
    ELSE
        SELECT * INTO a FROM segment.refreshes AS r WHERE r.id = from_refresh;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'refresh % does not exist', from_refresh
                USING ERRCODE = 'no_data_found',
                      HINT = 'Completed refreshes are listed in segment.refreshes.';
        END IF;
    END IF;
    IF a.segmentation <> b.segmentation THEN
        RAISE EXCEPTION 'refreshes % and % belong to different segmentations ("%" and "%")',
                        a.id, b.id, a.segmentation, b.segmentation
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
        SELECT x.segment, y.segment, pg_catalog.count(*)
          FROM segment.segments_at(a.id) AS x
          FULL JOIN segment.segments_at(b.id) AS y ON y.customer_id = x.customer_id
         WHERE x.segment IS NOT NULL OR y.segment IS NOT NULL
         GROUP BY 1, 2
         ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;
END
$$;

COMMENT ON FUNCTION segment.transitions(text, bigint, bigint) IS
    'How many customers went from each segment to each segment between two refreshes (default: the last two of the default segmentation); NULL means absent';

CREATE OR REPLACE FUNCTION public.segment_of(customer_id integer) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.segment_of(customer_id bigint) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.segment_of(customer_id text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.segment_of(customer_id uuid) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.segment_of(customer_id integer, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.segment_of(customer_id bigint, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.segment_of(customer_id text, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.segment_of(customer_id uuid, segmentation text) RETURNS text
    AS 'MODULE_PATHNAME', 'segment_segment_of' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION public.segment_of(integer) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.segment_of(bigint) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.segment_of(text) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.segment_of(uuid) IS
    'Final segment of a customer in the default segmentation''s profile as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.segment_of(integer, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

COMMENT ON FUNCTION public.segment_of(bigint, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

COMMENT ON FUNCTION public.segment_of(text, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

COMMENT ON FUNCTION public.segment_of(uuid, text) IS
    'Final segment of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

CREATE OR REPLACE FUNCTION public.profile_of(customer_id integer) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.profile_of(customer_id bigint) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.profile_of(customer_id text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.profile_of(customer_id uuid) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.profile_of(customer_id integer, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.profile_of(customer_id bigint, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.profile_of(customer_id text, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;

CREATE OR REPLACE FUNCTION public.profile_of(customer_id uuid, segmentation text) RETURNS segment.customer_profile
    AS 'MODULE_PATHNAME', 'segment_profile_of' LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION public.profile_of(integer) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.profile_of(bigint) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.profile_of(text) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.profile_of(uuid) IS
    'Profile row of a customer in the default segmentation as of the query''s snapshot; NULL for an unknown customer';

COMMENT ON FUNCTION public.profile_of(integer, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

COMMENT ON FUNCTION public.profile_of(bigint, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

COMMENT ON FUNCTION public.profile_of(text, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

COMMENT ON FUNCTION public.profile_of(uuid, text) IS
    'Profile row of a customer in a named segmentation (NULL: the default one); NULL for an unknown customer';

CREATE OR REPLACE FUNCTION segment_internal.require_pg_cron(job text, schedule text, command text) RETURNS void
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    cron_db text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF cron_db IS NULL THEN
        RAISE EXCEPTION 'pg_cron is not installed'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Install pg_cron (Debian: postgresql-15-cron), add it to shared_preload_libraries, restart the server, then run CREATE EXTENSION pg_cron in the database named by cron.database_name.';
    ELSIF cron_db <> pg_catalog.current_database() THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('pg_cron runs its jobs from database "%s" (cron.database_name).', cron_db),
                  HINT = CASE WHEN schedule IS NULL
                              THEN format('Connect to database "%s" and run: SELECT cron.unschedule(%L);',
                                          cron_db, job)
                              ELSE format('Connect to database "%s" and run: SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                                          cron_db, job, schedule, command, pg_catalog.current_database()) END;
    ELSE
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', pg_catalog.current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION pg_cron.';
    END IF;
END
$$;

COMMENT ON FUNCTION segment_internal.require_pg_cron(text, text, text) IS
    'Raises an error with a hint unless pg_cron is installed in this database (schedule NULL: the hint is for unscheduling)';

CREATE OR REPLACE FUNCTION segment_internal.schedule_role(s segment.segmentations) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    owner_name text := (SELECT r.rolname FROM pg_catalog.pg_roles AS r WHERE r.oid = s.owner);
BEGIN
    IF owner_name IS NULL THEN
        RAISE EXCEPTION 'the owner of segmentation "%" no longer exists', s.name
            USING ERRCODE = 'undefined_object',
                  HINT = 'A superuser can give it another one: segment.set_owner(role, segmentation).';
    END IF;
    IF owner_name <> current_user AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r
                                            WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'the refresh job of segmentation "%" runs as its owner, role "%"', s.name, owner_name
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'pg_cron registers a job for the current user; only a superuser may register one for another role.',
                  HINT = format('Run SET ROLE %I first, or ask a superuser.', owner_name);
    END IF;
    RETURN owner_name;
END
$$;

COMMENT ON FUNCTION segment_internal.schedule_role(segment.segmentations) IS
    'The role the pg_cron job of a segmentation runs as (its owner); raises insufficient_privilege unless the current user is that role or a superuser (internal)';

CREATE OR REPLACE FUNCTION segment.schedule(segmentation text DEFAULT NULL, schedule text DEFAULT '0 3 * * *')
    RETURNS bigint
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s       segment.segmentations := segment_internal.segmentation_row(segmentation);
    job     text := 'segment_refresh_' || s.name;
    command text := format('SELECT segment.refresh(%L)', s.name);
    role    text;
    jobid   bigint;
BEGIN
    IF schedule IS NULL THEN
        RAISE EXCEPTION 'schedule must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'A cron expression such as ''0 3 * * *'' (every day at 03:00).';
    END IF;
    PERFORM segment_internal.require_pg_cron(job, schedule, command);
    role := segment_internal.schedule_role(s);
    IF role = current_user THEN
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING job, schedule, command;
    ELSE
        EXECUTE 'SELECT cron.schedule_in_database($1, $2, $3, $4, $5)' INTO jobid
            USING job, schedule, command, pg_catalog.current_database(), role;
    END IF;
    RETURN jobid;
END
$$;

COMMENT ON FUNCTION segment.schedule(text, text) IS
    'Registers with pg_cron a job "segment_refresh_<segmentation>" that refreshes a segmentation (NULL: the default one) on a cron schedule, run as the segmentation''s owner (the owner itself or a superuser may schedule it); returns the job id';

CREATE OR REPLACE FUNCTION segment.unschedule(segmentation text DEFAULT NULL) RETURNS boolean
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s     segment.segmentations := segment_internal.segmentation_row(segmentation);
    job   text := 'segment_refresh_' || s.name;
    role  text;
    jobid bigint;
BEGIN
    PERFORM segment_internal.require_pg_cron(job, NULL, NULL);
    role := segment_internal.schedule_role(s);
    EXECUTE 'SELECT j.jobid FROM cron.job AS j WHERE j.jobname = $1 AND j.username = $2'
        INTO jobid USING job, role;
    IF jobid IS NOT NULL THEN
        EXECUTE 'SELECT cron.unschedule($1)' USING jobid;
    END IF;
    RETURN jobid IS NOT NULL;
END
$$;

COMMENT ON FUNCTION segment.unschedule(text) IS
    'Removes the pg_cron job that refreshes a segmentation (NULL: the default one), registered for its owner; false when there was none';

COMMENT ON TABLE segment.segmentation_directory IS
    'The segmentations whose profile is distributed with Citus, replicated to every node for segment_of() and profile_of() there (kept by segment.distribute() and a trigger on segment.segmentations)';

CREATE OR REPLACE FUNCTION segment_internal.citus_partition_method(rel regclass) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    method text;
BEGIN
    IF rel IS NOT NULL AND pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        EXECUTE 'SELECT partmethod::pg_catalog.text FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1'
           INTO method USING rel;
    END IF;
    RETURN method;
END
$$;

COMMENT ON FUNCTION segment_internal.citus_partition_method(regclass) IS
    'The Citus partition method of a relation (h: hash, n: reference or single shard), NULL when Citus does not manage it (internal)';

CREATE OR REPLACE FUNCTION segment_internal.is_citus_table(rel regclass) RETURNS boolean
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment_internal.citus_partition_method(rel) IS NOT NULL
$$;

COMMENT ON FUNCTION segment_internal.is_citus_table(regclass) IS
    'Whether a relation is a Citus table; false without Citus (internal)';

CREATE OR REPLACE FUNCTION segment_internal.sync_directory() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN;
    END IF;
    IF NOT segment_internal.is_citus_table('segment.segmentation_directory') THEN
        IF NOT EXISTS (SELECT FROM segment.segmentations AS x
                        WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)))) THEN
            RETURN;
        END IF;
        PERFORM pg_catalog.create_reference_table('segment.segmentation_directory');
    END IF;
    IF EXISTS (SELECT x.name, x.is_default, x.profile, x.last_refresh
                 FROM segment.segmentations AS x
                WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)))
               EXCEPT
               SELECT d.name, d.is_default, d.profile, d.last_refresh
                 FROM segment.segmentation_directory AS d)
       OR EXISTS (SELECT d.name, d.is_default, d.profile, d.last_refresh
                    FROM segment.segmentation_directory AS d
                  EXCEPT
                  SELECT x.name, x.is_default, x.profile, x.last_refresh
                    FROM segment.segmentations AS x
                   WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)))) THEN
        DELETE FROM segment.segmentation_directory;
        INSERT INTO segment.segmentation_directory (name, is_default, profile, last_refresh)
        SELECT x.name, x.is_default, x.profile, x.last_refresh
          FROM segment.segmentations AS x
         WHERE segment_internal.is_citus_table(pg_catalog.to_regclass(format('segment.%I', x.profile)));
    END IF;
END
$$;

COMMENT ON FUNCTION segment_internal.sync_directory() IS
    'Copies the entries of segment.segmentations whose profile is a Citus table into the reference table segment.segmentation_directory (internal)';

CREATE OR REPLACE FUNCTION segment_internal.sync_directory_trigger() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
BEGIN
    PERFORM segment_internal.sync_directory();
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION segment_internal.sync_directory_trigger() IS
    'Trigger on segment.segmentations: keeps segment.segmentation_directory up to date (internal)';

CREATE OR REPLACE FUNCTION segment.distribute(segmentation text DEFAULT NULL, colocate_with regclass DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s segment.segmentations := segment_internal.segmentation_row(segmentation);
    prof regclass := pg_catalog.to_regclass(format('segment.%I', s.profile));
    target regclass := colocate_with;
    done text;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Run CREATE EXTENSION citus on every node, then add the workers with citus_add_node().';
    END IF;
    IF prof IS NULL THEN
        RAISE EXCEPTION 'profile table "segment.%" of segmentation "%" does not exist', s.profile, s.name
            USING ERRCODE = 'undefined_table', HINT = 'Run segment.configure() again to create it.';
    END IF;
    IF target IS NOT NULL AND segment_internal.citus_partition_method(target) IS DISTINCT FROM 'h' THEN
        RAISE EXCEPTION 'relation "%" is not distributed by hash with Citus', target
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name a table distributed by the customer key, or leave colocate_with out.';
    END IF;
    IF target IS NULL THEN
        target := CASE WHEN segment_internal.citus_partition_method(pg_catalog.to_regclass(s.customers)) = 'h'
                            THEN pg_catalog.to_regclass(s.customers)
                       WHEN segment_internal.citus_partition_method(pg_catalog.to_regclass(s.orders)) = 'h'
                            THEN pg_catalog.to_regclass(s.orders) END;
    END IF;

    IF segment_internal.is_citus_table(prof) THEN
        done := format('profile %s was already a Citus table', prof);
    ELSIF target IS NOT NULL THEN
        PERFORM pg_catalog.create_distributed_table(prof, 'customer_id', colocate_with => target::text);
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(prof);
        done := format('profile %s distributed by customer_id, colocated with %s', prof, target);
    ELSE
        PERFORM pg_catalog.create_reference_table(prof);
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(prof);
        done := format('profile %s replicated to every node (neither the customers nor the orders are distributed by hash)',
                       prof);
    END IF;
    PERFORM segment_internal.sync_directory();
    RETURN done;
END
$$;

COMMENT ON FUNCTION segment.distribute(text, regclass) IS
    'Prepares a segmentation (NULL: the default one) for a Citus cluster: distributes its profile colocated with the customers or orders (or replicates it), and makes it known to the workers so that segment_of() works in queries over distributed tables';

CREATE OR REPLACE FUNCTION segment_internal.html_escape(t text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
           t, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;

COMMENT ON FUNCTION segment_internal.html_escape(text) IS
    'The text with &, <, >, " and '' replaced by HTML entities (safe in element content and quoted attributes)';

CREATE OR REPLACE FUNCTION segment_internal.report_number(v numeric, decimals integer DEFAULT 0) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT CASE WHEN v IS NULL THEN '–'
                ELSE pg_catalog.btrim(pg_catalog.to_char(pg_catalog.round(v, decimals),
                         'FM999,999,999,999,999,990' ||
                         CASE WHEN decimals > 0 THEN '.' || pg_catalog.repeat('0', decimals) ELSE '' END))
           END
$$;

COMMENT ON FUNCTION segment_internal.report_number(numeric, integer) IS
    'A number as the report prints it: thousands separators, fixed decimals, a dash for NULL (internal)';

CREATE OR REPLACE FUNCTION segment_internal.report_label(t text, n integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT segment_internal.html_escape(CASE WHEN pg_catalog.length(t) > n
                                    THEN pg_catalog.substr(t, 1, n - 1) || '…' ELSE t END)
$$;

COMMENT ON FUNCTION segment_internal.report_label(text, integer) IS
    'A text cut to n characters with an ellipsis, HTML-escaped (internal)';

CREATE OR REPLACE FUNCTION segment_internal.report_bars(chart_id text, caption text, labels text[], vals double precision[],
                                    shown text[], colours text[])
    RETURNS text
    LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    n     integer := coalesce(pg_catalog.cardinality(labels), 0);
    top   double precision;
    out   text;
    w     double precision;
    y     integer;
BEGIN
    SELECT pg_catalog.max(v) INTO top FROM pg_catalog.unnest(vals) AS v;
    IF top IS NULL OR NOT top > 0 THEN
        top := 1;
    END IF;
    out := format('<svg id="%s" class="chart bars" role="img" width="760" height="%s" viewBox="0 0 760 %s" xmlns="http://www.w3.org/2000/svg"><title>%s</title>',
                  segment_internal.html_escape(chart_id), 24 * n + 8, 24 * n + 8, segment_internal.html_escape(caption));
    FOR i IN 1 .. n LOOP
        y := 4 + 24 * (i - 1);
        w := CASE WHEN coalesce(vals[i], 0) > 0 THEN greatest(1, 420 * vals[i] / top) ELSE 0 END;
        out := out || format('<text class="label" x="206" y="%s" text-anchor="end">%s<title>%s</title></text>'
                             '<rect class="bar" data-segment="%s" x="214" y="%s" width="%s" height="18" fill="%s"><title>%s: %s</title></rect>'
                             '<text class="value" x="%s" y="%s">%s</text>',
                             y + 14, segment_internal.report_label(labels[i], 30), segment_internal.html_escape(labels[i]),
                             segment_internal.html_escape(labels[i]), y, pg_catalog.round(w::numeric, 1),
                             segment_internal.html_escape(colours[i]), segment_internal.html_escape(labels[i]),
                             segment_internal.html_escape(shown[i]),
                             pg_catalog.round((220 + w)::numeric, 1), y + 14, segment_internal.html_escape(shown[i]));
    END LOOP;
    RETURN out || '</svg>';
END
$$;

COMMENT ON FUNCTION segment_internal.report_bars(text, text, text[], double precision[], text[], text[]) IS
    'SVG horizontal bar chart of the report: one rect.bar per label, length by value (internal)';

CREATE OR REPLACE FUNCTION segment_internal.report_shade(share double precision) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT format('rgb(%s,%s,%s)',
                  pg_catalog.round(239 - 205 * x), pg_catalog.round(246 - 148 * x), pg_catalog.round(255 - 85 * x))
      FROM (SELECT least(1, greatest(0, coalesce(share, 0)))::numeric AS x) AS s
$$;

COMMENT ON FUNCTION segment_internal.report_shade(double precision) IS
    'The fill colour of an RFM grid cell for a share of the largest value (internal)';

CREATE OR REPLACE FUNCTION segment_internal.report_css() RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS
$$
    SELECT $css$
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d2330; margin: 24px auto; max-width: 980px; padding: 0 16px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 6px; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
p.note, p.sub { color: #5b6475; font-size: 13px; margin: 4px 0 8px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.card { border: 1px solid #d8dde6; border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 20px; }
.card span { color: #5b6475; font-size: 12px; }
svg.chart { display: block; max-width: 100%; height: auto; font-size: 12px; }
svg text { fill: #1d2330; }
svg text.value, svg text.axis { fill: #5b6475; }
svg text.seg { font-size: 10px; }
svg text.count { font-size: 13px; font-weight: 600; }
svg g.dark text { fill: #ffffff; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eceff4; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
section { break-inside: avoid; page-break-inside: avoid; }
footer { margin-top: 28px; color: #5b6475; font-size: 12px; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } }
$css$
$$;

COMMENT ON FUNCTION segment_internal.report_css() IS
    'The inline style sheet of segment.report() (internal)';

CREATE OR REPLACE FUNCTION segment.report(segmentation text DEFAULT NULL, grid_colour text DEFAULT 'monetary')
    RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS
$$
DECLARE
    s        segment.segmentations := segment_internal.segmentation_row(segmentation);
    r        segment.refreshes;
    prev     bigint;
    palette  text[] := '{#4e79a7,#f28e2b,#e15759,#76b7b2,#59a14f,#edc948,#b07aa1,#ff9da7,#9c755f,#bab0ac,#1f77b4,#8c564b}';
    page     text;
    body     text;
    labels   text[];
    sizes    double precision[];
    revenue  double precision[];
    shown_n  text[];
    shown_m  text[];
    colours  text[];
    total    bigint;
    buyers   bigint;
    rev      numeric;
    cells    jsonb;
    top      double precision;
    c        jsonb;
    gx       integer;
    gy       integer;
    b        integer;
    grid     text;
    moved    bigint;
    trs      text;
    nrows    integer;
    extra    integer;
    cl       record;
    bins     jsonb;
    lo       double precision;
    hi       double precision;
    nbins    constant integer := 20;
    bw       double precision;
    hist     text;
    state    text;
    msg      text;
BEGIN
    IF grid_colour IS NULL THEN
        RAISE EXCEPTION 'grid_colour must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Use ''monetary'' (the default) or ''customers''.';
    END IF;
    IF grid_colour NOT IN ('monetary', 'customers') THEN
        RAISE EXCEPTION 'invalid grid_colour "%"', grid_colour
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''monetary'' (colour the RFM grid by mean spend) or ''customers'' (by number of customers).';
    END IF;
    SELECT * INTO r FROM segment.refreshes AS x WHERE x.id = s.last_refresh;
    IF r.id IS NULL THEN
        RAISE EXCEPTION 'segmentation "%" has not been refreshed yet', s.name
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Run SELECT segment.refresh(%L); first.', s.name);
    END IF;
    b := r.buckets;

    -- 1. Segment sizes and revenue, in rule priority order, then RFM map order.
    EXECUTE format($q$
        SELECT pg_catalog.array_agg(g.seg ORDER BY g.ord, g.seg),
               pg_catalog.array_agg(g.n::double precision ORDER BY g.ord, g.seg),
               pg_catalog.array_agg(g.m::double precision ORDER BY g.ord, g.seg),
               pg_catalog.sum(g.n)::bigint, pg_catalog.sum(g.buyers)::bigint, pg_catalog.sum(g.m)
          FROM (SELECT coalesce(p.segment, '(none)') AS seg, pg_catalog.count(*) AS n,
                       pg_catalog.count(*) FILTER (WHERE p.frequency > 0) AS buyers,
                       coalesce(pg_catalog.sum(p.monetary), 0) AS m,
                       coalesce((SELECT pg_catalog.min(ru.priority) FROM segment.rules AS ru
                                  WHERE ru.segmentation = $1 AND ru.name = p.segment),
                                100000 + (SELECT pg_catalog.min(mp.priority) FROM segment.rfm_segment_map AS mp
                                           WHERE mp.segment = p.segment),
                                1000000) AS ord
                  FROM segment.%I AS p
                 GROUP BY p.segment) AS g$q$, s.profile)
        INTO labels, sizes, revenue, total, buyers, rev
        USING s.name;
    labels := coalesce(labels, '{}');
    SELECT pg_catalog.array_agg(segment_internal.report_number(v::numeric) ORDER BY i),
           pg_catalog.array_agg(format('%s (%s%%)', segment_internal.report_number(v::numeric),
                                       segment_internal.report_number((100 * v / greatest(total, 1))::numeric, 1))
                                ORDER BY i),
           pg_catalog.array_agg(palette[1 + (i - 1) % pg_catalog.cardinality(palette)] ORDER BY i)
      INTO shown_m, shown_n, colours
      FROM pg_catalog.unnest(sizes) WITH ORDINALITY AS u(v, i);
    SELECT pg_catalog.array_agg(segment_internal.report_number(v::numeric) ORDER BY i) INTO shown_m
      FROM pg_catalog.unnest(revenue) WITH ORDINALITY AS u(v, i);

    body := format('<h1>Segment report: %s</h1><p class="sub">Refresh %s, as of %s (finished %s, %s refresh)</p>',
                   segment_internal.html_escape(s.name), r.id,
                   segment_internal.html_escape(pg_catalog.to_char(r.as_of, 'YYYY-MM-DD HH24:MI TZ')),
                   segment_internal.html_escape(coalesce(pg_catalog.to_char(r.finished_at, 'YYYY-MM-DD HH24:MI TZ'), '–')),
                   segment_internal.html_escape(coalesce(r.mode, 'full')));
    body := body || format('<div class="cards"><div class="card" id="card-customers"><b>%s</b><span>customers</span></div>'
                           '<div class="card" id="card-buyers"><b>%s</b><span>with orders</span></div>'
                           '<div class="card" id="card-revenue"><b>%s</b><span>revenue (monetary)</span></div>'
                           '<div class="card" id="card-segments"><b>%s</b><span>segments</span></div></div>',
                           segment_internal.report_number(coalesce(total, 0)), segment_internal.report_number(coalesce(buyers, 0)),
                           segment_internal.report_number(coalesce(rev, 0)), pg_catalog.cardinality(labels));
    body := body || '<section id="sizes"><h2>Segment sizes</h2>'
                 || '<p class="note">Customers in each final segment (the first rule that holds, else the RFM segment).</p>'
                 || segment_internal.report_bars('segment-sizes', 'Customers per segment', labels, sizes, shown_n, colours)
                 || '</section><section id="revenue"><h2>Revenue by segment</h2>'
                 || '<p class="note">Sum of the customers'' monetary value (their kept orders) in each segment.</p>'
                 || segment_internal.report_bars('segment-revenue', 'Revenue per segment', labels, revenue, shown_m, colours)
                 || '</section>';

    -- 2. The RFM grid: R (rows, best on top) by F (columns), buyers only.
    EXECUTE format($q$
        SELECT pg_catalog.jsonb_object_agg(p.r || ',' || p.f,
                   pg_catalog.jsonb_build_object('n', p.n, 'm', p.m))
          FROM (SELECT p.r, p.f, pg_catalog.count(*) AS n, pg_catalog.avg(p.monetary) AS m
                  FROM segment.%I AS p
                 WHERE p.r IS NOT NULL AND p.f IS NOT NULL
                 GROUP BY p.r, p.f) AS p$q$, s.profile)
        INTO cells;
    cells := coalesce(cells, '{}');
    SELECT pg_catalog.max(CASE WHEN grid_colour = 'customers' THEN (e.value->>'n')::double precision
                               ELSE (e.value->>'m')::double precision END)
      INTO top FROM pg_catalog.jsonb_each(cells) AS e;
    grid := format('<svg id="rfm-grid" class="chart grid" role="img" width="%s" height="%s" viewBox="0 0 %s %s" xmlns="http://www.w3.org/2000/svg"><title>RFM grid: recency score by frequency score</title>',
                   60 + 110 * b, 60 + 64 * b, 60 + 110 * b, 60 + 64 * b);
    FOR gy IN REVERSE b .. 1 LOOP
        grid := grid || format('<text class="axis" x="40" y="%s" text-anchor="end">R %s</text>',
                               28 + 64 * (b - gy) + 36, gy);
        FOR gx IN 1 .. b LOOP
            c := cells -> (gy || ',' || gx);
            SELECT grid || format(
                '<g class="%s"><rect class="cell" data-r="%s" data-f="%s" data-customers="%s" data-mean-monetary="%s" x="%s" y="%s" width="106" height="60" rx="3" fill="%s"><title>R %s, F %s: %s customers, mean monetary %s; RFM map: %s</title></rect>'
                '<text class="count" x="%s" y="%s" text-anchor="middle">%s</text>'
                '<text class="value" x="%s" y="%s" text-anchor="middle">%s</text>'
                '<text class="seg" x="%s" y="%s" text-anchor="middle">%s</text></g>',
                CASE WHEN (CASE WHEN grid_colour = 'customers' THEN (c->>'n')::double precision
                                ELSE (c->>'m')::double precision END) / greatest(top, 1e-9) > 0.6
                     THEN 'dark' ELSE 'light' END,
                gy, gx, coalesce((c->>'n')::bigint, 0),
                coalesce(pg_catalog.round((c->>'m')::numeric, 2)::text, ''),
                50 + 110 * (gx - 1), 28 + 64 * (b - gy),
                CASE WHEN c IS NULL THEN '#f7f8fa'
                     ELSE segment_internal.report_shade(CASE WHEN grid_colour = 'customers' THEN (c->>'n')::double precision
                                                    ELSE (c->>'m')::double precision END / greatest(top, 1e-9))
                END,
                gy, gx, segment_internal.report_number(coalesce((c->>'n')::numeric, 0)),
                segment_internal.report_number((c->>'m')::numeric, 2),
                segment_internal.html_escape(coalesce(mp.names, 'none')),
                50 + 110 * (gx - 1) + 53, 28 + 64 * (b - gy) + 20, segment_internal.report_number(coalesce((c->>'n')::numeric, 0)),
                50 + 110 * (gx - 1) + 53, 28 + 64 * (b - gy) + 36,
                CASE WHEN c IS NULL THEN '' ELSE 'mean ' || segment_internal.report_number((c->>'m')::numeric) END,
                50 + 110 * (gx - 1) + 53, 28 + 64 * (b - gy) + 52, segment_internal.report_label(mp.first_name, 18))
              INTO grid
              FROM (SELECT pg_catalog.string_agg(u.segment, ', ' ORDER BY u.p) AS names,
                           (pg_catalog.array_agg(u.segment ORDER BY u.p))[1] AS first_name
                      FROM (SELECT m.segment, pg_catalog.min(m.priority) AS p
                              FROM segment.rfm_segment_map AS m
                             WHERE gy BETWEEN m.r_min AND m.r_max AND gx BETWEEN m.f_min AND m.f_max
                               AND m.m_min <= b
                             GROUP BY m.segment) AS u) AS mp;
        END LOOP;
    END LOOP;
    FOR gx IN 1 .. b LOOP
        grid := grid || format('<text class="axis" x="%s" y="%s" text-anchor="middle">F %s</text>',
                               50 + 110 * (gx - 1) + 53, 28 + 64 * b + 18, gx);
    END LOOP;
    grid := grid || format('<text class="axis" x="%s" y="16" text-anchor="middle">frequency score →  (cells: customers, mean monetary, RFM map segment)</text></svg>',
                           50 + 55 * b);
    body := body || '<section id="rfm"><h2>RFM grid</h2>'
                 || format('<p class="note">Customers with orders by recency score R (rows, %s = most recent) and frequency score F (columns, %s = most orders); colour: %s. The name is the RFM map''s segment of the cell (hover for all of them: the monetary score decides between them).</p>',
                           b, b, CASE grid_colour WHEN 'customers' THEN 'number of customers' ELSE 'mean monetary value' END)
                 || grid || '</section>';

    -- 3. Movement between the last two refreshes: the history rows of the
    -- last one are exactly the customers whose segment changed since the one
    -- before (what segment.transitions() rebuilds from the whole history).
    SELECT pg_catalog.max(x.id) INTO prev FROM segment.refreshes AS x
     WHERE x.segmentation = s.name AND x.id < r.id;
    body := body || '<section id="movement"><h2>Movement since the previous refresh</h2>';
    IF prev IS NULL THEN
        body := body || '<p class="note" id="movement-none">This is the first refresh of the segmentation: movement needs two.</p>';
    ELSE
        SELECT pg_catalog.count(*), pg_catalog.sum(t.customers) FILTER (WHERE t.from_segment IS DISTINCT FROM t.to_segment),
               pg_catalog.string_agg(format('<tr class="move" data-from="%s" data-to="%s"><td>%s</td><td>→</td><td>%s</td><td class="num">%s</td>'
                                            '<td><svg width="160" height="12"><rect class="move-bar" width="%s" height="12" fill="#4e79a7"/></svg></td></tr>',
                                            segment_internal.html_escape(coalesce(t.from_segment, '')),
                                            segment_internal.html_escape(coalesce(t.to_segment, '')),
                                            segment_internal.html_escape(coalesce(t.from_segment, '(new)')),
                                            segment_internal.html_escape(coalesce(t.to_segment, '(gone)')),
                                            segment_internal.report_number(t.customers),
                                            pg_catalog.round(160.0 * t.customers / greatest(t.top, 1), 1)),
                                     '' ORDER BY t.customers DESC, t.from_segment NULLS FIRST, t.to_segment NULLS FIRST)
                   FILTER (WHERE t.rank <= 25)
          INTO nrows, moved, trs
          FROM (SELECT tr.*, pg_catalog.max(tr.customers) OVER () AS top,
                       pg_catalog.row_number() OVER (ORDER BY tr.customers DESC, tr.from_segment NULLS FIRST,
                                                     tr.to_segment NULLS FIRST) AS rank
                  FROM (SELECT h.from_segment, h.to_segment, pg_catalog.count(*) AS customers
                          FROM segment.history AS h
                         WHERE h.segmentation = s.name AND h.refresh_id = r.id
                           AND h.from_segment IS DISTINCT FROM h.to_segment
                         GROUP BY h.from_segment, h.to_segment) AS tr) AS t;
        extra := greatest(nrows - 25, 0);
        body := body || format('<p class="note">From refresh %s to refresh %s: %s customers changed segment (new: came into the profile; gone: left it). The largest moves:</p>',
                               prev, r.id, segment_internal.report_number(coalesce(moved, 0)));
        IF trs IS NULL THEN
            body := body || '<p class="note" id="movement-none">No customer changed segment.</p>';
        ELSE
            body := body || '<table id="movement-table"><thead><tr><th>from</th><th></th><th>to</th><th class="num">customers</th><th></th></tr></thead><tbody>'
                         || trs || '</tbody></table>'
                         || CASE WHEN extra > 0 THEN format('<p class="note">… and %s smaller moves (segment.transitions() lists them all).</p>', extra) ELSE '' END;
        END IF;
    END IF;
    body := body || '</section>';

    -- 4. Cluster profiles, where the segmentation has clusters.
    IF s.clusters IS NOT NULL THEN
        body := body || '<section id="clusters"><h2>Clusters</h2>';
        BEGIN
            trs := '';
            FOR cl IN SELECT d.* FROM segment.describe_clusters(s.name) AS d ORDER BY d.cluster LOOP
                trs := trs || format('<tr class="cluster" data-cluster="%s"><td class="num">%s</td><td>%s</td><td class="num">%s</td>'
                                       '<td><svg width="120" height="12"><rect class="share-bar" width="%s" height="12" fill="%s"/></svg> %s%%</td>'
                                       '<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td>%s</td></tr>',
                                       cl.cluster, cl.cluster, segment_internal.html_escape(coalesce(cl.name, '')),
                                       segment_internal.report_number(cl.customers),
                                       pg_catalog.round((120 * coalesce(cl.share, 0))::numeric, 1),
                                       palette[1 + (cl.cluster - 1) % pg_catalog.cardinality(palette)],
                                       segment_internal.report_number((100 * cl.share)::numeric, 1),
                                       segment_internal.report_number(cl.mean_recency_days::numeric),
                                       segment_internal.report_number(cl.mean_frequency::numeric, 1),
                                       segment_internal.report_number(cl.mean_monetary::numeric),
                                       segment_internal.report_number(cl.mean_clv::numeric),
                                       segment_internal.html_escape(coalesce(
                                           (SELECT pg_catalog.string_agg(format('%s %s%%', e.key,
                                                       pg_catalog.round(100 * e.value::numeric)), ', '
                                                       ORDER BY e.value::numeric DESC, e.key)
                                              FROM (SELECT * FROM pg_catalog.jsonb_each(cl.rfm_segments) AS j
                                                     ORDER BY j.value::numeric DESC, j.key LIMIT 3) AS e), '')));
            END LOOP;
            body := body || '<p class="note">k-means clusters of the customers with orders (segment.describe_clusters()): size and mean figures; names are set with segment.name_cluster().</p>'
                         || '<table id="cluster-table"><thead><tr><th class="num">cluster</th><th>name</th><th class="num">customers</th><th>share</th>'
                         || '<th class="num">mean recency (days)</th><th class="num">mean orders</th><th class="num">mean monetary</th><th class="num">mean CLV</th><th>main RFM segments</th></tr></thead><tbody>'
                         || trs || '</tbody></table>';
        EXCEPTION WHEN no_data_found OR object_not_in_prerequisite_state THEN
            GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
            body := body || format('<p class="note" id="clusters-none">No clusters: %s.</p>', segment_internal.html_escape(msg));
        END;
        body := body || '</section>';
    END IF;

    -- 5. The lifetime-value distribution, where the segmentation computes it:
    -- nbins bins from 0 to the 99th percentile, the last one open-ended.
    IF s.clv THEN
        body := body || '<section id="clv"><h2>Lifetime value</h2>';
        EXECUTE format($q$
            SELECT least(0, pg_catalog.min(p.clv)),
                   pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY p.clv)
              FROM segment.%I AS p
             WHERE p.frequency > 0 AND p.clv IS NOT NULL$q$, s.profile)
            INTO lo, hi;
        IF hi IS NULL THEN
            body := body || format('<p class="note" id="clv-none">No lifetime values in this refresh%s.</p>',
                                   CASE WHEN r.clv_note IS NOT NULL THEN ': ' || segment_internal.html_escape(r.clv_note) ELSE '' END);
        ELSE
            IF NOT hi > lo THEN
                hi := lo + 1;
            END IF;
            bw := (hi - lo) / nbins;
            EXECUTE format($q$
                SELECT pg_catalog.jsonb_object_agg(g.bin, g.n)
                  FROM (SELECT least(pg_catalog.width_bucket(p.clv, $1, $2, $3), $3) AS bin,
                               pg_catalog.count(*) AS n
                          FROM segment.%I AS p
                         WHERE p.frequency > 0 AND p.clv IS NOT NULL
                         GROUP BY 1) AS g$q$, s.profile)
                INTO bins USING lo, hi, nbins;
            SELECT pg_catalog.max(e.value::bigint) INTO top FROM pg_catalog.jsonb_each_text(bins) AS e;
            hist := format('<svg id="clv-histogram" class="chart histogram" role="img" width="760" height="230" viewBox="0 0 760 230" xmlns="http://www.w3.org/2000/svg"><title>Customers by %s-month lifetime value</title>',
                           s.clv_months);
            FOR gx IN 1 .. nbins LOOP
                c := bins -> gx::text;
                hist := hist || format('<rect class="bin" data-from="%s" data-to="%s" data-customers="%s" x="%s" y="%s" width="32" height="%s" fill="#59a14f"><title>%s – %s: %s customers</title></rect>',
                                       pg_catalog.round((lo + (gx - 1) * bw)::numeric, 2),
                                       CASE WHEN gx = nbins THEN '' ELSE pg_catalog.round((lo + gx * bw)::numeric, 2)::text END,
                                       coalesce(c::bigint, 0), 40 + 35 * (gx - 1),
                                       pg_catalog.round((190 - 170 * coalesce(c::double precision, 0) / greatest(top, 1))::numeric, 1),
                                       pg_catalog.round((170 * coalesce(c::double precision, 0) / greatest(top, 1))::numeric, 1),
                                       segment_internal.report_number((lo + (gx - 1) * bw)::numeric),
                                       CASE WHEN gx = nbins THEN 'more' ELSE segment_internal.report_number((lo + gx * bw)::numeric) END,
                                       segment_internal.report_number(coalesce(c::numeric, 0)));
                IF gx % 4 = 1 OR gx = nbins THEN
                    hist := hist || format('<text class="axis" x="%s" y="206" text-anchor="middle">%s%s</text>',
                                           40 + 35 * (gx - 1) + 16, segment_internal.report_number((lo + (gx - 1) * bw)::numeric),
                                           CASE WHEN gx = nbins THEN '+' ELSE '' END);
                END IF;
            END LOOP;
            hist := hist || format('<text class="axis" x="40" y="14">%s customers in the largest bin</text><line x1="38" y1="190" x2="740" y2="190" stroke="#8a93a3"/></svg>',
                                   segment_internal.report_number(top::numeric));
            body := body || format('<p class="note">Customers with orders by predicted %s-month lifetime value (BG/NBD and Gamma-Gamma%s), in %s bins up to the 99th percentile; the last bin holds everything above.</p>',
                                   s.clv_months, CASE WHEN r.clv_status = 'partial' THEN ', partial fit' ELSE '' END, nbins)
                         || hist;
        END IF;
        body := body || '</section>';
    END IF;

    page := '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            || '<meta name="viewport" content="width=device-width, initial-scale=1">'
            || format('<title>Segment report: %s, as of %s</title>', segment_internal.html_escape(s.name),
                      segment_internal.html_escape(pg_catalog.to_char(r.as_of, 'YYYY-MM-DD')))
            || '<style>' || segment_internal.report_css() || '</style></head><body>'
            || body
            || format('<footer>Generated %s by segment.report() of the PostgreSQL extension segment from the segmentation''s profile, segment.refreshes and segment.history.</footer>',
                      segment_internal.html_escape(pg_catalog.to_char(pg_catalog.now(), 'YYYY-MM-DD HH24:MI TZ')))
            || '</body></html>';
    RETURN page;
END
$$;

COMMENT ON FUNCTION segment.report(text, text) IS
    'One self-contained HTML page (inline CSS and SVG, no script) on a segmentation (NULL: the default one) as of its latest refresh: segment sizes and revenue, the RFM grid coloured by grid_colour (''monetary'' or ''customers''), movement since the previous refresh, clusters and the lifetime-value distribution where configured; runs with the caller''s privileges';

DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT DISTINCT p.oid::regprocedure
          FROM pg_catalog.pg_aggregate AS a
          JOIN pg_catalog.pg_proc AS g ON g.oid = a.aggfnoid
         CROSS JOIN LATERAL pg_catalog.unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn,
                                                    a.aggserialfn, a.aggdeserialfn, a.aggmtransfn,
                                                    a.aggminvtransfn, a.aggmfinalfn]::oid[]) AS u(fn)
          JOIN pg_catalog.pg_proc AS p ON p.oid = u.fn
         WHERE g.pronamespace IN ('segment'::regnamespace, 'segment_internal'::regnamespace)
           AND p.pronamespace = 'segment_internal'::regnamespace
    LOOP
        EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$$;

REVOKE EXECUTE ON FUNCTION segment_internal.refresh_run(text, timestamptz, boolean, text) FROM PUBLIC;
