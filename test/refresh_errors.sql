-- A refresh that fails names what failed: the rule at fault, or, when no
-- rule is, the rows the rules read (the scores, the sources, the prospects);
-- the original error's SQLSTATE is kept, and the profile and the history
-- are left unchanged.  A full refresh names it from the statement that
-- compares the rules' rows with the profile (no table of the new rows in
-- between); an incremental one from the table of the customers rescored.
BEGIN;
SELECT plan(13);

CREATE SCHEMA tap_err;
CREATE TABLE tap_err.orders (customer_id integer, ordered_at timestamptz, amount numeric);
INSERT INTO tap_err.orders
SELECT 1 + i % 20, timestamptz '2024-01-01' + i * interval '3 days', 10 + i % 7
  FROM generate_series(1, 200) AS i;
-- The customers relation is a view that fails (division by zero) once a
-- customer 26 is there: the prospects' query fails, not a rule.
CREATE TABLE tap_err.customer_rows (id integer PRIMARY KEY);
INSERT INTO tap_err.customer_rows SELECT i FROM generate_series(1, 25) AS i;
CREATE VIEW tap_err.customers AS
SELECT id / CASE WHEN id = 26 THEN 0 ELSE 1 END AS id FROM tap_err.customer_rows;
SELECT segment.configure('tap_err.orders', 'customer_id', 'ordered_at', 'amount',
                         segmentation => 'tap_err', customers => 'tap_err.customers',
                         customers_key => 'id');
SELECT lives_ok($$SELECT segment.refresh('tap_err', '2025-06-30')$$, 'a first refresh');

INSERT INTO tap_err.customer_rows VALUES (26);
SELECT throws_ok($$SELECT segment.refresh('tap_err', '2025-06-30')$$, '22012',
                 'segmentation "tap_err": computing the rows its rules read failed: division by zero',
                 'a failure outside the rules is not blamed on a rule, and keeps its SQLSTATE');
DELETE FROM tap_err.customer_rows WHERE id = 26;

SELECT segment.add_rule('Broken', '1 / (frequency - frequency) > 0', 1, segmentation => 'tap_err');
SELECT throws_ok($$SELECT segment.refresh('tap_err', '2025-06-30')$$, '22012',
                 'rule "Broken" of segmentation "tap_err" failed: division by zero',
                 'a rule that fails on the rows is named');
SELECT is((SELECT count(*) FROM segment.profile_tap_err), 25::bigint,
          'the profile of the last good refresh is left as it was');
SELECT is((SELECT count(*) FROM segment.history WHERE segmentation = 'tap_err'), 25::bigint,
          'the history holds the first refresh''s changes only');
SELECT segment.drop_rule('Broken', segmentation => 'tap_err');
SELECT lives_ok($$SELECT segment.refresh('tap_err', '2025-06-30')$$, 'refreshes again once fixed');
-- The counts of a full refresh are those of the profile it wrote.
SELECT is((SELECT r.customers FROM segment.refreshes AS r
            WHERE r.segmentation = 'tap_err' ORDER BY r.id DESC LIMIT 1),
          (SELECT count(*) FROM segment.profile_tap_err), 'a full refresh counts the profile''s customers');
SELECT is((SELECT r.segments FROM segment.refreshes AS r
            WHERE r.segmentation = 'tap_err' ORDER BY r.id DESC LIMIT 1),
          (SELECT jsonb_object_agg(p.segment, p.n)
             FROM (SELECT segment, count(*) AS n FROM segment.profile_tap_err GROUP BY 1) AS p),
          'and their segments');

-- Incremental: a rule that fails only on a customer with four orders,
-- which a new order makes of customer 101 (of three).
CREATE TABLE tap_err.orders2 (customer_id integer, ordered_at timestamptz, amount numeric);
INSERT INTO tap_err.orders2
SELECT 100 + i % 4, timestamptz '2024-01-01' + i * interval '5 days', 10 + i
  FROM generate_series(1, 10) AS i;
SELECT segment.configure('tap_err.orders2', 'customer_id', 'ordered_at', 'amount',
                         segmentation => 'tap_err2');
SELECT segment.add_rule('Broken at four', '1 / (frequency - 4) <> 0', 1, segmentation => 'tap_err2');
SELECT is((SELECT r.mode FROM segment.refresh('tap_err2', '2025-06-30') AS r), 'full', 'a first refresh');
INSERT INTO tap_err.orders2 VALUES (101, '2024-03-01', 5);
SELECT throws_ok($$SELECT segment.refresh('tap_err2', '2025-06-30', mode => 'incremental')$$, '22012',
                 'rule "Broken at four" of segmentation "tap_err2" failed: division by zero',
                 'an incremental refresh names the rule that fails on the customers it rescores');
SELECT is((SELECT frequency FROM segment.profile_tap_err2 WHERE customer_id = 101), 3::bigint,
          'and leaves the profile as it was');
SELECT segment.drop_rule('Broken at four', segmentation => 'tap_err2');
SELECT is((SELECT r.mode FROM segment.refresh('tap_err2', '2025-06-30') AS r),
          'incremental', 'refreshes incrementally again once fixed');
SELECT is((SELECT frequency FROM segment.profile_tap_err2 WHERE customer_id = 101), 4::bigint,
          'with the new order');

SELECT * FROM finish();
ROLLBACK;
