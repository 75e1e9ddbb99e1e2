-- The extension's objects are documented and marked for parallel query.
BEGIN;
SELECT plan(10);

SELECT is((SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'segment'),
          'segment', 'the extension lives in schema segment');

CREATE TEMP VIEW ext_functions AS
SELECT p.oid, p.proname, p.prokind, p.proparallel, p.prolang, p.proconfig, p.provolatile
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
                      ('kmeans_train_run', 'kmeans_fit_run', 'kmeans_describe_run',
                       'kmeans_choose_k_run', 'kmeans_fit_step_run')
                  AND (SELECT q.prosrc FROM pg_proc AS q WHERE q.oid = f.oid) ~ ('^\s*SELECT (\* FROM )?segment\.' || f.proname
                                  || '_run\([a-z_, ]*pg_catalog\.current_setting\(''search_path''\)\)\s*$'))$$,
    'SQL and PL/pgSQL functions pin search_path, but the wrappers passing a caller''s search_path');

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
         AND f.proname NOT IN ('rfm', 'events', 'contacts', 'order_lines', 'restock')$$,
    'only the per-customer aggregates have an internal state');

-- The profile's shape is defined once (segment.customer_profile): a column
-- added there is a column the rules see and a refresh fills, with no list to
-- edit elsewhere (rolled back with the rest of this test).
ALTER TYPE segment.customer_profile ADD ATTRIBUTE probe_column integer;
SELECT ok(segment.rule_columns() LIKE '%, probe_column, as_of, refreshed_at',
          'a column added to segment.customer_profile is a column rules see');
SELECT ok(segment.source_columns_sql('g') LIKE '%, g.probe_column',
          'and one the refresh''s select lists carry');

SELECT * FROM finish();
ROLLBACK;
