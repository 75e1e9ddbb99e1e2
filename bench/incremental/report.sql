-- The report of bench/incremental.sh: medians and ratios.  Expects the
-- variables descriptions and rounds, and bench_times.
\ir ../report_times.sql

\echo 'Ratios'
WITH m AS (SELECT jsonb_object_agg(step, median) AS t FROM medians)
SELECT ratio, to_char(value, 'FM990.000') || 'x' AS value, target,
       CASE WHEN target = '' THEN '' WHEN value <= split_part(target, ' ', 2)::float8 THEN 'met' ELSE 'MISSED' END AS status
  FROM m, LATERAL (VALUES
       -- (with a products source a full refresh reads the order lines too: no target)
       (1, '(f)/(a)    full refresh vs GROUP BY floor', (t->>'f')::float8 / (t->>'a')::float8,
        CASE WHEN :'products' = '1' THEN '' ELSE '<= 1.0' END),
       (2, '(i1)/(f)   incremental after 1% vs full', (t->>'i1')::float8 / (t->>'f')::float8, '<= 0.1'),
       (3, '(i01)/(f)  incremental after 0.1% vs full', (t->>'i01')::float8 / (t->>'f')::float8, '<= 0.1')
  ) AS r(ord, ratio, value, target)
 ORDER BY ord;

\echo 'Checks'
SELECT 'the refreshes after new orders were incremental' AS "check",
       bool_and(result LIKE 'incremental,%') AS ok
  FROM bench_times WHERE step IN ('i1', 'i01');
-- (with lifetime value every customer is rescored: its models are fitted again)
SELECT CASE WHEN :'clv' = '1' THEN 'they rescored every customer (lifetime value)'
            ELSE 'they rescored only some customers' END AS "check",
       bool_and((result NOT LIKE '%every customer rescored%') <> (:'clv' = '1')) AS ok
  FROM bench_times WHERE step IN ('i1', 'i01');
