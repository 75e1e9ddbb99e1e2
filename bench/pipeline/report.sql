-- The report of bench/pipeline.sh: medians, ratios and checks.  Expects the
-- variables descriptions ("label|text" lines), rounds, lat_select1, lat_sql,
-- lat_segment_of (ms) and the table bench_times.
\ir ../report_times.sql

\echo 'Ratios'
WITH m AS (SELECT jsonb_object_agg(step, median) AS t FROM medians)
SELECT ratio, to_char(value, 'FM990.000') || unit AS value, target,
       CASE WHEN target = '' THEN ''
            WHEN value <= split_part(target, ' ', 2)::float8 THEN 'met' ELSE 'MISSED' END AS status
  FROM m, LATERAL (VALUES
       (1, '(r)/(a)  refresh vs GROUP BY floor', (t->>'r')::float8 / (t->>'a')::float8, 'x', ''),
       (1.1, '(n)/(a)  first refresh vs GROUP BY floor', (t->>'n')::float8 / (t->>'a')::float8, 'x', ''),
       (1.2, '(n)/(r)  first refresh vs refresh', (t->>'n')::float8 / (t->>'r')::float8, 'x', ''),
       (2, '(s)/(j)  segment_of() vs hash join', (t->>'s')::float8 / (t->>'j')::float8, 'x', '<= 1.5'),
       (3, 'one segment_of() call vs the SQL lookup', :lat_segment_of / :lat_sql, 'x', ''),
       (4, 'one segment_of() call, per statement', :lat_segment_of, ' ms', ''),
       (5, 'one segment_of() call, minus SELECT 1', :lat_segment_of - :lat_select1, ' ms', '<= 0.1')
  ) AS r(ord, ratio, value, unit, target)
 ORDER BY ord;

\echo 'Single calls (pgbench -M prepared, 1 client, latency per statement incl. round trip)'
SELECT * FROM (VALUES ('SELECT 1', :lat_select1),
                      ('SELECT segment FROM profile WHERE customer_id = :id', :lat_sql),
                      ('SELECT segment_of(:id)', :lat_segment_of)) AS t(statement, ms);

\echo 'Checks'
SELECT '(j) and (s) count the same customers' AS "check",
       (SELECT result FROM medians WHERE step = 'j') = (SELECT result FROM medians WHERE step = 's') AS ok
UNION ALL
SELECT 'every buyer of the floor has a profile row',
       NOT EXISTS (SELECT FROM bench_floor AS f
                    WHERE NOT EXISTS (SELECT FROM segment.profile_default AS p
                                       WHERE p.customer_id = f.customer_id));
