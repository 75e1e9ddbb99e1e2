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
       (7, '(s3)/(s1)  segment_of(): Citus vs one server', (t->>'s3')::float8 / (t->>'s1')::float8),
       (8, '(c3)/(c1)  refresh with lifetime value: Citus vs one server', (t->>'c3')::float8 / (t->>'c1')::float8),
       (9, '(c1)/(a1)  refresh with lifetime value vs the floor, one server', (t->>'c1')::float8 / (t->>'a1')::float8),
       (10, '(c3)/(a3)  refresh with lifetime value vs the floor, on Citus', (t->>'c3')::float8 / (t->>'a3')::float8)
  ) AS r(ord, ratio, value)
 ORDER BY ord;

\echo 'CLV share of a full refresh: (with lifetime value - without) / with'
WITH m AS (SELECT jsonb_object_agg(step, median) AS t FROM medians),
     r AS (SELECT b.run, b.seconds AS without, c.seconds AS with_clv, b.step AS b, c.step AS c
             FROM bench_times AS b JOIN bench_times AS c USING (run)
            WHERE b.run > 0 AND (b.step, c.step) IN (('r1', 'c1'), ('r3', 'c3')))
SELECT share, to_char(value, 'FM0.000') AS "of the medians",
       (SELECT string_agg(to_char((r.with_clv - r.without) / r.with_clv, 'FM0.000'), ' ' ORDER BY r.run)
          FROM r WHERE r.c = x.c) AS "per round"
  FROM m, LATERAL (VALUES
       (1, 'c1', '(c1 - r1)/c1  one server', ((t->>'c1')::float8 - (t->>'r1')::float8) / (t->>'c1')::float8),
       (2, 'c3', '(c3 - r3)/c3  Citus', ((t->>'c3')::float8 - (t->>'r3')::float8) / (t->>'c3')::float8)
  ) AS x(ord, c, share, value)
 ORDER BY ord;

\echo 'Checks'
SELECT 'the four lookups count the same customers' AS "check",
       (SELECT count(DISTINCT result) FROM medians WHERE step IN ('j1', 's1', 'j3', 's3')) = 1 AS ok
UNION ALL
SELECT 'the two profiles are equal',
       NOT EXISTS (SELECT customer_id, segment, recency_days, frequency, monetary FROM segment.profile_single
                   EXCEPT
                   SELECT customer_id, segment, recency_days, frequency, monetary FROM segment.profile_citus)
UNION ALL
SELECT 'the two profiles with lifetime value are equal (CLV to 1e-6 relative)',
       (SELECT count(*) FROM segment.profile_single_clv) = (SELECT count(*) FROM segment.profile_citus_clv)
       AND NOT EXISTS (SELECT FROM segment.profile_single_clv AS a
                         LEFT JOIN segment.profile_citus_clv AS b USING (customer_id)
                        WHERE b.customer_id IS NULL OR a.segment IS DISTINCT FROM b.segment
                           OR a.frequency IS DISTINCT FROM b.frequency
                           OR abs(a.clv - b.clv) > 1e-6 * greatest(abs(a.clv), 1)
                           OR (a.clv IS NULL) <> (b.clv IS NULL));
