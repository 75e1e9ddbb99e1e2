-- The report of bench/citus.sh: medians, ratios and checks.  Expects the
-- variables descriptions ("label|text" lines) and rounds, and bench_times.
\ir ../report_times.sql

\echo 'Ratios'
WITH m AS (SELECT jsonb_object_agg(step, median) AS t FROM medians)
SELECT ratio, to_char(value, 'FM990.000') || 'x' AS value
  FROM m, LATERAL (VALUES
       (1, '(r3)/(r1)  refresh: Citus vs one server', (t->>'r3')::float8 / (t->>'r1')::float8),
       (2, '(a3)/(a1)  the floor: Citus vs one server', (t->>'a3')::float8 / (t->>'a1')::float8),
       (3, '(r3)/(a3)  refresh vs its floor, on Citus', (t->>'r3')::float8 / (t->>'a3')::float8),
       (4, '(r1)/(a1)  refresh vs its floor, one server', (t->>'r1')::float8 / (t->>'a1')::float8),
       (5, '(s3)/(j3)  segment_of() vs the join, on Citus', (t->>'s3')::float8 / (t->>'j3')::float8),
       (6, '(s1)/(j1)  segment_of() vs the join, one server', (t->>'s1')::float8 / (t->>'j1')::float8),
       (7, '(s3)/(s1)  segment_of(): Citus vs one server', (t->>'s3')::float8 / (t->>'s1')::float8)
  ) AS r(ord, ratio, value)
 ORDER BY ord;

\echo 'Checks'
SELECT 'the four lookups count the same customers' AS "check",
       (SELECT count(DISTINCT result) FROM medians WHERE step IN ('j1', 's1', 'j3', 's3')) = 1 AS ok
UNION ALL
SELECT 'the two profiles are equal',
       NOT EXISTS (SELECT customer_id, segment, recency_days, frequency, monetary FROM segment.profile_single
                   EXCEPT
                   SELECT customer_id, segment, recency_days, frequency, monetary FROM segment.profile_citus);
