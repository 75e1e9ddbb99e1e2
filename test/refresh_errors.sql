-- A refresh that fails names what failed: the rule at fault, or, when no
-- rule is, the rows the rules read (the scores, the sources, the prospects);
-- the original error's SQLSTATE is kept, and the profile is left unchanged.
BEGIN;
SELECT plan(5);

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
SELECT segment.drop_rule('Broken', segmentation => 'tap_err');
SELECT lives_ok($$SELECT segment.refresh('tap_err', '2025-06-30')$$, 'refreshes again once fixed');

SELECT * FROM finish();
ROLLBACK;
