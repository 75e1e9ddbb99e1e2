-- Pipeline: rules (built-in and user-defined), cut points, history and transitions.
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
\set SHOW_CONTEXT never

CREATE SCHEMA pipe_shop;
CREATE TABLE pipe_shop.orders (customer_id bigint, created_at date, total numeric(10,2), discounted boolean);
INSERT INTO pipe_shop.orders VALUES
    (1, '2024-06-25', 100, false),
    (2, '2024-01-01', 50, false), (2, '2024-02-01', 50, false), (2, '2024-03-02', 50, false),
    (3, '2024-05-01', 200, false), (3, '2024-05-31', 200, false), (3, '2024-06-25', 200, true),
    (4, '2024-05-24', 20, false), (4, '2024-06-03', 20, false), (4, '2024-06-13', 20, false),
    (4, '2024-06-23', 20, false),
    (5, '2023-01-15', 30, false),
    (6, '2024-04-01', 40, true), (6, '2024-06-20', 40, true),
    (7, '2023-06-01', 1000, false), (7, '2024-06-28', 10, false);
CREATE TABLE pipe_shop.vip (customer_id bigint PRIMARY KEY);
INSERT INTO pipe_shop.vip VALUES (5);

SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total',
                         discount => 'discounted', top_spender_share => 0.25);
SELECT id AS r1 FROM segment.refresh(as_of => '2024-07-01') \gset

-- The rules as a refresh applies them, thresholds filled in.
SELECT priority, name, enabled, builtin, predicate FROM segment.rule_predicates ORDER BY priority;

-- User rules are checked when they are added or changed.
SELECT segment.add_rule('Whales', 'monetary >= 1000', 5);
SELECT segment.add_rule('Friends', 'customer_id IN (SELECT v.customer_id FROM pipe_shop.vip AS v)', 15);
SELECT segment.add_rule('Broken', 'monetary >>= 3', 90);
SELECT segment.add_rule('Broken', 'spend > 3', 90);
SELECT segment.add_rule('Broken', 'monetary', 90);
SELECT segment.add_rule('Broken', 'segment = ''Lost''', 90);
SELECT segment.add_rule('Broken', 'pg_catalog.count(*) > 1', 90);
SELECT segment.add_rule('Broken', 'true; DROP TABLE pipe_shop.orders', 90);
SELECT segment.add_rule('Whales', 'true', 91);
SELECT segment.add_rule('Broken', 'true', 10);
SELECT segment.add_rule('Broken', 'true', 91, 'nope');
SELECT segment.add_rule('Broken', NULL, 91);
UPDATE segment.rules SET predicate = 'no_such_column' WHERE name = 'Whales';
SELECT segment.drop_rule('Nope');
SELECT segment.enable_rule('Nope');
SELECT name, priority, predicate FROM segment.rules WHERE builtin IS NULL ORDER BY priority;

SELECT id AS r2, changed FROM segment.refresh(as_of => '2024-07-01') \gset
SELECT :changed AS changed;
SELECT customer_id, rfm_segment, flags, segment FROM segment.profile_default ORDER BY customer_id;

-- A rule that fails at run time names itself; the profile is left as it was.
SELECT segment.add_rule('Fragile', '100 / (frequency - 1) > 10', 80);
SELECT segment.refresh(as_of => '2024-07-02');
SELECT count(*) AS refreshes FROM segment.refreshes;
SELECT r.as_of FROM segment.refreshes AS r JOIN segment.segmentations AS x ON r.id = x.last_refresh
 WHERE x.name = 'default';
SELECT segment.drop_rule('Fragile');

-- Thresholds are edited in place; rules can be turned off.
UPDATE segment.segmentations SET new_days = 7, lapsing_factor = 1.5 WHERE name = 'default';
\set VERBOSITY terse
UPDATE segment.segmentations SET lapsing_factor = -1 WHERE name = 'default';
\set VERBOSITY default
SELECT segment.enable_rule('Friends', enabled => false);
SELECT segment.enable_rule('Top Spenders', enabled => false);
SELECT priority, name, enabled, predicate FROM segment.rule_predicates ORDER BY priority;
SELECT id AS r3 FROM segment.refresh(as_of => '2024-07-20') \gset
SELECT customer_id, flags, segment FROM segment.profile_default ORDER BY customer_id;

-- History: the first refresh records everyone, later ones the changes.
SELECT refresh_id - :r1 AS refresh, customer_id, from_segment, to_segment
  FROM segment.history ORDER BY refresh_id, customer_id::bigint;
SELECT * FROM segment.transitions();
SELECT * FROM segment.transitions(from_refresh => :r1, to_refresh => :r3);
SELECT * FROM segment.transitions(from_refresh => :r1, to_refresh => :r1) WHERE from_segment IS DISTINCT FROM to_segment;
SELECT * FROM segment.transitions(from_refresh => :r1);
SELECT * FROM segment.transitions(from_refresh => :r1, to_refresh => -1);
SELECT * FROM segment.transitions(from_refresh => -1, to_refresh => :r3);

-- Without rules the final segment is the RFM segment; fixed cut points.
UPDATE segment.rules SET enabled = false;
SELECT segment.configure('pipe_shop.orders', 'customer_id', 'created_at', 'total',
                         r_breaks => '{7,14,30,90}', f_breaks => '{1,2,3,4}',
                         m_breaks => '{50,100,200,500}');
SELECT count(*) AS rules_kept FROM segment.rules;
SELECT fixed_breaks, r_breaks, f_breaks, m_breaks FROM segment.refresh(as_of => '2024-07-01');
SELECT segmentation, fixed_breaks, recency_days_breaks, frequency_breaks, monetary_breaks
  FROM segment.cut_points;
SELECT customer_id, recency_days, frequency, monetary, rfm_code, segment = rfm_segment AS rfm
  FROM segment.profile_default ORDER BY customer_id;
SELECT * FROM segment.transitions() WHERE from_segment IS DISTINCT FROM to_segment;

-- wait => false refreshes when no other session is refreshing (the busy case,
-- which needs a second session, is in test/pipeline_concurrency.sql).
SELECT (segment.refresh(wait => false)).id IS NOT NULL AS refreshed;

SELECT segment.drop_segmentation('default');
DROP SCHEMA pipe_shop CASCADE;
