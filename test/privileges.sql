-- Issue 12: internal functions are not executable by PUBLIC, the aggregates
-- stay usable; a segmentation is changed only by roles with its owner's
-- privileges.
BEGIN;
SELECT plan(20);

SELECT is_empty($$
    SELECT DISTINCT p.oid::regprocedure::text
      FROM pg_aggregate AS a
      JOIN pg_proc AS g ON g.oid = a.aggfnoid
     CROSS JOIN LATERAL unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                     a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn]::oid[]) AS u(fn)
      JOIN pg_proc AS p ON p.oid = u.fn
     WHERE g.pronamespace = 'segment'::regnamespace AND p.pronamespace = 'segment'::regnamespace
       AND has_function_privilege('public', p.oid, 'EXECUTE')$$,
    'no support function of an aggregate is executable by PUBLIC');
SELECT ok(NOT has_function_privilege('public', 'segment_internal.refresh_run(text, timestamptz, boolean, text)', 'EXECUTE'),
          'refresh_run() is not executable by PUBLIC');

CREATE ROLE tap_priv_user;
CREATE ROLE tap_priv_other;
GRANT USAGE ON SCHEMA segment TO tap_priv_user, tap_priv_other;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA segment TO tap_priv_other;
SET LOCAL ROLE tap_priv_user;
SELECT lives_ok($$SELECT segment.breaks(g::double precision, 4) FROM generate_series(1, 100) AS g$$,
                'an aggregate is usable without EXECUTE on its support functions');
SELECT lives_ok($$SELECT (segment.rfm(timestamptz '2024-01-01' + g * interval '1 day', g::numeric)).orders
                    FROM generate_series(1, 10) AS g$$, 'so is the rfm aggregate');
SELECT throws_ok($$SELECT segment_internal.breaks_final('{2,5,1}')$$, '42501', NULL,
                 'a support function cannot be called directly');
SELECT throws_ok($$CREATE AGGREGATE pg_temp.bg(float8[]) (sfunc = array_cat, stype = float8[], initcond = '{}',
                                                     finalfunc = segment_internal.bgnbd_fit_final)$$,
                 '42501', NULL, 'nor bound to an aggregate of one''s own (issue 12 #2)');
SELECT throws_ok($$SELECT segment_internal.refresh_run('x', NULL, true, 'auto')$$, '42501', NULL,
                 'refresh_run() cannot be called directly');
SELECT throws_ok($$SELECT segment_internal.refresh_table('pg_class', 'SELECT 1')$$, '22023', NULL,
                 'refresh_table() only creates the tables of a refresh');
RESET ROLE;

-- Owners: the configuring role owns a segmentation; others may not change it.
CREATE SCHEMA tap_priv;
CREATE TABLE tap_priv.orders (customer_id integer, created_at timestamptz, total numeric);
INSERT INTO tap_priv.orders VALUES (1, '2024-06-01', 10);
SELECT segment.configure('tap_priv.orders', 'customer_id', 'created_at', 'total', segmentation => 'tap_priv');
SELECT is((SELECT owner::text FROM segment.segmentations WHERE name = 'tap_priv'), current_user::text,
          'the configuring role owns the segmentation');
SET LOCAL ROLE tap_priv_other;
SELECT throws_ok($$UPDATE segment.segmentations SET new_days = 1 WHERE name = 'tap_priv'$$, '42501', NULL,
                 'another role may not change its configuration, even with UPDATE on the table');
SELECT throws_ok($$DELETE FROM segment.segmentations WHERE name = 'tap_priv'$$, '42501', NULL,
                 'nor delete it');
SELECT throws_ok($$UPDATE segment.segmentations SET owner = 'tap_priv_other' WHERE name = 'tap_priv'$$, '42501', NULL,
                 'nor take it over');
SELECT throws_ok($$INSERT INTO segment.rules (segmentation, name, priority, predicate) VALUES ('tap_priv', 'x', 1, 'true')$$,
                 '42501', NULL, 'nor add a rule to it');
SELECT throws_ok($$INSERT INTO segment.cluster_names VALUES ('tap_priv', 1, 'x')$$,
                 '42501', 'permission denied for the cluster names of segmentation "tap_priv"',
                 'nor name its clusters');
SELECT throws_ok($$INSERT INTO segment.event_sources (segmentation, relation) VALUES ('tap_priv', 'pg_class')$$,
                 '42501', NULL, 'nor point it at a source of its choosing');
RESET ROLE;
SELECT lives_ok($$SELECT segment.set_owner('tap_priv_other', 'tap_priv')$$, 'a superuser hands it over');

-- The grants of README "Security" for a marketing role that owns a
-- segmentation, and for a role that only reads segments: enough, as such.
CREATE ROLE tap_priv_mkt;
CREATE ROLE tap_priv_reader;
GRANT USAGE ON SCHEMA segment TO tap_priv_mkt, tap_priv_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA segment TO tap_priv_mkt;
GRANT UPDATE ON segment.segmentations TO tap_priv_mkt;
GRANT INSERT, UPDATE, DELETE ON segment.rules, segment.cluster_names TO tap_priv_mkt;
GRANT INSERT ON segment.refreshes, segment.history TO tap_priv_mkt;
GRANT INSERT, DELETE ON segment.kmeans_models TO tap_priv_mkt;
GRANT USAGE ON SEQUENCE segment.refreshes_id_seq TO tap_priv_mkt;
GRANT USAGE ON SCHEMA tap_priv TO tap_priv_mkt;
GRANT SELECT ON tap_priv.orders TO tap_priv_mkt;
SELECT segment.set_owner('tap_priv_mkt', 'tap_priv');
SET LOCAL ROLE tap_priv_mkt;
SELECT lives_ok($$SELECT segment.add_rule('Small', 'monetary < 100', 5, 'tap_priv')$$, 'the owner adds a rule');
SELECT is((segment.refresh('tap_priv', '2024-07-01')).customers, 1::bigint, 'and refreshes');
GRANT SELECT (customer_id, segment) ON segment.profile_tap_priv TO tap_priv_reader;
RESET ROLE;
SET LOCAL ROLE tap_priv_reader;
SELECT is(segment_of(1, 'tap_priv'), 'Small', 'a reader granted the profile''s columns looks segments up');
SELECT throws_ok($$SELECT segment.refresh('tap_priv')$$, '42501', NULL, 'but may not refresh');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
