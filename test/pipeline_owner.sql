-- Finding 4 of issue 12: stored SQL runs as the segmentation's owner, never
-- as whoever refreshes; only roles with the owner's privileges write rules
-- or refresh.
BEGIN;
SELECT plan(13);

CREATE SCHEMA tap_own;
CREATE TABLE tap_own.orders (customer_id integer, created_at timestamptz, total numeric);
INSERT INTO tap_own.orders VALUES (1, '2024-06-01', 10), (2, '2024-01-01', 500), (2, '2024-02-01', 700);
CREATE TABLE tap_own.secrets (secret text);
INSERT INTO tap_own.secrets VALUES ('s3cret');
CREATE ROLE tap_mkt;
CREATE ROLE tap_other;
GRANT USAGE ON SCHEMA segment, tap_own TO tap_mkt, tap_other;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA segment TO tap_mkt, tap_other;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA segment TO tap_mkt;
GRANT SELECT ON tap_own.orders TO tap_mkt;
-- Makes the role that calls it a superuser when a superuser calls it.
CREATE FUNCTION tap_own.pwn() RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN ALTER ROLE tap_mkt SUPERUSER; RETURN true; END$$;

SELECT segment.configure('tap_own.orders', 'customer_id', 'created_at', 'total', segmentation => 'tap_own');
SELECT lives_ok($$SELECT segment.set_owner('tap_mkt', 'tap_own')$$, 'a superuser hands the segmentation to a role');

SET LOCAL ROLE tap_mkt;
SELECT lives_ok($$SELECT segment.add_rule('Innocent', 'tap_own.pwn()', 1, 'tap_own')$$, 'the owner adds a rule');
RESET ROLE;
SELECT throws_ok($$SELECT segment.refresh('tap_own', '2024-07-01')$$, '42501', NULL,
                 'a superuser''s refresh runs the rule as the owner: ALTER ROLE is refused');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'tap_mkt'), false, 'the owner did not become superuser');

-- Written by a superuser, a rule is still checked as the owner...
SELECT throws_ok($$UPDATE segment.rules SET predicate = '(SELECT count(*) FROM tap_own.secrets) > 0', flag_only = true
                    WHERE segmentation = 'tap_own' AND name = 'Innocent'$$, '42501', NULL,
                 'a rule reading a table the owner cannot read is refused');
-- ...and one whose reading the check cannot see runs as the owner.
UPDATE segment.rules
   SET predicate = $$query_to_xml('select secret from tap_own.secrets', false, false, '')::text LIKE '%s3cret%'$$,
       flag_only = true
 WHERE segmentation = 'tap_own' AND name = 'Innocent';
SELECT throws_ok($$SELECT segment.refresh('tap_own', '2024-07-01')$$, '42501', 'rule "Innocent" of segmentation "tap_own" failed: permission denied for table secrets',
                 'a flag-only rule cannot leak a table the owner cannot read, whoever refreshes');

-- Inside a security-restricted operation: no temporary objects left behind
-- for the caller, no way back to the caller's role.
CREATE FUNCTION tap_own.plant() RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN CREATE TEMP TABLE planted (x integer); RETURN true; END$$;
CREATE FUNCTION tap_own.back() RETURNS boolean LANGUAGE plpgsql AS
$$BEGIN RESET ROLE; RETURN true; END$$;
UPDATE segment.rules SET predicate = 'tap_own.plant()', flag_only = false
 WHERE segmentation = 'tap_own' AND name = 'Innocent';
SELECT throws_like($$SELECT segment.refresh('tap_own', '2024-07-01')$$,
                   '%cannot create temporary table within security-restricted operation%',
                   'a rule cannot create a temporary table');
UPDATE segment.rules SET predicate = 'tap_own.back()' WHERE segmentation = 'tap_own' AND name = 'Innocent';
SELECT throws_like($$SELECT segment.refresh('tap_own', '2024-07-01')$$,
                   '%cannot set parameter "role" within security-%',
                   'a rule cannot switch back to the caller''s role');
UPDATE segment.rules SET predicate = 'frequency > 1' WHERE segmentation = 'tap_own' AND name = 'Innocent';
SELECT is((segment.refresh('tap_own', '2024-07-01')).customers, 2::bigint,
          'a harmless rule: the superuser''s refresh, as the owner, works');

-- The check of a predicate plans it, and the planner runs the immutable
-- functions it folds: that too happens as the owner (a superuser writing
-- the rule, or restoring a dump, would otherwise run it).
CREATE FUNCTION tap_own.folded() RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT tap_own.pwn()';
SELECT throws_ok($$UPDATE segment.rules SET predicate = 'tap_own.folded()'
                    WHERE segmentation = 'tap_own' AND name = 'Innocent'$$, '42501', NULL,
                 'a superuser writing a rule: its check runs as the owner');
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'tap_mkt'), false, 'still not superuser');

SET LOCAL ROLE tap_other;
SELECT throws_ok($$UPDATE segment.rules SET enabled = false WHERE segmentation = 'tap_own'$$, '42501', NULL,
                 'another role may not write the rules even with UPDATE on segment.rules');
SELECT throws_ok($$SELECT segment.refresh('tap_own', '2024-07-01')$$, '42501', NULL,
                 'nor refresh the segmentation');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
