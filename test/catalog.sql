-- The extension's objects are documented and marked for parallel query.
BEGIN;
SELECT plan(17);

SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'segment'),
          'segment', 'the extension lives in schema segment');

CREATE TEMP VIEW ext_functions AS
SELECT p.oid, p.proname, p.pronamespace, p.prorettype, p.prokind, p.proparallel, p.prolang, p.proconfig, p.provolatile
  FROM pg_depend AS d
  JOIN pg_proc AS p ON p.oid = d.objid AND d.classid = 'pg_proc'::regclass
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'segment');

SELECT is_empty(
    $$SELECT oid::regprocedure::text FROM ext_functions
       WHERE obj_description(oid, 'pg_proc') IS NULL$$,
    'every function and aggregate has a comment');

-- Since PostgreSQL 17 a table's row type and the array types are extension
-- members too; they are documented by their table and element type, so the
-- test asks for comments on the types the extension created by themselves.
SELECT is_empty(
    $$SELECT t.typname FROM pg_type AS t
        JOIN pg_depend AS d ON d.objid = t.oid AND d.classid = 'pg_type'::regclass
       WHERE d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'segment')
         AND NOT EXISTS (SELECT FROM pg_class AS r WHERE r.oid = t.typrelid AND r.relkind <> 'c')
         AND NOT EXISTS (SELECT FROM pg_type AS e WHERE e.typarray = t.oid)
         AND obj_description(t.oid, 'pg_type') IS NULL
      UNION ALL
      SELECT c.relname FROM pg_class AS c
        JOIN pg_depend AS d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass
       WHERE d.deptype = 'e' AND c.relkind IN ('r', 'v', 'm')
         AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'segment')
         AND obj_description(c.oid, 'pg_class') IS NULL$$,
    'every type, table and view has a comment');

SELECT is_empty(
    $$SELECT f.oid::regprocedure::text FROM ext_functions AS f
        JOIN pg_aggregate AS a ON a.aggfnoid = f.oid
       WHERE a.aggcombinefn = 0 OR f.proparallel <> 's'$$,
    'every aggregate has a combine function and is parallel safe');

SELECT is_empty(
    $$SELECT f.oid::regprocedure::text FROM ext_functions AS f
        JOIN pg_aggregate AS a ON a.aggfnoid = f.oid
       WHERE a.aggtranstype = 'internal'::regtype
         AND (a.aggserialfn = 0 OR a.aggdeserialfn = 0)$$,
    'aggregates with an internal state have serial and deserial functions');

SELECT is_empty(
    $$SELECT f.oid::regprocedure::text FROM ext_functions AS f
        JOIN pg_language AS l ON l.oid = f.prolang
       WHERE l.lanname IN ('sql', 'plpgsql') AND f.prokind = 'f'
         AND NOT coalesce(f.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false)
         -- The only exception: the SQL wrappers of the functions that run a
         -- caller's query text, which pass the caller's search_path to a
         -- pinned *_run function (test/search_path.sql).
         AND NOT (l.lanname = 'sql' AND f.proname || '_run' IN
                      ('kmeans_train_run', 'create_kmeans_model_run', 'kmeans_describe_run',
                       'kmeans_choose_k_run', 'kmeans_fit_step_run')
                  AND (SELECT q.prosrc FROM pg_proc AS q WHERE q.oid = f.oid) ~ ('^\s*SELECT (\* FROM )?segment_internal\.' || f.proname
                                  || '_run\([a-z_, ]*pg_catalog\.current_setting\(''search_path''\)\)\s*$'))$$,
    'SQL and PL/pgSQL functions pin search_path, but the wrappers passing a caller''s search_path');

-- The public API (docs/reference.md): these names in schema segment, the
-- lookups in public, everything else in segment_internal.  A function added
-- to segment must be added here and to the reference on purpose.
CREATE TEMP TABLE public_api (name text PRIMARY KEY);
INSERT INTO public_api VALUES
    -- RFM
    ('rfm'), ('breaks'), ('score'), ('rfm_figures'), ('rfm_scores'), ('rfm_segment'),
    ('rfm_segment_map_check'), ('rfm_segment_map_defaults'),
    -- the pipeline: segmentations, rules, sources, refreshes, history, schedule
    ('configure'), ('drop_segmentation'), ('set_owner'), ('distribute'),
    ('add_rule'), ('drop_rule'), ('enable_rule'), ('add_builtin_rules'), ('builtin_rules'), ('rule_columns'),
    ('configure_event_source'), ('configure_contact_source'), ('configure_product_source'), ('drop_source'),
    ('event_kind'), ('abandoned_at'), ('abandoned_products'),
    ('refresh'), ('segments_at'), ('transitions'), ('schedule'), ('unschedule'), ('report'),
    ('describe_clusters'), ('name_cluster'), ('choose_clv_model'),
    -- the per-customer aggregates of the sources
    ('events'), ('contacts'), ('order_lines'), ('restock'),
    -- clusters
    ('kmeans'), ('kmeans_k_scores'), ('kmeans_moments'), ('kmeans_step'), ('kmeans_assign'), ('kmeans_distance'),
    ('kmeans_centroids'), ('kmeans_describe'), ('kmeans_choose_k'), ('kmeans_train'), ('kmeans_fit_step'),
    ('create_kmeans_model'), ('get_kmeans_model'), ('drop_kmeans_model'),
    -- lifetime value
    ('clv_summary'), ('clv'), ('clv_holdout'), ('clv_holdout_errors'),
    ('bgnbd_fit'), ('bgnbd_p_alive'), ('bgnbd_expected_purchases'), ('bgnbd_expected_purchases_new'),
    ('bgnbd_probability_of_purchases'), ('bgnbd_log_likelihood'),
    ('mbgnbd_fit'), ('mbgnbd_p_alive'), ('mbgnbd_expected_purchases'), ('mbgnbd_probability_of_purchases'),
    ('mbgnbd_log_likelihood'),
    ('pareto_nbd_fit'), ('pareto_nbd_p_alive'), ('pareto_nbd_expected_purchases'),
    ('pareto_nbd_probability_of_purchases'), ('pareto_nbd_log_likelihood'),
    ('gamma_gamma_fit'), ('gamma_gamma_expected_value'), ('gamma_gamma_log_likelihood');

CREATE TEMP VIEW ext_function_names AS
SELECT DISTINCT f.pronamespace::regnamespace::text AS nsp, f.proname::text AS name
  FROM ext_functions AS f;

SELECT set_eq(
    $$SELECT name FROM ext_function_names WHERE nsp = 'segment'$$,
    $$SELECT name FROM public_api$$,
    'schema segment holds the public API and nothing else');

SELECT set_eq(
    $$SELECT DISTINCT nsp FROM ext_function_names$$,
    ARRAY['segment', 'segment_internal', 'public'],
    'the extension''s functions are in segment, segment_internal and (the lookups) public');

SELECT set_eq(
    $$SELECT name FROM ext_function_names WHERE nsp = 'public'$$,
    ARRAY['segment_of', 'profile_of'],
    'only segment_of() and profile_of() are created in public (README: any query can call them unqualified)');

SELECT is_empty(
    $$SELECT f.oid::regprocedure::text FROM ext_functions AS f
       WHERE f.pronamespace = 'segment'::regnamespace
         AND (obj_description(f.oid, 'pg_proc') LIKE '%(internal%'
              OR f.prorettype IN ('trigger'::regtype, 'cstring'::regtype)
              OR EXISTS (SELECT FROM pg_aggregate AS a
                          WHERE f.oid IN (a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn)))$$,
    'no aggregate support, trigger, type I/O or internal function in schema segment');

SELECT is_empty(
    $$SELECT f.oid::regprocedure::text FROM ext_functions AS f
        JOIN pg_aggregate AS a ON a.aggfnoid = f.oid
       WHERE f.pronamespace = 'segment_internal'::regnamespace
         AND (f.oid::regprocedure::text NOT IN ('segment_internal.breaks_ranked(double precision,integer)',
                                               'segment_internal.breaks_histogram(double precision,integer)',
                                               'segment_internal.rank_at(double precision,double precision)',
                                               'segment_internal.line_stages(timestamp with time zone,timestamp with time zone,text,integer,text,double precision,integer,date)')
              OR obj_description(f.oid, 'pg_proc') NOT LIKE '%(internal)')$$,
    'every aggregate is public but the three that find the cut points with their ranks and the one pass over the order lines of a refresh (internal)');

-- One naming of the segmentation argument: "segmentation", right after the
-- arguments that have no default; no parameter is named by a reserved word.
SELECT is_empty(
    $$SELECT f.oid::regprocedure::text FROM ext_functions AS f JOIN pg_proc AS p ON p.oid = f.oid
       WHERE f.pronamespace <> 'segment_internal'::regnamespace AND 'segmentation' = ANY (p.proargnames)
         AND pg_catalog.array_position(p.proargnames, 'segmentation') <> p.pronargs - p.pronargdefaults
             + CASE WHEN p.pronargdefaults > 0 AND pg_catalog.array_position(p.proargnames, 'segmentation') > p.pronargs - p.pronargdefaults THEN 1 ELSE 0 END$$,
    'segmentation comes right after the required arguments');

SELECT is_empty(
    $$SELECT f.oid::regprocedure::text || ': ' || a.name FROM ext_functions AS f JOIN pg_proc AS p ON p.oid = f.oid
       CROSS JOIN LATERAL pg_catalog.unnest(p.proargnames) AS a(name)
       JOIN pg_catalog.pg_get_keywords() AS k ON k.word = a.name AND k.catcode IN ('R', 'T')
       WHERE f.pronamespace <> 'segment_internal'::regnamespace$$,
    'no public parameter is named by a reserved word');

-- breaks is an aggregate across customers: its state must be a real SQL type
-- (Citus pushes a custom aggregate down partially only then).
SELECT is((SELECT aggtranstype::regtype::text FROM pg_aggregate
            WHERE aggfnoid = 'segment.breaks(double precision, integer)'::regprocedure),
          'double precision[]', 'breaks keeps its state in a float8[]');

-- Every aggregate that runs across customers keeps a concrete state type;
-- only the per-customer aggregates (pushed to the shards whole by a GROUP BY
-- on the distribution column) may use internal.
SELECT is_empty(
    $$SELECT f.oid::regprocedure::text FROM ext_functions AS f
        JOIN pg_aggregate AS a ON a.aggfnoid = f.oid
       WHERE a.aggtranstype = 'internal'::regtype
         AND f.proname NOT IN ('rfm', 'events', 'contacts', 'order_lines', 'restock', 'line_stages')$$,
    'only the per-customer aggregates have an internal state');

-- The profile's shape is defined once (segment.customer_profile): a column
-- added there is a column the rules see and a refresh fills, with no list to
-- edit elsewhere (rolled back with the rest of this test).
ALTER TYPE segment.customer_profile ADD ATTRIBUTE probe_column integer;
SELECT ok(segment.rule_columns() LIKE '%, probe_column, as_of, refreshed_at',
          'a column added to segment.customer_profile is a column rules see');
SELECT ok(segment_internal.source_columns_sql('g') LIKE '%, g.probe_column',
          'and one the refresh''s select lists carry');

SELECT * FROM finish();
ROLLBACK;
