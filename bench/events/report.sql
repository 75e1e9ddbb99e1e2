-- The report of bench/events.sh: medians, per-row costs, ratios, checks.
-- Expects the variables descriptions ("label|text" lines), rounds, plans,
-- and the table bench_times (seconds: wall clock; cpu: the backend's CPU).
\set ON_ERROR_STOP on
\pset footer off

SELECT count(*) AS rows, count(DISTINCT customer_id) AS customers FROM events \gset
\echo :rows events of :customers customers; median of :rounds timed rounds after 1 warm-up round
\echo 'Plans:' :plans
\echo

CREATE TEMP TABLE steps AS
SELECT split_part(line, '|', 1) AS step, split_part(line, '|', 2) AS description, ord
  FROM string_to_table(:'descriptions', E'\n') WITH ORDINALITY AS t(line, ord)
 WHERE line <> '';

CREATE TEMP TABLE medians AS
SELECT step, percentile_cont(0.5) WITHIN GROUP (ORDER BY cpu) AS cpu,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS wall,
       string_agg(to_char(cpu, 'FM9990.00'), ' ' ORDER BY run) AS cpu_runs,
       string_agg(to_char(seconds, 'FM9990.00'), ' ' ORDER BY run) AS wall_runs,
       min(result) AS result, max(result) AS max_result
  FROM bench_times
 WHERE run > 0
 GROUP BY step;

\echo 'Times (CPU: the backend''s user + system time; wall: elapsed)'
SELECT s.description AS query, to_char(m.cpu, 'FM9990.00') AS cpu_s,
       to_char(m.cpu / :rows * 1e9, 'FM99990') AS cpu_ns_per_row,
       to_char((m.cpu - a.cpu) / :rows * 1e9, 'FM99990') AS above_a_ns_per_row,
       m.cpu_runs AS "CPU runs (s)", to_char(m.wall, 'FM9990.00') AS wall_s, m.wall_runs AS "wall runs (s)"
  FROM steps AS s JOIN medians AS m USING (step), medians AS a
 WHERE a.step = 'a'
 ORDER BY s.ord;

\echo 'Ratios (of median CPU times; of median wall times alongside)'
WITH c AS (SELECT jsonb_object_agg(step, cpu) AS t, jsonb_object_agg(step, wall) AS w FROM medians)
SELECT ratio, to_char(value, 'FM990.00') AS cpu_ratio, to_char(wall, 'FM990.00') AS wall_ratio, target,
       CASE WHEN target = '' THEN ''
            WHEN value <= split_part(target, ' ', 2)::float8 THEN 'met' ELSE 'MISSED' END AS status
  FROM c, LATERAL (VALUES
       (1, '(e)/(r)  events vs rfm, same rows',
           (t->>'e')::float8 / (t->>'r')::float8, (w->>'e')::float8 / (w->>'r')::float8, '<= 1.0'),
       (2, '(e-a)/(r-a)  work above the bare GROUP BY, events vs rfm',
           ((t->>'e')::float8 - (t->>'a')::float8) / ((t->>'r')::float8 - (t->>'a')::float8),
           ((w->>'e')::float8 - (w->>'a')::float8) / ((w->>'r')::float8 - (w->>'a')::float8), '<= 1.0'),
       (3, '(e)/(a)  events vs bare GROUP BY',
           (t->>'e')::float8 / (t->>'a')::float8, (w->>'e')::float8 / (w->>'a')::float8, ''),
       (4, '(m)/(e)  events with a jsonb mapping vs without',
           (t->>'m')::float8 / (t->>'e')::float8, (w->>'m')::float8 / (w->>'e')::float8, ''),
       (5, '(r)/(a)  rfm vs bare GROUP BY',
           (t->>'r')::float8 / (t->>'a')::float8, (w->>'r')::float8 / (w->>'a')::float8, ''),
       (6, '(c)/(r)  contacts vs rfm',
           (t->>'c')::float8 / (t->>'r')::float8, (w->>'c')::float8 / (w->>'r')::float8, ''),
       (7, '(l)/(r)  order_lines vs rfm',
           (t->>'l')::float8 / (t->>'r')::float8, (w->>'l')::float8 / (w->>'r')::float8, '')
  ) AS r(ord, ratio, value, wall, target)
 ORDER BY ord;

\echo 'Checks'
SELECT 'every step returns one row per customer in every round' AS "check",
       bool_and(result = :customers AND max_result = :customers) AS ok
  FROM medians;
